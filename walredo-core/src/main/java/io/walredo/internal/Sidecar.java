// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineExceededException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

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
 * <p><b>Layers.</b> One object per child, written in four files, one concern each, so that no redo pays a hop
 * between them: {@link SidecarLife} (the ctl word, retain / release / retire / kill, the exit watch and the one
 * report of its end), {@link AnswerQueue} (the owed answers, in stdin order), {@link AnswerReader} (the reader
 * role, hand-over, drainer, admission) and this class (the request's entry, {@link #apply}, and the writing side:
 * the write permit, handing a half-written request to {@link BackgroundWriter}, the check for output nobody asked for).
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
 * <p>Reading, and why every owed answer is read even when its caller has gone: see {@link AnswerReader}.
 */
final class Sidecar extends AnswerReader {
    static final int PAGE_BYTES = ProtocolCodec.PAGE_BYTES;

    private static final Logger log = LoggerFactory.getLogger(Sidecar.class);
    /**
     * One encoded ping, for the start-up probe and a spare's warm-up; shared, so only ever read through a duplicate
     * ({@link #roundTrip} and {@link #probeStartup} duplicate what they write).
     */
    static final ByteBuffer PING = encodedPing();

    /** Whether a sidecar is, or was, a warm spare; see {@link #spare}. */
    enum SpareState {
        /** A tenant's own spawn, never a spare. */
        NOT_SPARE,
        /** A warm spare in the pool or being handed over. */
        SPARE,
        /** A spare given to a tenant by {@link #assign}. */
        HANDED_OVER,
        /** A spare whose death was booked as a spare's by {@link #diesAsSpare}. */
        DIED_SPARE
    }

    private final Instant startedAt;
    /** NOT_SPARE for a tenant's own spawn; a spare goes SPARE → HANDED_OVER or SPARE → DIED_SPARE, once. */
    private final AtomicReference<SpareState> spare;

    private volatile long lastRedoEpochMillis;

    /** Held by whoever writes to stdin; a semaphore, not a lock, so a half-written request's permit can move to the background writer. */
    final Semaphore writePermit = new Semaphore(1);

    Sidecar(
            SidecarKey key,
            ChildProcess child,
            Instant startedAt,
            LongSupplier nanoClock,
            StderrDrainer stderr,
            Listener listener,
            Duration stallTimeout,
            StartupTimes startups) {
        super(key, child, nanoClock, stderr, listener, stallTimeout, startups);
        this.startedAt = startedAt;
        this.spare = new AtomicReference<>(key.isSpare() ? SpareState.SPARE : SpareState.NOT_SPARE);
    }

    /**
     * Hands a warm spare to {@code tenantKey}'s tenant: from now on its errors, logs, metrics and stderr lines name
     * that tenant. Called once, by the caller that took the spare out of the pool, before any request reaches it; a
     * spare has never received a byte, so it carries nothing of anyone.
     *
     * @return false if the spare died first and its death was booked as a spare's ({@link #diesAsSpare}): the caller
     *     lets go of it and has no spare; it must not be used
     */
    boolean assign(SidecarKey tenantKey) {
        if (!key.isSpare() || tenantKey.isSpare() || tenantKey.pgVersion() != key.pgVersion()) {
            throw new IllegalStateException("cannot assign " + this + " to " + tenantKey);
        }
        failures = new Failures(tenantKey, pid);
        stderr.assign(tenantKey.tenant());
        key = tenantKey;
        // After the key: a death booked from here on reads the tenant's key, one booked before reads no tenant.
        return spare.compareAndSet(SpareState.SPARE, SpareState.HANDED_OVER);
    }

    /**
     * For the one place a death is booked: whether this sidecar dies as a warm spare never handed over. Decided once,
     * atomically against {@link #assign}, so a spare that dies during its hand-over is booked either as a spare's
     * death (and the hand-over fails) or as its tenant's (and the hand-over succeeded), never both or neither.
     */
    boolean diesAsSpare() {
        return spare.compareAndSet(SpareState.SPARE, SpareState.DIED_SPARE);
    }

