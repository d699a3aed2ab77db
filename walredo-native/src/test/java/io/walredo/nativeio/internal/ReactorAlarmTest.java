// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineAlarm;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * The reactor fires deadline alarms. Each reactor here sleeps up to an hour between passes, so an alarm fires in time
 * only if arming it woke the reactor (the eventfd) or the reactor planned for it: a lost wake-up leaves a thread parked
 * for an hour and fails the test at its join timeout instead.
 */
class ReactorAlarmTest {

    private static final Duration LONG_HORIZON = Duration.ofHours(1);
    private static final Duration JOIN = Duration.ofSeconds(60);

    @Test
    void anAlarmEarlierThanTheReactorsPlanWakesIt() throws Exception {
        Reactor reactor = Reactor.start(LONG_HORIZON);
        // Let the reactor plan its sleep around a far alarm first, then arm a near one from another thread.
        try (DeadlineAlarm far = reactor.arm(Deadline.after(Duration.ofMinutes(30)), Thread.currentThread())) {
            Thread sleeper =
                    Thread.ofPlatform().start(() -> sleepUntil(reactor, Deadline.after(Duration.ofMillis(20))));
            sleeper.join(JOIN);
            assertFalse(sleeper.isAlive(), "the near alarm never fired: arming it did not wake the reactor");
        }
        assertEquals(0, reactor.armedAlarms());
    }

    /**
     * Many virtual threads arm alarms a few milliseconds apart and park untimed until each has passed: every arm races
     * the reactor's planning, and none may be missed.
     */
    @Test
    void aBurstOfArmsRacingTheReactorLosesNone() throws Exception {
        Reactor reactor = Reactor.start(LONG_HORIZON);
        SplittableRandom random = new SplittableRandom(11);
        List<Thread> sleepers = new ArrayList<>();
        for (int i = 0; i < 5_000; i++) {
            long micros = random.nextLong(50_000);
            sleepers.add(Thread.ofVirtual()
                    .start(() -> sleepUntil(reactor, Deadline.after(Duration.ofNanos(micros * 1_000)))));
        }
        for (Thread t : sleepers) {
            t.join(JOIN);
            assertFalse(t.isAlive(), "an alarm was missed");
        }
        assertEquals(0, reactor.armedAlarms());
    }

    /**
     * The reactor here leaves due alarms to callers for an hour, so the parked thread wakes in time only if the next
     * thread to arm an alarm fires the one already due.
     */
    @Test
    void aThreadArmingAnAlarmFiresTheOnesAlreadyDue() throws Exception {
        Reactor reactor = Reactor.start(LONG_HORIZON, Duration.ofHours(1));
        Deadline due = Deadline.after(Duration.ofMillis(20));
        Thread sleeper = Thread.ofVirtual().start(() -> sleepUntil(reactor, due));
        // Until the alarm is due and its thread parked; a sleeper that ended instead was woken by the reactor.
        Deadline giveUp = Deadline.after(JOIN);
        while ((!due.isExpired() || sleeper.getState() != Thread.State.WAITING) && sleeper.isAlive()) {
            assertFalse(giveUp.isExpired(), "the sleeper never parked");
            Thread.sleep(5);
        }
        assertTrue(sleeper.isAlive(), "the reactor fired an alarm it should have left to callers");
        reactor.arm(Deadline.after(Duration.ofMinutes(1)), Thread.currentThread())
                .close();
        sleeper.join(JOIN);
        assertFalse(sleeper.isAlive(), "the due alarm was not fired by the thread that armed the next one");
        assertEquals(0, reactor.armedAlarms());
    }

