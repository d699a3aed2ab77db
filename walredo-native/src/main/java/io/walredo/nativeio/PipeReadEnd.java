// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.FdHandle;
import io.walredo.nativeio.internal.Linux;
import io.walredo.nativeio.internal.NativeMemory;
import io.walredo.nativeio.internal.Readiness;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;
import java.util.Objects;

/**
 * The parent's read end of a child's stdout or stderr pipe. Created by {@link NativeRuntime#spawn} as part of a
 * {@link ChildProcess}, which owns it and closes it. Parking, deadlines, buffers and closing are as described in
 * {@link PipeEnd}.
 *
 * <p>Threads: at most one thread reads at a time; the caller guarantees that. {@link #available()} and
 * {@link #close()} may be called from any thread at any time.
 */
public final class PipeReadEnd extends PipeEnd {

    PipeReadEnd(FdHandle fd, Readiness readiness, String description) {
        super(fd, readiness, description);
    }

    /**
     * Reads at least one byte into {@code dst} (up to {@code dst.remaining()}), parking while the pipe is empty.
     *
     * @return the number of bytes read, -1 at end of stream (the child closed its end, usually by exiting), or 0 if
     *     {@code dst} has no room
     * @throws DeadlineExceededException if nothing arrived by the deadline
     * @throws AsynchronousCloseException if this end was closed while waiting
     * @throws ClosedChannelException if this end was closed before the call
     * @throws InterruptedIOException if the thread was interrupted while waiting (its interrupt status stays set)
     * @throws NativeCallException if read(2) fails otherwise
     */
    public int read(ByteBuffer dst, Deadline deadline) throws IOException {
        return read(dst, deadline, 0);
    }

    /**
     * As {@link #read(ByteBuffer, Deadline)}, but while the pipe is empty it first polls for up to {@code spinNanos},
     * yielding the thread between attempts ({@link Thread#yield()}: a virtual thread lets its carrier run other work),
     * and parks only after that. For an answer due within microseconds this saves the park, the reactor's wake-up and
     * the scheduler hand-off; a caller passes a budget it has measured to be worth it, or 0.
     *
     * @throws IllegalArgumentException if {@code spinNanos} is negative
     */
    public int read(ByteBuffer dst, Deadline deadline, long spinNanos) throws IOException {
        checkReadable(dst, deadline);
        if (spinNanos < 0) {
            throw new IllegalArgumentException("spinNanos must be >= 0, got " + spinNanos);
        }
        if (!dst.hasRemaining()) {
            return 0;
        }
        return readSome(dst, deadline, 0, dst.remaining(), spinNanos);
    }

    /**
     * Fills {@code dst} completely, parking as needed.
     *
     * @throws EOFException if the stream ended first (the message says how many of how many bytes arrived)
     * @throws DeadlineExceededException if {@code dst} was not full by the deadline
     * @throws IOException otherwise as {@link #read} (closed, interrupted, read(2) failed)
     */
    public void readFully(ByteBuffer dst, Deadline deadline) throws IOException {
        checkReadable(dst, deadline);
        int total = dst.remaining();
        int done = 0;
        while (done < total) {
            int n = readSome(dst, deadline, done, total, 0);
            if (n < 0) {
                throw new EOFException(
                        "end of stream on " + description + " after " + done + " of " + total + " bytes");
            }
            done += n;
        }
    }

    /**
     * Returns how many bytes a read could take now without waiting ({@code ioctl(FIONREAD)}), consuming none; 0 when the
     * pipe is empty or at end of stream. Non-blocking; any thread may call it, also while another thread reads.
     *
     * @throws ClosedChannelException if this end is closed
     * @throws NativeCallException if ioctl(2) fails
     */
    public int available() throws IOException {
        if (!fd.acquire()) {
            throw new ClosedChannelException();
        }
        try (NativeMemory count = new NativeMemory(16)) {
            long address = count.allocate(4);
            if (libc.ioctl(fd.fd(), Linux.FIONREAD, address) != 0) {
                throw new NativeCallException("ioctl", nl.errno(), "FIONREAD on " + description);
            }
            return count.getInt(address);
        } finally {
            fd.release();
        }
    }

    private void checkReadable(ByteBuffer dst, Deadline deadline) throws ClosedChannelException {
        Objects.requireNonNull(dst, "dst");
        Objects.requireNonNull(deadline, "deadline");
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("read into a read-only buffer");
        }
        if (!isOpen()) {
            throw new ClosedChannelException();
        }
    }

    /** Reads once into {@code dst} (direct or heap), waiting for data; {@code done}/{@code total} are for messages. */
    private int readSome(ByteBuffer dst, Deadline deadline, int done, int total, long spinNanos) throws IOException {
        if (dst.isDirect()) {
            return readDirect(dst, deadline, done, total, spinNanos);
        }
        ByteBuffer t = temp(dst.remaining());
        t.clear().limit(Math.min(t.capacity(), dst.remaining()));
        int n = readDirect(t, deadline, done, total, spinNanos);
        if (n > 0) {
            t.flip();
            dst.put(t);
        }
        return n;
    }

    private int readDirect(ByteBuffer dst, Deadline deadline, int done, int total, long spinNanos) throws IOException {
        boolean spinning = false;
        long spinUntil = 0;
        long base = nl.address(dst);
        while (true) {
            long observed = readiness.sequence();
            long n = transfer(base + dst.position(), dst.remaining(), true);
            if (n > 0) {
                dst.position(dst.position() + (int) n);
                return (int) n;
            }
            if (n == 0) {
                return -1;
            }
            int errno = (int) -n;
            if (errno == Linux.EINTR) {
                continue;
            }
            if (errno != Linux.EAGAIN) {
                throw new NativeCallException("read", errno, "reading " + description);
            }
            if (spinNanos > 0) {
                long now = System.nanoTime();
                if (!spinning) {
                    spinning = true;
                    spinUntil = now + Math.min(spinNanos, Math.max(0, deadline.remainingNanos()));
                }
                if (now - spinUntil < 0) {
                    Thread.yield();
                    if (Thread.currentThread().isInterrupted()) {
                        await(observed, deadline, "read from", "arrived", done, total);
                    }
                    continue;
                }
            }
            await(observed, deadline, "read from", "arrived", done, total);
        }
    }
}
