// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.AttemptType;
import io.walredo.CapacityExhaustedException;
import io.walredo.KillCause;
import io.walredo.ManagerClosedException;
import io.walredo.RedoCancelledException;
import io.walredo.RedoOutcome;
import io.walredo.RedoRequest;
import io.walredo.RedoResult;
import io.walredo.RedoTimeoutException;
import io.walredo.SidecarStatus;
import io.walredo.SpawnFailedException;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoMetrics;
import io.walredo.nativeio.Containment;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineAlarm;
import io.walredo.nativeio.NativeRuntime;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine behind {@link io.walredo.WalRedoManager}: one slot per tenant shard and PostgreSQL
 * version, lazy and coalesced spawning with back-off, retries, the live-sidecar cap, one housekeeper for
 * every tenant, detach and shutdown. Not part of the public API.
 *
 * <p>Threading: the request path takes no global lock. A request touches its slot's lock only on the
 * slow path (no usable sidecar), never across I/O. Spawns run on their own virtual thread (posix_spawn
 * itself on walredo-native's spawner threads), so a caller's deadline never cancels a spawn that other
 * callers share. The housekeeper is one platform thread for all tenants.
 */
public final class Supervisor {
    private static final Logger log = LoggerFactory.getLogger(Supervisor.class);
    private static final int POOLED_BUFFERS_PER_CLASS = 64;
    private static final long CAP_RESCAN_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
    /** Retries of a request that never reached its sidecar; they do not use up the AttemptType's retries. */
    static final int MAX_NOT_SENT_RETRIES = 3;
    /** Longest wait for a dead sidecar's exit processing (its crash report wait is 500 ms, its stderr tail 500 ms). */
    private static final long ACCOUNTING_WAIT_NANOS = TimeUnit.SECONDS.toNanos(2);

    private final WalRedoConfig config;
    private final LongSupplier nanoClock;
    private final NativeRuntime runtime;
    private final Metrics metrics;
    private final BufferPool buffers = new BufferPool(POOLED_BUFFERS_PER_CLASS);
    private final ConcurrentHashMap<SidecarKey, Slot> slots = new ConcurrentHashMap<>();
    /** Every sidecar spawned and not yet reaped, in rotation or not: what shutdown and detach must end. */
    private final java.util.Set<Sidecar> unreaped = ConcurrentHashMap.newKeySet();
    private final AtomicInteger live = new AtomicInteger();
    /** Spawns for tenants waiting for room under the cap: while any does, no spare takes a unit. */
    private final AtomicInteger roomWaiters = new AtomicInteger();
    private final ReentrantLock capLock = new ReentrantLock();
    private final Condition capFreed = capLock.newCondition();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final ScheduledThreadPoolExecutor housekeeper;
    private final Thread shutdownHook;
    private final SidecarLauncher launcher;
    private final SparePool spares;

    /**
     * Loads the native runtime (once per JVM) and starts the housekeeper.
     *
     * @param config validated configuration
     * @param nanoClock monotonic clock for idle tracking (tests inject one)
     */
    public Supervisor(WalRedoConfig config, LongSupplier nanoClock) {
        this.config = Objects.requireNonNull(config, "config");
        this.nanoClock = Objects.requireNonNull(nanoClock, "nanoClock");
        this.runtime = NativeRuntime.get();
        Containment containment = SidecarContainment.from(config);
        if (config.killOrphanedSidecars()) {
            OrphanReaper.killOrphans(config.binaries().values().stream().map(WalRedoConfig.RedoBinary::executable).toList(), runtime);
        }
        this.metrics = new Metrics(config.metricsListener(), live::get, nanoClock);
        this.launcher = new SidecarLauncher(config, runtime, containment, metrics, nanoClock, this::onKilled,
                new SidecarLauncher.Registry() {
                    @Override
                    public void born(Sidecar sc) {
                        unreaped.add(sc);
                    }

                    @Override
                    public void gone(Sidecar sc) {
                        if (sc != null) {
                            unreaped.remove(sc);
                        }
                        releaseCapacity();
                    }
                });
        this.spares = new SparePool(config, launcher, this::reserveForSpare, this::releaseCapacity, nanoClock,
                metrics);
        this.housekeeper = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "walredo-housekeeper");
            t.setDaemon(true);
            return t;
        });
        housekeeper.setRemoveOnCancelPolicy(true);
        long period = config.housekeepingPeriod().toNanos();
        housekeeper.scheduleWithFixedDelay(this::sweep, period, period, TimeUnit.NANOSECONDS);
        if (config.shutdownHook()) {
            shutdownHook = new Thread(() -> shutdown(config.killTimeout()), "walredo-shutdown-hook");
            Runtime.getRuntime().addShutdownHook(shutdownHook);
        } else {
            shutdownHook = null;
        }
        log.atInfo().addKeyValue("config", config).log("walredo manager created");
        spares.refill();
    }

    /** See {@link io.walredo.WalRedoManager#redo}. */
    public byte[] redo(TenantShardId tenant, RedoRequest request, AttemptType attempt, Duration timeout)
            throws WalRedoException {
        return redo(tenant, request, attempt, timeout, null);
    }

    /**
     * See {@link io.walredo.WalRedoManager#redo(TenantShardId, RedoRequest, AttemptType, Duration, ByteBuffer)}:
     * with a {@code target}, the page goes there (and its position moves past it) and null is returned.
     */
    public byte[] redo(TenantShardId tenant, RedoRequest request, AttemptType attempt, Duration timeout,
            ByteBuffer target) throws WalRedoException {
        Objects.requireNonNull(tenant, "tenant");
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(attempt, "attempt");
        if (target != null && (target.isReadOnly() || target.remaining() < ProtocolCodec.PAGE_BYTES)) {
            throw new IllegalArgumentException("the page buffer must be writable with at least "
                    + ProtocolCodec.PAGE_BYTES + " bytes remaining; it has " + target.remaining()
                    + (target.isReadOnly() ? " and is read-only" : ""));
        }
        Deadline deadline = deadlineFor(timeout);
        SidecarKey key = keyFor(tenant, request.pgVersion());
        long size = checkedSize(tenant, request);
        ensureOpen();
        long start = nanoClock.getAsLong();
        JfrEvents.RedoEvent event = new JfrEvents.RedoEvent();
        event.begin();
        CallStats call = new CallStats();
        ByteBuffer buf = buffers.acquire((int) size);
        boolean ok = false;
        Throwable thrown = null;
        // The reactor, not the JDK's timer, wakes this caller at its deadline wherever it is parked: under load the
        // timer's wake-ups are served seconds late (DeadlineAlarm). Every park below still re-checks the deadline.
        try (DeadlineAlarm alarm = runtime.armAlarm(deadline)) {
            ProtocolCodec.encodeRequest(request, buf);
            buf.flip();
            byte[] page = execute(key, buf, deadline, attempt.retries(), call, target);
            if (target != null) {
                target.position(target.position() + ProtocolCodec.PAGE_BYTES);
            }
            ok = true;
            return page;
        } catch (Throwable t) {
            thrown = t;
            throw t;
        } finally {
            buffers.release(buf);
            // thrown is null exactly when the call returned a page (ok).
            RedoOutcome outcome = RedoOutcome.of(thrown);
            metrics.redoFinished(new RedoResult(tenant, request.pgVersion(), attempt, outcome,
                    Optional.ofNullable(thrown).map(Throwable::getClass),
                    Duration.ofNanos(nanoClock.getAsLong() - start), request.recordCount(), (int) size, call.attempts));
            if (call.spawnWaitNanos > 0) {
                metrics.spawnWaited(tenant, call.spawnWaitNanos);
            }
            if (event.shouldCommit()) {
                event.tenant = tenant.toString();
                event.pgVersion = request.pgVersion();
                event.attemptType = attempt.name();
                event.records = request.recordCount();
                event.requestBytes = (int) size;
                event.attempts = call.attempts;
                event.spawnWait = call.spawnWaitNanos;
                event.succeeded = ok;
                event.outcome = outcome.name().toLowerCase(Locale.ROOT);
                event.commit();
            }
        }
    }

    /** See {@link io.walredo.WalRedoManager#ping}. */
    public void ping(TenantShardId tenant, int pgVersion, Duration timeout) throws WalRedoException {
        Objects.requireNonNull(tenant, "tenant");
        Deadline deadline = deadlineFor(timeout);
        SidecarKey key = keyFor(tenant, pgVersion);
        ensureOpen();
        ByteBuffer buf = buffers.acquire(ProtocolCodec.PING_BYTES);
        try (DeadlineAlarm alarm = runtime.armAlarm(deadline)) {
            ProtocolCodec.encodePing(buf);
            buf.flip();
            execute(key, buf, deadline, 0, new CallStats(), null);
        } finally {
            buffers.release(buf);
        }
    }

    /** See {@link io.walredo.WalRedoManager#prewarm}. */
    public void prewarm(TenantShardId tenant, int pgVersion, Duration timeout) throws WalRedoException {
        Objects.requireNonNull(tenant, "tenant");
        Deadline deadline = deadlineFor(timeout);
        SidecarKey key = keyFor(tenant, pgVersion);
        ensureOpen();
        try (DeadlineAlarm alarm = runtime.armAlarm(deadline)) {
            acquire(key, deadline, new CallStats()).release();
        }
    }

    private Deadline deadlineFor(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
        return Deadline.after(timeout);
    }

    /**
     * Checks what {@link #redo} checks before anything is spawned or written, for callers that hand the
     * redo to another thread: a binary for the request's version, the size limit, and an open manager.
     */
    public void checkRedoArguments(TenantShardId tenant, RedoRequest request) {
        Objects.requireNonNull(tenant, "tenant");
        keyFor(tenant, Objects.requireNonNull(request, "request").pgVersion());
        checkedSize(tenant, request);
        ensureOpen();
    }

    /** The request's encoded size, checked against {@link WalRedoConfig#maxRequestBytes()}. */
    private long checkedSize(TenantShardId tenant, RedoRequest request) {
        long size = ProtocolCodec.encodedSize(request);
        if (size > config.maxRequestBytes()) {
            throw new IllegalArgumentException("redo request for tenant " + tenant + " encodes to " + size
                    + " bytes, above maxRequestBytes " + config.maxRequestBytes() + "; split it or raise the limit");
        }
        return size;
    }

    private SidecarKey keyFor(TenantShardId tenant, int pgVersion) {
        if (!config.binaries().containsKey(pgVersion)) {
            throw new IllegalArgumentException("no redo binary is configured for PostgreSQL " + pgVersion
                    + " (tenant " + tenant + "); configured versions: " + config.binaries().keySet());
        }
        return new SidecarKey(tenant, pgVersion);
    }

    private void ensureOpen() {
        if (closed.get()) {
            throw new ManagerClosedException("the WalRedoManager has been shut down; create a new one");
        }
    }

    /**
     * Runs one request, retrying on a fresh sidecar as its attempt type allows. A request none of which reached
     * the sidecar (it had failed already, or broke the protocol while idle) is retried without using up a retry,
     * at most {@link #MAX_NOT_SENT_RETRIES} times; a caller's own deadline or interrupt is never retried.
     */
    private byte[] execute(SidecarKey key, ByteBuffer request, Deadline deadline, int retries, CallStats call,
            ByteBuffer target) throws WalRedoException {
        int retried = 0;
        int notSent = 0;
        for (;;) {
            call.attempts++;
            Sidecar sc = acquire(key, deadline, call);
            try {
                sc.admit(deadline, config.maxQueuedPerTenant());
                byte[] page = sc.apply(request, deadline, target);
                Slot slot = slots.get(key);
                if (slot != null) {
                    slot.recordSuccess();
                }
                return page;
            } catch (AttemptFailure f) {
                if (f.error() instanceof TenantOverloadedException o) {
                    metrics.refused(key.tenant(), sc.pid(), o.reason());
                    log.atDebug().addKeyValue("tenant", key.tenant()).addKeyValue("pid", sc.pid())
                            .addKeyValue("reason", o.reason()).addKeyValue("queued", o.queued())
                            .addKeyValue("expectedWaitMs", o.expectedWait().toMillis())
                            .log("redo refused: sidecar overloaded");
                }
                boolean again = switch (f.retry()) {
                    case NEVER -> false;
                    case PER_ATTEMPT_TYPE -> retried < retries;
                    case NOT_SENT -> notSent < MAX_NOT_SENT_RETRIES;
                };
                if (!again || deadline.isExpired() || closed.get()) {
                    throw f.error();
                }
                if (f.retry() == AttemptFailure.Retry.NOT_SENT) {
                    notSent++;
                } else {
                    retried++;
                }
                metrics.retried();
                log.atDebug().addKeyValue("tenant", key.tenant()).addKeyValue("pid", sc.pid())
                        .addKeyValue("attempt", call.attempts).addKeyValue("reason", f.retry())
                        .log("retrying redo on a fresh sidecar");
            } finally {
                sc.release();
            }
        }
    }

    private Slot slot(SidecarKey key) {
        Slot s = slots.get(key);
        return s != null ? s : slots.computeIfAbsent(key, Slot::new);
    }

    /** A borrowed sidecar for {@code key}: the live one, or one spawned (once, for every concurrent caller). */
    private Sidecar acquire(SidecarKey key, Deadline deadline, CallStats call) throws WalRedoException {
        for (;;) {
            Slot slot = slot(key);
            Sidecar sc = slot.current.get();
            if (sc != null && sc.tryRetain()) {
                return sc;
            }
            if (sc != null && sc.diedUnaccounted()) {
                awaitAccounted(sc, deadline);
            }
            CompletableFuture<Sidecar> spawning;
            long backoffNanos = 0;
            slot.lock.lock();
            try {
                if (slot.closedBy == null && closed.get()) {
                    slot.closedBy = KillCause.SHUTDOWN;
                }
                if (slot.closedBy != null) {
                    throw new RedoCancelledException(key.tenant(), 0, "walredo request for tenant " + key.tenant()
                            + " was cancelled: " + (slot.closedBy == KillCause.DETACH
                                    ? "the tenant is being detached" : "the manager is shutting down"), null);
                }
                sc = slot.current.get();
                if (sc != null && sc.tryRetain()) {
                    return sc;
                }
                if (sc != null) {
                    slot.current.compareAndSet(sc, null);
                }
                if (slot.spawning == null) {
                    backoffNanos = slot.failures == 0 ? 0 : slot.nextSpawnNanos - nanoClock.getAsLong();
                    if (backoffNanos <= 0) {
                        Sidecar spare = spares.take(key.pgVersion());
                        if (spare != null) {
                            return handOver(spare, slot);
                        }
                        if (spares.enabled()) {
                            metrics.spareMissed();
                        }
                        CompletableFuture<Sidecar> started = new CompletableFuture<>();
                        slot.spawning = started;
                        try {
                            startSpawn(slot, started, deadline);
                        } catch (Throwable t) {
                            // No spawn thread (out of memory or threads): nobody else would ever clear the slot.
                            slot.spawning = null;
                            started.completeExceptionally(t);
                            throw t;
                        }
                    } else if (backoffNanos >= deadline.remainingNanos()) {
                        throw new SpawnFailedException(key.tenant(), "not respawning the walredo sidecar for tenant "
                                + key.tenant() + " yet: " + slot.failures + " consecutive failures, backing off for "
                                + TimeUnit.NANOSECONDS.toMillis(backoffNanos) + " ms, longer than the request's"
                                + " remaining time; last failure: " + slot.lastFailure, null);
                    }
                }
                spawning = slot.spawning;
            } finally {
                slot.lock.unlock();
            }
            long waitStart = nanoClock.getAsLong();
            try {
                if (spawning == null) {
                    waitOutBackoff(key, backoffNanos);
                    continue;
                }
                awaitSpawn(slot, spawning, deadline);
            } finally {
                call.spawnWaitNanos += nanoClock.getAsLong() - waitStart;
            }
        }
    }

    /**
     * Makes a spare (retained for this caller) {@code slot}'s sidecar. Runs under the slot's lock, so no other caller
     * and no close of the slot comes between the hand-over and the slot holding it. If anything fails (an
     * {@code Error}), the spare is killed and let go: a half-assigned sidecar serves no one.
     */
    private Sidecar handOver(Sidecar spare, Slot slot) {
        try {
            spare.assign(slot.key);
            slot.current.set(spare);
            metrics.spareAssigned(slot.key, spare.pid());
            log.atInfo().addKeyValue("tenant", slot.key.tenant()).addKeyValue("pid", spare.pid())
                    .addKeyValue("pgVersion", slot.key.pgVersion()).log("walredo warm spare handed over");
            return spare;
        } catch (Throwable t) {
            slot.current.compareAndSet(spare, null);
            spare.kill(KillCause.ERROR);
            spare.release();
            throw t;
        }
    }

    private static void waitOutBackoff(SidecarKey key, long backoffNanos) throws RedoCancelledException {
        LockSupport.parkNanos(backoffNanos);
        if (Thread.interrupted()) {
            Thread.currentThread().interrupt();
            throw new RedoCancelledException(key.tenant(), 0, "walredo request for tenant " + key.tenant()
                    + " was cancelled: the calling thread was interrupted while waiting out the spawn back-off", null);
        }
    }

    /** What one call went through, for its metrics and JFR event. */
    private static final class CallStats {
        int attempts;
        /** Time spent waiting for a spawn (or its back-off), over every attempt. */
        long spawnWaitNanos;
    }

    /**
     * Waits (at most {@link #ACCOUNTING_WAIT_NANOS}, within the deadline) until a sidecar that died before answering
     * anything has been accounted for, so that its death counts toward back-off before this caller decides whether
     * to spawn. Without the wait, a binary that dies at once was spawned again by the very request that found it
     * dead, before its exit was processed.
     */
    private void awaitAccounted(Sidecar sc, Deadline deadline) throws RedoCancelledException {
        try {
            sc.accounted().get(Math.max(0, Math.min(deadline.remainingNanos(), ACCOUNTING_WAIT_NANOS)),
                    TimeUnit.NANOSECONDS);
        } catch (TimeoutException | ExecutionException e) {
            // Proceed: the deadline or the bound passed first; back-off may then start one spawn later.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RedoCancelledException(sc.tenant(), sc.pid(), "walredo request for tenant " + sc.tenant()
                    + " was cancelled: the calling thread was interrupted while its dead sidecar (pid " + sc.pid()
                    + ") was being accounted for", e);
        }
    }

    private void awaitSpawn(Slot slot, CompletableFuture<Sidecar> spawning, Deadline deadline)
            throws WalRedoException {
        SidecarKey key = slot.key;
        try {
            spawning.get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            if (slot.waitingForRoom) {
                throw capacityExhausted(key, e);
            }
            throw new RedoTimeoutException(key.tenant(), 0, "walredo request for tenant " + key.tenant()
                    + " timed out waiting for its sidecar to start; the spawn goes on for later requests", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RedoCancelledException(key.tenant(), 0, "walredo request for tenant " + key.tenant()
                    + " was cancelled: the calling thread was interrupted while waiting for its sidecar to start"
                    + " (the spawn goes on for later requests)", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof SpawnFailedException s) {
                throw new SpawnFailedException(key.tenant(), s.getMessage(), s);
            }
            if (c instanceof RedoCancelledException r) {
                throw new RedoCancelledException(key.tenant(), 0, r.getMessage(), r);
            }
            if (c instanceof CapacityExhaustedException x) {
                throw new CapacityExhaustedException(key.tenant(), x.getMessage(), x);
            }
            if (c instanceof RedoTimeoutException t) {
                throw new RedoTimeoutException(key.tenant(), 0, t.getMessage(), t);
            }
            throw new SpawnFailedException(key.tenant(), "spawning the walredo sidecar for tenant " + key.tenant()
                    + " failed: " + c, c);
        }
    }

    private void startSpawn(Slot slot, CompletableFuture<Sidecar> result, Deadline firstCallerDeadline) {
        // The spawn is shared: waiting for room under the cap must not end at the first caller's deadline
        // (each caller stops waiting at its own), so it is bounded by the longest a default request waits.
        Deadline requesterDeadline = firstCallerDeadline.remainingNanos() > config.redoTimeout().toNanos()
                ? firstCallerDeadline : Deadline.after(config.redoTimeout());
        Thread.ofVirtual().name("walredo-spawn-" + slot.key.tenant()).start(() -> {
            Sidecar sc = null;
            Throwable error = null;
            try {
                sc = spawnSidecar(slot, requesterDeadline);
            } catch (Throwable t) {
                error = t;
            }
            KillCause closedBy;
            slot.lock.lock();
            try {
                slot.spawning = null;
                if (slot.closedBy == null && closed.get()) {
                    slot.closedBy = KillCause.SHUTDOWN;
                }
                closedBy = slot.closedBy;
                if (sc != null && closedBy == null) {
                    slot.current.set(sc);
                } else if (sc == null && !(error instanceof RedoCancelledException)
                        && !(error instanceof CapacityExhaustedException)) {
                    // Only a real spawn failure backs off; finding no room under the cap is not one.
                    slot.recordFailure(String.valueOf(error instanceof WalRedoException w ? w.getMessage() : error),
                            nanoClock.getAsLong(), config);
                }
            } finally {
                slot.lock.unlock();
            }
            if (sc != null && closedBy != null) {
                sc.kill(closedBy);
                error = new RedoCancelledException(slot.key.tenant(), sc.pid(), "walredo request for tenant "
                        + slot.key.tenant() + " was cancelled: " + (closedBy == KillCause.DETACH
                                ? "the tenant was detached" : "the manager shut down") + " while its sidecar started",
                        null);
            }
            if (error == null) {
                result.complete(sc);
            } else {
                if (!(error instanceof RedoCancelledException)) {
                    metrics.spawnFailed(slot.key.tenant());
                }
                result.completeExceptionally(error);
            }
        });
    }

    private Sidecar spawnSidecar(Slot slot, Deadline requesterDeadline) throws WalRedoException {
        slot.waitingForRoom = true;
        try {
            reserveCapacity(slot, requesterDeadline);
        } finally {
            slot.waitingForRoom = false;
        }
        // Checked under the slot's lock, which detach and shutdown take to close it: once they have, nothing is
        // spawned for it, and the unit just reserved goes back.
        slot.lock.lock();
        try {
            if (slot.closedBy != null || closed.get()) {
                releaseCapacity();
                throw closedWhileStarting(slot);
            }
        } finally {
            slot.lock.unlock();
        }
        return launcher.launch(slot.key);
    }

    /** Called once per sidecar, on the killing thread: bookkeeping only, never blocks. */
    private void onKilled(Sidecar sc, KillCause cause) {
        Slot slot = sc.key().isSpare() ? null : slots.get(sc.key());
        if (sc.key().isSpare()) {
            spares.killed(sc);
            if (cause != KillCause.SHUTDOWN) {
                spares.refill();
            }
        } else if (slot != null) {
            slot.current.compareAndSet(sc, null);
            if (sc.failedBeforeServing()) {
                slot.lock.lock();
                try {
                    slot.recordFailure(sc.failureDescription(), nanoClock.getAsLong(), config);
                } finally {
                    slot.lock.unlock();
                }
            }
        }
        metrics.sidecarKilled(sc.tenant(), sc.pid(), cause);
        log.atInfo().addKeyValue("tenant", JfrEvents.name(sc.tenant())).addKeyValue("pid", sc.pid())
                .addKeyValue("cause", cause).log("walredo sidecar killed");
    }

    private RedoCancelledException closedWhileStarting(Slot slot) {
        return new RedoCancelledException(slot.key.tenant(), 0, "walredo request for tenant " + slot.key.tenant()
                + " was cancelled: " + (slot.closedBy == KillCause.DETACH ? "the tenant was detached"
                        : "the manager shut down") + " before its sidecar started", null);
    }

    /**
     * Takes one unit of the live-sidecar cap, evicting the least recently used idle sidecar if needed. Gives up
     * as soon as the slot is closed (detach, shutdown), so a closed tenant never evicts anyone.
     */
    private void reserveCapacity(Slot slot, Deadline deadline) throws WalRedoException {
        roomWaiters.incrementAndGet();
        try {
            reserveCapacityWaiting(slot, deadline);
        } finally {
            roomWaiters.decrementAndGet();
        }
    }

    private void reserveCapacityWaiting(Slot slot, Deadline deadline) throws WalRedoException {
        SidecarKey key = slot.key;
        int max = config.maxLiveSidecars();
        for (;;) {
            if (slot.closedBy != null || closed.get()) {
                throw closedWhileStarting(slot);
            }
            int n = live.get();
            if (n < max) {
                if (live.compareAndSet(n, n + 1)) {
                    return;
                }
                continue;
            }
            boolean evicted = evictLeastRecentlyUsedIdle();
            long remaining = deadline.remainingNanos();
            if (remaining <= 0) {
                throw capacityExhausted(key, null);
            }
            capLock.lock();
            try {
                if (live.get() >= max) {
                    capFreed.awaitNanos(evicted ? remaining : Math.min(remaining, CAP_RESCAN_NANOS));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RedoCancelledException(key.tenant(), 0, "walredo spawn for tenant " + key.tenant()
                        + " was cancelled: interrupted while waiting for room under maxLiveSidecars", e);
            } finally {
                capLock.unlock();
            }
        }
    }

    /** A unit of the cap for a warm spare: only if there is room now and no tenant's spawn is waiting for some. */
    private boolean reserveForSpare() {
        for (;;) {
            int n = live.get();
            if (n >= config.maxLiveSidecars() || roomWaiters.get() > 0 || closed.get()) {
                return false;
            }
            if (live.compareAndSet(n, n + 1)) {
                return true;
            }
        }
    }

    private CapacityExhaustedException capacityExhausted(SidecarKey key, Throwable cause) {
        return new CapacityExhaustedException(key.tenant(), "no room for a walredo sidecar for tenant " + key.tenant()
                + ": maxLiveSidecars (" + config.maxLiveSidecars() + ") sidecars are alive and none was idle before"
                + " the request's deadline; raise maxLiveSidecars or lower the load", cause);
    }

    private void releaseCapacity() {
        live.decrementAndGet();
        signalCapacity();
    }

    private void signalCapacity() {
        if (config.maxLiveSidecars() != Integer.MAX_VALUE) {
            capLock.lock();
            try {
                capFreed.signalAll();
            } finally {
                capLock.unlock();
            }
        }
    }

    /** Makes room under the cap: a warm spare first (it serves nobody yet), else the least recently used idle sidecar. */
    private boolean evictLeastRecentlyUsedIdle() {
        if (spares.evictOne()) {
            return true;
        }
        for (int tries = 0; tries < 3; tries++) {
            Sidecar lru = null;
            Slot lruSlot = null;
            for (Slot slot : slots.values()) {
                Sidecar sc = slot.current.get();
                if (sc != null && sc.isActive() && sc.inFlight() == 0
                        && (lru == null || sc.lastUsedNanos() - lru.lastUsedNanos() < 0)) {
                    lru = sc;
                    lruSlot = slot;
                }
            }
            if (lru == null) {
                return false;
            }
            if (lru.tryReserveIdle()) {
                lruSlot.current.compareAndSet(lru, null);
                lru.kill(KillCause.EVICT);
                return true;
            }
        }
        return false;
    }

    /**
     * One housekeeping pass: kills every sidecar that wrote to stdout while nothing was owed, and quiesces every
     * sidecar idle for at least the idle timeout. Never throws.
     */
    public void sweep() {
        try {
            long now = nanoClock.getAsLong();
            long idle = config.idleTimeout().toNanos();
            for (Slot slot : slots.values()) {
                Sidecar sc = slot.current.get();
                if (sc == null) {
                    continue;
                }
                sc.killIfSpokeUnasked();
                if (sc.inFlight() == 0 && now - sc.lastUsedNanos() >= idle && sc.tryReserveIdle()) {
                    slot.current.compareAndSet(sc, null);
                    sc.kill(KillCause.QUIESCE);
                }
            }
            spares.sweep();
        } catch (Throwable t) {
            log.error("walredo housekeeper sweep failed; the next sweep runs as scheduled", t);
        }
    }

    /** See {@link io.walredo.WalRedoManager#detach}. */
    public void detach(TenantShardId tenant, Duration timeout) {
        Objects.requireNonNull(tenant, "tenant");
        Deadline deadline = deadlineFor(timeout);
        List<Slot> mine = new ArrayList<>();
        for (Slot slot : slots.values()) {
            if (slot.key.tenant().equals(tenant)) {
                mine.add(slot);
            }
        }
        drain(mine, KillCause.DETACH, deadline);
    }

    /** Closes the slots to new work, lets in-flight requests finish until the deadline, then kills and reaps. */
    private void drain(List<Slot> list, KillCause cause, Deadline deadline) {
        List<CompletableFuture<Sidecar>> spawns = new ArrayList<>();
        List<Sidecar> sidecars = new ArrayList<>();
        for (Slot slot : list) {
            slot.lock.lock();
            try {
                if (slot.closedBy == null) {
                    slot.closedBy = cause;
                }
                if (slot.spawning != null) {
                    spawns.add(slot.spawning);
                }
            } finally {
                slot.lock.unlock();
            }
            slot.current.set(null);
        }
        // A spawn waiting for room under the cap sees its slot closed at once instead of at its next rescan.
        signalCapacity();
        for (CompletableFuture<Sidecar> f : spawns) {
            try {
                f.get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
            } catch (ExecutionException | TimeoutException e) {
                // A failed spawn left nothing behind; a slow one kills its own sidecar when it sees the slot closed.
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        // After the spawns settled: a spawn that finished into a closed slot killed its own sidecar, but it
        // is still awaited here like every other sidecar of these tenants, in rotation or not.
        java.util.Set<SidecarKey> keys = new java.util.HashSet<>();
        list.forEach(slot -> keys.add(slot.key));
        for (Sidecar sc : unreaped) {
            if (cause == KillCause.SHUTDOWN || keys.contains(sc.key())) {
                sidecars.add(sc);
                sc.retire(cause);
            }
        }
        for (Sidecar sc : sidecars) {
            awaitTerminated(sc, deadline);
        }
        Deadline killDeadline = Deadline.after(config.killTimeout());
        for (Sidecar sc : sidecars) {
            if (!sc.terminated().isDone()) {
                sc.kill(cause);
            }
        }
        for (Sidecar sc : sidecars) {
            if (!awaitTerminated(sc, killDeadline)) {
                log.atError().addKeyValue("tenant", sc.tenant()).addKeyValue("pid", sc.pid())
                        .addKeyValue("killTimeout", config.killTimeout())
                        .log("walredo sidecar was not reaped after SIGKILL within killTimeout (uninterruptible sleep?)");
            }
        }
        // Only now may a request for these tenants start afresh (after a detach).
        for (Slot slot : list) {
            slots.remove(slot.key, slot);
        }
    }

    private static boolean awaitTerminated(Sidecar sc, Deadline deadline) {
        try {
            sc.terminated().get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
            return true;
        } catch (TimeoutException | ExecutionException e) {
            return sc.terminated().isDone();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** See {@link io.walredo.WalRedoManager#shutdown}. Idempotent; later calls wait for the same end state. */
    public void shutdown(Duration timeout) {
        Deadline deadline = deadlineFor(timeout);
        boolean first = closed.compareAndSet(false, true);
        if (first) {
            housekeeper.shutdownNow();
            if (shutdownHook != null && Thread.currentThread() != shutdownHook) {
                try {
                    Runtime.getRuntime().removeShutdownHook(shutdownHook);
                } catch (IllegalStateException jvmAlreadyShuttingDown) {
                    // The hook is running or about to; it will find the manager closed.
                }
            }
        }
        // Spares first: no refill from now on, and every spare spawn in progress has ended (killing its spare)
        // before drain waits for the reap of every sidecar not yet reaped, spares included.
        for (CompletableFuture<Void> f : spares.close()) {
            try {
                f.get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
            } catch (ExecutionException | TimeoutException e) {
                // A spawn that has not ended by the deadline kills its spare when it does.
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        drain(new ArrayList<>(slots.values()), KillCause.SHUTDOWN, deadline);
        if (first) {
            log.atInfo().addKeyValue("liveSidecars", live.get()).log("walredo manager shut down");
        }
    }

    /**
     * See {@link io.walredo.WalRedoManager#status}. Reads each listed sidecar's memory from /proc on the calling
     * thread (tens of µs each; see {@link ProcMemory}).
     */
    public List<SidecarStatus> status() {
        List<SidecarStatus> out = new ArrayList<>();
        for (Slot slot : slots.values()) {
            Sidecar sc = slot.current.get();
            if (sc != null) {
                out.add(new SidecarStatus(sc.tenant(), sc.key().pgVersion(), sc.pid(), sc.startedAt(),
                        sc.lastRedoAt(), sc.inFlight(), memoryOf(sc)));
            }
        }
        return out;
    }

    /**
     * See {@link io.walredo.WalRedoManager#metrics}. Sums the memory of every sidecar not yet reaped, read from
     * /proc on the calling thread (tens of µs each; see {@link ProcMemory}).
     */
    public WalRedoMetrics metrics() {
        long rss = 0;
        long pss = 0;
        int measured = 0;
        for (Sidecar sc : unreaped) {
            Optional<SidecarStatus.Memory> m = memoryOf(sc);
            if (m.isPresent()) {
                rss += m.get().rssBytes();
                pss += m.get().pssBytes();
                measured++;
            }
        }
        return metrics.snapshot(new SidecarStatus.Memory(rss, pss), measured, spares.ready());
    }

    /**
     * The sidecar's memory now, or empty if it cannot be read. Only the reaper frees a child's pid for reuse, and
     * {@code terminated()} completes after the reap: a reading followed by a {@code terminated()} not yet done was
     * taken while the pid was still this child's (alive, or a zombie, whose smaps_rollup reads as ESRCH: empty).
     * The reap and the completion are milliseconds apart; a reading inside that gap is another process's only if
     * the kernel handed out every pid up to pid_max meanwhile.
     */
    private static Optional<SidecarStatus.Memory> memoryOf(Sidecar sc) {
        Optional<SidecarStatus.Memory> m = ProcMemory.read(sc.pid());
        return sc.terminated().isDone() ? Optional.empty() : m;
    }

    /** Whether shutdown has begun. */
    public boolean isClosed() {
        return closed.get();
    }

    /** Per tenant shard and version: the sidecar in rotation, the spawn in progress, back-off state. */
    private static final class Slot {
        final SidecarKey key;
        final AtomicReference<Sidecar> current = new AtomicReference<>();
        final ReentrantLock lock = new ReentrantLock();
        /** Guarded by lock. */
        CompletableFuture<Sidecar> spawning;
        /** Set while this slot's spawn waits for room under maxLiveSidecars, to name that in timeouts. */
        volatile boolean waitingForRoom;
        /** Written under lock (read without it by a spawn waiting for room); non-null once detached or shut down. */
        volatile KillCause closedBy;
        /** Written under lock; read without it on the success path (a stale read only delays the reset). */
        volatile int failures;
        /** Guarded by lock. */
        long nextSpawnNanos;
        /** Guarded by lock. */
        String lastFailure = "none";

        Slot(SidecarKey key) {
            this.key = key;
        }

        /** Caller holds lock. */
        void recordFailure(String what, long now, WalRedoConfig config) {
            failures++;
            lastFailure = what;
            nextSpawnNanos = now + Backoff.delayNanos(failures, config);
        }

        void recordSuccess() {
            if (failures != 0) {
                lock.lock();
                try {
                    failures = 0;
                } finally {
                    lock.unlock();
                }
            }
        }
    }
}
