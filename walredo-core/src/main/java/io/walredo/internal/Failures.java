// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.CapacityExhaustedException;
import io.walredo.KillCause;
import io.walredo.ProtocolException;
import io.walredo.RedoCancelledException;
import io.walredo.RedoTimeoutException;
import io.walredo.SidecarCrashedException;
import io.walredo.SpawnFailedException;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoException;
import io.walredo.nativeio.ExitStatus;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;

/**
 * The typed errors of one sidecar's requests: what happened, to which tenant and pid, and what to do. Pure
 * message building, no state; {@link Sidecar} decides which one applies.
 */
final class Failures {
    /**
     * The tenant a warm spare's errors carry: they never reach a caller (nothing is sent to a spare before it is
     * handed to a tenant, which replaces its {@code Failures}); they only feed logs and the pool's back-off.
     */
    static final TenantShardId NO_TENANT = TenantShardId.of(0, 0);

    private final TenantShardId tenant;
    /** "tenant ID", or what a spare is, for messages. */
    private final String who;

    private final int pid;

    Failures(SidecarKey key, int pid) {
        this.tenant = key.isSpare() ? NO_TENANT : key.tenant();
        this.who = key.isSpare() ? "a warm spare (pg" + key.pgVersion() + ", no tenant yet)" : "tenant " + key.tenant();
        this.pid = pid;
    }

    /** The caller's own deadline passed; the sidecar is left alone. */
    RedoTimeoutException callerTimeout(String what, Duration stallTimeout, Throwable cause) {
        return new RedoTimeoutException(
                tenant,
                pid,
                "walredo request for " + who + " timed out " + what
                        + " (sidecar pid " + pid + "). The request's deadline passed; the sidecar keeps serving and is"
                        + " killed only if it makes no progress for stallTimeout (" + stallTimeout
                        + "). If this repeats,"
                        + " give the request more time or look at the sidecar's stderr",
                cause);
    }

    /** Refused at once: the sidecar's queue is full, or the answers ahead would outlast the caller's deadline. */
    TenantOverloadedException overloaded(
            TenantOverloadedException.Reason reason,
            int queued,
            int owed,
            Duration expectedWait,
            Duration remaining,
            int margin,
            int maxQueued,
            String basis) {
        String why = switch (reason) {
            case QUEUE_BOUND ->
                queued + " requests were already queued or in flight on it (maxQueuedPerTenant " + maxQueued + ")";
            case EXPECTED_WAIT ->
                "the " + owed + " answers owed ahead of it are expected to take "
                        + expectedWait.toMillis() + " ms, "
                        + (margin == 1
                                ? "longer than the request's remaining " + remaining.toMillis() + " ms"
                                : "more than " + margin + " times the request's remaining " + remaining.toMillis()
                                        + " ms (the sidecar's recent answer times vary, or the estimate rests on the"
                                        + " answer in progress, so a refusal needs that margin)")
                        + "; " + basis;
        };
        return new TenantOverloadedException(
                tenant,
                pid,
                reason,
                queued,
                expectedWait,
                "walredo request for tenant "
                        + tenant + " was refused at once because its sidecar (pid " + pid + ") is overloaded: " + why
                        + ". Nothing was sent. Shed the request or retry it later; if the tenant is always this slow,"
                        + " look at its sidecar's stderr");
    }

    /** The sidecar owed answers and made no progress for the stall limit: it was killed as stuck. */
    RedoTimeoutException stalled(String what, Duration stallTimeout) {
        return new RedoTimeoutException(
                tenant,
                pid,
                "walredo sidecar for " + who + " (pid " + pid
                        + ") made no progress for stallTimeout (" + stallTimeout + ") " + what
                        + "; it was killed as stuck"
                        + " and the next request respawns it. Check its stderr; raise stallTimeout only if redo is"
                        + " legitimately that slow",
                null);
    }

    RedoCancelledException cancelled(String why, Throwable cause) {
        return new RedoCancelledException(
                tenant, pid, "walredo request for " + who + " (sidecar pid " + pid + ") was cancelled: " + why, cause);
    }

