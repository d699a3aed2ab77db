// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.time.Duration;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Latencies of one progress interval, so the demo's progress line shows the p99 of the last second rather than of
 * the whole run: an HdrHistogram {@link Recorder}. Every caller records, wait-free; one thread (the progress loop)
 * takes the percentile, which starts a new interval. Values keep {@value Stats#SIGNIFICANT_DIGITS} significant
 * digits: a percentile is reported as the highest value of its bucket, within 0.1 % above the recorded value.
 *
 * <p>The Recorder's interval swap waits for writers already inside {@code recordValue}, so a sample recorded
 * while the interval switches counts in exactly one interval (the hand-written histogram this replaced could
 * lose it).
 */
final class IntervalHistogram {
    private final Recorder recorder = new Recorder(Stats.SIGNIFICANT_DIGITS);

    /** Records one latency, negative values as 0; any thread. */
    void record(long nanos) {
        recorder.recordValue(Math.max(0, nanos));
    }

    /**
     * The {@code quantile} (0 to 1) of the latencies recorded since the previous take, nearest-rank, or
     * {@link Duration#ZERO} if there were none; starts a new interval. Called by one thread at a time.
     */
    Duration takeQuantile(double quantile) {
        Histogram h = takeInterval();
        return h.getTotalCount() == 0 ? Duration.ZERO : Duration.ofNanos(h.getValueAtPercentile(quantile * 100));
    }

    /** Everything recorded since the previous take, as a new histogram; starts a new interval. One thread at a time. */
    Histogram takeInterval() {
        return recorder.getIntervalHistogram();
    }
}
