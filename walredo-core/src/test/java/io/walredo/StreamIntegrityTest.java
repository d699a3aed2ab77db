// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.awaitReaped;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.sidecarPid;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.nativeio.NativeRuntime;
import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.FakeRedoModel.Fault;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The stream rule under a caller's own trouble: an {@code Error} mid-request, a short deadline, an interrupt at
 * every place a caller parks, output nobody asked for. Whatever happens to one caller, every page any caller gets
 * is the page of its own request, and a healthy sidecar is not killed for it.
 */
@Timeout(120)
class StreamIntegrityTest {
    private static final TenantShardId T = tenant(13);
    private static final int OOM_FOLLOW_UPS = 800;

    /** A redo on its own virtual thread; its outcome is the page or the throwable. */
    private static final class Call {
        final Thread thread;
        final AtomicReference<Object> outcome = new AtomicReference<>();
        volatile boolean interruptedAtEnd;

        Call(WalRedoManager m, TenantShardId t, RedoRequest r, Duration timeout) {
            this(m, t, r, timeout, AttemptType.READ_PAGE);
        }

        Call(WalRedoManager m, TenantShardId t, RedoRequest r, Duration timeout, AttemptType attempt) {
            thread = Thread.ofVirtual().start(() -> {
                try {
                    outcome.set(m.redo(t, r, attempt, timeout));
                } catch (Throwable e) {
                    outcome.set(e);
                }
                interruptedAtEnd = Thread.currentThread().isInterrupted();
            });
        }

        Object join() throws InterruptedException {
            if (!thread.join(Duration.ofSeconds(30))) {
                fail("call did not return: " + Arrays.toString(thread.getStackTrace()));
            }
            return outcome.get();
        }

        /** Parked (in a timed wait: a pipe, the write permit, the answer, a spawn), as seen from outside. */
        void awaitParked() {
            Fixtures.await(
                    "caller parked",
                    Duration.ofSeconds(10),
                    () -> thread.getState() == Thread.State.TIMED_WAITING || thread.getState() == Thread.State.WAITING);
        }
    }

    /** A call on tenant T with a 20 s deadline, returned once it is parked (in a wait of the library). */
    private static Call parked(WalRedoManager m, RedoRequest r) {
        Call c = new Call(m, T, r, Duration.ofSeconds(20));
        c.awaitParked();
        return c;
    }

    /** The tenant still has sidecar {@code pid} and the manager killed nothing. */
    private static void assertUntouched(WalRedoManager m, int pid) {
        assertEquals(pid, sidecarPid(m, T));
        assertEquals(0, killed(m));
    }

    private static void assertPage(RedoRequest r, Object outcome) {
        if (!(outcome instanceof byte[] page)) {
            throw new AssertionError("expected the page, got " + outcome, outcome instanceof Throwable t ? t : null);
        }
        assertArrayEquals(expected(r), page);
    }

    private static void assertCancelledWithInterruptKept(Call c) throws InterruptedException {
        assertCancelledWithInterruptKept(c, T);
    }

    /** Cancelled, saying so and naming the tenant, and the caller's interrupt status is still set. */
    private static void assertCancelledWithInterruptKept(Call c, TenantShardId tenant) throws InterruptedException {
        Object o = c.join();
        assertInstanceOf(RedoCancelledException.class, o, String.valueOf(o));
        RedoCancelledException e = (RedoCancelledException) o;
        assertTrue(e.getMessage().contains("interrupted"), e.getMessage());
        assertTrue(e.getMessage().contains(tenant.toString()), e.getMessage());
        assertEquals(tenant, e.tenant());
        assertTrue(c.interruptedAtEnd, "the caller's interrupt status was kept");
    }

    private static long killed(WalRedoManager m) {
        return m.metrics().sidecarsKilled().values().stream()
                .mapToLong(Long::longValue)
                .sum();
    }

    // ---- item 1: an Error while a request is being written ----

