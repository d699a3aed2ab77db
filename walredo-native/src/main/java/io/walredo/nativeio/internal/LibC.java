// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.IgnoreError;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.intptr_t;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * The jnr-ffi binding of the glibc functions this library calls; loaded once by {@link NativeLibrary}.
 *
 * <p>Pointers are passed as raw addresses ({@code @intptr_t long}) into memory this library allocates and frees
 * itself ({@link NativeMemory}), so the hot calls allocate no jnr {@code Pointer} and ownership is explicit.
 *
 * <p>Errno: functions that report failure through {@code errno} are {@link SaveError}; read it with {@link
 * NativeLibrary#errno()} on the same thread, right after the call and before anything that may park (a virtual thread
 * that unmounted in between could read another carrier's value). The {@code posix_spawn*} family returns the error
 * number instead and never sets errno, hence {@link IgnoreError}.
 *
 * <p>All functions may be called from any thread; none of them blocks except {@code epoll_wait} with a timeout (only
 * the reactor thread calls it) and {@code waitpid} without {@code WNOHANG} (only spawner threads, on failure paths).
 * Internal API: not for use outside walredo.
 */
public interface LibC {

    // ---- posix_spawn (man 3 posix_spawn); each returns 0 or an error number, errno untouched ----

    /**
     * {@code int posix_spawn(pid_t *pid, const char *path, file_actions*, attr*, char *const argv[], char *const
     * envp[])}. Declared with {@link Pointer}s, unlike the rest: with jnr-ffi 2.3.7 and jffi 1.4.3 the fast path for
     * six {@code long} arguments passes garbage as the sixth (measured here: posix_spawn failed with EFAULT, and a C
     * function printing its six arguments received five); Pointer parameters take a different call path.
     */
    @IgnoreError
    int posix_spawn(Pointer pidOut, Pointer path, Pointer fileActions, Pointer attr, Pointer argv, Pointer envp);

    /** {@code posix_spawn_file_actions_init}. */
    @IgnoreError
    int posix_spawn_file_actions_init(@intptr_t long fileActions);

    /** {@code posix_spawn_file_actions_destroy}. */
    @IgnoreError
    int posix_spawn_file_actions_destroy(@intptr_t long fileActions);

    /** {@code posix_spawn_file_actions_adddup2}. */
    @IgnoreError
    int posix_spawn_file_actions_adddup2(@intptr_t long fileActions, int fd, int newFd);

    /** {@code posix_spawn_file_actions_addclosefrom_np} (glibc >= 2.34; a missing symbol throws UnsatisfiedLinkError). */
    @IgnoreError
    int posix_spawn_file_actions_addclosefrom_np(@intptr_t long fileActions, int from);

    /** {@code posix_spawnattr_init}. */
    @IgnoreError
    int posix_spawnattr_init(@intptr_t long attr);

    /** {@code posix_spawnattr_destroy}. */
    @IgnoreError
    int posix_spawnattr_destroy(@intptr_t long attr);

    /** {@code posix_spawnattr_setflags}; the flags are a C {@code short}. */
    @IgnoreError
    int posix_spawnattr_setflags(@intptr_t long attr, short flags);

    /** {@code posix_spawnattr_setsigmask}: copies the sigset. */
    @IgnoreError
    int posix_spawnattr_setsigmask(@intptr_t long attr, @intptr_t long sigset);

    /** {@code posix_spawnattr_setsigdefault}: copies the sigset. */
    @IgnoreError
    int posix_spawnattr_setsigdefault(@intptr_t long attr, @intptr_t long sigset);

    /** {@code posix_spawnattr_setpgroup(attr, pgroup)}; 0 makes the child the leader of a new group. */
    @IgnoreError
    int posix_spawnattr_setpgroup(@intptr_t long attr, int pgroup);

    /** {@code posix_spawn_file_actions_addchdir_np(fileActions, path)} (glibc >= 2.29). */
    @IgnoreError
    int posix_spawn_file_actions_addchdir_np(@intptr_t long fileActions, @intptr_t long path);

    // ---- file descriptors; -1 and errno on failure ----

    /** {@code int pipe2(int fds[2], int flags)}; {@code fds} is the address of two ints. */
    @SaveError
    int pipe2(@intptr_t long fds, int flags);

    /** {@code fcntl(fd, cmd, int arg)}. */
    @SaveError
    int fcntl(int fd, int cmd, int arg);

    /** {@code close}: on Linux the fd is released even when it fails with EINTR, so never retry. */
    @SaveError
    int close(int fd);

    /** {@code ioctl(fd, request, argp)} with a pointer argument, e.g. FIONREAD (man 2 ioctl_pipe). */
    @SaveError
    int ioctl(int fd, @intptr_t long request, @intptr_t long argp);

    /** {@code open(path, flags)} without a mode; tests use it to open fds without O_CLOEXEC. */
    @SaveError
    int open(String path, int flags);

    /** {@code dup}: the new fd does not have FD_CLOEXEC. */
    @SaveError
    int dup(int fd);

    /** {@code ssize_t read(int fd, void *buf, size_t count)}. */
    @SaveError
    @ssize_t
    long read(int fd, @intptr_t long buf, @size_t long count);

    /** {@code ssize_t write(int fd, const void *buf, size_t count)}. */
    @SaveError
    @ssize_t
    long write(int fd, @intptr_t long buf, @size_t long count);

    /**
     * {@code int eventfd(unsigned int initval, int flags)} (man 2 eventfd): the reactor's wake-up fd. Errors: EMFILE,
     * ENFILE, ENOMEM at creation; a write of 1 to a non-blocking eventfd never blocks short of a counter of 2^64-2.
     */
    @SaveError
    int eventfd(int initval, int flags);

    // ---- epoll (man 7 epoll) ----

    /** {@code epoll_create1(flags)}. */
    @SaveError
    int epoll_create1(int flags);

    /** {@code epoll_ctl(epfd, op, fd, struct epoll_event *event)}. */
    @SaveError
    int epoll_ctl(int epfd, int op, int fd, @intptr_t long event);

    /** {@code epoll_wait(epfd, events, maxevents, timeoutMillis)}; blocks, so only the reactor thread calls it. */
    @SaveError
    int epoll_wait(int epfd, @intptr_t long events, int maxEvents, int timeoutMillis);

    // ---- processes ----

    /** {@code pid_t getpid(void)}. */
    @IgnoreError
    int getpid();

    /** {@code int pidfd_open(pid_t pid, unsigned int flags)} (glibc >= 2.36, Linux >= 5.3); the fd is O_CLOEXEC. */
    @SaveError
    int pidfd_open(int pid, int flags);

    /** {@code int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)}; pass 0 for info. */
    @SaveError
    int pidfd_send_signal(int pidfd, int sig, @intptr_t long info, int flags);

    /**
     * {@code kill(pid, sig)}: only for a child of ours that has no pidfd yet and is not reaped (so its pid cannot have
     * been reused), or with {@code -pid} for the process group such a child leads.
     */
    @SaveError
    int kill(int pid, int sig);

    /** {@code pid_t waitpid(pid_t pid, int *wstatus, int options)}; {@code wstatus} is the address of one int. */
    @SaveError
    int waitpid(int pid, @intptr_t long wstatus, int options);

    /**
     * {@code prlimit(pid, resource, const struct rlimit *new, struct rlimit *old)}; pass 0 for old. Setting another
     * process's limits needs the same uid (or CAP_SYS_RESOURCE), and raising a hard limit needs CAP_SYS_RESOURCE.
     */
    @SaveError
    int prlimit(int pid, int resource, @intptr_t long newLimit, @intptr_t long oldLimit);

    /** {@code mode_t umask(mode_t mask)}: returns the previous mask; never fails. */
    @IgnoreError
    int umask(int mask);

    /** {@code int unshare(int flags)}; with CLONE_FS the calling thread gets its own umask and working directory. */
    @SaveError
    int unshare(int flags);

    /** {@code getrlimit(resource, struct rlimit *)}; struct rlimit is two 64-bit values (soft, hard). */
    @SaveError
    int getrlimit(int resource, @intptr_t long rlimit);

    /** {@code setrlimit(resource, const struct rlimit *)}. */
    @SaveError
    int setrlimit(int resource, @intptr_t long rlimit);
}
