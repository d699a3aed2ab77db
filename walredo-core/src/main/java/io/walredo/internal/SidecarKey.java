// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.TenantShardId;

/**
 * Which sidecar serves a request: one per tenant shard and PostgreSQL major version. A warm spare, spawned before
 * any tenant asked for it, has no tenant ({@link #spare}) until it is handed to one.
 */
record SidecarKey(TenantShardId tenant, int pgVersion) {
    /** The key of a warm spare for {@code pgVersion}: no tenant yet. */
    static SidecarKey spare(int pgVersion) {
        return new SidecarKey(null, pgVersion);
    }

    /** Whether this names a spare not yet handed to a tenant. */
    boolean isSpare() {
        return tenant == null;
    }

    @Override
    public String toString() {
        return (tenant == null ? "spare" : tenant.toString()) + " (pg" + pgVersion + ")";
    }
}
