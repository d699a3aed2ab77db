// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineAlarm;
import io.walredo.nativeio.NativeCallException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Readiness of one pipe end, registered one-shot with the reactor: a sequence number the reactor bumps on every epoll
 * event, and the one thread (the single reader or the single writer of that end) parked until it changes.
 *
 * <h2>Why no wake-up is lost</h2>
 *
 * <p>A waiter does, in this order: (1) read the sequence {@code s}; (2) try the non-blocking syscall and get EAGAIN;
 * (3) publish itself in {@link #waiter}; (4) re-arm the registration ({@link FdHandle#rearm()}); (5) re-read the
 * sequence and return if it is no longer {@code s}; (6) park. The reactor, for each event: (a) increments the
 * sequence; (b) reads {@link #waiter} and unparks it.
 *
 * <p>First, data (or room) that arrives after the syscall in (2) found the pipe empty (or full) produces an event.
 * If it arrives before (4), the re-arm finds the pipe ready (the kernel polls the fd inside {@code EPOLL_CTL_MOD})
 * and queues the event then; if after (4), the registration is armed and the arrival queues it. Either way that
 * event's (a) happens after (2), hence after (1). Second, that event wakes the waiter: both fields are volatile, so
 * (3)→(5) and (a)→(b) are totally ordered against each other:
 *
 * <ul>
 *   <li>(a) before (5): the waiter sees a changed sequence and retries the syscall without parking;
 *   <li>(a) after (5): then (b) comes after (3), the reactor sees the waiter and unparks it. If (b) runs before (6),
 *       the unpark leaves a permit and (6) returns at once.
 * </ul>
 *
 * <p>An event between (1) and (2) at worst causes one needless retry. A registration stays armed after its waiter
 * gave up (deadline, interrupt); its event then finds no waiter and only bumps the sequence. {@link #wakeWaiter()}
 * after {@link FdHandle#close()} follows the same pattern with the closed flag in place of the sequence. Unparks may
 * be spurious (the reactor may unpark a thread that has just timed out and moved on); every park here sits in a loop
 * that re-checks its condition, as LockSupport requires anyway.
 *
 * <p>Thread-safe under the rule that at most one thread waits at a time. Internal API.
 */
public final class Readiness implements Reactor.Target {

    /** Why {@link #await} returned. */
    public enum Wake {
        /** The sequence changed: retry the syscall. */
        READY,
        /** The fd handle was closed. */
        CLOSED,
        /** The deadline passed. */
        TIMED_OUT,
        /** The waiting thread was interrupted (its interrupt status is still set). */
        INTERRUPTED
    }

    private final AtomicLong sequence = new AtomicLong();
    private volatile Thread waiter;
    /** Bounds parks with its alarms; null: timed parks only. */
    private final Reactor reactor;

    /** Creates a readiness with sequence 0 and no waiter, whose waits park with the JDK's timeout. */
    public Readiness() {
        this(null);
    }

    /**
     * Creates a readiness with sequence 0 and no waiter, whose waits are bounded by {@code reactor}'s alarms (see
     * {@link #await}); null: by the JDK's timed park.
     */
    public Readiness(Reactor reactor) {
        this.reactor = reactor;
    }

    /** Step (1): returns the current sequence; read it before the syscall that may fail with EAGAIN. */
    public long sequence() {
        return sequence.get();
    }

    /** Steps (a) and (b); runs on the reactor thread. */
    @Override
    public void onEvents(int events) {
        sequence.incrementAndGet();
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    /** Unparks the waiter, if any; call after closing the handle it waits on. */
    public void wakeWaiter() {
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    /**
     * Steps (3) to (6): parks the calling thread until the sequence differs from {@code observed}, {@code fd} is closed,
     * the deadline passes or the thread is interrupted. Parking a virtual thread releases its carrier.
     *
     * <p>The deadline is kept by a reactor alarm, armed before the first park and closed on the way out, and the
     * park itself is untimed. A virtual thread's timed park costs two wake-ups of the JDK's delay-scheduler thread
     * (one to schedule the timeout, one to cancel it when the reactor unparks the waiter first, as it nearly always
     * does); on a 2-CPU machine they compete with the sidecar for CPU while it works on the request. Measured with
     * Neon's medium request at one caller ({@code ./scripts/bench quick --only throughput --rows medium/1}): 115.6
     * and 115.5 µs per redo with timed parks, 98.8 and 108.2 µs with untimed ones. The reactor fires alarms anyway
     * (callers' deadlines), and fires under load where the JDK's timer is late (see {@link Reactor}). If the
     * reactor's loop ever stops, it fires every alarm on its way out and waits fall back to timed parks.
     *
     * @throws NativeCallException if re-arming the registration failed (then nothing would wake the thread)
     */
    public Wake await(long observed, Deadline deadline, FdHandle fd) throws NativeCallException {
        Thread me = Thread.currentThread();
        waiter = me;
        DeadlineAlarm alarm = null;
        try {
            if (!fd.rearm()) {
                return Wake.CLOSED;
            }
            while (true) {
                if (sequence.get() != observed) {
                    return Wake.READY;
                }
                if (fd.isClosed()) {
                    return Wake.CLOSED;
                }
                long remaining = deadline.remainingNanos();
                if (remaining <= 0) {
                    return Wake.TIMED_OUT;
                }
                if (me.isInterrupted()) {
                    return Wake.INTERRUPTED;
                }
                if (reactor != null && reactor.isRunning()) {
                    if (alarm == null) {
                        alarm = reactor.armForWait(deadline, me);
                    }
                    LockSupport.park(this);
                } else {
                    LockSupport.parkNanos(this, remaining);
                }
            }
        } finally {
            waiter = null;
            if (alarm != null) {
                alarm.close();
            }
        }
    }
}
