// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/**
 * The sidecar answered something that is not a page: a short answer followed by end of file, or
 * bytes that cannot belong to the walredo protocol. The sidecar is killed; the next request respawns it.
 */
public final class ProtocolException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant
     * @param pid the sidecar's pid
     * @param message what was received instead of a page
     * @param cause the underlying failure, or null
     */
    public ProtocolException(TenantShardId tenant, int pid, String message, Throwable cause) {
        super(tenant, pid, message, cause);
    }
}
