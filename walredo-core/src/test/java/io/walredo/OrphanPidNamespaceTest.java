// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.walredo.testing.FakeRedoModel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A live manager in a child pid namespace (a container whose JVM is pid 1) marks its sidecars with its own,
 * namespace-local pid. A manager created outside that namespace must not read that pid in its own namespace, find
 * another process (or none) there, and kill the live manager's sidecar as an orphan. Failed before the reaper
 * compared pid namespaces: the new manager logged "killed an orphaned walredo sidecar" and the sidecar died while its
 * JVM ran on. Skipped where {@code unshare -pf} is not allowed.
 */
@Timeout(120)
class OrphanPidNamespaceTest {
    private static final TenantShardId T = TenantShardId.of(0x0b00_0000L, 1);

    /** Child JVM (pid 1 of its own pid namespace): one live sidecar, then waits. */
    public static void main(String[] args) throws Exception {
        WalRedoManager m = WalRedoManager.create(Fixtures.config().build());
        m.ping(T, Fixtures.PG);
        System.out.println("ready");
        System.out.flush();
        new CountDownLatch(1).await(100, TimeUnit.SECONDS);
    }

    @Test
    void aLiveManagersSidecarInAnotherPidNamespaceIsNotAnOrphan(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/unshare")), "no unshare");
        Path binary = FakeRedoModel.binary();
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process unshare = new ProcessBuilder(List.of(
                        "unshare",
                        "-pf",
                        "--mount-proc",
                        java,
                        "--enable-native-access=ALL-UNNAMED",
                        "-D" + FakeRedoModel.BINARY_PROPERTY + "=" + binary,
                        "-cp",
                        System.getProperty("java.class.path"),
                        OrphanPidNamespaceTest.class.getName()))
                .redirectError(dir.resolve("child.stderr").toFile())
                .start();
        try {
            BufferedReader r =
                    new BufferedReader(new InputStreamReader(unshare.getInputStream(), StandardCharsets.UTF_8));
            String line;
            while ((line = r.readLine()) != null && !line.equals("ready")) {
                // the child's own output before "ready"
            }
            assumeTrue(
                    "ready".equals(line), "child JVM did not start: " + Files.readString(dir.resolve("child.stderr")));
            // Host pids: unshare -> java (pid 1 inside) -> sidecar.
            long childJvm = Fixtures.childrenOf(unshare.pid()).get(0).pid();
            long sidecar = Fixtures.childrenOf(childJvm).stream()
                    .filter(c -> c.cmdline().startsWith(binary.toString()))
                    .findFirst()
                    .orElseThrow()
                    .pid();
            assertTrue(running(sidecar));

            try (WalRedoManager next = WalRedoManager.create(Fixtures.config().build())) {
                // create() has sent any kill before it returns; SIGKILL takes effect within milliseconds.
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                while (System.nanoTime() - until < 0) {
                    assertTrue(running(sidecar), "a live manager's sidecar was killed as an orphan");
                    Thread.sleep(10);
                }
                assertTrue(running(childJvm), "the owner JVM is alive");
            }
        } finally {
            unshare.destroyForcibly();
            ProcessHandle.of(unshare.pid()).ifPresent(h -> h.descendants().forEach(ProcessHandle::destroyForcibly));
        }
    }

    /** Alive and not a zombie (any process, not only our children). */
    private static boolean running(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return state != 'Z' && state != 'X';
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }
}
