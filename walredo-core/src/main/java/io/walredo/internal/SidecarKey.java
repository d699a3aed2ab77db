// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.TenantShardId;
import java.util.Objects;

/** Which sidecar serves a request: one per tenant shard and PostgreSQL major version. */
record SidecarKey(TenantShardId tenant, int pgVersion) {
    SidecarKey {
        Objects.requireNonNull(tenant, "tenant");
    }

    @Override
    public String toString() {
        return tenant + " (pg" + pgVersion + ")";
    }
}
