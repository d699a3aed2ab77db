// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place a sidecar's end is booked. Every sidecar reports to it, through {@link Sidecar.Listener}, exactly
 * twice over its life: {@link #killed} when it leaves service and {@link #reaped} when its process is gone (see
 * {@link Sidecar}: only the sidecar observes its child's exit). Here, and nowhere else, a death leaves its slot,
 * counts toward the tenant's spawn back-off, refills the spare pool, reaches the metrics listener and JFR
 * ({@link Metrics#sidecarKilled}), gives back its unit of the live-sidecar cap, and leaves the sets of unreaped and
 * unbooked sidecars that detach and shutdown wait for. Created by {@link Supervisor}; methods never block.
 */
final class SidecarDeaths implements Sidecar.Listener {
    private static final Logger log = LoggerFactory.getLogger(SidecarDeaths.class);

    private final WalRedoConfig config;
    private final Map<SidecarKey, Slot> slots;
    private final LiveCap cap;
    private final Metrics metrics;
    private final LongSupplier nanoClock;
    /** Every sidecar created and not yet reaped, in rotation or not: what shutdown and detach must end. */
    private final Set<Sidecar> unreaped = ConcurrentHashMap.newKeySet();
    /**
     * Every sidecar created and not yet booked as killed. One that died on its own is reaped first and booked up to
     * a second later, once its crash report is in ({@code SidecarFaults.childExited}): detach and shutdown wait for
     * that too.
     */
    private final Set<Sidecar> unbooked = ConcurrentHashMap.newKeySet();
    /** Set once by {@link #attach}, before the first sidecar is launched. */
    private volatile SparePool spares;

    SidecarDeaths(
            WalRedoConfig config, Map<SidecarKey, Slot> slots, LiveCap cap, Metrics metrics, LongSupplier nanoClock) {
        this.config = config;
        this.slots = slots;
        this.cap = cap;
        this.metrics = metrics;
        this.nanoClock = nanoClock;
    }

    /** The spare pool is built on the launcher, which reports here: the one cycle, closed once at construction. */
    void attach(SparePool pool) {
        this.spares = pool;
    }

    /** Sidecars not yet reaped (a live view). */
    Set<Sidecar> unreaped() {
        return unreaped;
    }

    /** Sidecars not yet reaped, or not yet booked as killed: what detach and shutdown must see to its end. */
    Set<Sidecar> unsettled() {
        Set<Sidecar> all = new HashSet<>(unreaped);
        all.addAll(unbooked);
        return all;
    }

    /** A sidecar was created for a process that was spawned; it reports {@link #reaped} exactly once. */
    void born(Sidecar sc) {
        unbooked.add(sc);
        unreaped.add(sc);
    }

    /**
     * A spawn that leaves no sidecar to report its reap: no process was started, or setup failed before the
     * sidecar watched its exit (its child is then closed by the launcher). Gives back the cap unit reserved for it.
     */
    void unborn(Sidecar created) {
        if (created != null) {
            unreaped.remove(created);
            unbooked.remove(created);
        }
        cap.release();
    }

    /** Called once per sidecar, on the killing thread: leaves its slot, back-off, spares, metrics and JFR, log. */
    @Override
    public void killed(Sidecar sc, KillCause cause) {
        try {
            book(sc, cause);
        } finally {
            unbooked.remove(sc);
        }
    }

    private void book(Sidecar sc, KillCause cause) {
        boolean spare = sc.diesAsSpare();
        if (spare) {
            SparePool pool = spares;
            pool.killed(sc);
            if (cause != KillCause.SHUTDOWN) {
                pool.refill();
            }
        } else {
            Slot slot = slots.get(sc.key());
            if (slot != null) {
                slot.current.compareAndSet(sc, null);
                if (sc.failedBeforeServing()) {
                    slot.recordFailureLocked(sc.failureDescription(), nanoClock.getAsLong(), config);
                }
            }
        }
        TenantShardId tenant = spare ? null : sc.tenant();
        metrics.sidecarKilled(tenant, sc.pid(), cause);
        log.atInfo()
                .addKeyValue("tenant", JfrEvents.name(tenant))
                .addKeyValue("pid", sc.pid())
                .addKeyValue("cause", cause)
                .log("walredo sidecar killed");
    }

    /**
     * Called once per sidecar, after its reap and before its {@code terminated()} completes: its cap unit goes back.
     */
    @Override
    public void reaped(Sidecar sc) {
        unreaped.remove(sc);
        cap.release();
    }
}
