// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/** The bookkeeping of {@link Alarms}, with the clock reading passed in: nothing here waits for time to pass. */
class AlarmsTest {

    private static final long HORIZON = TimeUnit.SECONDS.toNanos(1);
    /** Unparking a thread that was never started has no effect (LockSupport), so the bookkeeping tests wake nobody. */
    private final Thread me = Thread.ofPlatform().unstarted(() -> {});

    @Test
    void firesOnlyDueAlarmsAndTellsTheEarliestDeadline() {
        Alarms alarms = new Alarms();
        long now = 1_000_000;
        Alarms.Entry late = alarms.arm(now + 300, me);
        Alarms.Entry early = alarms.arm(now + 100, me);
        Alarms.Entry farAway = alarms.arm(now + 10 * HORIZON, me);

        alarms.fireDue(now);
        assertEquals(now + 100, alarms.earliestOr(-1), "nothing due yet; the earliest deadline is next");
        assertFalse(early.fired());
        alarms.fireDue(now + 100);
        assertEquals(now + 300, alarms.earliestOr(-1), "the earliest fired at its deadline, the next is later");
        assertTrue(early.fired());
        assertFalse(late.fired());
        alarms.fireDue(now + 300);
        assertTrue(late.fired());
        assertFalse(farAway.fired());
        assertEquals(1, alarms.size());
        assertEquals(now + 10 * HORIZON, alarms.earliestOr(-1));
    }

    /** A reactor that stops fires every alarm, due or not, so that its waiters wake and fall back to timed parks. */
    @Test
    void fireAllFiresEveryAlarmDueOrNot() {
        Alarms alarms = new Alarms();
        Alarms.Entry soon = alarms.arm(100, me);
        Alarms.Entry farAway = alarms.arm(100 + 10 * HORIZON, me);
        Alarms.Entry closed = alarms.arm(50, me);
        closed.close();
        alarms.fireAll();
        assertTrue(soon.fired());
        assertTrue(farAway.fired());
        assertFalse(closed.fired());
        assertEquals(0, alarms.size());
    }

    /**
     * An alarm reports how long after its deadline it fired, counted from the deadline (not from when it fell due)
     * to the clock reading of the pass that fired it; one not fired, closed first, or fired by a stopping reactor
     * reports -1.
     */
    @Test
    void anAlarmTellsHowLateItFired() {
        Alarms alarms = new Alarms();
        long deadline = 5_000_000;
        Alarms.Entry a = alarms.arm(deadline, deadline + 200, me);
        Alarms.Entry closed = alarms.arm(deadline, deadline + 200, me);
        Alarms.Entry stopped = alarms.arm(deadline + 10 * HORIZON, me);
        assertEquals(-1, a.lateNanos(), "not fired yet");
        closed.close();
        alarms.fireDue(deadline + 100);
        assertEquals(-1, a.lateNanos(), "not due until 200 ns after its deadline");
        alarms.fireDue(deadline + 1_000, deadline + 7_000);
        assertTrue(a.fired());
        assertEquals(7_000, a.lateNanos(), "from the deadline to the reading of the pass that fired it");
        assertEquals(-1, closed.lateNanos(), "closed before it was due");
        alarms.fireAll();
        assertTrue(stopped.fired());
        assertEquals(-1, stopped.lateNanos(), "fired early by a stopping reactor: no lateness");
    }

    @Test
    void aClosedAlarmNeverFiresAndClosingAFiredOneIsHarmless() {
        Alarms alarms = new Alarms();
        Alarms.Entry closed = alarms.arm(10, me);
        Alarms.Entry fired = alarms.arm(20, me);
        closed.close();
        closed.close();
        assertEquals(1, alarms.size());
        alarms.fireDue(100);
        assertEquals(-1, alarms.earliestOr(-1));
        assertFalse(closed.fired());
        assertTrue(fired.fired());
        fired.close();
        assertEquals(0, alarms.size());
        assertEquals(-1, alarms.earliestOr(-1));
    }

    @Test
    void deadlinesAcrossTheNanoTimeWrapKeepTheirOrder() {
        Alarms alarms = new Alarms();
        long now = Long.MAX_VALUE - 50;
        Alarms.Entry afterWrap = alarms.arm(Long.MIN_VALUE + 50, me); // 101 ns from now
        Alarms.Entry beforeWrap = alarms.arm(Long.MAX_VALUE - 10, me); // 40 ns from now

        alarms.fireDue(now);
        assertEquals(Long.MAX_VALUE - 10, alarms.earliestOr(0), "the one before the wrap is first");
        alarms.fireDue(now + 40);
        assertTrue(beforeWrap.fired());
        assertFalse(afterWrap.fired());
        assertEquals(Long.MIN_VALUE + 50, alarms.earliestOr(0));
        alarms.fireDue(now + 101);
        assertTrue(afterWrap.fired());
    }

