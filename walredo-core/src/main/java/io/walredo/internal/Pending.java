// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.LockSupport;

/**
 * One request's place in a sidecar's {@link AnswerQueue}: a node of the queue itself, so appending allocates nothing.
 * Created by the requesting thread ({@code waiter}); completed by whichever thread holds the reader role.
 *
 * <p><b>States.</b> WAITING → DONE (answer delivered), WAITING → ABANDONED (the caller gave up: its answer is read
 * and dropped), and, for an answer copied into the caller's own buffer, WAITING → FILLING → DONE: the reader claims
 * the entry before copying, so a caller that gives up while a copy runs waits for it and returns the page, and the
 * caller's buffer is never written after its call has returned or thrown.
 */
final class Pending {
    /** Where a request's answer stands; see the class comment for the transitions. */
    enum State {
        WAITING,
        DONE,
        ABANDONED,
        /** The reader is copying the answer into {@code target}; DONE follows. */
        FILLING
    }

    /**
     * CAS on {@link #state}: a field of this object rather than an {@code AtomicReference}, so a request allocates
     * no second object. Enum constants are singletons, so the reference CAS compares states.
     */
    private static final VarHandle STATE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(Pending.class, "state", State.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The requesting thread; null for the start-up probe ({@link Sidecar#probeStartup}), which nobody waits for. */
    final Thread waiter;
    /** Where the answer goes (8192 bytes from its position), or null for a new array in {@link #page}. */
    final ByteBuffer target;
    /** Changed by CAS through {@link #STATE}, except FILLING → DONE, which only the filling reader writes. */
    private volatile State state = State.WAITING;
    /**
     * Set by the writer once all of its request is on stdin. Until then its thread is busy writing and cannot read, so
     * it does not count as a waiter that can take the reader role ({@link AnswerQueue#firstWaiter}): if it did, the
     * drainer would stop for it and nobody would read while it writes, and a sidecar blocked on a full stdout stops
     * reading stdin.
     */
    volatile boolean sent;
    /** Written before the DONE transition publishes it. */
    byte[] page;
    /** Guarded by the sidecar's queueLock. */
    Pending next;

    Pending(Thread waiter, ByteBuffer target) {
        this.waiter = waiter;
        this.target = target == null ? null : target.duplicate();
    }

    /** Whether this is the start-up probe: the library's own request, not a caller's (admission's bound skips it). */
    boolean isProbe() {
        return waiter == null;
    }

    boolean isDone() {
        return state == State.DONE;
    }

    boolean isWaiting() {
        return state == State.WAITING;
    }

    /**
     * Delivers the answer ({@code src}: its 8192 bytes from position to limit); an abandoned request's answer is
     * dropped. {@code page} is an array allocated in advance for an owner without a target, or null.
     */
    void deliver(ByteBuffer src, byte[] page) {
        if (target == null) {
            byte[] a = page != null ? page : new byte[ProtocolCodec.PAGE_BYTES];
            src.get(a);
            complete(a);
        } else if (STATE.compareAndSet(this, State.WAITING, State.FILLING)) {
            try {
                target.put(target.position(), src, src.position(), ProtocolCodec.PAGE_BYTES);
            } finally {
                state = State.DONE;
                if (waiter != Thread.currentThread()) {
                    LockSupport.unpark(waiter);
                }
            }
        }
    }

    private void complete(byte[] answer) {
        page = answer;
        if (STATE.compareAndSet(this, State.WAITING, State.DONE) && waiter != Thread.currentThread()) {
            LockSupport.unpark(waiter);
        }
    }

    /**
     * Gives up waiting; false if the answer arrived first (then it must be used). While the reader copies into
     * the target this waits for the copy (a memcpy of 8 KiB), so the target is never written after it returns.
     */
    boolean abandon() {
        for (int spins = 0; ; spins++) {
            if (STATE.compareAndSet(this, State.WAITING, State.ABANDONED)) {
                return true;
            }
            State s = state;
            if (s == State.ABANDONED) {
                return true;
            }
            if (s == State.DONE) {
                return false;
            }
            if (spins < 64) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
    }
}
