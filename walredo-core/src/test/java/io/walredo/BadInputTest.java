// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.sidecarPid;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every public entry point given null, empty, oversized, negative or wrong-length arguments, and calls after
 * shutdown and after close: each fails with a clear exception (the type a caller can branch on and a message
 * naming the argument or the broken rule) before any byte reaches a sidecar, and the manager keeps working.
 *
 * <p>"No byte reached a sidecar" is checked on a warm sidecar: the bad call targets the tenant whose sidecar is
 * running; afterwards that same pid (nothing was spawned, nothing was killed) still answers a request with the
 * exact page. A stray byte on its stdin would shift every later message, and the fake would either exit with a
 * protocol error or answer a page that differs from the model.
 */
@Timeout(120)
class BadInputTest {
    private static final TenantShardId T = tenant(7);
    private static final TenantShardId OTHER = tenant(8);
    private static final int MAX_REQUEST_BYTES = 64 * 1024;

    /** A call on a manager whose tenant {@link #T} has a warm sidecar. */
    @FunctionalInterface
    interface ManagerCall {
        void call(WalRedoManager m) throws Throwable;
    }

    private static Arguments bad(String name, Class<? extends Throwable> type, String mustContain, Object call) {
        return Arguments.of(name, type, mustContain, call);
    }

    private static RedoRequest pg15() {
        return RedoRequest.builder(15, request(1).tag(), request(1).lsn())
                .addRecords(request(1).records())
                .build();
    }

    /** Encodes to about 100 KB, above the {@link #MAX_REQUEST_BYTES} these managers accept. */
    private static RedoRequest oversized() {
        return request(2, 10, 10_000);
    }

