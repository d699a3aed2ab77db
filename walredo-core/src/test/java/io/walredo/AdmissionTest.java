// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.sidecarPid;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.testing.FakeRedoModel.Fault;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Admission: a request the tenant's sidecar cannot take (its queue bound is reached) or cannot answer in time (the
 * answers owed ahead outlast the request's deadline) is refused at once with {@link TenantOverloadedException},
 * before anything is sent, so one slow tenant cannot hold a shared pool of callers. "At once" is shown causally:
 * the refusal returns while the requests ahead of it are still waiting for answers that take seconds.
 */
@Timeout(120)
class AdmissionTest {
    private static final TenantShardId T = tenant(19);

    /** A redo on its own virtual thread; its outcome is the page or the throwable. */
    private static final class Call {
        final Thread thread;
        final AtomicReference<Object> outcome = new AtomicReference<>();

        Call(WalRedoManager m, RedoRequest r, Duration timeout) {
            thread = Thread.ofVirtual().start(() -> {
                try {
                    outcome.set(m.redo(T, r, AttemptType.READ_PAGE, timeout));
                } catch (Throwable e) {
                    outcome.set(e);
                }
            });
        }

        Object join() throws InterruptedException {
            if (!thread.join(Duration.ofSeconds(60))) {
                fail("call did not return: " + Arrays.toString(thread.getStackTrace()));
            }
            return outcome.get();
        }
    }

