// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.CapacityExhaustedException;
import io.walredo.KillCause;
import io.walredo.RedoCancelledException;
import io.walredo.RedoTimeoutException;
import io.walredo.SpawnFailedException;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.nativeio.Deadline;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * A tenant slot's spawns, for {@link TenantSlots}: the one spawn a slot's callers share (on its own virtual thread,
 * so no caller's deadline cancels it), its reservation of a unit of the live-sidecar cap (waiting for room and
 * evicting), the start-up probe every new tenant sidecar gets, the spawn's outcome booked on the slot (its sidecar,
 * or a failure toward back-off), and the waits a caller makes around a spawn: for the shared spawn, for its back-off,
 * for a dead sidecar's exit to be accounted. TenantSlots decides under the slot's lock whether a spawn starts; this
 * class runs it.
 *
 * <p>Threads: {@link #startSpawn} is called under the slot's lock and only starts a thread; the other methods run on
 * callers' threads without any lock.
 */
final class SlotSpawner {
    /** Longest wait for a dead sidecar's exit processing (its crash report wait is 500 ms, its stderr tail 500 ms). */
    private static final long ACCOUNTING_WAIT_NANOS = TimeUnit.SECONDS.toNanos(2);

    private final WalRedoConfig config;
    private final LiveCap cap;
    /** The housekeeper's least-recently-used eviction, for a spawn at the cap. */
    private final Supplier<Sidecar> evictOne;

    private final SidecarLauncher launcher;
    private final Metrics metrics;
    private final LongSupplier nanoClock;
    private final AtomicBoolean managerClosed;

    SlotSpawner(
            WalRedoConfig config,
            LiveCap cap,
            Supplier<Sidecar> evictOne,
            SidecarLauncher launcher,
            Metrics metrics,
            LongSupplier nanoClock,
            AtomicBoolean managerClosed) {
        this.config = config;
        this.cap = cap;
        this.evictOne = evictOne;
        this.launcher = launcher;
        this.metrics = metrics;
        this.nanoClock = nanoClock;
        this.managerClosed = managerClosed;
    }

    static void waitOutBackoff(SidecarKey key, long backoffNanos) throws RedoCancelledException {
        LockSupport.parkNanos(backoffNanos);
        if (Thread.interrupted()) {
            Thread.currentThread().interrupt();
            throw new RedoCancelledException(
                    key.tenant(),
                    0,
                    "walredo request for tenant " + key.tenant()
                            + " was cancelled: the calling thread was interrupted while waiting out the spawn back-off",
                    null);
        }
    }

    /**
     * Waits (at most {@link #ACCOUNTING_WAIT_NANOS}, within the deadline) until a sidecar that died before answering
     * anything has been accounted for, so that its death counts toward back-off before this caller decides whether
     * to spawn. Without the wait, a binary that dies at once was spawned again by the very request that found it
     * dead, before its exit was processed.
     */
    void awaitAccounted(Sidecar sc, Deadline deadline) throws RedoCancelledException {
        try {
            sc.accounted()
                    .get(Math.max(0, Math.min(deadline.remainingNanos(), ACCOUNTING_WAIT_NANOS)), TimeUnit.NANOSECONDS);
        } catch (TimeoutException | ExecutionException e) {
            // Proceed: the deadline or the bound passed first; back-off may then start one spawn later.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RedoCancelledException(
                    sc.tenant(),
                    sc.pid(),
                    "walredo request for tenant " + sc.tenant()
                            + " was cancelled: the calling thread was interrupted while its dead sidecar (pid "
                            + sc.pid()
                            + ") was being accounted for",
                    e);
        }
    }

    void awaitSpawn(Slot slot, CompletableFuture<Sidecar> spawning, Deadline deadline) throws WalRedoException {
        SidecarKey key = slot.key;
        try {
            spawning.get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            if (slot.waitingForRoom) {
                throw cap.exhausted(slot, e);
            }
            throw new RedoTimeoutException(
                    key.tenant(),
                    0,
                    "walredo request for tenant " + key.tenant()
                            + " timed out waiting for its sidecar to start; the spawn goes on for later requests",
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RedoCancelledException(
                    key.tenant(),
                    0,
                    "walredo request for tenant " + key.tenant()
                            + " was cancelled: the calling thread was interrupted while waiting for its sidecar to start"
                            + " (the spawn goes on for later requests)",
                    e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof WalRedoException w) {
                // Shared by every caller of the spawn: each gets its own copy, with its own stack trace.
                throw Failures.copy(w);
            }
            throw new SpawnFailedException(
                    key.tenant(), "spawning the walredo sidecar for tenant " + key.tenant() + " failed: " + c, c);
        }
    }

    void startSpawn(Slot slot, CompletableFuture<Sidecar> result, Deadline firstCallerDeadline) {
        // The spawn is shared: waiting for room under the cap must not end at the first caller's deadline
        // (each caller stops waiting at its own), so it is bounded by the longest a default request waits.
        Deadline requesterDeadline =
                firstCallerDeadline.remainingNanos() > config.redoTimeout().toNanos()
                        ? firstCallerDeadline
                        : Deadline.after(config.redoTimeout());
        Thread.ofVirtual().name("walredo-spawn-" + slot.key.tenant()).start(() -> {
            Sidecar sc = null;
            Throwable error = null;
            try {
                sc = spawnSidecar(slot, requesterDeadline);
            } catch (Throwable t) {
                error = t;
            }
            KillCause closedBy;
            slot.lock.lock();
            try {
                slot.spawning = null;
                if (slot.closedBy == null && managerClosed.get()) {
                    slot.closedBy = KillCause.SHUTDOWN;
                }
                closedBy = slot.closedBy;
                if (sc != null && closedBy == null) {
                    slot.current.set(sc);
                } else if (sc == null
                        && !(error instanceof RedoCancelledException)
                        && !(error instanceof CapacityExhaustedException)) {
                    // Only a real spawn failure backs off; finding no room under the cap is not one.
                    slot.recordFailure(
                            String.valueOf(error instanceof WalRedoException w ? w.getMessage() : error),
                            nanoClock.getAsLong(),
                            config);
                }
            } finally {
                slot.lock.unlock();
            }
            if (sc != null && closedBy != null) {
                sc.kill(closedBy);
                error = new RedoCancelledException(
                        slot.key.tenant(),
                        sc.pid(),
                        "walredo request for tenant "
                                + slot.key.tenant() + " was cancelled: "
                                + (closedBy == KillCause.DETACH ? "the tenant was detached" : "the manager shut down")
                                + " while its sidecar (pid "
                                + sc.pid() + ") started; it was killed before any request reached it",
                        null);
            }
            if (error == null) {
                result.complete(sc);
            } else {
                // Like back-off above: a spawn cancelled, or one that found no room under the cap, started no process.
                if (!(error instanceof RedoCancelledException) && !(error instanceof CapacityExhaustedException)) {
                    metrics.spawnFailed(slot.key.tenant());
                }
                result.completeExceptionally(error);
            }
        });
    }

    /** Reserves a cap unit (waiting for room, evicting), then spawns unless the slot closed meanwhile. */
    private Sidecar spawnSidecar(Slot slot, Deadline requesterDeadline) throws WalRedoException {
        slot.waitingForRoom = true;
        try {
            cap.reserve(slot, requesterDeadline, evictOne);
        } finally {
            slot.waitingForRoom = false;
        }
        // Checked under the slot's lock, which detach and shutdown take to close it: once they have, nothing is
        // spawned for it, and the unit just reserved goes back.
        slot.lock.lock();
        try {
            if (slot.closedBy != null || managerClosed.get()) {
                cap.release();
                throw slot.closedWhileStarting();
            }
        } finally {
            slot.lock.unlock();
        }
        Sidecar sc = launcher.launch(slot.key);
        try {
            sc.probeStartup(Deadline.after(config.spawnTimeout()));
        } catch (AttemptFailure f) {
            // Recorded on the sidecar (it died at once): the caller's request fails over to a fresh one.
        } catch (Throwable t) {
            sc.kill(KillCause.ERROR);
            throw t;
        }
        return sc;
    }
}