    static Stream<Arguments> badManagerCalls() {
        RedoRequest ok = request(1);
        AttemptType a = AttemptType.READ_PAGE;
        Duration neg = Duration.ofNanos(-1);
        return Stream.of(
                bad("redo: null tenant", NullPointerException.class, "tenant", (ManagerCall) m -> m.redo(null, ok, a)),
                bad("redo: null request", NullPointerException.class, "request", (ManagerCall) m -> m.redo(T, null, a)),
                bad("redo: null attempt", NullPointerException.class, "attempt", (ManagerCall)
                        m -> m.redo(T, ok, null)),
                bad("redo: null timeout", NullPointerException.class, "timeout", (ManagerCall)
                        m -> m.redo(T, ok, a, null)),
                bad("redo: zero timeout", IllegalArgumentException.class, "timeout must be positive", (ManagerCall)
                        m -> m.redo(T, ok, a, Duration.ZERO)),
                bad("redo: negative timeout", IllegalArgumentException.class, "timeout must be positive", (ManagerCall)
                        m -> m.redo(T, ok, a, neg)),
                bad(
                        "redo: no binary for the request's version",
                        IllegalArgumentException.class,
                        "PostgreSQL 15",
                        (ManagerCall) m -> m.redo(T, pg15(), a)),
                bad("redo: oversized request", IllegalArgumentException.class, "maxRequestBytes", (ManagerCall)
                        m -> m.redo(T, oversized(), a)),
                bad(
                        "redo with timeout: oversized request",
                        IllegalArgumentException.class,
                        "maxRequestBytes",
                        (ManagerCall) m -> m.redo(T, oversized(), a, Duration.ofSeconds(5))),
                bad("redoAsync: null tenant", NullPointerException.class, "tenant", (ManagerCall)
                        m -> m.redoAsync(null, ok, a)),
                bad("redoAsync: null request", NullPointerException.class, "request", (ManagerCall)
                        m -> m.redoAsync(T, null, a)),
                bad("redoAsync: null attempt", NullPointerException.class, "attempt", (ManagerCall)
                        m -> m.redoAsync(T, ok, null)),
                bad(
                        "redoAsync: no binary for the request's version",
                        IllegalArgumentException.class,
                        "PostgreSQL 15",
                        (ManagerCall) m -> m.redoAsync(T, pg15(), a)),
                bad("redoAsync: oversized request", IllegalArgumentException.class, "maxRequestBytes", (ManagerCall)
                        m -> m.redoAsync(T, oversized(), a)),
                bad("ping: null tenant", NullPointerException.class, "tenant", (ManagerCall) m -> m.ping(null, PG)),
                bad("ping: unconfigured version", IllegalArgumentException.class, "PostgreSQL 15", (ManagerCall)
                        m -> m.ping(T, 15)),
                bad("ping: negative version", IllegalArgumentException.class, "PostgreSQL -1", (ManagerCall)
                        m -> m.ping(T, -1)),
                bad(
                        "ping: huge version",
                        IllegalArgumentException.class,
                        "PostgreSQL " + Integer.MAX_VALUE,
                        (ManagerCall) m -> m.ping(T, Integer.MAX_VALUE)),
                bad("detach: null tenant", NullPointerException.class, "tenant", (ManagerCall) m -> m.detach(null)),
                bad("detach with timeout: null tenant", NullPointerException.class, "tenant", (ManagerCall)
                        m -> m.detach(null, Duration.ofSeconds(1))),
                bad("detach: null timeout", NullPointerException.class, "timeout", (ManagerCall)
                        m -> m.detach(T, null)),
                bad("detach: zero timeout", IllegalArgumentException.class, "timeout must be positive", (ManagerCall)
                        m -> m.detach(T, Duration.ZERO)),
                bad(
                        "detach: negative timeout",
                        IllegalArgumentException.class,
                        "timeout must be positive",
                        (ManagerCall) m -> m.detach(T, neg)),
                bad("shutdown: null timeout", NullPointerException.class, "timeout", (ManagerCall)
                        m -> m.shutdown(null)),
                bad("shutdown: zero timeout", IllegalArgumentException.class, "timeout must be positive", (ManagerCall)
                        m -> m.shutdown(Duration.ZERO)),
                bad(
                        "shutdown: negative timeout",
                        IllegalArgumentException.class,
                        "timeout must be positive",
                        (ManagerCall) m -> m.shutdown(neg)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badManagerCalls")
    void badCallFailsBeforeAnyByteReachesASidecarAndTheManagerKeepsWorking(
            String name, Class<? extends Throwable> type, String mustContain, ManagerCall call) throws Exception {
        try (WalRedoManager m = WalRedoManager.create(
                config().maxRequestBytes(MAX_REQUEST_BYTES).build())) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            WalRedoMetrics before = m.metrics();

            Throwable e = assertThrows(type, () -> call.call(m), name);
            assertClear(e, mustContain);

            WalRedoMetrics after = m.metrics();
            assertEquals(before.sidecarsStarted(), after.sidecarsStarted(), "nothing was spawned");
            assertEquals(
                    Map.of(),
                    after.sidecarsKilled().entrySet().stream()
                            .filter(k -> k.getValue() > 0)
                            .collect(java.util.stream.Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue)),
                    "nothing was killed");
            assertEquals(
                    List.of(pid), m.status().stream().map(SidecarStatus::pid).toList());
            assertEquals(0, m.status().get(0).inFlight());
            // The same sidecar still speaks in step with us, and the manager serves other tenants.
            assertArrayEquals(expected(request(3)), m.redo(T, request(3), AttemptType.GC_COMPACTION));
            assertEquals(pid, sidecarPid(m, T));
            assertArrayEquals(expected(request(4)), m.redo(OTHER, request(4), AttemptType.GC_COMPACTION));
            assertArrayEquals(
                    expected(request(5)),
                    m.redoAsync(T, request(5), AttemptType.READ_PAGE).get(30, java.util.concurrent.TimeUnit.SECONDS));
            assertEquals(before.sidecarsStarted() + 1, m.metrics().sidecarsStarted(), "only OTHER's sidecar");
        }
    }

    /** How a manager is ended before the refused calls. */
    enum Ending {
        SHUTDOWN,
        CLOSE
    }

    @ParameterizedTest(name = "after {0}")
    @EnumSource(Ending.class)
    void callsAfterShutdownOrCloseAreRefusedWithoutSpawning(Ending ending) throws Exception {
        WalRedoManager m = WalRedoManager.create(config().build());
        m.ping(T, PG);
        int pid = sidecarPid(m, T);
        if (ending == Ending.SHUTDOWN) {
            m.shutdown(Duration.ofSeconds(1));
        } else {
            m.close();
        }
        Fixtures.awaitReaped(pid);
        long started = m.metrics().sidecarsStarted();
        List<Executable> refused = List.of(
                () -> m.redo(T, request(1), AttemptType.READ_PAGE),
                () -> m.redo(OTHER, request(1), AttemptType.READ_PAGE, Duration.ofSeconds(5)),
                () -> m.redoAsync(T, request(1), AttemptType.GC_COMPACTION),
                () -> m.ping(T, PG),
                () -> m.ping(OTHER, PG));
        for (Executable call : refused) {
            assertClear(assertThrows(ManagerClosedException.class, call), "shut down");
        }
        // Argument errors still win over "closed", so a caller's bug is reported as such.
        assertThrows(NullPointerException.class, () -> m.redo(null, request(1), AttemptType.READ_PAGE));
        assertThrows(IllegalArgumentException.class, () -> m.ping(T, 15));
        // Observing, detaching and ending again stay harmless: nothing to do, nothing spawned.
        assertTrue(m.status().isEmpty());
        assertEquals(0, m.metrics().liveSidecars());
        m.detach(T);
        m.shutdown(Duration.ofSeconds(1));
        m.close();
        assertEquals(started, m.metrics().sidecarsStarted(), "nothing was spawned after the end");
        assertTrue(Fixtures.zombies().isEmpty(), "zombies: " + Fixtures.zombies());
    }

    static Stream<Arguments> badValues() {
        Path bin = FakeRedoModel.binary();
        List<Arguments> out = new ArrayList<>();
        // WalRedoManager.create and WalRedoConfig.Builder.
        out.add(bad("create: null config", NullPointerException.class, "config", (Executable)
                () -> WalRedoManager.create(null)));
        out.add(bad("config: no binary", IllegalArgumentException.class, "no redo binary", (Executable)
                () -> WalRedoConfig.builder().build()));
        out.add(bad("redoBinary: null path", NullPointerException.class, "executable", (Executable)
                () -> WalRedoConfig.builder().redoBinary(PG, null)));
        out.add(bad("redoBinary: null libDir", NullPointerException.class, "libDir", (Executable)
                () -> WalRedoConfig.builder().redoBinary(PG, bin, null)));
        for (int v : new int[] {-1, 0, 13, 100, Integer.MIN_VALUE, Integer.MAX_VALUE}) {
            out.add(bad(
                    "redoBinary: version " + v, IllegalArgumentException.class, "PostgreSQL version " + v, (Executable)
                            () -> WalRedoConfig.builder().redoBinary(v, bin).build()));
        }
        out.add(bad("redoBinary: empty path", IllegalArgumentException.class, "not an absolute path", (Executable)
                () -> WalRedoConfig.builder().redoBinary(PG, Path.of("")).build()));
        out.add(bad("redoBinary: relative path", IllegalArgumentException.class, "not an absolute path", (Executable)
                () -> WalRedoConfig.builder()
                        .redoBinary(PG, Path.of("bin/postgres"))
                        .build()));
        out.add(bad("redoBinary: missing file", IllegalArgumentException.class, "does not exist", (Executable)
                () -> WalRedoConfig.builder()
                        .redoBinary(PG, bin.resolveSibling("no-such"))
                        .build()));
        out.add(bad("redoBinary: a directory", IllegalArgumentException.class, "not a regular file", (Executable)
                () -> WalRedoConfig.builder().redoBinary(PG, bin.getParent()).build()));
        out.add(bad("redoBinary: libDir missing", IllegalArgumentException.class, "is not a directory", (Executable)
                () -> WalRedoConfig.builder()
                        .redoBinary(PG, bin, bin.resolveSibling("no-lib"))
                        .build()));
        out.add(bad("extraArgs: null list", NullPointerException.class, "args", (Executable)
                () -> WalRedoConfig.builder().extraArgs(null)));
        out.add(bad("extraArgs: null element", NullPointerException.class, "extraArgs element", (Executable)
                () -> WalRedoConfig.builder().extraArgs(Arrays.asList("--x", null))));
        out.add(bad(
                "extraArgs: NUL byte", IllegalArgumentException.class, "NUL", (Executable) () -> WalRedoConfig.builder()
                        .redoBinary(PG, bin)
                        .extraArgs(List.of("a\0b"))
                        .build()));
        out.add(bad("environment: null map", NullPointerException.class, "env", (Executable)
                () -> WalRedoConfig.builder().environment(null)));
        Map<String, String> nullKey = new HashMap<>();
        nullKey.put(null, "v");
        out.add(bad("environment: null key", NullPointerException.class, "environment key", (Executable)
                () -> WalRedoConfig.builder().environment(nullKey)));
        Map<String, String> nullValue = new HashMap<>();
        nullValue.put("K", null);
        out.add(bad("environment: null value", NullPointerException.class, "environment value", (Executable)
                () -> WalRedoConfig.builder().environment(nullValue)));
        for (Map.Entry<String, String> env :
                List.of(Map.entry("", "v"), Map.entry("A=B", "v"), Map.entry("A\0", "v"), Map.entry("A", "v\0"))) {
            out.add(bad(
                    "environment: " + env.getKey().replace("\0", "\\0") + "="
                            + env.getValue().replace("\0", "\\0"),
                    IllegalArgumentException.class,
                    "environment: invalid variable",
                    (Executable) () -> WalRedoConfig.builder()
                            .redoBinary(PG, bin)
                            .environment(Map.ofEntries(env))
                            .build()));
        }
        Map<String, BiFunction<WalRedoConfig.Builder, Duration, WalRedoConfig.Builder>> durations = Map.of(
                "stallTimeout", WalRedoConfig.Builder::stallTimeout,
                "idleTimeout", WalRedoConfig.Builder::idleTimeout,
                "redoTimeout", WalRedoConfig.Builder::redoTimeout,
                "spawnTimeout", WalRedoConfig.Builder::spawnTimeout,
                "killTimeout", WalRedoConfig.Builder::killTimeout,
                "housekeepingPeriod", WalRedoConfig.Builder::housekeepingPeriod,
                "spawnBackoffInitial", (b, d) -> b.spawnBackoff(d, WalRedoConfig.DEFAULT_SPAWN_BACKOFF_MAX),
                "spawnBackoffMax", (b, d) -> b.spawnBackoff(Duration.ofMillis(1), d));
        durations.forEach((field, setter) -> {
            out.add(bad(field + ": null", NullPointerException.class, field, (Executable)
                    () -> setter.apply(WalRedoConfig.builder(), null)));
            for (Duration d : List.of(Duration.ZERO, Duration.ofNanos(-1), Duration.ofSeconds(Long.MIN_VALUE))) {
                out.add(bad(field + ": " + d, IllegalArgumentException.class, field + " must be positive", (Executable)
                        () -> setter.apply(WalRedoConfig.builder().redoBinary(PG, bin), d)
                                .build()));
            }
            out.add(bad(field + ": oversized", IllegalArgumentException.class, field + " must be at most", (Executable)
                    () -> setter.apply(
                                    WalRedoConfig.builder().redoBinary(PG, bin).idleTimeout(WalRedoConfig.MAX_DURATION),
                                    Duration.ofSeconds(Long.MAX_VALUE))
                            .build()));
        });
        out.add(bad(
                "housekeepingPeriod longer than idleTimeout",
                IllegalArgumentException.class,
                "is longer than idleTimeout",
                (Executable) () -> WalRedoConfig.builder()
                        .redoBinary(PG, bin)
                        .idleTimeout(Duration.ofSeconds(1))
                        .housekeepingPeriod(Duration.ofSeconds(2))
                        .build()));
        out.add(bad(
                "spawnBackoff: max below initial",
                IllegalArgumentException.class,
                "is below spawnBackoffInitial",
                (Executable) () -> WalRedoConfig.builder()
                        .redoBinary(PG, bin)
                        .spawnBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1))
                        .build()));
        for (int n : new int[] {0, -1, Integer.MIN_VALUE}) {
            out.add(bad(
                    "maxLiveSidecars " + n,
                    IllegalArgumentException.class,
                    "maxLiveSidecars must be at least 1",
                    (Executable) () -> WalRedoConfig.builder()
                            .redoBinary(PG, bin)
                            .maxLiveSidecars(n)
                            .build()));
            out.add(bad(
                    "maxQueuedPerTenant " + n,
                    IllegalArgumentException.class,
                    "maxQueuedPerTenant must be at least 1",
                    (Executable) () -> WalRedoConfig.builder()
                            .redoBinary(PG, bin)
                            .maxQueuedPerTenant(n)
                            .build()));
            out.add(bad(
                    "maxRequestBytes " + n,
                    IllegalArgumentException.class,
                    "maxRequestBytes must be positive",
                    (Executable) () -> WalRedoConfig.builder()
                            .redoBinary(PG, bin)
                            .maxRequestBytes(n)
                            .build()));
            out.add(bad("stderr line bytes " + n, IllegalArgumentException.class, "stderrMaxLineBytes", (Executable)
                    () -> WalRedoConfig.builder()
                            .redoBinary(PG, bin)
                            .stderrLimits(n, 50, 16)
                            .build()));
            out.add(bad(
                    "stderr lines per second " + n, IllegalArgumentException.class, "stderrLinesPerSecond", (Executable)
                            () -> WalRedoConfig.builder()
                                    .redoBinary(PG, bin)
                                    .stderrLimits(4096, n, 16)
                                    .build()));
            out.add(bad("stderr tail lines " + n, IllegalArgumentException.class, "stderrTailLines", (Executable)
                    () -> WalRedoConfig.builder()
                            .redoBinary(PG, bin)
                            .stderrLimits(4096, 50, n)
                            .build()));
            out.add(bad(
                    "stderr bytes per second " + n, IllegalArgumentException.class, "stderrBytesPerSecond", (Executable)
                            () -> WalRedoConfig.builder()
                                    .redoBinary(PG, bin)
                                    .stderrBytesPerSecond(n)
                                    .build()));
        }
        out.add(bad(
                "stderr bytes per second just below the minimum",
                IllegalArgumentException.class,
                "stderrBytesPerSecond must be at least " + WalRedoConfig.MIN_STDERR_BYTES_PER_SECOND,
                (Executable) () -> WalRedoConfig.builder()
                        .redoBinary(PG, bin)
                        .stderrBytesPerSecond(WalRedoConfig.MIN_STDERR_BYTES_PER_SECOND - 1)
                        .build()));
        out.add(bad(
                "stderr line bytes just below the minimum",
                IllegalArgumentException.class,
                "stderrMaxLineBytes",
                (Executable) () -> WalRedoConfig.builder()
                        .redoBinary(PG, bin)
                        .stderrLimits(WalRedoConfig.MIN_STDERR_MAX_LINE_BYTES - 1, 50, 16)
                        .build()));
        out.add(bad("metricsListener: null", NullPointerException.class, "metricsListener", (Executable)
                () -> WalRedoConfig.builder().metricsListener(null)));
        out.add(bad("RedoBinary: null executable", NullPointerException.class, "executable", (Executable)
                () -> new WalRedoConfig.RedoBinary(null, Optional.empty())));
        out.add(bad("RedoBinary: null libDir", NullPointerException.class, "libDir", (Executable)
                () -> new WalRedoConfig.RedoBinary(bin, null)));

