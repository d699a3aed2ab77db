// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Bad configuration fails at build time; bad calls fail before anything is spawned or written. */
@Timeout(60)
class ConfigAndInputValidationTest {

    @Test
    void toBuilderCarriesEverySettingAndKeepsDerivedOnesDerived(@TempDir Path dir) {
        WalRedoConfig a = config().environment(Map.of("LC_ALL", "C", "SECRET_TOKEN", "hunter2"))
                .idleTimeout(Duration.ofSeconds(40))
                .redoTimeout(Duration.ofSeconds(7))
                .maxLiveSidecars(9)
                .maxQueuedPerTenant(5)
                .stderrBytesPerSecond(8192)
                .sidecarWorkingDirectory(dir)
                .sidecarOpenFilesLimit(300)
                .sidecarAddressSpaceLimit(1L << 30)
                .sidecarCpuTimeLimit(Duration.ofMinutes(5))
                .sidecarOomScoreAdj(400)
                .killOrphanedSidecars(false)
                .build();
        WalRedoConfig b = a.toBuilder().build();
        assertEquals(a.toString(), b.toString(), "a copy has every setting");
        assertEquals(a.binaries(), b.binaries());
        assertEquals(a.environment(), b.environment());
        assertEquals(a.metricsListener(), b.metricsListener());

        WalRedoConfig c = a.toBuilder()
                .redoTimeout(Duration.ofSeconds(30))
                .idleTimeout(Duration.ofSeconds(400))
                .build();
        assertEquals(Duration.ofSeconds(30), c.stallTimeout(), "stallTimeout follows redoTimeout unless set");
        assertEquals(
                WalRedoConfig.DEFAULT_MAX_HOUSEKEEPING_PERIOD,
                c.housekeepingPeriod(),
                "housekeepingPeriod follows idleTimeout unless set");
        assertEquals(9, c.maxLiveSidecars());
        assertEquals(Duration.ofSeconds(7), a.redoTimeout(), "the original is unchanged");

        WalRedoConfig d = a.toBuilder().stallTimeout(Duration.ofSeconds(2)).build().toBuilder()
                .redoTimeout(Duration.ofSeconds(50))
                .build();
        assertEquals(Duration.ofSeconds(2), d.stallTimeout(), "an explicit stallTimeout stays");
    }

    @Test
    void toStringShowsEveryEffectiveSettingButNoEnvironmentValue() {
        WalRedoConfig c = config().environment(Map.of("SECRET_TOKEN", "hunter2"))
                .maxQueuedPerTenant(4)
                .build();
        String s = c.toString();
        for (String setting : List.of(
                "binaries=",
                "extraArgs=",
                "environment names=[SECRET_TOKEN]",
                "idleTimeout=PT3M",
                "redoTimeout=PT20S",
                "stallTimeout=PT20S",
                "spawnTimeout=",
                "killTimeout=PT5S",
                "housekeepingPeriod=",
                "spawnBackoff=",
                "maxLiveSidecars=none",
                "maxQueuedPerTenant=4",
                "maxRequestBytes=",
                "stderrLimits=",
                "stderrBytesPerSecond=",
                "metricsListener=none",
                "shutdownHook=false",
                "sidecarWorkingDirectory=/",
                "sidecarUmask=077",
                "sidecarOpenFilesLimit=1024",
                "sidecarCoreDumps=false",
                "sidecarAddressSpaceLimit=none",
                "sidecarCpuTimeLimit=none",
                "sidecarOomScoreAdj=1000",
                "sidecarCgroup=none",
                "killOrphanedSidecars=true")) {
            assertTrue(s.contains(setting), setting + " missing from " + s);
        }
        assertTrue(!s.contains("hunter2"), "an environment value leaked: " + s);
    }

