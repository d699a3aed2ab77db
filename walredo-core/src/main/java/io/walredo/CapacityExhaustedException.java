// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/**
 * Backpressure: the tenant has no live sidecar, and none could be started before the request's deadline because
 * {@link WalRedoConfig#maxLiveSidecars()} sidecars are alive and none of them was idle (so none could be evicted).
 * Nothing was sent. The manager is at the capacity it was given, not broken: answer "busy" and retry later, or
 * raise {@code maxLiveSidecars}. Has no pid (no sidecar was involved).
 */
public final class CapacityExhaustedException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant that found no room
     * @param message what happened and what to do
     * @param cause the underlying wait's failure, or null
     */
    public CapacityExhaustedException(TenantShardId tenant, String message, Throwable cause) {
        super(tenant, 0, message, cause);
    }
}