    RedoCancelledException killed(KillCause cause) {
        return cancelled("the sidecar was killed: " + describe(cause), null);
    }

    /** {@code status}: how it ended, or null if it was still alive. */
    SidecarCrashedException crashed(
            String how, ExitStatus status, List<String> tail, String during, int partial, Throwable cause) {
        boolean exited = status != null && status.exited();
        boolean signalled = status != null && status.signal() > 0;
        return new SidecarCrashedException(
                tenant,
                pid,
                status == null ? null : status.toString(),
                exited ? OptionalInt.of(status.exitCode()) : OptionalInt.empty(),
                signalled ? OptionalInt.of(status.signal()) : OptionalInt.empty(),
                signalled && status.coreDumped(),
                tail,
                "walredo sidecar for " + who
                        + " (pid " + pid + ") " + how + (during.isEmpty() ? "" : " while " + during)
                        + (partial > 0 ? " (" + partial + " of " + Sidecar.PAGE_BYTES + " answer bytes arrived)" : "")
                        + tailText(tail) + ". The next request respawns it"
                        + (cause != null && cause.getMessage() != null ? " (" + cause.getMessage() + ")" : ""),
                cause);
    }

    ProtocolException shortAnswer(int got, String exitStatus, List<String> tail) {
        return new ProtocolException(
                tenant,
                pid,
                "walredo sidecar for " + who + " (pid " + pid
                        + ") answered " + got + " of " + Sidecar.PAGE_BYTES + " bytes and then closed its stdout"
                        + (exitStatus != null ? "; it ended with " + exitStatus : "") + tailText(tail)
                        + ". It was killed; the next request respawns it",
                null);
    }

    /** Output nobody asked for: {@code bytes} while no answer was owed, or a whole page beyond what was owed. */
    ProtocolException unsolicited(String what) {
        return new ProtocolException(
                tenant,
                pid,
                "walredo sidecar for " + who + " (pid " + pid
                        + ") wrote " + what + " while no answer was owed, which the protocol forbids (its output can no"
                        + " longer be matched to requests); it was killed and the next request respawns it",
                null);
    }

    static String tailText(List<String> tail) {
        return tail.isEmpty() ? "; it wrote nothing to stderr" : "; last stderr: " + String.join(" | ", tail);
    }

    static String describe(KillCause cause) {
        return switch (cause) {
            case QUIESCE -> "idle for longer than the idle timeout";
            case EVICT -> "evicted to make room under maxLiveSidecars";
            case ERROR -> "it failed";
            case TIMEOUT -> "it made no progress for stallTimeout";
            case DETACH -> "its tenant was detached";
            case SHUTDOWN -> "the manager shut down";
        };
    }

    /** Each caller gets its own exception object (with its own stack trace), keeping the shared one as cause. */
    static WalRedoException copy(WalRedoException f) {
        int pid = f.pid().orElse(0);
        if (f instanceof SidecarCrashedException s) {
            return new SidecarCrashedException(
                    s.tenant(),
                    pid,
                    s.exitStatus().orElse(null),
                    s.exitCode(),
                    s.signal(),
                    s.coreDumped(),
                    s.stderrTail(),
                    s.getMessage(),
                    s);
        }
        if (f instanceof ProtocolException) {
            return new ProtocolException(f.tenant(), pid, f.getMessage(), f);
        }
        if (f instanceof RedoTimeoutException) {
            return new RedoTimeoutException(f.tenant(), pid, f.getMessage(), f);
        }
        if (f instanceof RedoCancelledException) {
            return new RedoCancelledException(f.tenant(), pid, f.getMessage(), f);
        }
        if (f instanceof SpawnFailedException) {
            return new SpawnFailedException(f.tenant(), f.getMessage(), f);
        }
        if (f instanceof CapacityExhaustedException) {
            return new CapacityExhaustedException(f.tenant(), f.getMessage(), f);
        }
        return new WalRedoException(f.tenant(), pid, f.getMessage(), f);
    }
}
