// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.time.Instant;
import java.util.Optional;

/**
 * A point-in-time view of one live sidecar, from {@link WalRedoManager#status()}.
 *
 * @param tenant whose sidecar it is
 * @param pgVersion the PostgreSQL major version it runs
 * @param pid its process id
 * @param startedAt when it was spawned
 * @param lastRedoAt when its last request finished, if any has
 * @param inFlight requests currently using it
 */
public record SidecarStatus(TenantShardId tenant, int pgVersion, int pid, Instant startedAt,
        Optional<Instant> lastRedoAt, int inFlight) {
}
