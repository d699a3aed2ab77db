// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.ProtocolException;
import io.walredo.RedoCancelledException;
import io.walredo.RedoTimeoutException;
import io.walredo.SidecarCrashedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoException;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.ExitStatus;
import io.walredo.nativeio.PipeTimeoutException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;

/**
 * One {@code postgres --wal-redo} child for one tenant shard and its pipes, with pipelined requests.
 *
 * <p><b>Ownership.</b> Created by {@link Supervisor} after a successful spawn; the supervisor's slot for
 * the tenant holds it while it is in rotation. Requests borrow it with {@link #tryRetain()} and give it
 * back with {@link #release()}; borrowers must not keep a reference. Only this class signals or reaps its
 * child (through {@link ChildProcess}, pidfd-based, so pid reuse is harmless). {@link #kill} is
 * idempotent and never blocks; {@link #terminated()} completes once the child has been reaped and is no longer counted as live.
 *
 * <p><b>Life.</b> ACTIVE (in rotation) → RETIRED (out of rotation: poisoned by a timeout, idle-reserved,
 * detached; in-flight requests may still finish; killed when the last borrower lets go) → KILLED. A
 * broken stream (crash, garbage, a half-written request) skips straight to KILLED and fails every
 * waiter at once.
 *
 * <p><b>Pipelining.</b> Requests are written whole under {@code writeLock}, and each writer appends its
 * {@link Pending} to {@code queue} under that same lock, so queue order is byte order on stdin and
 * therefore answer order on stdout. There is no reader thread: the waiter that wins {@code readerRole}
 * reads answers and hands each to the queue's head (unparking its owner) until its own has arrived,
 * then passes the role on by unparking the first live waiter. With one request in flight, the caller
 * reads its own answer: one wake-up per request. Every wait is bounded by the request's deadline; a
 * waiter never waits for another request's deadline.
 */
final class Sidecar {
    static final int PAGE_BYTES = ProtocolCodec.PAGE_BYTES;

    private static final int ACTIVE = 0;
    private static final int RETIRED = 1;
    private static final int KILLED = 2;
    private static final Duration CRASH_REPORT_WAIT = Duration.ofMillis(500);

    /** The reason a sidecar left rotation and the action for the last borrower. */
    interface Listener {
        /** Called once, on the killing thread, when this sidecar is killed; must not block. */
        void killed(Sidecar sidecar, KillCause cause);
    }

    private final SidecarKey key;
    private final ChildProcess child;
    private final int pid;
    private final Instant startedAt;
    private final LongSupplier nanoClock;
    private final StderrDrainer stderr;
    private final Listener listener;

    /** High 32 bits: state; low 32 bits: borrowers. One CAS decides retain versus retire races. */
    private final AtomicLong ctl = new AtomicLong();
    private final AtomicReference<KillCause> retireCause = new AtomicReference<>();
    private volatile long lastUsedNanos;
    private volatile long lastRedoEpochMillis;
    private volatile boolean served;

    private final ReentrantLock writeLock = new ReentrantLock();
    private final ReentrantLock queueLock = new ReentrantLock();
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private final AtomicBoolean readerRole = new AtomicBoolean();
    /** Only touched by the reader-role holder; its position survives hand-overs, so a slow answer never tears. */
    private final ByteBuffer answer = ByteBuffer.allocateDirect(PAGE_BYTES);
    private final AtomicReference<WalRedoException> failure = new AtomicReference<>();
    private final CompletableFuture<ExitStatus> terminated = new CompletableFuture<>();

