// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.sidecarPid;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.FakeRedoModel.Fault;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every fault mode of the fake, alone and under concurrency: each call for the hostile tenant returns the exact
 * page or a typed error naming the tenant (and the pid, when a sidecar was involved); every hostile sidecar is
 * killed and reaped and the next one is a new process; healthy tenants served at the same time get every page
 * right, with no error, from the same sidecars they started with.
 *
 * <p>The hostile tenant's requests are for PostgreSQL 15, whose configured binary is a wrapper that adds the
 * fault flags; healthy tenants use PostgreSQL 16, the plain fake. So both kinds share one manager, its
 * reactor, spawner threads, housekeeper and buffer pool.
 */
@Timeout(180)
class HostileSidecarTest {
    private static final int HOSTILE_PG = 15;
    private static final List<TenantShardId> HEALTHY = List.of(tenant(901), tenant(902), tenant(903), tenant(904));
    private static final Duration SHORT = Duration.ofSeconds(1);
    private static final Duration LONG = Duration.ofSeconds(30);
    private static final Duration STALL = Duration.ofMillis(400);

    /**
     * A tenant of this invocation alone (JUnit makes a new instance per invocation): its id is on the command
     * line of every sidecar and grandchild spawned for it, so {@link #killGrandchildren} can tell this
     * invocation's grandchildren from those of cases running in parallel.
     */
    private final TenantShardId hostile = randomTenant();

    /**
     * One hostile behaviour.
     *
     * @param args the fake's fault flags
     * @param signature the error type the fault must produce at least once, or null if every page must be right
     * @param timeout each hostile call's timeout
     * @param bigRequests 512 KiB requests (more than a pipe holds), to block a writer
     * @param stderrBytesPerSecond the manager's stderr read rate
     */
    record Hostility(
            List<String> args,
            Class<? extends WalRedoException> signature,
            Duration timeout,
            boolean bigRequests,
            int stderrBytesPerSecond) {
        Hostility(
                List<String> args, Class<? extends WalRedoException> signature, Duration timeout, boolean bigRequests) {
            this(args, signature, timeout, bigRequests, WalRedoConfig.DEFAULT_STDERR_BYTES_PER_SECOND);
        }

        @Override
        public String toString() {
            return String.join(" ", args)
                    + (stderrBytesPerSecond == WalRedoConfig.DEFAULT_STDERR_BYTES_PER_SECOND
                            ? ""
                            : ", stderr read at " + stderrBytesPerSecond + " B/s");
        }
    }

    private static List<String> flags(List<String>... parts) {
        return Stream.of(parts).flatMap(List::stream).toList();
    }

