// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import jnr.constants.platform.Errno;

/**
 * Linux x86-64 / aarch64 constants (asm-generic values, identical on both). Named here once so that no call site
 * carries a magic number. Internal API.
 */
public final class Linux {

    private Linux() {}

    /** {@code O_CLOEXEC}: close-on-exec, so no child other than through explicit dup2 file actions inherits an fd. */
    public static final int O_CLOEXEC = 0x80000;
    /** {@code O_NONBLOCK}. */
    public static final int O_NONBLOCK = 0x800;
    /** {@code O_RDONLY}. */
    public static final int O_RDONLY = 0;
    /** {@code fcntl F_GETFL}. */
    public static final int F_GETFL = 3;
    /** {@code fcntl F_SETFL}. */
    public static final int F_SETFL = 4;
    /** {@code fcntl F_GETFD}. */
    public static final int F_GETFD = 1;
    /** {@code fcntl F_DUPFD_CLOEXEC}. */
    public static final int F_DUPFD_CLOEXEC = 1030;

    /** {@code EFD_CLOEXEC} (same value as {@code O_CLOEXEC}). */
    public static final int EFD_CLOEXEC = O_CLOEXEC;
    /** {@code EFD_NONBLOCK} (same value as {@code O_NONBLOCK}). */
    public static final int EFD_NONBLOCK = O_NONBLOCK;
    /** {@code EPOLLIN}. */
    public static final int EPOLLIN = 0x001;
    /** {@code EPOLLOUT}. */
    public static final int EPOLLOUT = 0x004;
    /** {@code EPOLLERR}. */
    public static final int EPOLLERR = 0x008;
    /** {@code EPOLLHUP}. */
    public static final int EPOLLHUP = 0x010;
    /** {@code EPOLLRDHUP}. */
    public static final int EPOLLRDHUP = 0x2000;
    /** {@code EPOLLET}: edge-triggered. */
    public static final int EPOLLET = 1 << 31;
    /** {@code EPOLL_CLOEXEC}. */
    public static final int EPOLL_CLOEXEC = O_CLOEXEC;
    /** {@code EPOLL_CTL_ADD}. */
    public static final int EPOLL_CTL_ADD = 1;
    /** {@code CLONE_FS} (for unshare: a thread of its own umask and working directory). */
    public static final int CLONE_FS = 0x200;
    /** {@code O_WRONLY}. */
    public static final int O_WRONLY = 0x1;
    /** {@code EPOLLONESHOT}: after one event the registration reports nothing until re-armed. */
    public static final int EPOLLONESHOT = 1 << 30;
    /** {@code EPOLL_CTL_MOD}. */
    public static final int EPOLL_CTL_MOD = 3;
    /** {@code EPOLL_CTL_DEL}. */
    public static final int EPOLL_CTL_DEL = 2;

    /** {@code FIONREAD}: bytes ready to read on a pipe (man 2 ioctl_pipe). */
    public static final long FIONREAD = 0x541B;
    /** {@code WNOHANG}. */
    public static final int WNOHANG = 1;
    /** {@code SIGKILL}. */
    public static final int SIGKILL = 9;
    /** {@code RLIMIT_NOFILE}. */
    public static final int RLIMIT_NOFILE = 7;

    /** {@code POSIX_SPAWN_SETPGROUP} (glibc spawn.h). */
    public static final short POSIX_SPAWN_SETPGROUP = 0x02;
    /** {@code POSIX_SPAWN_SETSIGDEF} (glibc spawn.h). */
    public static final short POSIX_SPAWN_SETSIGDEF = 0x04;
    /** {@code POSIX_SPAWN_SETSIGMASK} (glibc spawn.h). */
    public static final short POSIX_SPAWN_SETSIGMASK = 0x08;

    /** Highest signal number on Linux ({@code _NSIG - 1}). */
    public static final int MAX_SIGNAL = 64;

    /** {@code EINTR}. */
    public static final int EINTR = Errno.EINTR.intValue();
    /** {@code EAGAIN} (= EWOULDBLOCK). */
    public static final int EAGAIN = Errno.EAGAIN.intValue();
    /** {@code ENOENT}. */
    public static final int ENOENT = Errno.ENOENT.intValue();
    /** {@code EPIPE}. */
    public static final int EPIPE = Errno.EPIPE.intValue();
    /** {@code ESRCH}. */
    public static final int ESRCH = Errno.ESRCH.intValue();
    /** {@code ECHILD}. */
    public static final int ECHILD = Errno.ECHILD.intValue();
    /** {@code ENOSYS}. */
    public static final int ENOSYS = Errno.ENOSYS.intValue();
    /** {@code ETIMEDOUT}. */
    public static final int ETIMEDOUT = Errno.ETIMEDOUT.intValue();
}
