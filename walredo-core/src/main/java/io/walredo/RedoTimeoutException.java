// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/**
 * The request passed its deadline: waiting for a spawn, for room in the sidecar's stdin, or for its
 * answer. A caller's deadline alone never kills the sidecar (its late answer is read and dropped); a sidecar that
 * owes answers and sends nothing for {@link WalRedoConfig#stallTimeout()} is killed as stuck, and then the
 * message says so.
 */
public final class RedoTimeoutException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant
     * @param pid the sidecar's pid, or 0 if none was involved yet
     * @param message what was being waited for, and for how long
     * @param cause the underlying timeout, or null
     */
    public RedoTimeoutException(TenantShardId tenant, int pid, String message, Throwable cause) {
        super(tenant, pid, message, cause);
    }
}
