// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** The edges of admission's estimate and of the reader's polling budget, on a clock the test drives. */
class ServiceTimesTest {

    private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final long US = TimeUnit.MICROSECONDS.toNanos(1);
    private static final BooleanSupplier NOTHING_WAITING = () -> false;

    private final ServiceTimes t = new ServiceTimes(new StartupTimes());
    private long now = 1_000_000_000L;

    /** One lone request answered after {@code nanos}. */
    private void lone(long nanos) {
        t.started(now);
        now += nanos;
        t.answered(now, 1);
    }

    @Test
    void aFreshSidecarExpectsNoWait() {
        assertEquals(0, t.expectedWaitNanos(10, 0, now, NOTHING_WAITING));
        assertEquals(0, t.spinBudgetNanos(1));
    }

    @Test
    void theWaitIsTheAnswersAheadTimesTheTypicalAnswer() {
        for (int i = 0; i < 10; i++) {
            lone(20 * MS);
        }
        assertEquals(5 * 20 * MS, t.expectedWaitNanos(5, 0, now, NOTHING_WAITING));
    }

    @Test
    void theProcesssFirstAnswerIsNotHistory() {
        // The first answer's time includes the process's start-up: the requests behind it must not be refused as if
        // every answer took that long (the demo saw TenantOverloadedException for a sidecar that had just started).
        lone(700 * MS);
        assertEquals(0, t.expectedWaitNanos(15, 0, now, NOTHING_WAITING));
        assertEquals(0, t.spinBudgetNanos(1));
        lone(2 * MS);
        assertEquals(15 * 2 * MS, t.expectedWaitNanos(15, 0, now, NOTHING_WAITING), "the second answer is history");
    }

    @Test
    void aStartUpIsJudgedAgainstThePeersRecentStartUps() {
        StartupTimes peers = new StartupTimes();
        ServiceTimes starting = new ServiceTimes(peers);
        starting.started(now);
        now += 2500 * MS;
        assertFalse(starting.startingNoSlowerThanPeers(1, now), "no peer has started yet");
        ServiceTimes peer = new ServiceTimes(peers);
        peer.started(now - 3000 * MS);
        peer.answered(now, 1); // its first answer: a 3 s start-up
        assertTrue(starting.startingNoSlowerThanPeers(1, now), "2.5 s into a start-up, peers took 3 s");
        assertFalse(starting.startingNoSlowerThanPeers(0, now), "nothing owed: not starting on anything");
        now += 600 * MS;
        assertFalse(starting.startingNoSlowerThanPeers(1, now), "3.1 s: slower than every recent peer");
        starting.answered(now, 1);
        assertFalse(starting.startingNoSlowerThanPeers(1, now), "answered: started");
        assertEquals(3100 * MS, peers.slowestNanos(), "its own start-up joins the peers'");
        for (int i = 0; i < StartupTimes.WINDOW; i++) {
            peers.record(MS);
        }
        assertEquals(MS, peers.slowestNanos(), "only the latest start-ups count");
    }

    @Test
    void whileTheFirstAnswerIsOwedTheWaitSoFarCounts() {
        t.started(now);
        now += 800 * MS;
        assertEquals(800 * MS, t.expectedWaitNanos(3, 1, now, NOTHING_WAITING), "a hung first answer still counts");
    }

    @Test
    void answersReadInBurstsCountAtTheirMeanNotAtTheLatestGap() {
        // A JVM that reads late reads several answers at once: one long gap, then near-zero ones. The moving average
        // (weight 1/4) used before stood at 37 ms after each long gap here, against a mean of 26 ms; admission refused
        // at those peaks calls that a call admitted right after was served in time (chaos soak without faults).
        t.started(now);
        now += MS;
        t.answered(now, 20); // the process's first answer, not history
        for (int burst = 0; burst < 4; burst++) {
            for (int i = 0; i < 3; i++) {
                now += MS;
                t.answered(now, 20);
            }
            now += 100 * MS;
            t.answered(now, 20);
        }
        // The last 16 answers: 12 of 1 ms and 4 of 100 ms, the latest a long gap.
        assertEquals(10 * ((12 * MS + 4 * 100 * MS) / 16), t.expectedWaitNanos(10, 0, now, NOTHING_WAITING));
    }

    @Test
    void oneSlowAnswerAmongFastOnesStopsCountingAtTheNextFastOne() {
        for (int i = 0; i < 10; i++) {
            lone(MS);
        }
        lone(1000 * MS);
        long afterSlow = t.expectedWaitNanos(4, 0, now, NOTHING_WAITING);
        assertTrue(afterSlow > 4 * MS, "the slow answer counts while it is the last: " + afterSlow);
        lone(MS);
        assertEquals(4 * MS, t.expectedWaitNanos(4, 0, now, NOTHING_WAITING), "the next fast answer ends it");
    }

