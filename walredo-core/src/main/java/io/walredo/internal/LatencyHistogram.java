// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.WalRedoMetrics;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A lock-free log-linear histogram of nanosecond durations: 16 linear sub-buckets per power of two, so a
 * reported percentile is within 1/16 of the true value. Fixed memory (about 8 KiB), no allocation on record.
 */
final class LatencyHistogram {
    private static final int SUB_BITS = 4;
    private static final int SUB = 1 << SUB_BITS;
    private static final int BUCKETS = (64 - SUB_BITS + 1) * SUB;

    private final AtomicLongArray counts = new AtomicLongArray(BUCKETS);

    void record(long nanos) {
        counts.incrementAndGet(index(Math.max(0, nanos)));
    }

    /** Empties it (not atomic as a whole: a record racing this may survive it). */
    void clear() {
        for (int i = 0; i < BUCKETS; i++) {
            counts.set(i, 0);
        }
    }

    /** Adds {@code other}'s counts to this one. */
    void add(LatencyHistogram other) {
        for (int i = 0; i < BUCKETS; i++) {
            long c = other.counts.get(i);
            if (c != 0) {
                counts.addAndGet(i, c);
            }
        }
    }

    static int index(long v) {
        if (v < SUB) {
            return (int) v;
        }
        int exp = 63 - Long.numberOfLeadingZeros(v);
        int sub = (int) (v >>> (exp - SUB_BITS)) & (SUB - 1);
        return (exp - SUB_BITS + 1) * SUB + sub;
    }

    /** A representative value (the middle) of bucket {@code i}. */
    static long valueOf(int i) {
        if (i < SUB) {
            return i;
        }
        int exp = i / SUB + SUB_BITS - 1;
        long sub = i % SUB;
        long low = (SUB + sub) << (exp - SUB_BITS);
        long width = 1L << (exp - SUB_BITS);
        return low + width / 2;
    }

    WalRedoMetrics.Latency snapshot() {
        long[] c = new long[BUCKETS];
        long total = 0;
        int maxIdx = 0;
        for (int i = 0; i < BUCKETS; i++) {
            c[i] = counts.get(i);
            total += c[i];
            if (c[i] > 0) {
                maxIdx = i;
            }
        }
        return new WalRedoMetrics.Latency(
                total,
                pct(c, total, 0.50),
                pct(c, total, 0.90),
                pct(c, total, 0.99),
                total == 0 ? Duration.ZERO : Duration.ofNanos(valueOf(maxIdx)));
    }

    private static Duration pct(long[] c, long total, double q) {
        if (total == 0) {
            return Duration.ZERO;
        }
        long rank = (long) Math.ceil(q * total);
        long seen = 0;
        for (int i = 0; i < c.length; i++) {
            seen += c[i];
            if (seen >= rank) {
                return Duration.ofNanos(valueOf(i));
            }
        }
        return Duration.ofNanos(valueOf(c.length - 1));
    }
}
