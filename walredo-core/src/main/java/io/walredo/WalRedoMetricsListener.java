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
 */
public interface WalRedoMetricsListener {

    /** A listener that ignores everything. */
    WalRedoMetricsListener NONE = new WalRedoMetricsListener() {
    };

    /** A sidecar started: posix_spawn returned after {@code latency}. */
    default void sidecarStarted(TenantShardId tenant, int pid, Duration latency) {
    }

    /** Spawning a sidecar failed. */
    default void spawnFailed(TenantShardId tenant) {
    }

    /** A sidecar was killed (or found dead) for {@code cause}. */
    default void sidecarKilled(TenantShardId tenant, int pid, KillCause cause) {
    }

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
    default void redoFinished(TenantShardId tenant, Duration latency, int records, int requestBytes, boolean succeeded) {
    }

    /** A request was refused at once because the tenant's sidecar {@code pid} was overloaded, for {@code reason}. */
    default void requestRefused(TenantShardId tenant, int pid, TenantOverloadedException.Reason reason) {
    }

    /** A sidecar's stderr line was logged ({@code suppressed} false) or dropped by the rate limit. */
    default void stderrLine(TenantShardId tenant, boolean suppressed) {
    }
}
