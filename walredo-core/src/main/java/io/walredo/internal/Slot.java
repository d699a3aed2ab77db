// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.RedoCancelledException;
import io.walredo.WalRedoConfig;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Per tenant shard and PostgreSQL version: the sidecar in rotation, the spawn in progress, the back-off state.
 * Created by {@link TenantSlots} on a tenant's first request and removed by {@link Drain} once detach or shutdown
 * has ended every sidecar of it. {@code current} is read and swapped without the lock (the request path's fast
 * path); everything else is written under {@code lock}, which is never held across I/O or a spawn.
 */
final class Slot {
    final SidecarKey key;
    final AtomicReference<Sidecar> current = new AtomicReference<>();
    final ReentrantLock lock = new ReentrantLock();
    /** Guarded by lock. */
    CompletableFuture<Sidecar> spawning;
    /** Set while this slot's spawn waits for room under maxLiveSidecars, to name that in timeouts. */
    volatile boolean waitingForRoom;
    /** Written under lock (read without it by a spawn waiting for room); non-null once detached or shut down. */
    volatile KillCause closedBy;
    /** Written under lock; read without it on the success path (a stale read only delays the reset). */
    volatile int failures;
    /** Guarded by lock. */
    long nextSpawnNanos;
    /** Guarded by lock. */
    String lastFailure = "none";

    Slot(SidecarKey key) {
        this.key = key;
    }

    /** Caller holds lock. */
    void recordFailure(String what, long now, WalRedoConfig config) {
        failures++;
        lastFailure = what;
        nextSpawnNanos = now + Backoff.delayNanos(failures, config);
    }

    /** Takes the lock to record a failure. */
    void recordFailureLocked(String what, long now, WalRedoConfig config) {
        lock.lock();
        try {
            recordFailure(what, now, config);
        } finally {
            lock.unlock();
        }
    }

    /** The error for a request whose spawn found this slot closed (detach, shutdown) before its sidecar started. */
    RedoCancelledException closedWhileStarting() {
        return new RedoCancelledException(
                key.tenant(),
                0,
                "walredo request for tenant " + key.tenant()
                        + " was cancelled: "
                        + (closedBy == KillCause.DETACH ? "the tenant was detached" : "the manager shut down")
                        + " before its sidecar started",
                null);
    }

    void recordSuccess() {
        if (failures != 0) {
            lock.lock();
            try {
                failures = 0;
            } finally {
                lock.unlock();
            }
        }
    }
}