    static Stream<Arguments> hostilities() {
        List<Hostility> all = List.of(
                new Hostility(Fault.CRASH_AFTER.args(2), SidecarCrashedException.class, LONG, false),
                new Hostility(Fault.EXIT_AFTER.args(2), SidecarCrashedException.class, LONG, false),
                new Hostility(Fault.GARBAGE_AFTER.args(2), ProtocolException.class, LONG, false),
                new Hostility(Fault.EXIT_MID_PAGE.args(2), ProtocolException.class, LONG, false),
                new Hostility(Fault.PARTIAL_AFTER.args(2), RedoTimeoutException.class, SHORT, false),
                new Hostility(Fault.HANG_AFTER.args(2), RedoTimeoutException.class, SHORT, false),
                new Hostility(Fault.NO_READ.args(), RedoTimeoutException.class, SHORT, true),
                new Hostility(Fault.EXIT_AT_START.args(), WalRedoException.class, LONG, false),
                new Hostility(Fault.NO_WALREDO_SUPPORT.args(), WalRedoException.class, LONG, false),
                new Hostility(
                        flags(Fault.SPAWN_GRANDCHILD.args(), Fault.EXIT_AFTER.args(2)),
                        SidecarCrashedException.class,
                        LONG,
                        false),
                new Hostility(
                        flags(Fault.SPAWN_GRANDCHILD.args(), Fault.HANG_AFTER.args(2)),
                        RedoTimeoutException.class,
                        SHORT,
                        false),
                new Hostility(
                        flags(Fault.IGNORE_SIGTERM.args(), Fault.HANG_AFTER.args(2)),
                        RedoTimeoutException.class,
                        SHORT,
                        false),
                new Hostility(Fault.IGNORE_SIGTERM.args(), null, LONG, false),
                // Read as fast as it comes (no throttle): memory stays bounded and every page is right.
                new Hostility(Fault.STDERR_FLOOD_NONL.args(100L << 20), null, LONG, false, Integer.MAX_VALUE),
                new Hostility(Fault.STDERR_FLOOD.args(10L << 20), null, LONG, false, Integer.MAX_VALUE),
                // At the default read rate the flooder blocks on stderr: its own requests time out.
                new Hostility(Fault.STDERR_FLOOD_NONL.args(100L << 20), RedoTimeoutException.class, SHORT, false),
                new Hostility(Fault.STDERR_FLOOD.args(100L << 20), RedoTimeoutException.class, SHORT, false),
                new Hostility(Fault.STDERR_LINES.args(20_000), null, LONG, false),
                new Hostility(Fault.DELAY_US.args(20_000), null, LONG, false),
                new Hostility(Fault.STARTUP_DELAY_MS.args(300), null, LONG, false));
        return all.stream().flatMap(h -> Stream.of(Arguments.of(h, false), Arguments.of(h, true)));
    }

