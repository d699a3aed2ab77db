// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * One finished {@code redo} call, as {@link WalRedoMetricsListener#redoCompleted} receives it.
 *
 * @param tenant the tenant
 * @param pgVersion the request's PostgreSQL major version
 * @param attemptType how many retries the call allowed
 * @param outcome how it ended
 * @param error the exception's class if it failed (for an error-class tag), else empty
 * @param latency from the call to its return, spawning and retries included
 * @param records the number of WAL records in the request
 * @param requestBytes the encoded request size
 * @param attempts how many sidecars the request was tried on (retries are {@code attempts - 1}; 0 if it failed
 *     before reaching one)
 */
public record RedoResult(
        TenantShardId tenant,
        int pgVersion,
        AttemptType attemptType,
        RedoOutcome outcome,
        Optional<Class<? extends Throwable>> error,
        Duration latency,
        int records,
        int requestBytes,
        int attempts) {

    /** Rejects nulls and negative counts. */
    public RedoResult {
        Objects.requireNonNull(tenant, "tenant");
        Objects.requireNonNull(attemptType, "attemptType");
        Objects.requireNonNull(outcome, "outcome");
        Objects.requireNonNull(error, "error");
        Objects.requireNonNull(latency, "latency");
        if (records < 0 || requestBytes < 0 || attempts < 0) {
            throw new IllegalArgumentException("negative count in " + records + "/" + requestBytes + "/" + attempts);
        }
    }

    /** Whether a page was returned. */
    public boolean succeeded() {
        return outcome == RedoOutcome.OK;
    }

    /** Retries on a fresh sidecar: {@code attempts - 1}, never negative. */
    public int retries() {
        return Math.max(0, attempts - 1);
    }
}