    @Test
    void aSidecarThatHasGoneSlowShowsItBeforeItsSlowAnswerArrives() {
        for (int i = 0; i < 10; i++) {
            lone(MS);
        }
        t.started(now);
        now += 800 * MS; // still on this answer
        // The stall counts for the answer in progress, the two behind it at the typical 1 ms: a caller with less
        // than 802 ms left is refused, one with more is admitted (multiplying the stall refused healthy traffic).
        assertEquals(800 * MS + 2 * MS, t.expectedWaitNanos(3, 1, now, NOTHING_WAITING));
    }

    @Test
    void anAnswerAlreadyInThePipeIsNoSignOfASlowSidecar() {
        for (int i = 0; i < 10; i++) {
            lone(MS);
        }
        t.started(now);
        now += 800 * MS; // only our reader is late: the answer is there
        int[] asked = {0};
        assertEquals(3 * MS, t.expectedWaitNanos(3, 1, now, () -> {
            asked[0]++;
            return true;
        }));
        assertEquals(1, asked[0]);
    }

    @Test
    void belowTheCheckThresholdStdoutIsNotLookedAt() {
        lone(MS);
        lone(MS);
        t.started(now);
        now += ServiceTimes.CURRENT_CHECK_NANOS - 1;
        assertEquals(ServiceTimes.CURRENT_CHECK_NANOS - 1 + MS, t.expectedWaitNanos(2, 1, now, () -> {
            throw new AssertionError("FIONREAD below the threshold");
        }));
    }

    @Test
    void steadyHistoryIsSureUntilTheAnswerInProgressOutlastsTheSpread() {
        for (int i = 0; i < 10; i++) {
            lone(20 * MS);
        }
        assertEquals(1, t.margin(0, now));
        t.started(now);
        now += 4 * 20 * MS; // the answer in progress: at most 4 x the typical 20 ms
        assertEquals(1, t.margin(1, now));
        now += 1;
        assertEquals(ServiceTimes.UNSURE_MARGIN, t.margin(1, now), "the estimate now rests on the answer in progress");
    }

    @Test
    void anEstimateWithoutHistoryIsUnsureAndOneMeasuredAnswerIsHistory() {
        t.started(now);
        now += 800 * MS; // a process still starting
        assertEquals(ServiceTimes.UNSURE_MARGIN, t.margin(1, now));
        t.answered(now, 1); // its first answer: not history
        assertEquals(ServiceTimes.UNSURE_MARGIN, t.margin(0, now));
        // One measured answer is enough: a steadily slow sidecar (the slow-server benchmark's 1 s answers) must be
        // refused from its first measured answer on, or it holds every caller that arrives before its second.
        lone(400 * MS);
        assertEquals(1, t.margin(0, now));
    }

    @Test
    void historySpreadMoreThanFourfoldIsUnsureUntilItLeavesTheWindow() {
        lone(10 * MS); // the process's first answer, not history
        lone(10 * MS);
        lone(40 * MS);
        assertEquals(1, t.margin(0, now), "4 x apart is still steady");
        lone(40 * MS + 1);
        assertEquals(ServiceTimes.UNSURE_MARGIN, t.margin(0, now));
        for (int i = 0; i < ServiceTimes.WINDOW - 1; i++) {
            lone(10 * MS);
            assertEquals(ServiceTimes.UNSURE_MARGIN, t.margin(0, now), "the long answer is still in the window");
        }
        lone(10 * MS);
        assertEquals(1, t.margin(0, now), "the window no longer holds anything but 10 ms answers");
    }

    @Test
    void theReaderPollsOnlyForALoneFastAnswerAndForTwiceItsRoundTripAtMost() {
        for (int i = 0; i < 10; i++) {
            lone(30 * US);
        }
        assertEquals(60 * US, t.spinBudgetNanos(1));
        assertEquals(0, t.spinBudgetNanos(2), "several answers owed: park");
        ServiceTimes slow = new ServiceTimes(new StartupTimes());
        for (int i = 0; i < 2; i++) {
            slow.started(now);
            now += ServiceTimes.SPIN_LIMIT_NANOS;
            slow.answered(now, 1);
        }
        assertEquals(0, slow.spinBudgetNanos(1), "round trips at the limit are not polled for");
    }

    @Test
    void pipelinedAnswersDoNotCountAsLoneRoundTrips() {
        t.started(now);
        t.answered(now, 1); // the process's first answer, never history
        t.started(now);
        t.joined(); // a second request joined
        now += 10 * US;
        t.answered(now, 2);
        assertEquals(0, t.spinBudgetNanos(1), "no lone round trip measured yet");
        assertEquals(10 * US, t.expectedWaitNanos(1, 0, now, NOTHING_WAITING));
    }

    @Test
    void aHugeEstimateSaturatesInsteadOfOverflowing() {
        lone(MS);
        lone(Long.MAX_VALUE / 4);
        assertEquals(Long.MAX_VALUE, t.expectedWaitNanos(1000, 0, now, NOTHING_WAITING));
    }
}
