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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.FakeRedoModel.Fault;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Warm spare sidecars ({@link WalRedoConfig.Builder#warmSpares}), {@code prewarm} and the spawn-wait metrics. */
@Timeout(120)
class WarmSparesTest {
    private static final Duration IDLE = Duration.ofSeconds(100);
    private static final Duration WAIT = Duration.ofSeconds(20);
    /** GetPages a spare answers before it is shelved (SparePool.WARM_UP_REQUESTS blank page requests). */
    private static final int WARM_UP_GETPAGES = 3;

    /** Our live child processes running the fake without a tenant id: the spares (never fed, never named). */
    static Set<Integer> sparePids() {
        Set<Integer> out = new HashSet<>();
        for (Fixtures.Child c : Fixtures.children()) {
            if (c.state() != 'Z'
                    && c.cmdline().contains(FakeRedoModel.binary().toString())
                    && !c.cmdline().contains("--tenant-shard-id")) {
                out.add(c.pid());
            }
        }
        return out;
    }

    private static Set<Integer> withoutZombies(Set<Integer> pids) {
        pids.removeIf(pid -> Fixtures.childState(pid).map(c -> c == 'Z').orElse(true));
        return pids;
    }

    /** Our child processes that are alive (not zombies). */
    static int liveChildren() {
        return (int) Fixtures.children().stream().filter(c -> c.state() != 'Z').count();
    }

    /** A config whose clock moves only when the test moves it, and whose housekeeper never sweeps by itself. */
    private static WalRedoConfig onTheTestsClock(WalRedoConfig.Builder b, AtomicLong clock) {
        return b.idleTimeout(IDLE)
                .housekeepingPeriod(IDLE)
                .nanoClock(clock::get)
                .build();
    }

    private static void awaitReady(WalRedoManager m, int n) {
        Fixtures.await(n + " spares ready", WAIT, () -> m.metrics().spareSidecars() == n);
    }

    @Test
    void sparesAreSpawnedAtCreateAndHandedToFirstRequests() throws Exception {
        List<Object[]> assigned = new ArrayList<>();
        List<TenantShardId> startedFor = new ArrayList<>();
        WalRedoMetricsListener listener = new WalRedoMetricsListener() {
            @Override
            public synchronized void spareAssigned(TenantShardId t, int pgVersion, int pid) {
                assigned.add(new Object[] {t, pgVersion, pid});
            }

            @Override
            public synchronized void sidecarStarted(TenantShardId t, int pid, Duration latency) {
                startedFor.add(t);
            }
        };
        try (WalRedoManager m = WalRedoManager.create(
                config().warmSpares(2).metricsListener(listener).build())) {
            awaitReady(m, 2);
            // The pool counts a spare ready once its spawn returned; its process is then ours and alive unless it
            // died, which the kill counters would show.
            Fixtures.await("2 spare processes", WAIT, () -> sparePids().size() == 2);
            Set<Integer> spares = sparePids();
            assertEquals(2, spares.size(), "spare processes: " + spares);
            assertEquals(
                    0L,
                    m.metrics().sidecarsKilled().values().stream()
                            .mapToLong(Long::longValue)
                            .sum(),
                    "no spare died: " + m.metrics().sidecarsKilled());
            assertTrue(m.status().isEmpty(), "spares serve no tenant, so status() lists none");
            assertEquals(2, m.metrics().liveSidecars(), "spares count as live sidecars");

            assertArrayEquals(expected(request(1)), m.redo(tenant(1), request(1), AttemptType.READ_PAGE));
            int pid = sidecarPid(m, tenant(1));
            assertTrue(spares.contains(pid), "tenant 1 got a spare: " + pid + " not in " + spares);
            WalRedoMetrics after = m.metrics();
            assertEquals(1, after.spareHits());
            assertEquals(0, after.spareMisses());
            assertEquals(0, after.spawnWait().count(), "a request handed a spare does not wait for a spawn");
            synchronized (listener) {
                assertEquals(1, assigned.size());
                assertEquals(tenant(1), assigned.get(0)[0]);
                assertEquals(PG, assigned.get(0)[1]);
                assertEquals(pid, assigned.get(0)[2]);
                assertEquals(null, startedFor.get(0), "a spare is started with no tenant");
            }
            // The pool refills in the background, with a fresh process.
            awaitReady(m, 2);
            Set<Integer> now = sparePids();
            now.remove(pid);
            assertEquals(2, now.size());
            assertFalse(now.contains(pid));
            assertEquals(3, m.metrics().liveSidecars());
        }
    }

    @Test
    void withoutSparesEveryFirstRequestWaitsForASpawnAndIsCounted() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            assertEquals(0, m.metrics().liveSidecars(), "nothing is spawned before a request");
            assertTrue(sparePids().isEmpty());
            m.redo(tenant(1), request(1), AttemptType.READ_PAGE);
            m.redo(tenant(1), request(2), AttemptType.READ_PAGE);
            WalRedoMetrics s = m.metrics();
            assertEquals(1, s.spawnWait().count(), "only the first request waited for the spawn");
            assertTrue(s.spawnWait().max().toNanos() > 0);
            assertEquals(0, s.spareHits());
            assertEquals(0, s.spareMisses(), "no misses are counted when spares are off");
            assertEquals(0, s.spareSidecars());
        }
    }

    @Test
    void concurrentFirstRequestsNeverShareASpareAndRefillStaysBounded() throws Exception {
        int tenants = 1000;
        int cap = 400;
        int pool = 4;
        AtomicInteger spareSpawns = new AtomicInteger();
        AtomicInteger spareDeaths = new AtomicInteger();
        Set<Integer> sparePids = ConcurrentHashMap.newKeySet();
        Set<Integer> tenantSpawnPids = ConcurrentHashMap.newKeySet();
        Map<Integer, TenantShardId> assignedTo = new ConcurrentHashMap<>();
        AtomicReference<String> doubleAssignment = new AtomicReference<>();
        WalRedoMetricsListener listener = new WalRedoMetricsListener() {
            @Override
            public void sidecarStarted(TenantShardId t, int pid, Duration latency) {
                if (t == null) {
                    spareSpawns.incrementAndGet();
                    sparePids.add(pid);
                } else {
                    tenantSpawnPids.add(pid);
                }
            }

            @Override
            public void spareAssigned(TenantShardId t, int pgVersion, int pid) {
                TenantShardId before = assignedTo.putIfAbsent(pid, t);
                if (before != null) {
                    doubleAssignment.compareAndSet(null, "pid " + pid + " handed to " + before + " and " + t);
                }
            }

            @Override
            public void sidecarKilled(TenantShardId t, int pid, KillCause cause) {
                if (t == null) {
                    spareDeaths.incrementAndGet();
                }
            }
        };
        Map<Integer, TenantShardId> owner = new ConcurrentHashMap<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        WalRedoConfig cfg = config().warmSpares(pool)
                .maxLiveSidecars(cap)
                .metricsListener(listener)
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            awaitReady(m, pool);
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> ts = new ArrayList<>();
            for (int i = 0; i < tenants; i++) {
                int n = i;
                ts.add(Thread.ofVirtual().start(() -> {
                    try {
                        go.await();
                        // A tenant per request, each only once: every request is a first request. The cap makes
                        // most of them evict an idle sidecar first, so the pool rarely finds room to refill.
                        assertArrayEquals(expected(request(n)), m.redo(tenant(n), request(n), AttemptType.READ_PAGE));
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }));
            }
            // The processes themselves, not the library's counter: our live (non-zombie) children, sampled throughout.
            AtomicInteger maxLive = new AtomicInteger();
            AtomicBoolean sampling = new AtomicBoolean(true);
            Thread sampler = Thread.ofPlatform().daemon().start(() -> {
                while (sampling.get()) {
                    maxLive.accumulateAndGet(liveChildren(), Math::max);
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
                }
            });
            go.countDown();
            for (Thread t : ts) {
                assertTrue(t.join(Duration.ofSeconds(90)));
            }
            sampling.set(false);
            sampler.join();
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            for (SidecarStatus s : m.status()) {
                TenantShardId before = owner.putIfAbsent(s.pid(), s.tenant());
                assertTrue(before == null, "pid " + s.pid() + " serves " + before + " and " + s.tenant());
            }
            // Over the whole run, not just the survivors: every hand-over went to one tenant, and only spares were
            // handed over (no tenant's own spawn ever came back as a spare).
            assertEquals(null, doubleAssignment.get());
            assertTrue(sparePids.containsAll(assignedTo.keySet()), "a pid handed over that was not spawned as a spare");
            for (int pid : assignedTo.keySet()) {
                assertFalse(tenantSpawnPids.contains(pid), "pid " + pid + " was a tenant's spawn and a spare");
            }
            assertEquals(assignedTo.size(), m.metrics().spareHits());
            WalRedoMetrics s = m.metrics();
            // A miss is a spawn for a tenant: a sidecar evicted before its first caller got to it (the cap is
            // tight here) costs its tenant another.
            assertTrue(
                    s.spareHits() + s.spareMisses() >= tenants,
                    "every first request is a hit or a miss: " + s.spareHits() + " + " + s.spareMisses());
            assertTrue(s.spareHits() >= pool, "the ready spares were used: " + s.spareHits());
            // Every spare spawned is one of the pool's or replaced one handed over or killed: nothing more.
            assertTrue(
                    spareSpawns.get() <= s.spareHits() + pool + spareDeaths.get(),
                    "spare spawns " + spareSpawns + " > hits " + s.spareHits() + " + pool " + pool);
            assertTrue(maxLive.get() <= cap, "live sidecar processes reached " + maxLive + ", above the cap " + cap);
        }
    }

    @Test
    void aSidecarThatServedATenantNeverReturnsToThePool() throws Exception {
        AtomicLong clock = new AtomicLong(1_000_000_000L);
        WalRedoConfig cfg = config().warmSpares(1)
                .idleTimeout(IDLE)
                .housekeepingPeriod(IDLE)
                .nanoClock(clock::get)
                .build();
        Set<Integer> served = new HashSet<>();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            for (int round = 0; round < 5; round++) {
                awaitReady(m, 1);
                TenantShardId t = tenant(round % 2);
                assertArrayEquals(expected(request(round)), m.redo(t, request(round), AttemptType.READ_PAGE));
                int pid = sidecarPid(m, t);
                assertTrue(served.add(pid), "pid " + pid + " served a tenant before");
                assertEquals(round + 1, m.metrics().spareHits());
                // Quiesce it: it is killed, never pooled again.
                clock.addAndGet(IDLE.toNanos());
                m.sweepNow();
                awaitReaped(pid);
                assertFalse(sparePids().contains(pid));
            }
            assertEquals(5, m.metrics().sidecarsKilled().get(KillCause.QUIESCE));
            assertEquals(0, m.metrics().spareMisses());
        }
    }

    @Test
    void aCrashedSidecarIsReplacedByAFreshSpareNotItself() throws Exception {
        // Every sidecar crashes on its second GetPage after the warm-up's: the first request is answered by a spare,
        // the second crashes it and is retried (READ_PAGE) on the next spare.
        try (WalRedoManager m = WalRedoManager.create(config(Fault.CRASH_AFTER.args(WARM_UP_GETPAGES + 2))
                .warmSpares(1)
                .build())) {
            awaitReady(m, 1);
            m.redo(tenant(1), request(1), AttemptType.READ_PAGE);
            int first = sidecarPid(m, tenant(1));
            awaitReady(m, 1);
            Set<Integer> next = sparePids();
            assertArrayEquals(expected(request(2)), m.redo(tenant(1), request(2), AttemptType.READ_PAGE));
            awaitReaped(first);
            int second = sidecarPid(m, tenant(1));
            assertNotEquals(first, second);
            assertTrue(next.contains(second), "the retry ran on the spare that was ready: " + second + " " + next);
            assertEquals(2, m.metrics().spareHits());
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.ERROR));
        }
    }

    @Test
    void sparesAreKilledAndReapedOnShutdownAndNotOnDetach() throws Exception {
        WalRedoManager m = WalRedoManager.create(config().warmSpares(3).build());
        awaitReady(m, 3);
        m.ping(tenant(1), PG);
        int handed = sidecarPid(m, tenant(1));
        awaitReady(m, 3);
        Set<Integer> spares = sparePids();
        spares.remove(handed);
        assertEquals(3, spares.size());
        m.detach(tenant(1));
        awaitReaped(handed);
        assertEquals(
                spares,
                withoutZombies(sparePids()),
                "detaching a tenant that holds a handed-over spare leaves " + "the pool's spares alone");
        m.shutdown(Duration.ofSeconds(10));
        for (int pid : spares) {
            assertTrue(Fixtures.childState(pid).isEmpty(), "spare " + pid + " still there after shutdown");
        }
        assertEquals(0, m.metrics().liveSidecars());
        assertEquals(3, m.metrics().sidecarsKilled().get(KillCause.SHUTDOWN));
        assertTrue(Fixtures.zombies().isEmpty());
    }

    @Test
    void sparesOfABinaryThatDiesAtStartBackOffInsteadOfLooping() throws Exception {
        AtomicLong clock = new AtomicLong(1_000_000_000L);
        WalRedoConfig cfg = onTheTestsClock(config(Fault.EXIT_AT_START.args()).warmSpares(2), clock);
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            Fixtures.await(
                    "both spares died",
                    WAIT,
                    () -> m.metrics().sidecarsKilled().get(KillCause.ERROR) == 2
                            && m.metrics().liveSidecars() == 0);
            for (int i = 0; i < 5; i++) {
                m.sweepNow();
            }
            assertEquals(2, m.metrics().sidecarsStarted(), "no respawn while the clock stands within back-off");
            clock.addAndGet(Duration.ofSeconds(1).toNanos());
            m.sweepNow();
            Fixtures.await(
                    "respawned after the back-off", WAIT, () -> m.metrics().sidecarsStarted() > 2);
            assertTrue(m.metrics().sidecarsStarted() <= 4, "at most the pool size per refill");
        }
    }

    @Test
    void aSpareThatFailsItsWarmUpIsNeverHandedOver() throws Exception {
        // Every process crashes on its last warm-up GetPage: no spare is ever shelved, they back off, and a tenant's
        // own sidecar (spawned for it, so it skips the warm-up) serves its first request.
        AtomicLong clock = new AtomicLong(1_000_000_000L);
        WalRedoConfig cfg =
                onTheTestsClock(config(Fault.CRASH_AFTER.args(WARM_UP_GETPAGES)).warmSpares(1), clock);
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            Fixtures.await(
                    "the spare died in its warm-up",
                    WAIT,
                    () -> m.metrics().sidecarsKilled().get(KillCause.ERROR) == 1
                            && m.metrics().liveSidecars() == 0);
            assertEquals(0, m.metrics().spareSidecars());
            assertArrayEquals(expected(request(1)), m.redo(tenant(1), request(1), AttemptType.READ_PAGE));
            int pid = sidecarPid(m, tenant(1));
            assertFalse(sparePids().contains(pid), "the tenant's sidecar was spawned for it");
            assertEquals(0, m.metrics().spareHits());
            assertEquals(1, m.metrics().spareMisses());
            assertEquals(2, m.metrics().sidecarsStarted(), "no spare respawned within the back-off");
        }
    }

    /**
     * A spare that does not answer its warm-up within spawnTimeout is killed (TIMEOUT) and counts toward back-off.
     * Failed before: the warm-up's timeout did not kill it, so it was dropped alive, in no shelf and no slot, holding
     * its unit under the cap, and each refill started another.
     */
    @Test
    void aSpareTooSlowToWarmUpIsKilledAndBacksOff() throws Exception {
        AtomicLong clock = new AtomicLong(1_000_000_000L);
        WalRedoConfig cfg = onTheTestsClock(
                config(Fault.STARTUP_DELAY_MS.args(5_000))
                        .spawnTimeout(Duration.ofMillis(500))
                        .warmSpares(1),
                clock);
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            Fixtures.await(
                    "the slow spare was killed",
                    WAIT,
                    () -> m.metrics().sidecarsKilled().getOrDefault(KillCause.TIMEOUT, 0L) == 1
                            && m.metrics().liveSidecars() == 0);
            Fixtures.await("no live child", WAIT, () -> liveChildren() == 0);
            for (int i = 0; i < 5; i++) {
                m.sweepNow();
            }
            assertEquals(1, m.metrics().sidecarsStarted(), "no respawn while the clock stands within back-off");
            assertEquals(0, m.metrics().spareSidecars());
        }
    }

    /**
     * A spare miss must not refill the pool ahead of the tenant's own spawn: with one unit left under the cap, the
     * refill took it and the tenant's spawn then evicted another tenant's idle sidecar, although there had been room
     * for it. Failed before: one EVICT.
     */
    @Test
    void aMissDoesNotRefillAheadOfTheTenantsOwnSpawn() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config().warmSpares(1).maxLiveSidecars(2).build())) {
            awaitReady(m, 1);
            m.ping(tenant(1), PG);
            assertEquals(1, m.metrics().liveSidecars(), "the spare was handed over; its replacement comes later");
            m.ping(tenant(2), PG);
            assertEquals(0L, m.metrics().sidecarsKilled().getOrDefault(KillCause.EVICT, 0L));
            assertEquals(2, m.status().size(), "both tenants keep their sidecars: " + m.status());
        }
    }

    @Test
    void aSpareIsEvictedFirstToMakeRoomForATenant() throws Exception {
        WalRedoConfig cfg = config().redoBinary(PG + 1, FakeRedoModel.binary())
                .warmSpares(1)
                .maxLiveSidecars(2)
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            awaitReady(m, 2);
            m.ping(tenant(1), PG);
            assertEquals(1, m.metrics().spareHits());
            // No PG spare now and no room to refill; tenant 2 needs room: the PG+1 spare goes, not tenant 1's.
            m.ping(tenant(2), PG);
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.EVICT));
            assertEquals(
                    List.of(tenant(1), tenant(2)),
                    m.status().stream().map(SidecarStatus::tenant).sorted().toList());
            assertEquals(0, m.metrics().spareSidecars());
        }
    }

    @Test
    void prewarmMakesTheSidecarLiveWithoutSendingAnything() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            m.prewarm(tenant(1), PG);
            int pid = sidecarPid(m, tenant(1));
            assertEquals(0, m.metrics().redos());
            m.prewarm(tenant(1), PG);
            assertEquals(pid, sidecarPid(m, tenant(1)), "a second prewarm finds it live");
            assertArrayEquals(expected(request(1)), m.redo(tenant(1), request(1), AttemptType.READ_PAGE));
            assertEquals(pid, sidecarPid(m, tenant(1)));
            assertEquals(0, m.metrics().spawnWait().count(), "the request found its sidecar live");
            assertThrows(IllegalArgumentException.class, () -> m.prewarm(tenant(1), PG + 7));
        }
        try (WalRedoManager m = WalRedoManager.create(config().warmSpares(1).build())) {
            awaitReady(m, 1);
            Set<Integer> spares = sparePids();
            m.prewarm(tenant(2), PG);
            assertTrue(spares.contains(sidecarPid(m, tenant(2))), "prewarm takes a ready spare");
            assertEquals(1, m.metrics().spareHits());
        }
    }

    @Test
    void configRejectsAnUnreasonablePoolSize() {
        assertThrows(
                IllegalArgumentException.class, () -> config().warmSpares(-1).build());
        assertThrows(
                IllegalArgumentException.class,
                () -> config().warmSpares(WalRedoConfig.MAX_WARM_SPARES + 1).build());
        assertEquals(0, config().build().warmSpares());
        assertTrue(config().warmSpares(2).build().toString().contains("warmSpares=2"));
    }
}
