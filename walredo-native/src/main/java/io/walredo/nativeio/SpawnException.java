// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.Errors;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Spawning a child failed, in {@code posix_spawn} itself (its error number: the exec failed) or in a setup step
 * ({@code pipe2}, {@code pidfd_open}, registering with the reactor). Nothing leaks: every fd opened for the attempt is
 * closed and a child that was already started has been killed and reaped. The message names the executable, the
 * errno and what to check, e.g. {@code "cannot spawn /bin/nope: posix_spawn failed: errno 2 ENOENT (No such file or
 * directory); check that the executable exists"}.
 */
public final class SpawnException extends NativeCallException {

    private static final long serialVersionUID = 1L;

    private final transient Path executable;

    /**
     * Creates the exception.
     *
     * @param executable the program that was to be started
     * @param syscall the call that failed
     * @param errno its error number
     */
    public SpawnException(Path executable, String syscall, int errno) {
        super(syscall, errno, "cannot spawn " + Objects.requireNonNull(executable, "executable"), hint(syscall, errno));
        this.executable = executable;
    }

    /** Returns the executable that could not be started. */
    public Path executable() {
        return executable;
    }

    private static String hint(String syscall, int errno) {
        String name = Errors.name(errno);
        boolean exec = syscall.equals("posix_spawn");
        return switch (name) {
            case "ENOENT" -> exec ? "check that the executable (and its ELF interpreter) exists" : null;
            case "EACCES" ->
                exec ? "the path is a directory, lacks the execute permission, or is on a noexec mount" : null;
            case "ENOEXEC" -> exec ? "the file is not a recognised executable (a script without a #! line?)" : null;
            case "EMFILE" -> "this process has too many open files: raise RLIMIT_NOFILE or look for an fd leak";
            case "ENFILE" -> "the system-wide open file limit is reached (fs.file-max)";
            case "EAGAIN" -> "the process limit is reached (RLIMIT_NPROC, kernel.pid_max or the cgroup's pids.max)";
            case "ENOMEM" -> "out of memory or address space";
            case "EPERM" ->
                syscall.startsWith("prlimit")
                        ? "without CAP_SYS_RESOURCE a process may set the limits of another only while their uids match: the"
                                + " child already changed its uid (a binary that drops privileges must wait for its first input"
                                + " before it does, as postgres/walredo.c does), or a hard limit above this process's was asked for"
                        : null;
            default -> null;
        };
    }
}
