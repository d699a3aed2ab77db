// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.time.Duration;
import java.util.Map;

/**
 * A snapshot of the manager's counters since it was created, from {@link WalRedoManager#metrics()}.
 *
 * @param sidecarsStarted sidecars spawned
 * @param spawnFailures spawns that failed
 * @param sidecarsKilled sidecars killed (or found dead), by cause
 * @param liveSidecars sidecars alive now
 * @param redos redo calls that returned a page
 * @param redoFailures redo calls that threw
 * @param retries redo attempts retried on a fresh sidecar
 * @param records WAL records in all redo calls
 * @param requestBytes encoded bytes of all redo calls
 * @param spawnLatency posix_spawn latency distribution
 * @param redoLatency redo call latency distribution (successful calls)
 * @param stderrLinesLogged sidecar stderr lines logged
 * @param stderrLinesSuppressed sidecar stderr lines dropped by the rate limit
 * @param refusals requests refused at once because their tenant's sidecar was overloaded
 *     ({@link TenantOverloadedException}), by reason
 */
public record WalRedoMetrics(long sidecarsStarted, long spawnFailures, Map<KillCause, Long> sidecarsKilled,
        int liveSidecars, long redos, long redoFailures, long retries, long records, long requestBytes,
        Latency spawnLatency, Latency redoLatency, long stderrLinesLogged, long stderrLinesSuppressed,
        Map<TenantOverloadedException.Reason, Long> refusals) {

    /** Copies the maps. */
    public WalRedoMetrics {
        sidecarsKilled = Map.copyOf(sidecarsKilled);
        refusals = Map.copyOf(refusals);
    }

    /**
     * A latency distribution: count and percentiles, each accurate to within 1/16 (6.25 %) of its value.
     *
     * @param count samples
     * @param p50 median
     * @param p90 90th percentile
     * @param p99 99th percentile
     * @param max largest sample (within the same precision)
     */
    public record Latency(long count, Duration p50, Duration p90, Duration p99, Duration max) {
    }
}
