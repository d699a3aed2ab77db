// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.TenantShardId;
import io.walredo.WalRedoException;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.ExitStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;

/**
 * The life of one sidecar: its ctl word (state and borrow count), retain / release / retire / kill, the watch on
 * its process's exit, its recorded {@link Failure}, the two reports of its end to its {@link Listener}, and whose it
 * is (a warm spare's hand-over to a tenant). The first layer of {@link Sidecar} (see there for ownership; the layers
 * are one object, so no redo pays a hop between them): {@link AnswerQueue} and {@link SidecarFaults} build on it,
 * {@link Sidecar} is the exchange.
 *
 * <p><b>States.</b> ACTIVE (in rotation) → RETIRED (out of rotation: idle-reserved, detached, or its process
 * exited; in-flight requests may still finish) → KILLED. A failure the sidecar is to blame for (crash,
 * garbage, output nobody asked for, no progress for {@code stallTimeout}) records a {@link Failure} and
 * goes straight to KILLED, failing every waiter at once.
 *
 * <p><b>The ctl word.</b> One {@code AtomicLong}: high 32 bits the state, low 32 bits the borrowers. Every
 * transition is one compare-and-set of the whole word, so "borrow" ({@link #tryRetain}) and "reserve idle for
 * killing" ({@link #tryReserveIdle}) can never both win, a retired sidecar is killed by exactly the borrower that
 * drops the count to zero (or by {@link #retire} if there is none), and KILLED is entered exactly once.
 *
 * <p><b>One owner of its death.</b> Only this object observes its child's exit ({@link #watchExit}) and only it
 * reports its end: {@link Listener#killed} once, from the thread that won the KILLED transition, and
 * {@link Listener#reaped} once, after the reap and before {@link #terminated()} completes. The listener
 * ({@link SidecarDeaths}) is the one place that books the slot, back-off, cap, metrics and JFR.
 */
abstract sealed class SidecarLife permits AnswerQueue {
    /**
     * A sidecar's place in the state machine of the class comment. The ctl word holds its ordinal and starts at 0, so
     * ACTIVE must come first.
     */
    enum Life {
        ACTIVE,
        RETIRED,
        KILLED
    }

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

    /** Indexed by ordinal; read from the ctl word without allocating. */
    private static final Life[] LIVES = Life.values();

    static final Duration CRASH_REPORT_WAIT = Duration.ofMillis(500);

    /**
     * Where this sidecar reports its end ({@link SidecarDeaths}); each method is called exactly once per sidecar and
     * must not block. The two come in either order: a sidecar we kill reports {@code killed} first; one whose
     * process dies on its own is reaped first and reports {@code killed} when its death has been processed.
     */
    interface Listener {
        /** It left service for good: SIGKILL sent, pipes closed, waiters failed. On the killing thread. */
        void killed(Sidecar sidecar, KillCause cause);

        /** Its process has been reaped; before {@link SidecarLife#terminated()} completes. On a walredo-exit thread. */
        void reaped(Sidecar sidecar);
    }

    /** Runs each sidecar's exit processing ({@link #exited}), which may wait briefly for the crash report. */
    private static final Executor EXIT_THREADS =
            r -> Thread.ofVirtual().name("walredo-exit").start(r);

    /**
     * What broke this sidecar: the error its waiters get, whether their requests may be retried elsewhere,
     * and whether the sidecar itself is to blame (only then does it count toward spawn back-off).
     */
    record Failure(WalRedoException error, Retry retry, boolean sidecarAtFault) {}

    /** A spare's key names no tenant until {@link Sidecar#assign}; written once, before the first request. */
    volatile SidecarKey key;

    final ChildProcess child;
    final int pid;
    final LongSupplier nanoClock;
    final StderrDrainer stderr;
    final Listener listener;
    final Duration stallTimeout;
    final long stallNanos;
    /** Replaced once, with the tenant's name, by {@link Sidecar#assign}. */
    volatile Failures failures;

    private final Instant startedAt;
    /** NOT_SPARE for a tenant's own spawn; a spare goes SPARE → HANDED_OVER or SPARE → DIED_SPARE, once. */
    private final AtomicReference<SpareState> spare;

    /** When it last served a request (wall clock, for {@code status()}); 0 before the first. */
    volatile long lastRedoEpochMillis;

