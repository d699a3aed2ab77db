// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

class StatsTest {

    @Test
    void percentilesAreNearestRankAndExactForSmallValues() {
        Stats s = Stats.of(LongStream.rangeClosed(1, 100).map(i -> 101 - i).toArray());
        assertEquals(new Stats(100, 50, 90, 99, 100, 50.5), s);
    }

    @Test
    void withFewerThanAHundredSamplesP99IsTheMaximum() {
        Stats s = Stats.of(new long[] {3, 1, 2});
        assertEquals(3, s.p99());
        assertEquals(3, s.max());
        assertEquals(2, s.p50());
    }

    @Test
    void largeValuesAreWithinOneThousandth() {
        long[] v = {1_234_567, 9_876_543_210L};
        Stats s = Stats.of(v);
        assertTrue(s.p50() >= v[0] && s.p50() <= v[0] * 1.001, String.valueOf(s.p50()));
        assertTrue(s.max() >= v[1] && s.max() <= v[1] * 1.001, String.valueOf(s.max()));
    }

    @Test
    void noSamplesIsAnError() {
        assertThrows(IllegalArgumentException.class, () -> Stats.of(new long[0]));
    }
}
