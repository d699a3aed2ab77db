// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.RedoCancelledException;
import io.walredo.SpawnFailedException;
import io.walredo.TenantOverloadedException;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.nativeio.Deadline;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The request path: a slot per tenant shard and PostgreSQL version, borrowing its sidecar, admission, retries on a
 * fresh sidecar, and, when a slot has no live sidecar, the decision under the slot's lock between a warm spare's
 * hand-over, a spawn (run by {@link SlotSpawner}) and waiting out the back-off. Created by {@link Supervisor}, which
 * calls {@link #execute} and {@link #acquire} on the callers' threads.
 *
 * <p>Threading: no global lock. The fast path is a lock-free {@link Sidecar#tryRetain()} on the slot's current
 * sidecar; only when there is none does a caller take the slot's lock (never across I/O), where the first caller
 * starts a spawn on its own virtual thread and every concurrent caller waits on the same future. A caller's
 * deadline therefore never cancels a spawn that other callers share.
 */
final class TenantSlots {
    private static final Logger log = LoggerFactory.getLogger(TenantSlots.class);
    /** Retries of a request that never reached its sidecar; they do not use up the AttemptType's retries. */
    static final int MAX_NOT_SENT_RETRIES = 3;

    private final WalRedoConfig config;
    private final Map<SidecarKey, Slot> slots;
    private final SlotSpawner spawner;
    private final Housekeeper housekeeper;
    private final SparePool spares;
    private final Metrics metrics;
    private final LongSupplier nanoClock;
    private final AtomicBoolean managerClosed;
    private final DetachingTenants detaching;

    TenantSlots(
            WalRedoConfig config,
            Map<SidecarKey, Slot> slots,
            LiveCap cap,
            Housekeeper housekeeper,
            SidecarLauncher launcher,
            SparePool spares,
            Metrics metrics,
            LongSupplier nanoClock,
            AtomicBoolean managerClosed,
            DetachingTenants detaching) {
        this.config = config;
        this.slots = slots;
        this.spawner = new SlotSpawner(
                config, cap, housekeeper::evictLeastRecentlyUsedIdle, launcher, metrics, nanoClock, managerClosed);
        this.housekeeper = housekeeper;
        this.spares = spares;
        this.metrics = metrics;
        this.nanoClock = nanoClock;
        this.managerClosed = managerClosed;
        this.detaching = detaching;
    }

    /**
     * Runs one request, retrying on a fresh sidecar as its attempt type allows. A request none of which reached
     * the sidecar (it had failed already, or broke the protocol while idle) is retried without using up a retry,
     * at most {@link #MAX_NOT_SENT_RETRIES} times; a caller's own deadline or interrupt is never retried.
     */
    byte[] execute(
            SidecarKey key, ByteBuffer request, Deadline deadline, int retries, CallStats call, ByteBuffer target)
            throws WalRedoException {
        int retried = 0;
        int notSent = 0;
        for (; ; ) {
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
                    log.atDebug()
                            .addKeyValue("tenant", key.tenant())
                            .addKeyValue("pid", sc.pid())
                            .addKeyValue("reason", o.reason())
                            .addKeyValue("queued", o.queued())
                            .addKeyValue("expectedWaitMs", o.expectedWait().toMillis())
                            .log("redo refused: sidecar overloaded");
                }
                boolean again = switch (f.retry()) {
                    case NEVER -> false;
                    case PER_ATTEMPT_TYPE -> retried < retries;
                    case NOT_SENT -> notSent < MAX_NOT_SENT_RETRIES;
                };
                if (!again || deadline.isExpired() || managerClosed.get()) {
                    throw f.error();
                }
                if (f.retry() == AttemptFailure.Retry.NOT_SENT) {
                    notSent++;
                } else {
                    retried++;
                }
                metrics.retried();
                log.atDebug()
                        .addKeyValue("tenant", key.tenant())
                        .addKeyValue("pid", sc.pid())
                        .addKeyValue("attempt", call.attempts)
                        .addKeyValue("reason", f.retry())
                        .log("retrying redo on a fresh sidecar");
            } finally {
                sc.release();
                replaceTakenSpare(call);
            }
        }
    }

    /**
     * Makes {@code key}'s sidecar live without sending it anything ({@code prewarm}): the live one, a spare, or a
     * spawn, as for a request.
     */
    void makeLive(SidecarKey key, Deadline deadline) throws WalRedoException {
        CallStats call = new CallStats();
        try {
            acquire(key, deadline, call).release();
        } finally {
            replaceTakenSpare(call);
        }
    }

    /**
     * After an attempt (or a prewarm) that was handed a spare, or found none ready: the housekeeper's thread refills
     * the pool a little later ({@link SparePool#REFILL_AFTER_TAKE_NANOS}); this caller only queues that. Never throws.
     */
    private void replaceTakenSpare(CallStats call) {
        if (call.refillSpares) {
            call.refillSpares = false;
            housekeeper.runLater(spares::refill, SparePool.REFILL_AFTER_TAKE_NANOS);
        }
    }

    private Slot slot(SidecarKey key) {
        Slot s = slots.get(key);
        return s != null ? s : slots.computeIfAbsent(key, Slot::new);
    }

    /** A borrowed sidecar for {@code key}: the live one, or one spawned (once, for every concurrent caller). */
    Sidecar acquire(SidecarKey key, Deadline deadline, CallStats call) throws WalRedoException {
        for (; ; ) {
            Slot slot = slot(key);
            Sidecar sc = slot.current.get();
            if (sc != null && sc.tryRetain()) {
                return sc;
            }
            if (sc != null && sc.diedUnaccounted()) {
                spawner.awaitAccounted(sc, deadline);
            }
            CompletableFuture<Sidecar> spawning;
            long backoffNanos = 0;
            slot.lock.lock();
            try {
                if (slot.closedBy == null && managerClosed.get()) {
                    slot.closedBy = KillCause.SHUTDOWN;
                }
                if (slot.closedBy == null && detaching.contains(key.tenant())) {
                    // Created (or found) while the tenant is being detached, after detach looked for its slots:
                    // closed here, before anything is spawned for it, and taken out of the map, so a request after
                    // the detach starts afresh.
                    slot.closedBy = KillCause.DETACH;
                    slots.remove(key, slot);
                }
                if (slot.closedBy != null) {
                    throw new RedoCancelledException(
                            key.tenant(),
                            0,
                            "walredo request for tenant " + key.tenant()
                                    + " was cancelled: "
                                    + (slot.closedBy == KillCause.DETACH
                                            ? "the tenant is being detached"
                                            : "the manager is shutting down"),
                            null);
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
                            // Taken, or gone before the hand-over: either way the pool is refilled once the
                            // caller's attempt is over (replaceTakenSpare), so that neither a spawn's thread nor the
                            // refill competes with this very request for the CPUs or for its unit under the cap.
                            call.refillSpares = true;
                            Sidecar handed = handOver(spare, slot);
                            if (handed != null) {
                                return handed;
                            }
                        }
                        if (spares.enabled()) {
                            metrics.spareMissed();
                            // Refilled once this caller's attempt is over, after its spawn took its unit under the
                            // cap: a refill now could take the last one and make that spawn evict another tenant.
                            call.refillSpares = true;
                        }
                        CompletableFuture<Sidecar> started = new CompletableFuture<>();
                        slot.spawning = started;
                        try {
                            spawner.startSpawn(slot, started, deadline);
                        } catch (Throwable t) {
                            // No spawn thread (out of memory or threads): nobody else would ever clear the slot.
                            slot.spawning = null;
                            started.completeExceptionally(t);
                            throw t;
                        }
                    } else if (backoffNanos >= deadline.remainingNanos()) {
                        throw new SpawnFailedException(
                                key.tenant(),
                                "not respawning the walredo sidecar for tenant "
                                        + key.tenant() + " yet: " + slot.failures
                                        + " consecutive failures, backing off for "
                                        + TimeUnit.NANOSECONDS.toMillis(backoffNanos) + " ms, longer than the request's"
                                        + " remaining time; last failure: " + slot.lastFailure,
                                null);
                    }
                }
                spawning = slot.spawning;
            } finally {
                slot.lock.unlock();
            }
            long waitStart = nanoClock.getAsLong();
            try {
                if (spawning == null) {
                    SlotSpawner.waitOutBackoff(key, backoffNanos);
                    continue;
                }
                spawner.awaitSpawn(slot, spawning, deadline);
            } finally {
                call.spawnWaitNanos += nanoClock.getAsLong() - waitStart;
            }
        }
    }

    /**
     * Makes a spare (retained for this caller) {@code slot}'s sidecar. Runs under the slot's lock, so no other caller
     * and no close of the slot comes between the hand-over and the slot holding it. If anything fails (an
     * {@code Error}), the spare is killed and let go: a half-assigned sidecar serves no one. Null if the spare died
     * as a spare before it could be handed over (see {@link Sidecar#assign}).
     */
    private Sidecar handOver(Sidecar spare, Slot slot) {
        boolean assigned;
        try {
            assigned = spare.assign(slot.key);
        } catch (Throwable t) {
            spare.kill(KillCause.ERROR);
            spare.release();
            throw t;
        }
        if (!assigned) {
            // It died as a spare while being taken, and was booked as one: this caller spawns as if none was ready.
            spare.release();
            return null;
        }
        try {
            slot.current.set(spare);
            metrics.spareAssigned(slot.key, spare.pid());
            log.atInfo()
                    .addKeyValue("tenant", slot.key.tenant())
                    .addKeyValue("pid", spare.pid())
                    .addKeyValue("pgVersion", slot.key.pgVersion())
                    .log("walredo warm spare handed over");
            return spare;
        } catch (Throwable t) {
            slot.current.compareAndSet(spare, null);
            spare.kill(KillCause.ERROR);
            spare.release();
            throw t;
        }
    }

    /** What one call went through, for its metrics and JFR event. */
    static final class CallStats {
        int attempts;
        /** Time spent waiting for a spawn (or its back-off), over every attempt. */
        long spawnWaitNanos;
        /** Set when {@link #acquire} took a warm spare, or missed one, and the pool's refill is not queued yet. */
        boolean refillSpares;
    }
}
