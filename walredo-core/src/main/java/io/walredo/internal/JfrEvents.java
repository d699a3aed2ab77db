// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;

/**
 * JFR events for spawns, redos and kills, so a flight recording shows where a slow page came from.
 * Committing a disabled event costs one branch.
 */
final class JfrEvents {
    private JfrEvents() {
    }

    @Name("io.walredo.SidecarSpawn")
    @Label("WAL Redo Sidecar Spawn")
    @Category({"WAL Redo"})
    @Description("posix_spawn of one postgres --wal-redo sidecar")
    static final class SpawnEvent extends Event {
        @Label("Tenant")
        String tenant;
        @Label("PID")
        int pid;
        @Label("Succeeded")
        boolean succeeded;
    }

    @Name("io.walredo.Redo")
    @Label("WAL Redo")
    @Category({"WAL Redo"})
    @Description("One redo call: from entry to the page (or the error), including spawn and retries")
    static final class RedoEvent extends Event {
        @Label("Tenant")
        String tenant;
        @Label("Records")
        int records;
        @Label("Request Bytes")
        int requestBytes;
        @Label("Attempts")
        int attempts;
        @Label("Succeeded")
        boolean succeeded;
    }

    @Name("io.walredo.SidecarKill")
    @Label("WAL Redo Sidecar Kill")
    @Category({"WAL Redo"})
    @Description("A sidecar was killed or found dead")
    static final class KillEvent extends Event {
        @Label("Tenant")
        String tenant;
        @Label("PID")
        int pid;
        @Label("Cause")
        String cause;
    }

    @Name("io.walredo.RedoRefused")
    @Label("WAL Redo Refused")
    @Category({"WAL Redo"})
    @Description("A request refused at once because its tenant's sidecar was overloaded")
    static final class RefusedEvent extends Event {
        @Label("Tenant")
        String tenant;
        @Label("PID")
        int pid;
        @Label("Reason")
        String reason;
    }

    static void refused(TenantShardId tenant, int pid, TenantOverloadedException.Reason reason) {
        RefusedEvent e = new RefusedEvent();
        if (e.isEnabled()) {
            e.tenant = tenant.toString();
            e.pid = pid;
            e.reason = reason.name();
            e.commit();
        }
    }

    static void kill(TenantShardId tenant, int pid, KillCause cause) {
        KillEvent e = new KillEvent();
        if (e.isEnabled()) {
            e.tenant = tenant.toString();
            e.pid = pid;
            e.cause = cause.name();
            e.commit();
        }
    }
}
