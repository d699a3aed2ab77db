// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.NativeCallException;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An owned file descriptor that may be closed while another thread is using it.
 *
 * <p>Why: fd numbers are reused as soon as they are closed. If {@code close()} ran {@code close(2)} while a reader was
 * between loading the number and entering {@code read(2)}, the read could hit whatever file the JVM opened next under
 * that number. So every syscall brackets itself with {@link #acquire()} / {@link #release()}, and the fd is closed by
 * whoever makes the count of users drop to zero after {@link #close()} marked it closed: {@code close()} itself when
 * nobody is inside a syscall, otherwise the last user's {@code release()}. Exactly one thread performs that
 * transition, so the fd is closed exactly once.
 *
 * <p>{@code close()} removes the fd from the reactor's epoll set (EPOLL_CTL_DEL) at once, while holding a use of its
 * own so that the number cannot be closed (and reused) under the DEL: a DEL on a reused number would remove someone
 * else's registration. After that no event for this fd reaches its target; waiters are woken by the closer instead.
 *
 * <p>Thread-safe; all methods are non-blocking. Internal API.
 */
public final class FdHandle {

    private static final Logger log = LoggerFactory.getLogger(FdHandle.class);
    private static final int CLOSED = 1 << 30;
    private static final int USERS = CLOSED - 1;

    private final int fd;
    /** CLOSED bit plus the number of threads currently inside a syscall on {@link #fd}. */
    private final AtomicInteger state = new AtomicInteger();

    private volatile Reactor reactor;
    private volatile long token;
    /** A one-shot registration's epoll_event (null otherwise), kept for {@link #rearm()}; freed by {@link #closeNow()}. */
    private volatile NativeMemory armEvent;

    private volatile long armEventAddress;

    /** Takes ownership of {@code fd}: from now on only this handle closes it. */
    public FdHandle(int fd) {
        if (fd < 0) {
            throw new IllegalArgumentException("negative fd " + fd);
        }
        this.fd = fd;
    }

    /** Returns the fd number; valid for syscalls only between {@link #acquire()} and {@link #release()}. */
    public int fd() {
        return fd;
    }

    /**
     * Records the reactor registration to remove before the fd is closed, and for a one-shot registration the
     * epoll_event to re-arm it with (this handle owns and frees it). Called once, right after registering.
     */
    void registered(Reactor reactor, long token, NativeMemory armEvent, long armEventAddress) {
        this.token = token;
        this.armEventAddress = armEventAddress;
        this.armEvent = armEvent;
        this.reactor = reactor;
    }

    /**
     * Re-enables a one-shot registration so that the next readiness reaches the reactor (see {@link Readiness}); does
     * nothing for a handle registered otherwise or not at all.
     *
     * @return false if the handle is closed
     * @throws NativeCallException if {@code epoll_ctl} fails (a bug or ENOMEM: the caller must not park)
     */
    public boolean rearm() throws NativeCallException {
        Reactor r = reactor;
        if (r == null || armEvent == null) {
            return !isClosed();
        }
        if (!acquire()) {
            return false;
        }
        try {
            return r.rearm(fd, armEventAddress);
        } finally {
            release();
        }
    }

    /**
     * Marks the fd in use by the calling thread.
     *
     * @return false if the handle is closed (then do not use the fd and do not call {@link #release()})
     */
    public boolean acquire() {
        while (true) {
            int s = state.get();
            if ((s & CLOSED) != 0) {
                return false;
            }
            if ((s & USERS) == USERS) {
                throw new IllegalStateException("too many concurrent users of fd " + fd);
            }
            if (state.compareAndSet(s, s + 1)) {
                return true;
            }
        }
    }

    /**
     * Ends a use begun by a successful {@link #acquire()}; closes the fd if it was closed meanwhile and this was the last
     * user.
     */
    public void release() {
        if (state.decrementAndGet() == CLOSED) {
            closeNow();
        }
    }

    /** Returns true once {@link #close()} has been called. */
    public boolean isClosed() {
        return (state.get() & CLOSED) != 0;
    }

    /**
     * Marks the handle closed and removes it from the reactor; the fd is closed now or by the last current user.
     * Idempotent, non-blocking, callable from any thread.
     *
     * @return true for the call that marked it closed
     */
    public boolean close() {
        if (!acquire()) {
            return false;
        }
        boolean marked = false;
        try {
            while (true) {
                int s = state.get();
                if ((s & CLOSED) != 0) {
                    break;
                }
                if (state.compareAndSet(s, s | CLOSED)) {
                    marked = true;
                    break;
                }
            }
            Reactor r = reactor;
            if (marked && r != null) {
                r.deregister(fd, token);
            }
        } finally {
            release();
        }
        return marked;
    }

    private void closeNow() {
        NativeMemory event = armEvent;
        if (event != null) {
            // Only rearm reads it, under a use of this handle; the last use is over.
            event.close();
        }
        NativeLibrary nl = NativeLibrary.get();
        if (nl.libc().close(fd) != 0) {
            int errno = nl.errno();
            // EINTR still released the fd on Linux; anything else (EBADF) means someone else closed our fd: a bug.
            if (errno != Linux.EINTR) {
                log.atError()
                        .addKeyValue("fd", fd)
                        .addKeyValue("errno", Errors.name(errno))
                        .log("close failed");
            }
        }
    }

    @Override
    public String toString() {
        return "fd " + fd;
    }
}
