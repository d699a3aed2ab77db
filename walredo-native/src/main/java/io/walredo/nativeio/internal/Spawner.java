// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.Containment;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.ResourceLimit;
import io.walredo.nativeio.SpawnException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts a child with glibc's {@code posix_spawn} (clone(CLONE_VM|CLONE_VFORK) + execve: no copy of the JVM's page
 * tables, no Java code between fork and exec) so that it gets exactly fds 0, 1, 2, an empty signal mask, default
 * signal dispositions and exactly the given environment.
 *
 * <ul>
 *   <li>fds: all three pipes are created O_CLOEXEC; file actions dup2 the child's ends onto 0, 1, 2 (dup2 clears
 *       close-on-exec on the copy) and {@code addclosefrom_np(3)} closes everything else in the child, including
 *       fds the host leaked without O_CLOEXEC. glibc implements closefrom with {@code close_range(2)}, one syscall
 *       whatever the number of open fds (closing them one by one is what made Neon's cold starts take seconds).
 *       Without {@code addclosefrom_np} (glibc &lt; 2.34) a warning is logged once and close-on-exec alone keeps this
 *       library's fds out of the child; fds the host leaked without O_CLOEXEC are then inherited.
 *   <li>signals: POSIX_SPAWN_SETSIGMASK with an empty set unblocks everything the spawning JVM thread blocks
 *       (SIGQUIT, ...); POSIX_SPAWN_SETSIGDEF with signals 1..64 resets every disposition to SIG_DFL. The set is
 *       written bit by bit because glibc's {@code sigfillset} leaves out its internal signals 32 and 33, which
 *       posix_spawn then sets to SIG_IGN in the child.
 *   <li>environment and argv: NUL-terminated arrays built here in native memory; nothing is inherited.
 *   <li>process group: POSIX_SPAWN_SETPGROUP with 0 makes the child the leader of a new group, so signals aimed at
 *       the JVM's group (a terminal's ^C, ^Z, SIGHUP) do not reach it, and its own children can be signalled with
 *       it (see {@link Reaper}).
 *   <li>{@link Containment}: the working directory is a file action ({@code addchdir_np}, glibc &gt;= 2.29). The
 *       umask has no file action, so the spawning thread first gives itself a filesystem context of its own
 *       ({@code unshare(CLONE_FS)}), then sets its umask around the posix_spawn call: the child inherits it, and
 *       the rest of the JVM never sees it. Resource limits ({@code prlimit}), {@code oom_score_adj} and the
 *       cgroup ({@code cgroup.procs}) are set after the spawn, before this method returns; if that fails the child
 *       is killed and reaped.
 * </ul>
 *
 * <p>posix_spawn blocks the calling thread until the child has exec'd (or failed to), so only the runtime's spawner
 * platform threads call {@link #spawn}, never a virtual thread's carrier. Exec failures (ENOENT, EACCES, ENOEXEC)
 * come back as posix_spawn's return value and glibc reaps that child itself. Thread-safe. Internal API.
 */
public final class Spawner {

    /** A started child: its pid (not yet reaped), its pidfd, and the parent's three non-blocking pipe ends. */
    public record Spawned(int pid, int pidfd, int stdin, int stdout, int stderr) {}

    private static final Logger log = LoggerFactory.getLogger(Spawner.class);

    // glibc x86-64/aarch64 sizes are 80, 336 and 128 bytes; the first two get slack in case a future glibc grows them.
    private static final int FILE_ACTIONS_BYTES = 256;
    private static final int ATTR_BYTES = 512;
    private static final int SIGSET_BYTES = 128;
    private static final int POINTER_BYTES = 8;
    /** struct rlimit: two 64-bit values, soft then hard. */
    private static final int RLIMIT_BYTES = 16;

    private static final int FIRST_NON_STDIO_FD = 3;
    private static final long REAP_POLL_MIN_NANOS = TimeUnit.MICROSECONDS.toNanos(50);
    private static final long REAP_POLL_MAX_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    private static final long LATE_REAP_POLL_NANOS = TimeUnit.SECONDS.toNanos(1);

    /**
     * How long a spawner thread waits for a child it abandons (setup failed after posix_spawn) to be reaped after
     * SIGKILL; normally well under a millisecond. Past it the child is reaped in the background.
     */
    public static final Duration ABANDON_REAP_LIMIT = Duration.ofSeconds(1);

    private final NativeLibrary nl = NativeLibrary.get();
    private final LibC libc = nl.libc();
    private final boolean closefrom;

    /** Probes for {@code posix_spawn_file_actions_addclosefrom_np}; logs a warning if it is missing. */
    public Spawner() {
        this.closefrom = probeClosefrom();
        if (!closefrom) {
            log.atWarn()
                    .log(
                            "posix_spawn_file_actions_addclosefrom_np is missing (glibc < 2.34): sidecars inherit any fd this"
                                    + " process opened without O_CLOEXEC");
        }
    }

    /** Returns true if children are spawned with every fd above 2 closed. */
    public boolean closesInheritedFds() {
        return closefrom;
    }

    /**
     * Spawns {@code executable}. On success the caller owns the returned pid (it must be reaped) and fds. On failure
     * nothing is left: every fd opened here is closed, and a child that started is killed and reaped.
     *
     * @throws SpawnException naming the executable, the call and its errno
     */
    public Spawned spawn(Path executable, List<String> argv, Map<String, String> environment) throws SpawnException {
        return spawn(executable, argv, environment, Containment.NONE);
    }

    /**
     * As {@link #spawn(Path, List, Map)}, contained as {@code containment} says.
     *
     * @throws SpawnException naming the executable, the call and its errno (for example ENOSYS if glibc lacks {@code
     *     addchdir_np}, EPERM from {@code prlimit} raising a hard limit, EACCES writing a lower {@code oom_score_adj})
     */
    public Spawned spawn(Path executable, List<String> argv, Map<String, String> environment, Containment containment)
            throws SpawnException {
        byte[] path = NativeMemory.utf8(executable.toString());
        byte[] directory = containment
                .workingDirectory()
                .map(d -> NativeMemory.utf8(d.toString()))
                .orElse(null);
        byte[][] args = argv.stream().map(NativeMemory::utf8).toArray(byte[][]::new);
        byte[][] env = environment.entrySet().stream()
                .map(e -> NativeMemory.utf8(e.getKey() + "=" + e.getValue()))
                .toArray(byte[][]::new);
        long size = NativeMemory.footprint(FILE_ACTIONS_BYTES)
                + NativeMemory.footprint(ATTR_BYTES)
                + 2 * NativeMemory.footprint(SIGSET_BYTES)
                + NativeMemory.footprint(4)
                + NativeMemory.footprint(8)
                + NativeMemory.footprint((long) (args.length + 1) * POINTER_BYTES)
                + NativeMemory.footprint((long) (env.length + 1) * POINTER_BYTES)
                + NativeMemory.footprint(path.length + 1L)
                + (directory == null ? 0 : NativeMemory.footprint(directory.length + 1L))
                + NativeMemory.footprint(RLIMIT_BYTES)
                + Arrays.stream(args)
                        .mapToLong(a -> NativeMemory.footprint(a.length + 1L))
                        .sum()
                + Arrays.stream(env)
                        .mapToLong(a -> NativeMemory.footprint(a.length + 1L))
                        .sum();

        // stdin read, stdin write, stdout read, stdout write, stderr read, stderr write; -1 once closed or handed over.
        int[] fds = {-1, -1, -1, -1, -1, -1};
        int pid = -1;
        try (NativeMemory mem = new NativeMemory(size)) {
            long pipe = mem.allocate(8);
            for (int i = 0; i < 3; i++) {
                if (libc.pipe2(pipe, Linux.O_CLOEXEC) != 0) {
                    throw new SpawnException(executable, "pipe2", nl.errno());
                }
                fds[2 * i] = mem.getInt(pipe);
                fds[2 * i + 1] = mem.getInt(pipe + 4);
            }
            int stdinChild = fds[0] = aboveStdio(executable, fds[0]);
            int stdoutChild = fds[3] = aboveStdio(executable, fds[3]);
            int stderrChild = fds[5] = aboveStdio(executable, fds[5]);
            // The parent's ends are separate open file descriptions from the child's, so O_NONBLOCK set here never
            // reaches the child, and setting it before the spawn leaves fewer steps that can fail after it.
            setNonBlocking(executable, fds[1]);
            setNonBlocking(executable, fds[2]);
            setNonBlocking(executable, fds[4]);

            long fileActions = mem.allocate(FILE_ACTIONS_BYTES);
            long attr = mem.allocate(ATTR_BYTES);
            long emptyMask = mem.allocate(SIGSET_BYTES);
            long allSignals = mem.allocate(SIGSET_BYTES);
            // Bit (signo - 1) of the first 64-bit word: signals 1..64, including glibc's internal 32 and 33.
            mem.putLong(allSignals, -1L);
            long pidOut = mem.allocate(4);
            long argvArray = cStringArray(mem, args);
            long envArray = cStringArray(mem, env);
            long pathString = mem.putCString(path);
            long directoryString = directory == null ? 0 : mem.putCString(directory);
            long rlimit = mem.allocate(RLIMIT_BYTES);

            check(executable, "posix_spawn_file_actions_init", libc.posix_spawn_file_actions_init(fileActions));
            try {
                check(executable, "posix_spawnattr_init", libc.posix_spawnattr_init(attr));
                try {
                    check(
                            executable,
                            "posix_spawn_file_actions_adddup2",
                            libc.posix_spawn_file_actions_adddup2(fileActions, stdinChild, 0));
                    check(
                            executable,
                            "posix_spawn_file_actions_adddup2",
                            libc.posix_spawn_file_actions_adddup2(fileActions, stdoutChild, 1));
                    check(
                            executable,
                            "posix_spawn_file_actions_adddup2",
                            libc.posix_spawn_file_actions_adddup2(fileActions, stderrChild, 2));
                    if (closefrom) {
                        check(
                                executable,
                                "posix_spawn_file_actions_addclosefrom_np",
                                libc.posix_spawn_file_actions_addclosefrom_np(fileActions, FIRST_NON_STDIO_FD));
                    }
                    if (directoryString != 0) {
                        addChdir(executable, fileActions, directoryString);
                    }
                    check(executable, "posix_spawnattr_setflags", libc.posix_spawnattr_setflags(attr, (short)
                            (Linux.POSIX_SPAWN_SETSIGMASK
                                    | Linux.POSIX_SPAWN_SETSIGDEF
                                    | Linux.POSIX_SPAWN_SETPGROUP)));
                    check(executable, "posix_spawnattr_setsigmask", libc.posix_spawnattr_setsigmask(attr, emptyMask));
                    check(
                            executable,
                            "posix_spawnattr_setsigdefault",
                            libc.posix_spawnattr_setsigdefault(attr, allSignals));
                    check(executable, "posix_spawnattr_setpgroup", libc.posix_spawnattr_setpgroup(attr, 0));
                    int previousUmask = -1;
                    if (containment.umask().isPresent()) {
                        // Only this thread's umask changes: its filesystem context is its own from here on.
                        if (libc.unshare(Linux.CLONE_FS) != 0) {
                            throw new SpawnException(executable, "unshare(CLONE_FS)", nl.errno());
                        }
                        previousUmask = libc.umask(containment.umask().getAsInt());
                    }
                    try {
                        check(
                                executable,
                                "posix_spawn",
                                libc.posix_spawn(
                                        nl.pointer(pidOut),
                                        nl.pointer(pathString),
                                        nl.pointer(fileActions),
                                        nl.pointer(attr),
                                        nl.pointer(argvArray),
                                        nl.pointer(envArray)));
                    } finally {
                        if (previousUmask >= 0) {
                            libc.umask(previousUmask);
                        }
                    }
                    pid = mem.getInt(pidOut);
                } finally {
                    libc.posix_spawnattr_destroy(attr);
                }
            } finally {
                libc.posix_spawn_file_actions_destroy(fileActions);
            }

            closeAndForget(fds, 0);
            closeAndForget(fds, 3);
            closeAndForget(fds, 5);
            for (ResourceLimit limit : containment.limits()) {
                mem.putLong(rlimit, limit.soft());
                mem.putLong(rlimit + 8, limit.hard());
                if (libc.prlimit(pid, limit.resource().number(), rlimit, 0) != 0) {
                    throw new SpawnException(executable, "prlimit(" + limit.resource() + ")", nl.errno());
                }
            }
            if (containment.oomScoreAdj().isPresent()) {
                writeProcFile(
                        executable,
                        "/proc/" + pid + "/oom_score_adj",
                        containment.oomScoreAdj().getAsInt());
            }
            if (containment.cgroup().isPresent()) {
                writeProcFile(
                        executable,
                        containment.cgroup().get().resolve("cgroup.procs").toString(),
                        pid);
            }

            int pidfd = libc.pidfd_open(pid, 0);
            if (pidfd < 0) {
                throw new SpawnException(executable, "pidfd_open", nl.errno());
            }
            Spawned spawned = new Spawned(pid, pidfd, fds[1], fds[2], fds[4]);
            fds[1] = fds[2] = fds[4] = -1;
            pid = -1;
            return spawned;
        } finally {
            for (int i = 0; i < fds.length; i++) {
                closeAndForget(fds, i);
            }
            if (pid > 0) {
                killAndReap(pid, Deadline.after(ABANDON_REAP_LIMIT));
            }
        }
    }

    /**
     * Kills and reaps a child of ours that the reactor does not know about (its setup failed), waiting at most until
     * {@code deadline}. The child leads its own process group (POSIX_SPAWN_SETPGROUP), so its group is killed first:
     * whatever it started meanwhile dies with it, as when the reactor reaps a sidecar. kill(2) by pid and by group is
     * safe here: an unreaped child's pid, hence its group id, cannot be reused. Only spawner threads call it (it parks
     * the calling thread between polls).
     *
     * @return true if the child was reaped by the deadline; false if it was not (it is then left to a background reaper,
     *     see {@link #awaitReaped})
     */
    public boolean killAndReap(int pid, Deadline deadline) {
        // ESRCH from the group: the child already left it (setpgid, setsid); the pid's own kill below still reaches it.
        libc.kill(-pid, Linux.SIGKILL);
        if (libc.kill(pid, Linux.SIGKILL) != 0) {
            log.atWarn()
                    .addKeyValue("pid", pid)
                    .addKeyValue("errno", Errors.name(nl.errno()))
                    .log("kill failed");
        }
        return awaitReaped(pid, deadline);
    }

    /**
     * Reaps our child {@code pid}, polling {@code waitpid(pid, WNOHANG)} with sleeps growing from 50 µs to 10 ms until
     * it is reaped or {@code deadline} passes. A child still unreaped then (uninterruptible sleep: state D) is handed to
     * a virtual thread that polls once a second until it is gone, so it never stays a zombie and the caller never
     * waits longer than its deadline. The caller must own {@code pid} and no other thread may reap it.
     *
     * @return true if reaped (or already gone: ECHILD) by the deadline, false if handed to the background reaper
     */
    public boolean awaitReaped(int pid, Deadline deadline) {
        long sleep = REAP_POLL_MIN_NANOS;
        while (true) {
            if (reapNow(pid)) {
                return true;
            }
            long remaining = deadline.remainingNanos();
            if (remaining <= 0) {
                log.atError()
                        .addKeyValue("pid", pid)
                        .log(
                                "child not reaped by its deadline after SIGKILL (uninterruptible sleep?); reaping it in the background");
                Thread.ofVirtual().name("walredo-late-reap-" + pid).start(() -> reapEventually(pid));
                return false;
            }
            LockSupport.parkNanos(Math.min(sleep, remaining));
            sleep = Math.min(sleep * 2, REAP_POLL_MAX_NANOS);
        }
    }

    private void reapEventually(int pid) {
        while (!reapNow(pid)) {
            LockSupport.parkNanos(LATE_REAP_POLL_NANOS);
        }
        log.atInfo().addKeyValue("pid", pid).log("late child reaped");
    }

    /** One {@code waitpid(pid, WNOHANG)}: true once the child is reaped (or was not ours to reap: ECHILD). */
    private boolean reapNow(int pid) {
        try (NativeMemory status = new NativeMemory(16)) {
            long address = status.allocate(4);
            while (true) {
                int r = libc.waitpid(pid, address, Linux.WNOHANG);
                if (r == pid) {
                    return true;
                }
                if (r == 0) {
                    return false;
                }
                int errno = nl.errno();
                if (errno != Linux.EINTR) {
                    log.atError()
                            .addKeyValue("pid", pid)
                            .addKeyValue("errno", Errors.name(errno))
                            .log("waitpid failed");
                    return true;
                }
            }
        }
    }

    private void addChdir(Path executable, long fileActions, long directory) throws SpawnException {
        int rc;
        try {
            rc = libc.posix_spawn_file_actions_addchdir_np(fileActions, directory);
        } catch (UnsatisfiedLinkError missing) {
            rc = Linux.ENOSYS;
        }
        check(executable, "posix_spawn_file_actions_addchdir_np", rc);
    }

    /**
     * Writes a number to a kernel file: {@code /proc/PID/oom_score_adj} (lowering it below the JVM's own needs
     * CAP_SYS_RESOURCE: EACCES) or a cgroup's {@code cgroup.procs} (moving a process needs write access to the common
     * ancestor's {@code cgroup.procs}: EACCES; a cgroup with controllers in its subtree_control takes no processes:
     * EBUSY).
     */
    private void writeProcFile(Path executable, String file, int value) throws SpawnException {
        String call = "write(" + file + ")";
        int fd = libc.open(file, Linux.O_WRONLY | Linux.O_CLOEXEC);
        if (fd < 0) {
            throw new SpawnException(executable, "open(" + file + ")", nl.errno());
        }
        try (NativeMemory text = new NativeMemory(16)) {
            byte[] digits = NativeMemory.utf8(Integer.toString(value));
            long address = text.putCString(digits);
            if (libc.write(fd, address, digits.length) != digits.length) {
                throw new SpawnException(executable, call, nl.errno());
            }
        } finally {
            libc.close(fd);
        }
    }

    private static long cStringArray(NativeMemory mem, byte[][] strings) {
        long array = mem.allocate((long) (strings.length + 1) * POINTER_BYTES);
        for (int i = 0; i < strings.length; i++) {
            mem.putAddress(array + (long) i * POINTER_BYTES, mem.putCString(strings[i]));
        }
        // The terminating NULL is already there: the block is zeroed.
        return array;
    }

    /**
     * Moves a child-side pipe end off 0, 1 or 2. Those numbers are free only if the JVM closed its own stdio; then a
     * pipe end could land on them and one dup2 file action would overwrite another's source.
     */
    private int aboveStdio(Path executable, int fd) throws SpawnException {
        if (fd >= FIRST_NON_STDIO_FD) {
            return fd;
        }
        int moved = libc.fcntl(fd, Linux.F_DUPFD_CLOEXEC, FIRST_NON_STDIO_FD);
        if (moved < 0) {
            throw new SpawnException(executable, "fcntl(F_DUPFD_CLOEXEC)", nl.errno());
        }
        libc.close(fd);
        return moved;
    }

    private void setNonBlocking(Path executable, int fd) throws SpawnException {
        int flags = libc.fcntl(fd, Linux.F_GETFL, 0);
        if (flags < 0 || libc.fcntl(fd, Linux.F_SETFL, flags | Linux.O_NONBLOCK) < 0) {
            throw new SpawnException(executable, "fcntl(O_NONBLOCK)", nl.errno());
        }
    }

    private void closeAndForget(int[] fds, int i) {
        if (fds[i] >= 0) {
            libc.close(fds[i]);
            fds[i] = -1;
        }
    }

    private static void check(Path executable, String call, int rc) throws SpawnException {
        if (rc != 0) {
            throw new SpawnException(executable, call, rc);
        }
    }

    private boolean probeClosefrom() {
        try (NativeMemory mem = new NativeMemory(FILE_ACTIONS_BYTES)) {
            long fileActions = mem.allocate(FILE_ACTIONS_BYTES);
            if (libc.posix_spawn_file_actions_init(fileActions) != 0) {
                return false;
            }
            try {
                return libc.posix_spawn_file_actions_addclosefrom_np(fileActions, FIRST_NON_STDIO_FD) == 0;
            } catch (UnsatisfiedLinkError missing) {
                return false;
            } finally {
                libc.posix_spawn_file_actions_destroy(fileActions);
            }
        }
    }
}
