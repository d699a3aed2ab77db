// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.nativeio.Deadline;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Hammers {@link Readiness}'s wait protocol without syscalls: a counter stands for the bytes in a pipe, and the
 * "reactor" signals only on the empty → non-empty transition, as edge-triggered epoll does. A lost wake-up leaves the
 * consumer parked until its deadline, which fails the test.
 */
class ReadinessTest {

    @Test
    void edgeTriggeredHandOffLosesNoWakeUps() throws Exception {
        int items = 300_000;
        int fd = NativeLibrary.get().libc().open("/dev/null", Linux.O_RDONLY | Linux.O_CLOEXEC);
        assertTrue(fd >= 0);
        FdHandle handle = new FdHandle(fd);
        Readiness readiness = new Readiness();
        AtomicInteger available = new AtomicInteger();
        AtomicInteger parks = new AtomicInteger();
        Thread producer = Thread.ofPlatform().start(() -> {
            for (int i = 0; i < items; i++) {
                while (available.get() > 4) {
                    Thread.onSpinWait();
                }
                if (available.getAndIncrement() == 0) {
                    readiness.onEvents(Linux.EPOLLIN);
                }
            }
        });
        try {
            Deadline deadline = Deadline.after(Duration.ofSeconds(60));
            SplittableRandom random = new SplittableRandom(5);
            for (int consumed = 0; consumed < items; ) {
                long observed = readiness.sequence();
                if (available.getAndUpdate(n -> n > 0 ? n - 1 : 0) > 0) {
                    consumed++;
                    continue;
                }
                // Widen the window between the failed "syscall" and parking, where a wake-up is easiest to lose.
                for (int spin = random.nextInt(256); spin > 0; spin--) {
                    Thread.onSpinWait();
                }
                parks.incrementAndGet();
                Readiness.Wake wake = readiness.await(observed, Deadline.after(Duration.ofSeconds(10)), handle);
                assertEquals(Readiness.Wake.READY, wake, "lost wake-up after " + consumed + " items");
                assertTrue(!deadline.isExpired());
            }
            producer.join(Duration.ofSeconds(10));
            System.out.println("readiness hammer: " + items + " items, " + parks.get() + " waits");
        } finally {
            handle.close();
        }
    }

    /**
     * With a reactor, the wait parks without a timeout and the reactor's alarm ends it at its deadline. The reactor
     * sleeps up to an hour between passes, so the wait ends in time only if the alarm was armed (and woke it).
     */
    @Test
    void aWaitBoundedByTheReactorsAlarmEndsAtItsDeadlineAndLeavesNoAlarm() throws Exception {
        Reactor reactor = Reactor.start(Duration.ofHours(1));
        int fd = NativeLibrary.get().libc().open("/dev/null", Linux.O_RDONLY | Linux.O_CLOEXEC);
        assertTrue(fd >= 0);
        FdHandle handle = new FdHandle(fd);
        try {
            Readiness readiness = new Readiness(reactor);
            Deadline deadline = Deadline.after(Duration.ofMillis(50));
            Readiness.Wake wake = assertTimeoutPreemptively(
                    Duration.ofSeconds(30), () -> readiness.await(readiness.sequence(), deadline, handle));
            assertEquals(Readiness.Wake.TIMED_OUT, wake);
            assertTrue(deadline.isExpired());
            assertEquals(0, reactor.armedWaitAlarms(), "the alarm is closed on the way out");
        } finally {
            handle.close();
        }
    }

    /** close() racing with a waiter about to park: the waiter always sees CLOSED and never sleeps to its deadline. */
    @Test
    void closeWakesTheWaiter() throws Exception {
        for (int i = 0; i < 2000; i++) {
            int fd = NativeLibrary.get().libc().open("/dev/null", Linux.O_RDONLY | Linux.O_CLOEXEC);
            assertTrue(fd >= 0);
            FdHandle handle = new FdHandle(fd);
            Readiness readiness = new Readiness();
            long observed = readiness.sequence();
            Thread closer = Thread.ofVirtual().start(() -> {
                handle.close();
                readiness.wakeWaiter();
            });
            assertEquals(
                    Readiness.Wake.CLOSED,
                    readiness.await(observed, Deadline.after(Duration.ofSeconds(10)), handle),
                    "iteration " + i);
            assertTrue(closer.join(Duration.ofSeconds(10)));
        }
    }
}
