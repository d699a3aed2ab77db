// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class IntervalHistogramTest {

    @Test
    void everyValueLiesInItsBucketWithinOneSixteenth() {
        SplittableRandom rnd = new SplittableRandom(1);
        for (int i = 0; i < 100_000; i++) {
            long v = rnd.nextLong(Long.MAX_VALUE) >>> rnd.nextInt(63);
            int index = IntervalHistogram.index(v);
            long upper = IntervalHistogram.upperBound(index);
            assertTrue(v <= upper, v + " above " + upper);
            assertTrue(index == 0 || v > IntervalHistogram.upperBound(index - 1), v + " belongs below " + index);
            assertTrue(upper - v <= v / 16, v + " reported as " + upper);
        }
        assertEquals(Long.MAX_VALUE, IntervalHistogram.upperBound(IntervalHistogram.index(Long.MAX_VALUE)));
    }

    @Test
    void quantileCoversOneIntervalOnly() {
        IntervalHistogram h = new IntervalHistogram();
        for (int i = 1; i <= 100; i++) {
            h.record(Duration.ofMillis(i).toNanos());
        }
        Duration p99 = h.takeQuantile(0.99);
        assertTrue(p99.compareTo(Duration.ofMillis(99)) >= 0 && p99.compareTo(Duration.ofMillis(106)) <= 0, p99.toString());

        h.record(Duration.ofMillis(1).toNanos());
        assertTrue(h.takeQuantile(0.99).compareTo(Duration.ofNanos(1_062_500)) <= 0);
        assertEquals(Duration.ZERO, h.takeQuantile(0.99));
    }
}
