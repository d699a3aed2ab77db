// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/**
 * The sidecar could not be started: posix_spawn failed (the message names the binary and errno), it
 * did not start within the spawn timeout, or the tenant is backing off after repeated failures.
 */
public final class SpawnFailedException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant
     * @param message what failed and what to check
     * @param cause the native failure, or null
     */
    public SpawnFailedException(TenantShardId tenant, String message, Throwable cause) {
        super(tenant, 0, message, cause);
    }
}
