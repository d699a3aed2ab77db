// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.AttemptType;
import io.walredo.ManagerClosedException;
import io.walredo.RedoOutcome;
import io.walredo.RedoRequest;
import io.walredo.RedoResult;
import io.walredo.SidecarStatus;
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
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine behind {@link io.walredo.WalRedoManager}, and its only entry: checks a call's arguments, arms its
 * deadline alarm, encodes the request into a pooled buffer, and hands it to {@link TenantSlots}; builds and wires
 * the parts below and shuts them down in order. Not part of the public API.
 *
 * <ul>
 *   <li>{@link TenantSlots}: the request path (slots, borrowing, coalesced spawns, back-off, retries).
 *   <li>{@link LiveCap}: the live-sidecar cap. {@link Housekeeper}: quiesce and LRU eviction.
 *   <li>{@link SidecarLauncher} and {@link SparePool}: spawning, warm spares.
 *   <li>{@link SidecarDeaths}: the one place a sidecar's end is booked. {@link Drain}: detach and shutdown.
 *   <li>{@link SidecarStatuses}: status and metrics snapshots.
 * </ul>
 */
public final class Supervisor {
    private static final Logger log = LoggerFactory.getLogger(Supervisor.class);
    private static final int POOLED_BUFFERS_PER_CLASS = 64;