    Sidecar(SidecarKey key, ChildProcess child, Instant startedAt, LongSupplier nanoClock, StderrDrainer stderr,
            Listener listener) {
        this.key = key;
        this.child = child;
        this.pid = child.pid();
        this.startedAt = startedAt;
        this.nanoClock = nanoClock;
        this.stderr = stderr;
        this.listener = listener;
        this.lastUsedNanos = nanoClock.getAsLong();
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
     * Completes with the exit status once the child has been reaped and the supervisor no longer counts it as
     * live ({@link #accounted}); so detach and shutdown, which wait on this, return with the live count already
     * lowered. Exceptionally if the reap failed.
     */
    CompletableFuture<ExitStatus> terminated() {
        return terminated;
    }

    /** Called by the supervisor once it has stopped counting this reaped sidecar as live; completes {@link #terminated()}. */
    void accounted(ExitStatus status, Throwable reapFailure) {
        if (reapFailure != null) {
            terminated.completeExceptionally(reapFailure);
        } else {
            terminated.complete(status);
        }
    }

    /** Whether it has answered at least one request: a sidecar that dies before that counts toward back-off. */
    boolean hasServed() {
        return served;
    }

    /**
     * Called (on a virtual thread) once the child has been reaped. A child that died while still in
     * rotation crashed on its own: record why, so waiting and future borrowers fail fast and the slot
     * respawns, and account for it as killed with cause ERROR.
     */
    void childExited(ExitStatus status) {
        if (state(ctl.get()) == KILLED) {
            return;
        }
        // Out of rotation at once, so the next request spawns afresh. A request in flight normally sees
        // EOF or EPIPE itself and reports the precise failure (a short answer is a protocol error, not a
        // crash); only if it has not within the grace period (a grandchild may hold the pipes open) is it
        // failed from here. With nobody using it, the failure is recorded at once: the back-off and the
        // next caller's error quote it.
        if (inFlight() > 0) {
            retire(KillCause.ERROR);
            LockSupport.parkNanos(CRASH_REPORT_WAIT.toNanos());
            if (state(ctl.get()) == KILLED) {
                return;
            }
        }
        List<String> tail = stderr.tailAfterEof(CRASH_REPORT_WAIT);
        fail(new SidecarCrashedException(tenant(), pid, status.toString(), tail, "walredo sidecar for tenant "
                + tenant() + " (pid " + pid + ") died with " + status + tailText(tail)
                + ". The next request respawns it", null), KillCause.ERROR);
    }

    /** Why it failed, for back-off bookkeeping: the recorded failure's message, if any. */
    String failureDescription() {
        WalRedoException f = failure.get();
        return f != null ? f.getMessage() : "sidecar pid " + pid + " failed before answering any request";
    }

    List<String> stderrTail() {
        return stderr.tail();
    }

    private static int state(long c) {
        return (int) (c >>> 32);
    }

    private static long ctl(int state, int count) {
        return ((long) state << 32) | (count & 0xffffffffL);
    }

    /** Borrows this sidecar for one request; false if it left rotation. */
    boolean tryRetain() {
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
        for (;;) {
            long c = ctl.get();
            if (state(c) != ACTIVE) {
                return;
            }
            retireCause.compareAndSet(null, cause);
            if (ctl.compareAndSet(c, ctl(RETIRED, (int) c))) {
                if ((int) c == 0) {
                    kill(retireCause.get());
                }
                return;
            }
        }
    }

    /**
     * SIGKILLs the child and closes its pipes, failing every waiting request with a cancellation (unless
     * a more specific failure was recorded first). Idempotent, never blocks; reaping completes
     * {@link #terminated()} a few milliseconds later.
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
        failure.compareAndSet(null, new RedoCancelledException(tenant(), pid,
                "walredo sidecar for tenant " + tenant() + " (pid " + pid + ") was killed: " + describe(cause)
                        + "; the request was cancelled", null));
        wakeAll();
        child.close();
        listener.killed(this, cause);
    }

    private static String describe(KillCause cause) {
        return switch (cause) {
            case QUIESCE -> "idle for longer than the idle timeout";
            case EVICT -> "evicted to make room under maxLiveSidecars";
            case ERROR -> "it failed";
            case TIMEOUT -> "a request to it timed out";
            case DETACH -> "its tenant was detached";
            case SHUTDOWN -> "the manager shut down";
        };
    }

    /**
     * Sends one encoded request (or ping) and returns its 8192-byte answer. The caller must hold a borrow
     * ({@link #tryRetain()}). {@code request} is read from its position to its limit and left unchanged.
     */
    byte[] apply(ByteBuffer request, Deadline deadline) throws WalRedoException {
        Pending p = new Pending(Thread.currentThread());
        write(p, request, deadline);
        byte[] page = awaitAnswer(p, deadline);
        lastRedoEpochMillis = System.currentTimeMillis();
        served = true;
        return page;
    }

    private void write(Pending p, ByteBuffer request, Deadline deadline) throws WalRedoException {
        try {
            if (!writeLock.tryLock(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS)) {
                retire(KillCause.TIMEOUT);
                throw timeout("waiting for earlier requests to be written to its stdin", null);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw cancelled("the calling thread was interrupted while waiting to write", e);
        }
        try {
            throwIfFailed();
            enqueue(p);
            ByteBuffer src = request.duplicate();
            int start = src.position();
            try {
                child.stdin().writeFully(src, deadline);
            } catch (IOException e) {
                boolean nothingWritten = src.position() == start;
                if (nothingWritten) {
                    dequeueTail(p);
                }
                WalRedoException f = failure.get();
                if (f != null) {
                    throw copy(f);
                }
                String progress = (src.position() - start) + " of " + (src.limit() - start) + " bytes written";
                if (e instanceof PipeTimeoutException) {
                    RedoTimeoutException t = timeout("writing the request to its stdin (" + progress
                            + "); it stopped reading", e);
                    if (nothingWritten) {
                        retire(KillCause.TIMEOUT);
                    } else {
                        // The stream is torn: everyone else is cancelled with that reason, not with our timeout.
                        fail(cancelled("another request's write to its stdin timed out half-way (" + progress
                                + "), so the sidecar was killed", e), KillCause.TIMEOUT);
                    }
                    throw t;
                }
                if (e instanceof InterruptedIOException) {
                    Thread.currentThread().interrupt();
                    RedoCancelledException c = cancelled("the calling thread was interrupted while writing ("
                            + progress + ")", e);
                    if (!nothingWritten) {
                        fail(cancelled("another request was interrupted half-way through writing (" + progress
                                + "), so the sidecar was killed", e), KillCause.ERROR);
                    }
                    throw c;
                }
                throw fail(crashed("writing to its stdin", e, 0, deadline), KillCause.ERROR);
            }
        } finally {
            writeLock.unlock();
        }
    }

    private byte[] awaitAnswer(Pending p, Deadline deadline) throws WalRedoException {
        for (;;) {
            if (p.isDone()) {
                return p.page;
            }
            WalRedoException f = failure.get();
            if (f != null) {
                if (!p.abandon()) {
                    return p.page;
                }
                throw copy(f);
            }
            if (readerRole.compareAndSet(false, true)) {
                try {
                    readUntilAnswered(p, deadline);
                } finally {
                    readerRole.set(false);
                    wakeNextReader();
                }
                continue;
            }
            long remaining = deadline.remainingNanos();
            if (remaining <= 0) {
                if (p.abandon()) {
                    wakeNextReader();
                    retire(KillCause.TIMEOUT);
                    throw timeout("waiting for its answer", null);
                }
                continue;
            }
            LockSupport.parkNanos(this, remaining);
            if (Thread.interrupted()) {
                if (p.abandon()) {
                    wakeNextReader();
                    Thread.currentThread().interrupt();
                    throw cancelled("the calling thread was interrupted while waiting for the answer", null);
                }
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Holds the reader role: reads answers, handing each to the queue's head, until {@code p} is answered. */
    private void readUntilAnswered(Pending p, Deadline deadline) throws WalRedoException {
        while (!p.isDone()) {
            WalRedoException f = failure.get();
            if (f != null) {
                p.abandon();
                throw copy(f);
            }
            try {
                while (answer.hasRemaining()) {
                    int n = child.stdout().read(answer, deadline);
                    if (n < 0) {
                        throw fail(endOfFile(deadline), KillCause.ERROR);
                    }
                }
            } catch (PipeTimeoutException e) {
                if (p.abandon()) {
                    retire(KillCause.TIMEOUT);
                    throw timeout("waiting for its answer (" + answer.position() + " of " + PAGE_BYTES
                            + " bytes arrived)", e);
                }
                continue;
            } catch (InterruptedIOException e) {
                if (p.abandon()) {
                    Thread.currentThread().interrupt();
                    throw cancelled("the calling thread was interrupted while reading the answer", e);
                }
                continue;
            } catch (IOException e) {
                WalRedoException known = failure.get();
                if (known != null) {
                    p.abandon();
                    throw copy(known);
                }
                throw fail(crashed("reading its stdout", e, answer.position(), deadline), KillCause.ERROR);
            }
            byte[] page = new byte[PAGE_BYTES];
            answer.flip();
            answer.get(page);
            answer.clear();
            Pending head;
            queueLock.lock();
            try {
                head = queue.pollFirst();
            } finally {
                queueLock.unlock();
            }
            if (head == null) {
                throw fail(new ProtocolException(tenant(), pid, "walredo sidecar for tenant " + tenant() + " (pid "
                        + pid + ") sent an answer nobody asked for; it was killed and the next request respawns it",
                        null), KillCause.ERROR);
            }
            head.complete(page);
        }
    }

    private WalRedoException endOfFile(Deadline deadline) {
        int got = answer.position();
        if (got > 0) {
            return protocolShort(got, deadline);
        }
        return crashed("reading its stdout", null, 0, deadline);
    }

    /** How long an error report may wait for the exit status and stderr: briefly, and never past the deadline. */
    private static Duration reportWait(Deadline deadline) {
        return Duration.ofNanos(Math.max(0, Math.min(CRASH_REPORT_WAIT.toNanos(), deadline.remainingNanos())));
    }

    private ProtocolException protocolShort(int got, Deadline deadline) {
        Duration wait = reportWait(deadline);
        String status = exitStatusWithin(wait).map(s -> "; it ended with " + s).orElse("");
        return new ProtocolException(tenant(), pid, "walredo sidecar for tenant " + tenant() + " (pid " + pid
                + ") answered " + got + " of " + PAGE_BYTES + " bytes and then closed its stdout" + status
                + tailText(stderr.tailAfterEof(wait))
                + ". It was killed; the next request respawns it", null);
    }

    private SidecarCrashedException crashed(String during, IOException cause, int partial, Deadline deadline) {
        Optional<ExitStatus> status = exitStatusWithin(reportWait(deadline));
        List<String> tail = stderr.tailAfterEof(status.isPresent() ? reportWait(deadline) : Duration.ZERO);
        String how = status.map(s -> "died with " + s).orElse("closed its pipes while alive");
        return new SidecarCrashedException(tenant(), pid, status.map(ExitStatus::toString).orElse(null), tail,
                "walredo sidecar for tenant " + tenant() + " (pid " + pid + ") " + how + " while " + during
                        + (partial > 0 ? " (" + partial + " of " + PAGE_BYTES + " answer bytes arrived)" : "")
                        + tailText(tail) + ". The next request respawns it"
                        + (cause != null ? " (" + cause.getMessage() + ")" : ""),
                cause);
    }

    private static String tailText(List<String> tail) {
        return tail.isEmpty() ? "; it wrote nothing to stderr" : "; last stderr: " + String.join(" | ", tail);
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

    /** Records {@code f} as this sidecar's failure (first wins), fails every waiter, kills it. Returns the recorded failure. */
    private WalRedoException fail(WalRedoException f, KillCause cause) {
        failure.compareAndSet(null, f);
        kill(cause);
        return copy(failure.get());
    }

    private void throwIfFailed() throws WalRedoException {
        WalRedoException f = failure.get();
        if (f != null) {
            throw copy(f);
        }
        if (state(ctl.get()) == KILLED) {
            throw cancelled("it was killed", null);
        }
    }

    /** Each caller gets its own exception object (with its own stack trace), keeping the shared cause. */
    private static WalRedoException copy(WalRedoException f) {
        WalRedoException c;
        if (f instanceof SidecarCrashedException s) {
            c = new SidecarCrashedException(s.tenant(), s.pid().orElse(0), s.exitStatus().orElse(null),
                    s.stderrTail(), s.getMessage(), s);
        } else if (f instanceof ProtocolException) {
            c = new ProtocolException(f.tenant(), f.pid().orElse(0), f.getMessage(), f);
        } else if (f instanceof RedoTimeoutException) {
            c = new RedoTimeoutException(f.tenant(), f.pid().orElse(0), f.getMessage(), f);
        } else if (f instanceof RedoCancelledException) {
            c = new RedoCancelledException(f.tenant(), f.pid().orElse(0), f.getMessage(), f);
        } else {
            c = new WalRedoException(f.tenant(), f.pid().orElse(0), f.getMessage(), f);
        }
        return c;
    }

    private RedoTimeoutException timeout(String what, Throwable cause) {
        return new RedoTimeoutException(tenant(), pid, "walredo request for tenant " + tenant() + " timed out "
                + what + " (sidecar pid " + pid + "); the sidecar was taken out of rotation and will be killed."
                + " If this repeats, check the sidecar's stderr and raise redoTimeout only if redo is legitimately slow",
                cause);
    }

    private RedoCancelledException cancelled(String why, Throwable cause) {
        return new RedoCancelledException(tenant(), pid, "walredo request for tenant " + tenant() + " (sidecar pid "
                + pid + ") was cancelled: " + why, cause);
    }

    private void enqueue(Pending p) {
        queueLock.lock();
        try {
            queue.addLast(p);
        } finally {
            queueLock.unlock();
        }
    }

    private void dequeueTail(Pending p) {
        queueLock.lock();
        try {
            if (queue.peekLast() == p) {
                queue.pollLast();
            }
        } finally {
            queueLock.unlock();
        }
    }

    /**
     * Unparks the first waiter still waiting, so that someone holds the reader role while answers are
     * owed. Called whenever the role is released or a waiter gives up.
     */
    private void wakeNextReader() {
        Thread next = null;
        queueLock.lock();
        try {
            for (Pending q : queue) {
                if (q.isWaiting()) {
                    next = q.waiter;
                    break;
                }
            }
        } finally {
            queueLock.unlock();
        }
        if (next != null) {
            LockSupport.unpark(next);
        }
    }

    private void wakeAll() {
        queueLock.lock();
        try {
            for (Pending q : queue) {
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

    /** One request's place in the answer queue. */
    private static final class Pending {
        private static final int WAITING = 0;
        private static final int DONE = 1;
        private static final int ABANDONED = 2;

        final Thread waiter;
        private final java.util.concurrent.atomic.AtomicInteger state = new java.util.concurrent.atomic.AtomicInteger();
        byte[] page;

        Pending(Thread waiter) {
            this.waiter = waiter;
        }

        boolean isDone() {
            return state.get() == DONE;
        }

        boolean isWaiting() {
            return state.get() == WAITING;
        }

        /** Delivers the answer; an abandoned request's answer is dropped. */
        void complete(byte[] answer) {
            page = answer;
            if (state.compareAndSet(WAITING, DONE) && waiter != Thread.currentThread()) {
                LockSupport.unpark(waiter);
            }
        }

        /** Gives up waiting; false if the answer arrived first (then it must be used). */
        boolean abandon() {
            return state.compareAndSet(WAITING, ABANDONED) || state.get() == ABANDONED;
        }
    }
}
