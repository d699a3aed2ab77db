// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.TenantShardId;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The tenants a {@code detach} is draining now, counted (two detaches of one tenant may overlap). {@link Drain}
 * marks a tenant before it looks for the tenant's slots; a request that finds no live sidecar checks the mark, under
 * its slot's lock, after the slot is in the map. Both write, then read what the other writes (a concurrent map on
 * each side), so either detach finds the slot or the request finds the mark: a slot created while its tenant is
 * being detached, for a PostgreSQL version the tenant had no slot for yet, is closed before anything is spawned
 * for it, and no sidecar of the tenant outlives the detach.
 */
final class DetachingTenants {
    private final ConcurrentHashMap<TenantShardId, Integer> counts = new ConcurrentHashMap<>();

    void begin(TenantShardId tenant) {
        counts.merge(tenant, 1, Integer::sum);
    }

    void end(TenantShardId tenant) {
        counts.computeIfPresent(tenant, (t, n) -> n == 1 ? null : n - 1);
    }

    boolean contains(TenantShardId tenant) {
        return counts.containsKey(tenant);
    }
}
