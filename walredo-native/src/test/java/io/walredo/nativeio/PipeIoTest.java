// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static io.walredo.nativeio.TestSupport.PAGE_BYTES;
import static io.walredo.nativeio.TestSupport.awaitTrue;
import static io.walredo.nativeio.TestSupport.fake;
import static io.walredo.nativeio.TestSupport.isParked;
import static io.walredo.nativeio.TestSupport.openFds;
import static io.walredo.nativeio.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Parking reads and writes over real pipes: deadlines, close while waiting, no lost wake-ups, heap buffers. */
class PipeIoTest {

    private final NativeRuntime runtime = NativeRuntime.get();

    private ChildProcess cat() throws IOException {
        return runtime.spawn(new SpawnSpec(Paths.get("/bin/cat"), List.of("cat"), Map.of()), seconds(10));
    }

    @Test
    void writeToAChildThatNeverReadsTimesOut() throws Exception {
        try (ChildProcess child = runtime.spawn(fake("--no-read"), seconds(10))) {
            ByteBuffer mib = ByteBuffer.allocateDirect(1 << 20);
            DeadlineExceededException e = assertThrows(
                    DeadlineExceededException.class,
                    () -> child.stdin().writeFully(mib, Deadline.after(Duration.ofMillis(300))));
            assertTrue(e.getMessage().contains("stdin of pid " + child.pid()), e.getMessage());
            assertTrue(mib.position() > 0 && mib.position() < mib.capacity(), "a pipe's worth was written");
            assertTrue(e.getMessage().contains(mib.position() + " of " + (1 << 20) + " bytes written"), e.getMessage());
            assertEquals(ExitStatus.fromWaitStatus(9), child.killAndReap(seconds(10)));
        }
    }

