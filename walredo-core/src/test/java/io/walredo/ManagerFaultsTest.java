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

import io.walredo.testing.FakeRedoModel.Fault;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Every fault mode of the fake binary: a typed error naming tenant and pid, the pid reaped, a respawn. */
@Timeout(120)
class ManagerFaultsTest {
    private static final TenantShardId T = tenant(42);

    /** Runs requests 1..n-1 fine, returns the exception of request n. */
    private static <E extends WalRedoException> E failOnNth(WalRedoManager m, int n, Class<E> type,
            AttemptType attempt, Duration timeout) throws Exception {
        for (int i = 1; i < n; i++) {
            assertArrayEquals(expected(request(i)), m.redo(T, request(i), attempt, timeout));
        }
        return assertThrows(type, () -> m.redo(T, request(n), attempt, timeout));
    }

    private static void assertNamesTenantAndPid(WalRedoException e, int pid) {
        assertEquals(T, e.tenant());
        assertEquals(pid, e.pid().orElseThrow());
        assertTrue(e.getMessage().contains(T.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("pid " + pid), e.getMessage());
    }

    @Test
    void crashIsReportedWithTheSignalAndTheNextRequestRespawns() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.CRASH_AFTER.args(4)).build())) {
            m.redo(T, request(1), AttemptType.GC_COMPACTION);
            int pid = sidecarPid(m, T);
            SidecarCrashedException e = failOnNth(m, 3, SidecarCrashedException.class, AttemptType.GC_COMPACTION,
                    Duration.ofSeconds(20));
            assertNamesTenantAndPid(e, pid);
            assertTrue(e.exitStatus().orElseThrow().contains("SIGSEGV"), e.getMessage());
            assertEquals(java.util.OptionalInt.of(11), e.signal(), "the signal without parsing text");
            assertTrue(e.exitCode().isEmpty());
            assertFalse(e.coreDumped());
            awaitReaped(pid);
            assertArrayEquals(expected(request(4)), m.redo(T, request(4), AttemptType.GC_COMPACTION));
            assertNotEquals(pid, sidecarPid(m, T));
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.ERROR));
        }
    }

    @Test
    void readPageRetriesACrashOnAFreshSidecar() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.CRASH_AFTER.args(2)).build())) {
            assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.READ_PAGE));
            assertArrayEquals(expected(request(2)), m.redo(T, request(2), AttemptType.READ_PAGE));
            assertEquals(1, m.metrics().retries());
            assertEquals(2, m.metrics().sidecarsStarted());
        }
    }

    @Test
    void exitIsReportedWithTheExitCode() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.EXIT_AFTER.args(2)).build())) {
            m.redo(T, request(1), AttemptType.GC_COMPACTION);
            int pid = sidecarPid(m, T);
            SidecarCrashedException e = assertThrows(SidecarCrashedException.class,
                    () -> m.redo(T, request(2), AttemptType.GC_COMPACTION));
            assertNamesTenantAndPid(e, pid);
            assertEquals("exit code 1", e.exitStatus().orElseThrow());
            assertEquals(java.util.OptionalInt.of(1), e.exitCode());
            assertTrue(e.signal().isEmpty());
            awaitReaped(pid);
        }
    }

    @Test
    void garbageIsAProtocolError() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.GARBAGE_AFTER.args(1)).build())) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            ProtocolException e = assertThrows(ProtocolException.class,
                    () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
            assertNamesTenantAndPid(e, pid);
            assertTrue(e.getMessage().contains("100 of 8192"), e.getMessage());
            awaitReaped(pid);
        }
    }

    @Test
    void exitMidPageIsAProtocolError() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.EXIT_MID_PAGE.args(1)).build())) {
            ProtocolException e = assertThrows(ProtocolException.class,
                    () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
            assertTrue(e.getMessage().contains("4096 of 8192"), e.getMessage());
            awaitReaped(e.pid().orElseThrow());
        }
    }

    @Test
    void hungSidecarIsKilledAfterStallTimeoutAndTheNextRequestRespawns() throws Exception {
        WalRedoConfig cfg = config(Fault.HANG_AFTER.args(2)).stallTimeout(Duration.ofMillis(300)).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.redo(T, request(1), AttemptType.GC_COMPACTION);
            int pid = sidecarPid(m, T);
            RedoTimeoutException e = assertThrows(RedoTimeoutException.class,
                    () -> m.redo(T, request(2), AttemptType.GC_COMPACTION, Duration.ofSeconds(20)));
            assertNamesTenantAndPid(e, pid);
            assertTrue(e.getMessage().contains("made no progress for stallTimeout"), e.getMessage());
            awaitReaped(pid);
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
            assertArrayEquals(expected(request(3)), m.redo(T, request(3), AttemptType.READ_PAGE));
            assertNotEquals(pid, sidecarPid(m, T));
        }
    }

    @Test
    void readPageRetriesAStalledSidecarOnAFreshOne() throws Exception {
        WalRedoConfig cfg = config(Fault.HANG_AFTER.args(1)).stallTimeout(Duration.ofMillis(200)).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            // Every sidecar hangs on its first G: READ_PAGE's two retries each meet a fresh one that stalls too.
            RedoTimeoutException e = assertThrows(RedoTimeoutException.class,
                    () -> m.redo(T, request(1), AttemptType.READ_PAGE, Duration.ofSeconds(20)));
            assertTrue(e.getMessage().contains("made no progress"), e.getMessage());
            assertEquals(2, m.metrics().retries());
            assertEquals(3, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
        }
    }

    @Test
    void callerDeadlineOnAHungSidecarLeavesItToTheStallLimit() throws Exception {
        WalRedoConfig cfg = config(Fault.HANG_AFTER.args(2)).stallTimeout(Duration.ofSeconds(2)).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.redo(T, request(1), AttemptType.READ_PAGE);
            int pid = sidecarPid(m, T);
            RedoTimeoutException e = assertThrows(RedoTimeoutException.class,
                    () -> m.redo(T, request(2), AttemptType.READ_PAGE, Duration.ofMillis(100)));
            assertNamesTenantAndPid(e, pid);
            assertTrue(e.getMessage().contains("deadline passed"), e.getMessage());
            assertEquals(0, m.metrics().sidecarsKilled().getOrDefault(KillCause.TIMEOUT, 0L),
                    "a caller's deadline alone kills nothing");
            assertEquals(pid, sidecarPid(m, T));
            // The abandoned request's answer never comes: the drainer's stall limit retires the sidecar.
            awaitReaped(pid);
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
        }
    }

    @Test
    void partialAnswerThenHangIsKilledAfterStallTimeout() throws Exception {
        WalRedoConfig cfg = config(Fault.PARTIAL_AFTER.args(1)).stallTimeout(Duration.ofMillis(300)).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            RedoTimeoutException e = assertThrows(RedoTimeoutException.class,
                    () -> m.redo(T, request(1), AttemptType.GC_COMPACTION, Duration.ofSeconds(20)));
            assertTrue(e.getMessage().contains("4096 of 8192"), e.getMessage());
            awaitReaped(e.pid().orElseThrow());
        }
    }

    @Test
    void sidecarThatStopsReadingTimesTheWriterOutAndIsKilledAfterStallTimeout() throws Exception {
        WalRedoConfig cfg = config(Fault.NO_READ.args()).stallTimeout(Duration.ofMillis(500)).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            RedoRequest big = request(1, 32, 16 * 1024); // 512 KiB: more than the pipe holds
            RedoTimeoutException e = assertThrows(RedoTimeoutException.class,
                    () -> m.redo(T, big, AttemptType.READ_PAGE, Duration.ofMillis(300)));
            assertTrue(e.getMessage().contains("stdin"), e.getMessage());
            // The caller gave up half-way; the rest is written in the background until the stall limit.
            awaitReaped(e.pid().orElseThrow());
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
        }
    }

    @Test
    void delayedAnswersStillArrive() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.DELAY_US.args(20_000)).build())) {
            assertArrayEquals(expected(request(5)), m.redo(T, request(5), AttemptType.GC_COMPACTION));
        }
    }

    @Test
    void binaryThatDiesAtOnceBacksOffInsteadOfSpawningInALoop() throws Exception {
        WalRedoConfig cfg = config(Fault.EXIT_AT_START.args())
                .spawnBackoff(Duration.ofSeconds(30), Duration.ofSeconds(60)).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            // The first caller either saw the death itself (crash) or arrived just after it (back-off); either
            // way the error quotes the exit status and the sidecar's last stderr line.
            WalRedoException e = assertThrows(WalRedoException.class,
                    () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
            assertTrue(e instanceof SidecarCrashedException || e instanceof SpawnFailedException, e.toString());
            assertTrue(e.getMessage().contains("exit code 3"), e.getMessage());
            assertTrue(e.getMessage().contains("last stderr"), "the fake's stderr line is in the error: " + e.getMessage());
            Fixtures.await("crash accounted: " + m.metrics(), Duration.ofSeconds(10),
                    () -> m.metrics().sidecarsKilled().get(KillCause.ERROR) == 1);
            long started = m.metrics().sidecarsStarted();
            for (int i = 0; i < 20; i++) {
                SpawnFailedException b = assertThrows(SpawnFailedException.class,
                        () -> m.redo(T, request(2), AttemptType.READ_PAGE, Duration.ofSeconds(1)));
                assertTrue(b.getMessage().contains("backing off"), b.getMessage());
            }
            assertEquals(started, m.metrics().sidecarsStarted(), "no spawn while backing off");
        }
    }

    @Test
    void stderrLinesAreLoggedAndKeptForErrors() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(
                config(List.of("--stderr-lines", "5", "--exit-after", "1")).build())) {
            SidecarCrashedException e = assertThrows(SidecarCrashedException.class,
                    () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
            assertTrue(e.stderrTail().stream().anyMatch(l -> l.contains("registered custom resource manager")),
                    e.getMessage());
            Fixtures.await("5 lines counted", Duration.ofSeconds(10), () -> m.metrics().stderrLinesLogged() >= 5);
        }
    }

    @Test
    void stderrRateLimitCountsSuppressedLines() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.STDERR_LINES.args(500))
                .stderrLimits(256, 1, 4).build())) {
            m.ping(T, PG);
            Fixtures.await("500 lines seen", Duration.ofSeconds(10),
                    () -> m.metrics().stderrLinesLogged() + m.metrics().stderrLinesSuppressed() == 500);
            assertTrue(m.metrics().stderrLinesSuppressed() >= 400, "rate limit: " + m.metrics());
        }
    }

    @Test
    void hundredMegabytesOfStderrWithoutNewlineCostBoundedMemory() throws Exception {
        long flood = 100L << 20;
        try (WalRedoManager m = WalRedoManager.create(config(Fault.STDERR_FLOOD_NONL.args(flood))
                .stderrLimits(4096, 50, 4).stderrBytesPerSecond(Integer.MAX_VALUE).build())) {
            assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.GC_COMPACTION));
            int pid = sidecarPid(m, T);
            long before = usedHeap();
            // Kill it: the drainer emits the (cut) line at EOF.
            m.detach(T);
            awaitReaped(pid);
            Fixtures.await("the cut line is counted", Duration.ofSeconds(30),
                    () -> m.metrics().stderrLinesLogged() + m.metrics().stderrLinesSuppressed() >= 1);
            assertTrue(usedHeap() - before < (flood / 4), "stderr flood must not be buffered");
        }
    }

    /**
     * A sidecar flooding stderr is read no faster than stderrBytesPerSecond: it blocks on its own stderr and its
     * request times out; afterwards another tenant is served. (Healthy tenants served during a flood are
     * HostileSidecarTest's concurrent cases.) The bound is checked against the time measured since before the
     * spawn, so a slow machine can only make it easier to meet.
     */
    @Test
    void stderrFloodIsReadNoFasterThanStderrBytesPerSecond(@TempDir Path dir) throws Exception {
        int rate = 64 << 10;
        long burst = 1 << 20; // documented: 1 MiB or one second's worth, whichever is more
        TenantShardId flooder = tenant(43);
        Path flooding = Fixtures.wrapper(dir, "flood.sh", Fault.STDERR_FLOOD.args(10L << 20));
        try (WalRedoManager m = WalRedoManager.create(config().redoBinary(PG + 1, flooding)
                .redoTimeout(Duration.ofSeconds(5)).stderrLimits(4096, 50, 4).stderrBytesPerSecond(rate).build())) {
            long start = System.nanoTime();
            // The fake floods before it reads stdin, so this times out.
            assertThrows(RedoTimeoutException.class, () -> m.ping(flooder, PG + 1));
            // The fake ends every 100th byte with a newline: lines counted = bytes read / 100.
            long beyondBurst = burst / 100 + 1000;
            Fixtures.await("the drainer reads past its burst", Duration.ofSeconds(60),
                    () -> lines(m) >= beyondBurst);
            long lines = lines(m);
            double seconds = (System.nanoTime() - start) / 1e9;
            long allowedBytes = burst + (long) (rate * seconds) + 4096;
            assertTrue(lines <= allowedBytes / 100 + 1, lines + " lines (" + lines * 100 + " bytes) read in "
                    + seconds + " s; at most " + allowedBytes + " bytes allowed");
            // The manager still serves another tenant.
            TenantShardId other = tenant(44);
            assertArrayEquals(expected(request(2)), m.redo(other, request(2), AttemptType.GC_COMPACTION,
                    Duration.ofSeconds(20)));
        }
    }

    private static long lines(WalRedoManager m) {
        return m.metrics().stderrLinesLogged() + m.metrics().stderrLinesSuppressed();
    }

    private static long usedHeap() {
        Runtime rt = Runtime.getRuntime();
        System.gc();
        return rt.totalMemory() - rt.freeMemory();
    }

    @Test
    void sidecarIgnoringSigtermIsStillQuiescedAndReaped() throws Exception {
        Duration idle = Duration.ofSeconds(100);
        java.util.concurrent.atomic.AtomicLong clock = new java.util.concurrent.atomic.AtomicLong(1);
        WalRedoConfig cfg = config(Fault.IGNORE_SIGTERM.args()).idleTimeout(idle).housekeepingPeriod(idle)
                .nanoClock(clock::get).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            clock.addAndGet(idle.toNanos());
            m.sweepNow();
            awaitReaped(pid);
            assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.QUIESCE));
            assertTrue(m.status().isEmpty());
        }
    }

    @Test
    void deadIdleSidecarLeavesRotationAtOnce() throws Exception {
        // The grandchild holds every pipe, so the death shows only through the pidfd, not through EOF or EPIPE.
        try (WalRedoManager m = WalRedoManager.create(config(Fault.SPAWN_GRANDCHILD.args()).build())) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            try {
                ProcessHandle.of(pid).orElseThrow().destroyForcibly();
                awaitReaped(pid);
                // A ping has no retries: it must run on a fresh sidecar, not fail for a death that came before it.
                m.ping(T, PG);
                assertNotEquals(pid, sidecarPid(m, T));
                assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.GC_COMPACTION));
            } finally {
                killGrandchildren();
            }
        }
    }

    private static void killGrandchildren() throws java.io.IOException {
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                try {
                    String cmdline = Files.readString(p.resolve("cmdline"));
                    if (cmdline.contains("--spawn-grandchild") && cmdline.contains(T.toString())) {
                        ProcessHandle.of(Long.parseLong(p.getFileName().toString()))
                                .ifPresent(ProcessHandle::destroyForcibly);
                    }
                } catch (java.io.IOException | RuntimeException notAProcess) {
                    // not a pid directory, or exited meanwhile
                }
            }
        }
    }

    @Test
    void grandchildHoldingThePipesDoesNotHangKillOrReap() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.SPAWN_GRANDCHILD.args()).build())) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            List<Long> grandchildren = new ArrayList<>();
            Fixtures.await("grandchild forked", Duration.ofSeconds(10), () -> {
                grandchildren.clear();
                ProcessHandle.of(pid).ifPresent(p -> p.children().forEach(c -> grandchildren.add(c.pid())));
                return !grandchildren.isEmpty();
            });
            try {
                m.detach(T, Duration.ofSeconds(2));
                awaitReaped(pid);
                assertTrue(m.status().isEmpty());
            } finally {
                for (long g : grandchildren) {
                    ProcessHandle.of(g).ifPresent(ProcessHandle::destroyForcibly);
                }
            }
        }
    }

    @Test
    void vanillaPostgresWithoutWalRedoSupportGivesAClearErrorNotAHang() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.NO_WALREDO_SUPPORT.args()).build())) {
            SidecarCrashedException e = assertThrows(SidecarCrashedException.class, () -> m.ping(T, PG));
            assertTrue(e.getMessage().contains("exit code 1"), e.getMessage());
        }
    }

    @Test
    void oneHungTenantNeverDelaysAnother(@TempDir Path dir) throws Exception {
        Path hanging = Fixtures.wrapper(dir, "hang.sh", Fault.HANG_AFTER.args(1));
        WalRedoConfig cfg = config().redoBinary(15, hanging).build();
        TenantShardId a = tenant(500);
        TenantShardId b = tenant(501);
        RedoRequest aReq = RedoRequest.builder(15, request(1).tag(), request(1).lsn())
                .addRecords(request(1).records()).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            List<Thread> aCallers = new ArrayList<>();
            AtomicReference<Throwable> aResult = new AtomicReference<>();
            for (int i = 0; i < 10; i++) {
                aCallers.add(Thread.ofVirtual().start(() -> {
                    try {
                        m.redo(a, aReq, AttemptType.GC_COMPACTION, Duration.ofSeconds(60));
                    } catch (Throwable t) {
                        aResult.compareAndSet(null, t);
                    }
                }));
            }
            Fixtures.await("tenant A's sidecar is hung with requests in flight", Duration.ofSeconds(10),
                    () -> m.status().stream().anyMatch(s -> s.tenant().equals(a) && s.inFlight() == 10));
            for (int i = 0; i < 1000; i++) {
                RedoRequest r = request(i);
                assertArrayEquals(expected(r), m.redo(b, r, AttemptType.GC_COMPACTION));
            }
            assertTrue(aCallers.stream().allMatch(Thread::isAlive), "A's callers are still waiting");
            m.detach(a, Duration.ofMillis(100));
            for (Thread t : aCallers) {
                assertTrue(t.join(Duration.ofSeconds(10)));
            }
            assertTrue(aResult.get() instanceof RedoCancelledException, String.valueOf(aResult.get()));
        }
    }

    @Test
    void noSidecarEverSeesAnotherSidecarsFdsOrTheJvms() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config(Fault.REPORT_FDS.args()).build())) {
            m.ping(tenant(1), PG);
            m.ping(tenant(2), PG);
            for (SidecarStatus s : m.status()) {
                Path fdDir = Path.of("/proc/" + s.pid() + "/fd");
                try (var fds = Files.list(fdDir)) {
                    assertEquals(List.of("0", "1", "2"), fds.map(p -> p.getFileName().toString()).sorted().toList(),
                            "sidecar " + s.pid() + " holds exactly fds 0, 1, 2");
                }
            }
        }
    }
}
