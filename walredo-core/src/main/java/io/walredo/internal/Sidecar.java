// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineExceededException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * One {@code postgres --wal-redo} child for one tenant shard and its pipes, with pipelined requests.
 *
 * <p><b>Ownership.</b> Created by {@link SidecarLauncher} after a successful spawn; its tenant's {@link Slot} holds
 * it while it is in rotation (a warm spare: {@link SparePool}, until handed over). Requests borrow it with
 * {@link #tryRetain()} and give it back with {@link #release()}; borrowers must not keep a reference. Only this class
 * signals or reaps its child (through {@link ChildProcess}, pidfd-based, so pid reuse is harmless). {@link #kill}
 * is idempotent and never blocks; {@link #terminated()} completes once the child has been reaped and is no longer
 * counted as live. It reports its own end, once killed and once reaped, to its listener ({@link SidecarDeaths});
 * see {@link SidecarLife}.
 *
 * <p><b>Layers.</b> One object per child, written in four files, so that no redo pays a hop between them:
 * {@link SidecarLife} (the ctl word, retain / release / retire / kill, the exit watch and the one report of its end),
 * {@link AnswerQueue} (the owed answers, in stdin order), {@link SidecarFaults} (failures mapped to typed errors, the
 * crash reports, output nobody asked for) and this class: the exchange, which is all a request that succeeds runs
 * here ({@link #apply}: the write permit and the write, the reader role, the hand-over of each answer).
 *
 * <p><b>The stream rule.</b> Bytes on stdin are whole requests in {@code queue} order, so the answers on
 * stdout belong to the queue's entries in order. Nothing a caller does may break that:
 * <ul>
 *   <li>A writer holds {@code writePermit} (a semaphore, so the permit can change threads), appends its
 *       {@link Pending} (an intrusive list node: appending allocates nothing), then writes. If nothing was
 *       written when it fails (any {@code Throwable}), it takes its entry back; if part was written, the rest
 *       is finished by a background writer that inherits the permit, whatever the caller's deadline,
 *       interrupt or {@code Error}; only if that writer cannot be started is the stream torn, and then the
 *       sidecar is killed.
 *   <li>A caller whose deadline passes or who is interrupted <em>abandons</em> its entry: its answer is read
 *       and dropped when it comes. Its sidecar is not blamed.
 *   <li>Whenever answers are owed, someone holds the reader role: a waiting caller, or a drainer started
 *       when none is waiting. Every reader reads until {@code progress + stallTimeout} at most, so a sidecar
 *       that owes answers and sends no byte for {@code stallTimeout} is killed as stuck (TIMEOUT). That,
 *       not any one caller's deadline, is what retires a hung sidecar.
 *   <li>Output while nothing is owed is a protocol violation: the reactor reports stdout readiness that no
 *       reader waits for, and a writer checks for unread bytes before its request when nothing is owed.
 *       Either kills the sidecar; the request that found it is retried on a fresh one, since none of it
 *       was sent.
 * </ul>
 *
 * <p><b>Reading.</b> There is no reader thread: the waiter that wins {@code readerRole} reads answers and hands each
 * to the queue's head (unparking its owner) until its own has arrived, then passes the role on ({@link #ensureReader}):
 * to the first entry still waiting, else to a drainer if answers are owed. With one request in flight the caller reads
 * its own answer: one wake-up per request. {@code answer} keeps its position across hand-overs, so an answer split
 * across readers is never torn. Every holder of the role, and every waiter that abandons, calls {@link #ensureReader}
 * when it lets go, so someone always reads while answers are owed.
 */
final class Sidecar extends SidecarFaults {
    /**
     * One encoded ping, for the start-up probe and a spare's warm-up; shared, so only ever read through a duplicate
     * ({@link #roundTrip} and {@link #probeStartup} duplicate what they write).
     */
    static final ByteBuffer PING = encodedPing();

    /** Held by whoever writes to stdin; a semaphore, not a lock, so a half-written request's permit can move to the background writer. */
    final Semaphore writePermit = new Semaphore(1);

    final AtomicBoolean readerRole = new AtomicBoolean();
    final AtomicBoolean drainerRunning = new AtomicBoolean();
    private final Admission admission = new Admission(this);
    /** Only touched by the reader-role holder; its position survives hand-overs. */
    final ByteBuffer answer = ByteBuffer.allocateDirect(PAGE_BYTES);

    Sidecar(Parts parts) {
        super(parts);
    }

    /**
     * Sends one encoded request (or ping) and returns its 8192-byte answer. The caller must hold a borrow
     * ({@link #tryRetain()}). {@code request} is read from its position to its limit and left unchanged; the
     * caller may reuse it once this returns or throws.
     *
     * @throws AttemptFailure with the typed error and whether the request may be retried elsewhere
     */
    byte[] apply(ByteBuffer request, Deadline deadline) throws AttemptFailure {
        return apply(request, deadline, null);
    }

    /**
     * As {@link #apply(ByteBuffer, Deadline)}; with a {@code target}, the answer is copied into it (8192 bytes from
     * its position, which is not moved) by whichever thread reads the answer, and null is returned. The copy happens
     * only if this call returns normally, and never after it has returned or thrown: the reader claims the entry
     * before copying, and a caller that gives up while a copy runs waits for it and returns the page instead.
     */
    byte[] apply(ByteBuffer request, Deadline deadline, ByteBuffer target) throws AttemptFailure {
        byte[] page = roundTrip(request, deadline, target);
        lastRedoEpochMillis = System.currentTimeMillis();
        served = true;
        return page;
    }

    /**
     * One round trip of a warm spare's warm-up, before it serves anyone (a ping or a blank page request, see
     * {@code SparePool}), so the first tenant request finds the process's request path paged in and the reader's
     * answer-time history filled (it polls instead of parking for a fast answer; the first answer of a process is
     * never counted). The answer is read and dropped. Unlike {@link #apply} it does not count as serving: a
     * sidecar that dies on its first tenant request still counts toward that tenant's spawn back-off. Neither
     * request carries data of anyone.
     */
    void warmUp(ByteBuffer request, Deadline deadline) throws AttemptFailure {
        roundTrip(request, deadline, null);
    }

    /**
     * Sends {@link #PING} with nobody waiting for its answer, right after the spawn and before any tenant request
     * (see {@code SlotSpawner}): a process's first answer includes its own start-up and is never counted as an
     * answer time ({@code ServiceTimes}), so with this ping ahead the first tenant request's answer is counted and
     * admission knows a slow process after one answer instead of two. Whoever reads next drops its answer. The write
     * does not wait: a few bytes into a new, empty pipe. A failure (the process already died) is recorded on the
     * sidecar as for any request; the next caller retries on a fresh one without spending a retry.
     */
    void probeStartup(Deadline deadline) throws AttemptFailure {
        Pending p = new Pending(null, null);
        p.abandon();
        write(p, PING.duplicate(), deadline);
    }

    private static ByteBuffer encodedPing() {
        ByteBuffer b = ByteBuffer.allocateDirect(ProtocolCodec.PING_BYTES);
        ProtocolCodec.encodePing(b);
        return b.flip();
    }

    private byte[] roundTrip(ByteBuffer request, Deadline deadline, ByteBuffer target) throws AttemptFailure {
        Pending p = new Pending(Thread.currentThread(), target);
        ByteBuffer src = request.duplicate();
        write(p, src, deadline);
        try {
            return awaitAnswer(p, deadline);
        } catch (AttemptFailure | RuntimeException | Error e) {
            // Whatever went wrong (an OutOfMemoryError too), this entry's answer is dropped when it comes and
            // someone else reads on: the stream stays aligned.
            if (p.abandon()) {
                ensureReader();
            }
            throw e;
        }
    }

    private void write(Pending p, ByteBuffer src, Deadline deadline) throws AttemptFailure {
        acquireWritePermit(deadline);
        boolean permitHeld = true;
        try {
            throwIfUnusable();
            if (owed == 0) {
                rejectUnsolicitedOutput();
            }
            enqueue(p);
            int start = src.position();
            try {
                child.stdin().writeFully(src, deadline);
                p.sent = true;
            } catch (Throwable t) {
                if (src.position() == start) {
                    boolean wasQueued = removeTail(p);
                    // Answers owed ahead of it may have been left to this caller to read: find them a reader.
                    ensureReader();
                    if (!wasQueued) {
                        // Only a page nobody asked for can have completed an entry whose request was never sent.
                        unsolicitedOutput(PAGE_BYTES);
                    }
                    throw writeFailed(t, "before any of it was written", deadline);
                }
                // Part of the request is in the pipe: the rest must follow, or every later answer is misaligned.
                // Nothing between here and the hand-off allocates (an OutOfMemoryError in between would leave the
                // stream torn and the sidecar alive): BackgroundWriter.start kills the sidecar if it cannot hand on.
                p.abandon();
                int written = src.position() - start;
                int total = src.limit() - start;
                boolean handedOn = !isBrokenPipe(t) && BackgroundWriter.start(this, src, written, total);
                permitHeld = !handedOn;
                if (handedOn) {
                    // The abandoned entry, and any owed ahead of it, need a reader while the rest is written.
                    ensureReader();
                }
                throw writeFailed(
                        t,
                        "after " + written + " of " + total + " bytes written"
                                + (handedOn ? "; the rest is written in the background" : ""),
                        deadline);
            }
        } finally {
            if (permitHeld) {
                writePermit.release();
            }
        }
    }

    private void acquireWritePermit(Deadline deadline) throws AttemptFailure {
        try {
            if (!writePermit.tryAcquire(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS)) {
                throw new AttemptFailure(
                        failures.callerTimeout(
                                "waiting for earlier requests to be written to its stdin", stallTimeout, null),
                        Retry.NEVER);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AttemptFailure(
                    failures.cancelled("the calling thread was interrupted while waiting to write", e), Retry.NEVER);
        }
    }

    /**
     * Housekeeper: kills this sidecar if it wrote to stdout while nothing was owed. Between requests nobody watches
     * stdout (the reactor reports readiness only to a parked reader, see {@code walredo-native}'s {@code Reactor}),
     * so such output is found here or by the next writer's own check, whichever comes first. Non-blocking: a
     * tryAcquire and one ioctl; a sidecar that is being written to is skipped.
     */
    void killIfSpokeUnasked() {
        if (owed != 0 || failure.get() != null || !writePermit.tryAcquire()) {
            return;
        }
        int stray;
        try {
            stray = owed == 0 ? child.stdout().available() : 0;
        } catch (IOException closed) {
            return;
        } finally {
            writePermit.release();
        }
        if (stray > 0) {
            unsolicitedOutput(stray);
        }
    }

    byte[] awaitAnswer(Pending p, Deadline deadline) throws AttemptFailure {
        for (; ; ) {
            if (p.isDone()) {
                return p.page;
            }
            Failure f = failure.get();
            if (f != null) {
                if (!p.abandon()) {
                    return p.page;
                }
                throw recorded(f);
            }
            if (readerRole.compareAndSet(false, true)) {
                try {
                    readUntilAnswered(p, deadline);
                } finally {
                    readerRole.set(false);
                    ensureReader();
                }
                continue;
            }
            long remaining = deadline.remainingNanos();
            if (remaining <= 0) {
                if (p.abandon()) {
                    ensureReader();
                    throw new AttemptFailure(
                            failures.callerTimeout(
                                    "waiting for its answer behind earlier requests", stallTimeout, null),
                            Retry.NEVER);
                }
                continue;
            }
            LockSupport.parkNanos(this, remaining);
            if (Thread.currentThread().isInterrupted() && p.abandon()) {
                ensureReader();
                throw new AttemptFailure(
                        failures.cancelled("the calling thread was interrupted while waiting for the answer", null),
                        Retry.NEVER);
            }
        }
    }

    /** Holds the reader role: reads answers, handing each to the queue's head, until {@code p} is answered. */
    void readUntilAnswered(Pending p, Deadline deadline) throws AttemptFailure {
        while (!p.isDone()) {
            Failure f = failure.get();
            if (f != null) {
                p.abandon();
                throw recorded(f);
            }
            try {
                if (!readOneAnswer(deadline) && p.abandon()) {
                    throw new AttemptFailure(
                            failures.callerTimeout(
                                    "waiting for its answer (" + answer.position() + " of " + PAGE_BYTES
                                            + " bytes of the next answer arrived)",
                                    stallTimeout,
                                    null),
                            Retry.NEVER);
                }
            } catch (InterruptedIOException e) {
                if (p.abandon()) {
                    Thread.currentThread().interrupt();
                    throw new AttemptFailure(
                            failures.cancelled("the calling thread was interrupted while reading the answer", e),
                            Retry.NEVER);
                }
            }
        }
    }

    /**
     * Reads the rest of one answer and hands it to the queue's head. The caller holds the reader role and the
     * queue is not empty. Waits until {@code callerDeadline} (null: none) or until the sidecar has sent nothing
     * for {@code stallTimeout}, whichever comes first; the latter kills it.
     *
     * @return false if {@code callerDeadline} passed first (a partial answer stays in {@code answer})
     * @throws InterruptedIOException if the calling thread was interrupted (nothing is lost)
     * @throws AttemptFailure if the sidecar failed (recorded; every waiter fails with it)
     */
    boolean readOneAnswer(Deadline callerDeadline) throws AttemptFailure, InterruptedIOException {
        // Allocated before any byte is consumed, so an OutOfMemoryError here leaves the stream as it was.
        byte[] page = headWantsArray() ? new byte[PAGE_BYTES] : null;
        while (answer.hasRemaining()) {
            Deadline stall = new Deadline(lastSignOfLifeNanos() + stallNanos);
            Deadline wait = callerDeadline == null ? stall : callerDeadline.earliest(stall);
            int n;
            try {
                n = child.stdout().read(answer, wait, times.spinBudgetNanos(owed));
            } catch (DeadlineExceededException e) {
                if (callerDeadline != null && callerDeadline.isExpired()) {
                    return false;
                }
                if (owed == 0 && answer.position() == 0) {
                    // A drainer that began to read just as the last entry was taken back (removeTail): nothing is
                    // owed, so the silence is not a stall.
                    return false;
                }
                if (System.nanoTime() - lastSignOfLifeNanos() >= stallNanos) {
                    throw stalled(answer.position());
                }
                continue;
            } catch (InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                throw readFailed(e, answer.position(), callerDeadline);
            }
            if (n < 0) {
                throw atEndOfFile(answer.position(), callerDeadline);
            }
            progressNanos = System.nanoTime();
        }
        times.answered(System.nanoTime(), owed);
        Pending owner = pollHead();
        answer.flip();
        try {
            if (owner == null) {
                throw unsolicitedPage();
            }
            owner.deliver(answer, page);
        } finally {
            answer.clear();
        }
        return true;
    }

    /** Admission for this sidecar; see {@link Admission#admit}. */
    void admit(Deadline deadline, int maxQueued) throws AttemptFailure {
        admission.admit(deadline, maxQueued);
    }

    /**
     * Makes sure someone reads while answers are owed. Called by every reader-role holder after letting go and by
     * every waiter that abandons: wakes the first entry still waiting (it takes the role), else starts a drainer.
     * No wake-up is lost: a waiter appends its entry before it tries for the role and re-tries after each park,
     * and whoever lets the role go calls this after clearing it, so it sees every entry whose try failed.
     */
    void ensureReader() {
        if (readerRole.get()) {
            return;
        }
        Thread next = firstWaiter();
        if (next != null) {
            LockSupport.unpark(next);
            return;
        }
        if (owed > 0 && failure.get() == null) {
            AnswerDrainer.start(this);
        }
    }

    @Override
    public String toString() {
        return "Sidecar[" + key + ", pid " + pid + "]";
    }
}