    /**
     * An alarm is due only {@link Reactor#AFTER_DEADLINE_NANOS} after its deadline, so that a JDK timed wait computed
     * from the same deadline a moment later is over when the alarm wakes it. Forced: with only armers firing alarms,
     * another alarm is armed (which fires every due one) right after the deadline, then again once the slack has
     * passed. An attempt whose first arm came too late for the check is repeated.
     */
    @Test
    void anAlarmIsDueOnlyALittleAfterItsDeadline() throws Exception {
        Reactor reactor = Reactor.start(LONG_HORIZON, Duration.ofHours(1));
        Thread me = Thread.currentThread();
        for (int attempt = 0; attempt < 1_000; attempt++) {
            Deadline deadline = Deadline.after(Duration.ofMillis(2));
            Alarms.Entry alarm = (Alarms.Entry) reactor.arm(deadline, me);
            while (!deadline.isExpired()) {
                Thread.onSpinWait();
            }
            reactor.arm(Deadline.after(Duration.ofMinutes(1)), me).close();
            long after = System.nanoTime() - deadline.nanoTime();
            if (after < Reactor.AFTER_DEADLINE_NANOS) {
                assertFalse(alarm.fired(), "fired by an arm " + after + " ns after its deadline");
                while (System.nanoTime() - deadline.nanoTime() <= Reactor.AFTER_DEADLINE_NANOS) {
                    Thread.onSpinWait();
                }
                reactor.arm(Deadline.after(Duration.ofMinutes(1)), me).close();
                assertTrue(alarm.fired(), "not fired once the slack had passed");
                assertEquals(0, reactor.armedAlarms());
                return;
            }
            alarm.close();
        }
        throw new AssertionError("no arm came within the slack after a deadline in 1,000 attempts");
    }

    @Test
    void aClosedAlarmLeavesNothingArmed() throws Exception {
        Reactor reactor = Reactor.start(LONG_HORIZON);
        for (int i = 0; i < 1_000; i++) {
            reactor.arm(Deadline.after(Duration.ofMillis(i)), Thread.currentThread())
                    .close();
        }
        assertEquals(0, reactor.armedAlarms());
    }

    /** Arms an alarm for {@code deadline} and parks without a timeout until it has passed and the alarm has fired. */
    /**
     * A waiter checks that the reactor runs and then arms its alarm ({@link io.walredo.nativeio.internal.Readiness}):
     * if the loop ended between the two, the reactor's fire-all on its way out has already run, and an alarm armed
     * afterwards must fire at once, or the waiter's untimed park never ends. Failed before arm() re-checked: the alarm
     * stayed armed on the stopped reactor.
     */
    @Test
    void anAlarmArmedAfterTheLoopEndedFiresAtOnce() throws Exception {
        Reactor reactor = Reactor.start(LONG_HORIZON);
        LibC libc = NativeLibrary.get().libc();
        FdHandle efd = new FdHandle(libc.eventfd(0, Linux.EFD_CLOEXEC | Linux.EFD_NONBLOCK));
        // The loop catches a target's failure, but not a failure to log it: an Error whose stack trace cannot be read.
        reactor.register(efd, Linux.EPOLLIN, events -> {
            throw new Unloggable();
        });
        try (NativeMemory one = new NativeMemory(16)) {
            long address = one.allocate(Long.BYTES);
            one.putLong(address, 1);
            assertEquals(Long.BYTES, libc.write(efd.fd(), address, Long.BYTES));
        }
        Deadline giveUp = Deadline.after(JOIN);
        while (reactor.isRunning()) {
            assertFalse(giveUp.isExpired(), "the reactor's loop did not end");
            Thread.sleep(5);
        }
        Alarms.Entry alarm =
                (Alarms.Entry) reactor.armForWait(Deadline.after(Duration.ofHours(1)), Thread.currentThread());
        assertTrue(alarm.fired(), "an alarm armed on a stopped reactor stayed armed: its thread would park for good");
        assertEquals(-1, alarm.lateNanos(), "fired early, by a stopped reactor");
        assertEquals(0, reactor.armedWaitAlarms());
        efd.close();
    }

    /** An Error that cannot be logged: logback reads the stack trace of every throwable it logs. */
    private static final class Unloggable extends Error {
        Unloggable() {
            super("injected by ReactorAlarmTest", null, false, false);
        }

        @Override
        public StackTraceElement[] getStackTrace() {
            throw new Unloggable();
        }
    }

    private static void sleepUntil(Reactor reactor, Deadline deadline) {
        Alarms.Entry alarm = (Alarms.Entry) reactor.arm(deadline, Thread.currentThread());
        try {
            while (!alarm.fired()) {
                LockSupport.park(ReactorAlarmTest.class);
            }
            assertTrue(deadline.isExpired(), "fired before its deadline");
        } finally {
            alarm.close();
        }
    }
}
