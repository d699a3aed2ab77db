// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/** Why the library killed (or stopped using) a sidecar. Used in logs, metrics and JFR events. */
public enum KillCause {
    /** Idle for at least the idle timeout; the next request respawns it. */
    QUIESCE,
    /** Quiesced early to make room under {@link WalRedoConfig#maxLiveSidecars()}. */
    EVICT,
    /** It crashed, exited, or spoke garbage; the next request respawns it. */
    ERROR,
    /** A request to it passed its deadline, so its state is unknown. */
    TIMEOUT,
    /** Its tenant was detached. */
    DETACH,
    /** The manager shut down. */
    SHUTDOWN
}
