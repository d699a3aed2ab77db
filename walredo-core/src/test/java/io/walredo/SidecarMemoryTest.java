// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Each sidecar's RSS and PSS in status(), their sums in metrics(), against the fake binary over real pipes. */
@Timeout(60)
class SidecarMemoryTest {
    private static final SidecarStatus.Memory NONE = new SidecarStatus.Memory(0, 0);

    @Test
    void aLiveSidecarShowsItsRssAndPss() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            m.ping(tenant(1), PG);
            int pid = Fixtures.sidecarPid(m, tenant(1));

            long rssBefore = rssKb(pid);
            List<SidecarStatus> status = m.status();
            long rssAfter = rssKb(pid);

            assertEquals(1, status.size());
            SidecarStatus.Memory mem = status.get(0).memory().orElseThrow();
            assertTrue(mem.rssBytes() > 0, mem.toString());
            assertTrue(mem.pssBytes() > 0 && mem.pssBytes() <= mem.rssBytes(), mem.toString());
            if (rssBefore == rssAfter) {
                // The idle fake's RSS did not move while status() read it: it must be that process's figure.
                assertEquals(rssBefore * 1024, mem.rssBytes());
            }
        }
    }

    @Test
    void metricsSumsTheLiveSidecars() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            m.ping(tenant(1), PG);
            m.ping(tenant(2), PG);
            List<SidecarStatus> status = m.status();
            WalRedoMetrics metrics = m.metrics();

            assertEquals(2, status.size());
            assertEquals(2, metrics.sidecarsMeasured());
            SidecarStatus.Memory sum = metrics.sidecarMemory();
            for (SidecarStatus s : status) {
                SidecarStatus.Memory own = s.memory().orElseThrow();
                // RSS only: a process's PSS falls when other processes (parallel tests' sidecars) map its pages
                // between status() and metrics(); an idle process's RSS does not.
                assertTrue(sum.rssBytes() >= own.rssBytes(), sum + " vs " + s);
            }
            assertTrue(sum.pssBytes() > 0 && sum.pssBytes() <= sum.rssBytes(), sum.toString());
        }
    }

    @Test
    void withNoSidecarAliveTheSumsAreZero() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            assertEquals(NONE, m.metrics().sidecarMemory());
            assertEquals(0, m.metrics().sidecarsMeasured());

            m.ping(tenant(1), PG);
            assertEquals(1, m.metrics().sidecarsMeasured());
            m.detach(tenant(1));

            assertEquals(NONE, m.metrics().sidecarMemory());
            assertEquals(0, m.metrics().sidecarsMeasured());
            assertTrue(m.status().isEmpty());
        }
    }

    @Test
    void aJustKilledSidecarDoesNotMakeStatusOrMetricsThrow() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            m.ping(tenant(1), PG);
            int pid = Fixtures.sidecarPid(m, tenant(1));

            ProcessHandle.of(pid).orElseThrow().destroyForcibly();
            // From the SIGKILL through the zombie and the reap to leaving rotation, each call either reads the
            // memory or reports it unknown; any exception fails the test.
            Fixtures.await("the killed sidecar is gone from status() and metrics()", Duration.ofSeconds(10), () -> {
                boolean listed = m.status().stream().anyMatch(s -> s.pid() == pid);
                return !listed && m.metrics().sidecarsMeasured() == 0;
            });
            Fixtures.awaitReaped(pid);

            assertEquals(NONE, m.metrics().sidecarMemory());
            m.ping(tenant(1), PG);
            assertTrue(m.status().get(0).memory().isPresent(), "the fresh sidecar is measured");
        }
    }

    /** The Rss line of {@code pid}'s smaps_rollup, read independently of the library. */
    private static long rssKb(int pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/smaps_rollup"))) {
            if (line.startsWith("Rss:")) {
                return Long.parseLong(line.substring(4).replace("kB", "").strip());
            }
        }
        throw new AssertionError("no Rss line for pid " + pid);
    }
}
