// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import java.util.Objects;

/**
 * One resource limit set on a child right after it is spawned ({@code prlimit(2)}), before it is given any work.
 *
 * @param resource which limit
 * @param soft the soft limit (what the child hits), or {@link #UNLIMITED}
 * @param hard the hard limit (the ceiling the child may raise its soft limit to), or {@link #UNLIMITED}; lowering it
 *     is irreversible for the child, raising it above the parent's own needs CAP_SYS_RESOURCE
 */
public record ResourceLimit(Resource resource, long soft, long hard) {

    /** {@code RLIM_INFINITY}. */
    public static final long UNLIMITED = -1L;

    /** The limits this library sets; the numbers are Linux's (x86-64 and aarch64 alike). */
    public enum Resource {
        /** {@code RLIMIT_CPU}: CPU seconds over the process's whole life; SIGXCPU at the soft limit, SIGKILL at the hard. */
        CPU(0),
        /** {@code RLIMIT_CORE}: the largest core file, in bytes; 0 writes none. */
        CORE(4),
        /** {@code RLIMIT_NOFILE}: one more than the highest fd number the process may open. */
        NOFILE(7),
        /** {@code RLIMIT_AS}: the process's virtual address space, in bytes; allocations beyond it fail. */
        AS(9);

        private final int number;

        Resource(int number) {
            this.number = number;
        }

        /** Returns the {@code RLIMIT_*} number. */
        public int number() {
            return number;
        }
    }

    /**
     * Validates.
     *
     * @throws IllegalArgumentException if a limit is negative (other than {@link #UNLIMITED}) or soft exceeds hard
     */
    public ResourceLimit {
        Objects.requireNonNull(resource, "resource");
        if (soft < UNLIMITED || hard < UNLIMITED) {
            throw new IllegalArgumentException(resource + " limit must be >= 0 or UNLIMITED: " + soft + "/" + hard);
        }
        if (hard != UNLIMITED && (soft == UNLIMITED || soft > hard)) {
            throw new IllegalArgumentException(resource + " soft limit " + soft + " exceeds the hard limit " + hard);
        }
    }

    /** A limit whose soft and hard values are both {@code value}. */
    public static ResourceLimit of(Resource resource, long value) {
        return new ResourceLimit(resource, value, value);
    }
}
