// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.CapacityExhaustedException;
import io.walredo.RedoCancelledException;
import io.walredo.WalRedoException;
import io.walredo.nativeio.Deadline;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * The live-sidecar cap ({@code maxLiveSidecars}): one unit per sidecar from before its spawn until its reap. A unit
 * is taken by {@link #reserve} (a tenant's spawn, which may evict and wait) or {@link #tryReserveForSpare} (a warm
 * spare, never waiting, never ahead of a tenant), and given back exactly once by {@link #release}: by the
 * spawner if no process was started, else by {@link SidecarDeaths} when the sidecar reports its reap.
 *
 * <p>The count is one {@code AtomicInteger} (compare-and-set, no lock); the lock and condition only park spawns
 * waiting for room, and are touched only when a cap is set. Never on the request path of a live sidecar.
 */
final class LiveCap {
    private static final long RESCAN_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final int max;
    private final AtomicBoolean managerClosed;
    private final AtomicInteger live = new AtomicInteger();
    /** Spawns for tenants waiting for room under the cap: while any does, no spare takes a unit. */
    private final AtomicInteger roomWaiters = new AtomicInteger();

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition freed = lock.newCondition();

    LiveCap(int max, AtomicBoolean managerClosed) {
        this.max = max;
        this.managerClosed = managerClosed;
    }

    /** Units taken and not given back: sidecars being spawned or not yet reaped. */
    int live() {
        return live.get();
    }

    /**
     * Takes one unit for {@code slot}'s spawn, evicting the least recently used idle sidecar if needed. Gives up as
     * soon as the slot is closed (detach, shutdown), so a closed tenant never evicts anyone.
     *
     * @param evictOne makes room: kills one idle sidecar (a spare first) and returns it; null if none could be
     *     reserved
     */
    void reserve(Slot slot, Deadline deadline, Supplier<Sidecar> evictOne) throws WalRedoException {
        roomWaiters.incrementAndGet();
        try {
            reserveWaiting(slot, deadline, evictOne);
        } finally {
            roomWaiters.decrementAndGet();
        }
    }

    private void reserveWaiting(Slot slot, Deadline deadline, Supplier<Sidecar> evictOne) throws WalRedoException {
        // Evicted by this spawn and not yet reaped: its unit is on its way back, so nothing else is evicted meanwhile.
        // Once it has been reaped (its unit given back) and there is still no room, another spawn took that unit,
        // and this one evicts again instead of waiting for a unit that is not coming.
        Sidecar evicted = null;
        for (; ; ) {
            if (slot.closedBy != null || managerClosed.get()) {
                throw slot.closedWhileStarting();
            }
            int n = live.get();
            if (n < max) {
                if (live.compareAndSet(n, n + 1)) {
                    return;
                }
                continue;
            }
            if (evicted == null || evicted.terminated().isDone()) {
                evicted = evictOne.get();
            }
            long remaining = deadline.remainingNanos();
            if (remaining <= 0) {
                throw exhausted(slot, null);
            }
            lock.lock();
            try {
                if (live.get() >= max) {
                    freed.awaitNanos(Math.min(remaining, RESCAN_NANOS));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RedoCancelledException(
                        slot.key.tenant(),
                        0,
                        "walredo spawn for tenant " + slot.key.tenant()
                                + " was cancelled: interrupted while waiting for room under maxLiveSidecars",
                        e);
            } finally {
                lock.unlock();
            }
        }
    }

    /** A unit for a warm spare: only if there is room now and no tenant's spawn is waiting for some. */
    boolean tryReserveForSpare() {
        for (; ; ) {
            int n = live.get();
            if (n >= max || roomWaiters.get() > 0 || managerClosed.get()) {
                return false;
            }
            if (live.compareAndSet(n, n + 1)) {
                return true;
            }
        }
    }

    /** Gives back one unit and wakes the spawns waiting for room. */
    void release() {
        live.decrementAndGet();
        wakeWaiters();
    }

    /** Wakes the spawns waiting for room, so they re-check (room, or their slot closed). */
    void wakeWaiters() {
        if (max != Integer.MAX_VALUE) {
            lock.lock();
            try {
                freed.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** The error for a spawn that found no room before its deadline. */
    CapacityExhaustedException exhausted(Slot slot, Throwable cause) {
        return new CapacityExhaustedException(
                slot.key.tenant(),
                "no room for a walredo sidecar for tenant "
                        + slot.key.tenant() + ": maxLiveSidecars (" + max
                        + ") sidecars are alive and none was idle before"
                        + " the request's deadline; raise maxLiveSidecars or lower the load",
                cause);
    }
}