        // RedoRequest.Builder.
        RedoRequest r = request(1);
        WalRecord rec0 = r.records().get(0);
        out.add(bad("RedoRequest: null tag", NullPointerException.class, "tag", (Executable)
                () -> RedoRequest.builder(PG, null, r.lsn())));
        out.add(bad("RedoRequest: null lsn", NullPointerException.class, "lsn", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), null)));
        for (int v : new int[] {-1, 0, 13, 100, Integer.MIN_VALUE, Integer.MAX_VALUE}) {
            out.add(bad("RedoRequest: pgVersion " + v, IllegalArgumentException.class, "pgVersion " + v, (Executable)
                    () -> RedoRequest.builder(v, r.tag(), r.lsn())
                            .addRecord(rec0)
                            .build()));
        }
        out.add(bad("RedoRequest: null base LSN", NullPointerException.class, "baseLsn", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), r.lsn()).baseImage(null, new byte[8192])));
        out.add(bad("RedoRequest: null base image", NullPointerException.class, "baseImage", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), r.lsn()).baseImage(Lsn.of(1), null)));
        for (int len : new int[] {0, 1, 8191, 8193, 65536}) {
            out.add(bad(
                    "RedoRequest: base image of " + len + " bytes",
                    IllegalArgumentException.class,
                    "baseImage is " + len + " bytes",
                    (Executable) () -> RedoRequest.builder(PG, r.tag(), r.lsn())
                            .baseImage(Lsn.of(1), new byte[len])
                            .addRecord(rec0)
                            .build()));
        }
        out.add(bad("RedoRequest: null record", NullPointerException.class, "record", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), r.lsn()).addRecord(null)));
        out.add(bad("RedoRequest: null record list", NullPointerException.class, "records", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), r.lsn()).addRecords(null)));
        out.add(bad("RedoRequest: null in record list", NullPointerException.class, "records[1]", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), r.lsn()).addRecords(Arrays.asList(rec0, null))));
        out.add(bad("RedoRequest: no records", IllegalArgumentException.class, "records is empty", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), r.lsn()).build()));
        out.add(bad("RedoRequest: empty record list", IllegalArgumentException.class, "records is empty", (Executable)
                () -> RedoRequest.builder(PG, r.tag(), r.lsn())
                        .addRecords(List.of())
                        .build()));
        out.add(bad(
                "RedoRequest: repeated end LSN", IllegalArgumentException.class, "must strictly increase", (Executable)
                        () -> RedoRequest.builder(PG, r.tag(), r.lsn())
                                .addRecord(rec0)
                                .addRecord(rec0)
                                .build()));
        out.add(bad(
                "RedoRequest: decreasing end LSN",
                IllegalArgumentException.class,
                "must strictly increase",
                (Executable) () -> RedoRequest.builder(PG, r.tag(), r.lsn())
                        .addRecord(r.records().get(1))
                        .addRecord(rec0)
                        .build()));
        out.add(bad(
                "RedoRequest: base LSN at the first record's end",
                IllegalArgumentException.class,
                "is not before records[0].endLsn",
                (Executable) () -> RedoRequest.builder(PG, r.tag(), r.lsn())
                        .baseImage(rec0.endLsn(), new byte[8192])
                        .addRecord(rec0)
                        .build()));
        out.add(bad(
                "RedoRequest: record after the target LSN",
                IllegalArgumentException.class,
                "is after the target lsn",
                (Executable) () -> RedoRequest.builder(PG, r.tag(), Lsn.of(1))
                        .addRecord(rec0)
                        .build()));
        out.add(bad(
                "RedoRequest: encodes to more than 2 GiB",
                IllegalArgumentException.class,
                "exceeds 2147483647",
                (Executable) () -> {
                    // One 16 MiB record 130 times: over 2 GiB on the wire while holding only 16 MiB.
                    WalRecord big = WalRecord.of(Lsn.of(0x100), false, new byte[16 << 20]);
                    RedoRequest.Builder b = RedoRequest.builder(PG, r.tag(), Lsn.of(0x100));
                    for (int i = 0; i < 130; i++) {
                        b.addRecord(big);
                    }
                    b.build();
                }));

        // WalRecord.
        out.add(bad("WalRecord: null end LSN", NullPointerException.class, "endLsn", (Executable)
                () -> WalRecord.of(null, false, new byte[1])));
        out.add(bad("WalRecord: null data", NullPointerException.class, "data", (Executable)
                () -> WalRecord.of(Lsn.of(1), false, null)));
        out.add(bad("WalRecord: end LSN 0/0", IllegalArgumentException.class, "is invalid", (Executable)
                () -> WalRecord.of(Lsn.INVALID, false, new byte[1])));
        out.add(bad("WalRecord: empty data", IllegalArgumentException.class, "data length 0", (Executable)
                () -> WalRecord.of(Lsn.of(1), false, new byte[0])));
        out.add(bad(
                "WalRecord: longer than 1 GiB (the check of()'s length runs)",
                IllegalArgumentException.class,
                "data length 1073741825",
                (Executable) () -> WalRecord.checkLength(WalRecord.MAX_LENGTH + 1)));

        // Lsn, TenantShardId, BufferTag, RelTag.
        out.add(bad("Lsn.parse: null", NullPointerException.class, "text", (Executable) () -> Lsn.parse(null)));
        for (String s : List.of(
                "",
                "/",
                "0/",
                "/0",
                "123456789/0",
                "0/123456789",
                "g/0",
                "0x1/0",
                " 0/1",
                "0/1 ",
                "1/2/3",
                "-1/0",
                "+1/0",
                "1:0")) {
            out.add(bad("Lsn.parse: \"" + s + "\"", IllegalArgumentException.class, "\"" + s + "\"", (Executable)
                    () -> Lsn.parse(s)));
        }
        out.add(bad("TenantShardId.parse: null", NullPointerException.class, "text", (Executable)
                () -> TenantShardId.parse(null)));
        String hex32 = "0123456789abcdef0123456789abcdef";
        for (String s : List.of(
                "",
                hex32.substring(1),
                hex32 + "0",
                hex32.replace('a', 'g'),
                hex32 + "_0104",
                hex32 + "-0404",
                hex32 + "-0100",
                hex32 + "-zz04",
                hex32 + "-0104 ",
                " " + hex32)) {
            out.add(bad(
                    "TenantShardId.parse: \"" + s + "\"", IllegalArgumentException.class, "is malformed", (Executable)
                            () -> TenantShardId.parse(s)));
        }
        for (int[] shard : new int[][] {{1, 0}, {4, 4}, {5, 4}, {-1, 4}, {0, 256}, {0, -1}, {256, 0}}) {
            out.add(bad(
                    "TenantShardId.of: shard " + shard[0] + " of " + shard[1],
                    IllegalArgumentException.class,
                    "shard",
                    (Executable) () -> TenantShardId.of(1, 2, shard[0], shard[1])));
        }
        out.add(bad(
                "BufferTag: null rel", NullPointerException.class, "rel", (Executable) () -> new BufferTag(null, 0)));
        for (long blk : new long[] {-1, BufferTag.INVALID_BLOCK_NUMBER, 1L << 32, Long.MIN_VALUE}) {
            out.add(bad("BufferTag: block " + blk, IllegalArgumentException.class, "blockNumber " + blk, (Executable)
                    () -> new BufferTag(r.tag().rel(), blk)));
        }
        for (long oid : new long[] {-1, RelTag.MAX_OID + 1, Long.MIN_VALUE, Long.MAX_VALUE}) {
            out.add(bad("RelTag: spcNode " + oid, IllegalArgumentException.class, "spcNode " + oid, (Executable)
                    () -> new RelTag(oid, 1, 1, 0)));
            out.add(bad("RelTag: dbNode " + oid, IllegalArgumentException.class, "dbNode " + oid, (Executable)
                    () -> new RelTag(1, oid, 1, 0)));
            out.add(bad("RelTag: relNode " + oid, IllegalArgumentException.class, "relNode " + oid, (Executable)
                    () -> new RelTag(1, 1, oid, 0)));
        }
        for (int fork : new int[] {-1, 4, Integer.MAX_VALUE}) {
            out.add(bad("RelTag: fork " + fork, IllegalArgumentException.class, "forkNum " + fork, (Executable)
                    () -> new RelTag(1, 1, 1, fork)));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badValues")
    void badValueIsRejectedWithAClearMessage(
            String name, Class<? extends Throwable> type, String mustContain, Executable call) {
        assertClear(assertThrows(type, call, name), mustContain);
    }

    private static void assertClear(Throwable e, String mustContain) {
        assertNotNull(e.getMessage(), "no message: " + e);
        if (mustContain != null) {
            assertTrue(e.getMessage().contains(mustContain), "'" + mustContain + "' missing in: " + e.getMessage());
        }
    }
}
