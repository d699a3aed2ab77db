// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class IntervalHistogramTest {

    @Test
    void quantileCoversOneIntervalOnly() {
        IntervalHistogram h = new IntervalHistogram();
        for (int i = 1; i <= 100; i++) {
            h.record(Duration.ofMillis(i).toNanos());
        }
        Duration p99 = h.takeQuantile(0.99);
        assertTrue(p99.compareTo(Duration.ofMillis(99)) >= 0 && p99.toNanos() <= 99_000_000 * 1.001, p99.toString());

        h.record(Duration.ofMillis(1).toNanos());
        assertTrue(h.takeQuantile(0.99).toNanos() <= 1_000_000 * 1.001);
        assertEquals(Duration.ZERO, h.takeQuantile(0.99));
    }

    @Test
    void smallValuesAreExactAndNegativeOnesCountAsZero() {
        IntervalHistogram h = new IntervalHistogram();
        h.record(-5);
        h.record(1500);
        assertEquals(2, h.takeInterval().getTotalCount());
        h.record(1500);
        assertEquals(Duration.ofNanos(1500), h.takeQuantile(0.5));
    }

    @Test
    void everySampleRecordedDuringIntervalSwitchesCountsInExactlyOneInterval() throws Exception {
        IntervalHistogram h = new IntervalHistogram();
        int writers = 4;
        int perWriter = 200_000;
        CountDownLatch start = new CountDownLatch(1);
        AtomicBoolean writing = new AtomicBoolean(true);
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
            long value = 1000L * (w + 1);
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    if (!start.await(30, TimeUnit.SECONDS)) {
                        return;
                    }
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < perWriter; i++) {
                    h.record(value);
                }
            }));
        }
        long counted = 0;
        start.countDown();
        while (writing.get()) {
            counted += h.takeInterval().getTotalCount();
            writing.set(threads.stream().anyMatch(Thread::isAlive));
        }
        for (Thread t : threads) {
            assertTrue(t.join(Duration.ofSeconds(30)), "writer finished");
        }
        counted += h.takeInterval().getTotalCount();
        assertEquals((long) writers * perWriter, counted);
    }
}
