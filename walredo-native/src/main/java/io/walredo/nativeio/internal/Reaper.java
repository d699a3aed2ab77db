// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineExceededException;
import io.walredo.nativeio.ExitStatus;
import io.walredo.nativeio.NativeCallException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reaps one child through its pidfd: registered with the reactor (level-triggered EPOLLIN), which calls {@link
 * #onEvents} when the child has exited; then {@code waitpid(pid, WNOHANG)} collects exactly this child. Never {@code
 * waitpid(-1)}: the JVM's own {@code ProcessBuilder} children belong to the JDK's reaper thread.
 *
 * <p>Why pidfd: exit is noticed within the reactor's wake-up latency without a thread per child or a polling sweep,
 * and {@link #signal} through the pidfd cannot hit a recycled pid. {@code waitpid} by pid is safe too: a pid stays
 * ours until we reap it, and only the reactor reaps a registered child.
 *
 * <p>Once reaped, the pidfd is deregistered and closed (by the last in-flight {@link #signal} if one is running), so
 * nothing is left after the child's death even if the owner never calls close.
 *
 * <p>The child leads a process group of its own (the spawner makes it so), and the group goes with it: {@link
 * #signal} signals the group, and when the child exits, whatever is left in its group (processes it forked) is
 * SIGKILLed before the child is reaped. {@code kill(-pgid)} is safe only while the group's id cannot have been
 * reused: a pid is never reused while its process is unreaped, so both happen under {@link #reapLock} with the child
 * not yet reaped. Thread-safe. Internal API.
 */
public final class Reaper implements Reactor.Target {

    private static final Logger log = LoggerFactory.getLogger(Reaper.class);

    private final NativeLibrary nl = NativeLibrary.get();
    private final int pid;
    private final FdHandle pidfd;
    /** Completed on the reactor thread; nothing but {@link #awaitReaped} waits on it, so no user code runs there. */
    private final CompletableFuture<ExitStatus> reaped = new CompletableFuture<>();
    /** The public exit future, completed from {@code callbacks}, so its dependents never run on the reactor thread. */
    private final CompletableFuture<ExitStatus> exit = new CompletableFuture<>();

    private volatile boolean done;
    /** Held around every kill(-pgid) and around the reap, so no group signal follows the reap. */
    private final ReentrantLock reapLock = new ReentrantLock();

    /**
     * Creates the reaper of {@code pid}; the caller then registers {@code pidfd} with the reactor, EPOLLIN, this as the
     * target.
     *
     * @param callbacks where the public exit future is completed (and thus where its dependents run)
     */
    public Reaper(int pid, FdHandle pidfd, Executor callbacks) {
        this.pid = pid;
        this.pidfd = pidfd;
        reaped.whenComplete((status, failure) -> callbacks.execute(() -> {
            if (failure == null) {
                exit.complete(status);
            } else {
                exit.completeExceptionally(failure);
            }
        }));
    }

    /** Returns the future completed (off the reactor thread) once the child is reaped. */
    public CompletableFuture<ExitStatus> exit() {
        return exit;
    }

    /** Returns true once the child has been reaped. */
    public boolean isReaped() {
        return done;
    }

    @Override
    public void onEvents(int events) {
        if (done) {
            return;
        }
        // Never block the reactor: a signaller holds the lock for one or two syscalls, and the level-triggered pidfd
        // reports the exit again on the next pass.
        if (!reapLock.tryLock()) {
            return;
        }
        try {
            reap();
        } finally {
            reapLock.unlock();
        }
    }

    private void reap() {
        // The child is a zombie: its pid, and so its group's id, is still ours. Leftovers in its group die with it.
        killGroup(Linux.SIGKILL);
        try (NativeMemory status = new NativeMemory(16)) {
            long address = status.allocate(4);
            while (true) {
                int r = nl.libc().waitpid(pid, address, Linux.WNOHANG);
                if (r == pid) {
                    finish(ExitStatus.fromWaitStatus(status.getInt(address)), null);
                    return;
                }
                if (r == 0) {
                    // Not waitable yet (the kernel makes the zombie visible before waking pidfd pollers, so this should
                    // not
                    // happen); level-triggered registration reports it again.
                    return;
                }
                int errno = nl.errno();
                if (errno == Linux.EINTR) {
                    continue;
                }
                // ECHILD: someone else reaped our child (SIGCHLD set to SIG_IGN, or waitpid(-1) elsewhere in this
                // process).
                NativeCallException e = new NativeCallException(
                        "waitpid",
                        errno,
                        "cannot reap pid " + pid + " (reaped elsewhere? SIGCHLD ignored or waitpid(-1))");
                log.atError().setCause(e).addKeyValue("pid", pid).log("child exit status lost");
                finish(null, e);
                return;
            }
        }
    }

    private void finish(ExitStatus status, Throwable failure) {
        done = true;
        pidfd.close();
        log.atDebug().addKeyValue("pid", pid).addKeyValue("status", status).log("child reaped");
        if (failure == null) {
            reaped.complete(status);
        } else {
            reaped.completeExceptionally(failure);
        }
    }

    /**
     * Sends {@code signo} through the pidfd.
     *
     * @return false if the child has already been reaped (then nothing was sent)
     * @throws NativeCallException if pidfd_send_signal fails otherwise (EINVAL for a bad signal number, EPERM)
     */
    public boolean signal(int signo) throws NativeCallException {
        reapLock.lock();
        try {
            if (done || !pidfd.acquire()) {
                return false;
            }
            try {
                killGroup(signo);
                // Also through the pidfd: the child may have left its group (setpgid, setsid).
                if (nl.libc().pidfd_send_signal(pidfd.fd(), signo, 0, 0) == 0) {
                    return true;
                }
                int errno = nl.errno();
                if (errno == Linux.ESRCH) {
                    return false;
                }
                throw new NativeCallException(
                        "pidfd_send_signal", errno, "cannot send signal " + signo + " to pid " + pid);
            } finally {
                pidfd.release();
            }
        } finally {
            reapLock.unlock();
        }
    }

    /** kill(-pid, signo); the caller holds {@link #reapLock} and the child is not reaped. ESRCH: the group is empty. */
    private void killGroup(int signo) {
        if (nl.libc().kill(-pid, signo) != 0) {
            int errno = nl.errno();
            if (errno != Linux.ESRCH) {
                log.atWarn()
                        .addKeyValue("pgid", pid)
                        .addKeyValue("errno", Errors.name(errno))
                        .log("signalling the group failed");
            }
        }
    }

    /**
     * Parks until the child is reaped.
     *
     * @throws DeadlineExceededException if it is not reaped by the deadline
     * @throws InterruptedIOException if interrupted (the interrupt status stays set)
     * @throws NativeCallException if its status was lost (ECHILD)
     */
    public ExitStatus awaitReaped(Deadline deadline, String what) throws IOException {
        try {
            return reaped.get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new DeadlineExceededException("pid " + pid + " was not reaped by the deadline after " + what
                    + "; it may be in uninterruptible sleep (state D in /proc/" + pid + "/stat)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for pid " + pid + " to be reaped");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IOException("waiting for pid " + pid + " failed", e.getCause());
        }
    }
}
