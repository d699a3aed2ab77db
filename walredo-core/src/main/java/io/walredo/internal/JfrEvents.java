// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Threshold;
import jdk.jfr.Timespan;

/**
 * JFR events for spawns, redos and kills, so a flight recording shows where a slow page came from.
 * Committing a disabled event costs one branch. Cheap in a continuous recording: no event records a stack trace
 * (its thread and time say where it came from), and {@code io.walredo.Redo}, the only per-request event that is
 * enabled by default, is recorded only for calls of {@link #REDO_THRESHOLD} or longer (a recording's settings may
 * lower it: {@code jfr configure io.walredo.Redo#threshold=0 ms}). Spawns, kills and refusals are rare and always
 * recorded.
 */
final class JfrEvents {
    /** The default threshold of {@code io.walredo.Redo}: a warm short redo takes tens of microseconds. */
    static final String REDO_THRESHOLD = "1 ms";

    private JfrEvents() {}

    @Name("io.walredo.SidecarSpawn")
    @Label("WAL Redo Sidecar Spawn")
    @Category({"WAL Redo"})
    @Description("posix_spawn of one postgres --wal-redo sidecar")
    @StackTrace(false)
    static final class SpawnEvent extends Event {
        @Label("Tenant")
        @Description("The tenant shard, or \"spare\" for a warm spare spawned before any tenant asked for it")
        String tenant;

        @Label("PostgreSQL Version")
        int pgVersion;

        @Label("PID")
        int pid;

        @Label("Succeeded")
        boolean succeeded;
    }

    @Name("io.walredo.Redo")
    @Label("WAL Redo")
    @Category({"WAL Redo"})
    @Description("One redo call: from entry to the page (or the error), including spawn and retries")
    @StackTrace(false)
    @Threshold(REDO_THRESHOLD)
    static final class RedoEvent extends Event {
        @Label("Tenant")
        String tenant;

        @Label("PostgreSQL Version")
        int pgVersion;

        @Label("Attempt Type")
        @Description("READ_PAGE, LEGACY_COMPACTION or GC_COMPACTION: how many retries the call allowed")
        String attemptType;

        @Label("Records")
        int records;

        @Label("Request Bytes")
        @DataAmount
        int requestBytes;

        @Label("Attempts")
        int attempts;

        @Label("Succeeded")
        boolean succeeded;

        @Label("Outcome")
        @Description("ok, or the error: a RedoOutcome in lower case (timeout, crashed, protocol, cancelled,"
                + " capacity, overloaded, spawn_failed, closed, error)")
        String outcome;

        @Label("Spawn Wait")
        @Description("How long the call waited for its tenant's sidecar to start (0 if one was live or a warm spare"
                + " was handed over)")
        @Timespan(Timespan.NANOSECONDS)
        long spawnWait;
    }

    @Name("io.walredo.SpareAssigned")
    @Label("WAL Redo Spare Assigned")
    @Category({"WAL Redo"})
    @Description("A warm spare sidecar was handed to a tenant: from here on its pid serves that tenant")
    @StackTrace(false)
    static final class SpareAssignedEvent extends Event {
        @Label("Tenant")
        String tenant;

        @Label("PostgreSQL Version")
        int pgVersion;

        @Label("PID")
        int pid;
    }

    @Name("io.walredo.SidecarKill")
    @Label("WAL Redo Sidecar Kill")
    @Category({"WAL Redo"})
    @Description("A sidecar was killed or found dead")
    @StackTrace(false)
    static final class KillEvent extends Event {
        @Label("Tenant")
        @Description("The tenant shard, or \"spare\" for a warm spare never handed to one")
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
    @StackTrace(false)
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

    static void spareAssigned(SidecarKey key, int pid) {
        SpareAssignedEvent e = new SpareAssignedEvent();
        if (e.isEnabled()) {
            e.tenant = key.tenant().toString();
            e.pgVersion = key.pgVersion();
            e.pid = pid;
            e.commit();
        }
    }

    /** A tenant's name in events: {@code "spare"} for a warm spare not yet handed to a tenant. */
    static String name(TenantShardId tenant) {
        return tenant == null ? "spare" : tenant.toString();
    }

    static void kill(TenantShardId tenant, int pid, KillCause cause) {
        KillEvent e = new KillEvent();
        if (e.isEnabled()) {
            e.tenant = name(tenant);
            e.pid = pid;
            e.cause = cause.name();
            e.commit();
        }
    }
}
