// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * What a child does not inherit from this JVM beyond what every spawn already withholds (fds above 2, the signal mask
 * and dispositions, the environment). Every child is also the leader of a process group of its own, whatever this
 * says: a terminal's ^C or SIGHUP aimed at the JVM's group does not reach it, and {@link ChildProcess#signal} signals
 * the whole group.
 *
 * <p>The working directory and umask are the child's from its first instruction ({@code posix_spawn} file actions and
 * the spawning thread's own umask). Resource limits, {@code oom_score_adj} and the cgroup are set right after the
 * spawn and before {@link NativeRuntime#spawn} completes, so they hold before the child is given any work; a child that dies
 * in between is reported by its exit as usual.
 *
 * @param workingDirectory the child's working directory (absolute), or empty to inherit the JVM's
 * @param umask the child's file mode creation mask (0 to 0777), or empty to inherit the JVM's
 * @param limits resource limits, at most one per resource
 * @param oomScoreAdj the child's {@code /proc/PID/oom_score_adj} (-1000 to 1000; below the JVM's own needs
 *     CAP_SYS_RESOURCE), or empty to inherit the JVM's
 * @param cgroup a cgroup v2 directory (absolute) the child is moved into by writing its pid to {@code cgroup.procs}
 *     right after the spawn, or empty to stay in the JVM's cgroup
 */
public record Containment(
        Optional<Path> workingDirectory,
        OptionalInt umask,
        List<ResourceLimit> limits,
        OptionalInt oomScoreAdj,
        Optional<Path> cgroup) {

    /** Inherit everything that may be inherited (only the process group differs). */
    public static final Containment NONE =
            new Containment(Optional.empty(), OptionalInt.empty(), List.of(), OptionalInt.empty(), Optional.empty());

    /** A containment that leaves the child in the JVM's cgroup. */
    public Containment(
            Optional<Path> workingDirectory, OptionalInt umask, List<ResourceLimit> limits, OptionalInt oomScoreAdj) {
        this(workingDirectory, umask, limits, oomScoreAdj, Optional.empty());
    }

    /**
     * Validates and copies.
     *
     * @throws IllegalArgumentException for a relative directory or cgroup, a umask outside 0..0777, an oom_score_adj
     *     outside -1000..1000, or two limits on one resource
     */
    public Containment {
        Objects.requireNonNull(workingDirectory, "workingDirectory");
        Objects.requireNonNull(cgroup, "cgroup");
        cgroup.ifPresent(d -> {
            if (!d.isAbsolute() || d.toString().indexOf('\0') >= 0) {
                throw new IllegalArgumentException("cgroup must be an absolute path without NUL: " + d);
            }
        });
        Objects.requireNonNull(umask, "umask");
        Objects.requireNonNull(oomScoreAdj, "oomScoreAdj");
        limits = List.copyOf(limits);
        workingDirectory.ifPresent(d -> {
            if (!d.isAbsolute() || d.toString().indexOf('\0') >= 0) {
                throw new IllegalArgumentException("working directory must be an absolute path without NUL: " + d);
            }
        });
        if (umask.isPresent() && (umask.getAsInt() < 0 || umask.getAsInt() > 0777)) {
            throw new IllegalArgumentException(
                    "umask must be within 0..0777: " + Integer.toOctalString(umask.getAsInt()));
        }
        if (oomScoreAdj.isPresent() && Math.abs(oomScoreAdj.getAsInt()) > 1000) {
            throw new IllegalArgumentException("oom_score_adj must be within -1000..1000: " + oomScoreAdj.getAsInt());
        }
        EnumSet<ResourceLimit.Resource> seen = EnumSet.noneOf(ResourceLimit.Resource.class);
        for (ResourceLimit l : limits) {
            if (!seen.add(l.resource())) {
                throw new IllegalArgumentException("two limits on " + l.resource());
            }
        }
    }
}
