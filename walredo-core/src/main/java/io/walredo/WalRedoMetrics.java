// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * A snapshot of the manager's counters since it was created, from {@link WalRedoManager#metrics()}.
 *
 * <p>The counters are read without locks and cost next to nothing. {@link #sidecarMemory()} is not a counter:
 * {@code metrics()} reads it on the calling thread from {@code /proc/PID/smaps_rollup} of every sidecar process,
 * which costs tens of microseconds per process (the kernel walks its page tables), so {@code metrics()} with
 * thousands of live sidecars takes milliseconds. Poll it every few seconds, not in a tight loop.
 *
 * @param sidecarsStarted sidecars spawned
 * @param spawnFailures spawns that failed ({@code posix_spawn} failed or {@code spawnTimeout} passed); not one that
 *     found no room under {@code maxLiveSidecars} or was cancelled, since neither started a process
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
 * @param sidecarMemory RSS and PSS read during this call, each summed over the {@code sidecarsMeasured} sidecar
 *     processes whose memory could be read: every sidecar not yet reaped, those leaving rotation or being killed
 *     included (so it may cover more processes than {@link WalRedoManager#status()} lists); both 0 when none could.
 *     The PSS sum is what the sidecars cost the machine; the RSS sum counts the pages they share once per sidecar
 *     (see {@link SidecarStatus.Memory})
 * @param sidecarsMeasured how many sidecar processes {@code sidecarMemory} covers (for a per-sidecar average). It
 *     can differ from {@code liveSidecars}, which also counts spawns in progress and does not skip a process that
 *     exited while being read or whose {@code /proc} entry is restricted
 * @param recentSpawnLatency {@code spawnLatency} over roughly the last minute only (between 50 and 60 s: six
 *     slots of 10 s), so that in a long-running process it reflects now rather than the process's whole life
 * @param recentRedoLatency {@code redoLatency} over the same recent window
 * @param spareSidecars warm spares ready now ({@link WalRedoConfig#warmSpares()}); they are counted in
 *     {@code liveSidecars} too, and {@link WalRedoManager#status()} does not list them (they serve no tenant yet)
 * @param spareHits requests that found no live sidecar for their tenant and were handed a warm spare instead of
 *     waiting for a spawn
 * @param spareMisses spawns started for a tenant because no warm spare was ready although spares are configured
 *     (0 when they are not). Hits over hits plus misses is the pool's hit rate
 * @param spawnWait how long redo calls that waited for their tenant's sidecar to be spawned (or for the spawn
 *     back-off) waited, in all; its count is how many calls waited. Calls handed a spare do not wait
 * @param deadlineWakeLateness for calls ({@code redo}, {@code ping}, {@code prewarm}) whose deadline passed while
 *     they were in the library, whatever their outcome: how long after the deadline the library woke the calling
 *     thread (its deadline alarm fired), or, for a call that left before its alarm fired, how long after the
 *     deadline it left. Its count is how many calls. A call returns later than this when its thread, once woken,
 *     waits for a CPU (a saturated machine) or a garbage-collection pause; compare with how late the caller saw
 *     it return. This is the library's part ({@link WalRedoMetricsListener#deadlineWake})
 */
public record WalRedoMetrics(
        long sidecarsStarted,
        long spawnFailures,
        Map<KillCause, Long> sidecarsKilled,
        int liveSidecars,
        long redos,
        long redoFailures,
        long retries,
        long records,
        long requestBytes,
        Latency spawnLatency,
        Latency redoLatency,
        long stderrLinesLogged,
        long stderrLinesSuppressed,
        Map<TenantOverloadedException.Reason, Long> refusals,
        SidecarStatus.Memory sidecarMemory,
        int sidecarsMeasured,
        Latency recentSpawnLatency,
        Latency recentRedoLatency,
        int spareSidecars,
        long spareHits,
        long spareMisses,
        Latency spawnWait,
        Latency deadlineWakeLateness) {

    /** Copies the maps; rejects a null {@code sidecarMemory} and a negative {@code sidecarsMeasured}. */
    public WalRedoMetrics {
        Objects.requireNonNull(recentSpawnLatency, "recentSpawnLatency");
        Objects.requireNonNull(recentRedoLatency, "recentRedoLatency");
        Objects.requireNonNull(spawnWait, "spawnWait");
        Objects.requireNonNull(deadlineWakeLateness, "deadlineWakeLateness");
        sidecarsKilled = Map.copyOf(sidecarsKilled);
        refusals = Map.copyOf(refusals);
        Objects.requireNonNull(sidecarMemory, "sidecarMemory");
        if (sidecarsMeasured < 0) {
            throw new IllegalArgumentException("sidecarsMeasured must not be negative, got " + sidecarsMeasured);
        }
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
    public record Latency(long count, Duration p50, Duration p90, Duration p99, Duration max) {}
}
