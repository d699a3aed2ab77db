// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.util.Arrays;

/**
 * Order statistics of a set of durations, in nanoseconds. Percentiles are nearest-rank on the sorted
 * samples: with n samples, p99 of fewer than 100 samples is the maximum, and the report says n.
 *
 * @param n samples
 * @param p50 median
 * @param p90 90th percentile
 * @param p99 99th percentile
 * @param max largest sample
 * @param mean arithmetic mean
 */
record Stats(int n, long p50, long p90, long p99, long max, double mean) {

    static Stats of(long[] nanos) {
        if (nanos.length == 0) {
            throw new IllegalArgumentException("no samples");
        }
        long[] s = nanos.clone();
        Arrays.sort(s);
        return new Stats(s.length, rank(s, 0.50), rank(s, 0.90), rank(s, 0.99), s[s.length - 1],
                Arrays.stream(s).average().orElseThrow());
    }

    private static long rank(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** Formats nanoseconds with a unit that keeps three significant digits. */
    static String time(double nanos) {
        if (nanos < 1_000) {
            return String.format("%.0f ns", nanos);
        }
        if (nanos < 1_000_000) {
            return String.format(nanos < 10_000 ? "%.2f µs" : nanos < 100_000 ? "%.1f µs" : "%.0f µs", nanos / 1e3);
        }
        if (nanos < 1_000_000_000) {
            return String.format(nanos < 10_000_000 ? "%.2f ms" : nanos < 100_000_000 ? "%.1f ms" : "%.0f ms",
                    nanos / 1e6);
        }
        return String.format("%.2f s", nanos / 1e9);
    }

    /** A ratio with two significant decimals, "x" suffixed. */
    static String ratio(double r) {
        return String.format(r >= 100 ? "%.0fx" : r >= 10 ? "%.1fx" : "%.2fx", r);
    }
}
