// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.time.Duration;

/**
 * Receives the manager's metrics events, so an embedder can feed its own metrics library (Prometheus,
 * Micrometer, ...) without this library depending on one. Every method has an empty default.
 *
 * <p>Called synchronously on the thread where the event happened (request threads, the housekeeper,
 * stderr drainers): implementations must be thread-safe, fast and must not block or throw; an exception
 * thrown by a listener is logged and otherwise ignored. The manager keeps its own totals too:
 * {@link WalRedoManager#metrics()}.
 *
 * <p>Warm spares ({@link WalRedoConfig#warmSpares()}) are spawned before any tenant asks for them: for a spare,
 * {@code tenant} is null in {@link #sidecarStarted}, {@link #spawnFailed}, {@link #stderrLine} and, if it is killed
 * before being handed to a tenant, {@link #sidecarKilled}. From {@link #spareAssigned} on, its pid serves that
 * tenant and every event names it.
 */
public interface WalRedoMetricsListener {

    /** A listener that ignores everything. */
    WalRedoMetricsListener NONE = new WalRedoMetricsListener() {};

    /** A sidecar started: posix_spawn returned after {@code latency}. {@code tenant} is null for a warm spare. */
    default void sidecarStarted(TenantShardId tenant, int pid, Duration latency) {}

    /** Spawning a sidecar failed. {@code tenant} is null for a warm spare. */
    default void spawnFailed(TenantShardId tenant) {}

    /** A sidecar was killed (or found dead) for {@code cause}. {@code tenant} is null for a spare never handed over. */
    default void sidecarKilled(TenantShardId tenant, int pid, KillCause cause) {}

    /**
     * A redo finished, successfully or not, with everything known about it (outcome, attempt type, PostgreSQL
     * version, attempts, error class). The default calls {@link #redoFinished}, so a listener written against that
     * keeps working; implement this one instead.
     */
    default void redoCompleted(RedoResult result) {
        redoFinished(result.tenant(), result.latency(), result.records(), result.requestBytes(), result.succeeded());
    }

    /**
     * A redo finished, successfully or not. Called by the default {@link #redoCompleted} only.
     *
     * @param latency from the call to its return, including spawning and retries
     * @param records the number of WAL records in the request
     * @param requestBytes the encoded request size
     * @param succeeded whether a page was returned
     */
    default void redoFinished(
            TenantShardId tenant, Duration latency, int records, int requestBytes, boolean succeeded) {}

    /** A request was refused at once because the tenant's sidecar {@code pid} was overloaded, for {@code reason}. */
    default void requestRefused(TenantShardId tenant, int pid, TenantOverloadedException.Reason reason) {}

    /**
     * A warm spare sidecar {@code pid} was handed to {@code tenant} for PostgreSQL {@code pgVersion}: a request that
     * would have waited for a spawn runs at once. From now on {@code pid} serves this tenant only.
     */
    default void spareAssigned(TenantShardId tenant, int pgVersion, int pid) {}

    /**
     * A redo call waited {@code waited} in all for its tenant's sidecar to be spawned (or for the spawn back-off),
     * whatever its outcome. Not called for calls that found a live sidecar or were handed a spare.
     */
    default void spawnWaited(TenantShardId tenant, Duration waited) {}

    /**
     * A call's deadline passed while it was in the library (a {@code redo}, {@code ping} or {@code prewarm}, whatever
     * its outcome), and the library woke its thread {@code lateness} after the deadline (for a call that left before
     * its deadline alarm fired: how long after the deadline it left). A call returns later than that when its thread
     * then waits for a CPU (a saturated machine) or for a garbage-collection pause; this figure is the library's own
     * part. Called on the calling thread as it leaves the library.
     */
    default void deadlineWake(TenantShardId tenant, Duration lateness) {}

    /** A sidecar's stderr line was logged ({@code suppressed} false) or dropped by the rate limit. */
    default void stderrLine(TenantShardId tenant, boolean suppressed) {}
}
