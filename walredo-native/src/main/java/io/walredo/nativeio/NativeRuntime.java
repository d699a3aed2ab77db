// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.Errors;
import io.walredo.nativeio.internal.FdHandle;
import io.walredo.nativeio.internal.LibC;
import io.walredo.nativeio.internal.Linux;
import io.walredo.nativeio.internal.NativeLibrary;
import io.walredo.nativeio.internal.Reactor;
import io.walredo.nativeio.internal.Readiness;
import io.walredo.nativeio.internal.Reaper;
import io.walredo.nativeio.internal.Spawner;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The process-wide native runtime: the libc binding (loaded once, ~300 ms), one epoll reactor thread ({@code
 * walredo-reactor}) that wakes parked pipe readers and writers and reaps children, and two spawner threads ({@code
 * walredo-spawner-1}, {@code -2}) that run posix_spawn. All are daemon platform threads that live as long as the
 * process; there is nothing to close.
 *
 * <p>Spawning runs on its own platform threads because posix_spawn blocks its caller until the child has exec'd: on a
 * virtual thread it would pin a carrier, and a thousand cold starts at once would stall every virtual thread. The
 * caller of {@link #spawn} parks on a future meanwhile.
 *
 * <p>Thread-safe.
 */
public final class NativeRuntime {

    private static final Logger log = LoggerFactory.getLogger(NativeRuntime.class);
    private static final int SPAWNER_THREADS = 2;
    /** Pipe ends are one-shot: see {@link Reactor}'s class comment and {@link Readiness}. */
    private static final int READ_EVENTS = Linux.EPOLLIN | Linux.EPOLLRDHUP | Linux.EPOLLET | Linux.EPOLLONESHOT;

    private static final int WRITE_EVENTS = Linux.EPOLLOUT | Linux.EPOLLET | Linux.EPOLLONESHOT;

    private static final ReentrantLock INIT_LOCK = new ReentrantLock();
    private static volatile NativeRuntime instance;
    /** Set once if initialisation failed; later calls fail fast with the same reason instead of retrying. */
    private static IllegalStateException failure;

    private final Reactor reactor;
    private final Spawner spawner;
    private final ThreadPoolExecutor spawnerPool;
    private final ExecutorService callbacks;

    private NativeRuntime() throws IOException {
        String os = System.getProperty("os.name", "");
        if (!os.equals("Linux")) {
            throw new IllegalStateException("walredo-native supports Linux only; this is " + os);
        }
        probePidfd(NativeLibrary.get());
        spawner = new Spawner();
        reactor = Reactor.start();
        AtomicInteger spawnerIds = new AtomicInteger();
        spawnerPool = new ThreadPoolExecutor(
                SPAWNER_THREADS,
                SPAWNER_THREADS,
                0,
                TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(),
                r -> Thread.ofPlatform()
                        .name("walredo-spawner-" + spawnerIds.incrementAndGet())
                        .daemon(true)
                        .unstarted(r));
        callbacks = Executors.newThreadPerTaskExecutor(
                Thread.ofVirtual().name("walredo-callback-", 0).factory());
        log.atInfo().addKeyValue("closefrom", spawner.closesInheritedFds()).log("walredo native runtime started");
    }

    /**
     * Arms an alarm that unparks the calling thread when {@code deadline} passes, unless it is closed first; see {@link
     * DeadlineAlarm} for why and what a wake-up means. First fires, from the calling thread, every alarm already due.
     * Close it in a {@code finally} (try-with-resources) when the operation it guards ends. Non-blocking; any thread.
     */
    public DeadlineAlarm armAlarm(Deadline deadline) {
        Objects.requireNonNull(deadline, "deadline");
        return reactor.arm(deadline, Thread.currentThread());
    }

    /**
     * SIGKILLs a process that is not a child of this runtime (an orphan of an earlier process, say) if, and only if,
     * {@code stillTheOne} approves it after a pidfd for {@code pid} is open. The pidfd pins the process: whatever
     * {@code stillTheOne} checks (from {@code /proc/PID}) is about the process the signal reaches, so a pid reused
     * between a scan and this call is never hit. Blocking only for the predicate's own reads.
     *
     * @return true if the signal was sent; false if there is no such process (any more) or the predicate refused
     * @throws NativeCallException if pidfd_open or pidfd_send_signal fails otherwise (EPERM: another user's process)
     */
    public boolean killIfStill(int pid, BooleanSupplier stillTheOne) throws NativeCallException {
        Objects.requireNonNull(stillTheOne, "stillTheOne");
        if (pid <= 0) {
            throw new IllegalArgumentException("pid must be positive: " + pid);
        }
        NativeLibrary nl = NativeLibrary.get();
        int pidfd = nl.libc().pidfd_open(pid, 0);
        if (pidfd < 0) {
            int errno = nl.errno();
            if (errno == Linux.ESRCH) {
                return false;
            }
            throw new NativeCallException("pidfd_open", errno, "cannot open pid " + pid);
        }
        try {
            if (!stillTheOne.getAsBoolean()) {
                return false;
            }
            if (nl.libc().pidfd_send_signal(pidfd, Linux.SIGKILL, 0, 0) == 0) {
                return true;
            }
            int errno = nl.errno();
            if (errno == Linux.ESRCH) {
                return false;
            }
            throw new NativeCallException("pidfd_send_signal", errno, "cannot SIGKILL pid " + pid);
        } finally {
            nl.libc().close(pidfd);
        }
    }

    /** Returns the number of alarms armed and not yet fired or closed (for tests and diagnostics). */
    public int armedAlarms() {
        return reactor.armedAlarms();
    }

    /**
     * Returns the runtime, initialising it on the first call (thread-safe; later calls return at once).
     *
     * @throws IllegalStateException if this platform is unsupported (not Linux, libc cannot be bound with jnr-ffi, no
     *     pidfd_open in glibc or kernel, epoll unavailable); the message says which, and every later call fails the same
     *     way
     */
    public static NativeRuntime get() {
        NativeRuntime r = instance;
        if (r != null) {
            return r;
        }
        INIT_LOCK.lock();
        try {
            if (instance != null) {
                return instance;
            }
            if (failure != null) {
                throw new IllegalStateException(failure.getMessage(), failure);
            }
            try {
                instance = new NativeRuntime();
                return instance;
            } catch (IllegalStateException e) {
                failure = e;
            } catch (IOException | LinkageError | RuntimeException e) {
                // A failed class initialisation (loading libc) hides the reason in its cause.
                Throwable reason = e instanceof ExceptionInInitializerError && e.getCause() != null ? e.getCause() : e;
                failure = new IllegalStateException("walredo-native cannot start on this platform: " + reason, e);
            }
            throw failure;
        } finally {
            INIT_LOCK.unlock();
        }
    }

    /**
     * Spawns a child on a spawner thread; the calling thread parks until it has started or failed.
     *
     * @throws SpawnException if it could not be started (the message names the executable, the call and the errno);
     *     no fd and no child is left behind
     * @throws DeadlineExceededException if the spawn did not finish by the deadline (spawner threads busy); a child that
     *     starts later is killed
     * @throws InterruptedIOException if interrupted while waiting (the interrupt status stays set)
     */
    public ChildProcess spawn(SpawnSpec spec, Deadline deadline) throws IOException {
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(deadline, "deadline");
        CompletableFuture<ChildProcess> pending = submit(spec);
        try {
            return pending.get(Math.max(0, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            if (pending.cancel(false)) {
                throw new DeadlineExceededException(
                        "spawning " + spec.executable() + " did not finish by its deadline ("
                                + spawnerPool.getQueue().size() + " spawns queued)");
            }
            return resultOf(pending);
        } catch (InterruptedException e) {
            if (!pending.cancel(false) && !pending.isCompletedExceptionally()) {
                pending.join().close();
            }
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while spawning " + spec.executable());
        } catch (ExecutionException e) {
            throw unwrap(e);
        }
    }

    /**
     * Returns the number of a signal by name, e.g. {@code "SIGKILL"} (or {@code "KILL"}) gives 9.
     *
     * @throws IllegalArgumentException for an unknown name
     */
    public static int signalNumber(String name) {
        int n = Errors.signalNumber(Objects.requireNonNull(name, "name"));
        if (n < 0) {
            throw new IllegalArgumentException("unknown signal name: " + name);
        }
        return n;
    }

    /**
     * Queues the spawn. The future is completed on a spawner thread and has no dependents but our own waiters; if it is
     * cancelled first, the spawn is skipped, or its child is closed.
     */
    private CompletableFuture<ChildProcess> submit(SpawnSpec spec) {
        CompletableFuture<ChildProcess> pending = new CompletableFuture<>();
        spawnerPool.execute(() -> {
            if (pending.isDone()) {
                return;
            }
            try {
                ChildProcess child = spawnNow(spec);
                if (!pending.complete(child)) {
                    child.close();
                }
            } catch (Throwable t) {
                pending.completeExceptionally(t);
            }
        });
        return pending;
    }

    /** Runs on a spawner thread. */
    private ChildProcess spawnNow(SpawnSpec spec) throws SpawnException {
        Spawner.Spawned s = spawner.spawn(spec.executable(), spec.argv(), spec.environment(), spec.containment());
        int pid = s.pid();
        FdHandle pidfd = new FdHandle(s.pidfd());
        FdHandle in = new FdHandle(s.stdin());
        FdHandle out = new FdHandle(s.stdout());
        FdHandle err = new FdHandle(s.stderr());
        try {
            Readiness inReady = new Readiness(reactor);
            Readiness outReady = new Readiness(reactor);
            Readiness errReady = new Readiness(reactor);
            reactor.register(in, WRITE_EVENTS, inReady);
            reactor.register(out, READ_EVENTS, outReady);
            reactor.register(err, READ_EVENTS, errReady);
            Reaper reaper = new Reaper(pid, pidfd, callbacks);
            ChildProcess child = new ChildProcess(
                    pid,
                    spec.executable(),
                    new PipeWriteEnd(in, inReady, "stdin of pid " + pid),
                    new PipeReadEnd(out, outReady, "stdout of pid " + pid),
                    new PipeReadEnd(err, errReady, "stderr of pid " + pid),
                    reaper);
            log.atDebug()
                    .addKeyValue("pid", pid)
                    .addKeyValue("executable", spec.executable())
                    .log("child spawned");
            // Last step, so nothing that can fail follows it: once it returns, the reactor reaps the child, and
            // abandon (a second kill and reap of the same pid) must not run.
            reactor.register(pidfd, Linux.EPOLLIN, reaper);
            return child;
        } catch (NativeCallException e) {
            abandon(pid, pidfd, in, out, err);
            SpawnException se = new SpawnException(spec.executable(), e.syscall(), e.errno());
            se.initCause(e);
            throw se;
        } catch (RuntimeException | Error e) {
            abandon(pid, pidfd, in, out, err);
            throw e;
        }
    }

    /** Undoes a spawn whose pidfd never reached the reactor: kill, reap here, close every fd. */
    private void abandon(int pid, FdHandle pidfd, FdHandle in, FdHandle out, FdHandle err) {
        spawner.killAndReap(pid, Deadline.after(Spawner.ABANDON_REAP_LIMIT));
        pidfd.close();
        in.close();
        out.close();
        err.close();
    }

    private static ChildProcess resultOf(CompletableFuture<ChildProcess> done) throws IOException {
        try {
            return done.get();
        } catch (ExecutionException e) {
            throw unwrap(e);
        } catch (InterruptedException e) {
            // Unreachable: the future is complete, get() does not wait.
            Thread.currentThread().interrupt();
            throw new InterruptedIOException();
        }
    }

    private static IOException unwrap(ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof IOException io) {
            return io;
        }
        if (cause instanceof RuntimeException re) {
            throw re;
        }
        if (cause instanceof Error err) {
            throw err;
        }
        return new IOException(cause);
    }

    private static void probePidfd(NativeLibrary nl) {
        LibC libc = nl.libc();
        int pidfd;
        try {
            pidfd = libc.pidfd_open(libc.getpid(), 0);
        } catch (UnsatisfiedLinkError e) {
            throw new IllegalStateException(
                    "walredo-native needs pidfd_open, which this libc lacks (glibc >= 2.36)", e);
        }
        if (pidfd < 0) {
            int errno = nl.errno();
            throw new IllegalStateException(
                    "walredo-native needs pidfd_open (Linux >= 5.3): pidfd_open failed with errno " + errno + " "
                            + Errors.name(errno));
        }
        try {
            if (libc.pidfd_send_signal(pidfd, 0, 0, 0) != 0) {
                int errno = nl.errno();
                throw new IllegalStateException(
                        "walredo-native needs pidfd_send_signal (Linux >= 5.1): it failed with errno " + errno + " "
                                + Errors.name(errno));
            }
        } catch (UnsatisfiedLinkError e) {
            throw new IllegalStateException(
                    "walredo-native needs pidfd_send_signal, which this libc lacks (glibc >= 2.36)", e);
        } finally {
            libc.close(pidfd);
        }
    }
}
