// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import org.HdrHistogram.Histogram;

/**
 * Order statistics of a set of durations, in nanoseconds, through an HdrHistogram {@link Histogram} of
 * {@value #SIGNIFICANT_DIGITS} significant digits. Percentiles are nearest-rank: with n samples, p99 of fewer than
 * 100 samples is the maximum, and the report says n. Each percentile and the maximum is the highest value of its
 * bucket, so within 0.1 % above the sample (exact below 2048 ns); the mean is within 0.1 % too. The reports print
 * three significant digits, so they show no difference from exact order statistics.
 *
 * @param n samples
 * @param p50 median
 * @param p90 90th percentile
 * @param p99 99th percentile
 * @param max largest sample
 * @param mean arithmetic mean
 */
record Stats(int n, long p50, long p90, long p99, long max, double mean) {

    /** HdrHistogram's precision for every latency the bench reports: 0.1 %. */
    static final int SIGNIFICANT_DIGITS = 3;

    /** The statistics of {@code nanos}, negative values counted as 0. */
    static Stats of(long[] nanos) {
        if (nanos.length == 0) {
            throw new IllegalArgumentException("no samples");
        }
        Histogram h = new Histogram(SIGNIFICANT_DIGITS);
        for (long v : nanos) {
            h.recordValue(Math.max(0, v));
        }
        return of(h);
    }

    /** The statistics of a histogram that holds at least one value. */
    static Stats of(Histogram h) {
        if (h.getTotalCount() == 0) {
            throw new IllegalArgumentException("no samples");
        }
        return new Stats(
                Math.toIntExact(h.getTotalCount()),
                h.getValueAtPercentile(50),
                h.getValueAtPercentile(90),
                h.getValueAtPercentile(99),
                h.getMaxValue(),
                h.getMean());
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
            return String.format(
                    nanos < 10_000_000 ? "%.2f ms" : nanos < 100_000_000 ? "%.1f ms" : "%.0f ms", nanos / 1e6);
        }
        return String.format("%.2f s", nanos / 1e9);
    }

    /** A ratio with two significant decimals, "x" suffixed. */
    static String ratio(double r) {
        return String.format(r >= 100 ? "%.0fx" : r >= 10 ? "%.1fx" : "%.2fx", r);
    }
}
