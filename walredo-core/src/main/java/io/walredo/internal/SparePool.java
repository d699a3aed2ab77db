// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.BufferTag;
import io.walredo.KillCause;
import io.walredo.RedoTimeoutException;
import io.walredo.WalRedoConfig;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.internal.SidecarLife.Failure;
import io.walredo.nativeio.Deadline;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Warm spare sidecars ({@link WalRedoConfig#warmSpares()}), per PostgreSQL version: spawned in the background,
 * never fed any tenant's data, each handed to exactly one tenant.
 *
 * <p><b>One tenant per spare.</b> The only way into a shelf is a spawn by this pool; the only ways out are
 * {@link #take} and {@link #evictOne}, both a single {@code pollFirst} on a concurrent deque, so no spare is given
 * twice. A sidecar that served a tenant is never put back: quiesced, evicted or crashed, it is killed.
 *
 * <p><b>Bounded refill.</b> Per version, spares ready plus spawns in progress never exceed the target. A spawn
 * starts only while a unit of the live-sidecar cap can be had without waiting and no spawn for a tenant waits for
 * one ({@code reserveUnit}), so spares never take room a tenant needs; a spare that dies before it is handed over
 * counts toward the same exponential back-off as a tenant's failed spawns, so a broken binary is not respawned in
 * a loop. Refill runs after a take (on the housekeeper's thread, {@link #REFILL_AFTER_TAKE_NANOS} after the request
 * the spare was taken for is over, see {@code TenantSlots}), after a miss, after each death and on every
 * housekeeping sweep; it only starts virtual threads, so callers never
 * wait for it. A fresh spare answers a ping and {@link #WARM_UP_REQUESTS} blank page requests before it is shelved
 * ({@link Sidecar#warmUp}): none carries anyone's data.
 */
final class SparePool {
    private static final Logger log = LoggerFactory.getLogger(SparePool.class);
    /**
     * How long after the request a spare was taken for the housekeeper's thread starts the spare's replacement. Not
     * the taker: a spawn's thread started on the request path cost it a carrier wake-up and a timer, a few hundred
     * microseconds on a 2-core machine after a pause (an unpark of a platform thread costs about 20); and not at once:
     * the process start (milliseconds of CPU) would compete with the tenant's next requests.
     */
    static final long REFILL_AFTER_TAKE_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
    /**
     * Blank page requests a fresh spare answers before it is shelved, after its ping. The first request a process
     * serves costs it page faults (its redo path, the buffer it redoes into; on this project's 2-core VM about 170 µs
     * for the fake, measured from C) and costs the reader its answer-time history (the first answer is not
     * counted); served by the spare in the background, they are not paid by the tenant's first request.
     */
    static final int WARM_UP_REQUESTS = 3;
    /**
     * The page the warm-up requests name: pg_default, database and relation 1 (no catalog or user relation has
     * relfilenode 1), main fork, block 0. Nothing is applied to it and the tenant's first B forgets it.
     */
    static final BufferTag WARM_UP_TAG = BufferTag.of(1663, 1, 1, 0, 0);

    private final WalRedoConfig config;
    private final SidecarLauncher launcher;
    private final BooleanSupplier reserveUnit;
    private final Runnable releaseUnit;
    private final LongSupplier nanoClock;
    private final Metrics metrics;
    private final Map<Integer, Shelf> shelves = new TreeMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    /** Guarded by lock. */
    private boolean closed;
    /** Guarded by lock: the spawns in progress, for close to wait on. */
    private final List<CompletableFuture<Void>> starting = new ArrayList<>();

    /**
     * @param reserveUnit takes one unit of the live-sidecar cap if that needs no waiting and no tenant's spawn waits
     *     for room; the launcher gives it back if the spawn fails, the exit hook when the spare is reaped
     * @param releaseUnit gives back a unit reserved for a spawn that could not even start its thread
     */
    SparePool(
            WalRedoConfig config,
            SidecarLauncher launcher,
            BooleanSupplier reserveUnit,
            Runnable releaseUnit,
            LongSupplier nanoClock,
            Metrics metrics) {
        this.config = config;
        this.metrics = metrics;
        this.launcher = launcher;
        this.reserveUnit = reserveUnit;
        this.releaseUnit = releaseUnit;
        this.nanoClock = nanoClock;
        if (config.warmSpares() > 0) {
            for (int v : config.binaries().keySet()) {
                shelves.put(v, new Shelf(v));
            }
        }
    }

    /** Whether spares are configured at all. */
    boolean enabled() {
        return !shelves.isEmpty();
    }

    /**
     * A ready spare for {@code pgVersion}, already retained for the caller (who assigns it to its tenant before
     * sending anything), or null if none is ready. Starts no refill: after a take or a miss the caller queues one
     * for later (see {@link #REFILL_AFTER_TAKE_NANOS}), so a refill never takes the unit under the cap that the
     * caller's own spawn is about to reserve.
     */
    Sidecar take(int pgVersion) {
        Shelf shelf = shelves.get(pgVersion);
        if (shelf == null) {
            return null;
        }
        for (Sidecar sc; (sc = shelf.ready.pollFirst()) != null; ) {
            if (sc.tryRetain()) {
                shelf.recordSuccess();
                return sc;
            }
            // It died or spoke unasked: its own exit path kills and reaps it.
        }
        return null;
    }

    /**
     * Kills one ready spare (the oldest of the fullest shelf) to make room under the cap for a tenant's sidecar.
     * Returns it, or null if none was ready.
     */
    Sidecar evictOne() {
        for (; ; ) {
            Shelf fullest = null;
            for (Shelf s : shelves.values()) {
                if (!s.ready.isEmpty() && (fullest == null || s.ready.size() > fullest.ready.size())) {
                    fullest = s;
                }
            }
            if (fullest == null) {
                return null;
            }
            Sidecar sc = fullest.ready.pollFirst();
            // One that cannot be reserved died on its own (its unit is back already, or comes back with its reap):
            // nothing freed by this eviction, so look for another.
            if (sc != null && sc.tryReserveIdle()) {
                sc.kill(KillCause.EVICT);
                return sc;
            }
        }
    }

    /** Spares ready now, over every version. */
    int ready() {
        int n = 0;
        for (Shelf s : shelves.values()) {
            n += s.ready.size();
        }
        return n;
    }

    /**
     * Told when a sidecar that was still a spare was killed or found dead (never blocks): it leaves its shelf, and a
     * death of its own doing before it was handed over counts toward back-off.
     */
    void killed(Sidecar sc) {
        Shelf shelf = shelves.get(sc.key().pgVersion());
        if (shelf == null) {
            return;
        }
        shelf.ready.remove(sc);
        if (sc.failedBeforeServing()) {
            shelf.recordFailure(sc.failureDescription());
        }
    }

    /** One housekeeping pass: kills spares that wrote to stdout (nothing is owed by a spare, ever), then refills. */
    void sweep() {
        for (Shelf shelf : shelves.values()) {
            for (Sidecar sc : shelf.ready) {
                sc.killIfSpokeUnasked();
                if (!sc.isActive()) {
                    shelf.ready.remove(sc);
                }
            }
        }
        refill();
    }

    /**
     * Starts the spawns that bring each shelf back to its target, within the bounds in the class comment. Best
     * effort, and never throws: it runs inside other work (a take, a death's booking), which an {@code Error} here
     * (no memory or threads for a spawn's thread) must not break; the next sweep tries again.
     */
    void refill() {
        if (!enabled()) {
            return;
        }
        try {
            startSpawns();
        } catch (Throwable t) {
            try {
                log.atWarn().setCause(t).log("walredo warm spares could not be refilled now; the next sweep retries");
            } catch (Throwable ignored) {
                // Out of memory even for the log line: the sweep retries all the same.
            }
        }
    }

    private void startSpawns() {
        for (Shelf shelf : shelves.values()) {
            for (; ; ) {
                lock.lock();
                try {
                    if (closed
                            || shelf.ready.size() + shelf.spawning >= config.warmSpares()
                            || nanoClock.getAsLong() - shelf.nextSpawnNanos < 0
                            || !reserveUnit.getAsBoolean()) {
                        break;
                    }
                    shelf.spawning++;
                    CompletableFuture<Void> done = new CompletableFuture<>();
                    starting.add(done);
                    try {
                        Thread.ofVirtual()
                                .name("walredo-spare-pg" + shelf.pgVersion)
                                .start(() -> spawn(shelf, done));
                    } catch (Throwable t) {
                        // No thread: undo what this spawn took, or the shelf counts a spawn that never ends.
                        shelf.spawning--;
                        starting.remove(done);
                        releaseUnit.run();
                        throw t;
                    }
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    private void spawn(Shelf shelf, CompletableFuture<Void> done) {
        Sidecar sc = null;
        try {
            if (isClosed()) {
                releaseUnit.run();
            } else {
                Sidecar fresh = launcher.launch(SidecarKey.spare(shelf.pgVersion));
                try {
                    // Shelved only once its warm-up answered; a failed one was killed by its own failure.
                    if (warmUp(fresh)) {
                        sc = fresh;
                    }
                } catch (Throwable t) {
                    fresh.kill(KillCause.ERROR);
                    throw t;
                }
            }
        } catch (Throwable t) {
            metrics.spawnFailed(null);
            shelf.recordFailure(String.valueOf(t.getMessage()));
            log.atWarn()
                    .addKeyValue("pgVersion", shelf.pgVersion)
                    .setCause(t)
                    .log("walredo warm spare could not be spawned; backing off before the next one");
        } finally {
            boolean kill;
            lock.lock();
            try {
                shelf.spawning--;
                starting.remove(done);
                kill = closed;
                if (sc != null && !kill) {
                    shelf.ready.addLast(sc);
                }
            } finally {
                lock.unlock();
            }
            if (sc != null && kill) {
                sc.kill(KillCause.SHUTDOWN);
            }
            done.complete(null);
        }
    }

    private boolean isClosed() {
        lock.lock();
        try {
            return closed;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Warms a fresh spare up (see {@link Sidecar#warmUp}): one ping, then {@link #WARM_UP_REQUESTS} blank page
     * requests; false if it failed. Every failure kills it, booked as a spare's death toward back-off: a crash or
     * garbage kills it by its own failure, and one that does not answer within spawnTimeout is killed here (TIMEOUT),
     * or it would be dropped alive, in no shelf and no slot, holding its unit under the cap.
     */
    private boolean warmUp(Sidecar sc) {
        if (!sc.tryRetain()) {
            return false;
        }
        try {
            Deadline deadline = Deadline.after(config.spawnTimeout());
            sc.warmUp(Sidecar.PING, deadline);
            ByteBuffer blank = ByteBuffer.allocateDirect(ProtocolCodec.BLANK_PAGE_REQUEST_BYTES);
            ProtocolCodec.encodeBlankPageRequest(WARM_UP_TAG, blank);
            blank.flip();
            for (int i = 0; i < WARM_UP_REQUESTS; i++) {
                sc.warmUp(blank, deadline);
            }
            return true;
        } catch (AttemptFailure f) {
            // Idempotent: a sidecar that failed by itself keeps its own failure and cause.
            KillCause cause = f.error() instanceof RedoTimeoutException ? KillCause.TIMEOUT : KillCause.ERROR;
            sc.fail(new Failure(f.error(), Retry.NEVER, true), cause);
            return false;
        } finally {
            sc.release();
        }
    }

    /**
     * Stops refilling and kills every ready spare; returns the spawns still in progress (each kills its spare when it
     * ends), for shutdown to wait on before it waits for every sidecar's reap.
     */
    List<CompletableFuture<Void>> close() {
        List<CompletableFuture<Void>> inProgress;
        lock.lock();
        try {
            closed = true;
            inProgress = new ArrayList<>(starting);
        } finally {
            lock.unlock();
        }
        for (Shelf shelf : shelves.values()) {
            for (Sidecar sc; (sc = shelf.ready.pollFirst()) != null; ) {
                sc.retire(KillCause.SHUTDOWN);
            }
        }
        return inProgress;
    }

    /** One PostgreSQL version's spares. */
    private final class Shelf {
        final int pgVersion;
        final ConcurrentLinkedDeque<Sidecar> ready = new ConcurrentLinkedDeque<>();
        /** Guarded by the pool's lock. */
        int spawning;
        /** Guarded by the pool's lock. */
        int failures;
        /** Guarded by the pool's lock. */
        long nextSpawnNanos;

        Shelf(int pgVersion) {
            this.pgVersion = pgVersion;
            this.nextSpawnNanos = nanoClock.getAsLong();
        }

        void recordFailure(String what) {
            lock.lock();
            try {
                failures++;
                nextSpawnNanos = nanoClock.getAsLong() + Backoff.delayNanos(failures, config);
                log.atDebug()
                        .addKeyValue("pgVersion", pgVersion)
                        .addKeyValue("failures", failures)
                        .addKeyValue("lastFailure", what)
                        .log("walredo warm spare failed before it was handed over");
            } finally {
                lock.unlock();
            }
        }

        /** A spare was handed over alive: the binary works, back-off starts afresh. */
        void recordSuccess() {
            lock.lock();
            try {
                failures = 0;
            } finally {
                lock.unlock();
            }
        }
    }
}
