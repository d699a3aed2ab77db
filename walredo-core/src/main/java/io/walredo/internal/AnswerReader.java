// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.WalRedoException;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineExceededException;
import io.walredo.nativeio.ExitStatus;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The reading side of a {@link Sidecar}: the reader role, the hand-over of each answer to its entry, the drainer,
 * and the error reports built from what the sidecar left behind; admission is {@link Admission}.
 *
 * <p><b>Reading.</b> There is no reader thread: the waiter that wins {@code readerRole} reads answers and
 * hands each to the queue's head (unparking its owner) until its own has arrived, then passes the role on
 * ({@link #ensureReader}): to the first entry still waiting, else to a drainer if answers are owed. With one
 * request in flight the caller reads its own answer: one wake-up per request. {@code answer} keeps its
 * position across hand-overs, so an answer split across readers is never torn.
 *
 * <p><b>Someone always reads while answers are owed.</b> Every holder of the role, and every waiter that abandons,
 * calls {@link #ensureReader} when it lets go. A caller whose deadline passes or who is interrupted abandons its
 * entry; its answer is read and dropped when it comes, and its sidecar is not blamed. Every read waits at most
 * until {@code progress + stallTimeout}, so a sidecar that owes answers and sends no byte for {@code stallTimeout}
 * is killed as stuck (TIMEOUT): that, not any one caller's deadline, is what retires a hung sidecar.
 */
abstract sealed class AnswerReader extends AnswerQueue permits Sidecar {
    private static final Logger log = LoggerFactory.getLogger(AnswerReader.class);
    private static final int PAGE_BYTES = ProtocolCodec.PAGE_BYTES;
    final AtomicBoolean readerRole = new AtomicBoolean();
    private final Admission admission = new Admission(this);
    final AtomicBoolean drainerRunning = new AtomicBoolean();
    /** Only touched by the reader-role holder; its position survives hand-overs. */
    final ByteBuffer answer = ByteBuffer.allocateDirect(PAGE_BYTES);

    AnswerReader(
            SidecarKey key,
            ChildProcess child,
            LongSupplier nanoClock,
            StderrDrainer stderr,
            Listener listener,
            Duration stallTimeout,
            StartupTimes startups) {
        super(key, child, nanoClock, stderr, listener, stallTimeout, startups);
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
                                    "waiting for its answer behind " + "earlier requests", stallTimeout, null),
                            Retry.NEVER);
                }
                continue;
            }
            LockSupport.parkNanos(this, remaining);
            if (Thread.currentThread().isInterrupted() && p.abandon()) {
                ensureReader();
                throw new AttemptFailure(
                        failures.cancelled(
                                "the calling thread was interrupted while waiting for " + "the answer", null),
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
                            failures.cancelled("the calling thread was interrupted while reading the" + " answer", e),
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
            Deadline stall = new Deadline(progressNanos + stallNanos);
            Deadline wait = callerDeadline == null ? stall : callerDeadline.earliest(stall);
            int n;
            try {
                n = child.stdout().read(answer, wait, times.spinBudgetNanos(owed));
            } catch (DeadlineExceededException e) {
                if (callerDeadline != null && callerDeadline.isExpired()) {
                    return false;
                }
                if (System.nanoTime() - progressNanos >= stallNanos) {
                    throw failed(
                            new Failure(
                                    failures.stalled(
                                            "while " + owed + " answers were owed (" + answer.position() + " of "
                                                    + PAGE_BYTES + " bytes of the next arrived)",
                                            stallTimeout),
                                    Retry.PER_ATTEMPT_TYPE,
                                    true),
                            KillCause.TIMEOUT);
                }
                continue;
            } catch (InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                Failure known = failure.get();
                if (known != null) {
                    throw recorded(known);
                }
                throw failed(
                        new Failure(
                                crashed("reading its stdout", e, answer.position(), callerDeadline),
                                Retry.PER_ATTEMPT_TYPE,
                                true),
                        KillCause.ERROR);
            }
            if (n < 0) {
                throw failed(new Failure(endOfFile(callerDeadline), Retry.PER_ATTEMPT_TYPE, true), KillCause.ERROR);
            }
            progressNanos = System.nanoTime();
        }
        times.answered(System.nanoTime(), owed);
        Pending owner = pollHead();
        answer.flip();
        try {
            if (owner == null) {
                throw failed(
                        new Failure(
                                failures.unsolicited("a whole page more than was asked for"),
                                Retry.PER_ATTEMPT_TYPE,
                                true),
                        KillCause.ERROR);
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
        if (owed > 0 && failure.get() == null && drainerRunning.compareAndSet(false, true)) {
            try {
                Thread.ofVirtual().name("walredo-drain-" + pid).start(this::drain);
            } catch (Throwable t) {
                drainerRunning.set(false);
                // No thread to read abandoned answers: the next caller reads through them; until then the
                // housekeeper can still quiesce it. Nothing is misaligned.
                log.atWarn()
                        .setCause(t)
                        .addKeyValue("tenant", tenant())
                        .addKeyValue("pid", pid)
                        .log("cannot start the walredo answer drainer");
            }
        }
    }

    /** Reads and drops the answers of abandoned requests while no caller waits, until none is owed. */
    void drain() {
        boolean clean = false;
        try {
            while (owed > 0
                    && failure.get() == null
                    && firstWaiter() == null
                    && readerRole.compareAndSet(false, true)) {
                try {
                    while (owed > 0 && failure.get() == null && firstWaiter() == null) {
                        readOneAnswer(null);
                    }
                } finally {
                    readerRole.set(false);
                }
            }
            clean = true;
        } catch (AttemptFailure recorded) {
            clean = true;
        } catch (Throwable t) {
            fail(
                    new Failure(
                            failures.cancelled(
                                    "reading abandoned answers failed (" + t + "), so the sidecar was killed", t),
                            Retry.PER_ATTEMPT_TYPE,
                            false),
                    KillCause.ERROR);
        } finally {
            drainerRunning.set(false);
        }
        if (clean) {
            ensureReader();
        }
    }

    WalRedoException endOfFile(Deadline deadline) {
        int got = answer.position();
        Duration wait = reportWait(deadline);
        if (got > 0) {
            String status = exitStatusWithin(wait).map(ExitStatus::toString).orElse(null);
            return failures.shortAnswer(got, status, stderr.tailAfterEof(wait));
        }
        return crashed("reading its stdout", null, 0, deadline);
    }

    /** How long an error report may wait for the exit status and stderr: briefly, and never past the deadline. */
    static Duration reportWait(Deadline deadline) {
        long cap = CRASH_REPORT_WAIT.toNanos();
        return Duration.ofNanos(Math.max(0, deadline == null ? cap : Math.min(cap, deadline.remainingNanos())));
    }

    WalRedoException crashed(String during, IOException cause, int partial, Deadline deadline) {
        Optional<ExitStatus> status = exitStatusWithin(reportWait(deadline));
        List<String> tail = stderr.tailAfterEof(status.isPresent() ? reportWait(deadline) : Duration.ZERO);
        String how = status.map(s -> "died with " + s).orElse("closed its pipes while alive");
        return failures.crashed(how, status.orElse(null), tail, during, partial, cause);
    }

    Optional<ExitStatus> exitStatusWithin(Duration wait) {
        try {
            return Optional.of(child.onExit().get(wait.toNanos(), TimeUnit.NANOSECONDS));
        } catch (TimeoutException | ExecutionException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }
}
