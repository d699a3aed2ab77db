// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * A point-in-time view of one live sidecar, from {@link WalRedoManager#status()}.
 *
 * <p>{@code status()} reads each listed sidecar's {@link #memory()} on the calling thread when it is called (never
 * on a request's path): the kernel builds {@code /proc/PID/smaps_rollup} by walking the process's page tables,
 * which costs tens of microseconds for a small process and more for a larger one, so a {@code status()} of
 * thousands of sidecars takes milliseconds.
 *
 * @param tenant whose sidecar it is
 * @param pgVersion the PostgreSQL major version it runs
 * @param pid its process id
 * @param startedAt when it was spawned
 * @param lastRedoAt when its last request finished, if any has
 * @param inFlight requests currently using it
 * @param memory its resident memory as the kernel reported it during this {@code status()} call; empty ("unknown")
 *     when it could not be read: the process exited (or was killed) between being listed and being read,
 *     {@code /proc} is restricted or the kernel refuses read access to the file (a security module, a non-dumpable
 *     process), or the kernel predates {@code smaps_rollup} (Linux 4.14)
 */
public record SidecarStatus(
        TenantShardId tenant,
        int pgVersion,
        int pid,
        Instant startedAt,
        Optional<Instant> lastRedoAt,
        int inFlight,
        Optional<Memory> memory) {

    /** Checks that the optional components are present as {@code Optional}s, never null. */
    public SidecarStatus {
        Objects.requireNonNull(lastRedoAt, "lastRedoAt");
        Objects.requireNonNull(memory, "memory");
    }

    /**
     * Resident memory in bytes, from the {@code Rss:} and {@code Pss:} lines of {@code /proc/PID/smaps_rollup}
     * (see proc(5); the kernel reports kB, multiplied here by 1024): of one process in {@link SidecarStatus}, summed
     * over the sidecars measured in {@link WalRedoMetrics#sidecarMemory()}.
     *
     * <p>Sidecars are separate {@code postgres} processes started from one executable, so they share its text and
     * its shared libraries' pages. RSS counts every resident page a process maps in full, shared or not, so RSS
     * summed over sidecars counts those shared pages once per sidecar and overstates what they use together. PSS
     * divides each page by the number of processes mapping it, so PSS summed over all the processes mapping a page
     * counts it once: the sum over the sidecars is what they cost the machine (their shares of pages also mapped
     * elsewhere included). PSS of one sidecar changes when other processes start or stop mapping the same pages.
     *
     * @param rssBytes resident set size: every resident page the process maps, shared pages in full; at least 0
     * @param pssBytes proportional set size: each resident page divided by the number of processes mapping it;
     *     at least 0, and as the kernel computes it never more than {@code rssBytes}
     */
    public record Memory(long rssBytes, long pssBytes) {

        /** Rejects negative sizes. */
        public Memory {
            if (rssBytes < 0 || pssBytes < 0) {
                throw new IllegalArgumentException(
                        "memory sizes must not be negative: rssBytes=" + rssBytes + ", pssBytes=" + pssBytes);
            }
        }
    }
}
