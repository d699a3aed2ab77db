// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/**
 * The request was cancelled before it completed: its tenant was detached, the manager shut down, the
 * live-sidecar cap left no room before its deadline, or the calling thread was interrupted.
 */
public final class RedoCancelledException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant
     * @param pid the sidecar's pid, or 0 if none was involved
     * @param message why it was cancelled
     * @param cause the underlying failure, or null
     */
    public RedoCancelledException(TenantShardId tenant, int pid, String message, Throwable cause) {
        super(tenant, pid, message, cause);
    }
}
