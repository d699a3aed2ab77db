// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoException;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.ExitStatus;
import io.walredo.nativeio.PipeTimeoutException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One {@code postgres --wal-redo} child for one tenant shard and its pipes, with pipelined requests.
 *
 * <p><b>Ownership.</b> Created by {@link Supervisor} after a successful spawn; the supervisor's slot for
 * the tenant holds it while it is in rotation. Requests borrow it with {@link #tryRetain()} and give it
 * back with {@link #release()}; borrowers must not keep a reference. Only this class signals or reaps its
 * child (through {@link ChildProcess}, pidfd-based, so pid reuse is harmless). {@link #kill} is
 * idempotent and never blocks; {@link #terminated()} completes once the child has been reaped and is no
 * longer counted as live.
 *
 * <p><b>Life.</b> ACTIVE (in rotation) → RETIRED (out of rotation: idle-reserved, detached, or its process
 * exited; in-flight requests may still finish) → KILLED. A failure the sidecar is to blame for (crash,
 * garbage, output nobody asked for, no progress for {@code stallTimeout}) records a {@link Failure} and
 * goes straight to KILLED, failing every waiter at once.
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
 * <p><b>Reading.</b> There is no reader thread: the waiter that wins {@code readerRole} reads answers and
 * hands each to the queue's head (unparking its owner) until its own has arrived, then passes the role on
 * ({@link #ensureReader}): to the first entry still waiting, else to a drainer if answers are owed. With one
 * request in flight the caller reads its own answer: one wake-up per request. {@code answer} keeps its
 * position across hand-overs, so an answer split across readers is never torn.
 */
final class Sidecar {
    static final int PAGE_BYTES = ProtocolCodec.PAGE_BYTES;

    private static final Logger log = LoggerFactory.getLogger(Sidecar.class);
    private static final int ACTIVE = 0;
    private static final int RETIRED = 1;
    private static final int KILLED = 2;
    private static final Duration CRASH_REPORT_WAIT = Duration.ofMillis(500);
    /**
     * Admission never refuses for an expected wait shorter than this: a caller gains little from being turned away
     * for less, and short estimates are where noise (a GC pause, a busy carrier) weighs most. A caller whose
     * deadline is shorter still may time out instead, as before.
     */
    static final long ADMISSION_MIN_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    /**
     * Where this sidecar reports its end ({@link SidecarDeaths}); each method is called exactly once per sidecar and
     * must not block. The two come in either order: a sidecar we kill reports {@code killed} first; one whose
     * process dies on its own is reaped first and reports {@code killed} when its death has been processed.
     */
    interface Listener {
        /** It left service for good: SIGKILL sent, pipes closed, waiters failed. On the killing thread. */
        void killed(Sidecar sidecar, KillCause cause);

        /** Its process has been reaped; before {@link #terminated()} completes. On a {@code walredo-exit} thread. */
        void reaped(Sidecar sidecar);
    }

    /** Runs each sidecar's exit processing ({@link #exited}), which may wait briefly for the crash report. */
    private static final Executor EXIT_THREADS = r -> Thread.ofVirtual().name("walredo-exit").start(r);

    /**
     * What broke this sidecar: the error its waiters get, whether their requests may be retried elsewhere,
     * and whether the sidecar itself is to blame (only then does it count toward spawn back-off).
     */
    record Failure(WalRedoException error, Retry retry, boolean sidecarAtFault) {
    }

    /** A spare's key names no tenant until {@link #assign}; written once, before the first request. */
    private volatile SidecarKey key;
    private final ChildProcess child;
    private final int pid;
    private final Instant startedAt;
    private final LongSupplier nanoClock;
    private final StderrDrainer stderr;
    private final Listener listener;
    private final Duration stallTimeout;
    private final long stallNanos;
    /** Replaced once, with the tenant's name, by {@link #assign}. */
    private volatile Failures failures;

    /** High 32 bits: state; low 32 bits: borrowers. One CAS decides retain versus retire races. */
    private final AtomicLong ctl = new AtomicLong();
    private final CompletableFuture<Void> accounted = new CompletableFuture<>();
    private final AtomicReference<KillCause> retireCause = new AtomicReference<>();
    private volatile long lastUsedNanos;
    private volatile long lastRedoEpochMillis;
    private volatile boolean served;
    private volatile ExitStatus exitedOnItsOwn;

    /** Held by whoever writes to stdin; a semaphore, not a lock, so a half-written request's permit can move to the background writer. */
    private final Semaphore writePermit = new Semaphore(1);
    private final ReentrantLock queueLock = new ReentrantLock();
    /** Guarded by queueLock: the entries whose answers are owed, oldest first. */
    private Pending head;
    private Pending tail;
    /** Entries in the queue; written under queueLock. */
    private volatile int owed;
    private final AtomicBoolean readerRole = new AtomicBoolean();
    private final AtomicBoolean drainerRunning = new AtomicBoolean();
    /** System.nanoTime() of the sidecar's last sign of life while owing: the first entry of a busy spell, or an answer byte. */
    private volatile long progressNanos;
    /** Answer times, for admission and the reader's polling. */
    private final ServiceTimes times = new ServiceTimes();
    /** Only touched by the reader-role holder; its position survives hand-overs. */
    private final ByteBuffer answer = ByteBuffer.allocateDirect(PAGE_BYTES);
    private final AtomicReference<Failure> failure = new AtomicReference<>();
    private final CompletableFuture<ExitStatus> terminated = new CompletableFuture<>();

    Sidecar(SidecarKey key, ChildProcess child, Instant startedAt, LongSupplier nanoClock, StderrDrainer stderr,
            Listener listener, Duration stallTimeout) {
        this.key = key;
        this.child = child;
        this.pid = child.pid();
        this.startedAt = startedAt;
        this.nanoClock = nanoClock;
        this.stderr = stderr;
        this.listener = listener;
        this.stallTimeout = stallTimeout;
        this.stallNanos = stallTimeout.toNanos();
        this.failures = new Failures(key, pid);
        this.lastUsedNanos = nanoClock.getAsLong();
    }

    SidecarKey key() {
        return key;
    }

    /**
     * Hands a warm spare to {@code tenantKey}'s tenant: from now on its errors, logs, metrics and stderr lines name
     * that tenant. Called once, by the caller that took the spare out of the pool, before any request reaches it; a
     * spare has never received a byte, so it carries nothing of anyone.
     */
    void assign(SidecarKey tenantKey) {
        if (!key.isSpare() || tenantKey.isSpare() || tenantKey.pgVersion() != key.pgVersion()) {
            throw new IllegalStateException("cannot assign " + this + " to " + tenantKey);
        }
        failures = new Failures(tenantKey, pid);
        stderr.assign(tenantKey.tenant());
        key = tenantKey;
    }

    TenantShardId tenant() {
        return key.tenant();
    }

    int pid() {
        return pid;
    }

    Instant startedAt() {
        return startedAt;
    }

    long lastUsedNanos() {
        return lastUsedNanos;
    }

    Optional<Instant> lastRedoAt() {
        long ms = lastRedoEpochMillis;
        return ms == 0 ? Optional.empty() : Optional.of(Instant.ofEpochMilli(ms));
    }

    int inFlight() {
        return (int) ctl.get();
    }

    boolean isActive() {
        return state(ctl.get()) == ACTIVE;
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

    private void exited(ExitStatus status, Throwable reapFailure) {
        try {
            listener.reaped(this);
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
    private void childExited(ExitStatus status) {
        exitedOnItsOwn = status;
        if (state(ctl.get()) == KILLED) {
            return;
        }
        leaveRotation(KillCause.ERROR);
        if (inFlight() > 0 || owed > 0) {
            // A request in flight normally sees EOF or EPIPE itself and reports the precise failure (a short
            // answer is a protocol error, not a crash); only if it has not within the grace period (a grandchild
            // may hold the pipes open) is it failed from here.
            LockSupport.parkNanos(CRASH_REPORT_WAIT.toNanos());
            if (state(ctl.get()) == KILLED) {
                return;
            }
        }
        List<String> tail = stderr.tailAfterEof(CRASH_REPORT_WAIT);
        fail(new Failure(failures.crashed("died with " + status, status, tail, "", 0, null),
                Retry.PER_ATTEMPT_TYPE, true), KillCause.ERROR);
    }

    private static int state(long c) {
        return (int) (c >>> 32);
    }

    private static long ctl(int state, int count) {
        return ((long) state << 32) | (count & 0xffffffffL);
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
        for (;;) {
            long c = ctl.get();
            if (state(c) != ACTIVE) {
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
        if ((int) c == 0 && state(c) == RETIRED) {
            kill(retireCause.get());
        }
    }

    /**
     * Takes an idle sidecar out of rotation for the housekeeper or the live-sidecar cap: succeeds only if
     * nobody borrows it, atomically with respect to {@link #tryRetain()}. The caller then kills it.
     */
    boolean tryReserveIdle() {
        return ctl.compareAndSet(ctl(ACTIVE, 0), ctl(RETIRED, 0));
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
    private int leaveRotation(KillCause cause) {
        for (;;) {
            long c = ctl.get();
            if (state(c) != ACTIVE) {
                return -1;
            }
            retireCause.compareAndSet(null, cause);
            if (ctl.compareAndSet(c, ctl(RETIRED, (int) c))) {
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
        for (;;) {
            long c = ctl.get();
            if (state(c) == KILLED) {
                return;
            }
            if (ctl.compareAndSet(c, ctl(KILLED, (int) c))) {
                break;
            }
        }
        failure.compareAndSet(null, defaultFailure(cause));
        wakeAll();
        child.close();
        try {
            listener.killed(this, cause);
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

    private Failure defaultFailure(KillCause cause) {
        ExitStatus exit = exitedOnItsOwn;
        if (exit != null || !child.isAlive()) {
            // Reaped before this kill: it died on its own (the exit callback may not have run yet).
            return new Failure(failures.crashed(exit != null ? "died with " + exit : "died", exit, stderr.tail(), "", 0,
                    null), Retry.PER_ATTEMPT_TYPE, true);
        }
        // Detach and shutdown close the tenant's slot; a retry would only be refused.
        Retry retry = cause == KillCause.DETACH || cause == KillCause.SHUTDOWN ? Retry.NEVER : Retry.PER_ATTEMPT_TYPE;
        return new Failure(failures.killed(cause), retry, false);
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
        Pending p = new Pending(Thread.currentThread(), target);
        ByteBuffer src = request.duplicate();
        write(p, src, deadline);
        try {
            byte[] page = awaitAnswer(p, deadline);
            lastRedoEpochMillis = System.currentTimeMillis();
            served = true;
            return page;
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
                boolean handedOn = !isBrokenPipe(t) && finishInBackground(src, progress);
                permitHeld = !handedOn;
                throw writeFailed(t, "after " + progress + (handedOn ? "; the rest is written in the background" : ""),
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
                throw new AttemptFailure(failures.callerTimeout("waiting for earlier requests to be written to its"
                        + " stdin", stallTimeout, null), Retry.NEVER);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AttemptFailure(failures.cancelled("the calling thread was interrupted while waiting to write",
                    e), Retry.NEVER);
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
        log.atWarn().addKeyValue("tenant", tenant()).addKeyValue("pid", pid).addKeyValue("bytes", bytes)
                .log("walredo sidecar wrote to stdout while no answer was owed; killing it");
        return fail(new Failure(failures.unsolicited(bytes + " bytes to its stdout"), Retry.PER_ATTEMPT_TYPE, true),
                KillCause.ERROR);
    }

    private static boolean isBrokenPipe(Throwable t) {
        return t instanceof IOException && !(t instanceof PipeTimeoutException) && !(t instanceof InterruptedIOException);
    }

    /** Maps what ended a write; the entry has been taken back or abandoned already. Errors are rethrown as they are. */
    private AttemptFailure writeFailed(Throwable t, String progress, Deadline deadline) {
        if (t instanceof Error e) {
            throw e;
        }
        if (t instanceof RuntimeException e) {
            throw e;
        }
        if (t instanceof PipeTimeoutException) {
            return new AttemptFailure(failures.callerTimeout("writing the request to its stdin " + progress,
                    stallTimeout, t), Retry.NEVER);
        }
        if (t instanceof InterruptedIOException) {
            Thread.currentThread().interrupt();
            return new AttemptFailure(failures.cancelled("the calling thread was interrupted while writing the request "
                    + progress, t), Retry.NEVER);
        }
        Failure known = failure.get();
        if (known != null) {
            return recorded(known);
        }
        return failed(new Failure(crashed("writing to its stdin", (IOException) t, 0, deadline),
                Retry.PER_ATTEMPT_TYPE, true), KillCause.ERROR);
    }

    /**
     * Hands the unwritten rest of a request to a background writer, which inherits the write permit. It copies
     * the rest (the caller reuses its buffer) and writes until done, the sidecar dies, or the sidecar accepts no
     * byte for {@code stallTimeout}. Returns false if it could not be started: then the stream is torn and the
     * sidecar is killed here.
     */
    private boolean finishInBackground(ByteBuffer rest, String progress) {
        try {
            ByteBuffer copy = ByteBuffer.allocate(rest.remaining());
            copy.put(rest).flip();
            Thread.ofVirtual().name("walredo-finish-" + pid).start(() -> finishWrite(copy));
            return true;
        } catch (Throwable t) {
            fail(new Failure(failures.cancelled("another request stopped half-way through writing (" + progress
                    + ") and its rest could not be handed on (" + t + "), so the sidecar was killed", t),
                    Retry.PER_ATTEMPT_TYPE, false), KillCause.ERROR);
            return false;
        }
    }

    private void finishWrite(ByteBuffer rest) {
        try {
            // Each round waits one stallTimeout; a round in which the sidecar took no byte kills it.
            int before = rest.position();
            while (rest.hasRemaining() && failure.get() == null) {
                try {
                    child.stdin().writeFully(rest, Deadline.after(stallTimeout));
                } catch (PipeTimeoutException e) {
                    if (rest.position() == before) {
                        fail(new Failure(failures.stalled("reading its stdin (" + rest.remaining()
                                + " bytes of a request still to write)", stallTimeout), Retry.PER_ATTEMPT_TYPE, true),
                                KillCause.TIMEOUT);
                        return;
                    }
                    before = rest.position();
                }
            }
        } catch (IOException e) {
            if (failure.get() == null) {
                fail(new Failure(crashed("writing to its stdin", e, 0, null),
                        Retry.PER_ATTEMPT_TYPE, true), KillCause.ERROR);
            }
        } catch (Throwable t) {
            fail(new Failure(failures.cancelled("finishing a half-written request failed (" + t
                    + "), so the sidecar was killed", t), Retry.PER_ATTEMPT_TYPE, false), KillCause.ERROR);
        } finally {
            writePermit.release();
            ensureReader();
        }
    }

    private byte[] awaitAnswer(Pending p, Deadline deadline) throws AttemptFailure {
        for (;;) {
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
                    throw new AttemptFailure(failures.callerTimeout("waiting for its answer behind "
                            + "earlier requests", stallTimeout, null), Retry.NEVER);
                }
                continue;
            }
            LockSupport.parkNanos(this, remaining);
            if (Thread.currentThread().isInterrupted() && p.abandon()) {
                ensureReader();
                throw new AttemptFailure(failures.cancelled("the calling thread was interrupted while waiting for "
                        + "the answer", null), Retry.NEVER);
            }
        }
    }

    /** Holds the reader role: reads answers, handing each to the queue's head, until {@code p} is answered. */
    private void readUntilAnswered(Pending p, Deadline deadline) throws AttemptFailure {
        while (!p.isDone()) {
            Failure f = failure.get();
            if (f != null) {
                p.abandon();
                throw recorded(f);
            }
            try {
                if (!readOneAnswer(deadline) && p.abandon()) {
                    throw new AttemptFailure(failures.callerTimeout("waiting for its answer (" + answer.position()
                            + " of " + PAGE_BYTES + " bytes of the next answer arrived)", stallTimeout, null),
                            Retry.NEVER);
                }
            } catch (InterruptedIOException e) {
                if (p.abandon()) {
                    Thread.currentThread().interrupt();
                    throw new AttemptFailure(failures.cancelled("the calling thread was interrupted while reading the"
                            + " answer", e), Retry.NEVER);
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
    private boolean readOneAnswer(Deadline callerDeadline) throws AttemptFailure, InterruptedIOException {
        // Allocated before any byte is consumed, so an OutOfMemoryError here leaves the stream as it was.
        byte[] page = headWantsArray() ? new byte[PAGE_BYTES] : null;
        while (answer.hasRemaining()) {
            Deadline stall = new Deadline(progressNanos + stallNanos);
            Deadline wait = callerDeadline == null ? stall : callerDeadline.earliest(stall);
            int n;
            try {
                n = child.stdout().read(answer, wait, times.spinBudgetNanos(owed));
            } catch (PipeTimeoutException e) {
                if (callerDeadline != null && callerDeadline.isExpired()) {
                    return false;
                }
                if (System.nanoTime() - progressNanos >= stallNanos) {
                    throw failed(new Failure(failures.stalled("while " + owed + " answers were owed ("
                            + answer.position() + " of " + PAGE_BYTES + " bytes of the next arrived)", stallTimeout),
                            Retry.PER_ATTEMPT_TYPE, true), KillCause.TIMEOUT);
                }
                continue;
            } catch (InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                Failure known = failure.get();
                if (known != null) {
                    throw recorded(known);
                }
                throw failed(new Failure(crashed("reading its stdout", e, answer.position(), callerDeadline),
                        Retry.PER_ATTEMPT_TYPE, true), KillCause.ERROR);
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
                throw failed(new Failure(failures.unsolicited("a whole page more than was asked for"),
                        Retry.PER_ATTEMPT_TYPE, true), KillCause.ERROR);
            }
            owner.deliver(answer, page);
        } finally {
            answer.clear();
        }
        return true;
    }

    /**
     * Admission, before anything is queued or sent (the caller holds a borrow): refuses at once, with {@link
     * TenantOverloadedException}, a request that would make more than {@code maxQueued} requests queued or in
     * flight here, or whose wait for the answers owed ahead of it is expected to outlast its deadline. An idle
     * sidecar admits everything; see {@link #expectedWaitNanos} for the estimate.
     */
    void admit(Deadline deadline, int maxQueued) throws AttemptFailure {
        int ahead = Math.max(owed, inFlight() - 1);
        if (ahead == 0) {
            return;
        }
        if (ahead >= maxQueued) {
            throw new AttemptFailure(failures.overloaded(TenantOverloadedException.Reason.QUEUE_BOUND, ahead,
                    Duration.ZERO, Duration.ZERO, maxQueued), Retry.NEVER);
        }
        long remaining = deadline.remainingNanos();
        if (remaining <= 0) {
            return; // already late: the caller times out on its first wait, which says so better than a refusal
        }
        long expected = expectedWaitNanos(ahead);
        if (expected >= ADMISSION_MIN_WAIT_NANOS && expected > remaining) {
            throw new AttemptFailure(failures.overloaded(TenantOverloadedException.Reason.EXPECTED_WAIT, ahead,
                    Duration.ofNanos(expected), Duration.ofNanos(Math.max(0, remaining)), maxQueued), Retry.NEVER);
        }
    }

    /** See {@link ServiceTimes#expectedWaitNanos}. */
    long expectedWaitNanos(int ahead) {
        return times.expectedWaitNanos(ahead, owed, System.nanoTime(), this::answerBytesWaiting);
    }

    /** Whether answer bytes sit unread in stdout (FIONREAD); false if it cannot tell (the pipe is closed). */
    private boolean answerBytesWaiting() {
        try {
            return child.stdout().available() > 0;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Makes sure someone reads while answers are owed. Called by every reader-role holder after letting go and by
     * every waiter that abandons: wakes the first entry still waiting (it takes the role), else starts a drainer.
     * No wake-up is lost: a waiter appends its entry before it tries for the role and re-tries after each park,
     * and whoever lets the role go calls this after clearing it, so it sees every entry whose try failed.
     */
    private void ensureReader() {
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
                log.atWarn().setCause(t).addKeyValue("tenant", tenant()).addKeyValue("pid", pid)
                        .log("cannot start the walredo answer drainer");
            }
        }
    }

    /** Reads and drops the answers of abandoned requests while no caller waits, until none is owed. */
    private void drain() {
        boolean clean = false;
        try {
            while (owed > 0 && failure.get() == null && firstWaiter() == null && readerRole.compareAndSet(false, true)) {
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
            fail(new Failure(failures.cancelled("reading abandoned answers failed (" + t + "), so the sidecar was killed",
                    t), Retry.PER_ATTEMPT_TYPE, false), KillCause.ERROR);
        } finally {
            drainerRunning.set(false);
        }
        if (clean) {
            ensureReader();
        }
    }

    private WalRedoException endOfFile(Deadline deadline) {
        int got = answer.position();
        Duration wait = reportWait(deadline);
        if (got > 0) {
            String status = exitStatusWithin(wait).map(ExitStatus::toString).orElse(null);
            return failures.shortAnswer(got, status, stderr.tailAfterEof(wait));
        }
        return crashed("reading its stdout", null, 0, deadline);
    }

    /** How long an error report may wait for the exit status and stderr: briefly, and never past the deadline. */
    private static Duration reportWait(Deadline deadline) {
        long cap = CRASH_REPORT_WAIT.toNanos();
        return Duration.ofNanos(Math.max(0, deadline == null ? cap : Math.min(cap, deadline.remainingNanos())));
    }

    private WalRedoException crashed(String during, IOException cause, int partial, Deadline deadline) {
        Optional<ExitStatus> status = exitStatusWithin(reportWait(deadline));
        List<String> tail = stderr.tailAfterEof(status.isPresent() ? reportWait(deadline) : Duration.ZERO);
        String how = status.map(s -> "died with " + s).orElse("closed its pipes while alive");
        return failures.crashed(how, status.orElse(null), tail, during, partial, cause);
    }

    private Optional<ExitStatus> exitStatusWithin(Duration wait) {
        try {
            return Optional.of(child.onExit().get(wait.toNanos(), TimeUnit.NANOSECONDS));
        } catch (TimeoutException | ExecutionException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }

    /** Records {@code f} as this sidecar's failure (the first wins), fails every waiter, kills it; returns the recorded one. */
    private Failure fail(Failure f, KillCause cause) {
        failure.compareAndSet(null, f);
        kill(cause);
        return failure.get();
    }

    private AttemptFailure failed(Failure f, KillCause cause) {
        return recorded(fail(f, cause));
    }

    /** This caller's copy of the sidecar's recorded failure, retried as that failure allows. */
    private static AttemptFailure recorded(Failure f) {
        return new AttemptFailure(Failures.copy(f.error()), f.retry());
    }

    private void enqueue(Pending p) {
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
        } finally {
            queueLock.unlock();
        }
    }

    /**
     * Takes back the newest entry, whose request was not written at all. The caller holds the write permit, so
     * nobody appended after it. Returns false if it was no longer queued: an answer it never asked for took it.
     */
    private boolean removeTail(Pending p) {
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
            return true;
        } finally {
            queueLock.unlock();
        }
    }

    /** Whether the next answer's owner wants it as an array (a guess if the head changes meanwhile; see deliver). */
    private boolean headWantsArray() {
        queueLock.lock();
        try {
            return head == null || head.target == null;
        } finally {
            queueLock.unlock();
        }
    }

    private Pending pollHead() {
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
            }
            return h;
        } finally {
            queueLock.unlock();
        }
    }

    private Thread firstWaiter() {
        queueLock.lock();
        try {
            for (Pending q = head; q != null; q = q.next) {
                if (q.isWaiting()) {
                    return q.waiter;
                }
            }
            return null;
        } finally {
            queueLock.unlock();
        }
    }

    private void wakeAll() {
        queueLock.lock();
        try {
            for (Pending q = head; q != null; q = q.next) {
                LockSupport.unpark(q.waiter);
            }
        } finally {
            queueLock.unlock();
        }
    }

    @Override
    public String toString() {
        return "Sidecar[" + key + ", pid " + pid + "]";
    }

    /** One request's place in the answer queue: a node of the queue itself, so appending allocates nothing. */
    private static final class Pending {
        private static final int WAITING = 0;
        private static final int DONE = 1;
        private static final int ABANDONED = 2;
        /** The reader is copying the answer into {@link #target}; DONE follows. */
        private static final int FILLING = 3;

        final Thread waiter;
        /** Where the answer goes (8192 bytes from its position), or null for a new array in {@link #page}. */
        final ByteBuffer target;
        private final AtomicInteger state = new AtomicInteger();
        /** Written before the DONE transition publishes it. */
        byte[] page;
        /** Guarded by the sidecar's queueLock. */
        Pending next;

        Pending(Thread waiter, ByteBuffer target) {
            this.waiter = waiter;
            this.target = target == null ? null : target.duplicate();
        }

        boolean isDone() {
            return state.get() == DONE;
        }

        boolean isWaiting() {
            return state.get() == WAITING;
        }

        /**
         * Delivers the answer ({@code src}: its 8192 bytes from position to limit); an abandoned request's answer is
         * dropped. {@code page} is an array allocated in advance for an owner without a target, or null.
         */
        void deliver(ByteBuffer src, byte[] page) {
            if (target == null) {
                byte[] a = page != null ? page : new byte[PAGE_BYTES];
                src.get(a);
                complete(a);
            } else if (state.compareAndSet(WAITING, FILLING)) {
                try {
                    target.put(target.position(), src, src.position(), PAGE_BYTES);
                } finally {
                    state.set(DONE);
                    if (waiter != Thread.currentThread()) {
                        LockSupport.unpark(waiter);
                    }
                }
            }
        }

        private void complete(byte[] answer) {
            page = answer;
            if (state.compareAndSet(WAITING, DONE) && waiter != Thread.currentThread()) {
                LockSupport.unpark(waiter);
            }
        }

        /**
         * Gives up waiting; false if the answer arrived first (then it must be used). While the reader copies into
         * the target this waits for the copy (a memcpy of 8 KiB), so the target is never written after it returns.
         */
        boolean abandon() {
            for (int spins = 0; ; spins++) {
                if (state.compareAndSet(WAITING, ABANDONED)) {
                    return true;
                }
                int s = state.get();
                if (s == ABANDONED) {
                    return true;
                }
                if (s == DONE) {
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
}
