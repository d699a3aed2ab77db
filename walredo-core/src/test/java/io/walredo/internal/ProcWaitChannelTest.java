// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
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
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!ProcWaitChannel.waitsOnPipe((int) reader.pid())) {
                assertTrue(System.nanoTime() < deadline, "cat never blocked reading its stdin");
                Thread.sleep(5);
            }
            Thread.sleep(50);
            assertFalse(ProcWaitChannel.waitsOnPipe((int) sleeper.pid()));
        } finally {
            reader.destroyForcibly().waitFor();
            sleeper.destroyForcibly().waitFor();
        }
    }
}
