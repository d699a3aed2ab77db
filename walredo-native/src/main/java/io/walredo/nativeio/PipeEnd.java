// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.FdHandle;
import io.walredo.nativeio.internal.LibC;
import io.walredo.nativeio.internal.Linux;
import io.walredo.nativeio.internal.NativeLibrary;
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
 * The parent's end of one pipe to or from a child: the write end of its stdin, or the read end of its stdout or
 * stderr. Created by {@link NativeRuntime#spawn} as part of a {@link ChildProcess}, which owns it and closes it.
 *
 * <p>The fd is non-blocking and registered once with the reactor (one-shot: it reports readiness only to a thread that
 * has just re-armed it before parking). A read or write first tries the syscall; only when the pipe is empty (or
 * full) does the calling thread park until the reactor reports readiness or the deadline passes, so a virtual thread waiting here holds no carrier and no platform thread. Direct buffers are
 * read into and written from in place; heap buffers work through a temporary direct buffer of at most 64 KiB.
 *
 * <p>Threads: at most one thread reads (or writes) at a time; the caller guarantees that. {@link #close()} may be
 * called from any thread at any time: a waiter parked here wakes with {@link AsynchronousCloseException}, and a
 * syscall in progress finishes on the still-open fd, whose number is released only after the last such call returns.
 */
public final class PipeEnd implements AutoCloseable {

  private static final int TEMP_MIN = 8192;
  private static final int TEMP_MAX = 64 * 1024;

  private final NativeLibrary nl = NativeLibrary.get();
  private final LibC libc = nl.libc();
  private final FdHandle fd;
  private final Readiness readiness;
  private final boolean readable;
  private final String description;
  /** Used only by the single reader or writer of this end. */
  private ByteBuffer temp;

  PipeEnd(FdHandle fd, Readiness readiness, boolean readable, String description) {
    this.fd = fd;
    this.readiness = readiness;
    this.readable = readable;
    this.description = description;
  }

  private void checkReadable(ByteBuffer dst, Deadline deadline) throws ClosedChannelException {
    requireDirection(true);
    Objects.requireNonNull(dst, "dst");
    Objects.requireNonNull(deadline, "deadline");
    if (dst.isReadOnly()) {
      throw new IllegalArgumentException("read into a read-only buffer");
    }
    if (!isOpen()) {
      throw new ClosedChannelException();
    }
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
        throw new EOFException("end of stream on " + description + " after " + done + " of " + total + " bytes");
      }
      done += n;
    }
  }

  /**
   * Writes all of {@code src}, parking while the pipe is full.
   *
   * @throws NativeCallException with errno EPIPE if the reader is gone (the child exited or closed its stdin)
   * @throws DeadlineExceededException if not everything was written by the deadline; {@code src}'s position then tells
   *     how much was
   * @throws IOException otherwise as {@link #read} (closed, interrupted, write(2) failed)
   */
  public void writeFully(ByteBuffer src, Deadline deadline) throws IOException {
    requireDirection(false);
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

  /**
   * Returns how many bytes a read could take now without waiting ({@code ioctl(FIONREAD)}), consuming none; 0 when the
   * pipe is empty or at end of stream. Non-blocking; any thread may call it, also while another thread reads.
   *
   * @throws ClosedChannelException if this end is closed
   * @throws NativeCallException if ioctl(2) fails
   */
  public int available() throws IOException {
    requireDirection(true);
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

  /** Returns true until {@link #close()} is called. */
  public boolean isOpen() {
    return !fd.isClosed();
  }

  /**
   * Closes this end. Idempotent, non-blocking, callable from any thread. A thread parked in read or write wakes with
   * {@link AsynchronousCloseException}; the fd is removed from the reactor and closed once no syscall uses it.
   */
  @Override
  public void close() {
    if (fd.close()) {
      readiness.wakeWaiter();
    }
  }

  @Override
  public String toString() {
    return description + (isOpen() ? "" : " (closed)");
  }

  /** Reads once into {@code dst} (direct or heap), waiting for data; {@code done}/{@code total} are for messages. */
  private int readSome(ByteBuffer dst, Deadline deadline, int done, int total, long spinNanos)
      throws IOException {
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

  private int readDirect(ByteBuffer dst, Deadline deadline, int done, int total, long spinNanos)
      throws IOException {
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
            await(observed, deadline, "read from", done, total);
          }
          continue;
        }
      }
      await(observed, deadline, "read from", done, total);
    }
  }

  /** Writes all of direct {@code src}; {@code doneBefore}/{@code total} count bytes of the caller's whole buffer. */
  private void writeDirect(ByteBuffer src, Deadline deadline, int doneBefore, int total) throws IOException {
    long base = nl.address(src);
    int start = src.position();
    while (src.hasRemaining()) {
      long observed = readiness.sequence();
      long n = transfer(base + src.position(), src.remaining(), false);
      if (n > 0) {
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
            "writing " + description + ": the reader is gone (the child exited or closed its stdin) after " + done
                + " of " + total + " bytes");
      }
      if (errno != Linux.EAGAIN) {
        throw new NativeCallException("write", errno, "writing " + description);
      }
      await(observed, deadline, "write to", done, total);
    }
  }

  /**
   * One non-blocking read(2) or write(2) on the fd, holding it open for the duration.
   *
   * @return the byte count, or minus errno
   * @throws AsynchronousCloseException if the handle was closed
   */
  private long transfer(long address, int length, boolean read) throws AsynchronousCloseException {
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

  private void await(long observed, Deadline deadline, String op, int done, int total) throws IOException {
    switch (readiness.await(observed, deadline, fd)) {
      case READY -> {}
      case CLOSED -> throw new AsynchronousCloseException();
      case TIMED_OUT ->
          throw new DeadlineExceededException(
              op + " " + description + " did not complete by its deadline: " + done + " of " + total + " bytes "
                  + (readable ? "arrived" : "written"));
      case INTERRUPTED -> {
        InterruptedIOException e =
            new InterruptedIOException("interrupted while waiting to " + op + " " + description);
        e.bytesTransferred = done;
        throw e;
      }
    }
  }

  private ByteBuffer temp(int wanted) {
    ByteBuffer t = temp;
    int size = Math.min(TEMP_MAX, Math.max(TEMP_MIN, wanted));
    if (t == null || (t.capacity() < size)) {
      t = ByteBuffer.allocateDirect(size);
      temp = t;
    }
    return t;
  }

  private void requireDirection(boolean read) {
    if (read != readable) {
      throw new UnsupportedOperationException(description + " is " + (readable ? "read" : "write") + "-only");
    }
  }
}