    private final WalRedoConfig config;
    private final LongSupplier nanoClock;
    private final NativeRuntime runtime;
    private final Metrics metrics;
    private final BufferPool buffers = new BufferPool(POOLED_BUFFERS_PER_CLASS);
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LiveCap cap;
    private final SparePool spares;
    private final Housekeeper housekeeper;
    private final TenantSlots slots;
    private final Drain drain;
    private final SidecarStatuses statuses;
    private final Thread shutdownHook;

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
            OrphanReaper.killOrphans(
                    config.binaries().values().stream()
                            .map(WalRedoConfig.RedoBinary::executable)
                            .toList(),
                    runtime);
        }
        ConcurrentHashMap<SidecarKey, Slot> slotMap = new ConcurrentHashMap<>();
        this.cap = new LiveCap(config.maxLiveSidecars(), closed);
        this.metrics = new Metrics(config.metricsListener(), cap::live, nanoClock);
        SidecarDeaths deaths = new SidecarDeaths(config, slotMap, cap, metrics, nanoClock);
        SidecarLauncher launcher = new SidecarLauncher(config, runtime, containment, metrics, nanoClock, deaths);
        this.spares = new SparePool(config, launcher, cap::tryReserveForSpare, cap::release, nanoClock, metrics);
        deaths.attach(spares);
        this.housekeeper = new Housekeeper(config, slotMap, spares, nanoClock);
        DetachingTenants detaching = new DetachingTenants();
        this.slots = new TenantSlots(
                config, slotMap, cap, housekeeper, launcher, spares, metrics, nanoClock, closed, detaching);
        this.drain = new Drain(config, slotMap, deaths, cap, detaching);
        this.statuses = new SidecarStatuses(slotMap, deaths, spares, metrics);
        housekeeper.start();
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
    public byte[] redo(
            TenantShardId tenant, RedoRequest request, AttemptType attempt, Duration timeout, ByteBuffer target)
            throws WalRedoException {
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
        TenantSlots.CallStats call = new TenantSlots.CallStats();
        ByteBuffer buf = buffers.acquire((int) size);
        boolean ok = false;
        Throwable thrown = null;
        DeadlineAlarm alarm = null;
        try {
            // The reactor, not the JDK's timer, wakes this caller at its deadline wherever it is parked: under load
            // the timer's wake-ups are served seconds late (DeadlineAlarm). Every park below re-checks the deadline.
            alarm = runtime.armAlarm(deadline);
            ProtocolCodec.encodeRequest(request, buf);
            buf.flip();
            byte[] page = slots.execute(key, buf, deadline, attempt.retries(), call, target);
            if (target != null) {
                target.position(target.position() + ProtocolCodec.PAGE_BYTES);
            }
            ok = true;
            return page;
        } catch (Throwable t) {
            thrown = t;
            throw t;
        } finally {
            closeAlarm(tenant, alarm, deadline);
            buffers.release(buf);
            // thrown is null exactly when the call returned a page (ok).
            RedoOutcome outcome = RedoOutcome.of(thrown);
            metrics.redoFinished(new RedoResult(
                    tenant,
                    request.pgVersion(),
                    attempt,
                    outcome,
                    Optional.ofNullable(thrown).map(Throwable::getClass),
                    Duration.ofNanos(nanoClock.getAsLong() - start),
                    request.recordCount(),
                    (int) size,
                    call.attempts));
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
        DeadlineAlarm alarm = null;
        try {
            alarm = runtime.armAlarm(deadline);
            ProtocolCodec.encodePing(buf);
            buf.flip();
            slots.execute(key, buf, deadline, 0, new TenantSlots.CallStats(), null);
        } finally {
            closeAlarm(tenant, alarm, deadline);
            buffers.release(buf);
        }
    }

    /** See {@link io.walredo.WalRedoManager#prewarm}. */
    public void prewarm(TenantShardId tenant, int pgVersion, Duration timeout) throws WalRedoException {
        Objects.requireNonNull(tenant, "tenant");
        Deadline deadline = deadlineFor(timeout);
        SidecarKey key = keyFor(tenant, pgVersion);
        ensureOpen();
        DeadlineAlarm alarm = runtime.armAlarm(deadline);
        try {
            slots.makeLive(key, deadline);
        } finally {
            closeAlarm(tenant, alarm, deadline);
        }
    }

    /**
     * Disarms a call's alarm (null: it was never armed) and, if the call's deadline passed while it was in the
     * library, records how late the library woke it: how long after the deadline the alarm fired, or, if the call
     * left before its alarm fired, how long after the deadline it left (the alarm, not fired by then, would have
     * been at least that late; counting only fired alarms would leave out exactly the latest ones).
     */
    private void closeAlarm(TenantShardId tenant, DeadlineAlarm alarm, Deadline deadline) {
        if (alarm == null) {
            return;
        }
        alarm.close();
        long late = alarm.lateNanos();
        if (late < 0) {
            late = -deadline.remainingNanos();
        }
        if (late >= 0) {
            metrics.deadlineWake(tenant, late);
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
            throw new IllegalArgumentException("no redo binary is configured for PostgreSQL " + pgVersion + " (tenant "
                    + tenant + "); configured versions: " + config.binaries().keySet());
        }
        return new SidecarKey(tenant, pgVersion);
    }

    private void ensureOpen() {
        if (closed.get()) {
            throw new ManagerClosedException("the WalRedoManager has been shut down; create a new one");
        }
    }

    /** One housekeeping pass now (see {@link Housekeeper#sweep}); never throws. */
    public void sweep() {
        housekeeper.sweep();
    }

    /** See {@link io.walredo.WalRedoManager#detach}. */
    public void detach(TenantShardId tenant, Duration timeout) {
        Objects.requireNonNull(tenant, "tenant");
        drain.detach(tenant, deadlineFor(timeout));
    }

    /** See {@link io.walredo.WalRedoManager#shutdown}. Idempotent; later calls wait for the same end state. */
    public void shutdown(Duration timeout) {
        Deadline deadline = deadlineFor(timeout);
        boolean first = closed.compareAndSet(false, true);
        if (first) {
            housekeeper.stop();
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
        // A spare spawn that has not ended by the deadline kills its spare when it does.
        Drain.awaitSettled(spares.close(), deadline);
        drain.shutdown(deadline);
        if (first) {
            log.atInfo().addKeyValue("liveSidecars", cap.live()).log("walredo manager shut down");
        }
    }

    /** See {@link io.walredo.WalRedoManager#status}; reads each sidecar's memory from /proc on the calling thread. */
    public List<SidecarStatus> status() {
        return statuses.status();
    }

    /** See {@link io.walredo.WalRedoManager#metrics}; reads each sidecar's memory from /proc on the calling thread. */
    public WalRedoMetrics metrics() {
        return statuses.metrics();
    }
}