    @Test
    void defaultsAreDocumentedValues() {
        WalRedoConfig c =
                WalRedoConfig.builder().redoBinary(PG, FakeRedoModel.binary()).build();
        assertEquals(Duration.ofSeconds(180), c.idleTimeout());
        assertEquals(Duration.ofSeconds(60), c.redoTimeout());
        assertEquals(Duration.ofSeconds(10), c.housekeepingPeriod());
        assertEquals(Integer.MAX_VALUE, c.maxLiveSidecars());
        assertEquals(Integer.MAX_VALUE, c.maxQueuedPerTenant());
        assertEquals(4096, c.stderrMaxLineBytes());
        assertEquals(Map.of(), c.environment());
    }

    @Test
    void everyProblemIsListedInOneException(@TempDir Path dir) throws Exception {
        Path text = Files.writeString(dir.resolve("notexec"), "hello");
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> WalRedoConfig.builder()
                        .redoBinary(14, dir.resolve("missing"))
                        .redoBinary(15, dir)
                        .redoBinary(16, text)
                        .redoBinary(17, Path.of("relative/postgres"))
                        .redoBinary(3, FakeRedoModel.binary())
                        .idleTimeout(Duration.ZERO)
                        .redoTimeout(Duration.ofSeconds(-1))
                        .housekeepingPeriod(Duration.ofMinutes(10))
                        .spawnBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1))
                        .maxLiveSidecars(0)
                        .maxQueuedPerTenant(0)
                        .stderrLimits(10, 0, 0)
                        .stderrBytesPerSecond(0)
                        .environment(Map.of("A=B", "x"))
                        .build());
        String msg = e.getMessage();
        for (String expected : List.of(
                "does not exist",
                "is not a regular file",
                "is not executable",
                "not an absolute path",
                "version 3",
                "idleTimeout must be positive",
                "redoTimeout must be positive",
                "spawnBackoffMax",
                "maxLiveSidecars",
                "maxQueuedPerTenant",
                "stderrMaxLineBytes",
                "stderrLinesPerSecond",
                "stderrTailLines",
                "stderrBytesPerSecond",
                "environment")) {
            assertTrue(msg.contains(expected), "missing '" + expected + "' in: " + msg);
        }
    }

    @Test
    void noBinaryAndHousekeepingLongerThanIdleAreRejected() {
        assertTrue(assertThrows(
                        IllegalArgumentException.class,
                        () -> WalRedoConfig.builder().build())
                .getMessage()
                .contains("no redo binary"));
        assertTrue(assertThrows(
                        IllegalArgumentException.class,
                        () -> WalRedoConfig.builder()
                                .redoBinary(PG, FakeRedoModel.binary())
                                .idleTimeout(Duration.ofSeconds(1))
                                .housekeepingPeriod(Duration.ofSeconds(2))
                                .build())
                .getMessage()
                .contains("housekeepingPeriod"));
    }

    @Test
    void badCallsFailBeforeAnythingIsSpawnedAndTheManagerKeepsWorking() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config().maxRequestBytes(64 * 1024).build())) {
            TenantShardId t = tenant(1);
            assertThrows(NullPointerException.class, () -> m.redo(null, request(1), AttemptType.READ_PAGE));
            assertThrows(NullPointerException.class, () -> m.redo(t, null, AttemptType.READ_PAGE));
            assertThrows(NullPointerException.class, () -> m.redo(t, request(1), null));
            assertThrows(NullPointerException.class, () -> m.redo(t, request(1), AttemptType.READ_PAGE, null));
            assertThrows(
                    IllegalArgumentException.class, () -> m.redo(t, request(1), AttemptType.READ_PAGE, Duration.ZERO));
            assertThrows(
                    IllegalArgumentException.class,
                    () -> m.redo(t, request(1), AttemptType.READ_PAGE, Duration.ofSeconds(-5)));
            RedoRequest pg15 = RedoRequest.builder(
                            15, request(1).tag(), request(1).lsn())
                    .addRecords(request(1).records())
                    .build();
            IllegalArgumentException noBinary =
                    assertThrows(IllegalArgumentException.class, () -> m.redo(t, pg15, AttemptType.READ_PAGE));
            assertTrue(noBinary.getMessage().contains("PostgreSQL 15"), noBinary.getMessage());
            assertThrows(IllegalArgumentException.class, () -> m.redoAsync(t, pg15, AttemptType.READ_PAGE));
            assertThrows(IllegalArgumentException.class, () -> m.ping(t, 15));
            RedoRequest big = request(2, 10, 10_000);
            IllegalArgumentException tooBig =
                    assertThrows(IllegalArgumentException.class, () -> m.redo(t, big, AttemptType.READ_PAGE));
            assertTrue(tooBig.getMessage().contains("maxRequestBytes"), tooBig.getMessage());
            assertThrows(NullPointerException.class, () -> m.detach(null));
            assertThrows(IllegalArgumentException.class, () -> m.detach(t, Duration.ZERO));
            assertEquals(0, m.metrics().sidecarsStarted(), "nothing was spawned for bad calls");
            assertArrayEquals(expected(request(3)), m.redo(t, request(3), AttemptType.READ_PAGE));
        }
    }

    /**
     * A duration whose nanoseconds overflow a long used to build; then create() threw ArithmeticException, or
     * the first spawn did, leaving the tenant's spawn future forever incomplete.
     */
    @Test
    void durationsAboveTheMaximumAreRejected() {
        Duration huge = Duration.ofSeconds(Long.MAX_VALUE);
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> WalRedoConfig.builder()
                        .redoBinary(PG, FakeRedoModel.binary())
                        .idleTimeout(huge)
                        .redoTimeout(huge)
                        .spawnTimeout(huge)
                        .killTimeout(huge)
                        .housekeepingPeriod(huge)
                        .spawnBackoff(huge, huge)
                        .build());
        for (String field : List.of(
                "idleTimeout",
                "redoTimeout",
                "spawnTimeout",
                "killTimeout",
                "housekeepingPeriod",
                "spawnBackoffInitial",
                "spawnBackoffMax")) {
            assertTrue(e.getMessage().contains(field + " must be at most"), e.getMessage());
        }
        WalRedoConfig.builder()
                .redoBinary(PG, FakeRedoModel.binary())
                .idleTimeout(WalRedoConfig.MAX_DURATION)
                .redoTimeout(WalRedoConfig.MAX_DURATION)
                .build();
    }

    @Test
    void stallTimeoutFollowsRedoTimeoutUnlessSet() {
        WalRedoConfig.Builder b =
                WalRedoConfig.builder().redoBinary(PG, FakeRedoModel.binary()).redoTimeout(Duration.ofSeconds(7));
        assertEquals(Duration.ofSeconds(7), b.build().stallTimeout());
        assertEquals(
                Duration.ofMillis(300),
                b.stallTimeout(Duration.ofMillis(300)).build().stallTimeout());
        assertEquals(
                WalRedoConfig.DEFAULT_REDO_TIMEOUT,
                WalRedoConfig.builder()
                        .redoBinary(PG, FakeRedoModel.binary())
                        .build()
                        .stallTimeout());
    }

    @Test
    void redoAsyncChecksTheSizeLimitBeforeReturning() {
        try (WalRedoManager m =
                WalRedoManager.create(config().maxRequestBytes(64 * 1024).build())) {
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class,
                    () -> m.redoAsync(tenant(1), request(2, 10, 10_000), AttemptType.READ_PAGE));
            assertTrue(e.getMessage().contains("maxRequestBytes"), e.getMessage());
            assertEquals(0, m.metrics().sidecarsStarted());
        }
    }

    @Test
    void callsAfterShutdownAreRefused() {
        WalRedoManager m = WalRedoManager.create(config().build());
        m.close();
        assertThrows(ManagerClosedException.class, () -> m.redo(tenant(1), request(1), AttemptType.READ_PAGE));
        assertThrows(ManagerClosedException.class, () -> m.redoAsync(tenant(1), request(1), AttemptType.READ_PAGE));
        assertThrows(ManagerClosedException.class, () -> m.ping(tenant(1), PG));
        m.close();
    }
}
