// SPDX-License-Identifier: Apache-2.0
package io.walredo.micrometer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.walredo.AttemptType;
import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.RedoTimeoutException;
import io.walredo.RelTag;
import io.walredo.SidecarCrashedException;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRecord;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.FakeRedoModel.Fault;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The meters a real manager on the fake redo binary produces, read back from a SimpleMeterRegistry. */
class WalRedoMetersTest {

    private static final int PG = 16;
    private static final TenantShardId T = TenantShardId.of(0x0e7e_0000L, 1);

    private static WalRedoConfig.Builder config(List<String> fakeArgs) {
        return WalRedoConfig.builder()
                .redoBinary(PG, FakeRedoModel.binary())
                .extraArgs(fakeArgs)
                .redoTimeout(Duration.ofSeconds(20))
                .spawnBackoff(Duration.ofMillis(20), Duration.ofMillis(200));
    }

    private static RedoRequest request(int i) {
        return RedoRequest.builder(
                        PG,
                        new BufferTag(new RelTag(1663, 13010, 16384 + i, RelTag.MAIN_FORKNUM), i),
                        Lsn.of(0x2000L + i * 0x100L))
                .addRecord(WalRecord.of(Lsn.of(0x1000L + i * 0x100L), false, new byte[] {1, 2, (byte) i}))
                .build();
    }