    @Test
    void readFromAChildThatNeverAnswersTimesOut() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            ByteBuffer page = ByteBuffer.allocateDirect(PAGE_BYTES);
            DeadlineExceededException e = assertThrows(
                    DeadlineExceededException.class,
                    () -> child.stdout().readFully(page, Deadline.after(Duration.ofMillis(200))));
            assertTrue(e.getMessage().contains("0 of 8192 bytes arrived"), e.getMessage());
            // The pipe is still usable: a ping now gets its answer.
            TestSupport.pingPong(child, page, seconds(10));
        }
    }

    @Test
    void earlyEofSaysHowManyBytesArrived() throws Exception {
        try (ChildProcess child = runtime.spawn(TestSupport.sh("printf abc"), seconds(10))) {
            ByteBuffer page = ByteBuffer.allocateDirect(PAGE_BYTES);
            EOFException e =
                    assertThrows(EOFException.class, () -> child.stdout().readFully(page, seconds(10)));
            assertTrue(e.getMessage().contains("after 3 of 8192 bytes"), e.getMessage());
        }
    }

    @Test
    void writingToAChildThatExitedSaysTheReaderIsGone() throws Exception {
        try (ChildProcess child = runtime.spawn(TestSupport.sh("exit 0"), seconds(10))) {
            child.onExit().get(10, TimeUnit.SECONDS);
            NativeCallException e = assertThrows(
                    NativeCallException.class, () -> child.stdin().writeFully(TestSupport.ping(), seconds(10)));
            assertEquals("EPIPE", e.errnoName());
            assertTrue(e.getMessage().contains("the reader is gone"), e.getMessage());
        }
    }

    @Test
    void parkedReaderWakesWithAsynchronousCloseExceptionWhenAnotherThreadCloses() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread reader = Thread.ofVirtual().start(() -> {
                try {
                    child.stdout().read(ByteBuffer.allocateDirect(PAGE_BYTES), seconds(60));
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            awaitTrue("reader parked", () -> isParked(reader), seconds(10));
            child.stdout().close();
            assertTrue(reader.join(Duration.ofSeconds(10)), "reader woke up");
            assertInstanceOf(AsynchronousCloseException.class, failure.get());
            assertFalse(child.stdout().isOpen());
            assertThrows(
                    ClosedChannelException.class, () -> child.stdout().read(ByteBuffer.allocateDirect(1), seconds(1)));
            child.stdout().close();
        }
    }

    @Test
    void parkedWriterWakesWithAsynchronousCloseExceptionWhenAnotherThreadCloses() throws Exception {
        try (ChildProcess child = runtime.spawn(fake("--no-read"), seconds(10))) {
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    child.stdin().writeFully(ByteBuffer.allocateDirect(1 << 20), seconds(60));
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            awaitTrue("writer parked", () -> isParked(writer), seconds(10));
            child.stdin().close();
            assertTrue(writer.join(Duration.ofSeconds(10)), "writer woke up");
            assertInstanceOf(AsynchronousCloseException.class, failure.get());
        }
    }

    /**
     * Many round trips of one byte through cat, several pairs at once: every read and write parks on an empty or full
     * pipe, so a lost wake-up would leave a reader parked until its deadline and fail the test.
     */
    @Test
    void pingPongHammerLosesNoWakeUps() throws Exception {
        int pairs = 4;
        int roundTrips = 5_000;
        List<ChildProcess> cats = new ArrayList<>();
        try (ExecutorService vts = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < pairs; i++) {
                cats.add(cat());
            }
            List<Future<?>> done = new ArrayList<>();
            for (ChildProcess c : cats) {
                done.add(vts.submit(() -> {
                    ByteBuffer out = ByteBuffer.allocateDirect(1);
                    ByteBuffer in = ByteBuffer.allocateDirect(1);
                    for (int i = 0; i < roundTrips; i++) {
                        out.clear().put((byte) i).flip();
                        c.stdin().writeFully(out, seconds(10));
                        in.clear();
                        c.stdout().readFully(in, seconds(10));
                        assertEquals((byte) i, in.get(0));
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            cats.forEach(ChildProcess::close);
        }
    }

    /**
     * Polling reads (a spin budget) over cat, with heap and direct buffers: every byte arrives in order whether it
     * came during the spin or after a park (budgets from 1 ns to 1 ms, so both happen).
     */
    @Test
    void spinningReadsKeepEveryByteAndStillPark() throws Exception {
        try (ChildProcess c = cat()) {
            ByteBuffer out = ByteBuffer.allocateDirect(3);
            ByteBuffer direct = ByteBuffer.allocateDirect(3);
            ByteBuffer heap = ByteBuffer.allocate(3);
            long[] budgets = {1, 1_000, 50_000, 1_000_000};
            for (int i = 0; i < 2_000; i++) {
                out.clear().put((byte) i).put((byte) (i >> 8)).put((byte) 7).flip();
                c.stdin().writeFully(out, seconds(10));
                ByteBuffer in = i % 2 == 0 ? direct : heap;
                in.clear();
                while (in.hasRemaining()) {
                    assertTrue(c.stdout().read(in, seconds(10), budgets[i % budgets.length]) > 0);
                }
                assertEquals((byte) i, in.get(0));
                assertEquals((byte) (i >> 8), in.get(1));
                assertEquals((byte) 7, in.get(2));
            }
        }
    }

    @Test
    void aSpinLongerThanTheDeadlineStillTimesOutAndAnInterruptEndsIt() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            ByteBuffer page = ByteBuffer.allocateDirect(PAGE_BYTES);
            long spin = TimeUnit.SECONDS.toNanos(30);
            assertThrows(
                    DeadlineExceededException.class,
                    () -> child.stdout().read(page, Deadline.after(Duration.ofMillis(100)), spin));
            assertThrows(IllegalArgumentException.class, () -> child.stdout().read(page, seconds(1), -1));
            Thread.currentThread().interrupt();
            try {
                assertThrows(InterruptedIOException.class, () -> child.stdout().read(page, seconds(10), spin));
                assertTrue(Thread.currentThread().isInterrupted(), "the interrupt status is kept");
            } finally {
                Thread.interrupted();
            }
            TestSupport.pingPong(child, page, seconds(10));
        }
    }

    /** A writer and a reader streaming 8 MiB through cat in random chunk sizes: both park on full and empty pipes. */
    @Test
    void streamingHammerWithRandomChunksKeepsEveryByte() throws Exception {
        int total = 8 << 20;
        try (ChildProcess c = cat()) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(
                    () -> {
                        SplittableRandom random = new SplittableRandom(1);
                        ByteBuffer direct = ByteBuffer.allocateDirect(200_000);
                        int sent = 0;
                        try {
                            while (sent < total) {
                                int n = Math.min(total - sent, 1 + random.nextInt(200_000));
                                ByteBuffer b = random.nextBoolean() ? direct.clear() : ByteBuffer.allocate(n);
                                for (int i = 0; i < n; i++) {
                                    b.put((byte) ((sent + i) * 31));
                                }
                                b.flip();
                                c.stdin().writeFully(b, seconds(30));
                                sent += n;
                            }
                            c.stdin().close();
                        } catch (IOException e) {
                            throw new RuntimeException(e);
                        }
                    },
                    Executors.newVirtualThreadPerTaskExecutor());
            SplittableRandom random = new SplittableRandom(2);
            ByteBuffer direct = ByteBuffer.allocateDirect(100_000);
            long received = 0;
            while (true) {
                int n = 1 + random.nextInt(100_000);
                ByteBuffer b = random.nextBoolean() ? direct.clear().limit(n) : ByteBuffer.allocate(n);
                int got = c.stdout().read(b, seconds(30));
                if (got < 0) {
                    break;
                }
                b.flip();
                for (int i = 0; i < got; i++) {
                    if (b.get(i) != (byte) ((received + i) * 31)) {
                        throw new AssertionError("byte " + (received + i) + " differs");
                    }
                }
                received += got;
            }
            writer.get(30, TimeUnit.SECONDS);
            assertEquals(total, received);
        }
    }

    /**
     * close() racing with a reader that is about to read, reading or parked: the reader always ends with a closed
     * exception (never a hang, never a read on someone else's fd), and no fd is left behind.
     */
    @Test
    void closeRacingWithReadersNeverHangsOrLeaks() throws Exception {
        ChildProcess warm = cat();
        warm.close();
        warm.killAndReap(seconds(10));
        int fdsBefore = openFds();
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < 200; i++) {
            try (ChildProcess c = cat()) {
                AtomicReference<Throwable> failure = new AtomicReference<>();
                Thread reader = Thread.ofVirtual().start(() -> {
                    try {
                        c.stdout().read(ByteBuffer.allocateDirect(64), seconds(30));
                    } catch (Throwable t) {
                        failure.set(t);
                    }
                });
                int spins = random.nextInt(20_000);
                for (int s = 0; s < spins; s++) {
                    Thread.onSpinWait();
                }
                c.stdout().close();
                assertTrue(reader.join(Duration.ofSeconds(10)), "reader " + i + " woke up");
                assertInstanceOf(ClosedChannelException.class, failure.get(), "iteration " + i);
                c.killAndReap(seconds(10));
            }
        }
        assertEquals(fdsBefore, openFds(), "fds after 200 close races");
    }

    @Test
    void heapBuffersWorkThroughTheTemporaryDirectBuffer() throws Exception {
        byte[] data = new byte[300_000];
        new SplittableRandom(4).nextBytes(data);
        try (ChildProcess c = cat()) {
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    ByteBuffer src =
                            ByteBuffer.wrap(data, 100, data.length - 100).slice();
                    c.stdin().writeFully(src, seconds(30));
                    assertFalse(src.hasRemaining());
                    c.stdin().close();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            byte[] back = new byte[data.length - 100];
            ByteBuffer dst = ByteBuffer.wrap(back);
            c.stdout().readFully(dst, seconds(30));
            assertTrue(writer.join(Duration.ofSeconds(30)));
            assertArrayEquals(java.util.Arrays.copyOfRange(data, 100, data.length), back);
            assertEquals(-1, c.stdout().read(ByteBuffer.allocate(1), seconds(10)));
        }
    }

    /** A read on stdin or a write on stdout does not compile: each end has only its own direction's methods. */
    @Test
    void eachEndOffersOnlyItsDirection() {
        for (java.lang.reflect.Method m : PipeWriteEnd.class.getMethods()) {
            assertFalse(m.getName().startsWith("read") || m.getName().equals("available"), "write end has " + m);
        }
        for (java.lang.reflect.Method m : PipeReadEnd.class.getMethods()) {
            assertFalse(m.getName().startsWith("write"), "read end has " + m);
        }
        assertEquals(
                java.util.Set.of(PipeReadEnd.class, PipeWriteEnd.class),
                java.util.Set.of(PipeEnd.class.getPermittedSubclasses()));
    }

    @Test
    void emptyBuffersMoveNothing() throws Exception {
        try (ChildProcess c = runtime.spawn(fake(), seconds(10))) {
            assertEquals(0, c.stdout().read(ByteBuffer.allocate(0), seconds(1)));
            c.stdin().writeFully(ByteBuffer.allocate(0), seconds(1));
            TestSupport.pingPong(c, ByteBuffer.allocateDirect(PAGE_BYTES), seconds(10));
        }
    }
}
