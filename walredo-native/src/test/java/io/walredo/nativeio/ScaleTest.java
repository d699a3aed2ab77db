// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static io.walredo.nativeio.TestSupport.PAGE_BYTES;
import static io.walredo.nativeio.TestSupport.awaitTrue;
import static io.walredo.nativeio.TestSupport.fake;
import static io.walredo.nativeio.TestSupport.openFds;
import static io.walredo.nativeio.TestSupport.pingPong;
import static io.walredo.nativeio.TestSupport.platformThreads;
import static io.walredo.nativeio.TestSupport.seconds;
import static io.walredo.nativeio.TestSupport.zombies;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Many sidecars at once and many in a row: threads, fds and zombies stay bounded. */
class ScaleTest {

    private static final int SIDECARS = 1000;
    private static final int CYCLES = 2000;
    private static final int PLATFORM_THREAD_LIMIT = 64;

    private final NativeRuntime runtime = NativeRuntime.get();

    /**
     * 1,000 live sidecars, each with one virtual thread parked on stdout and one on stderr: parking holds no platform
     * thread, so the JVM's platform thread count stays far below one per sidecar; every read completes once the
     * sidecars answer.
     */
    @Test
    void thousandSidecarsWithParkedReadersNeedNoThreadEach() throws Exception {
        List<ChildProcess> sidecars = new ArrayList<>(SIDECARS);
        List<Thread> readers = new ArrayList<>(2 * SIDECARS);
        List<CompletableFuture<Integer>> stderrEof = new ArrayList<>(SIDECARS);
        List<CompletableFuture<Void>> pages = new ArrayList<>(SIDECARS);
        try {
            for (int i = 0; i < SIDECARS; i++) {
                sidecars.add(runtime.spawn(fake(), seconds(60)));
            }
            for (ChildProcess s : sidecars) {
                CompletableFuture<Void> page = new CompletableFuture<>();
                CompletableFuture<Integer> eof = new CompletableFuture<>();
                pages.add(page);
                stderrEof.add(eof);
                readers.add(Thread.ofVirtual().start(() -> {
                    try {
                        ByteBuffer buf = ByteBuffer.allocateDirect(PAGE_BYTES);
                        s.stdout().readFully(buf, seconds(60));
                        buf.flip();
                        while (buf.hasRemaining()) {
                            assertEquals(0, buf.get());
                        }
                        page.complete(null);
                    } catch (Throwable t) {
                        page.completeExceptionally(t);
                    }
                }));
                readers.add(Thread.ofVirtual().start(() -> {
                    try {
                        eof.complete(s.stderr().read(ByteBuffer.allocateDirect(256), seconds(60)));
                    } catch (Throwable t) {
                        eof.completeExceptionally(t);
                    }
                }));
            }
            awaitTrue("all readers parked", () -> readers.stream().allMatch(TestSupport::isParked), seconds(30));
            int threads = platformThreads();
            System.out.printf(
                    "%d sidecars, %d parked virtual readers: %d platform threads%n", SIDECARS, readers.size(), threads);
            assertTrue(threads < PLATFORM_THREAD_LIMIT, "platform threads: " + threads);

            for (ChildProcess s : sidecars) {
                s.stdin().writeFully(TestSupport.ping(), seconds(10));
            }
            for (CompletableFuture<Void> page : pages) {
                page.get(60, TimeUnit.SECONDS);
            }
            for (ChildProcess s : sidecars) {
                s.stdin().close();
            }
            for (CompletableFuture<Integer> eof : stderrEof) {
                assertEquals(-1, eof.get(60, TimeUnit.SECONDS), "stderr ends at exit");
            }
            for (ChildProcess s : sidecars) {
                assertEquals(0, s.onExit().get(60, TimeUnit.SECONDS).exitCode());
            }
        } finally {
            sidecars.forEach(ChildProcess::close);
        }
    }

    /**
     * 2,000 spawn → ping → kill cycles leave the fd count, the platform thread count and the zombie count as
     * they were.
     */
    @Test
    void spawnPingKillCyclesLeaveNothingBehind() throws Exception {
        ByteBuffer page = ByteBuffer.allocateDirect(PAGE_BYTES);
        for (int i = 0; i < 20; i++) {
            cycle(page);
        }
        int fdsBefore = openFds();
        int threadsBefore = platformThreads();
        assertEquals(List.of(), zombies());
        for (int i = 0; i < CYCLES; i++) {
            cycle(page);
        }
        assertEquals(fdsBefore, openFds(), "fds after " + CYCLES + " cycles");
        assertEquals(List.of(), zombies(), "zombies after " + CYCLES + " cycles");
        // The JDK may start or retire a ForkJoinPool carrier meanwhile; a per-cycle leak would show as thousands.
        int threadsAfter = platformThreads();
        assertTrue(threadsAfter <= threadsBefore + 2, "platform threads " + threadsBefore + " -> " + threadsAfter);
    }

    private void cycle(ByteBuffer page) throws IOException {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            pingPong(child, page, seconds(10));
            assertEquals(9, child.killAndReap(seconds(10)).signal());
        }
    }
}
