// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Latencies of one progress interval, so the demo's progress line shows the p99 of the last second rather
 * than of the whole run. Every caller records; one thread (the progress loop) takes the percentile, which
 * starts a new interval. Buckets are log-linear, 16 per power of two: a percentile is reported as the upper
 * bound of its bucket, within 1/16 (6.25 %) of the recorded value.
 *
 * <p>A sample recorded while the interval is being switched may land in the old array after it was read and
 * be counted in neither interval; a progress line can afford that, a benchmark could not.
 */
final class IntervalHistogram {
    private static final int SUB_BITS = 4;
    private static final int SUB = 1 << SUB_BITS;
    /** Enough for any non-negative long: its top bit is at most 62. */
    private static final int BUCKETS = (63 - SUB_BITS + 1) * SUB;

    private volatile AtomicLongArray counts = new AtomicLongArray(BUCKETS);

    /** Records one latency; any thread. */
    void record(long nanos) {
        counts.incrementAndGet(index(Math.max(0, nanos)));
    }

    /**
     * The {@code quantile} (0 to 1) of the latencies recorded since the previous call, or {@link Duration#ZERO}
     * if there were none; starts a new interval. Called by one thread at a time.
     */
    Duration takeQuantile(double quantile) {
        AtomicLongArray c = counts;
        counts = new AtomicLongArray(BUCKETS);
        long total = 0;
        for (int i = 0; i < BUCKETS; i++) {
            total += c.get(i);
        }
        if (total == 0) {
            return Duration.ZERO;
        }
        long rank = Math.max(1, (long) Math.ceil(quantile * total));
        long seen = 0;
        for (int i = 0; i < BUCKETS; i++) {
            seen += c.get(i);
            if (seen >= rank) {
                return Duration.ofNanos(upperBound(i));
            }
        }
        return Duration.ofNanos(Long.MAX_VALUE);
    }

    /** Values below 16 have a bucket each; above, the top 5 significant bits pick the bucket. */
    static int index(long v) {
        if (v < SUB) {
            return (int) v;
        }
        int shift = 63 - Long.numberOfLeadingZeros(v) - SUB_BITS;
        return (shift + 1) * SUB + (int) ((v >>> shift) & (SUB - 1));
    }

    /** The largest value whose bucket is {@code index}. */
    static long upperBound(int index) {
        if (index < SUB) {
            return index;
        }
        int shift = index / SUB - 1;
        long sub = index % SUB;
        // A long's top bit is at most 62, so shift is at most 58 and this stays below 2^63.
        return ((SUB + sub) << shift) + ((1L << shift) - 1);
    }
}
