// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineAlarm;
import io.walredo.nativeio.NativeCallException;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
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
 * <h2>Deadline alarms</h2>
 *
 * <p>The reactor also fires {@link Alarms}: {@code epoll_wait} sleeps until the next armed deadline (at most {@link
 * #HORIZON} ahead), and each pass fires the due alarms before it dispatches events. Why the reactor and not a timer
 * thread of its own: every thread outside the virtual-thread scheduler submits its wake-ups to a submission queue of
 * its own, and a scheduler worker that finds a queue non-empty keeps taking from that queue while it stays non-empty
 * ({@code ForkJoinPool.runWorker}). Under load the reactor's queue never empties, so the JDK timer's queue (and any
 * other thread's) waits; measured, timed-out callers returned seconds late. Wake-ups from the reactor are served in
 * order with the reactor's other wake-ups.
 *
 * <p><b>Alarms fired by the threads that arm them.</b> Each thread that arms an alarm first fires the alarms already
 * due. Under load these threads are callers on virtual-thread carriers, and a wake-up from a carrier goes to that
 * carrier's local queue, which the carrier runs as soon as its current virtual thread parks, before any submission
 * queue. The reactor's own wake-ups wait behind every pipe wake-up in its submission queue, about one round of all
 * runnable callers. So the reactor leaves a due alarm to the callers for {@link #CALLERS_FIRST} after it has first
 * seen it due, and fires it only then. Measured from the deadline instead, the reactor won the race for the alarms
 * that fell due during a garbage-collection pause (it runs first when the pause ends) and those callers returned a
 * round late; with no grace at all it won about one alarm in nine. Whichever thread wins an alarm's CAS fires it.
 *
 * <p>How the reactor knows what it has seen: passes are grouped into epochs of at least {@link #CALLERS_FIRST}; the
 * first pass at least that long after the current epoch's first pass begins the next ({@link #epochStart}). An alarm
 * due at the first pass of the previous epoch ({@link #lastEpochStart}) was seen due at least {@link #CALLERS_FIRST}
 * ago, so each pass fires exactly those. An idle process fires an alarm one to two {@link #CALLERS_FIRST} after its
 * deadline (plus the millisecond rounding of {@code epoll_wait}). Measured in {@code docs/architecture.md}
 * ("Deadlines under load").
 *
 * <p>No alarm is missed while the reactor sleeps. The reactor (1) computes its wake-up from the earliest alarm
 * ({@link #wakeFor}), (2) publishes it in {@link #plannedWake}, (3) re-reads the earliest alarm and re-plans if that
 * gives an earlier wake-up, then sleeps. An armer (a) adds its alarm, (b) reads {@link #plannedWake} and, if its
 * deadline is earlier, writes the eventfd. If (a) precedes (3), the reactor sees the alarm in (3); otherwise (b)
 * follows (2) and sees the plan the reactor sleeps with, so the write wakes it. An alarm no earlier than the plan
 * needs no write: no pass has seen it due, so the wake-up it needs is no earlier than its deadline, and the planned
 * pass re-plans. {@link #wakeRequested} only suppresses duplicate writes: it is cleared before (1), so an
 * armer that finds it set knows that a wake-up is still to come and that (1) will follow it.
 *
 * <h2>One-shot pipe registrations</h2>
 *
 * <p>Pipe ends are registered with {@link Linux#EPOLLONESHOT}: after one event the registration is disabled, and
 * only a thread about to park re-arms it ({@link FdHandle#rearm()}, one {@code EPOLL_CTL_MOD}). Why: once a pipe
 * has been polled, the kernel wakes its epoll waiters on every write to it, not only when it was empty. Armed for
 * good, a sidecar's stdout woke this thread once per answer, although the reader nearly always took the answer
 * without parking; each wake-up cost this thread a context switch and the sidecar a cross-CPU wake-up. Measured
 * with 16 callers on one sidecar: 26-45k redos/s at 30-46 µs of JVM CPU and 9-19 µs of sidecar CPU per redo
 * before, 44-58k redos/s at 23-31 and 7-8 µs after (see {@code docs/architecture.md}). {@link Readiness} says
 * why no wake-up is lost.
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
     * The longest the reactor sleeps, alarms or not. An alarm whose deadline lies beyond the planned wake-up needs no
     * eventfd write: with this horizon, only deadlines under a second can need one. Costs one idle wake-up a second.
     */
    static final Duration HORIZON = Duration.ofSeconds(1);
    /**
     * How long after it has seen an alarm due the reactor leaves it to the threads arming alarms (see "Alarms fired by
     * the threads that arm them" in the class comment). Under load a caller fires it within microseconds; the reactor
     * fires it only when no caller came by.
     */
    static final Duration CALLERS_FIRST = Duration.ofMillis(1);
    /**
     * How long after its deadline an alarm is due. A timed wait of the JDK's own ({@code Semaphore.tryAcquire},
     * {@code Condition.awaitNanos}, {@code CompletableFuture.get}) computes its end from the nanos it is given, a moment
     * after the caller read them from the same deadline, so it ends slightly after the deadline; woken before that
     * end, it parks again for the rest on the JDK's timer, whose wake-ups wait a round of the scheduler under load.
     * Due this much later, an alarm finds such a wait over unless more than this passed between the two reads (a
     * pause).
     */
    static final long AFTER_DEADLINE_NANOS = TimeUnit.MICROSECONDS.toNanos(200);
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
    private final long horizonNanos;
    private final long callersFirstNanos;
    private final Alarms alarms = new Alarms();
    /** Alarms of {@link Readiness} waits ({@link #armForWait}); fired in the same passes as {@link #alarms}. */
    private final Alarms waitAlarms = new Alarms();
    /** False once the loop has ended (only by a failure it could not catch); see {@link #isRunning}. */
    private volatile boolean running = true;

    private final FdHandle wakeFd;
    /** Eight bytes holding the counter increment 1; read-only after construction, shared by every writer. */
    private final long one;
    /** Eight bytes the reactor thread reads the counter into. */
    private final long counter;
    /** The nanoTime the reactor plans to wake at; see the class comment. */
    private volatile long plannedWake;
    /**
     * The pass that began the current epoch, and the one that began the epoch before; an epoch lasts at least
     * CALLERS_FIRST. Reactor thread only; see "Alarms fired by the threads that arm them" in the class comment.
     */
    private long epochStart;

    private long lastEpochStart;

    private final AtomicBoolean wakeRequested = new AtomicBoolean();
    /** Events dispatched to targets; written by the reactor thread only. */
    private volatile long dispatched;

    private Reactor(int epfd, FdHandle wakeFd, Duration horizon, Duration callersFirst) {
        this.epfd = epfd;
        this.wakeFd = wakeFd;
        this.horizonNanos = horizon.toNanos();
        this.callersFirstNanos = callersFirst.toNanos();
        this.plannedWake = System.nanoTime();
        this.epochStart = plannedWake;
        this.lastEpochStart = plannedWake;
        // Lives as long as the reactor, which lives as long as the process.
        @SuppressWarnings("resource")
        NativeMemory words = new NativeMemory(2 * NativeMemory.footprint(Long.BYTES));
        this.one = words.allocate(Long.BYTES);
        this.counter = words.allocate(Long.BYTES);
        words.putLong(one, 1);
        this.thread = Thread.ofPlatform().name("walredo-reactor").daemon(true).unstarted(this::run);
    }

    /**
     * Creates the epoll set and the wake-up eventfd and starts the reactor thread. Called once per process by the
     * native runtime.
     *
     * @throws NativeCallException if {@code epoll_create1}, {@code eventfd} or registering it fails
     */
    public static Reactor start() throws NativeCallException {
        return start(HORIZON, CALLERS_FIRST);
    }

    /** As {@link #start()}, with a different sleep horizon; tests use a long one to prove the eventfd wakes it. */
    static Reactor start(Duration horizon) throws NativeCallException {
        return start(horizon, CALLERS_FIRST);
    }

    /**
     * As {@link #start(Duration)}, leaving due alarms to callers for {@code callersFirst}; tests use a long one to
     * prove that callers fire them.
     */
    static Reactor start(Duration horizon, Duration callersFirst) throws NativeCallException {
        NativeLibrary nl = NativeLibrary.get();
        int epfd = nl.libc().epoll_create1(Linux.EPOLL_CLOEXEC);
        if (epfd < 0) {
            throw new NativeCallException("epoll_create1", nl.errno(), "cannot create the walredo reactor");
        }
        int efd = nl.libc().eventfd(0, Linux.EFD_CLOEXEC | Linux.EFD_NONBLOCK);
        if (efd < 0) {
            int errno = nl.errno();
            nl.libc().close(epfd);
            throw new NativeCallException("eventfd", errno, "cannot create the walredo reactor's wake-up fd");
        }
        FdHandle wakeFd = new FdHandle(efd);
        Reactor reactor = new Reactor(epfd, wakeFd, horizon, callersFirst);
        try {
            // Level-triggered: the fd reports until drainWakeFd reads the counter back to zero.
            reactor.register(wakeFd, Linux.EPOLLIN, reactor::drainWakeFd);
        } catch (NativeCallException e) {
            wakeFd.close();
            nl.libc().close(epfd);
            throw e;
        }
        reactor.thread.start();
        return reactor;
    }

    /**
     * Arms an alarm that unparks {@code thread} when {@code deadline} passes, unless closed first (see {@link
     * DeadlineAlarm}). Non-blocking apart from at most one eventfd write; callable from any thread.
     */
    public DeadlineAlarm arm(Deadline deadline, Thread thread) {
        return arm(alarms, deadline, thread);
    }

    /**
     * As {@link #arm}, for a {@link Readiness} wait: kept apart from callers' alarms, so that {@link #armedAlarms}
     * counts only those (every idle stderr drainer waits with one of these).
     */
    DeadlineAlarm armForWait(Deadline deadline, Thread thread) {
        return arm(waitAlarms, deadline, thread);
    }

    private DeadlineAlarm arm(Alarms set, Deadline deadline, Thread thread) {
        fireDueHere();
        long at = deadline.nanoTime() + AFTER_DEADLINE_NANOS;
        Alarms.Entry e = set.arm(deadline.nanoTime(), at, thread);
        if (!running) {
            // The loop has ended, and its fire-all on the way out may have run before this insert: nobody else will
            // fire it. Fired early (lateNanos -1), the armer's wait falls back to a timed park (see isRunning). Both
            // sides write then read (running, then the set; the set, then running), so one of them sees the other.
            set.fireAll();
        } else if (at - plannedWake < 0 && wakeRequested.compareAndSet(false, true)) {
            wake();
        }
        return e;
    }

    /**
     * Fires, on the calling thread, every alarm already due (see "Alarms fired by the threads that arm them" in the
     * class comment). Costs a clock read and two skip-list heads when nothing is due.
     */
    private void fireDueHere() {
        long now = System.nanoTime();
        alarms.fireDue(now);
        waitAlarms.fireDue(now);
    }

    /** Returns the number of armed {@link Readiness} wait alarms (for tests). */
    int armedWaitAlarms() {
        return waitAlarms.size();
    }

    /**
     * Whether the reactor thread still runs its loop. It catches everything inside it, so this turns false only if
     * the loop itself failed; then every alarm has been fired and waiters fall back to timed parks.
     */
    public boolean isRunning() {
        return running;
    }

    /** Returns the number of armed alarms (for tests and diagnostics). */
    public int armedAlarms() {
        return alarms.size();
    }

    private void wake() {
        if (!wakeFd.acquire()) {
            return;
        }
        try {
            if (libc.write(wakeFd.fd(), one, Long.BYTES) < 0) {
                int errno = nl.errno();
                // EAGAIN only at a counter of 2^64-2, i.e. never; anything else is a bug. Either way the reactor still
                // wakes
                // within HORIZON, so the alarm fires late rather than never.
                log.atError().addKeyValue("errno", Errors.name(errno)).log("eventfd write failed");
            }
        } finally {
            wakeFd.release();
        }
    }

    /**
     * Adds {@code fd} to the epoll set with {@code events}; its events go to {@code target} until the handle is closed
     * (closing deregisters). Call at most once per handle, before the handle is shared. With {@link
     * Linux#EPOLLONESHOT} in {@code events}, the registration reports one event and then nothing until {@link
     * FdHandle#rearm()} (see the class comment).
     *
     * @throws NativeCallException if {@code epoll_ctl} fails (ENOMEM, ENOSPC: max_user_watches reached)
     */
    public void register(FdHandle fd, int events, Target target) throws NativeCallException {
        long token = nextToken.getAndIncrement();
        NativeMemory event = new NativeMemory(16);
        long address = 0;
        int rc = -1;
        int errno = 0;
        try {
            // The target goes in first: an event may arrive before epoll_ctl returns.
            targets.put(token, target);
            address = event.allocate(EVENT_SIZE);
            event.putInt(address, events);
            event.putLong(address + DATA_OFFSET, token);
            rc = libc.epoll_ctl(epfd, Linux.EPOLL_CTL_ADD, fd.fd(), address);
            errno = rc == 0 ? 0 : nl.errno();
        } finally {
            if (rc != 0) {
                // Failed, or an Error before epoll_ctl: leave no target and no native memory behind.
                event.close();
                targets.remove(token);
            }
        }
        if (rc != 0) {
            throw new NativeCallException("epoll_ctl", errno, "cannot register " + fd + " with the walredo reactor");
        }
        if ((events & Linux.EPOLLONESHOT) == 0) {
            event.close();
            fd.registered(this, token, null, 0);
        } else {
            // Kept for rearm: EPOLL_CTL_MOD with the same mask and token. Freed when the fd is closed.
            fd.registered(this, token, event, address);
        }
    }

    /**
     * Re-enables a one-shot registration ({@code EPOLL_CTL_MOD} with its original mask). The kernel checks readiness
     * during the call, so an fd that became ready while disabled reports an event at once. The caller holds a use of
     * {@code fd}.
     *
     * @return false if the registration is gone (the fd was closed meanwhile)
     * @throws NativeCallException if {@code epoll_ctl} fails otherwise
     */
    boolean rearm(int fd, long event) throws NativeCallException {
        if (libc.epoll_ctl(epfd, Linux.EPOLL_CTL_MOD, fd, event) == 0) {
            return true;
        }
        int errno = nl.errno();
        if (errno == Linux.ENOENT) {
            return false;
        }
        throw new NativeCallException("epoll_ctl", errno, "cannot re-arm fd " + fd + " with the walredo reactor");
    }

    /** Returns the number of events the reactor has dispatched to targets so far (for tests and diagnostics). */
    public long eventsDispatched() {
        return dispatched;
    }

    /**
     * Removes a registration; {@code fd} must still be open (the caller holds a use of it). Called by {@link
     * FdHandle#close()}.
     */
    void deregister(int fd, long token) {
        // EPOLL_CTL_DEL ignores the event argument since Linux 2.6.9.
        if (libc.epoll_ctl(epfd, Linux.EPOLL_CTL_DEL, fd, 0) != 0) {
            int errno = nl.errno();
            log.atWarn()
                    .addKeyValue("fd", fd)
                    .addKeyValue("errno", Errors.name(errno))
                    .log("epoll_ctl DEL failed");
        }
        targets.remove(token);
    }

    /** Returns the number of live registrations (for tests and diagnostics). */
    public int registrations() {
        return targets.size();
    }

    private void run() {
        try {
            loop();
        } catch (Throwable t) {
            log.atError().setCause(t).log("the walredo reactor stopped; pipe waits now end only at their deadlines");
        } finally {
            running = false;
            alarms.fireAll();
            waitAlarms.fireAll();
        }
    }

    private void loop() {
        // Lives as long as the process: the buffer is never freed.
        @SuppressWarnings("resource")
        NativeMemory events = new NativeMemory((long) MAX_EVENTS * EVENT_SIZE);
        long buffer = events.allocate((long) MAX_EVENTS * EVENT_SIZE);
        while (true) {
            wakeRequested.set(false);
            long sleepNanos;
            try {
                long now = System.nanoTime();
                if (now - epochStart >= callersFirstNanos) {
                    lastEpochStart = epochStart;
                    epochStart = now;
                }
                // Every alarm due at lastEpochStart was seen due by a pass at least CALLERS_FIRST ago.
                alarms.fireDue(lastEpochStart, now);
                waitAlarms.fireDue(lastEpochStart, now);
                long plan = wakeFor(now);
                plannedWake = plan;
                if (wakeFor(now) - plan < 0) {
                    continue;
                }
                sleepNanos = plan - now;
            } catch (Throwable t) {
                // Only an Error (OOM in the skip list) gets here: keep serving events, retry the alarms next pass.
                log.atError().setCause(t).log("firing walredo deadline alarms failed");
                sleepNanos = TimeUnit.MILLISECONDS.toNanos(10);
            }
            int n = libc.epoll_wait(epfd, buffer, MAX_EVENTS, timeoutMillis(sleepNanos));
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
                dispatched++;
                try {
                    target.onEvents(mask);
                } catch (Throwable t) {
                    // The reactor must survive anything: if it died, every parked reader and every exit would hang.
                    log.atError().setCause(t).addKeyValue("token", token).log("reactor target failed");
                }
            }
        }
    }

    /** The wake-up fd's target: reads (resets) the counter, so the level-triggered fd stops reporting. */
    private void drainWakeFd(int events) {
        // Non-blocking; the fd is never closed while the reactor runs, so no acquire is needed here.
        libc.read(wakeFd.fd(), counter, Long.BYTES);
    }

    /**
     * When the next pass must run for the earliest armed alarm, at most the horizon ahead: at its deadline, so that
     * a pass sees it due, and once that pass is CALLERS_FIRST old, so that it is fired (see the class comment).
     * Reactor thread only.
     */
    private long wakeFor(long now) {
        long latest = now + horizonNanos;
        long call = alarms.earliestOr(latest);
        long wait = waitAlarms.earliestOr(latest);
        long earliest = call - wait < 0 ? call : wait; // nanoTime values compare by subtraction (Alarms)
        long wake;
        if (earliest - lastEpochStart <= 0) {
            wake = now; // armed since this pass fired, already seen due: fire it on the next pass
        } else if (earliest - epochStart <= 0) {
            wake = epochStart + callersFirstNanos;
        } else {
            long turn = epochStart + callersFirstNanos;
            wake = earliest - turn > 0 ? earliest : turn;
        }
        return wake - latest < 0 ? wake : latest;
    }

    /** Rounds up, so the reactor wakes at or just after the deadline, never before it. */
    private static int timeoutMillis(long nanos) {
        return (int) Math.min(Integer.MAX_VALUE, (nanos + 999_999) / 1_000_000);
    }

    private static boolean isX86_64() {
        String arch = System.getProperty("os.arch", "");
        return arch.equals("amd64") || arch.equals("x86_64");
    }
}
