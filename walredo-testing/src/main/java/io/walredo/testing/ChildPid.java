// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A child process of this JVM, named by its pid and its start time, so that a pid the kernel has since given to
 * another process is never mistaken for it: what a test or a soak needs to play the OOM killer ({@code SIGKILL}) or a
 * stopped machine ({@code SIGSTOP}, later {@code SIGCONT}) against a sidecar whose pid
 * {@code WalRedoManager.status()} reported.
 *
 * <p>The library owns its sidecars: it kills and reaps them, and the kernel then hands their pids out again. A
 * signal from outside races with that. {@link #signal} therefore opens a pidfd for the pid first and checks the start
 * time after: a pidfd pins the process it was opened for, so when the check passes the signal reaches this very
 * process, or nobody if it has exited since, never a process that reused the pid. Nothing here waits for, reaps or
 * otherwise takes over the process.
 *
 * <p>Linux only: reads {@code /proc/PID/stat} (see proc_pid_stat(5)) and signals through pidfd_open(2) and
 * pidfd_send_signal(2) (Linux 5.3 and glibc 2.36, the floor walredo-native already has). It starts no thread, unlike
 * {@link ProcessBuilder} running {@code kill}, whose process reaper thread would stay behind and break a soak's
 * "platform threads return to baseline" check. Immutable; any thread may call any method.
 *
 * @param pid the process id, above 0
 * @param startTime field 22 of {@code /proc/PID/stat}: when the process started, in clock ticks after boot; two
 *     processes that had the same pid have different start times unless both started within one tick
 */
public record ChildPid(int pid, long startTime) {

    /**
     * Validates.
     *
     * @throws IllegalArgumentException if {@code pid} is not above 0 or {@code startTime} is negative
     */
    public ChildPid {
        if (pid <= 0) {
            throw new IllegalArgumentException("pid must be above 0, got " + pid);
        }
        if (startTime < 0) {
            throw new IllegalArgumentException("startTime must be 0 or more, got " + startTime + " for pid " + pid);
        }
    }

    /** The signals a test sends to a sidecar. Numbers are the platform's (jnr-constants). */
    public enum Signal {
        /** Asks the process to end; the fake ignores it with {@code --ignore-sigterm}. */
        SIGTERM,
        /** Ends the process at once; it cannot be caught or ignored, as when the OOM killer strikes. */
        SIGKILL,
        /** Stops the process, pipes open, until {@link #SIGCONT}; it cannot be caught or ignored. */
        SIGSTOP,
        /** Lets a stopped process run again. */
        SIGCONT;

        int number() {
            jnr.constants.platform.Signal s = jnr.constants.platform.Signal.valueOf(name());
            if (!s.defined()) {
                throw new IllegalStateException(name() + " has no number on this platform");
            }
            return s.intValue();
        }
    }

    /**
     * Returns the process {@code pid} if it is a running child of this JVM.
     *
     * @param pid a process id, for example a sidecar's from {@code WalRedoManager.status()}
     * @return the child with its start time; empty if there is no such process, it is not a child of this JVM, or it
     *     is a zombie (exited, not yet reaped)
     */
    public static Optional<ChildPid> of(int pid) {
        if (pid <= 0) {
            return Optional.empty();
        }
        return Stat.read(pid).filter(Stat::runningChildOfThisJvm).map(s -> new ChildPid(pid, s.startTime()));
    }

    /**
     * Tells whether this process is still running: {@code pid} is a child of this JVM, not a zombie, and started at
     * {@link #startTime} (so it is not another process that reused the pid). A snapshot of {@code /proc}: the process
     * may exit right after.
     *
     * @return whether it was running when {@code /proc/PID/stat} was read
     */
    public boolean isRunning() {
        return Stat.read(pid)
                .filter(s -> s.runningChildOfThisJvm() && s.startTime() == startTime)
                .isPresent();
    }

    /**
     * Sends {@code signal} to this process if, and only if, it is still running ({@link #isRunning}, checked after a
     * pidfd has pinned the process). Does not wait for the process to act on it.
     *
     * @param signal the signal
     * @return true if the signal was sent to this process (one that became a zombie in the meantime ignores it);
     *     false if it is no longer running: nothing was sent
     * @throws IllegalStateException if pidfd_open or pidfd_send_signal fails for another reason than the process
     *     being gone; the message names the errno and what to check
     */
    public boolean signal(Signal signal) {
        return Pidfd.sendIf(pid, signal.name(), signal.number(), this::isRunning);
    }

    /**
     * The fields of {@code /proc/PID/stat} this class reads. The command name (field 2) is in parentheses and may
     * contain spaces and parentheses itself, so the fields after it are counted from its last ')'.
     */
    private record Stat(char state, long ppid, long startTime) {
        /** Index of start time (field 22) among the fields after the command name (field 3, the state, is 0). */
        private static final int START_TIME = 19;

        static Optional<Stat> read(int pid) {
            String stat;
            try {
                stat = Files.readString(Path.of("/proc", Integer.toString(pid), "stat"));
            } catch (IOException e) {
                // No such process (any more), or /proc is not mounted: either way not a running child.
                return Optional.empty();
            }
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Optional.of(new Stat(f[0].charAt(0), Long.parseLong(f[1]), Long.parseLong(f[START_TIME])));
        }

        boolean runningChildOfThisJvm() {
            // Z: a zombie, exited and not yet reaped; X: dead, being torn down.
            return ppid == ProcessHandle.current().pid() && state != 'Z' && state != 'X';
        }
    }
}
