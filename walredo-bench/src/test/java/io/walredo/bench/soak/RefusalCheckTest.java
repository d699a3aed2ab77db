// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench.soak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class RefusalCheckTest {
    private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final long DEADLINE = 2_000 * MS;

    private static void refuse(RefusalCheck c, int tenant, long at, String what) {
        c.refused(tenant, at, at + DEADLINE, what);
    }

    @Test
    void aRefusalIsWrongWhenALaterCallToTheSameTenantWasServedBeforeItsDeadline() {
        RefusalCheck c = new RefusalCheck(4);
        refuse(c, 1, 1_000 * MS, "wrong");
        refuse(c, 1, 1_100 * MS, "wrong too: the same later call judges both");
        c.served(1, 1_200 * MS, 2_900 * MS);
        assertEquals(
                new RefusalCheck.Verdict(2, 2, 0, 0, List.of("wrong", "wrong too: the same later call judges both")),
                c.verdict(5));
    }

    @Test
    void aServedCallThatCannotJudgeARefusalLeavesItAlone() {
        RefusalCheck c = new RefusalCheck(4);
        refuse(c, 1, 1_000 * MS, "refused");
        c.served(1, 900 * MS, 1_500 * MS); // started before the refusal: it was ahead, not behind
        c.served(1, 1_251 * MS, 1_300 * MS); // started more than 250 ms later: the queue may have changed
        c.served(1, 1_100 * MS, 3_001 * MS); // answered after the refused call's deadline
        c.served(2, 1_100 * MS, 1_200 * MS); // another tenant
        assertEquals(new RefusalCheck.Verdict(1, 0, 0, 1, List.of()), c.verdict(5));
    }

    @Test
    void aRefusalBesideATimedOutCallOfTheSameTenantIsJustified() {
        RefusalCheck c = new RefusalCheck(4);
        c.timedOut(3, 1_000 * MS);
        refuse(c, 3, 1_200 * MS, "after");
        refuse(c, 3, 750 * MS, "at the window's edge");
        refuse(c, 3, 1_251 * MS, "too late");
        refuse(c, 2, 1_000 * MS, "another tenant's timeout");
        RefusalCheck.Verdict v = c.verdict(5);
        assertEquals(new RefusalCheck.Verdict(4, 0, 2, 2, List.of()), v);
    }

    @Test
    void examplesAreBounded() {
        RefusalCheck c = new RefusalCheck(1);
        for (int i = 0; i < 10; i++) {
            refuse(c, 0, i * MS, "refusal " + i);
        }
        c.served(0, 10 * MS, 20 * MS);
        RefusalCheck.Verdict v = c.verdict(3);
        assertEquals(10, v.wrong());
        assertEquals(3, v.examples().size());
    }

    @Test
    void neighboursAreFoundAnywhereInASortedSeries() {
        long[] starts = {10 * MS, 2_000 * MS, 5_000 * MS};
        assertTrue(RefusalCheck.hasNeighbour(starts, 2_100 * MS));
        assertTrue(RefusalCheck.hasNeighbour(starts, 4_800 * MS));
        assertTrue(RefusalCheck.hasNeighbour(starts, 0));
        assertFalse(RefusalCheck.hasNeighbour(starts, 3_000 * MS));
        assertFalse(RefusalCheck.hasNeighbour(starts, 6_000 * MS));
        assertFalse(RefusalCheck.hasNeighbour(new long[0], 0));
        assertFalse(RefusalCheck.hasNeighbour(null, 0));
    }
}
