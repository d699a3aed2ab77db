// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import io.walredo.internal.Supervisor;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * Runs one PostgreSQL {@code --wal-redo} sidecar per tenant shard and turns "base page + WAL records"
 * into a page image through it. This is what a pageserver calls.
 *
 * <p>Sidecars are spawned lazily on a tenant's first request (concurrent first requests share one
 * spawn), serve pipelined requests over their stdin/stdout, are quiesced (killed) after
 * {@link WalRedoConfig#idleTimeout()} without requests and respawned on the next one. A sidecar that
 * crashes, answers garbage or makes a request time out is replaced; one tenant's slow or hung sidecar
 * never delays another tenant's requests.
 *
 * <p>Thread-safe. Every call may come from any thread; blocking calls park virtual threads without
 * pinning their carriers. Create one per pageserver, {@link #close()} it on the way out.
 *
 * <pre>{@code
 * WalRedoConfig config = WalRedoConfig.builder()
 *         .redoBinary(16, Path.of("/usr/local/neon/pg_install/v16/bin/postgres"),
 *                 Path.of("/usr/local/neon/pg_install/v16/lib"))
 *         .build();
 * try (WalRedoManager redo = WalRedoManager.create(config)) {
 *     byte[] page = redo.redo(tenant, request, AttemptType.READ_PAGE);
 * }
 * }</pre>
 */
public final class WalRedoManager implements AutoCloseable {
    private final WalRedoConfig config;
    private final Supervisor supervisor;

    private WalRedoManager(WalRedoConfig config) {
        this.config = config;
        this.supervisor = new Supervisor(config, config.nanoClock());
    }

    /**
     * Creates a manager. Loads the native layer once per JVM (a few hundred milliseconds the first
     * time, so no request pays for it) and starts the housekeeper. No sidecar is spawned yet.
     *
     * @throws IllegalStateException if the platform is not supported (Linux with pidfd is required)
     */
    public static WalRedoManager create(WalRedoConfig config) {
        return new WalRedoManager(Objects.requireNonNull(config, "config"));
    }

    /** The configuration this manager was built with. */
    public WalRedoConfig config() {
        return config;
    }

    /**
     * Reconstructs one page: sends {@code request} to the tenant's sidecar (spawning it if needed) and
     * returns the 8192-byte page image. Failed attempts are retried on a fresh sidecar as
     * {@code attempt} allows, all within {@link WalRedoConfig#redoTimeout()}.
     *
     * @throws IllegalArgumentException if no binary is configured for the request's PostgreSQL version, or
     *         the request is larger than {@link WalRedoConfig#maxRequestBytes()} (nothing is spawned or sent)
     * @throws ManagerClosedException after {@link #shutdown}
     * @throws WalRedoException if no page could be produced; the subclass says why
     */
    public byte[] redo(TenantShardId tenant, RedoRequest request, AttemptType attempt) throws WalRedoException {
        return supervisor.redo(tenant, request, attempt, config.redoTimeout());
    }

    /** Like {@link #redo(TenantShardId, RedoRequest, AttemptType)}, with this call's own timeout. */
    public byte[] redo(TenantShardId tenant, RedoRequest request, AttemptType attempt, Duration timeout)
            throws WalRedoException {
        return supervisor.redo(tenant, request, attempt, timeout);
    }

    /**
     * Like {@link #redo(TenantShardId, RedoRequest, AttemptType, Duration)}, but the page is written into {@code
     * page} instead of a new array: its 8192 bytes go to {@code page}'s position (heap or direct), and the position
     * moves past them. For embedders that keep pages in buffers of their own; no page-sized array is allocated.
     *
     * <p>{@code page} is written only by a call that returns normally, and never after the call has returned or
     * thrown (a caller whose deadline passes while its answer is being copied waits for the copy and returns
     * normally). Do not read or write {@code page} from another thread during the call.
     *
     * @throws IllegalArgumentException if {@code page} is read-only or has fewer than 8192 bytes remaining (nothing
     *         is spawned or sent), and as {@link #redo(TenantShardId, RedoRequest, AttemptType)}
     * @throws ManagerClosedException after {@link #shutdown}
     * @throws WalRedoException if no page could be produced; {@code page} is then unchanged
     */
    public void redo(TenantShardId tenant, RedoRequest request, AttemptType attempt, Duration timeout, ByteBuffer page)
            throws WalRedoException {
        Objects.requireNonNull(page, "page");
        supervisor.redo(tenant, request, attempt, timeout, page);
    }

    /**
     * Runs {@link #redo(TenantShardId, RedoRequest, AttemptType)} on a new virtual thread. The future
     * completes with the page, or exceptionally with the {@link WalRedoException} (or
     * {@link IllegalArgumentException}, {@link ManagerClosedException}). Arguments are checked before
     * this returns.
     */
    public CompletableFuture<byte[]> redoAsync(TenantShardId tenant, RedoRequest request, AttemptType attempt) {
        Objects.requireNonNull(attempt, "attempt");
        supervisor.checkRedoArguments(tenant, request);
        CompletableFuture<byte[]> result = new CompletableFuture<>();
        Thread.ofVirtual().name("walredo-async").start(() -> {
            try {
                result.complete(supervisor.redo(tenant, request, attempt, config.redoTimeout()));
            } catch (Throwable t) {
                result.completeExceptionally(t);
            }
        });
        return result;
    }

    /**
     * Round-trips a ping through the tenant's sidecar for {@code pgVersion} (spawning it if needed).
     * Useful as a health check and to warm a tenant up before its first read.
     *
     * @throws IllegalArgumentException if no binary is configured for {@code pgVersion}
     * @throws WalRedoException if the ping failed
     */
    public void ping(TenantShardId tenant, int pgVersion) throws WalRedoException {
        supervisor.ping(tenant, pgVersion, config.redoTimeout());
    }

    /**
     * Makes the tenant's sidecar for {@code pgVersion} live ahead of its first request (for example when the tenant
     * is attached), so that request does not wait for a spawn; returns once it is live. Takes a warm spare if one is
     * ready ({@link WalRedoConfig#warmSpares()}), else spawns, coalesced with any request doing the same. Sends the
     * sidecar nothing (unlike {@link #ping}). The sidecar is quiesced after {@link WalRedoConfig#idleTimeout()} like
     * any other if no request comes. Blocks for at most {@link WalRedoConfig#redoTimeout()}; to warm many tenants at
     * once, call it from one virtual thread each.
     *
     * @throws IllegalArgumentException if no binary is configured for {@code pgVersion}
     * @throws WalRedoException if no sidecar could be made live (the spawn failed, timed out, found no room under
     *     {@link WalRedoConfig#maxLiveSidecars()}, or the tenant was detached meanwhile)
     */
    public void prewarm(TenantShardId tenant, int pgVersion) throws WalRedoException {
        supervisor.prewarm(tenant, pgVersion, config.redoTimeout());
    }

    /**
     * Detaches a tenant: its requests in flight may finish until {@code timeout}, later ones fail with
     * {@link RedoCancelledException}; then its sidecars are killed and reaped. Returns when that is done.
     * A request for the tenant after this returns starts afresh. Idempotent.
     */
    public void detach(TenantShardId tenant, Duration timeout) {
        supervisor.detach(tenant, timeout);
    }

    /** {@link #detach(TenantShardId, Duration)} with {@link WalRedoConfig#killTimeout()}. */
    public void detach(TenantShardId tenant) {
        supervisor.detach(tenant, config.killTimeout());
    }

    /** The live sidecars now, one entry each. */
    public List<SidecarStatus> status() {
        return supervisor.status();
    }

    /** Counters and latency distributions since creation. */
    public WalRedoMetrics metrics() {
        return supervisor.metrics();
    }

    /**
     * Shuts down: new calls throw {@link ManagerClosedException}; requests in flight may finish until
     * {@code timeout}, then fail with {@link RedoCancelledException}; every sidecar is killed and reaped
     * (waiting at most {@link WalRedoConfig#killTimeout()} more, and logging any that would not die).
     * Idempotent.
     */
    public void shutdown(Duration timeout) {
        supervisor.shutdown(timeout);
    }

    /** Test hook: one housekeeping pass now (it also runs every housekeeping period). */
    void sweepNow() {
        supervisor.sweep();
    }

    /** {@link #shutdown(Duration)} with {@link WalRedoConfig#killTimeout()}. */
    @Override
    public void close() {
        supervisor.shutdown(config.killTimeout());
    }
}
