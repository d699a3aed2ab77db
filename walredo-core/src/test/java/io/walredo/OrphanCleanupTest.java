// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.FakeRedoModel.Fault;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A sidecar hung in a redo does not read stdin, so it outlives a SIGKILLed JVM (promise 9's limit). The next manager
 * created with the same binary kills it, and nothing else: not a process of the same binary without the library's
 * marker, not the sidecar of a manager that is still alive.
 */
@Timeout(120)
class OrphanCleanupTest {

    private static final TenantShardId T = TenantShardId.of(0x0a9f_0000L, 1);

    /** Child JVM: one sidecar hung in a redo; prints its pid and "ready", then waits to be killed. */
    public static void main(String[] args) throws Exception {
        WalRedoConfig cfg = WalRedoConfig.builder()
                .redoBinary(Fixtures.PG, Path.of(args[0]))
                .extraArgs(Fault.HANG_AFTER.args(1))
                .build();
        WalRedoManager m = WalRedoManager.create(cfg);
        m.ping(T, Fixtures.PG);
        System.out.println("pid " + m.status().get(0).pid());
        Thread.ofVirtual().start(() -> {
            try {
                m.redo(T, Fixtures.request(1), AttemptType.GC_COMPACTION, Duration.ofSeconds(100));
            } catch (WalRedoException expected) {
                // the sidecar hangs; this JVM is killed before the deadline
            }
        });
        // The request must be in the sidecar, which then stops reading stdin: the fake hangs in pause(2).
        Path wchan = Path.of("/proc/" + m.status().get(0).pid() + "/wchan");
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.readString(wchan).contains("pause") && System.nanoTime() - until < 0) {
            Thread.sleep(5);
        }
        System.out.println("ready");
        System.out.flush();
        new CountDownLatch(1).await(100, TimeUnit.SECONDS);
    }

    @Test
    void theNextManagerKillsASidecarOrphanedByASigkilledJvmAndNothingElse(@TempDir Path dir) throws Exception {
        Path binary = FakeRedoModel.binary();
        List<Process> bystanders = new ArrayList<>();
        Process jvm = null;
        int orphan = -1;
        try {
            // A process of the same binary without the marker, started by someone else.
            Process unrelated = new ProcessBuilder(binary.toString(), "--wal-redo", "--no-read").start();
            bystanders.add(unrelated);
            // A live manager's sidecar, in this JVM.
            try (WalRedoManager alive = WalRedoManager.create(Fixtures.config().build())) {
                alive.ping(T, Fixtures.PG);
                int aliveSidecar = Fixtures.sidecarPid(alive, T);

                jvm = startChildJvm(dir, binary);
                orphan = readOrphanPid(jvm, dir);
                jvm.destroyForcibly();
                assertTrue(jvm.waitFor(30, TimeUnit.SECONDS), "the child JVM did not die of SIGKILL");
                // Forced, not hoped for: once the kernel has reparented the sidecar, its JVM's death has reached it.
                int o0 = orphan;
                long jvmPid = jvm.pid();
                Fixtures.await("the orphan reparented", Duration.ofSeconds(30), () -> parentOf(o0) != jvmPid);
                assertTrue(running(orphan), "the hung sidecar should outlive its SIGKILLed JVM");

                long createdAt = System.nanoTime();
                try (WalRedoManager next =
                        WalRedoManager.create(Fixtures.config().build())) {
                    int o = orphan;
                    Fixtures.await("the orphan killed", Duration.ofSeconds(10), () -> !running(o));
                    // The figure docs/reliability.md quotes; the bound above is generous, not a timing assertion.
                    System.out.printf(
                            "orphan cleanup: the orphan was gone %d ms after create began%n",
                            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - createdAt));
                    assertTrue(unrelated.isAlive(), "a process of the same binary without the marker was killed");
                    assertTrue(running(aliveSidecar), "a live manager's sidecar was killed");
                    assertEquals(1, alive.status().size());
                    next.ping(T, Fixtures.PG);
                }
                assertTrue(running(aliveSidecar));
            }
        } finally {
            if (jvm != null) {
                jvm.destroyForcibly();
            }
            if (orphan > 0) {
                ProcessHandle.of(orphan).ifPresent(ProcessHandle::destroyForcibly);
            }
            bystanders.forEach(Process::destroyForcibly);
        }
    }

    @Test
    void withTheSwitchOffAnOrphanIsLeftAlone(@TempDir Path dir) throws Exception {
        Path binary = FakeRedoModel.binary();
        Process jvm = startChildJvm(dir, binary);
        int orphan = -1;
        try {
            orphan = readOrphanPid(jvm, dir);
            jvm.destroyForcibly();
            assertTrue(jvm.waitFor(30, TimeUnit.SECONDS));
            try (WalRedoManager next = WalRedoManager.create(
                    Fixtures.config().killOrphanedSidecars(false).build())) {
                next.ping(T, Fixtures.PG);
                assertTrue(running(orphan), "killOrphanedSidecars(false) still killed the orphan");
            }
        } finally {
            jvm.destroyForcibly();
            if (orphan > 0) {
                ProcessHandle.of(orphan).ifPresent(ProcessHandle::destroyForcibly);
            }
        }
    }

    @Test
    void theMarkerCannotBeSetByTheConfiguration() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> Fixtures.config()
                        .environment(Map.of(WalRedoConfig.SIDECAR_OWNER_VARIABLE, "1:1"))
                        .build());
        assertTrue(e.getMessage().contains(WalRedoConfig.SIDECAR_OWNER_VARIABLE), e.getMessage());
    }

    @Test
    void everySidecarCarriesItsOwnersMarker() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(Fixtures.config().build())) {
            m.ping(T, Fixtures.PG);
            byte[] environ = Files.readAllBytes(Path.of("/proc/" + Fixtures.sidecarPid(m, T) + "/environ"));
            String self = ProcessHandle.current().pid() + ":";
            assertTrue(
                    new String(environ, StandardCharsets.UTF_8)
                            .contains(WalRedoConfig.SIDECAR_OWNER_VARIABLE + "=" + self),
                    "no owner marker");
        }
    }

    private static Process startChildJvm(Path dir, Path binary) throws IOException {
        String java = ProcessHandle.current().info().command().orElseThrow();
        return new ProcessBuilder(List.of(
                        java,
                        "--enable-native-access=ALL-UNNAMED",
                        "-D" + FakeRedoModel.BINARY_PROPERTY + "=" + binary,
                        "-cp",
                        System.getProperty("java.class.path"),
                        OrphanCleanupTest.class.getName(),
                        binary.toString()))
                .redirectError(dir.resolve("child-jvm.stderr").toFile())
                .start();
    }

    private static int readOrphanPid(Process jvm, Path dir) throws IOException {
        int pid = -1;
        BufferedReader r = new BufferedReader(new InputStreamReader(jvm.getInputStream(), StandardCharsets.UTF_8));
        for (String line; (line = r.readLine()) != null && !line.startsWith("ready"); ) {
            if (line.startsWith("pid ")) {
                pid = Integer.parseInt(line.substring(4).trim());
            }
        }
        if (pid < 0) {
            fail("the child JVM printed no sidecar pid; its stderr:\n"
                    + Files.readString(dir.resolve("child-jvm.stderr")));
        }
        assertFalse(!running(pid), "the sidecar is not running before the kill");
        return pid;
    }

    /** Alive and not a zombie (an orphan that died may wait a moment for init to reap it). */
    /** The parent pid from {@code /proc/PID/stat}, or -1 if the process is gone. */
    private static long parentOf(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1]);
        } catch (IOException | RuntimeException gone) {
            return -1;
        }
    }

    private static boolean running(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String state = stat.substring(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
            return !state.equals("Z") && !state.equals("X");
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }
}
