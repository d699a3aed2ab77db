// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.Deadline;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Readiness of one edge-triggered pipe end: a sequence number the reactor bumps on every epoll event, and the one
 * thread (the single reader or the single writer of that end) parked until it changes.
 *
 * <h2>Why no wake-up is lost</h2>
 *
 * <p>A waiter does, in this order: (1) read the sequence {@code s}; (2) try the non-blocking syscall and get EAGAIN;
 * (3) publish itself in {@link #waiter}; (4) re-read the sequence and return if it is no longer {@code s}; (5) park.
 * The reactor, for each event: (a) increments the sequence; (b) reads {@link #waiter} and unparks it.
 *
 * <p>The pipe is edge-triggered, so the only event that matters is the first one after the syscall in (2) found the
 * pipe empty (or full): data (or room) arriving later produces a new event, whose (a) happens after (2) and therefore
 * after (1). Both fields are volatile, so (3)→(4) and (a)→(b) are totally ordered against each other:
 *
 * <ul>
 *   <li>(a) before (4): the waiter sees a changed sequence and retries the syscall without parking;
 *   <li>(a) after (4): then (b) comes after (3), the reactor sees the waiter and unparks it. If (b) runs before (5),
 *       the unpark leaves a permit and (5) returns at once.
 * </ul>
 *
 * <p>An event between (1) and (2) at worst causes one needless retry. {@link #wakeWaiter()} after {@link
 * FdHandle#close()} follows the same pattern with the closed flag in place of the sequence. Unparks may be spurious
 * (the reactor may unpark a thread that has just timed out and moved on); every park here sits in a loop that
 * re-checks its condition, as LockSupport requires anyway.
 *
 * <p>Thread-safe under the rule that at most one thread waits at a time. Internal API.
 */
public final class Readiness implements Reactor.Target {

  /** Why {@link #await} returned. */
  public enum Wake {
    /** The sequence changed: retry the syscall. */
    READY,
    /** The fd handle was closed. */
    CLOSED,
    /** The deadline passed. */
    TIMED_OUT,
    /** The waiting thread was interrupted (its interrupt status is still set). */
    INTERRUPTED
  }

  private final AtomicLong sequence = new AtomicLong();
  private volatile Thread waiter;
  private volatile Runnable unattended;

  /** Creates a readiness with sequence 0 and no waiter. */
  public Readiness() {}

  /** Step (1): returns the current sequence; read it before the syscall that may fail with EAGAIN. */
  public long sequence() {
    return sequence.get();
  }

  /**
   * Steps (a) and (b); runs on the reactor thread. An event that finds no waiter runs the {@linkplain #onUnattended
   * unattended listener}, if any: that is how an owner learns of readiness nobody asked for (unsolicited output).
   * The listener also runs for events whose data a reader consumed before parking, so it must re-check the state.
   */
  @Override
  public void onEvents(int events) {
    sequence.incrementAndGet();
    Thread w = waiter;
    if (w != null) {
      LockSupport.unpark(w);
      return;
    }
    Runnable r = unattended;
    if (r != null) {
      r.run();
    }
  }

  /** Sets the action run on the reactor thread for an event that finds no waiter; it must not block. */
  public void onUnattended(Runnable listener) {
    unattended = listener;
  }

  /** Unparks the waiter, if any; call after closing the handle it waits on. */
  public void wakeWaiter() {
    Thread w = waiter;
    if (w != null) {
      LockSupport.unpark(w);
    }
  }

  /**
   * Steps (3) to (5): parks the calling thread until the sequence differs from {@code observed}, {@code fd} is closed,
   * the deadline passes or the thread is interrupted. Parking a virtual thread releases its carrier.
   */
  public Wake await(long observed, Deadline deadline, FdHandle fd) {
    Thread me = Thread.currentThread();
    waiter = me;
    try {
      while (true) {
        if (sequence.get() != observed) {
          return Wake.READY;
        }
        if (fd.isClosed()) {
          return Wake.CLOSED;
        }
        long remaining = deadline.remainingNanos();
        if (remaining <= 0) {
          return Wake.TIMED_OUT;
        }
        if (me.isInterrupted()) {
          return Wake.INTERRUPTED;
        }
        LockSupport.parkNanos(this, remaining);
      }
    } finally {
      waiter = null;
    }
  }
}
