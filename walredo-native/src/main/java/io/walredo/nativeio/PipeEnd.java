// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.FdHandle;
import io.walredo.nativeio.internal.LibC;
import io.walredo.nativeio.internal.NativeLibrary;
import io.walredo.nativeio.internal.Readiness;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;

/**
 * The parent's end of one pipe to or from a child: a {@link PipeWriteEnd} (the child's stdin) or a
 * {@link PipeReadEnd} (its stdout or stderr). The direction is the type, so a read on stdin or a write on stdout does
 * not compile. Created by {@link NativeRuntime#spawn} as part of a {@link ChildProcess}, which owns it and closes it.
 *
 * <p>The fd is non-blocking and registered once with the reactor (one-shot: it reports readiness only to a thread that
 * has just re-armed it before parking). A read or write first tries the syscall; only when the pipe is empty (or
 * full) does the calling thread park until the reactor reports readiness or the deadline passes, so a virtual thread
 * waiting here holds no carrier and no platform thread. Direct buffers are read into and written from in place; heap
 * buffers work through a temporary direct buffer of at most 64 KiB.
 *
 * <p>Threads: at most one thread reads (or writes) at a time; the caller guarantees that. {@link #close()} may be
 * called from any thread at any time: a waiter parked here wakes with {@link AsynchronousCloseException}, and a
 * syscall in progress finishes on the still-open fd, whose number is released only after the last such call returns.
 */
public abstract sealed class PipeEnd implements AutoCloseable permits PipeReadEnd, PipeWriteEnd {

    private static final int TEMP_MIN = 8192;

    /** The largest temporary direct buffer a heap-buffer read or write goes through. */
    static final int TEMP_MAX = 64 * 1024;

    final NativeLibrary nl = NativeLibrary.get();
    final LibC libc = nl.libc();
    final FdHandle fd;
    final Readiness readiness;
    final String description;
    /** Used only by the single reader or writer of this end. */
    private ByteBuffer temp;

    PipeEnd(FdHandle fd, Readiness readiness, String description) {
        this.fd = fd;
        this.readiness = readiness;
        this.description = description;
    }

    /** Returns true until {@link #close()} is called. */
    public final boolean isOpen() {
        return !fd.isClosed();
    }

    /**
     * Closes this end. Idempotent, non-blocking, callable from any thread. A thread parked in read or write wakes with
     * {@link AsynchronousCloseException}; the fd is removed from the reactor and closed once no syscall uses it.
     */
    @Override
    public final void close() {
        if (fd.close()) {
            readiness.wakeWaiter();
        }
    }

    @Override
    public final String toString() {
        return description + (isOpen() ? "" : " (closed)");
    }

    /**
     * One non-blocking read(2) or write(2) on the fd, holding it open for the duration.
     *
     * @return the byte count, or minus errno
     * @throws AsynchronousCloseException if the handle was closed
     */
    final long transfer(long address, int length, boolean read) throws AsynchronousCloseException {
        if (!fd.acquire()) {
            throw new AsynchronousCloseException();
        }
        try {
            long n = read ? libc.read(fd.fd(), address, length) : libc.write(fd.fd(), address, length);
            return n >= 0 ? n : -nl.errno();
        } finally {
            fd.release();
        }
    }

    /**
     * Parks until the reactor reports readiness after sequence {@code observed} (see {@link Readiness}), the deadline
     * passes, this end is closed or the thread is interrupted.
     *
     * @param op "read from" or "write to", for messages
     * @param moved "arrived" or "written", for the timeout message
     * @param done bytes moved so far of {@code total}
     */
    final void await(long observed, Deadline deadline, String op, String moved, int done, int total)
            throws IOException {
        switch (readiness.await(observed, deadline, fd)) {
            case READY -> {}
            case CLOSED -> throw new AsynchronousCloseException();
            case TIMED_OUT ->
                throw new DeadlineExceededException(op + " " + description + " did not complete by its deadline: "
                        + done + " of " + total + " bytes " + moved);
            case INTERRUPTED -> {
                InterruptedIOException e =
                        new InterruptedIOException("interrupted while waiting to " + op + " " + description);
                e.bytesTransferred = done;
                throw e;
            }
        }
    }

    /** The temporary direct buffer for heap-buffer I/O, grown to {@code wanted} bytes within [8 KiB, 64 KiB]. */
    final ByteBuffer temp(int wanted) {
        ByteBuffer t = temp;
        int size = Math.min(TEMP_MAX, Math.max(TEMP_MIN, wanted));
        if (t == null || (t.capacity() < size)) {
            t = ByteBuffer.allocateDirect(size);
            temp = t;
        }
        return t;
    }
}
