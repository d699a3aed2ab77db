// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.WalRedoConfig;
import java.util.Map;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one housekeeping thread for every tenant ({@code walredo-housekeeper}, a platform daemon thread), and the
 * least-recently-used eviction a spawn at the cap asks for. Created and stopped by {@link Supervisor}.
 *
 * <p>It never kills a sidecar it has not reserved: {@link Sidecar#tryReserveIdle()} succeeds only when nobody
 * borrows it, atomically with respect to a request's {@code tryRetain}, so a request in flight is never cut off.
 * It reads the injected clock, and a sweep catches everything so the next one still runs.
 */
final class Housekeeper {
    private static final Logger log = LoggerFactory.getLogger(Housekeeper.class);
    private static final int EVICTION_TRIES = 3;

    private final WalRedoConfig config;
    private final Map<SidecarKey, Slot> slots;
    private final SparePool spares;
    private final LongSupplier nanoClock;
    private final ScheduledThreadPoolExecutor thread;

    Housekeeper(WalRedoConfig config, Map<SidecarKey, Slot> slots, SparePool spares, LongSupplier nanoClock) {
        this.config = config;
        this.slots = slots;
        this.spares = spares;
        this.nanoClock = nanoClock;
        this.thread = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "walredo-housekeeper");
            t.setDaemon(true);
            return t;
        });
        thread.setRemoveOnCancelPolicy(true);
    }

    /** Schedules a sweep every {@code housekeepingPeriod}, the first one period from now. */
    void start() {
        long period = config.housekeepingPeriod().toNanos();
        thread.scheduleWithFixedDelay(this::sweep, period, period, TimeUnit.NANOSECONDS);
    }

    /**
     * Runs {@code task} on the housekeeping thread {@code delayNanos} from now: work a caller wants done off its own
     * path. Costs the caller a queue insert and at most one unpark of this thread. Never throws: after {@link #stop()}
     * the task is dropped, and a task that throws is logged.
     */
    void runLater(Runnable task, long delayNanos) {
        try {
            thread.schedule(
                    () -> {
                        try {
                            task.run();
                        } catch (Throwable t) {
                            log.error("walredo housekeeper task failed", t);
                        }
                    },
                    delayNanos,
                    TimeUnit.NANOSECONDS);
        } catch (Throwable t) {
            // Stopped (RejectedExecutionException), or no memory for the task: what it would do, a later sweep does.
        }
    }

    /** Stops the thread; a sweep in progress is interrupted (it holds no lock across a wait). */
    void stop() {
        thread.shutdownNow();
    }

    /**
     * One pass: kills every sidecar that wrote to stdout while nothing was owed, quiesces every sidecar idle for at
     * least the idle timeout, and lets the spare pool sweep its own. Never throws.
     */
    void sweep() {
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
            try {
                log.error("walredo housekeeper sweep failed; the next sweep runs as scheduled", t);
            } catch (Throwable ignored) {
                // Out of memory even for the log line: a sweep that throws would cancel every later one.
            }
        }
    }

    /**
     * Makes room under the cap: a warm spare first (it serves nobody yet), else the least recently used idle
     * sidecar. Runs on a spawning thread; returns the sidecar killed, or null if nothing could be reserved.
     */
    Sidecar evictLeastRecentlyUsedIdle() {
        Sidecar spare = spares.evictOne();
        if (spare != null) {
            return spare;
        }
        for (int tries = 0; tries < EVICTION_TRIES; tries++) {
            Sidecar lru = null;
            Slot lruSlot = null;
            for (Slot slot : slots.values()) {
                Sidecar sc = slot.current.get();
                if (sc != null
                        && sc.isActive()
                        && sc.inFlight() == 0
                        && (lru == null || sc.lastUsedNanos() - lru.lastUsedNanos() < 0)) {
                    lru = sc;
                    lruSlot = slot;
                }
            }
            if (lru == null) {
                return null;
            }
            if (lru.tryReserveIdle()) {
                lruSlot.current.compareAndSet(lru, null);
                lru.kill(KillCause.EVICT);
                return lru;
            }
        }
        return null;
    }
}