    /**
     * Child JVM with 64 KiB of direct memory: a request over 1 MiB is written from the heap through a 64 KiB
     * direct staging buffer, whose allocation fails after the request has been queued. Then 800 more redos, each
     * checked against the model. Prints {@code oom N wrong W ok K}.
     */
    public static void main(String[] args) throws Exception {
        WalRedoConfig cfg =
                WalRedoConfig.builder().redoBinary(PG, Path.of(args[0])).build();
        int ooms = 0;
        int wrong = 0;
        int ok = 0;
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.redo(T, request(1), AttemptType.READ_PAGE);
            RedoRequest big = request(2, 1, 3 << 20);
            for (int i = 0; i < 3; i++) {
                try {
                    m.redo(T, big, AttemptType.READ_PAGE);
                } catch (OutOfMemoryError e) {
                    ooms++;
                }
            }
            for (int i = 0; i < OOM_FOLLOW_UPS; i++) {
                RedoRequest r = request(1000 + i);
                if (Arrays.equals(expected(r), m.redo(T, r, AttemptType.READ_PAGE))) {
                    ok++;
                } else {
                    wrong++;
                }
            }
        }
        System.out.println("oom " + ooms + " wrong " + wrong + " ok " + ok);
    }

    @Test
    void outOfMemoryWhileWritingNeverShiftsAnswers(@TempDir Path dir) throws Exception {
        Path childStderr = dir.resolve("child.stderr");
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process jvm = new ProcessBuilder(List.of(
                        java,
                        "--enable-native-access=ALL-UNNAMED",
                        "-XX:MaxDirectMemorySize=64k",
                        "-Xmx256m",
                        "-D" + FakeRedoModel.BINARY_PROPERTY + "=" + FakeRedoModel.binary(),
                        "-cp",
                        System.getProperty("java.class.path"),
                        StreamIntegrityTest.class.getName(),
                        FakeRedoModel.binary().toString()))
                .redirectError(childStderr.toFile())
                .start();
        try (BufferedReader r =
                new BufferedReader(new InputStreamReader(jvm.getInputStream(), StandardCharsets.UTF_8))) {
            String result = null;
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith("oom ")) {
                    result = line;
                }
            }
            assertTrue(jvm.waitFor(60, TimeUnit.SECONDS));
            String stderr = Files.readString(childStderr);
            if (result == null) {
                fail("the child JVM printed no result (exit " + jvm.exitValue() + "); its stderr:\n" + stderr);
            }
            String[] f = result.split(" ");
            assertTrue(Integer.parseInt(f[1]) > 0, "the fault fired: " + result);
            assertEquals(0, Integer.parseInt(f[3]), "pages of other requests after an OutOfMemoryError: " + result);
            assertEquals(OOM_FOLLOW_UPS, Integer.parseInt(f[5]), result);
        } finally {
            jvm.destroyForcibly();
        }
    }

    // ---- item 2: a caller's short deadline ----

    @Test
    void shortDeadlinesNeverKillAHealthySidecar() throws Exception {
        WalRedoConfig cfg = config(Fault.DELAY_US.args(2_000)).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
            AtomicInteger timeouts = new AtomicInteger();
            Thread impatient = Thread.ofVirtual().start(() -> {
                for (int i = 0; i < 50; i++) {
                    RedoRequest r = request(100 + i);
                    try {
                        if (!Arrays.equals(expected(r), m.redo(T, r, AttemptType.READ_PAGE, Duration.ofMillis(1)))) {
                            wrong.add("impatient " + i);
                        }
                    } catch (RedoTimeoutException | TenantOverloadedException e) {
                        // Refused at once once the abandoned answers queued ahead are expected to take 50 ms or more.
                        timeouts.incrementAndGet();
                    } catch (Throwable e) {
                        wrong.add("impatient " + i + ": " + e);
                    }
                }
            });
            Thread patient = Thread.ofVirtual().start(() -> {
                for (int i = 0; i < 50; i++) {
                    RedoRequest r = request(200 + i);
                    try {
                        if (!Arrays.equals(expected(r), m.redo(T, r, AttemptType.GC_COMPACTION))) {
                            wrong.add("patient " + i);
                        }
                    } catch (Throwable e) {
                        wrong.add("patient " + i + ": " + e);
                    }
                }
            });
            assertTrue(impatient.join(Duration.ofSeconds(60)) && patient.join(Duration.ofSeconds(60)));
            assertTrue(wrong.isEmpty(), String.join("\n", wrong));
            assertTrue(timeouts.get() > 0, "a 1 ms deadline against 2 ms answers timed out (or was refused)");
            assertEquals(1, m.metrics().sidecarsStarted(), "exactly one sidecar: " + m.metrics());
            assertEquals(0, killed(m));
            assertEquals(pid, sidecarPid(m, T));
        }
    }

    /**
     * Twenty callers give up after 300 ms on a sidecar that answers every 200 ms: their answers are still owed,
     * more than the 64 KiB stdout pipe holds, and only the drainer reads them. Then a request larger than both pipes
     * is written. Its caller cannot read while it writes, so it must not count as the reader that takes over from
     * the drainer, or the sidecar blocks on its full stdout, stops reading stdin, and the write and the sidecar stall
     * together. Failed before: the big request timed out after 65,536 of its 1,311,024 bytes and the sidecar was
     * killed as stuck (TIMEOUT).
     */
    @Test
    void aWriterStillWritingIsNotTakenForTheReader() throws Exception {
        WalRedoConfig cfg = config(Fault.DELAY_US.args(200_000))
                .stallTimeout(Duration.ofSeconds(4))
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            List<Call> impatient = new ArrayList<>();
            for (int i = 1; i <= 20; i++) {
                impatient.add(new Call(m, T, request(i * 5 + 1), Duration.ofMillis(300)));
            }
            int timedOut = 0;
            for (Call c : impatient) {
                Object o = c.join();
                if (o instanceof RedoTimeoutException) {
                    timedOut++;
                } else {
                    assertPage(request((impatient.indexOf(c) + 1) * 5 + 1), o);
                }
            }
            assertTrue(timedOut >= 12, "enough answers abandoned to fill the stdout pipe: " + timedOut);
            int pid = sidecarPid(m, T);
            RedoRequest big = request(1001, 20, 64 * 1024);
            assertPage(big, new Call(m, T, big, Duration.ofSeconds(12)).join());
            assertUntouched(m, pid);
        }
    }

    /**
     * A sidecar that reads its stdin slowly but steadily is alive: writing a 1 MiB request to it takes about 1.3 s
     * (64 reads of 16 KiB, 20 ms apart), longer than its 500 ms stall limit, and it must not be killed as stuck for
     * the time its request took to write. Failed before: the stall clock ran from the moment the request was queued,
     * so the caller's first read found it expired and the sidecar was killed (TIMEOUT).
     */
    @Test
    void aSidecarTakingALongRequestSlowlyIsNotStuck() throws Exception {
        WalRedoConfig cfg = config(Fault.READ_DELAY_US.args(20_000))
                .stallTimeout(Duration.ofMillis(500))
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.ping(T, PG);
            int pid = sidecarPid(m, T);
            RedoRequest big = request(7, 16, 64 * 1024);
            assertPage(big, new Call(m, T, big, Duration.ofSeconds(20)).join());
            assertUntouched(m, pid);
        }
    }

    // ---- item 8: deadlines under load ----

    /**
     * Every call arms a reactor alarm for its deadline while it runs, and every way out disarms it: an answer, a
     * caller timeout, an interrupt, a sidecar killed under the caller. Whether the alarm wakes a caller in time under
     * load is measured, not asserted: {@code ./scripts/bench --only deadlines} and the soak.
     */
    @Test
    void everyCallArmsItsDeadlineAlarmAndEveryWayOutDisarmsIt() throws Exception {
        NativeRuntime runtime = NativeRuntime.get();
        try (WalRedoManager m = slowSidecar()) {
            assertEquals(0, runtime.armedAlarms());
            Call answered = parked(m, request(1));
            Call interrupted = parked(m, request(3));
            Fixtures.await("two calls armed", Duration.ofSeconds(10), () -> runtime.armedAlarms() == 2);
            interrupted.thread.interrupt();
            assertCancelledWithInterruptKept(interrupted);
            assertPage(request(1), answered.join());
            assertEquals(0, runtime.armedAlarms());

            // Once the interrupted caller's answer has been drained (a patient call behind it returns), the sidecar
            // is idle, and an idle sidecar admits any deadline; this one is shorter than the 300 ms answer.
            assertPage(request(5), new Call(m, T, request(5), Duration.ofSeconds(20)).join());
            assertEquals(0, m.metrics().deadlineWakeLateness().count(), "no deadline has passed yet");
            Call timedOut = new Call(m, T, request(2), Duration.ofMillis(100));
            assertInstanceOf(RedoTimeoutException.class, timedOut.join());
            assertEquals(0, runtime.armedAlarms());
            assertEquals(
                    1, m.metrics().deadlineWakeLateness().count(), "the timed-out call's alarm fired, and only its");

            Call killedUnder = parked(m, request(4));
            Fixtures.await("one call armed", Duration.ofSeconds(10), () -> runtime.armedAlarms() == 1);
            ProcessHandle.of(sidecarPid(m, T)).orElseThrow().destroyForcibly(); // SIGKILL
            assertPage(request(4), killedUnder.join()); // READ_PAGE retries on a fresh sidecar
            assertEquals(0, runtime.armedAlarms());
            assertEquals(1, m.metrics().deadlineWakeLateness().count(), "the calls that kept their deadline add none");
        }
    }

    // ---- item 3: interrupts at every park point ----

    /** A sidecar answering every G after 300 ms, so callers queue up; 512 KiB requests fill the pipe. */
    private static WalRedoManager slowSidecar() throws Exception {
        WalRedoManager m =
                WalRedoManager.create(config(Fault.DELAY_US.args(300_000)).build());
        m.ping(T, PG);
        return m;
    }

    @Test
    void interruptWhileReadingTheAnswerCancelsOnlyThatCaller() throws Exception {
        try (WalRedoManager m = slowSidecar()) {
            int pid = sidecarPid(m, T);
            Call reader = parked(m, request(1));
            Call behind = parked(m, request(2));
            reader.thread.interrupt();
            assertCancelledWithInterruptKept(reader);
            assertPage(request(2), behind.join());
            assertPage(request(3), new Call(m, T, request(3), Duration.ofSeconds(20)).join());
            assertUntouched(m, pid);
        }
    }

    @Test
    void interruptWhileWaitingBehindTheReaderCancelsOnlyThatCaller() throws Exception {
        try (WalRedoManager m = slowSidecar()) {
            int pid = sidecarPid(m, T);
            Call reader = parked(m, request(1));
            Call behind = parked(m, request(2));
            Call last = parked(m, request(3));
            behind.thread.interrupt();
            assertCancelledWithInterruptKept(behind);
            assertPage(request(1), reader.join());
            assertPage(request(3), last.join());
            assertUntouched(m, pid);
        }
    }

    /** Three calls: one waiting for its answer, one parked half-way through a 512 KiB write, one waiting to write. */
    private static Call[] behindAHalfWrittenRequest(WalRedoManager m, RedoRequest big) {
        Call first = parked(m, request(1));
        // 512 KiB while the fake sleeps: the pipe takes 64 KiB, the writer parks half-way.
        Call writer = parked(m, big);
        Call waitingToWrite = parked(m, request(3));
        return new Call[] {first, writer, waitingToWrite};
    }

    @Test
    void interruptHalfWayThroughAWriteFinishesItInTheBackground() throws Exception {
        try (WalRedoManager m = slowSidecar()) {
            int pid = sidecarPid(m, T);
            Call[] calls = behindAHalfWrittenRequest(m, request(2, 32, 16 * 1024));
            Call first = calls[0];
            Call writer = calls[1];
            Call waitingToWrite = calls[2];
            writer.thread.interrupt();
            assertCancelledWithInterruptKept(writer);
            assertPage(request(1), first.join());
            assertPage(request(3), waitingToWrite.join());
            assertUntouched(m, pid);
        }
    }

    @Test
    void interruptWhileWaitingForTheWritePermitCancelsOnlyThatCaller() throws Exception {
        try (WalRedoManager m = slowSidecar()) {
            int pid = sidecarPid(m, T);
            RedoRequest big = request(2, 32, 16 * 1024);
            Call[] calls = behindAHalfWrittenRequest(m, big);
            Call first = calls[0];
            Call writer = calls[1];
            Call waitingToWrite = calls[2];
            waitingToWrite.thread.interrupt();
            assertCancelledWithInterruptKept(waitingToWrite);
            assertPage(request(1), first.join());
            assertPage(big, writer.join());
            assertPage(request(4), new Call(m, T, request(4), Duration.ofSeconds(20)).join());
            assertUntouched(m, pid);
        }
    }

    @Test
    void interruptWhileWaitingForRoomUnderTheCapCancelsOnlyThatCaller() throws Exception {
        WalRedoConfig cfg =
                config(Fault.DELAY_US.args(300_000)).maxLiveSidecars(1).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            TenantShardId other = tenant(14);
            Call busy = parked(m, request(1));
            Fixtures.await(
                    "busy sidecar live",
                    Duration.ofSeconds(10),
                    () -> m.status().size() == 1);
            Call waitingForRoom = new Call(m, other, request(2), Duration.ofSeconds(20));
            waitingForRoom.awaitParked();
            waitingForRoom.thread.interrupt();
            assertCancelledWithInterruptKept(waitingForRoom, other);
            assertPage(request(1), busy.join());
            assertPage(request(3), new Call(m, other, request(3), Duration.ofSeconds(20)).join());
        }
    }

    @Test
    void interruptWhileBackingOffCancelsThatCaller() throws Exception {
        WalRedoConfig cfg = config(Fault.EXIT_AT_START.args())
                .spawnBackoff(Duration.ofSeconds(5), Duration.ofSeconds(5))
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            Object first = new Call(m, T, request(1), Duration.ofSeconds(20), AttemptType.GC_COMPACTION).join();
            assertInstanceOf(WalRedoException.class, first);
            Call backingOff = new Call(m, T, request(2), Duration.ofSeconds(20), AttemptType.GC_COMPACTION);
            backingOff.awaitParked();
            backingOff.thread.interrupt();
            assertCancelledWithInterruptKept(backingOff, T);
        }
    }

    // ---- item 6: output nobody asked for ----

    @Test
    void pageWrittenWhileIdleKillsTheSidecarAndTheNextRequestRunsOnAFreshOne() throws Exception {
        // Nobody watches an idle sidecar's stdout; the housekeeper looks on each pass.
        WalRedoConfig cfg = config(Fault.UNSOLICITED_AFTER.args(1))
                .housekeepingPeriod(Duration.ofMillis(50))
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.GC_COMPACTION));
            int pid = sidecarPid(m, T);
            Fixtures.await(
                    "the unsolicited page noticed",
                    Duration.ofSeconds(10),
                    () -> m.metrics().sidecarsKilled().get(KillCause.ERROR) == 1);
            awaitReaped(pid);
            // GC_COMPACTION has no retries: the request must find a fresh sidecar, not the spoiled stream.
            assertArrayEquals(expected(request(2)), m.redo(T, request(2), AttemptType.GC_COMPACTION));
            assertNotEquals(pid, sidecarPid(m, T));
            assertEquals(0, m.metrics().retries());
        }
    }
}
