// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.util.Objects;
import java.util.OptionalInt;

/**
 * A redo (or ping) that did not produce a page. Subclasses say why; every message names the tenant,
 * the sidecar's pid when there was one, and what to do next.
 *
 * <p>Checked on purpose: a page that could not be reconstructed is an expected outcome that a
 * pageserver must turn into an error for its client, never an unchecked surprise.
 */
public class WalRedoException extends Exception {
    private static final long serialVersionUID = 1L;

    private final transient TenantShardId tenant;
    private final int pid;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant the request was for
     * @param pid the sidecar's pid, or 0 when no sidecar was involved
     * @param message what happened and what to do
     * @param cause the underlying failure, or null
     */
    public WalRedoException(TenantShardId tenant, int pid, String message, Throwable cause) {
        super(message, cause);
        this.tenant = Objects.requireNonNull(tenant, "tenant");
        this.pid = pid;
    }

    /** The tenant the failed request was for. */
    public TenantShardId tenant() {
        return tenant;
    }

    /** The pid of the sidecar involved, if one was. */
    public OptionalInt pid() {
        return pid > 0 ? OptionalInt.of(pid) : OptionalInt.empty();
    }
}
