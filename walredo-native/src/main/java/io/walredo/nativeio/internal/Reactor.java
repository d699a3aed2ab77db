// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.NativeCallException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One epoll set and the one daemon platform thread ({@code walredo-reactor}) that waits on it.
 *
 * <p>The reactor does no I/O itself. For a pipe end it only bumps a sequence number and unparks the waiting thread
 * ({@link Readiness}); for a pidfd it reaps the child ({@link Reaper}). So its work per event is a map lookup and an
 * unpark or one {@code waitpid(WNOHANG)}, and a thousand sidecars cost one thread.
 *
 * <p>Each registration carries a token, never reused, in {@code epoll_data}, not the fd: an event fetched by
 * {@code epoll_wait} just before another thread deregistered and closed that fd (and the JVM reused its number)
 * then finds no target instead of waking the new owner of the number.
 *
 * <p>{@link #register} and {@link #deregister} may be called from any thread ({@code epoll_ctl} is safe alongside a
 * running {@code epoll_wait}). Targets' {@code onEvents} run on the reactor thread and must not block. Internal API.
 */
public final class Reactor {

  /** Receives the epoll events of one registration, on the reactor thread. Must not block. */
  public interface Target {
    /** Called with the {@code events} mask reported by epoll. */
    void onEvents(int events);
  }

  private static final Logger log = LoggerFactory.getLogger(Reactor.class);
  private static final int MAX_EVENTS = 256;
  /**
   * struct epoll_event is {u32 events; u64 data} and packed on x86-64 only (12 bytes, data at offset 4); other
   * architectures use natural alignment (16 bytes, data at offset 8).
   */
  private static final boolean PACKED_EPOLL_EVENT = isX86_64();
  private static final int EVENT_SIZE = PACKED_EPOLL_EVENT ? 12 : 16;
  private static final int DATA_OFFSET = PACKED_EPOLL_EVENT ? 4 : 8;

  private final NativeLibrary nl = NativeLibrary.get();
  private final LibC libc = nl.libc();
  private final int epfd;
  private final ConcurrentHashMap<Long, Target> targets = new ConcurrentHashMap<>();
  private final AtomicLong nextToken = new AtomicLong(1);
  private final Thread thread;

  private Reactor(int epfd) {
    this.epfd = epfd;
    this.thread = Thread.ofPlatform().name("walredo-reactor").daemon(true).unstarted(this::run);
  }

  /**
   * Creates the epoll set and starts the reactor thread. Called once per process by the native runtime.
   *
   * @throws NativeCallException if {@code epoll_create1} fails
   */
  public static Reactor start() throws NativeCallException {
    NativeLibrary nl = NativeLibrary.get();
    int epfd = nl.libc().epoll_create1(Linux.EPOLL_CLOEXEC);
    if (epfd < 0) {
      throw new NativeCallException("epoll_create1", nl.errno(), "cannot create the walredo reactor");
    }
    Reactor reactor = new Reactor(epfd);
    reactor.thread.start();
    return reactor;
  }

  /**
   * Adds {@code fd} to the epoll set with {@code events}; its events go to {@code target} until the handle is closed
   * (closing deregisters). Call at most once per handle, before the handle is shared.
   *
   * @throws NativeCallException if {@code epoll_ctl} fails (ENOMEM, ENOSPC: max_user_watches reached)
   */
  public void register(FdHandle fd, int events, Target target) throws NativeCallException {
    long token = nextToken.getAndIncrement();
    // The target goes in first: an event may arrive before epoll_ctl returns.
    targets.put(token, target);
    int rc;
    int errno = 0;
    try (NativeMemory event = new NativeMemory(16)) {
      long address = event.allocate(EVENT_SIZE);
      event.putInt(address, events);
      event.putLong(address + DATA_OFFSET, token);
      rc = libc.epoll_ctl(epfd, Linux.EPOLL_CTL_ADD, fd.fd(), address);
      if (rc != 0) {
        errno = nl.errno();
      }
    }
    if (rc != 0) {
      targets.remove(token);
      throw new NativeCallException("epoll_ctl", errno, "cannot register " + fd + " with the walredo reactor");
    }
    fd.registered(this, token);
  }

  /**
   * Removes a registration; {@code fd} must still be open (the caller holds a use of it). Called by {@link
   * FdHandle#close()}.
   */
  void deregister(int fd, long token) {
    // EPOLL_CTL_DEL ignores the event argument since Linux 2.6.9.
    if (libc.epoll_ctl(epfd, Linux.EPOLL_CTL_DEL, fd, 0) != 0) {
      int errno = nl.errno();
      log.atWarn().addKeyValue("fd", fd).addKeyValue("errno", Errors.name(errno)).log("epoll_ctl DEL failed");
    }
    targets.remove(token);
  }

  /** Returns the number of live registrations (for tests and diagnostics). */
  public int registrations() {
    return targets.size();
  }

  private void run() {
    // Lives as long as the process: the buffer is never freed.
    @SuppressWarnings("resource")
    NativeMemory events = new NativeMemory((long) MAX_EVENTS * EVENT_SIZE);
    long buffer = events.allocate((long) MAX_EVENTS * EVENT_SIZE);
    while (true) {
      int n = libc.epoll_wait(epfd, buffer, MAX_EVENTS, -1);
      if (n < 0) {
        int errno = nl.errno();
        if (errno != Linux.EINTR) {
          // Only a bug (EBADF, EINVAL) gets here; back off instead of spinning, and keep serving.
          log.atError().addKeyValue("errno", Errors.name(errno)).log("epoll_wait failed");
          LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
        continue;
      }
      for (int i = 0; i < n; i++) {
        long address = buffer + (long) i * EVENT_SIZE;
        int mask = events.getInt(address);
        long token = events.getLong(address + DATA_OFFSET);
        Target target = targets.get(token);
        if (target == null) {
          continue;
        }
        try {
          target.onEvents(mask);
        } catch (Throwable t) {
          // The reactor must survive anything: if it died, every parked reader and every exit would hang.
          log.atError().setCause(t).addKeyValue("token", token).log("reactor target failed");
        }
      }
    }
  }

  private static boolean isX86_64() {
    String arch = System.getProperty("os.arch", "");
    return arch.equals("amd64") || arch.equals("x86_64");
  }
}