    @Test
    void aGoodRedoASpawnAndADetachAreCountedWithoutATenantTag() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        WalRedoMeters meters = WalRedoMeters.builder(registry)
                .tags(Tags.of("pageserver", "ps-1"))
                .build();
        try (WalRedoManager m =
                WalRedoManager.create(config(List.of()).metricsListener(meters).build())) {
            assertArrayEquals(FakeRedoModel.expectedPage(request(1)), m.redo(T, request(1), AttemptType.READ_PAGE));
            assertEquals(1.0, registry.get("walredo.sidecars.live").gauge().value());
            m.detach(T);
            assertEquals(0.0, registry.get("walredo.sidecars.live").gauge().value());
        }
        assertEquals(
                1,
                registry.get("walredo.redo")
                        .tags("outcome", "ok", "attempt", "read_page")
                        .timer()
                        .count());
        assertEquals(1, registry.get("walredo.sidecar.spawn").timer().count());
        assertEquals(
                1.0,
                registry.get("walredo.sidecar.stopped")
                        .tags("cause", "detach")
                        .counter()
                        .count());
        assertEquals(1, registry.get("walredo.redo.records").summary().count());
        assertEquals(
                request(1).encodedSize(),
                registry.get("walredo.redo.request.bytes").summary().totalAmount());
        for (Meter meter : registry.getMeters()) {
            assertEquals(
                    "ps-1", meter.getId().getTag("pageserver"), meter.getId().toString());
            assertEquals(null, meter.getId().getTag("tenant"), "no tenant tag by default: " + meter.getId());
        }
    }

    @Test
    void spawnWaitsAndWarmSparesAreCounted() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        WalRedoMeters meters = WalRedoMeters.builder(registry).build();
        try (WalRedoManager m =
                WalRedoManager.create(config(List.of()).metricsListener(meters).build())) {
            m.redo(T, request(1), AttemptType.READ_PAGE);
            m.redo(T, request(2), AttemptType.READ_PAGE);
            assertEquals(1, registry.get("walredo.redo.spawn.wait").timer().count(), "only the first call waited");
            assertEquals(0.0, registry.get("walredo.sidecars.spare").gauge().value());
        }
        SimpleMeterRegistry withSpares = new SimpleMeterRegistry();
        WalRedoMeters spareMeters = WalRedoMeters.builder(withSpares).build();
        try (WalRedoManager m = WalRedoManager.create(
                config(List.of()).warmSpares(2).metricsListener(spareMeters).build())) {
            awaitGauge(withSpares, "walredo.sidecars.spare", 2.0);
            // The gauge counts a spare from its start; the pool hands it out once its warm-up is answered.
            long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (m.metrics().spareSidecars() != 2 && System.nanoTime() - end < 0) {
                java.util.concurrent.locks.LockSupport.parkNanos(2_000_000);
            }
            m.redo(T, request(3), AttemptType.READ_PAGE);
            assertEquals(
                    1.0,
                    withSpares.get("walredo.sidecar.spares.assigned").counter().count());
            assertEquals(0, withSpares.get("walredo.redo.spawn.wait").timer().count(), "a spare was ready");
            awaitGauge(withSpares, "walredo.sidecars.spare", 2.0);
            assertEquals(3.0, withSpares.get("walredo.sidecars.live").gauge().value());
        }
        assertEquals(0.0, withSpares.get("walredo.sidecars.spare").gauge().value(), "shutdown killed the spares");
        assertEquals(0.0, withSpares.get("walredo.sidecars.live").gauge().value());
    }

    @Test
    void callsWokenAtTheirDeadlineAreTimed() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        WalRedoMeters meters = WalRedoMeters.builder(registry).build();
        try (WalRedoManager m = WalRedoManager.create(
                config(Fault.DELAY_US.args(300_000)).metricsListener(meters).build())) {
            m.ping(T, PG);
            assertEquals(
                    0, registry.get("walredo.deadline.wake.lateness").timer().count());
            assertThrows(
                    RedoTimeoutException.class,
                    () -> m.redo(T, request(1), AttemptType.READ_PAGE, Duration.ofMillis(50)));
            assertEquals(
                    1, registry.get("walredo.deadline.wake.lateness").timer().count());
            assertEquals(1, m.metrics().deadlineWakeLateness().count());
        }
    }

    private static void awaitGauge(SimpleMeterRegistry registry, String name, double value) {
        long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (registry.get(name).gauge().value() != value) {
            if (System.nanoTime() - end > 0) {
                throw new AssertionError(
                        name + " stayed at " + registry.get(name).gauge().value() + ", not " + value);
            }
            java.util.concurrent.locks.LockSupport.parkNanos(2_000_000);
        }
    }

    @Test
    void aCrashEveryRetryAndEveryKillAreCounted() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        WalRedoMeters meters = WalRedoMeters.builder(registry).build();
        try (WalRedoManager m = WalRedoManager.create(
                config(Fault.CRASH_AFTER.args(1)).metricsListener(meters).build())) {
            assertThrows(SidecarCrashedException.class, () -> m.redo(T, request(2), AttemptType.READ_PAGE));
        }
        assertEquals(
                1,
                registry.get("walredo.redo")
                        .tags("outcome", "crashed", "attempt", "read_page")
                        .timer()
                        .count());
        assertEquals(
                AttemptType.READ_PAGE.retries(),
                registry.get("walredo.redo.retries")
                        .tags("attempt", "read_page")
                        .counter()
                        .count());
        assertEquals(
                1 + AttemptType.READ_PAGE.retries(),
                registry.get("walredo.sidecar.stopped")
                        .tags("cause", "error")
                        .counter()
                        .count());
    }

    @Test
    void theTenantTagIsOptInAndRefusalsAreCountedByReason() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        WalRedoMeters meters = WalRedoMeters.builder(registry).tenantTag(true).build();
        WalRedoConfig cfg = config(Fault.DELAY_US.args(300_000))
                .maxQueuedPerTenant(1)
                .metricsListener(meters)
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.ping(T, PG);
            AtomicInteger refused = new AtomicInteger();
            List<Thread> callers = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                int n = i;
                callers.add(Thread.ofVirtual().start(() -> {
                    try {
                        m.redo(T, request(10 + n), AttemptType.GC_COMPACTION);
                    } catch (TenantOverloadedException e) {
                        refused.incrementAndGet();
                    } catch (WalRedoException e) {
                        throw new AssertionError(e);
                    }
                }));
            }
            for (Thread t : callers) {
                assertTrue(t.join(Duration.ofSeconds(30)));
            }
            assertTrue(refused.get() > 0, "with a bound of 1 and 4 callers some must be refused");
            assertEquals(
                    refused.get(),
                    registry.get("walredo.redo.refused")
                            .tags("reason", "queue_bound", "tenant", T.toString())
                            .counter()
                            .count());
            assertEquals(
                    refused.get(),
                    registry.get("walredo.redo")
                            .tags("outcome", "overloaded", "tenant", T.toString())
                            .timer()
                            .count());
        }
    }
}
