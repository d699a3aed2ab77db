// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.WalRedoMetrics;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Latency percentiles over a recent window ({@link #WINDOW}), so that in a process that runs for months they still
 * move when latency changes (a whole-life histogram is dominated by its history).
 *
 * <p>{@link #SLOTS} histograms each cover one {@link #SLOT} of the clock, used round-robin: a slot is cleared when
 * the clock enters a new period that maps to it, and a snapshot merges the slots of the last {@code SLOTS} periods,
 * so it covers between {@code WINDOW - SLOT} and {@code WINDOW} of history. Lock-free; a record racing the clear of
 * its slot may be lost or counted in the new period, an error of a few samples at a period's edge. Memory: {@code
 * SLOTS} histograms of about 8 KiB.
 */
final class RecentLatency {

    /** How far back a snapshot looks, at most. */
    static final Duration WINDOW = Duration.ofSeconds(60);
    /** How many slots the window is cut into. */
    static final int SLOTS = 6;
    /** One slot's period. */
    static final Duration SLOT = WINDOW.dividedBy(SLOTS);

    /** No period (nanoTime, and so a period, may be negative). */
    private static final long NONE = Long.MIN_VALUE;

    private final LongSupplier nanoClock;
    private final long slotNanos = SLOT.toNanos();
    private final LatencyHistogram[] histograms = new LatencyHistogram[SLOTS];
    /** The period each slot holds, or {@link #NONE} if none yet. */
    private final AtomicLong[] periods = new AtomicLong[SLOTS];

    RecentLatency(LongSupplier nanoClock) {
        this.nanoClock = nanoClock;
        for (int i = 0; i < SLOTS; i++) {
            histograms[i] = new LatencyHistogram();
            periods[i] = new AtomicLong(NONE);
        }
    }

    void record(long nanos) {
        long period = Math.floorDiv(nanoClock.getAsLong(), slotNanos);
        int slot = (int) Math.floorMod(period, SLOTS);
        AtomicLong held = periods[slot];
        long p = held.get();
        if (p != period) {
            if ((p != NONE && p > period) || !held.compareAndSet(p, period)) {
                // Another recorder moved the slot on (or the clock stepped back): count it where it now is.
                if (held.get() != period) {
                    return;
                }
            } else {
                histograms[slot].clear();
            }
        }
        histograms[slot].record(nanos);
    }

    /** Percentiles of what was recorded in the slots of the last {@link #SLOTS} periods. */
    WalRedoMetrics.Latency snapshot() {
        long now = Math.floorDiv(nanoClock.getAsLong(), slotNanos);
        LatencyHistogram merged = new LatencyHistogram();
        for (int i = 0; i < SLOTS; i++) {
            long p = periods[i].get();
            if (p != NONE && p <= now && now - p < SLOTS) {
                merged.add(histograms[i]);
            }
        }
        return merged.snapshot();
    }
}
