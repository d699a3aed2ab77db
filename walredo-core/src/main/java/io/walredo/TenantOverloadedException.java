// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.time.Duration;
import java.util.Objects;

/**
 * The request was refused at once, before anything was sent, because the tenant's sidecar is too busy to answer
 * it in time: either its queue is full ({@link WalRedoConfig#maxQueuedPerTenant()}), or the requests already
 * queued ahead of it are expected to take longer than the request's remaining deadline (twice as long when the
 * estimate is unsure; the message says so). Nothing waited: the
 * calling thread is free for another tenant's work, which is the point (one slow tenant must not absorb a shared
 * pool of callers).
 *
 * <p>Unlike {@link RedoTimeoutException}, no time was spent. The request may succeed later, when the sidecar has
 * caught up; a server should shed it (answer "busy") or retry it after a delay, not at once in a loop. On virtual
 * threads a retry loop is worse than wasteful: a refusal does not park, and callers retrying at once (even with
 * {@link Thread#yield()}) were measured to keep every admitted call of the process off the carriers.
 */
public final class TenantOverloadedException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    /** Why the request was refused. */
    public enum Reason {
        /** {@link WalRedoConfig#maxQueuedPerTenant()} requests were already queued or in flight on the sidecar. */
        QUEUE_BOUND,
        /** The answers owed ahead of the request were expected to take longer than its remaining deadline. */
        EXPECTED_WAIT
    }

    private final Reason reason;
    private final int queued;
    private final transient Duration expectedWait;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant
     * @param pid the sidecar's pid
     * @param reason why it was refused
     * @param queued requests queued or in flight on the sidecar ahead of this one
     * @param expectedWait the estimated wait for those (zero if the queue bound alone refused it)
     * @param message what happened and what to do
     */
    public TenantOverloadedException(
            TenantShardId tenant, int pid, Reason reason, int queued, Duration expectedWait, String message) {
        super(tenant, pid, message, null);
        this.reason = Objects.requireNonNull(reason, "reason");
        this.queued = queued;
        this.expectedWait = Objects.requireNonNull(expectedWait, "expectedWait");
    }

    /** Why the request was refused. */
    public Reason reason() {
        return reason;
    }

    /** Requests that were queued or in flight on the sidecar ahead of this one. */
    public int queued() {
        return queued;
    }

    /** The estimated wait for the requests ahead (zero when the queue bound alone refused it). */
    public Duration expectedWait() {
        return expectedWait;
    }
}
