// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.util.List;
import java.util.Optional;

/**
 * The sidecar died or closed its pipes while serving the request. The message carries its exit status
 * (exit code or signal) and its last stderr lines; the next request respawns it.
 */
public final class SidecarCrashedException extends WalRedoException {
    private static final long serialVersionUID = 1L;

    private final String exitStatus;
    private final List<String> stderrTail;

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
    public SidecarCrashedException(TenantShardId tenant, int pid, String exitStatus, List<String> stderrTail,
            String message, Throwable cause) {
        super(tenant, pid, message, cause);
        this.exitStatus = exitStatus;
        this.stderrTail = List.copyOf(stderrTail);
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
