// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.nativeio.Deadline;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Detach and shutdown: close slots to new work, let in-flight requests finish until the deadline, then kill and
 * reap, bounded by {@code killTimeout}, logging any sidecar that will not die. Runs on the caller of
 * {@code detach} or {@code shutdown}. After it returns nothing is spawned or evicted for the drained tenants, and
 * every sidecar of theirs that it waited for has been reaped and given back its cap unit ({@link SidecarDeaths}
 * books the reap before {@code terminated()} completes), and its death has been booked (a death nobody caused is
 * booked up to a second after its reap, once its crash report is in; it is waited for).
 */
final class Drain {
    private static final Logger log = LoggerFactory.getLogger(Drain.class);

    private final WalRedoConfig config;
    private final Map<SidecarKey, Slot> slots;
    private final SidecarDeaths deaths;
    private final LiveCap cap;
    private final DetachingTenants detaching;

    Drain(
            WalRedoConfig config,
            Map<SidecarKey, Slot> slots,
            SidecarDeaths deaths,
            LiveCap cap,
            DetachingTenants detaching) {
        this.config = config;
        this.slots = slots;
        this.deaths = deaths;
        this.cap = cap;
        this.detaching = detaching;
    }

    /**
     * Drains every slot of {@code tenant} (every PostgreSQL version). The tenant is marked first, so a slot a request
     * creates meanwhile is closed by that request ({@link DetachingTenants}).
     */
    void detach(TenantShardId tenant, Deadline deadline) {
        detaching.begin(tenant);
        try {
            List<Slot> mine = new ArrayList<>();
            for (Slot slot : slots.values()) {
                if (slot.key.tenant().equals(tenant)) {
                    mine.add(slot);
                }
            }
            drain(mine, KillCause.DETACH, deadline);
        } finally {
            detaching.end(tenant);
        }
    }

    /** Drains every slot and every sidecar not yet reaped, spares included. */
    void shutdown(Deadline deadline) {
        drain(new ArrayList<>(slots.values()), KillCause.SHUTDOWN, deadline);
    }

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
        cap.wakeWaiters();
        // A failed spawn left nothing behind; a slow one kills its own sidecar when it sees the slot closed.
        awaitSettled(spawns, deadline);
        // After the spawns settled: a spawn that finished into a closed slot killed its own sidecar, but it
        // is still awaited here like every other sidecar of these tenants, in rotation or not.
        Set<SidecarKey> keys = new HashSet<>();
        list.forEach(slot -> keys.add(slot.key));
        for (Sidecar sc : deaths.unsettled()) {
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
            // Reaped, but a death nobody caused is booked once its crash report is in (at most about a second);
            // booked here at the latest, so nothing of these tenants is reported after this returns.
            if (!awaitSettled(sc.accounted(), killDeadline)) {
                sc.kill(cause);
            }
        }
        for (Sidecar sc : sidecars) {
            if (!awaitTerminated(sc, killDeadline)) {
                log.atError()
                        .addKeyValue("tenant", sc.tenant())
                        .addKeyValue("pid", sc.pid())
                        .addKeyValue("killTimeout", config.killTimeout())
                        .log(
                                "walredo sidecar was not reaped after SIGKILL within killTimeout (uninterruptible sleep?)");
            }
        }
        // Only now may a request for these tenants start afresh (after a detach).
        for (Slot slot : list) {
            slots.remove(slot.key, slot);
        }
    }

    /**
     * Waits until every future has completed, normally or not, or the deadline passes; an interrupt stops the wait
     * (the interrupt status is kept). What a future that has not settled by then still owns, it ends itself.
     */
    static void awaitSettled(List<? extends CompletableFuture<?>> futures, Deadline deadline) {
        for (CompletableFuture<?> f : futures) {
            try {
                f.get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
            } catch (ExecutionException | TimeoutException e) {
                // Settled with an error, or not by the deadline: either way, on to the next.
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static boolean awaitSettled(CompletableFuture<?> f, Deadline deadline) {
        awaitSettled(List.of(f), deadline);
        return f.isDone();
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
}
