// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Spawning, coalescing, pipelining and the happy path, against the fake binary over real pipes. */
@Timeout(120)
class ManagerBasicsTest {

    @Test
    void firstRequestSpawnsLazilyAndReturnsTheRedonePage() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            assertEquals(0, m.metrics().sidecarsStarted(), "nothing is spawned before the first request");
            RedoRequest r = request(1);
            assertArrayEquals(expected(r), m.redo(tenant(1), r, AttemptType.READ_PAGE));
            assertEquals(1, m.metrics().sidecarsStarted());
            List<SidecarStatus> st = m.status();
            assertEquals(1, st.size());
            assertEquals(tenant(1), st.get(0).tenant());
            assertEquals(PG, st.get(0).pgVersion());
            assertEquals(0, st.get(0).inFlight());
            assertTrue(st.get(0).lastRedoAt().isPresent());
            m.ping(tenant(1), PG);
            assertEquals(1, m.metrics().sidecarsStarted(), "the ping reused the sidecar");
        }
    }

    @Test
    void sidecarArgvNamesTheTenant() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            m.ping(tenant(2), PG);
            int pid = Fixtures.sidecarPid(m, tenant(2));
            String cmdline = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/" + pid + "/cmdline"))
                    .replace('\0', ' ');
            assertTrue(cmdline.contains("--wal-redo"), cmdline);
            assertTrue(cmdline.contains("--tenant-shard-id " + tenant(2)), cmdline);
        }
    }

    @Test
    void concurrentFirstRequestsShareOneSpawnAndWaitersDoNotBlockCarriers() throws Exception {
        int callers = 200;
        try (WalRedoManager m = WalRedoManager.create(
                config(FakeRedoModel.Fault.STARTUP_DELAY_MS.args(300)).build())) {
            CyclicBarrier start = new CyclicBarrier(callers);
            List<Thread> threads = new ArrayList<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            for (int i = 0; i < callers; i++) {
                int n = i;
                threads.add(Thread.ofVirtual().start(() -> {
                    try {
                        start.await(10, TimeUnit.SECONDS);
                        RedoRequest r = request(n);
                        assertArrayEquals(expected(r), m.redo(tenant(7), r, AttemptType.GC_COMPACTION));
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }));
            }
            // While 200 virtual threads wait for the one slow spawn, other virtual threads still run:
            // the waiters park instead of holding carriers.
            CountDownLatch ran = new CountDownLatch(100);
            for (int i = 0; i < 100; i++) {
                Thread.ofVirtual().start(ran::countDown);
            }
            assertTrue(ran.await(10, TimeUnit.SECONDS), "virtual threads starved while callers waited for a spawn");
            for (Thread t : threads) {
                assertTrue(t.join(Duration.ofSeconds(60)));
            }
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            assertEquals(1, m.metrics().sidecarsStarted(), "concurrent first requests coalesce onto one spawn");
        }
    }

    @Test
    void pipelinedCallersNeverGetEachOthersPages() throws Exception {
        int callers = 64;
        int total = 100_000;
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            // Precompute so the test measures the library, not the model.
            int distinct = 4096;
            RedoRequest[] reqs = new RedoRequest[distinct];
            byte[][] pages = new byte[distinct][];
            for (int i = 0; i < distinct; i++) {
                reqs[i] = request(i, 1 + i % 3, 16 + i % 200);
                pages[i] = expected(reqs[i]);
            }
            AtomicInteger next = new AtomicInteger();
            AtomicInteger mixups = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int c = 0; c < callers; c++) {
                threads.add(Thread.ofVirtual().start(() -> {
                    int i;
                    while ((i = next.getAndIncrement()) < total) {
                        int k = (int) ((i * 2654435761L) % distinct);
                        try {
                            byte[] page = m.redo(tenant(9), reqs[k], AttemptType.GC_COMPACTION);
                            if (!java.util.Arrays.equals(page, pages[k])) {
                                mixups.incrementAndGet();
                            }
                        } catch (Throwable t) {
                            failure.compareAndSet(null, t);
                            return;
                        }
                    }
                }));
            }
            for (Thread t : threads) {
                assertTrue(t.join(Duration.ofSeconds(100)), "callers did not finish");
            }
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            assertEquals(0, mixups.get(), "responses delivered to the wrong caller");
            assertEquals(total, m.metrics().redos());
            assertEquals(1, m.metrics().sidecarsStarted(), "one sidecar served every request");
        }
    }

    @Test
    void asyncRedoCompletesWithThePage() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            List<CompletableFuture<byte[]>> fs = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                fs.add(m.redoAsync(tenant(3), request(i), AttemptType.READ_PAGE));
            }
            for (int i = 0; i < 50; i++) {
                assertArrayEquals(expected(request(i)), fs.get(i).get(30, TimeUnit.SECONDS));
            }
        }
    }

    @Test
    void largeRequestsAreWrittenWhileAnswersAreRead() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            // ~1 MiB requests: far more than a pipe buffer, several in flight at once.
            List<Thread> ts = new ArrayList<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            for (int c = 0; c < 8; c++) {
                int n = c;
                ts.add(Thread.ofVirtual().start(() -> {
                    try {
                        for (int k = 0; k < 5; k++) {
                            RedoRequest r = request(n * 100 + k, 64, 16 * 1024);
                            assertArrayEquals(expected(r), m.redo(tenant(4), r, AttemptType.GC_COMPACTION));
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }));
            }
            for (Thread t : ts) {
                assertTrue(t.join(Duration.ofSeconds(60)));
            }
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
        }
    }

    @Test
    void tenantsGetTheirOwnSidecars() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            for (int t = 0; t < 20; t++) {
                RedoRequest r = request(t);
                assertArrayEquals(expected(r), m.redo(tenant(100 + t), r, AttemptType.READ_PAGE));
            }
            assertEquals(20, m.status().size());
            assertEquals(
                    20,
                    m.status().stream().mapToInt(SidecarStatus::pid).distinct().count());
        }
    }
}
