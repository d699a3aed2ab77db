// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.TenantOverloadedException;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.nativeio.Deadline;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Admission for one sidecar: whether a request may be queued on it, decided before anything is sent (see
 * {@link #admit}, {@link ServiceTimes} for the estimate, and {@code docs/operations.md}, "Admission").
 */
final class Admission {
    private static final int PAGE_BYTES = ProtocolCodec.PAGE_BYTES;
    /**
     * Admission never refuses for an expected wait shorter than this: a caller gains little from being turned away
     * for less, and short estimates are where noise (a GC pause, a busy carrier) weighs most. A caller whose
     * deadline is shorter still may time out instead, as before.
     */
    static final long ADMISSION_MIN_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    /** How long one look at the sidecar's wait channel stands for ({@link #sidecarWaitsOnUs}). */
    static final long WAIT_CHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(2);

    private final Sidecar sc;
    /** The last look at the sidecar's wait channel and when it was taken; races between callers are harmless. */
    private volatile boolean waitsOnUs;

    private volatile long waitCheckedNanos = System.nanoTime() - WAIT_CHECK_NANOS;

    Admission(Sidecar sidecar) {
        this.sc = sidecar;
    }

    /**
     * Admission, before anything is queued or sent (the caller holds a borrow): refuses at once, with {@link
     * TenantOverloadedException}, a request that would make more than {@code maxQueued} requests queued or in
     * flight here, or whose wait for the answers owed ahead of it is expected to outlast its deadline (by {@link
     * ServiceTimes#margin} when the estimate is unsure). An idle sidecar admits everything; see {@link
     * ServiceTimes#expectedWaitNanos} for the estimate.
     */
    void admit(Deadline deadline, int maxQueued) throws AttemptFailure {
        // Callers' requests only: the start-up probe (the first answer of a new sidecar) is not queued against the
        // bound.
        int ahead = Math.max(sc.requestsOwed, sc.inFlight() - 1);
        if (ahead == 0) {
            return;
        }
        if (ahead >= maxQueued) {
            throw new AttemptFailure(
                    sc.failures.overloaded(
                            TenantOverloadedException.Reason.QUEUE_BOUND,
                            ahead,
                            sc.owed,
                            Duration.ZERO,
                            Duration.ZERO,
                            1,
                            maxQueued,
                            ""),
                    Retry.NEVER);
        }
        long remaining = deadline.remainingNanos();
        if (remaining <= 0) {
            return; // already late: the caller times out on its first wait, which says so better than a refusal
        }
        // Only answers owed count: requests already written (or being written), in the order they are answered.
        // Callers still waiting for the write permit are not ahead of this one in any fixed order (the permit is not
        // fair: a caller arriving as it is released takes it first), and those whose deadline passes first leave
        // without costing the sidecar anything. Counting them too (up to 150 on a tenant in the chaos soak without
        // faults) refused calls that a call admitted right after was served in time.
        int owedNow = sc.owed;
        long now = System.nanoTime();
        long expected = sc.times.expectedWaitNanos(owedNow, owedNow, now, this::answerBytesWaiting);
        if (expected < ADMISSION_MIN_WAIT_NANOS || expected <= remaining) {
            return;
        }
        // A start-up no slower than the manager's recent ones is not a stuck process (ServiceTimes).
        if (sc.times.startingNoSlowerThanPeers(owedNow, now)) {
            return;
        }
        // Unsure estimates (no steady history, or resting on the answer in progress) must exceed the remaining time
        // by a margin; see ServiceTimes.margin.
        int margin = sc.times.margin(owedNow, now);
        if (expected / margin > remaining && !sidecarWaitsOnUs()) {
            throw new AttemptFailure(
                    sc.failures.overloaded(
                            TenantOverloadedException.Reason.EXPECTED_WAIT,
                            ahead,
                            owedNow,
                            Duration.ofNanos(expected),
                            Duration.ofNanos(Math.max(0, remaining)),
                            margin,
                            maxQueued,
                            sc.times.basis(owedNow, now)),
                    Retry.NEVER);
        }
    }

    /**
     * On the way to a refusal only: whether the sidecar is waiting for this JVM, because two whole answers already sit
     * unread in its stdout ({@link #answersWaiting}, every time: about a microsecond) or because its process is asleep on its stdin
     * or stdout ({@link ProcWaitChannel}), waiting for this JVM to write a request or read an answer. The first
     * catches what one look at the wait channel misses: a process answering fast alternates between running and
     * blocking on a full stdout, and a look that found it running stood for 2 ms (the no-fault soak refused a call
     * on a sidecar, judged by the one answer it had measured, 919 ms, while its stdout held answers it was blocked
     * writing). Then the times measured
     * between answers were the JVM's own delays (a virtual thread waiting for a carrier, the reader role passing
     * between callers, a cold JIT), and refusing would shed healthy traffic: a soak without any fault that slows a
     * sidecar refused 482 calls with 2 s deadlines in a minute on 2 cores and 2,000 callers. Read at most once per
     * {@link #WAIT_CHECK_NANOS} per sidecar (about 20 µs each), since a slow sidecar's refusals come thousands a second.
     */
    boolean sidecarWaitsOnUs() {
        if (answersWaiting()) {
            return true;
        }
        long now = System.nanoTime();
        if (now - waitCheckedNanos < WAIT_CHECK_NANOS) {
            return waitsOnUs;
        }
        boolean w = ProcWaitChannel.waitsOnPipe(sc.pid);
        waitsOnUs = w;
        waitCheckedNanos = now;
        return w;
    }

    /**
     * Whether two whole answers sit unread in stdout: the process wrote an answer before this JVM read the one before
     * it, so it is faster than the reading. One is not enough: a slow sidecar's answer waits there from its write
     * until its reader is woken and scheduled (the shared-callers benchmark, whose slow tenant answers once a second,
     * held 31 callers on average instead of 5 when one counted).
     */
    boolean answersWaiting() {
        return unreadBytes() >= 2 * PAGE_BYTES;
    }

    /** Whether answer bytes sit unread in stdout. */
    boolean answerBytesWaiting() {
        return unreadBytes() > 0;
    }

    /** Bytes unread in stdout (FIONREAD); 0 if it cannot tell (the pipe is closed). */
    private int unreadBytes() {
        try {
            return sc.child.stdout().available();
        } catch (IOException e) {
            return 0;
        }
    }
}
