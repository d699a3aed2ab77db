// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The answer queue of a {@link Sidecar}: the requests whose answers are owed, oldest first, as an intrusive list of
 * {@link Pending} entries (the entry is the node, so appending allocates nothing and cannot fail half-way).
 *
 * <p><b>Invariant.</b> Queue order is byte order on stdin, hence answer order on stdout: an entry is appended only by
 * the holder of the write permit, immediately before it writes its request, and taken back ({@link #removeTail})
 * only by that holder if not one byte was written. The n-th answer read belongs to the queue's head at that moment
 * ({@link #pollHead}). {@code head}, {@code tail} and the links are guarded by {@code queueLock}, held only for the
 * pointer work, never across I/O; {@code owed} is written under it and read without it.
 */
abstract sealed class AnswerQueue extends SidecarLife permits SidecarFaults {
    final ReentrantLock queueLock = new ReentrantLock();
    /** Guarded by queueLock: the entries whose answers are owed, oldest first. */
    Pending head;

    Pending tail;
    /** Entries in the queue; written under queueLock. */
    volatile int owed;
    /** Entries in the queue for callers' requests: {@link #owed} without the start-up probe; written under queueLock. */
    volatile int requestsOwed;
    /** System.nanoTime() of the sidecar's last sign of life while owing: the first entry of a busy spell, or an answer byte. */
    volatile long progressNanos;
    /** Answer times, for admission and the reader's polling. */
    final ServiceTimes times;

    AnswerQueue(Parts parts) {
        super(parts);
        this.times = new ServiceTimes(parts.startups());
    }

    /**
     * When the sidecar last showed it works on what it owes: an answer byte or the start of a busy spell ({@code
     * progressNanos}), or taking bytes from its full stdin while a large request is written to it ({@link
     * io.walredo.nativeio.PipeWriteEnd#lastDrainedNanos()}): a request that takes longer than {@code stallTimeout} to
     * write to a slow but live reader is not a stall.
     */
    final long lastSignOfLifeNanos() {
        long answered = progressNanos;
        long drained = child.stdin().lastDrainedNanos();
        return drained - answered > 0 ? drained : answered;
    }

    @Override
    final int owed() {
        return owed;
    }

    void enqueue(Pending p) {
        queueLock.lock();
        try {
            if (tail == null) {
                head = p;
                long now = System.nanoTime();
                progressNanos = now;
                times.started(now);
            } else {
                tail.next = p;
                times.joined();
            }
            tail = p;
            owed = owed + 1;
            if (!p.isProbe()) {
                requestsOwed = requestsOwed + 1;
            }
        } finally {
            queueLock.unlock();
        }
    }

    /**
     * Takes back the newest entry, whose request was not written at all. The caller holds the write permit, so
     * nobody appended after it. Returns false if it was no longer queued: an answer it never asked for took it.
     */
    boolean removeTail(Pending p) {
        p.abandon();
        queueLock.lock();
        try {
            if (head == p) {
                head = tail = null;
            } else {
                Pending q = head;
                while (q != null && q.next != p) {
                    q = q.next;
                }
                if (q == null) {
                    return false;
                }
                q.next = null;
                tail = q;
            }
            owed = owed - 1;
            if (!p.isProbe()) {
                requestsOwed = requestsOwed - 1;
            }
            return true;
        } finally {
            queueLock.unlock();
        }
    }

    /** Whether the next answer's owner wants it as an array (a guess if the head changes meanwhile; see deliver). */
    boolean headWantsArray() {
        queueLock.lock();
        try {
            return head == null || head.target == null;
        } finally {
            queueLock.unlock();
        }
    }

    Pending pollHead() {
        queueLock.lock();
        try {
            Pending h = head;
            if (h != null) {
                head = h.next;
                h.next = null;
                if (head == null) {
                    tail = null;
                }
                owed = owed - 1;
                if (!h.isProbe()) {
                    requestsOwed = requestsOwed - 1;
                }
            }
            return h;
        } finally {
            queueLock.unlock();
        }
    }

    /** The thread of the oldest entry still waiting whose request is all written ({@link Pending#sent}), or null. */
    Thread firstWaiter() {
        queueLock.lock();
        try {
            for (Pending q = head; q != null; q = q.next) {
                if (q.sent && q.isWaiting()) {
                    return q.waiter;
                }
            }
            return null;
        } finally {
            queueLock.unlock();
        }
    }

    @Override
    final void wakeAll() {
        queueLock.lock();
        try {
            for (Pending q = head; q != null; q = q.next) {
                LockSupport.unpark(q.waiter);
            }
        } finally {
            queueLock.unlock();
        }
    }
}
