// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.FakeRedoModel.Fault;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The optional JVM shutdown hook kills and reaps sidecars when the JVM exits. The sidecar here never
 * reads stdin ({@code --no-read}), so it would not notice the JVM's exit by itself: only the hook ends it.
 */
@Timeout(60)
class ShutdownHookTest {

    /** Child JVM: spawns one sidecar, prints its pid, returns from main (the JVM exits normally). */
    public static void main(String[] args) throws Exception {
        WalRedoConfig cfg = WalRedoConfig.builder()
                .redoBinary(Fixtures.PG, java.nio.file.Path.of(args[0]))
                .extraArgs(Fault.NO_READ.args())
                .shutdownHook(Boolean.parseBoolean(args[1]))
                .killTimeout(Duration.ofSeconds(1))
                .build();
        WalRedoManager m = WalRedoManager.create(cfg);
        // --no-read: the request stays in flight (on a daemon virtual thread) and the sidecar stays alive.
        m.redoAsync(Fixtures.tenant(1), Fixtures.request(1), AttemptType.GC_COMPACTION);
        Fixtures.await(
                "sidecar spawned", Duration.ofSeconds(20), () -> !m.status().isEmpty());
        System.out.println("pid " + Fixtures.sidecarPid(m, Fixtures.tenant(1)));
        System.out.flush();
    }

    private static long runChild(boolean hook) throws Exception {
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process p = new ProcessBuilder(List.of(
                        java,
                        "--enable-native-access=ALL-UNNAMED",
                        "-cp",
                        System.getProperty("java.class.path"),
                        ShutdownHookTest.class.getName(),
                        FakeRedoModel.binary().toString(),
                        Boolean.toString(hook)))
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        long pid = -1;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith("pid ")) {
                    pid = Long.parseLong(line.substring(4).trim());
                }
            }
        }
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "child JVM did not exit");
        assertEquals(0, p.exitValue());
        assertTrue(pid > 0, "child JVM printed no sidecar pid");
        return pid;
    }

    private static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    @Test
    void withTheHookSidecarsDieWithTheJvm() throws Exception {
        long pid = runChild(true);
        Fixtures.await("sidecar " + pid + " gone", Duration.ofSeconds(10), () -> !alive(pid));
    }

    @Test
    void withoutTheHookASidecarThatIgnoresEofOutlivesTheJvm() throws Exception {
        long pid = runChild(false);
        try {
            assertTrue(alive(pid), "control case: nothing killed the --no-read sidecar");
        } finally {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        }
    }
}
