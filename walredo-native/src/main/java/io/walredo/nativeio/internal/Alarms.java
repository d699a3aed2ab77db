// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.DeadlineAlarm;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The armed {@link DeadlineAlarm}s of one reactor, ordered by deadline. Pure bookkeeping: the caller supplies the
 * clock reading, so every rule here is tested without waiting.
 *
 * <p>An alarm is {@code ARMED} until exactly one of two CASes wins: {@link #fireDue} sets {@code FIRED} (and only then
 * unparks its thread), {@link Entry#close()} sets {@code DISARMED} (and only then removes it). So a closed alarm never
 * fires, and a fired one is not in the set any more.
 *
 * <p>Deadlines are {@link System#nanoTime()} values compared by subtraction; every live deadline lies within {@code
 * Long.MAX_VALUE / 2} of now ({@link io.walredo.nativeio.Deadline}), so any two differ by less than {@code
 * Long.MAX_VALUE} and the order is consistent.
 *
 * <p>Thread-safe: every method from any thread; the reactor and callers arming alarms fire due ones concurrently.
 * Internal API.
 */
public final class Alarms {

    /** An alarm's state; see the class comment for the two transitions out of ARMED. */
    enum State {
        ARMED,
        FIRED,
        DISARMED
    }

    /** CAS on {@link Entry}'s state field, so an alarm is one object; enum constants compare by reference. */
    private static final VarHandle STATE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(Entry.class, "state", State.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static final Comparator<Entry> ORDER = (a, b) -> {
        long d = a.at - b.at;
        return d != 0 ? (d < 0 ? -1 : 1) : Long.compare(a.seq, b.seq);
    };

    /** A map only because its {@code firstEntry()} returns null when empty (a set's {@code first()} throws). */
    private final ConcurrentSkipListMap<Entry, Boolean> armed = new ConcurrentSkipListMap<>(ORDER);

    private final AtomicLong sequence = new AtomicLong();

    /** Arms an alarm that unparks {@code thread} at {@code atNanos} (a {@code System.nanoTime()} value). */
    public Entry arm(long atNanos, Thread thread) {
        return arm(atNanos, atNanos, thread);
    }

    /**
     * As {@link #arm(long, Thread)}, for a deadline at {@code deadlineNanos} whose alarm is due at {@code atNanos}
     * (no earlier): {@link Entry#lateNanos()} counts from the deadline.
     */
    public Entry arm(long deadlineNanos, long atNanos, Thread thread) {
        Entry e = new Entry(this, deadlineNanos, atNanos, sequence.incrementAndGet(), thread);
        armed.put(e, Boolean.TRUE);
        return e;
    }

    /**
     * Fires every alarm due at {@code now} (unparks its thread). Any thread: each alarm is fired by the one thread
     * whose removal and CAS win, however many fire at once.
     */
    public void fireDue(long now) {
        fireDue(now, now);
    }

    /**
     * Fires every alarm due at {@code dueBy} (no later than {@code now}), recording {@code now} as the moment each
     * fired: the reactor fires at each pass the alarms an earlier pass saw due.
     */
    public void fireDue(long dueBy, long now) {
        Entry first;
        while ((first = firstOrNull()) != null && first.at - dueBy <= 0) {
            if (armed.remove(first) != null) {
                // Only the thread whose removal won writes this, before the CAS that publishes FIRED.
                first.firedAt = now;
                if (STATE.compareAndSet(first, State.ARMED, State.FIRED)) {
                    LockSupport.unpark(first.thread);
                }
            }
        }
    }

    /**
     * Fires every armed alarm, due or not: the reactor is stopping, and its waiters must wake to fall back to timed
     * parks ({@link Readiness}). Any thread. These alarms report no lateness ({@link Entry#lateNanos()} is -1).
     */
    public void fireAll() {
        Entry first;
        while ((first = firstOrNull()) != null) {
            if (armed.remove(first) != null && STATE.compareAndSet(first, State.ARMED, State.FIRED)) {
                LockSupport.unpark(first.thread);
            }
        }
    }

    /** Returns the earliest armed deadline, or {@code none} if no alarm is armed. */
    public long earliestOr(long none) {
        Entry first = firstOrNull();
        return first == null ? none : first.at;
    }

    /** Returns the number of armed alarms (for tests and diagnostics). */
    public int size() {
        return armed.size();
    }

    private Entry firstOrNull() {
        Map.Entry<Entry, Boolean> first = armed.firstEntry();
        return first == null ? null : first.getKey();
    }

    /** One armed alarm. */
    public static final class Entry implements DeadlineAlarm {
        private final Alarms owner;
        final long deadline;
        final long at;
        final long seq;
        final Thread thread;

        /**
         * The clock reading {@link #fireDue} fired this at; 0 if not fired by it (0 is a possible reading, once in
         * 2^64 nanoseconds; it only drops one sample). Published by the CAS to FIRED.
         */
        private long firedAt;

        @SuppressWarnings("unused") // through STATE
        private volatile State state = State.ARMED;

        private Entry(Alarms owner, long deadline, long at, long seq, Thread thread) {
            this.owner = owner;
            this.deadline = deadline;
            this.at = at;
            this.seq = seq;
            this.thread = thread;
        }

        @Override
        public void close() {
            disarm();
        }

        /** Disarms; returns true if this call stopped the alarm from firing (false: closed before, or fired). */
        boolean disarm() {
            if (STATE.compareAndSet(this, State.ARMED, State.DISARMED)) {
                owner.armed.remove(this);
                return true;
            }
            return false;
        }

        @Override
        public long lateNanos() {
            if (!fired()) {
                return -1;
            }
            long fired = firedAt;
            return fired == 0 ? -1 : Math.max(0, fired - deadline);
        }

        /** Returns true once the alarm has fired (its thread unparked or about to be). */
        boolean fired() {
            return (State) STATE.getVolatile(this) == State.FIRED;
        }
    }
}
