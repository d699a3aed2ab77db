// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/** How a {@code redo} call ended: with a page, or with which kind of error. */
public enum RedoOutcome {
    /** A page was returned. */
    OK,
    /** {@link RedoTimeoutException}. */
    TIMEOUT,
    /** {@link SidecarCrashedException}. */
    CRASHED,
    /** {@link ProtocolException}. */
    PROTOCOL,
    /** {@link RedoCancelledException}: detach, shutdown or an interrupt. */
    CANCELLED,
    /** {@link CapacityExhaustedException}: no room under {@code maxLiveSidecars}. */
    CAPACITY,
    /** {@link TenantOverloadedException}: refused by admission. */
    OVERLOADED,
    /** {@link SpawnFailedException}. */
    SPAWN_FAILED,
    /** {@link ManagerClosedException}: the call came after shutdown. */
    CLOSED,
    /** Anything else: another {@link WalRedoException}, or an {@link Error} such as {@link OutOfMemoryError}. */
    ERROR;

    /** The outcome of a call that ended with {@code thrown} (null: it returned a page). */
    public static RedoOutcome of(Throwable thrown) {
        return switch (thrown) {
            case null -> OK;
            case RedoTimeoutException e -> TIMEOUT;
            case SidecarCrashedException e -> CRASHED;
            case ProtocolException e -> PROTOCOL;
            case RedoCancelledException e -> CANCELLED;
            case CapacityExhaustedException e -> CAPACITY;
            case TenantOverloadedException e -> OVERLOADED;
            case SpawnFailedException e -> SPAWN_FAILED;
            case ManagerClosedException e -> CLOSED;
            default -> ERROR;
        };
    }
}
