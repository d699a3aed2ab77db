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

import io.walredo.testing.FakeFault;
import io.walredo.testing.FakeRedo;
import io.walredo.testing.FakeRedoModel.Fault;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every fault mode of the fake binary: a typed error naming tenant and pid, the pid reaped, a respawn. Managers come
 * from walredo-testing's {@code @FakeRedo} where the fault and settings fit the annotation; the tests that need a
 * wrapper script or a hand-driven clock build their own.
 */
@Timeout(120)
class ManagerFaultsTest {
    private static final TenantShardId T = tenant(42);
    private static final long FLOOD = 100L << 20;

    /** Spawn back-off long enough that no second spawn happens during the test. */
    static final class LongBackoff implements Consumer<WalRedoConfig.Builder> {
        @Override
        public void accept(WalRedoConfig.Builder b) {
            b.spawnBackoff(Duration.ofSeconds(30), Duration.ofSeconds(60));
        }
    }

    /** One stderr line a second, so most of a burst is suppressed. */
    static final class TightStderrLimits implements Consumer<WalRedoConfig.Builder> {
        @Override
        public void accept(WalRedoConfig.Builder b) {
            b.stderrLimits(256, 1, 4);
        }
    }

    /** Stderr read as fast as it comes, so a {@link #FLOOD} is drained within the test. */
    static final class UnthrottledStderr implements Consumer<WalRedoConfig.Builder> {
        @Override
        public void accept(WalRedoConfig.Builder b) {
            b.stderrLimits(4096, 50, 4).stderrBytesPerSecond(Integer.MAX_VALUE);
        }
    }

    /** Runs requests 1..n-1 fine, returns the exception of request n. */
    private static <E extends WalRedoException> E failOnNth(
            WalRedoManager m, int n, Class<E> type, AttemptType attempt, Duration timeout) throws Exception {
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
    void crashIsReportedWithTheSignalAndTheNextRequestRespawns(
            @FakeRedo(faults = @FakeFault(value = Fault.CRASH_AFTER, arg = 4)) WalRedoManager m) throws Exception {
        m.redo(T, request(1), AttemptType.GC_COMPACTION);
        int pid = sidecarPid(m, T);
        SidecarCrashedException e =
                failOnNth(m, 3, SidecarCrashedException.class, AttemptType.GC_COMPACTION, Duration.ofSeconds(20));
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

    @Test
    void readPageRetriesACrashOnAFreshSidecar(
            @FakeRedo(faults = @FakeFault(value = Fault.CRASH_AFTER, arg = 2)) WalRedoManager m) throws Exception {
        assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.READ_PAGE));
        assertArrayEquals(expected(request(2)), m.redo(T, request(2), AttemptType.READ_PAGE));
        assertEquals(1, m.metrics().retries());
        assertEquals(2, m.metrics().sidecarsStarted());
    }

    @Test
    void exitIsReportedWithTheExitCode(
            @FakeRedo(faults = @FakeFault(value = Fault.EXIT_AFTER, arg = 2)) WalRedoManager m) throws Exception {
        m.redo(T, request(1), AttemptType.GC_COMPACTION);
        int pid = sidecarPid(m, T);
        SidecarCrashedException e =
                assertThrows(SidecarCrashedException.class, () -> m.redo(T, request(2), AttemptType.GC_COMPACTION));
        assertNamesTenantAndPid(e, pid);
        assertEquals("exit code 1", e.exitStatus().orElseThrow());
        assertEquals(java.util.OptionalInt.of(1), e.exitCode());
        assertTrue(e.signal().isEmpty());
        awaitReaped(pid);
    }

