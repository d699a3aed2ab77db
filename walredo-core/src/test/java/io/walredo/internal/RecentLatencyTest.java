// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.WalRedoMetrics;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The recent window forgets what is older than a minute; the whole-life histogram does not. */
class RecentLatencyTest {

    private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final long S = TimeUnit.SECONDS.toNanos(1);

    private long now;
    private final RecentLatency recent = new RecentLatency(() -> now);
    private final LatencyHistogram life = new LatencyHistogram();

    private void record(long nanos, int times) {
        for (int i = 0; i < times; i++) {
            recent.record(nanos);
            life.record(nanos);
        }
    }

    /** nanoTime has an arbitrary origin, negative included. */
    @ParameterizedTest
    @ValueSource(longs = {0L, -7_000_000_000_000L, 5_000_000_000_000L})
    void aSlowSpellLeavesTheWindowAfterAMinuteButStaysInTheWholeLife(long origin) {
        now = origin;
        record(500 * MS, 100); // a slow spell
        now += 20 * S;
        record(MS, 1000);
        WalRedoMetrics.Latency during = recent.snapshot();
        assertEquals(1100, during.count());
        assertTrue(during.p99().compareTo(Duration.ofMillis(400)) > 0, "the slow spell shows: " + during);

        now += RecentLatency.WINDOW.toNanos(); // past the slow spell's slot, and the fast one's
        record(MS, 1000);
        WalRedoMetrics.Latency after = recent.snapshot();
        assertEquals(1000, after.count(), "only the last minute is counted: " + after);
        assertTrue(after.p99().compareTo(Duration.ofMillis(2)) < 0, "the slow spell is forgotten: " + after);
        assertTrue(life.snapshot().max().compareTo(Duration.ofMillis(400)) > 0, "the whole life still has it");
    }

    @Test
    void aSampleStaysForAtLeastTheWindowLessOneSlot() {
        now = 3 * S;
        record(7 * MS, 1);
        now += RecentLatency.WINDOW.toNanos() - RecentLatency.SLOT.toNanos() - 1;
        assertEquals(1, recent.snapshot().count(), "still within the window");
        now += 2 * RecentLatency.SLOT.toNanos();
        assertEquals(0, recent.snapshot().count(), "gone after the window");
    }

    @Test
    void aSlotIsReusedForItsNextPeriodWithoutItsOldCounts() {
        now = 0;
        record(MS, 5);
        now += RecentLatency.WINDOW.toNanos(); // the same slot, one full turn later
        record(2 * MS, 3);
        assertEquals(3, recent.snapshot().count());
    }

    @Test
    void nothingRecordedIsAnEmptyDistribution() {
        now = 42 * S;
        WalRedoMetrics.Latency empty = recent.snapshot();
        assertEquals(0, empty.count());
        assertEquals(Duration.ZERO, empty.p99());
    }
}
