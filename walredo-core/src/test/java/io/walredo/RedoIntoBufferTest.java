// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel.Fault;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;

/** {@link WalRedoManager#redo(TenantShardId, RedoRequest, AttemptType, Duration, ByteBuffer)}: the page into a buffer. */
class RedoIntoBufferTest {

    private static final TenantShardId T = TenantShardId.of(0x2e40_c0b1L, 3);
    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private static final int PAGE = RedoRequest.PAGE_BYTES;
    private static final byte SENTINEL = 0x5a;

    @Test
    void thePageLandsAtThePositionOfAHeapOrDirectBufferAndNothingElseIsTouched() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            for (ByteBuffer b :
                    List.of(filled(ByteBuffer.allocate(PAGE + 300)), filled(ByteBuffer.allocateDirect(PAGE + 300)))) {
                b.position(100).limit(PAGE + 200);
                m.redo(T, request(7), AttemptType.READ_PAGE, TIMEOUT, b);
                assertEquals(100 + PAGE, b.position(), "the position moves past the page");
                assertEquals(PAGE + 200, b.limit());
                b.limit(b.capacity());
                byte[] page = new byte[PAGE];
                b.get(100, page);
                assertArrayEquals(expected(request(7)), page);
                assertSentinel(b, 0, 100);
                assertSentinel(b, 100 + PAGE, PAGE + 300);
            }
        }
    }

    @Test
    void aBufferThatCannotTakeThePageIsRefusedBeforeAnythingIsSpawned() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            assertThrows(
                    IllegalArgumentException.class,
                    () -> m.redo(T, request(1), AttemptType.READ_PAGE, TIMEOUT, ByteBuffer.allocate(PAGE - 1)));
            ByteBuffer full = ByteBuffer.allocate(PAGE * 2).position(PAGE + 1);
            assertThrows(
                    IllegalArgumentException.class, () -> m.redo(T, request(1), AttemptType.READ_PAGE, TIMEOUT, full));
            assertThrows(
                    IllegalArgumentException.class,
                    () -> m.redo(
                            T,
                            request(1),
                            AttemptType.READ_PAGE,
                            TIMEOUT,
                            ByteBuffer.allocate(PAGE).asReadOnlyBuffer()));
            assertThrows(
                    NullPointerException.class,
                    () -> m.redo(T, request(1), AttemptType.READ_PAGE, TIMEOUT, (ByteBuffer) null));
            assertTrue(m.status().isEmpty(), "a sidecar was spawned for a refused call");
            assertEquals(0, m.metrics().sidecarsStarted());
        }
    }

    /**
     * A caller that times out before its answer comes must find its buffer untouched, then and later: the answer
     * arrives after the call has thrown and is dropped, not copied into a buffer its owner may be using again.
     */
    @Test
    void aCallerThatTimedOutNeverHasItsBufferWritten() throws Exception {
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.DELAY_US.args(300_000)).build())) {
            m.ping(T, Fixtures.PG);
            ByteBuffer b = filled(ByteBuffer.allocateDirect(PAGE));
            assertThrows(
                    RedoTimeoutException.class,
                    () -> m.redo(T, request(2), AttemptType.READ_PAGE, Duration.ofMillis(50), b));
            assertEquals(0, b.position());
            assertSentinel(b, 0, PAGE);
            // This one queues behind the abandoned request, so when it returns that answer has been read and dropped.
            assertArrayEquals(expected(request(3)), m.redo(T, request(3), AttemptType.READ_PAGE, TIMEOUT));
            assertSentinel(b, 0, PAGE);
        }
    }

    /** Callers into buffers and callers taking arrays, pipelined on one sidecar: every page goes to its own caller. */
    @Test
    void buffersAndArraysPipelinedOnOneSidecarEachGetTheirOwnPage() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
            List<Thread> callers = new ArrayList<>();
            for (int c = 0; c < 16; c++) {
                int caller = c;
                callers.add(Thread.ofVirtual().start(() -> {
                    ByteBuffer b = caller % 2 == 0 ? ByteBuffer.allocateDirect(PAGE) : null;
                    for (int i = 0; i < 200; i++) {
                        int n = caller * 1000 + i;
                        try {
                            byte[] page;
                            if (b != null) {
                                m.redo(T, request(n), AttemptType.READ_PAGE, TIMEOUT, b.clear());
                                page = new byte[PAGE];
                                b.get(0, page);
                            } else {
                                page = m.redo(T, request(n), AttemptType.READ_PAGE, TIMEOUT);
                            }
                            if (!java.util.Arrays.equals(expected(request(n)), page)) {
                                wrong.add("request " + n);
                            }
                        } catch (WalRedoException e) {
                            wrong.add("request " + n + ": " + e);
                        }
                    }
                }));
            }
            for (Thread t : callers) {
                t.join(Duration.ofSeconds(60));
            }
            assertTrue(wrong.isEmpty(), "wrong or failed: " + wrong);
        }
    }

    private static ByteBuffer filled(ByteBuffer b) {
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, SENTINEL);
        }
        return b;
    }

    private static void assertSentinel(ByteBuffer b, int from, int to) {
        for (int i = from; i < to; i++) {
            if (b.get(i) != SENTINEL) {
                throw new AssertionError("byte " + i + " was written");
            }
        }
    }
}