    @Test
    void garbageIsAProtocolError(@FakeRedo(faults = @FakeFault(value = Fault.GARBAGE_AFTER, arg = 1)) WalRedoManager m)
            throws Exception {
        m.ping(T, PG);
        int pid = sidecarPid(m, T);
        ProtocolException e =
                assertThrows(ProtocolException.class, () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
        assertNamesTenantAndPid(e, pid);
        assertTrue(e.getMessage().contains("100 of 8192"), e.getMessage());
        awaitReaped(pid);
    }

    @Test
    void exitMidPageIsAProtocolError(
            @FakeRedo(faults = @FakeFault(value = Fault.EXIT_MID_PAGE, arg = 1)) WalRedoManager m) throws Exception {
        ProtocolException e =
                assertThrows(ProtocolException.class, () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
        assertTrue(e.getMessage().contains("4096 of 8192"), e.getMessage());
        awaitReaped(e.pid().orElseThrow());
    }

    @Test
    void hungSidecarIsKilledAfterStallTimeoutAndTheNextRequestRespawns(
            @FakeRedo(faults = @FakeFault(value = Fault.HANG_AFTER, arg = 2), stallTimeout = "PT0.3S") WalRedoManager m)
            throws Exception {
        m.redo(T, request(1), AttemptType.GC_COMPACTION);
        int pid = sidecarPid(m, T);
        RedoTimeoutException e = assertThrows(
                RedoTimeoutException.class,
                () -> m.redo(T, request(2), AttemptType.GC_COMPACTION, Duration.ofSeconds(20)));
        assertNamesTenantAndPid(e, pid);
        assertTrue(e.getMessage().contains("made no progress for stallTimeout"), e.getMessage());
        awaitReaped(pid);
        assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
        assertArrayEquals(expected(request(3)), m.redo(T, request(3), AttemptType.READ_PAGE));
        assertNotEquals(pid, sidecarPid(m, T));
    }

    @Test
    void readPageRetriesAStalledSidecarOnAFreshOne(
            @FakeRedo(faults = @FakeFault(value = Fault.HANG_AFTER, arg = 1), stallTimeout = "PT0.2S") WalRedoManager m)
            throws Exception {
        // Every sidecar hangs on its first G: READ_PAGE's two retries each meet a fresh one that stalls too.
        RedoTimeoutException e = assertThrows(
                RedoTimeoutException.class, () -> m.redo(T, request(1), AttemptType.READ_PAGE, Duration.ofSeconds(20)));
        assertTrue(e.getMessage().contains("made no progress"), e.getMessage());
        assertEquals(2, m.metrics().retries());
        assertEquals(3, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
    }

    @Test
    void callerDeadlineOnAHungSidecarLeavesItToTheStallLimit(
            @FakeRedo(faults = @FakeFault(value = Fault.HANG_AFTER, arg = 2), stallTimeout = "PT2S") WalRedoManager m)
            throws Exception {
        m.redo(T, request(1), AttemptType.READ_PAGE);
        int pid = sidecarPid(m, T);
        RedoTimeoutException e = assertThrows(
                RedoTimeoutException.class, () -> m.redo(T, request(2), AttemptType.READ_PAGE, Duration.ofMillis(100)));
        assertNamesTenantAndPid(e, pid);
        assertTrue(e.getMessage().contains("deadline passed"), e.getMessage());
        assertEquals(
                0,
                m.metrics().sidecarsKilled().getOrDefault(KillCause.TIMEOUT, 0L),
                "a caller's deadline alone kills nothing");
        assertEquals(pid, sidecarPid(m, T));
        // The abandoned request's answer never comes: the drainer's stall limit retires the sidecar.
        awaitReaped(pid);
        assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
    }

    @Test
    void partialAnswerThenHangIsKilledAfterStallTimeout(
            @FakeRedo(faults = @FakeFault(value = Fault.PARTIAL_AFTER, arg = 1), stallTimeout = "PT0.3S")
                    WalRedoManager m)
            throws Exception {
        RedoTimeoutException e = assertThrows(
                RedoTimeoutException.class,
                () -> m.redo(T, request(1), AttemptType.GC_COMPACTION, Duration.ofSeconds(20)));
        assertTrue(e.getMessage().contains("4096 of 8192"), e.getMessage());
        awaitReaped(e.pid().orElseThrow());
    }

    @Test
    void sidecarThatStopsReadingTimesTheWriterOutAndIsKilledAfterStallTimeout(
            @FakeRedo(faults = @FakeFault(Fault.NO_READ), stallTimeout = "PT0.5S") WalRedoManager m) throws Exception {
        RedoRequest big = request(1, 32, 16 * 1024); // 512 KiB: more than the pipe holds
        RedoTimeoutException e = assertThrows(
                RedoTimeoutException.class, () -> m.redo(T, big, AttemptType.READ_PAGE, Duration.ofMillis(300)));
        assertTrue(e.getMessage().contains("stdin"), e.getMessage());
        // The caller gave up half-way; the rest is written in the background until the stall limit.
        awaitReaped(e.pid().orElseThrow());
        assertEquals(1, m.metrics().sidecarsKilled().get(KillCause.TIMEOUT));
    }

    @Test
    void delayedAnswersStillArrive(
            @FakeRedo(faults = @FakeFault(value = Fault.DELAY_US, arg = 20_000)) WalRedoManager m) throws Exception {
        assertArrayEquals(expected(request(5)), m.redo(T, request(5), AttemptType.GC_COMPACTION));
    }

    @Test
    void binaryThatDiesAtOnceBacksOffInsteadOfSpawningInALoop(
            @FakeRedo(faults = @FakeFault(Fault.EXIT_AT_START), configure = LongBackoff.class) WalRedoManager m)
            throws Exception {
        // The first caller either saw the death itself (crash) or arrived just after it (back-off); either
        // way the error quotes the exit status and the sidecar's last stderr line.
        WalRedoException e =
                assertThrows(WalRedoException.class, () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
        assertTrue(e instanceof SidecarCrashedException || e instanceof SpawnFailedException, e.toString());
        assertTrue(e.getMessage().contains("exit code 3"), e.getMessage());
        assertTrue(e.getMessage().contains("last stderr"), "the fake's stderr line is in the error: " + e.getMessage());
        Fixtures.await(
                "crash accounted: " + m.metrics(),
                Duration.ofSeconds(10),
                () -> m.metrics().sidecarsKilled().get(KillCause.ERROR) == 1);
        long started = m.metrics().sidecarsStarted();
        for (int i = 0; i < 20; i++) {
            SpawnFailedException b = assertThrows(
                    SpawnFailedException.class,
                    () -> m.redo(T, request(2), AttemptType.READ_PAGE, Duration.ofSeconds(1)));
            assertTrue(b.getMessage().contains("backing off"), b.getMessage());
        }
        assertEquals(started, m.metrics().sidecarsStarted(), "no spawn while backing off");
    }

    @Test
    void stderrLinesAreLoggedAndKeptForErrors(
            @FakeRedo(
                            faults = {
                                @FakeFault(value = Fault.STDERR_LINES, arg = 5),
                                @FakeFault(value = Fault.EXIT_AFTER, arg = 1)
                            })
                    WalRedoManager m)
            throws Exception {
        SidecarCrashedException e =
                assertThrows(SidecarCrashedException.class, () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
        assertTrue(
                e.stderrTail().stream().anyMatch(l -> l.contains("registered custom resource manager")),
                e.getMessage());
        Fixtures.await(
                "5 lines counted", Duration.ofSeconds(10), () -> m.metrics().stderrLinesLogged() >= 5);
    }

    @Test
    void stderrRateLimitCountsSuppressedLines(
            @FakeRedo(faults = @FakeFault(value = Fault.STDERR_LINES, arg = 500), configure = TightStderrLimits.class)
                    WalRedoManager m)
            throws Exception {
        m.ping(T, PG);
        Fixtures.await(
                "500 lines seen",
                Duration.ofSeconds(10),
                () -> m.metrics().stderrLinesLogged() + m.metrics().stderrLinesSuppressed() == 500);
        assertTrue(m.metrics().stderrLinesSuppressed() >= 400, "rate limit: " + m.metrics());
    }

    @Test
    void hundredMegabytesOfStderrWithoutNewlineCostBoundedMemory(
            @FakeRedo(
                            faults = @FakeFault(value = Fault.STDERR_FLOOD_NONL, arg = FLOOD),
                            configure = UnthrottledStderr.class)
                    WalRedoManager m)
            throws Exception {
        assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.GC_COMPACTION));
        int pid = sidecarPid(m, T);
        long before = usedHeap();
        // Kill it: the drainer emits the (cut) line at EOF.
        m.detach(T);
        awaitReaped(pid);
        Fixtures.await(
                "the cut line is counted",
                Duration.ofSeconds(30),
                () -> m.metrics().stderrLinesLogged() + m.metrics().stderrLinesSuppressed() >= 1);
        assertTrue(usedHeap() - before < (FLOOD / 4), "stderr flood must not be buffered");
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
                .redoTimeout(Duration.ofSeconds(5))
                .stderrLimits(4096, 50, 4)
                .stderrBytesPerSecond(rate)
                .build())) {
            long start = System.nanoTime();
            // The fake floods before it reads stdin, so this times out.
            assertThrows(RedoTimeoutException.class, () -> m.ping(flooder, PG + 1));
            // The fake ends every 100th byte with a newline: lines counted = bytes read / 100.
            long beyondBurst = burst / 100 + 1000;
            Fixtures.await("the drainer reads past its burst", Duration.ofSeconds(60), () -> lines(m) >= beyondBurst);
            long lines = lines(m);
            double seconds = (System.nanoTime() - start) / 1e9;
            long allowedBytes = burst + (long) (rate * seconds) + 4096;
            assertTrue(
                    lines <= allowedBytes / 100 + 1,
                    lines + " lines (" + lines * 100 + " bytes) read in " + seconds + " s; at most " + allowedBytes
                            + " bytes allowed");
            // The manager still serves another tenant.
            TenantShardId other = tenant(44);
            assertArrayEquals(
                    expected(request(2)), m.redo(other, request(2), AttemptType.GC_COMPACTION, Duration.ofSeconds(20)));
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
        WalRedoConfig cfg = config(Fault.IGNORE_SIGTERM.args())
                .idleTimeout(idle)
                .housekeepingPeriod(idle)
                .nanoClock(clock::get)
                .build();
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
    void deadIdleSidecarLeavesRotationAtOnce(@FakeRedo(faults = @FakeFault(Fault.SPAWN_GRANDCHILD)) WalRedoManager m)
            throws Exception {
        // The grandchild holds every pipe, so the death shows only through the pidfd, not through EOF or EPIPE.
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
    void grandchildHoldingThePipesDoesNotHangKillOrReap(
            @FakeRedo(faults = @FakeFault(Fault.SPAWN_GRANDCHILD)) WalRedoManager m) throws Exception {
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

    @Test
    void vanillaPostgresWithoutWalRedoSupportGivesAClearErrorNotAHang(
            @FakeRedo(faults = @FakeFault(Fault.NO_WALREDO_SUPPORT)) WalRedoManager m) throws Exception {
        SidecarCrashedException e = assertThrows(SidecarCrashedException.class, () -> m.ping(T, PG));
        assertTrue(e.getMessage().contains("exit code 1"), e.getMessage());
    }

    @Test
    void oneHungTenantNeverDelaysAnother(@TempDir Path dir) throws Exception {
        Path hanging = Fixtures.wrapper(dir, "hang.sh", Fault.HANG_AFTER.args(1));
        WalRedoConfig cfg = config().redoBinary(15, hanging).build();
        TenantShardId a = tenant(500);
        TenantShardId b = tenant(501);
        RedoRequest aReq = RedoRequest.builder(15, request(1).tag(), request(1).lsn())
                .addRecords(request(1).records())
                .build();
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
            Fixtures.await(
                    "tenant A's sidecar is hung with requests in flight",
                    Duration.ofSeconds(10),
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
    void noSidecarEverSeesAnotherSidecarsFdsOrTheJvms(@FakeRedo(faults = @FakeFault(Fault.REPORT_FDS)) WalRedoManager m)
            throws Exception {
        m.ping(tenant(1), PG);
        m.ping(tenant(2), PG);
        for (SidecarStatus s : m.status()) {
            Path fdDir = Path.of("/proc/" + s.pid() + "/fd");
            try (var fds = Files.list(fdDir)) {
                assertEquals(
                        List.of("0", "1", "2"),
                        fds.map(p -> p.getFileName().toString()).sorted().toList(),
                        "sidecar " + s.pid() + " holds exactly fds 0, 1, 2");
            }
        }
    }
}
