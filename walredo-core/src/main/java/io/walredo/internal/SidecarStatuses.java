// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.SidecarStatus;
import io.walredo.WalRedoMetrics;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Assembles {@link io.walredo.WalRedoManager#status} and {@link io.walredo.WalRedoManager#metrics}: the sidecars in
 * rotation, the metric counters, and each sidecar's memory read from /proc on the calling thread (tens of µs each;
 * see {@link ProcMemory}). Reads only; holds no lock.
 */
final class SidecarStatuses {
    private final Map<SidecarKey, Slot> slots;
    private final SidecarDeaths deaths;
    private final SparePool spares;
    private final Metrics metrics;

    SidecarStatuses(Map<SidecarKey, Slot> slots, SidecarDeaths deaths, SparePool spares, Metrics metrics) {
        this.slots = slots;
        this.deaths = deaths;
        this.spares = spares;
        this.metrics = metrics;
    }

    /** One status per sidecar in rotation. */
    List<SidecarStatus> status() {
        List<SidecarStatus> out = new ArrayList<>();
        for (Slot slot : slots.values()) {
            Sidecar sc = slot.current.get();
            if (sc != null) {
                out.add(new SidecarStatus(
                        sc.tenant(),
                        sc.key().pgVersion(),
                        sc.pid(),
                        sc.startedAt(),
                        sc.lastRedoAt(),
                        sc.inFlight(),
                        memoryOf(sc)));
            }
        }
        return out;
    }

    /** The counters, with the memory of every sidecar not yet reaped summed. */
    WalRedoMetrics metrics() {
        long rss = 0;
        long pss = 0;
        int measured = 0;
        for (Sidecar sc : deaths.unreaped()) {
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
}
