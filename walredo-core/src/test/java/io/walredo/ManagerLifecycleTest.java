// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.awaitReaped;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.sidecarPid;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.FakeRedoModel.Fault;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Quiescing, the live-sidecar cap, detach and shutdown. */
@Timeout(120)
class ManagerLifecycleTest {
    private static final Duration IDLE = Duration.ofSeconds(100);

    private static WalRedoConfig.Builder withClock(AtomicLong clock, List<String> fakeArgs) {
        return config(fakeArgs).idleTimeout(IDLE).housekeepingPeriod(IDLE).nanoClock(clock::get);
    }

    @Test
    void idleSidecarsAreQuiescedAndRespawnedOnTheNextRequest() throws Exception {
        AtomicLong clock = new AtomicLong(1_000_000_000L);
        try (WalRedoManager m =
                WalRedoManager.create(withClock(clock, List.of()).build())) {
            m.redo(tenant(1), request(1), AttemptType.READ_PAGE);
            int pid = sidecarPid(m, tenant(1));
            clock.addAndGet(IDLE.toNanos() - 1);
            m.sweepNow();
            assertEquals(pid, sidecarPid(m, tenant(1)), "not idle long enough yet");
            clock.addAndGet(1);
            m.sweepNow();
            awaitReaped(pid);
            assertTrue(m.status().isEmpty());
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.QUIESCE));
            assertArrayEquals(expected(request(2)), m.redo(tenant(1), request(2), AttemptType.READ_PAGE));
            assertNotEquals(pid, sidecarPid(m, tenant(1)));
        }
    }

    @Test
    void aSidecarWithRequestsInFlightIsNeverQuiesced() throws Exception {
        AtomicLong clock = new AtomicLong();
        try (WalRedoManager m = WalRedoManager.create(
                withClock(clock, Fault.DELAY_US.args(400_000)).build())) {
            m.ping(tenant(1), PG);
            int pid = sidecarPid(m, tenant(1));
            AtomicReference<Object> result = new AtomicReference<>();
            Thread caller = Thread.ofVirtual().start(() -> {
                try {
                    result.set(m.redo(tenant(1), request(3), AttemptType.GC_COMPACTION));
                } catch (Throwable t) {
                    result.set(t);
                }
            });
            Fixtures.await(
                    "request in flight",
                    Duration.ofSeconds(10),
                    () -> m.status().stream().anyMatch(s -> s.inFlight() == 1));
            clock.addAndGet(IDLE.toNanos() * 10);
            m.sweepNow();
            assertTrue(caller.join(Duration.ofSeconds(20)));
            assertArrayEquals(expected(request(3)), (byte[]) result.get());
            assertEquals(pid, sidecarPid(m, tenant(1)));
            assertEquals(0, m.metrics().sidecarsKilled().get(KillCause.QUIESCE));
        }
    }

    @Test
    void oneHousekeeperQuiescesAThousandTenants() throws Exception {
        AtomicLong clock = new AtomicLong();
        int tenants = 1000;
        try (WalRedoManager m =
                WalRedoManager.create(withClock(clock, List.of()).build())) {
            List<Thread> ts = new ArrayList<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            for (int t = 0; t < tenants; t++) {
                int n = t;
                ts.add(Thread.ofVirtual().start(() -> {
                    try {
                        m.ping(tenant(n), PG);
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (Thread t : ts) {
                assertTrue(t.join(Duration.ofSeconds(60)));
            }
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            assertEquals(tenants, m.status().size());
            long platform = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> !t.isVirtual())
                    .count();
            assertTrue(platform < 64, "platform threads with 1000 sidecars: " + platform);
            clock.addAndGet(IDLE.toNanos());
            m.sweepNow();
            Fixtures.await(
                    "all quiesced and reaped",
                    Duration.ofSeconds(60),
                    () -> m.metrics().liveSidecars() == 0);
            assertEquals(tenants, m.metrics().sidecarsKilled().get(KillCause.QUIESCE));
            assertTrue(Fixtures.zombies().isEmpty(), "zombies: " + Fixtures.zombies());
        }
    }

    @Test
    void atTheCapTheLeastRecentlyUsedIdleSidecarIsEvicted() throws Exception {
        AtomicLong clock = new AtomicLong();
        try (WalRedoManager m = WalRedoManager.create(
                withClock(clock, List.of()).maxLiveSidecars(2).build())) {
            m.ping(tenant(1), PG);
            clock.addAndGet(1000);
            m.ping(tenant(2), PG);
            clock.addAndGet(1000);
            int oldest = sidecarPid(m, tenant(1));
            m.ping(tenant(3), PG);
            awaitReaped(oldest);
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.EVICT));
            assertEquals(
                    List.of(tenant(2), tenant(3)),
                    m.status().stream().map(SidecarStatus::tenant).sorted().toList());
        }
    }

    /**
     * Tenant 1 takes the only unit of {@code maxLiveSidecars(1)} with a request its sidecar never answers (the fake
     * hangs on its first page); returns once that request is in flight. The thread ends at shutdown.
     */
    private static Thread holdTheOnlyUnit(WalRedoManager m) {
        Thread busy = Thread.ofVirtual().start(() -> {
            try {
                m.redo(tenant(1), request(1), AttemptType.GC_COMPACTION, Duration.ofSeconds(30));
            } catch (WalRedoException expected) {
                // cancelled by the test's shutdown
            }
        });
        Fixtures.await(
                "tenant 1 busy",
                Duration.ofSeconds(10),
                () -> m.status().stream().anyMatch(s -> s.inFlight() == 1));
        return busy;
    }

    @Test
    void atTheCapWithNoIdleSidecarARequestWaitsThenFails() throws Exception {
        WalRedoManager m = WalRedoManager.create(
                config(Fault.HANG_AFTER.args(1)).maxLiveSidecars(1).build());
        Thread busy = holdTheOnlyUnit(m);
        try {
            // Backpressure, not cancellation: its own type, so a server can answer "busy" and retry later.
            CapacityExhaustedException e = assertThrows(
                    CapacityExhaustedException.class,
                    () -> m.redo(tenant(2), request(2), AttemptType.GC_COMPACTION, Duration.ofMillis(300)));
            assertTrue(e.getMessage().contains("maxLiveSidecars"), e.getMessage());
            assertEquals(tenant(2), e.tenant());
            assertTrue(e.pid().isEmpty());
        } finally {
            m.shutdown(Duration.ofMillis(100));
        }
        assertTrue(busy.join(Duration.ofSeconds(10)));
    }

    /**
     * A spawn that finds no room under the cap before its own deadline (the longer of the first caller's and
     * redoTimeout) never started a process: it is backpressure, not a spawn failure, for back-off (as before) and for
     * the spawn-failure metric. Forced: tenant 1 holds the only unit with a hung request; tenant 2's spawn waits
     * redoTimeout (300 ms) for room; a second caller joins that spawn and gets its outcome, so it has ended.
     */
    @Test
    void aSpawnThatFindsNoRoomIsNotASpawnFailure() throws Exception {
        WalRedoManager m = WalRedoManager.create(config(Fault.HANG_AFTER.args(1))
                .maxLiveSidecars(1)
                .redoTimeout(Duration.ofMillis(300))
                .stallTimeout(Duration.ofSeconds(30))
                .build());
        Thread busy = holdTheOnlyUnit(m);
        try {
            // The first caller stops waiting at its own 100 ms; the spawn it started waits on until 300 ms.
            assertThrows(
                    CapacityExhaustedException.class,
                    () -> m.redo(tenant(2), request(2), AttemptType.GC_COMPACTION, Duration.ofMillis(100)));
            // This one joins that spawn and returns with its outcome, booked before it is handed out.
            assertThrows(
                    CapacityExhaustedException.class,
                    () -> m.redo(tenant(2), request(3), AttemptType.GC_COMPACTION, Duration.ofSeconds(5)));
            assertEquals(0, m.metrics().spawnFailures(), "no process was started, so none failed");
        } finally {
            m.shutdown(Duration.ofMillis(100));
        }
        assertTrue(busy.join(Duration.ofSeconds(10)));
    }

    @Test
    void detachLetsInFlightRequestsFinishThenKills() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.DELAY_US.args(300_000)).build())) {
            m.ping(tenant(1), PG);
            int pid = sidecarPid(m, tenant(1));
            AtomicReference<Object> result = new AtomicReference<>();
            Thread caller = Thread.ofVirtual().start(() -> {
                try {
                    result.set(m.redo(tenant(1), request(4), AttemptType.GC_COMPACTION));
                } catch (Throwable t) {
                    result.set(t);
                }
            });
            Fixtures.await(
                    "request in flight",
                    Duration.ofSeconds(10),
                    () -> m.status().stream().anyMatch(s -> s.inFlight() == 1));
            m.detach(tenant(1), Duration.ofSeconds(10));
            assertTrue(caller.join(Duration.ofSeconds(10)));
            assertArrayEquals(expected(request(4)), (byte[]) result.get(), "the in-flight request finished");
            awaitReaped(pid);
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.DETACH));
            m.detach(tenant(1));
            // A later request starts afresh.
            m.ping(tenant(1), PG);
            assertNotEquals(pid, sidecarPid(m, tenant(1)));
        }
    }

    @Test
    void shutdownCancelsWhatDoesNotFinishReapsEverythingAndIsIdempotent() throws Exception {
        WalRedoManager m =
                WalRedoManager.create(config(Fault.HANG_AFTER.args(1)).build());
        AtomicReference<Throwable> result = new AtomicReference<>();
        Thread caller = Thread.ofVirtual().start(() -> {
            try {
                m.redo(tenant(1), request(1), AttemptType.READ_PAGE, Duration.ofSeconds(60));
            } catch (Throwable t) {
                result.set(t);
            }
        });
        Fixtures.await(
                "request in flight",
                Duration.ofSeconds(10),
                () -> m.status().stream().anyMatch(s -> s.inFlight() == 1));
        int pid = sidecarPid(m, tenant(1));
        m.shutdown(Duration.ofMillis(200));
        assertTrue(caller.join(Duration.ofSeconds(10)));
        assertTrue(result.get() instanceof RedoCancelledException, String.valueOf(result.get()));
        assertTrue(result.get().getMessage().contains("shut down"), result.get().getMessage());
        awaitReaped(pid);
        m.shutdown(Duration.ofMillis(200));
        m.close();
        assertThrows(ManagerClosedException.class, () -> m.redo(tenant(1), request(1), AttemptType.READ_PAGE));
        assertThrows(ManagerClosedException.class, () -> m.ping(tenant(1), PG));
        assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.SHUTDOWN));
        assertTrue(Fixtures.zombies().isEmpty());
    }

    @Test
    void spawnCyclesLeakNothing() throws Exception {
        long fdsBefore;
        long threadsBefore;
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            m.ping(tenant(0), PG);
            m.detach(tenant(0));
            fdsBefore = openFds();
            threadsBefore = platformThreads();
            for (int i = 0; i < 300; i++) {
                m.ping(tenant(i % 7), PG);
                m.detach(tenant(i % 7));
                // detach returns once the sidecar is reaped: it is no longer counted as live.
                assertEquals(0, m.metrics().liveSidecars(), "live after detach, cycle " + i);
            }
            Fixtures.await("fds back to baseline", Duration.ofSeconds(10), () -> openFds() <= fdsBefore);
            assertTrue(platformThreads() <= threadsBefore + 2, "platform threads grew");
            assertTrue(Fixtures.zombies().isEmpty());
        }
    }

    static long openFds() {
        try (var s = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            return s.count();
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static long platformThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> !t.isVirtual())
                .count();
    }

    /** Tenant 1 keeps the only sidecar busy; tenant 2's spawn waits for room; then tenant 2 goes away. */
    private static void closingWhileASpawnWaitsForRoomSpawnsAndEvictsNothing(boolean shutdown) throws Exception {
        WalRedoConfig cfg =
                config(Fault.DELAY_US.args(500_000)).maxLiveSidecars(1).build();
        WalRedoManager m = WalRedoManager.create(cfg);
        try {
            m.ping(tenant(1), PG);
            int busyPid = sidecarPid(m, tenant(1));
            AtomicReference<Object> busy = new AtomicReference<>();
            Thread busyCaller = Thread.ofVirtual().start(() -> {
                try {
                    busy.set(m.redo(tenant(1), request(1), AttemptType.GC_COMPACTION));
                } catch (Throwable t) {
                    busy.set(t);
                }
            });
            Fixtures.await(
                    "tenant 1 busy",
                    Duration.ofSeconds(10),
                    () -> m.status().stream().anyMatch(st -> st.inFlight() == 1));
            AtomicReference<Object> waiting = new AtomicReference<>();
            Thread waiter = Thread.ofVirtual().start(() -> {
                try {
                    waiting.set(m.redo(tenant(2), request(2), AttemptType.GC_COMPACTION, Duration.ofSeconds(30)));
                } catch (Throwable t) {
                    waiting.set(t);
                }
            });
            Fixtures.await(
                    "tenant 2 waiting for room",
                    Duration.ofSeconds(10),
                    () -> waiter.getState() == Thread.State.TIMED_WAITING || waiter.getState() == Thread.State.WAITING);
            if (shutdown) {
                m.shutdown(Duration.ofSeconds(5));
            } else {
                m.detach(tenant(2), Duration.ofSeconds(5));
            }
            assertTrue(waiter.join(Duration.ofSeconds(10)));
            assertTrue(waiting.get() instanceof RedoCancelledException, String.valueOf(waiting.get()));
            assertTrue(busyCaller.join(Duration.ofSeconds(10)));
            if (!shutdown) {
                assertArrayEquals(expected(request(1)), (byte[]) busy.get());
                // Tenant 1 is idle now: a spawn for tenant 2 that outlived the detach would evict it within
                // its next rescan (50 ms). Watch for a full second.
                long end = System.nanoTime() + Duration.ofSeconds(1).toNanos();
                while (System.nanoTime() - end < 0) {
                    assertEquals(1, m.metrics().sidecarsStarted(), "a sidecar was started after detach returned");
                    assertEquals(busyPid, sidecarPid(m, tenant(1)));
                    java.util.concurrent.locks.LockSupport.parkNanos(
                            java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(20));
                }
                assertEquals(0, m.metrics().sidecarsKilled().get(KillCause.EVICT));
            }
            assertEquals(
                    1,
                    m.metrics().sidecarsStarted(),
                    "a sidecar was started after " + (shutdown ? "shutdown" : "detach"));
        } finally {
            m.close();
        }
    }

    @Test
    void detachWhileASpawnWaitsForRoomSpawnsAndEvictsNothing() throws Exception {
        closingWhileASpawnWaitsForRoomSpawnsAndEvictsNothing(false);
    }

    @Test
    void shutdownWhileASpawnWaitsForRoomSpawnsNothing() throws Exception {
        closingWhileASpawnWaitsForRoomSpawnsAndEvictsNothing(true);
    }

    /**
     * A request that creates a new slot for the tenant while detach drains the old ones (here for a second
     * PostgreSQL version) is refused like any other, and no sidecar of the tenant outlives detach; a request after
     * detach returned starts afresh. Failed before: detach closed only the slots that existed when it began, so the
     * request was served and its sidecar was still alive after detach returned.
     */
    @Test
    void aRequestCreatingASlotDuringDetachIsRefusedAndNothingOutlivesIt() throws Exception {
        TenantShardId t = tenant(61);
        WalRedoConfig cfg = config(Fault.DELAY_US.args(1_500_000))
                .redoBinary(15, FakeRedoModel.binary())
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.prewarm(t, PG);
            Thread slow = Thread.ofVirtual().start(() -> {
                try {
                    m.redo(t, request(1), AttemptType.GC_COMPACTION);
                } catch (WalRedoException ignored) {
                    // Its outcome is not the point; it keeps detach waiting.
                }
            });
            Fixtures.await(
                    "a request in flight",
                    Duration.ofSeconds(10),
                    () -> m.status().stream().anyMatch(s -> s.inFlight() == 1));
            Thread detacher = Thread.ofVirtual().start(() -> m.detach(t, Duration.ofSeconds(20)));
            Fixtures.await("detach has closed the tenant's slot", Duration.ofSeconds(10), () -> {
                try {
                    m.prewarm(t, PG);
                    return false;
                } catch (RedoCancelledException e) {
                    return true;
                } catch (WalRedoException e) {
                    return false;
                }
            });
            assertThrows(RedoCancelledException.class, () -> m.prewarm(t, 15));
            assertTrue(detacher.isAlive(), "detach still waits for the request in flight");
            assertTrue(detacher.join(Duration.ofSeconds(30)) && slow.join(Duration.ofSeconds(30)));
            assertTrue(
                    m.status().stream().noneMatch(s -> s.tenant().equals(t)),
                    "a sidecar of the detached tenant outlived detach: " + m.status());
            m.prewarm(t, 15);
            assertTrue(m.status().stream().anyMatch(s -> s.tenant().equals(t) && s.pgVersion() == 15));
        }
    }

    /**
     * A spawn that evicted an idle sidecar, and whose unit was then taken by another tenant's spawn before it could
     * claim it, evicts another idle sidecar instead of waiting out its deadline. The evicting thread is held in the
     * EVICT listener call (which runs on it) until the other spawn has taken the unit. Failed before: the spawn
     * waited its whole 3 s and failed with CapacityExhaustedException ("none was idle") beside an idle sidecar.
     */
    @Test
    void aSpawnWhoseEvictedUnitWasTakenEvictsAgain() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        AtomicBoolean armed = new AtomicBoolean();
        WalRedoMetricsListener holdFirstEviction = new WalRedoMetricsListener() {
            @Override
            public void sidecarKilled(TenantShardId t, int pid, KillCause cause) {
                if (cause == KillCause.EVICT && armed.compareAndSet(true, false)) {
                    try {
                        hold.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
        };
        AtomicLong clock = new AtomicLong();
        WalRedoConfig cfg = config().maxLiveSidecars(2)
                .idleTimeout(Duration.ofSeconds(100))
                .housekeepingPeriod(Duration.ofSeconds(100))
                .nanoClock(clock::get)
                .metricsListener(holdFirstEviction)
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.ping(tenant(1), PG);
            clock.addAndGet(1000);
            m.ping(tenant(2), PG);
            clock.addAndGet(1000);
            int first = sidecarPid(m, tenant(1));
            armed.set(true);
            AtomicReference<Object> third = new AtomicReference<>();
            Thread c3 = Thread.ofVirtual().start(() -> {
                try {
                    third.set(m.redo(tenant(3), request(3), AttemptType.GC_COMPACTION, Duration.ofSeconds(3)));
                } catch (Throwable e) {
                    third.set(e);
                }
            });
            awaitReaped(first);
            m.ping(tenant(4), PG);
            hold.countDown();
            assertTrue(c3.join(Duration.ofSeconds(30)));
            assertTrue(third.get() instanceof byte[], String.valueOf(third.get()));
            assertArrayEquals(expected(request(3)), (byte[]) third.get());
            assertEquals(2L, m.metrics().sidecarsKilled().get(KillCause.EVICT));
        }
    }

    /**
     * A sidecar that died on its own is reaped first (its unit goes back) and booked as killed up to a second later,
     * once its crash report is in; shutdown (and detach) must not return in between, or the listener, JFR and the
     * tenant's back-off hear of the death after the manager is gone. Failed before: no sidecarKilled when shutdown
     * returned, one (ERROR) a moment later.
     */
    @Test
    void aDeathNobodyCausedIsBookedBeforeShutdownReturns() throws Exception {
        List<String> kills = new java.util.concurrent.CopyOnWriteArrayList<>();
        WalRedoMetricsListener listener = new WalRedoMetricsListener() {
            @Override
            public void sidecarKilled(TenantShardId t, int pid, KillCause cause) {
                kills.add(pid + " " + cause);
            }
        };
        WalRedoManager m =
                WalRedoManager.create(config().metricsListener(listener).build());
        m.prewarm(tenant(62), PG);
        int pid = sidecarPid(m, tenant(62));
        ProcessHandle.of(pid).orElseThrow().destroyForcibly();
        Fixtures.await(
                "reaped: its unit is back",
                Duration.ofSeconds(10),
                () -> m.metrics().liveSidecars() == 0);
        m.shutdown(Duration.ofSeconds(5));
        assertEquals(List.of(pid + " ERROR"), List.copyOf(kills));
    }
}
