// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * The sidecar died or closed its pipes while serving the request. The message carries its exit status
 * (exit code or signal) and its last stderr lines; the next request respawns it. {@link #exitCode()} and {@link
 * #signal()} give the status without parsing text: a {@code signal()} of 9 (SIGKILL) on a sidecar that died on its
 * own (the library reports its own kills as cancellations or timeouts, never as crashes) means the kernel's OOM
 * killer, or an operator, killed it.
 */
public final class SidecarCrashedException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    private final String exitStatus;
    private final List<String> stderrTail;
    /** Exit code, or -1 if it did not exit normally (or was still alive). */
    private final int exitCode;
    /** Fatal signal, or 0 if none (or still alive). */
    private final int signal;

    private final boolean coreDumped;

    /**
     * Creates the exception.
     *
     * @param tenant the tenant
     * @param pid the sidecar's pid
     * @param exitStatus how it ended, e.g. "signal 11 (SIGSEGV)", or null if it was still alive
     * @param stderrTail its last stderr lines, oldest first
     * @param message the full message
     * @param cause the I/O failure that revealed it, or null
     */
    public SidecarCrashedException(
            TenantShardId tenant,
            int pid,
            String exitStatus,
            List<String> stderrTail,
            String message,
            Throwable cause) {
        this(tenant, pid, exitStatus, OptionalInt.empty(), OptionalInt.empty(), false, stderrTail, message, cause);
    }

    /**
     * Creates the exception with the exit status as numbers.
     *
     * @param tenant the tenant
     * @param pid the sidecar's pid
     * @param exitStatus how it ended, e.g. "signal 11 (SIGSEGV)", or null if it was still alive
     * @param exitCode its exit code if it exited normally
     * @param signal the signal that ended it, if one did
     * @param coreDumped whether that signal produced a core dump
     * @param stderrTail its last stderr lines, oldest first
     * @param message the full message
     * @param cause the I/O failure that revealed it, or null
     */
    public SidecarCrashedException(
            TenantShardId tenant,
            int pid,
            String exitStatus,
            OptionalInt exitCode,
            OptionalInt signal,
            boolean coreDumped,
            List<String> stderrTail,
            String message,
            Throwable cause) {
        super(tenant, pid, message, cause);
        this.exitStatus = exitStatus;
        this.stderrTail = List.copyOf(stderrTail);
        this.exitCode = exitCode.orElse(-1);
        this.signal = signal.orElse(0);
        this.coreDumped = coreDumped;
    }

    /** The exit code, if the sidecar exited normally (by {@code exit}) before this was raised. */
    public OptionalInt exitCode() {
        return exitCode >= 0 ? OptionalInt.of(exitCode) : OptionalInt.empty();
    }

    /** The signal that ended the sidecar (e.g. 11 for SIGSEGV, 9 for SIGKILL), if one did before this was raised. */
    public OptionalInt signal() {
        return signal > 0 ? OptionalInt.of(signal) : OptionalInt.empty();
    }

    /** Whether the signal that ended the sidecar produced a core dump (see {@code WalRedoConfig.sidecarCoreDumps}). */
    public boolean coreDumped() {
        return coreDumped;
    }

    /** How the sidecar ended ("exit code 1", "signal 9 (SIGKILL)"), if it had ended when this was raised. */
    public Optional<String> exitStatus() {
        return Optional.ofNullable(exitStatus);
    }

    /** The sidecar's last stderr lines, oldest first (bounded by {@link WalRedoConfig#stderrTailLines()}). */
    public List<String> stderrTail() {
        return stderrTail;
    }
}
