// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.Linux;
import io.walredo.nativeio.internal.Reaper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A child started by {@link NativeRuntime#spawn}, with the parent's ends of its stdin, stdout and stderr pipes.
 *
 * <p>Ownership: the caller of {@code spawn} owns it and must {@link #close()} it; only the owner signals it. The
 * reactor reaps the child as soon as it dies (whether or not it was closed) and then releases its pidfd, so a dead
 * child leaves no zombie and no fd except the three pipe ends, which {@code close()} releases.
 *
 * <p>All methods are thread-safe. The pipe ends follow {@link PipeEnd}'s rule of one reader or writer at a time.
 */
public final class ChildProcess implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ChildProcess.class);

    private final int pid;
    private final Path executable;
    private final PipeWriteEnd stdin;
    private final PipeReadEnd stdout;
    private final PipeReadEnd stderr;
    private final Reaper reaper;
    private final AtomicBoolean closed = new AtomicBoolean();

    ChildProcess(int pid, Path executable, PipeWriteEnd stdin, PipeReadEnd stdout, PipeReadEnd stderr, Reaper reaper) {
        this.pid = pid;
        this.executable = executable;
        this.stdin = stdin;
        this.stdout = stdout;
        this.stderr = stderr;
        this.reaper = reaper;
    }

    /**
     * Returns the child's pid. It identifies the child only while {@link #isAlive()}; use {@link #signal}, not kill(2).
     */
    public int pid() {
        return pid;
    }

    /** Returns the write end of the child's stdin. */
    public PipeWriteEnd stdin() {
        return stdin;
    }

    /** Returns the read end of the child's stdout. */
    public PipeReadEnd stdout() {
        return stdout;
    }

    /** Returns the read end of the child's stderr. */
    public PipeReadEnd stderr() {
        return stderr;
    }

    /**
     * Returns a future completed with the exit status right after the reactor reaps the child (milliseconds after its
     * death). Dependent actions run on a virtual thread, never on the reactor. Each call returns a new copy, so
     * completing or cancelling it affects nobody else. It completes exceptionally only if the status was lost because
     * something else in this process reaped the child (ECHILD).
     */
    public CompletableFuture<ExitStatus> onExit() {
        return reaper.exit().copy();
    }

    /** Returns true until the child has been reaped (a child that has exited but is not reaped yet still counts). */
    public boolean isAlive() {
        return !reaper.isReaped();
    }

    /**
     * Sends a signal through the child's pidfd, which cannot reach another process that reused the pid.
     *
     * @param signo the signal number, e.g. {@code NativeRuntime.signalNumber("SIGTERM")}
     * @return true if sent (a dead but not yet reaped child accepts and ignores it), false if already reaped
     * @throws NativeCallException if pidfd_send_signal fails (EINVAL for an invalid signal number)
     */
    public boolean signal(int signo) throws NativeCallException {
        return reaper.signal(signo);
    }

    /**
     * Sends SIGKILL unless the child was already reaped, then parks until the reactor has reaped it. Does not close the
     * pipes (a grandchild that inherited them does not delay this).
     *
     * @return the exit status (usually {@code signal 9 (SIGKILL)}, or the real status if it had already exited)
     * @throws DeadlineExceededException if the child is not reaped by the deadline (e.g. stuck in uninterruptible sleep)
     * @throws java.io.InterruptedIOException if interrupted while waiting
     */
    public ExitStatus killAndReap(Deadline deadline) throws IOException {
        if (!reaper.isReaped()) {
            reaper.signal(Linux.SIGKILL);
        }
        return reaper.awaitReaped(deadline, "SIGKILL");
    }

    /**
     * Releases the child: SIGKILL if it is alive, then closes the three pipe ends. Idempotent, returns at once (the
     * reactor reaps asynchronously and then closes the pidfd; {@link #onExit()} tells when). Use {@link #killAndReap}
     * first to wait for the reap.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        if (!reaper.isReaped()) {
            try {
                reaper.signal(Linux.SIGKILL);
            } catch (NativeCallException e) {
                log.atWarn().setCause(e).addKeyValue("pid", pid).log("SIGKILL on close failed");
            }
        }
        stdin.close();
        stdout.close();
        stderr.close();
    }

    @Override
    public String toString() {
        return "ChildProcess[pid " + pid + ", " + executable + (isAlive() ? "" : ", reaped") + "]";
    }
}