    @Test
    void equalDeadlinesAreDistinctAlarms() {
        Alarms alarms = new Alarms();
        Alarms.Entry a = alarms.arm(5, me);
        Alarms.Entry b = alarms.arm(5, me);
        assertEquals(2, alarms.size());
        a.close();
        alarms.fireDue(5);
        assertFalse(a.fired());
        assertTrue(b.fired());
    }

    @Test
    void firingUnparksTheArmingThread() throws Exception {
        Alarms alarms = new Alarms();
        AtomicBoolean woken = new AtomicBoolean();
        CountDownLatch armed = new CountDownLatch(1);
        long[] at = new long[1];
        Thread sleeper = Thread.ofPlatform().start(() -> {
            at[0] = System.nanoTime();
            alarms.arm(at[0], Thread.currentThread());
            armed.countDown();
            while (!woken.get()) {
                LockSupport.park(this); // untimed: only the alarm (or a spurious wake-up) ends it
                woken.set(alarms.size() == 0);
            }
        });
        assertTrue(armed.await(10, TimeUnit.SECONDS));
        alarms.fireDue(at[0]);
        sleeper.join(Duration.ofSeconds(30));
        assertFalse(sleeper.isAlive(), "the alarm did not unpark its thread");
    }

    /**
     * Arming and closing race firing passes on several threads: every alarm ends exactly one way, fired or closed,
     * and one that was never closed always fires.
     */
    @Test
    void armCloseAndFireRaceWithoutLosingOrDoublingAnAlarm() throws Exception {
        Alarms alarms = new Alarms();
        int threads = 4;
        int perThread = 20_000;
        List<List<Alarms.Entry>> kept = new ArrayList<>();
        List<List<Alarms.Entry>> closed = new ArrayList<>();
        List<List<Boolean>> disarmed = new ArrayList<>();
        List<Thread> armers = new ArrayList<>();
        AtomicBoolean done = new AtomicBoolean();
        Thread parked = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                LockSupport.park(this);
            }
        });
        for (int t = 0; t < threads; t++) {
            List<Alarms.Entry> keep = new ArrayList<>();
            List<Alarms.Entry> close = new ArrayList<>();
            List<Boolean> won = new ArrayList<>();
            kept.add(keep);
            closed.add(close);
            disarmed.add(won);
            long seed = t;
            armers.add(Thread.ofPlatform().start(() -> {
                SplittableRandom random = new SplittableRandom(seed);
                for (int i = 0; i < perThread; i++) {
                    Alarms.Entry e = alarms.arm(System.nanoTime() + random.nextInt(2_000), parked);
                    if (random.nextBoolean()) {
                        won.add(e.disarm());
                        close.add(e);
                    } else {
                        keep.add(e);
                    }
                }
            }));
        }
        // Three threads firing due alarms at once, as the reactor's pass and callers arming alarms do.
        List<Thread> firers = new ArrayList<>();
        for (int f = 0; f < 3; f++) {
            firers.add(Thread.ofPlatform().start(() -> {
                while (armers.stream().anyMatch(Thread::isAlive) || alarms.size() > 0) {
                    alarms.fireDue(System.nanoTime());
                }
            }));
        }
        for (Thread a : armers) {
            a.join(Duration.ofSeconds(60));
        }
        for (Thread firer : firers) {
            firer.join(Duration.ofSeconds(60));
            assertFalse(firer.isAlive(), "alarms left unfired: " + alarms.size());
        }
        done.set(true);
        LockSupport.unpark(parked);
        parked.join(Duration.ofSeconds(10));
        for (int t = 0; t < threads; t++) {
            for (Alarms.Entry e : kept.get(t)) {
                assertTrue(e.fired(), "an alarm that was never closed did not fire");
            }
            for (int i = 0; i < closed.get(t).size(); i++) {
                assertEquals(
                        !disarmed.get(t).get(i),
                        closed.get(t).get(i).fired(),
                        "an alarm must end either disarmed or fired, never both or neither");
            }
        }
        assertEquals(0, alarms.size());
    }
}