    /** High 32 bits: state; low 32 bits: borrowers. One CAS decides retain versus retire races. */
    final AtomicLong ctl = new AtomicLong();

    final CompletableFuture<Void> accounted = new CompletableFuture<>();
    final AtomicReference<KillCause> retireCause = new AtomicReference<>();
    volatile long lastUsedNanos;
    volatile boolean served;
    volatile ExitStatus exitedOnItsOwn;
    final AtomicReference<Failure> failure = new AtomicReference<>();
    final CompletableFuture<ExitStatus> terminated = new CompletableFuture<>();

    /**
     * What a sidecar is made of, as {@link SidecarLauncher} hands it over: one value, so that each layer's constructor
     * passes it up whole.
     */
    record Parts(
            SidecarKey key,
            ChildProcess child,
            Instant startedAt,
            LongSupplier nanoClock,
            StderrDrainer stderr,
            Listener listener,
            Duration stallTimeout,
            StartupTimes startups) {}

    SidecarLife(Parts parts) {
        this.key = parts.key();
        this.child = parts.child();
        this.pid = child.pid();
        this.nanoClock = parts.nanoClock();
        this.stderr = parts.stderr();
        this.listener = parts.listener();
        this.stallTimeout = parts.stallTimeout();
        this.stallNanos = stallTimeout.toNanos();
        this.failures = new Failures(key, pid);
        this.lastUsedNanos = nanoClock.getAsLong();
        this.startedAt = parts.startedAt();
        this.spare = new AtomicReference<>(key.isSpare() ? SpareState.SPARE : SpareState.NOT_SPARE);
    }

    /** Wakes every waiting request (on kill: they then see the recorded failure). */
    abstract void wakeAll();

    /** Answers owed: requests written (or being written) whose answers have not been read. */
    abstract int owed();

    /** Processes a death nobody caused, once the child has been reaped ({@link SidecarFaults#childExited}). */
    abstract void childExited(ExitStatus status);

    /** The sidecar itself; the hierarchy is sealed, so this layer is always part of one. */
    private Sidecar self() {
        return (Sidecar) this;
    }

    SidecarKey key() {
        return key;
    }

    TenantShardId tenant() {
        return key.tenant();
    }

    int pid() {
        return pid;
    }

    long lastUsedNanos() {
        return lastUsedNanos;
    }

    int inFlight() {
        return (int) ctl.get();
    }

