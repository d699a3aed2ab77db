// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.FdHandle;
import io.walredo.nativeio.internal.Linux;
import io.walredo.nativeio.internal.Readiness;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.Objects;

/**
 * The parent's write end of a child's stdin pipe. Created by {@link NativeRuntime#spawn} as part of a
 * {@link ChildProcess}, which owns it and closes it. Parking, deadlines, buffers and closing are as described in
 * {@link PipeEnd}.
 *
 * <p>Threads: at most one thread writes at a time; the caller guarantees that. {@link #close()} may be called from
 * any thread at any time.
 */
public final class PipeWriteEnd extends PipeEnd {

    /** See {@link #lastDrainedNanos()}. */
    private volatile long lastDrainedNanos = System.nanoTime();

    PipeWriteEnd(FdHandle fd, Readiness readiness, String description) {
        super(fd, readiness, description);
    }

    /**
     * The {@link System#nanoTime()} at which a write last moved bytes after waiting for room: the latest moment the
     * reader was seen taking bytes out of a full pipe (the time this end was created if never). A reader that is
     * alive but slow keeps this recent while a large write is under way; one that stopped reading does not, however
     * much the pipe's buffer took before it filled.
     */
    public long lastDrainedNanos() {
        return lastDrainedNanos;
    }

    /**
     * Writes all of {@code src}, parking while the pipe is full.
     *
     * @throws NativeCallException with errno EPIPE if the reader is gone (the child exited or closed its stdin)
     * @throws DeadlineExceededException if not everything was written by the deadline; {@code src}'s position then tells
     *     how much was
     * @throws java.nio.channels.AsynchronousCloseException if this end was closed while waiting
     * @throws ClosedChannelException if this end was closed before the call
     * @throws java.io.InterruptedIOException if the thread was interrupted while waiting (its interrupt status stays
     *     set)
     * @throws IOException otherwise if write(2) fails
     */
    public void writeFully(ByteBuffer src, Deadline deadline) throws IOException {
        Objects.requireNonNull(src, "src");
        Objects.requireNonNull(deadline, "deadline");
        if (!isOpen()) {
            throw new ClosedChannelException();
        }
        int first = src.position();
        int total = src.remaining();
        if (src.isDirect()) {
            writeDirect(src, deadline, 0, total);
            return;
        }
        while (src.hasRemaining()) {
            int start = src.position();
            int chunk = Math.min(src.remaining(), TEMP_MAX);
            ByteBuffer t = temp(chunk);
            t.clear();
            t.put(src.slice(start, chunk));
            t.flip();
            try {
                writeDirect(t, deadline, start - first, total);
            } finally {
                src.position(start + t.position());
            }
        }
    }

    /** Writes all of direct {@code src}; {@code doneBefore}/{@code total} count bytes of the caller's whole buffer. */
    private void writeDirect(ByteBuffer src, Deadline deadline, int doneBefore, int total) throws IOException {
        long base = nl.address(src);
        int start = src.position();
        boolean waited = false;
        while (src.hasRemaining()) {
            long observed = readiness.sequence();
            long n = transfer(base + src.position(), src.remaining(), false);
            if (n > 0) {
                if (waited) {
                    lastDrainedNanos = System.nanoTime();
                    waited = false;
                }
                src.position(src.position() + (int) n);
                continue;
            }
            int errno = n == 0 ? Linux.EAGAIN : (int) -n;
            if (errno == Linux.EINTR) {
                continue;
            }
            int done = doneBefore + src.position() - start;
            if (errno == Linux.EPIPE) {
                throw new NativeCallException(
                        "write",
                        errno,
                        "writing " + description + ": the reader is gone (the child exited or closed its stdin) after "
                                + done + " of " + total + " bytes");
            }
            if (errno != Linux.EAGAIN) {
                throw new NativeCallException("write", errno, "writing " + description);
            }
            await(observed, deadline, "write to", "written", done, total);
            waited = true;
        }
    }
}
