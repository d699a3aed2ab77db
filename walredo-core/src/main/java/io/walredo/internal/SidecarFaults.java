// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.WalRedoException;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineExceededException;
import io.walredo.nativeio.ExitStatus;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a {@link Sidecar}'s failures look like, off the path of a request that succeeds: the failure of a read or a
 * write mapped to its typed error and its retry rule, the error reports built from what the process left behind (its
 * exit status and last stderr lines, waited for briefly and never past the caller's deadline), and output on stdout
 * that nobody asked for. Each method that records a failure kills the sidecar ({@link #failed}); the exchange itself
 * (writing, the reader role, delivering answers) is {@link Sidecar}'s.
 */
abstract sealed class SidecarFaults extends AnswerQueue permits Sidecar {
    private static final Logger log = LoggerFactory.getLogger(SidecarFaults.class);
    /** The size of every answer on stdout. */
    static final int PAGE_BYTES = ProtocolCodec.PAGE_BYTES;

    SidecarFaults(Parts parts) {
        super(parts);
    }

    /** Whether it failed through its own fault before answering any request: such a death counts toward back-off. */
    boolean failedBeforeServing() {
        Failure f = failure.get();
        return f != null && f.sidecarAtFault() && !served;
    }

    /** Why it failed, for back-off bookkeeping. */
    String failureDescription() {
        Failure f = failure.get();
        return f != null ? f.error().getMessage() : "sidecar pid " + pid + " failed before answering any request";
    }

    /**
     * Called (on a virtual thread) once the child has been reaped. A child that died while not killed by us
     * crashed on its own: it leaves rotation at once, so a request arriving from now on runs on a fresh one,
     * and its failure is recorded (with its last stderr lines) for the requests in it and for back-off.
     */
    @Override
    final void childExited(ExitStatus status) {
        exitedOnItsOwn = status;
        if (state(ctl.get()) == Life.KILLED) {
            return;
        }
        leaveRotation(KillCause.ERROR);
        if (inFlight() > 0 || owed() > 0) {
            // A request in flight normally sees EOF or EPIPE itself and reports the precise failure (a short
            // answer is a protocol error, not a crash); only if it has not within the grace period (a grandchild
            // may hold the pipes open) is it failed from here.
            LockSupport.parkNanos(CRASH_REPORT_WAIT.toNanos());
            if (state(ctl.get()) == Life.KILLED) {
                return;
            }
        }
        List<String> tail = stderr.tailAfterEof(CRASH_REPORT_WAIT);
        fail(
                new Failure(
                        failures.crashed("died with " + status, status, tail, "", 0, null),
                        Retry.PER_ATTEMPT_TYPE,
                        true),
                KillCause.ERROR);
    }

    /**
     * Before anything is sent: a sidecar that failed while this request was on its way fails it the same way (a
     * crash-looping binary must not turn one request into a string of spawns; a sidecar whose process is known
     * to be gone has already left rotation, see {@link #tryRetain()}).
     */
    final void throwIfUnusable() throws AttemptFailure {
        Failure f = failure.get();
        if (f != null) {
            throw recorded(f);
        }
    }

    /** Caller holds the write permit and nothing is owed: any byte on stdout now was sent unasked. */
    final void rejectUnsolicitedOutput() throws AttemptFailure {
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

    /** Records, logs and kills for {@code bytes} on stdout that nobody asked for. */
    final Failure unsolicitedOutput(int bytes) {
        log.atWarn()
                .addKeyValue("tenant", tenant())
                .addKeyValue("pid", pid)
                .addKeyValue("bytes", bytes)
                .log("walredo sidecar wrote to stdout while no answer was owed; killing it");
        return fail(
                new Failure(failures.unsolicited(bytes + " bytes to its stdout"), Retry.PER_ATTEMPT_TYPE, true),
                KillCause.ERROR);
    }

    /** A whole answer read while no entry was owed one. */
    final AttemptFailure unsolicitedPage() {
        return failed(
                new Failure(failures.unsolicited("a whole page more than was asked for"), Retry.PER_ATTEMPT_TYPE, true),
                KillCause.ERROR);
    }

    /** The sidecar owed answers and sent no byte for {@code stallTimeout}: killed as stuck. */
    final AttemptFailure stalled(int partial) {
        return failed(
                new Failure(
                        failures.stalled(
                                "while " + owed + " answers were owed (" + partial + " of " + PAGE_BYTES
                                        + " bytes of the next arrived)",
                                stallTimeout),
                        Retry.PER_ATTEMPT_TYPE,
                        true),
                KillCause.TIMEOUT);
    }

    /** Reading stdout failed (not a deadline, not an interrupt). */
    final AttemptFailure readFailed(IOException e, int partial, Deadline deadline) {
        Failure known = failure.get();
        if (known != null) {
            return recorded(known);
        }
        return failed(
                new Failure(crashed("reading its stdout", e, partial, deadline), Retry.PER_ATTEMPT_TYPE, true),
                KillCause.ERROR);
    }

    /** Stdout reached end of file with {@code partial} bytes of the next answer read. */
    final AttemptFailure atEndOfFile(int partial, Deadline deadline) {
        return failed(new Failure(endOfFile(partial, deadline), Retry.PER_ATTEMPT_TYPE, true), KillCause.ERROR);
    }

    static boolean isBrokenPipe(Throwable t) {
        return t instanceof IOException
                && !(t instanceof DeadlineExceededException)
                && !(t instanceof InterruptedIOException);
    }

    /** Maps what ended a write; the entry has been taken back or abandoned already. Errors are rethrown as they are. */
    final AttemptFailure writeFailed(Throwable t, String progress, Deadline deadline) {
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

    final WalRedoException endOfFile(int partial, Deadline deadline) {
        Duration wait = reportWait(deadline);
        if (partial > 0) {
            String status = exitStatusWithin(wait).map(ExitStatus::toString).orElse(null);
            return failures.shortAnswer(partial, status, stderr.tailAfterEof(wait));
        }
        return crashed("reading its stdout", null, 0, deadline);
    }

    /** How long an error report may wait for the exit status and stderr: briefly, and never past the deadline. */
    static Duration reportWait(Deadline deadline) {
        long cap = CRASH_REPORT_WAIT.toNanos();
        return Duration.ofNanos(Math.max(0, deadline == null ? cap : Math.min(cap, deadline.remainingNanos())));
    }

    final WalRedoException crashed(String during, IOException cause, int partial, Deadline deadline) {
        Optional<ExitStatus> status = exitStatusWithin(reportWait(deadline));
        List<String> tail = stderr.tailAfterEof(status.isPresent() ? reportWait(deadline) : Duration.ZERO);
        String how = status.map(s -> "died with " + s).orElse("closed its pipes while alive");
        return failures.crashed(how, status.orElse(null), tail, during, partial, cause);
    }

    final Optional<ExitStatus> exitStatusWithin(Duration wait) {
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