    boolean isActive() {
        return state(ctl.get()) == Life.ACTIVE;
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
     * Completes with the exit status once the child has been reaped and {@link Listener#reaped} no longer counts
     * it as live; so detach and shutdown, which wait on this, return with the live count already
     * lowered. Exceptionally if the reap failed.
     */
    CompletableFuture<ExitStatus> terminated() {
        return terminated;
    }

    /**
     * Starts watching the child's exit; called once by the launcher, right after construction. From then on this
     * sidecar is the only observer of its process's end: {@link #exited} reports the reap, completes
     * {@link #terminated()}, and processes a death nobody caused.
     */
    void watchExit() {
        child.onExit().whenCompleteAsync(this::exited, EXIT_THREADS);
    }

    void exited(ExitStatus status, Throwable reapFailure) {
        try {
            listener.reaped(self());
        } finally {
            // terminated() must complete whatever happens above, or detach/shutdown wait out their deadline.
            if (reapFailure != null) {
                terminated.completeExceptionally(reapFailure);
            } else {
                terminated.complete(status);
            }
        }
        if (status != null) {
            childExited(status);
        }
    }

    static Life state(long c) {
        return LIVES[(int) (c >>> 32)];
    }

    static long ctl(Life state, int count) {
        return ((long) state.ordinal() << 32) | (count & 0xffffffffL);
    }

    /**
     * Borrows this sidecar for one request; false if it left rotation. A child already reaped (the reactor marks
     * it before the exit callbacks run) leaves rotation here, so no request meets a sidecar known to be dead.
     */
    boolean tryRetain() {
        if (!child.isAlive()) {
            leaveRotation(KillCause.ERROR);
            return false;
        }
        for (; ; ) {
            long c = ctl.get();
            if (state(c) != Life.ACTIVE) {
                return false;
            }
            if (ctl.compareAndSet(c, c + 1)) {
                return true;
            }
        }
    }

    /** Gives back a borrow; the last borrower of a retired sidecar kills it. */
    void release() {
        lastUsedNanos = nanoClock.getAsLong();
        long c = ctl.decrementAndGet();
        if ((int) c == 0 && state(c) == Life.RETIRED) {
            kill(retireCause.get());
        }
    }

    /**
     * Takes an idle sidecar out of rotation for the housekeeper or the live-sidecar cap: succeeds only if
     * nobody borrows it, atomically with respect to {@link #tryRetain()}. The caller then kills it.
     */
    boolean tryReserveIdle() {
        return ctl.compareAndSet(ctl(Life.ACTIVE, 0), ctl(Life.RETIRED, 0));
    }

    /**
     * Takes this sidecar out of rotation; in-flight requests may finish, and the last one to let go
     * kills it (with no borrower, it is killed now). Idempotent; the first cause wins.
     */
    void retire(KillCause cause) {
        if (leaveRotation(cause) == 0) {
            kill(retireCause.get());
        }
    }

    /** ACTIVE → RETIRED; returns the borrowers at that moment, or -1 if it was no longer ACTIVE. */
    int leaveRotation(KillCause cause) {
        for (; ; ) {
            long c = ctl.get();
            if (state(c) != Life.ACTIVE) {
                return -1;
            }
            retireCause.compareAndSet(null, cause);
            if (ctl.compareAndSet(c, ctl(Life.RETIRED, (int) c))) {
                return (int) c;
            }
        }
    }

    /**
     * SIGKILLs the child and closes its pipes, failing every waiting request (with the recorded failure, or a
     * cancellation naming {@code cause}). Idempotent, never blocks; reaping completes {@link #terminated()} a
     * few milliseconds later.
     */
    void kill(KillCause cause) {
        for (; ; ) {
            long c = ctl.get();
            if (state(c) == Life.KILLED) {
                return;
            }
            if (ctl.compareAndSet(c, ctl(Life.KILLED, (int) c))) {
                break;
            }
        }
        failure.compareAndSet(null, defaultFailure(cause));
        wakeAll();
        child.close();
        try {
            listener.killed(self(), cause);
        } finally {
            accounted.complete(null);
        }
    }

    /**
     * Whether the process died on its own before answering anything and its death has not been processed yet (the
     * exit callback is still collecting the exit status and stderr tail, up to {@link #CRASH_REPORT_WAIT}). Until
     * it has, the death does not count toward spawn back-off, so a caller must not respawn yet: see
     * {@link #accounted()}.
     */
    boolean diedUnaccounted() {
        return !served && !child.isAlive() && !accounted.isDone();
    }

    /** Completes once {@link #kill} has told the listener (so back-off bookkeeping has seen this sidecar's end). */
    CompletableFuture<Void> accounted() {
        return accounted;
    }

    Failure defaultFailure(KillCause cause) {
        ExitStatus exit = exitedOnItsOwn;
        if (exit != null || !child.isAlive()) {
            // Reaped before this kill: it died on its own (the exit callback may not have run yet).
            return new Failure(
                    failures.crashed(exit != null ? "died with " + exit : "died", exit, stderr.tail(), "", 0, null),
                    Retry.PER_ATTEMPT_TYPE,
                    true);
        }
        // Detach and shutdown close the tenant's slot; a retry would only be refused.
        Retry retry = cause == KillCause.DETACH || cause == KillCause.SHUTDOWN ? Retry.NEVER : Retry.PER_ATTEMPT_TYPE;
        return new Failure(failures.killed(cause), retry, false);
    }

    /** Records {@code f} as this sidecar's failure (the first wins), fails every waiter, kills it; returns the recorded one. */
    Failure fail(Failure f, KillCause cause) {
        failure.compareAndSet(null, f);
        kill(cause);
        return failure.get();
    }

    AttemptFailure failed(Failure f, KillCause cause) {
        return recorded(fail(f, cause));
    }

    /** This caller's copy of the sidecar's recorded failure, retried as that failure allows. */
    static AttemptFailure recorded(Failure f) {
        return new AttemptFailure(Failures.copy(f.error()), f.retry());
    }
}
