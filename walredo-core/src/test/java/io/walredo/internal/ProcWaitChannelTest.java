// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Admission's look at where a sidecar sleeps: on its pipes (waiting for the JVM) or anywhere else (working). */
class ProcWaitChannelTest {

    @Test
    void pipeWaitsOfEveryKernelGenerationAreRecognised() {
        assertTrue(ProcWaitChannel.isPipeWait("anon_pipe_read"));
        assertTrue(ProcWaitChannel.isPipeWait("anon_pipe_write"));
        assertTrue(ProcWaitChannel.isPipeWait("pipe_read"));
        assertTrue(ProcWaitChannel.isPipeWait("pipe_write"));
        assertTrue(ProcWaitChannel.isPipeWait("pipe_wait"));
        assertFalse(ProcWaitChannel.isPipeWait("0"), "running, runnable, or a kernel that hides the symbol");
        assertFalse(ProcWaitChannel.isPipeWait("hrtimer_nanosleep"));
        assertFalse(ProcWaitChannel.isPipeWait("do_signal_stop"));
        assertFalse(ProcWaitChannel.isPipeWait(""));
    }

    @Test
    void anUnreadableWaitChannelMeansWorking(@TempDir Path dir) throws Exception {
        assertFalse(ProcWaitChannel.waitsOnPipe(dir.resolve("missing")));
        Path file = dir.resolve("wchan");
        Files.writeString(file, "anon_pipe_read");
        assertTrue(ProcWaitChannel.waitsOnPipe(file));
        Files.writeString(file, "x".repeat(10_000) + "pipe_read");
        assertFalse(ProcWaitChannel.waitsOnPipe(file), "only the first " + ProcWaitChannel.MAX_BYTES + " bytes");
    }

    @Test
    void aProcessReadingAnEmptyPipeWaitsOnItAndASleepingOneDoesNot() throws Exception {
        Process reader = new ProcessBuilder("cat").start();
        Process sleeper = new ProcessBuilder("sleep", "30").start();
        try {
            await("cat blocked reading its stdin", () -> ProcWaitChannel.waitsOnPipe((int) reader.pid()));
            await("sleep asleep in its timer", () -> sleepingAfterExec(sleeper.pid(), "sleep"));
            assertFalse(ProcWaitChannel.waitsOnPipe((int) sleeper.pid()));
        } finally {
            reader.destroyForcibly().waitFor();
            sleeper.destroyForcibly().waitFor();
        }
    }

    /** Whether {@code pid} runs {@code comm} (its exec is done) and is asleep ('S' in /proc/PID/stat). */
    private static boolean sleepingAfterExec(long pid, String comm) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            int close = stat.lastIndexOf(')');
            return stat.substring(stat.indexOf('(') + 1, close).equals(comm) && stat.charAt(close + 2) == 'S';
        } catch (IOException e) {
            return false;
        }
    }

    private static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "not within 10 s: " + what);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
        }
    }
}
