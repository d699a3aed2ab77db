// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.testing.FakeRedoModel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The host JVM dies by SIGKILL (no shutdown hook, no close): every sidecar must exit on its own, because the
 * JVM held the only copies of the parent ends of its pipes, so the kernel closes them and the sidecar reads
 * EOF on stdin. A child JVM spawns the sidecars and prints their pids; this test {@code kill -9}s it and
 * watches the pids.
 *
 * <p>The bound asserted is generous (no timing assertion that a loaded machine could break); the measured
 * time is printed and is the figure docs/reliability.md quotes. A sidecar that never reads stdin would not
 * notice (ShutdownHookTest's control case shows one outliving its JVM); the real postgres blocks in read.
 */
@Timeout(120)
class HostCrashTest {
    private static final int SIDECARS = 50;
    private static final Duration BOUND = Duration.ofSeconds(10);

    /** Child JVM: one sidecar for each of 50 tenants (each served a request), their pids, then waits to be killed. */
    public static void main(String[] args) throws Exception {
        WalRedoConfig cfg = WalRedoConfig.builder()
                .redoBinary(Fixtures.PG, Path.of(args[0]))
                .build();
        WalRedoManager m = WalRedoManager.create(cfg);
        List<Thread> callers = new ArrayList<>();
        for (int i = 0; i < SIDECARS; i++) {
            int n = i;
            callers.add(Thread.ofVirtual().start(() -> {
                try {
                    m.redo(Fixtures.tenant(n), Fixtures.request(n), AttemptType.READ_PAGE);
                } catch (WalRedoException e) {
                    throw new IllegalStateException(e);
                }
            }));
        }
        for (Thread t : callers) {
            if (!t.join(Duration.ofSeconds(60))) {
                throw new IllegalStateException("a redo did not finish");
            }
        }
        for (SidecarStatus s : m.status()) {
            System.out.println("pid " + s.pid());
        }
        System.out.println("ready");
        System.out.flush();
        // Bounded, so a parent that failed to kill this JVM does not leave it behind for long.
        new CountDownLatch(1).await(100, TimeUnit.SECONDS);
    }

    @Test
    void everySidecarExitsOnItsOwnWhenTheJvmIsKilled(@TempDir Path dir) throws Exception {
        // The child's stderr goes to a file, so a child that fails before printing its pids says why.
        Path childStderr = dir.resolve("child-jvm.stderr");
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process jvm = new ProcessBuilder(List.of(
                        java,
                        "--enable-native-access=ALL-UNNAMED",
                        "-D" + FakeRedoModel.BINARY_PROPERTY + "=" + FakeRedoModel.binary(),
                        "-cp",
                        System.getProperty("java.class.path"),
                        HostCrashTest.class.getName(),
                        FakeRedoModel.binary().toString()))
                .redirectError(childStderr.toFile())
                .start();
        Map<Integer, String> startTimes = new HashMap<>();
        try (BufferedReader r =
                new BufferedReader(new InputStreamReader(jvm.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null && !line.equals("ready"); ) {
                if (line.startsWith("pid ")) {
                    int pid = Integer.parseInt(line.substring(4).trim());
                    startTimes.put(pid, startTime(pid));
                }
            }
            if (startTimes.size() != SIDECARS) {
                fail("the child JVM printed " + startTimes.size() + " sidecar pids, not " + SIDECARS + "; its stderr:\n"
                        + new String(Files.readAllBytes(childStderr), StandardCharsets.UTF_8));
            }
            for (Map.Entry<Integer, String> e : startTimes.entrySet()) {
                assertTrue(e.getValue() != null, "sidecar " + e.getKey() + " is running before the kill");
            }

            long killedAt = System.nanoTime();
            jvm.destroyForcibly(); // SIGKILL
            assertTrue(jvm.waitFor(30, TimeUnit.SECONDS), "the child JVM did not die of SIGKILL");
            assertEquals(128 + 9, jvm.exitValue());

            Map<Integer, Long> exitedAfterNanos = new HashMap<>();
            long end = killedAt + BOUND.toNanos();
            while (exitedAfterNanos.size() < startTimes.size() && System.nanoTime() - end < 0) {
                for (Map.Entry<Integer, String> e : startTimes.entrySet()) {
                    if (!exitedAfterNanos.containsKey(e.getKey()) && !running(e.getKey(), e.getValue())) {
                        exitedAfterNanos.put(e.getKey(), System.nanoTime() - killedAt);
                    }
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
            }
            List<Integer> survivors = startTimes.keySet().stream()
                    .filter(p -> !exitedAfterNanos.containsKey(p))
                    .toList();
            try {
                assertTrue(
                        survivors.isEmpty(),
                        "sidecars still running " + BOUND + " after the JVM was killed: " + survivors);
            } finally {
                survivors.forEach(p -> ProcessHandle.of(p).ifPresent(ProcessHandle::destroyForcibly));
            }
            long max = exitedAfterNanos.values().stream()
                    .mapToLong(Long::longValue)
                    .max()
                    .orElseThrow();
            System.out.printf(
                    "host crash: all %d sidecars exited within %d ms of the SIGKILL to their JVM%n",
                    SIDECARS, TimeUnit.NANOSECONDS.toMillis(max));
        } finally {
            jvm.destroyForcibly();
        }
    }

    /** Field 22 of /proc/PID/stat (start time in clock ticks), or null if there is no such process. */
    private static String startTime(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).split(" ")[19];
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * Whether the process that had {@code pid} and {@code startTime} still runs: it has not exited if /proc
     * shows it in a state other than zombie (Z) or dead (X). After the JVM's death the sidecars are
     * reparented (to init or a subreaper), which may leave an exited one as a zombie for a while; a different
     * start time means the pid was reused.
     */
    private static boolean running(int pid, String startTime) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return f[19].equals(startTime) && !f[0].equals("Z") && !f[0].equals("X");
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }
}