    Instant startedAt() {
        return startedAt;
    }

    Optional<Instant> lastRedoAt() {
        long ms = lastRedoEpochMillis;
        return ms == 0 ? Optional.empty() : Optional.of(Instant.ofEpochMilli(ms));
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
            } catch (Throwable t) {
                if (src.position() == start) {
                    if (!removeTail(p)) {
                        // Only a page nobody asked for can have completed an entry whose request was never sent.
                        unsolicitedOutput(PAGE_BYTES);
                    }
                    throw writeFailed(t, "before any of it was written", deadline);
                }
                // Part of the request is in the pipe: the rest must follow, or every later answer is misaligned.
                p.abandon();
                String progress = (src.position() - start) + " of " + (src.limit() - start) + " bytes written";
                boolean handedOn = !isBrokenPipe(t) && BackgroundWriter.start(this, src, progress);
                permitHeld = !handedOn;
                throw writeFailed(
                        t, "after " + progress + (handedOn ? "; the rest is written in the background" : ""), deadline);
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
                                "waiting for earlier requests to be written to its" + " stdin", stallTimeout, null),
                        Retry.NEVER);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AttemptFailure(
                    failures.cancelled("the calling thread was interrupted while waiting to write", e), Retry.NEVER);
        }
    }

    /**
     * Before anything is sent: a sidecar that failed while this request was on its way fails it the same way (a
     * crash-looping binary must not turn one request into a string of spawns; a sidecar whose process is known
     * to be gone has already left rotation, see {@link #tryRetain()}).
     */
    private void throwIfUnusable() throws AttemptFailure {
        Failure f = failure.get();
        if (f != null) {
            throw recorded(f);
        }
    }

    /** Caller holds the write permit and nothing is owed: any byte on stdout now was sent unasked. */
    private void rejectUnsolicitedOutput() throws AttemptFailure {
        int stray;
        try {
            stray = child.stdout().available();
        } catch (IOException closed) {
            throwIfUnusable();
            return;
        }
        if (stray > 0) {
            Failure f = unsolicitedOutput(stray);
            throw new AttemptFailure(Failures.copy(f.error()), Retry.NOT_SENT);
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

    private Failure unsolicitedOutput(int bytes) {
        log.atWarn()
                .addKeyValue("tenant", tenant())
                .addKeyValue("pid", pid)
                .addKeyValue("bytes", bytes)
                .log("walredo sidecar wrote to stdout while no answer was owed; killing it");
        return fail(
                new Failure(failures.unsolicited(bytes + " bytes to its stdout"), Retry.PER_ATTEMPT_TYPE, true),
                KillCause.ERROR);
    }

    private static boolean isBrokenPipe(Throwable t) {
        return t instanceof IOException
                && !(t instanceof DeadlineExceededException)
                && !(t instanceof InterruptedIOException);
    }

    /** Maps what ended a write; the entry has been taken back or abandoned already. Errors are rethrown as they are. */
    private AttemptFailure writeFailed(Throwable t, String progress, Deadline deadline) {
        if (t instanceof Error e) {
            throw e;
        }
        if (t instanceof RuntimeException e) {
            throw e;
        }
        if (t instanceof DeadlineExceededException) {
            return new AttemptFailure(
                    failures.callerTimeout("writing the request to its stdin " + progress, stallTimeout, t),
                    Retry.NEVER);
        }
        if (t instanceof InterruptedIOException) {
            Thread.currentThread().interrupt();
            return new AttemptFailure(
                    failures.cancelled("the calling thread was interrupted while writing the request " + progress, t),
                    Retry.NEVER);
        }
        Failure known = failure.get();
        if (known != null) {
            return recorded(known);
        }
        return failed(
                new Failure(
                        crashed("writing to its stdin", (IOException) t, 0, deadline), Retry.PER_ATTEMPT_TYPE, true),
                KillCause.ERROR);
    }

    @Override
    public String toString() {
        return "Sidecar[" + key + ", pid " + pid + "]";
    }
}
