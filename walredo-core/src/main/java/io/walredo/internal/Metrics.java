// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.RedoResult;
import io.walredo.SidecarStatus;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoMetrics;
import io.walredo.WalRedoMetricsListener;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The manager's own totals plus fan-out to the embedder's {@link WalRedoMetricsListener} and to JFR.
 * Thread-safe and lock-free; a listener that throws is logged (once per kind) and otherwise ignored.
 */
final class Metrics {
    private static final Logger log = LoggerFactory.getLogger(Metrics.class);

    private final WalRedoMetricsListener listener;
    private final IntSupplier liveSidecars;
    private final LongAdder started = new LongAdder();
    private final LongAdder spawnFailures = new LongAdder();
    private final EnumMap<KillCause, LongAdder> killed = new EnumMap<>(KillCause.class);
    private final LongAdder redos = new LongAdder();
    private final LongAdder redoFailures = new LongAdder();
    private final LongAdder retries = new LongAdder();
    private final LongAdder records = new LongAdder();
    private final LongAdder requestBytes = new LongAdder();
    private final LongAdder stderrLogged = new LongAdder();
    private final LongAdder stderrSuppressed = new LongAdder();
    private final EnumMap<TenantOverloadedException.Reason, LongAdder> refused =
            new EnumMap<>(TenantOverloadedException.Reason.class);
    private final LongAdder spareHits = new LongAdder();
    private final LongAdder spareMisses = new LongAdder();
    private final LatencyHistogram spawnWait = new LatencyHistogram();
    private final LatencyHistogram deadlineWake = new LatencyHistogram();
    private final LatencyHistogram spawnLatency = new LatencyHistogram();
    private final LatencyHistogram redoLatency = new LatencyHistogram();
    private final RecentLatency recentSpawnLatency;
    private final RecentLatency recentRedoLatency;
    private volatile boolean listenerFailureLogged;

    Metrics(WalRedoMetricsListener listener, IntSupplier liveSidecars, LongSupplier nanoClock) {
        this.listener = listener;
        this.liveSidecars = liveSidecars;
        this.recentSpawnLatency = new RecentLatency(nanoClock);
        this.recentRedoLatency = new RecentLatency(nanoClock);
        for (KillCause c : KillCause.values()) {
            killed.put(c, new LongAdder());
        }
        for (TenantOverloadedException.Reason r : TenantOverloadedException.Reason.values()) {
            refused.put(r, new LongAdder());
        }
    }

    void sidecarStarted(TenantShardId tenant, int pid, long latencyNanos) {
        started.increment();
        spawnLatency.record(latencyNanos);
        recentSpawnLatency.record(latencyNanos);
        try {
            listener.sidecarStarted(tenant, pid, Duration.ofNanos(latencyNanos));
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    /** A warm spare was handed to {@code key}'s tenant. */
    void spareAssigned(SidecarKey key, int pid) {
        spareHits.increment();
        JfrEvents.spareAssigned(key, pid);
        try {
            listener.spareAssigned(key.tenant(), key.pgVersion(), pid);
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    /** A tenant needed a sidecar, spares are configured, and none was ready: it waits for a spawn. */
    void spareMissed() {
        spareMisses.increment();
    }

    /** A redo call waited {@code nanos} in all for its tenant's sidecar to be spawned (or for the spawn back-off). */
    void spawnWaited(TenantShardId tenant, long nanos) {
        spawnWait.record(nanos);
        try {
            listener.spawnWaited(tenant, Duration.ofNanos(nanos));
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    /** A call's deadline passed while it was in the library; its thread was woken {@code lateNanos} after it. */
    void deadlineWake(TenantShardId tenant, long lateNanos) {
        deadlineWake.record(lateNanos);
        try {
            listener.deadlineWake(tenant, Duration.ofNanos(lateNanos));
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    void spawnFailed(TenantShardId tenant) {
        spawnFailures.increment();
        try {
            listener.spawnFailed(tenant);
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    void sidecarKilled(TenantShardId tenant, int pid, KillCause cause) {
        killed.get(cause).increment();
        JfrEvents.kill(tenant, pid, cause);
        try {
            listener.sidecarKilled(tenant, pid, cause);
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    void refused(TenantShardId tenant, int pid, TenantOverloadedException.Reason reason) {
        refused.get(reason).increment();
        JfrEvents.refused(tenant, pid, reason);
        try {
            listener.requestRefused(tenant, pid, reason);
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    void retried() {
        retries.increment();
    }

    void redoFinished(RedoResult r) {
        boolean ok = r.succeeded();
        (ok ? redos : redoFailures).increment();
        records.add(r.records());
        requestBytes.add(r.requestBytes());
        if (ok) {
            redoLatency.record(r.latency().toNanos());
            recentRedoLatency.record(r.latency().toNanos());
        }
        try {
            listener.redoCompleted(r);
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    void stderrLine(TenantShardId tenant, boolean suppressed) {
        (suppressed ? stderrSuppressed : stderrLogged).increment();
        try {
            listener.stderrLine(tenant, suppressed);
        } catch (RuntimeException e) {
            listenerFailed(e);
        }
    }

    /**
     * The totals now, with the sidecars' memory the caller has just read (it is read from /proc, not counted here).
     *
     * @param sidecarMemory RSS and PSS summed over the {@code sidecarsMeasured} sidecars whose memory was read
     * @param sidecarsMeasured how many sidecars {@code sidecarMemory} covers
     * @param sparesReady warm spares ready now
     */
    WalRedoMetrics snapshot(SidecarStatus.Memory sidecarMemory, int sidecarsMeasured, int sparesReady) {
        Map<KillCause, Long> k = new EnumMap<>(KillCause.class);
        killed.forEach((c, n) -> k.put(c, n.sum()));
        Map<TenantOverloadedException.Reason, Long> r = new EnumMap<>(TenantOverloadedException.Reason.class);
        refused.forEach((c, n) -> r.put(c, n.sum()));
        return new WalRedoMetrics(
                started.sum(),
                spawnFailures.sum(),
                k,
                liveSidecars.getAsInt(),
                redos.sum(),
                redoFailures.sum(),
                retries.sum(),
                records.sum(),
                requestBytes.sum(),
                spawnLatency.snapshot(),
                redoLatency.snapshot(),
                stderrLogged.sum(),
                stderrSuppressed.sum(),
                r,
                sidecarMemory,
                sidecarsMeasured,
                recentSpawnLatency.snapshot(),
                recentRedoLatency.snapshot(),
                sparesReady,
                spareHits.sum(),
                spareMisses.sum(),
                spawnWait.snapshot(),
                deadlineWake.snapshot());
    }

    private void listenerFailed(RuntimeException e) {
        if (!listenerFailureLogged) {
            listenerFailureLogged = true;
            log.warn("the WalRedoMetricsListener threw; its exceptions are ignored from now on", e);
        }
    }
}
