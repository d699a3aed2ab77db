// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.nativeio.Deadline;
import java.time.Duration;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * One-shot pipe registrations: the reactor hears about a pipe only while a thread is about to park on it, and such a
 * thread is always woken. Each test uses a reactor of its own, so its event count is its pipes' alone, and waits with
 * a 60 s deadline: a lost wake-up returns {@code TIMED_OUT} instead of {@code READY}.
 */
class ReactorOneShotTest {

    private static final int ONE_SHOT_READ = Linux.EPOLLIN | Linux.EPOLLRDHUP | Linux.EPOLLET | Linux.EPOLLONESHOT;
    private static final Duration WAIT = Duration.ofSeconds(60);

    private final LibC libc = NativeLibrary.get().libc();
    private NativeMemory memory;
    private long buffer;
    private FdHandle readEnd;
    private FdHandle writeEnd;
    private Reactor reactor;
    private Readiness readiness;

    @BeforeEach
    void pipe() throws Exception {
        memory = new NativeMemory(4096);
        long fds = memory.allocate(8);
        buffer = memory.allocate(1024);
        assertEquals(0, libc.pipe2(fds, Linux.O_CLOEXEC | Linux.O_NONBLOCK));
        readEnd = new FdHandle(memory.getInt(fds));
        writeEnd = new FdHandle(memory.getInt(fds + 4));
        reactor = Reactor.start(Duration.ofHours(1));
        readiness = new Readiness();
        reactor.register(readEnd, ONE_SHOT_READ, readiness);
    }

    @AfterEach
    void close() {
        readEnd.close();
        writeEnd.close();
        memory.close();
    }

    /**
     * Once the pipe has been polled, the kernel wakes epoll on every write to it. Armed for good, the reactor would
     * dispatch about one event per write here; one-shot, it dispatches the first and then nothing until re-armed.
     */
    @Test
    void writesNobodyWaitsForReachTheReactorOnce() throws Exception {
        long before = readiness.sequence();
        for (int i = 0; i < 50; i++) {
            write(1);
            // Forced, not hoped for: each write's event, if it makes one, is dispatched before the next write.
            barrier();
        }
        assertEquals(1, readiness.sequence() - before, "events for 50 writes while nobody waited");
        assertEquals(50, read(1024), "every byte is still there");
    }

    /** The registration fired while nobody waited and is disabled: a waiter that re-arms it is woken by the next write. */
    @Test
    void aWaiterReArmsADisabledRegistrationAndIsWokenByTheNextWrite() throws Exception {
        disableByOneUnattendedEvent();
        long observed = readiness.sequence();
        assertEquals(-Linux.EAGAIN, read(1024), "empty now");
        Thread waiter = Thread.currentThread();
        Thread writer = Thread.ofPlatform().start(() -> {
            // Forced, not hoped for: write only once the waiter has re-armed and parked, so that the wake-up can come
            // from nothing but this write's event.
            Deadline parked = Deadline.after(WAIT);
            while (waiter.getState() != Thread.State.TIMED_WAITING && !parked.isExpired()) {
                Thread.onSpinWait();
            }
            write(1);
        });
        assertEquals(Readiness.Wake.READY, readiness.await(observed, Deadline.after(WAIT), readEnd));
        writer.join(WAIT);
        assertEquals(1, read(1024));
    }

    /**
     * Data that arrived while the registration was disabled produces no event of its own; re-arming finds the pipe
     * readable (the kernel polls it inside EPOLL_CTL_MOD), so the waiter is still woken. This is the window between a
     * waiter's EAGAIN and its re-arm.
     */
    @Test
    void dataThatArrivedWhileDisabledWakesTheWaiterThatReArms() throws Exception {
        disableByOneUnattendedEvent();
        long observed = readiness.sequence();
        // The "EAGAIN" happened here; then data arrives before the waiter re-arms.
        write(1);
        barrier();
        assertEquals(observed, readiness.sequence(), "disabled: the write reported nothing");
        assertEquals(Readiness.Wake.READY, readiness.await(observed, Deadline.after(WAIT), readEnd));
        assertEquals(observed + 1, readiness.sequence(), "the re-arm found the byte: one event");
    }

    /** Re-arming a closed handle reports it instead of parking forever. */
    @Test
    void aClosedHandleIsNotReArmed() throws Exception {
        readEnd.close();
        assertFalse(readEnd.rearm());
        assertEquals(Readiness.Wake.CLOSED, readiness.await(readiness.sequence(), Deadline.after(WAIT), readEnd));
    }

    /**
     * Returns once the reactor has dispatched every event the kernel queued before this call. A second pipe,
     * registered and written now, queues its event after them (epoll's ready list is first in, first out, and the
     * reactor dispatches each batch in that order), so once that event has been dispatched, so have they.
     */
    private void barrier() throws Exception {
        long fds = memory.allocate(8);
        assertEquals(0, libc.pipe2(fds, Linux.O_CLOEXEC | Linux.O_NONBLOCK));
        FdHandle in = new FdHandle(memory.getInt(fds));
        FdHandle out = new FdHandle(memory.getInt(fds + 4));
        try {
            Readiness marker = new Readiness();
            reactor.register(in, ONE_SHOT_READ, marker);
            assertTrue(out.acquire());
            try {
                assertEquals(1, libc.write(out.fd(), buffer, 1));
            } finally {
                out.release();
            }
            awaitAtLeast(marker::sequence, 1);
        } finally {
            in.close();
            out.close();
        }
    }

    /** One write nobody waits for fires the registration, which disables it; the byte is read back. */
    private void disableByOneUnattendedEvent() throws InterruptedException {
        write(1);
        awaitAtLeast(reactor::eventsDispatched, 1);
        assertEquals(1, read(1024));
    }

    private void write(int n) {
        assertTrue(writeEnd.acquire());
        try {
            assertEquals(n, libc.write(writeEnd.fd(), buffer, n));
        } finally {
            writeEnd.release();
        }
    }

    /** Returns the byte count, or minus errno. */
    private long read(int max) {
        assertTrue(readEnd.acquire());
        try {
            long n = libc.read(readEnd.fd(), buffer, max);
            return n >= 0 ? n : -NativeLibrary.get().errno();
        } finally {
            readEnd.release();
        }
    }

    private static void awaitAtLeast(LongSupplier counter, long n) throws InterruptedException {
        Deadline deadline = Deadline.after(WAIT);
        while (counter.getAsLong() < n) {
            assertFalse(deadline.isExpired(), "the reactor never reported the first write");
            Thread.sleep(1);
        }
    }
}