    @ParameterizedTest(name = "{0}, concurrent: {1}")
    @MethodSource("hostilities")
    void hostileSidecarGetsATypedErrorOrTheRightPageAndOthersAreUnaffected(
            Hostility h, boolean concurrent, @TempDir Path dir) throws Exception {
        Path wrapper = Fixtures.wrapper(dir, "hostile.sh", h.args());
        int hostileCallers = concurrent ? 8 : 1;
        int hostileRounds = 3;
        WalRedoConfig cfg = config().redoBinary(HOSTILE_PG, wrapper)
                .spawnBackoff(Duration.ofMillis(10), Duration.ofMillis(50))
                .stderrBytesPerSecond(h.stderrBytesPerSecond())
                // A hung sidecar is retired by the stall limit, not by a caller's deadline.
                .stallTimeout(h.timeout().equals(SHORT) ? STALL : h.timeout())
                .build();
        Set<Integer> hostilePids = ConcurrentHashMap.newKeySet();
        Set<Integer> failedPids = ConcurrentHashMap.newKeySet();
        ConcurrentLinkedQueue<String> violations = new ConcurrentLinkedQueue<>();
        Map<String, AtomicInteger> outcomes = new ConcurrentHashMap<>();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            Map<TenantShardId, Integer> healthyPids = new ConcurrentHashMap<>();
            if (concurrent) {
                for (TenantShardId t : HEALTHY) {
                    m.ping(t, PG);
                    healthyPids.put(t, sidecarPid(m, t));
                }
            }
            List<Thread> threads = new ArrayList<>();
            for (int c = 0; c < hostileCallers; c++) {
                int caller = c;
                threads.add(Thread.ofVirtual().start(() -> {
                    for (int round = 0; round < hostileRounds; round++) {
                        RedoRequest r = hostileRequest(caller * 100 + round, h.bigRequests());
                        AttemptType attempt = round % 2 == 0 ? AttemptType.GC_COMPACTION : AttemptType.READ_PAGE;
                        m.status().stream()
                                .filter(s -> s.tenant().equals(hostile))
                                .forEach(s -> hostilePids.add(s.pid()));
                        try {
                            byte[] page = m.redo(hostile, r, attempt, h.timeout());
                            if (!Arrays.equals(expected(r), page)) {
                                violations.add("wrong page for the hostile tenant: "
                                        + FakeRedoModel.describeMismatch(expected(r), page));
                            }
                            count(outcomes, "page");
                        } catch (WalRedoException e) {
                            count(outcomes, e.getClass().getSimpleName());
                            e.pid().ifPresent(hostilePids::add);
                            if (!(e instanceof TenantOverloadedException)) {
                                // A refusal names a sidecar that is busy, not one that failed.
                                e.pid().ifPresent(failedPids::add);
                            }
                            checkNamed(e, violations);
                        } catch (Throwable t) {
                            violations.add("untyped failure: " + t);
                        }
                    }
                }));
            }
            if (concurrent) {
                for (TenantShardId t : HEALTHY) {
                    for (int c = 0; c < 2; c++) {
                        int caller = c;
                        threads.add(Thread.ofVirtual().start(() -> {
                            for (int i = 0; i < 30; i++) {
                                RedoRequest r = request(caller * 1000 + i);
                                try {
                                    byte[] page = m.redo(t, r, AttemptType.GC_COMPACTION);
                                    if (!Arrays.equals(expected(r), page)) {
                                        violations.add("wrong page for healthy tenant " + t);
                                    }
                                } catch (Throwable e) {
                                    violations.add("healthy tenant " + t + " failed: " + e);
                                }
                            }
                        }));
                    }
                }
            }
            for (Thread t : threads) {
                if (!t.join(Duration.ofSeconds(120))) {
                    fail("a caller hung: " + Arrays.toString(t.getStackTrace()));
                }
            }
            assertTrue(violations.isEmpty(), String.join("\n", violations));
            if (h.signature() == null) {
                assertEquals(Set.of("page"), outcomes.keySet(), "every hostile call got its page: " + outcomes);
            } else {
                assertTrue(
                        outcomes.keySet().stream()
                                .anyMatch(k -> !k.equals("page")
                                        && (h.signature() == WalRedoException.class
                                                || k.equals(h.signature().getSimpleName()))),
                        "the fault fired with " + h.signature().getSimpleName() + ": " + outcomes);
            }
            for (Map.Entry<TenantShardId, Integer> e : healthyPids.entrySet()) {
                assertEquals(e.getValue(), sidecarPid(m, e.getKey()), "healthy tenant's sidecar was not replaced");
            }
            m.status().stream().filter(s -> s.tenant().equals(hostile)).forEach(s -> hostilePids.add(s.pid()));
            if (h.signature() != null
                    && !h.args().contains(Fault.EXIT_AT_START.flag())
                    && !h.args().contains(Fault.NO_WALREDO_SUPPORT.flag())) {
                // Every sidecar that failed was replaced: the next call runs on a new process.
                assertTrue(!failedPids.isEmpty(), "a failure named its sidecar's pid: " + outcomes);
                // A sidecar that hangs stays in rotation until the stall limit retires it; until then admission
                // refuses requests it cannot serve in time (TenantOverloadedException), so wait for the retirement.
                Fixtures.await(
                        "the failed sidecar leaves rotation",
                        Duration.ofSeconds(30),
                        () -> m.status().stream()
                                .noneMatch(s -> s.tenant().equals(hostile) && failedPids.contains(s.pid())));
                int next;
                try {
                    m.redo(hostile, hostileRequest(99_999, h.bigRequests()), AttemptType.GC_COMPACTION, h.timeout());
                    next = sidecarPid(m, hostile);
                } catch (WalRedoException e) {
                    next = e.pid().orElseThrow(() -> new AssertionError("no pid in " + e));
                }
                assertTrue(!failedPids.contains(next), "pid " + next + " already failed: " + failedPids);
                hostilePids.add(next);
                for (int pid : failedPids) {
                    Fixtures.awaitReaped(pid);
                }
            }
            m.detach(hostile, Duration.ofMillis(200));
            for (int pid : hostilePids) {
                Fixtures.awaitReaped(pid);
            }
        } finally {
            killGrandchildren(hostile);
        }
        assertTrue(Fixtures.zombies().isEmpty(), "zombies: " + Fixtures.zombies());
    }

    private static void count(Map<String, AtomicInteger> outcomes, String kind) {
        outcomes.computeIfAbsent(kind, k -> new AtomicInteger()).incrementAndGet();
    }

    /** Every error names the tenant, and the pid whenever a sidecar was involved. */
    private void checkNamed(WalRedoException e, ConcurrentLinkedQueue<String> violations) {
        if (e.getClass() == WalRedoException.class) {
            violations.add("untyped WalRedoException: " + e);
        }
        if (!hostile.equals(e.tenant()) || !e.getMessage().contains(hostile.toString())) {
            violations.add("error does not name tenant " + hostile + ": " + e);
        }
        if (e.pid().isPresent() && !e.getMessage().contains("pid " + e.pid().getAsInt())) {
            violations.add("error does not name its pid " + e.pid().getAsInt() + ": " + e);
        }
        if ((e instanceof SidecarCrashedException || e instanceof ProtocolException)
                && e.pid().isEmpty()) {
            violations.add("a sidecar failure without a pid: " + e);
        }
    }

    private static RedoRequest hostileRequest(int i, boolean big) {
        RedoRequest r = big ? request(i, 32, 16 * 1024) : request(i);
        RedoRequest.Builder b =
                RedoRequest.builder(HOSTILE_PG, r.tag(), r.lsn()).addRecords(r.records());
        r.baseImage().ifPresent(img -> b.baseImage(r.baseLsn().orElseThrow(), img));
        return b.build();
    }

    private static TenantShardId randomTenant() {
        UUID u = UUID.randomUUID();
        return TenantShardId.of(u.getMostSignificantBits(), u.getLeastSignificantBits());
    }

    /**
     * Grandchildren forked by {@code --spawn-grandchild} outlive the sidecar. A fork keeps its parent's command
     * line, so this invocation's are the processes whose command line has {@code --spawn-grandchild} and
     * {@code tenant}'s id (the wrapper passes {@code --tenant-shard-id ID} on to the fake).
     */
    private static void killGrandchildren(TenantShardId tenant) throws IOException {
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                String n = p.getFileName().toString();
                if (!n.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                try {
                    String cmdline = Files.readString(p.resolve("cmdline"));
                    if (cmdline.contains("--spawn-grandchild") && cmdline.contains(tenant.toString())) {
                        ProcessHandle.of(Long.parseLong(n)).ifPresent(ProcessHandle::destroyForcibly);
                    }
                } catch (IOException | RuntimeException gone) {
                    // exited meanwhile
                }
            }
        }
    }

    /**
     * An Error on a stderr drainer's thread (a metrics listener that throws one, as here, or an OutOfMemoryError
     * while a line is built) loses that line, not the drainer: stderr is still read, so the sidecar never blocks on
     * it. Failed before: the drainer ended, the sidecar blocked writing its 512 KiB of stderr, and the ping timed out
     * and the sidecar was killed as stuck.
     */
    @org.junit.jupiter.api.Test
    void anErrorWhileHandlingAStderrLineDoesNotStopTheDrainer() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        WalRedoMetricsListener throwsOnce = new WalRedoMetricsListener() {
            @Override
            public void stderrLine(TenantShardId t, boolean suppressed) {
                if (calls.getAndIncrement() == 0) {
                    throw new AssertionError("a listener that breaks its contract once");
                }
            }
        };
        WalRedoConfig cfg = config(Fault.STDERR_FLOOD.args(512 * 1024))
                .metricsListener(throwsOnce)
                .stallTimeout(Duration.ofSeconds(5))
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.ping(tenant(71), PG);
            assertEquals(
                    0,
                    m.metrics().sidecarsKilled().values().stream()
                            .mapToLong(Long::longValue)
                            .sum());
            assertTrue(calls.get() > 1, "lines after the failure were handled: " + calls.get());
        }
    }
}
