// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import java.util.function.BooleanSupplier;
import jnr.constants.platform.Errno;
import jnr.ffi.LastError;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.IgnoreError;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.intptr_t;

/**
 * Signals a process through a pidfd, for {@link ChildPid}: the only place walredo-testing calls native code, so no
 * jnr type leaves this package-private class. glibc is bound on first use (class initialisation) and kept; the binding
 * is immutable.
 *
 * <p>Errno: the binding saves errno per call ({@link SaveError}); {@link #errno()} reads it on the same thread right
 * after the call, before anything that may park (a virtual thread that unmounted in between could read another
 * carrier's value). None of these calls blocks; any thread may make them.
 */
final class Pidfd {

    /**
     * The glibc functions. Public because jnr-ffi implements it in a generated class of its own; the enclosing class
     * is package-private, so it is not API.
     */
    public interface LibC {
        /** {@code int pidfd_open(pid_t pid, unsigned int flags)}: -1 and errno on failure (ESRCH: no such process). */
        @SaveError
        int pidfd_open(int pid, int flags);

        /** {@code int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)}; info 0. */
        @SaveError
        int pidfd_send_signal(int pidfd, int sig, @intptr_t long info, int flags);

        /** {@code int close(int fd)}; errno ignored: a pidfd has nothing to flush, and it is closed even on EINTR. */
        @IgnoreError
        int close(int fd);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);
    private static final int ESRCH = Errno.ESRCH.intValue();

    private Pidfd() {}

    /**
     * Opens a pidfd for {@code pid}, asks {@code stillTheOne} (which then speaks about the process the pidfd pins),
     * and if it approves sends the signal through the pidfd. ESRCH from either call means the process is gone.
     *
     * @return whether the signal was sent
     * @throws IllegalStateException on any other errno
     */
    static boolean sendIf(int pid, String name, int signal, BooleanSupplier stillTheOne) {
        int pidfd = LIBC.pidfd_open(pid, 0);
        if (pidfd < 0) {
            int errno = errno();
            if (errno == ESRCH) {
                return false;
            }
            throw failure("pidfd_open", errno, pid, name);
        }
        try {
            if (!stillTheOne.getAsBoolean()) {
                return false;
            }
            if (LIBC.pidfd_send_signal(pidfd, signal, 0, 0) == 0) {
                return true;
            }
            int errno = errno();
            if (errno == ESRCH) {
                return false;
            }
            throw failure("pidfd_send_signal", errno, pid, name);
        } finally {
            LIBC.close(pidfd);
        }
    }

    private static int errno() {
        return LastError.getLastError(RUNTIME);
    }

    private static IllegalStateException failure(String call, int errno, int pid, String signal) {
        Errno e = Errno.valueOf(errno);
        boolean known = e != null && e.defined() && e != Errno.__UNKNOWN_CONSTANT__;
        String what = known ? e.name() + " (" + e.description() + ")" : "(unknown errno)";
        String hint = !known
                ? ""
                : switch (e) {
                    case EPERM ->
                        "; the process belongs to another user: only the sidecar's own user or root may signal it";
                    case ENOSYS -> "; pidfds need Linux 5.3 or later";
                    case EMFILE, ENFILE -> "; this JVM (or the system) is out of file descriptors: look for a leak";
                    default -> "";
                };
        return new IllegalStateException(
                call + " failed sending " + signal + " to pid " + pid + ": errno " + errno + " " + what + hint);
    }
}