    /** Starts {@code n} calls with long deadlines and returns once the sidecar holds all of them. */
    private static List<Call> queued(WalRedoManager m, int n, int first) {
        List<Call> calls = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            calls.add(new Call(m, request(first + i), Duration.ofSeconds(60)));
            int expectInFlight = i + 1;
            Fixtures.await(
                    expectInFlight + " calls in flight",
                    Duration.ofSeconds(10),
                    () -> m.status().stream().mapToInt(SidecarStatus::inFlight).sum() == expectInFlight);
        }
        return calls;
    }

    private static void assertAnswered(List<Call> calls, int first) throws InterruptedException {
        for (int i = 0; i < calls.size(); i++) {
            Object o = calls.get(i).join();
            if (!(o instanceof byte[] page)) {
                throw new AssertionError("call " + i + " got " + o, o instanceof Throwable t ? t : null);
            }
            assertArrayEquals(expected(request(first + i)), page);
        }
    }

    @Test
    void theQueueBoundRefusesAtOnceAndAdmitsAgainOnceThereIsRoom() throws Exception {
        RecordingListener listener = new RecordingListener();
        WalRedoConfig cfg = config(Fault.DELAY_US.args(1_500_000))
                .maxQueuedPerTenant(2)
                .metricsListener(listener)
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            List<Call> ahead = queued(m, 2, 1);
            TenantOverloadedException e = assertThrows(
                    TenantOverloadedException.class,
                    () -> m.redo(T, request(3), AttemptType.READ_PAGE, Duration.ofSeconds(60)));
            assertTrue(ahead.get(0).thread.isAlive(), "refused while the first answer (1.5 s) was still due");
            assertEquals(TenantOverloadedException.Reason.QUEUE_BOUND, e.reason());
            assertEquals(2, e.queued());
            assertEquals(T, e.tenant());
            assertEquals(pid, e.pid().orElseThrow());
            for (String part : List.of(T.toString(), "pid " + pid, "maxQueuedPerTenant 2", "Nothing was sent")) {
                assertTrue(e.getMessage().contains(part), "missing '" + part + "' in: " + e.getMessage());
            }
            assertAnswered(ahead, 1);
            assertArrayEquals(
                    expected(request(4)),
                    m.redo(T, request(4), AttemptType.READ_PAGE, Duration.ofSeconds(60)),
                    "admitted again");
            assertEquals(
                    Map.of(
                            TenantOverloadedException.Reason.QUEUE_BOUND,
                            1L,
                            TenantOverloadedException.Reason.EXPECTED_WAIT,
                            0L),
                    m.metrics().refusals());
            assertTrue(
                    listener.events.contains("refused " + T + " " + pid + " QUEUE_BOUND"), listener.events.toString());
            assertEquals(pid, sidecarPid(m, T), "a refusal kills nothing");
        }
    }

    @Test
    void aCallerThatCannotBeAnsweredInTimeIsRefusedAtOnceAndOneWithTimeIsServed() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.DELAY_US.args(400_000)).build())) {
            // One answer, and admission already knows it took about 400 ms: the process's first answer (which
            // includes its start-up and is never measured) was the library's own start-up probe. With the ping as
            // the first answer, this caller was admitted and timed out (a slow tenant's new sidecar absorbed a
            // shared pool of callers for one answer time, 80 of 200 in the shared-callers benchmark).
            m.ping(T, PG);
            List<Call> ahead = queued(m, 3, 10);
            TenantOverloadedException e = assertThrows(
                    TenantOverloadedException.class,
                    () -> m.redo(T, request(13), AttemptType.READ_PAGE, Duration.ofMillis(700)));
            assertTrue(ahead.get(2).thread.isAlive(), "refused while the answers ahead were still due");
            assertEquals(TenantOverloadedException.Reason.EXPECTED_WAIT, e.reason());
            assertEquals(3, e.queued());
            assertTrue(e.expectedWait().compareTo(Duration.ofMillis(700)) > 0, "expected wait " + e.expectedWait());
            assertTrue(e.getMessage().contains("longer than the request's remaining"), e.getMessage());
            Call patient = new Call(m, request(14), Duration.ofSeconds(30));
            assertAnswered(ahead, 10);
            assertArrayEquals(expected(request(14)), (byte[]) patient.join());
            assertEquals(1L, m.metrics().refusals().get(TenantOverloadedException.Reason.EXPECTED_WAIT));
        }
    }

    /**
     * Only answers owed count toward the expected wait. Callers still waiting for the write permit are not ahead of
     * a newcomer in any fixed order (the permit is not fair), and one whose deadline passes there costs the sidecar
     * nothing. Forced: A is owed, B is owed and stuck writing (256 KiB into a full pipe while the sidecar sleeps on
     * A), C to F wait for the permit. With them counted (5 x 400 ms) this caller's 1.5 s was refused, while the two
     * answers owed take about 800 ms.
     */
    @Test
    void callersWaitingToWriteDoNotCountTowardTheExpectedWait() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.DELAY_US.args(400_000)).build())) {
            m.ping(T, PG); // answers take 400 ms, and admission knows it
            Call a = new Call(m, request(40), Duration.ofSeconds(60));
            Fixtures.await("A in flight", Duration.ofSeconds(10), () -> inFlight(m) == 1);
            RedoRequest big = request(41, 32, 8000);
            Call b = new Call(m, big, Duration.ofSeconds(60));
            Fixtures.await("B stuck writing", Duration.ofSeconds(10), () -> inStack(b, "writeFully"));
            List<Call> waiting = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Call c = new Call(m, request(42 + i), Duration.ofSeconds(60));
                waiting.add(c);
                Fixtures.await(
                        "a caller waiting for the write permit",
                        Duration.ofSeconds(10),
                        () -> inStack(c, "acquireWritePermit"));
            }
            Object o = new Call(m, request(46), Duration.ofMillis(1500)).join();
            assertFalse(
                    o instanceof TenantOverloadedException,
                    "refused although only two answers (about 800 ms) were owed: " + o);
            assertArrayEquals(expected(request(40)), (byte[]) a.join());
            assertArrayEquals(expected(big), (byte[]) b.join());
            assertAnswered(waiting, 42);
        }
    }

    private static int inFlight(WalRedoManager m) {
        return m.status().stream().mapToInt(SidecarStatus::inFlight).sum();
    }

    private static boolean inStack(Call c, String method) {
        return Arrays.stream(c.thread.getStackTrace())
                .anyMatch(f -> f.getMethodName().equals(method));
    }

    /**
     * The start-up probe a new sidecar gets before any request is the library's own, not a caller's: it never
     * counts toward {@code maxQueuedPerTenant}. Forced: the process takes 300 ms to start, so the probe is still owed
     * when the first request arrives.
     */
    @Test
    void theStartUpProbeIsNotQueuedAgainstTheBound() throws Exception {
        WalRedoConfig cfg =
                config(Fault.STARTUP_DELAY_MS.args(300)).maxQueuedPerTenant(1).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            assertArrayEquals(
                    expected(request(50)), m.redo(T, request(50), AttemptType.READ_PAGE, Duration.ofSeconds(30)));
            assertEquals(0L, m.metrics().refusals().get(TenantOverloadedException.Reason.QUEUE_BOUND));
        }
    }

    /**
     * A sidecar still starting has no history, so the estimate rests on how long its start-up has taken so far, which
     * on a busy machine says little: the chaos soak without faults refused calls on sidecars stuck 2-4 s in start-up
     * that served the next call in time. Such an unsure estimate must exceed twice the remaining time. Forced: the
     * process takes 1.5 s to start; 1.2 s in, with one request queued behind the start-up probe, a caller with 1 s
     * left is admitted and served at about 1.5 s. Before, it was refused (1.2 s expected, longer than its 1 s).
     */
    @Test
    void aSidecarStillStartingIsNotRefusedForItsStartUpAlone() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.STARTUP_DELAY_MS.args(1500)).build())) {
            Call first = new Call(m, request(60), Duration.ofSeconds(30));
            Fixtures.await("the first request queued behind the probe", Duration.ofSeconds(10), () -> inFlight(m) >= 1);
            Thread.sleep(1200); // the start-up has now taken longer than the next caller's deadline
            Object o = new Call(m, request(61), Duration.ofSeconds(1)).join();
            assertFalse(o instanceof Throwable, "the caller was not served: " + o);
            assertArrayEquals(expected(request(61)), (byte[]) o);
            assertArrayEquals(expected(request(60)), (byte[]) first.join());
        }
    }

    /**
     * A start-up no slower than the manager's recent ones is no sign of a stuck process. Forced: every process takes
     * 3 s to start, and another tenant's start-up has just taken that long; 2.5 s into this tenant's start-up, with one
     * request queued, a caller with 1 s left is admitted (alone, the next test shows, such a stall refuses it) and
     * served when the start-up ends.
     */
    @Test
    void aSidecarStartingNoSlowerThanItsPeersIsNotRefused() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.STARTUP_DELAY_MS.args(3000)).build())) {
            m.ping(tenant(18), PG);
            Call first = new Call(m, request(64), Duration.ofSeconds(30));
            Fixtures.await("the first request queued behind the probe", Duration.ofSeconds(10), () -> inFlight(m) >= 1);
            Thread.sleep(2500);
            Object o = new Call(m, request(65), Duration.ofSeconds(1)).join();
            assertFalse(o instanceof Throwable, "the caller was not served: " + o);
            assertArrayEquals(expected(request(65)), (byte[]) o);
            assertArrayEquals(expected(request(64)), (byte[]) first.join());
        }
    }

    /**
     * A sidecar that stays stuck is refused once the stall outlasts twice the remaining time. Forced: the process
     * takes 5 s to start; 2.5 s in, with one request queued, a caller with 1 s left is refused at once.
     */
    @Test
    void aSidecarStuckStartingIsRefusedOnceItsStallOutlastsTwiceTheDeadline() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.STARTUP_DELAY_MS.args(5000)).build())) {
            Call first = new Call(m, request(62), Duration.ofSeconds(30));
            Fixtures.await("the first request queued behind the probe", Duration.ofSeconds(10), () -> inFlight(m) >= 1);
            Thread.sleep(2500);
            Object o = new Call(m, request(63), Duration.ofSeconds(1)).join();
            TenantOverloadedException e = assertInstanceOf(TenantOverloadedException.class, o, String.valueOf(o));
            assertEquals(TenantOverloadedException.Reason.EXPECTED_WAIT, e.reason());
            assertTrue(e.getMessage().contains("more than 2 times the request's remaining"), e.getMessage());
            assertTrue(first.thread.isAlive(), "refused while the request ahead still waited");
            assertArrayEquals(expected(request(62)), (byte[]) first.join());
        }
    }

    /** An idle sidecar admits everything: its answer time is the request's own, not a queue's. */
    @Test
    void anIdleSidecarAdmitsEvenACallerItCannotServeInTime() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.DELAY_US.args(1_000_000)).build())) {
            m.ping(T, PG); // answers take 1 s here, and admission knows it (see the test above)
            Object o = new Call(m, request(20), Duration.ofMillis(200)).join();
            assertInstanceOf(RedoTimeoutException.class, o, String.valueOf(o));
            assertEquals(
                    0L,
                    m.metrics().refusals().values().stream()
                            .mapToLong(Long::longValue)
                            .sum());
        }
    }

    /**
     * A healthy sidecar under many callers with ordinary deadlines refuses nothing: the expected waits are far
     * below both the deadlines and the 50 ms floor.
     */
    @Test
    void healthyTrafficIsNeverRefused() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
            List<Thread> callers = new ArrayList<>();
            for (int c = 0; c < 32; c++) {
                int base = 1000 * c;
                callers.add(Thread.ofVirtual().start(() -> {
                    for (int i = 0; i < 200; i++) {
                        RedoRequest r = request(base + i);
                        try {
                            if (!Arrays.equals(
                                    expected(r), m.redo(T, r, AttemptType.READ_PAGE, Duration.ofSeconds(10)))) {
                                problems.add("wrong page " + (base + i));
                            }
                        } catch (WalRedoException e) {
                            problems.add(e.toString());
                        }
                    }
                }));
            }
            for (Thread t : callers) {
                assertTrue(t.join(Duration.ofSeconds(60)));
            }
            assertTrue(problems.isEmpty(), String.join("\n", problems));
            assertEquals(
                    0L,
                    m.metrics().refusals().values().stream()
                            .mapToLong(Long::longValue)
                            .sum());
        }
    }

    /** Records refusals, thread-safely. */
    static final class RecordingListener implements WalRedoMetricsListener {
        final ConcurrentLinkedQueue<String> events = new ConcurrentLinkedQueue<>();

        @Override
        public void requestRefused(TenantShardId t, int pid, TenantOverloadedException.Reason reason) {
            events.add("refused " + t + " " + pid + " " + reason);
        }
    }
}
