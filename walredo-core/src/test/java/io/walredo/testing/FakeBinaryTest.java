// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.WalRecord;
import io.walredo.internal.ProtocolCodec;
import io.walredo.testing.FakeRedoModel.Fault;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Tests the fake redo binary itself, started with {@link ProcessBuilder}, against {@link FakeRedoModel} and
 * {@code docs/protocol.md}: pages, framing, errors, argv, and every fault flag. Library behaviour under these
 * faults is tested with the library's spawner elsewhere.
 *
 * <p>Negative checks ("no answer", "no EOF", "still alive") wait {@link #QUIET} for something that can never
 * happen while the fault holds, so they cannot flake; positive waits are bounded by {@link #TIMEOUT}.
 */
class FakeBinaryTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final Duration QUIET = Duration.ofMillis(300);
    private static final int PAGE = FakeRedoModel.PAGE_BYTES;
    private static final int SIGKILL_STATUS = 128 + 9;

    private static final BufferTag SHORT_TAG = BufferTag.of(1663, 13010, 1259, 0, 0);

    // ---------------------------------------------------------------- the model's building blocks

    @Test
    void modelPrimitivesMatchPublishedValues() {
        // FNV-1a 64 of "a" and of "foobar" (Fowler/Noll/Vo's test vectors), and the first SplitMix64 output
        // for seed 0 (Vigna's reference): pins both implementations to the algorithms the spec names.
        assertEquals(0xaf63dc4c8601ec8cL, FakeRedoModel.fnv(FakeRedoModel.FNV_OFFSET_BASIS, new byte[] {'a'}, 0, 1));
        byte[] foobar = "foobar".getBytes(StandardCharsets.US_ASCII);
        assertEquals(0x85944171f73967e8L, FakeRedoModel.fnv(FakeRedoModel.FNV_OFFSET_BASIS, foobar, 0, 6));
        assertEquals(0xe220a8397b1dcdafL, FakeRedoModel.splitmix64(0));
    }

    @Test
    void modelPageLayout() {
        byte[] wireTag = FakeRedoModel.wireTag(SHORT_TAG);
        byte[] page = new FakeRedoModel.Session()
                .begin(wireTag)
                .apply(0x16A9388L, new byte[] {1, 2, 3})
                .getPage(wireTag);
        ByteBuffer b = ByteBuffer.wrap(page);
        assertArrayEquals(wireTag, Arrays.copyOf(page, FakeRedoModel.TAG_BYTES));
        assertEquals(1, b.getInt(17));
        assertEquals(0x16A9388L, b.getLong(21));
        long h = FakeRedoModel.fnv(
                FakeRedoModel.FNV_OFFSET_BASIS,
                new byte[] {0, 0, 0, 0, 0x01, 0x6A, (byte) 0x93, (byte) 0x88, 1, 2, 3},
                0,
                11);
        assertEquals(h, b.getLong(29));
        assertArrayEquals(new byte[3], Arrays.copyOfRange(page, 37, 40));
        assertEquals(FakeRedoModel.splitmix64(h), b.getLong(40));
        assertEquals(FakeRedoModel.splitmix64(h + 1018), b.getLong(PAGE - 8));
    }

    // ---------------------------------------------------------------- pages

    @Test
    void answersRequestWithoutBaseImage() throws Exception {
        RedoRequest request = request(new Random(1), 1, false, 3, 200);
        assertAnswers(List.of(request));
    }

    @Test
    void answersRequestWithBaseImage() throws Exception {
        RedoRequest request = request(new Random(2), 2, true, 4, 500);
        assertAnswers(List.of(request));
    }

    @Test
    void answersManyPipelinedRequestsWrittenAtOnce() throws Exception {
        Random rnd = new Random(3);
        List<RedoRequest> requests = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            requests.add(request(rnd, i, i % 3 == 0, 1 + rnd.nextInt(5), 1 + rnd.nextInt(2000)));
        }
        assertAnswers(requests);
    }

    @Test
    void answersRecordLargerThanTheReadBuffer() throws Exception {
        byte[] big = new byte[3 * 1024 * 1024 + 7];
        new Random(4).nextBytes(big);
        RedoRequest request = RedoRequest.builder(16, SHORT_TAG, Lsn.of(0x9000_0000L))
                .addRecord(WalRecord.of(Lsn.of(0x1000), true, new byte[] {42}))
                .addRecord(WalRecord.of(Lsn.of(0x8000_0000L), false, big))
                .build();
        assertAnswers(List.of(request));
    }

    @Test
    void answersRequestWrittenOneByteAtATime() throws Exception {
        RedoRequest request = request(new Random(5), 5, true, 3, 100);
        byte[] bytes = encode(List.of(request));
        try (FakeProcess fake = FakeProcess.start(List.of())) {
            OutputStream in = fake.stdin();
            for (byte b : bytes) {
                in.write(b);
                // One write(2) per byte: every frame boundary, and every byte inside a header, tag and LSN,
                // is a read boundary unless the fake happens to be slower than this loop.
                in.flush();
            }
            fake.awaitStdout(PAGE, TIMEOUT);
            assertPage(FakeRedoModel.expectedPage(request), fake.stdout().range(0, PAGE));
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
        }
    }

    @Test
    void answersNeonShortVector() throws Exception {
        byte[] stream = resource("short.request.bin");
        List<WalRecord> records = parseRecords(resource("short.records"));
        byte[] expected = FakeRedoModel.expectedPage(SHORT_TAG, Optional.empty(), records);
        try (FakeProcess fake = FakeProcess.start(List.of())) {
            fake.write(stream);
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stdout().awaitEof(TIMEOUT), fake::describe);
            assertEquals(PAGE, fake.stdout().size(), fake::describe);
            assertPage(expected, fake.stdout().bytes());
            assertEquals(2, ByteBuffer.wrap(expected).getInt(17));
            assertEquals(0x16D4080L, ByteBuffer.wrap(expected).getLong(21));
        }
    }

    @Test
    void stateIsResetOnlyByBeginAndTheGetPageTagIsEchoed() throws Exception {
        byte[] t1 = FakeRedoModel.wireTag(BufferTag.of(1663, 1, 2, 0, 3));
        byte[] t2 = FakeRedoModel.wireTag(BufferTag.of(1663, 1, 2, 1, 4));
        byte[] image = new byte[PAGE];
        new Random(6).nextBytes(image);
        ByteArrayOutputStream s = new ByteArrayOutputStream();
        FakeRedoModel.Session model = new FakeRedoModel.Session();
        List<byte[]> expected = new ArrayList<>();

        s.writeBytes(frame('B', t1));
        model.begin(t1);
        s.writeBytes(frame('A', lsnAndRecord(0, new byte[0])));
        model.apply(0, new byte[0]);
        s.writeBytes(frame('G', t2));
        expected.add(model.getPage(t2));
        s.writeBytes(frame('A', lsnAndRecord(-1L, new byte[] {9})));
        model.apply(-1L, new byte[] {9});
        s.writeBytes(frame('G', t1));
        expected.add(model.getPage(t1));
        s.writeBytes(frame('G', t1));
        expected.add(model.getPage(t1));
        s.writeBytes(frame('B', t2));
        model.begin(t2);
        s.writeBytes(frame('P', concat(t2, image)));
        model.pushPage(image);
        s.writeBytes(frame('H', new byte[0]));
        expected.add(FakeRedoModel.pingAnswer());
        s.writeBytes(frame('P', concat(t1, new byte[PAGE])));
        model.pushPage(new byte[PAGE]);
        s.writeBytes(frame('G', t2));
        expected.add(model.getPage(t2));

        try (FakeProcess fake = FakeProcess.start(List.of())) {
            fake.write(s.toByteArray());
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stdout().awaitEof(TIMEOUT));
            assertEquals(expected.size() * PAGE, fake.stdout().size(), fake::describe);
            for (int i = 0; i < expected.size(); i++) {
                assertPage(expected.get(i), fake.stdout().range(i * PAGE, PAGE));
            }
        }
    }

    @Test
    void answersPingWithZeroPageEvenBeforeBegin() throws Exception {
        ByteBuffer b = ByteBuffer.allocate(2 * ProtocolCodec.PING_BYTES);
        ProtocolCodec.encodePing(b);
        ProtocolCodec.encodePing(b);
        try (FakeProcess fake = FakeProcess.start(List.of())) {
            fake.write(b.array());
            fake.awaitStdout(2 * PAGE, TIMEOUT);
            assertArrayEquals(new byte[2 * PAGE], fake.stdout().bytes());
        }
    }

    @Test
    void exitsCleanlyOnEofWithoutOutput() throws Exception {
        try (FakeProcess fake = FakeProcess.start(List.of())) {
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stdout().awaitEof(TIMEOUT));
            assertTrue(fake.stderr().awaitEof(TIMEOUT));
            assertEquals(0, fake.stdout().size());
            assertEquals("", fake.stderr().text());
        }
    }

    // ---------------------------------------------------------------- protocol errors

    @ParameterizedTest
    @ValueSource(ints = {'X', 'Q', 0, 0xFF})
    void rejectsUnknownMessageType(int type) throws Exception {
        byte[] bad = ByteBuffer.allocate(5).put((byte) type).putInt(4).array();
        assertProtocolError(
                concat(frame('B', FakeRedoModel.wireTag(SHORT_TAG)), bad),
                "invalid frontend message type " + type + " ");
    }

    static Stream<Arguments> badLengths() {
        return Stream.of(
                Arguments.of('B', 3),
                Arguments.of('B', 20),
                Arguments.of('B', 22),
                Arguments.of('G', 0),
                Arguments.of('G', 25),
                Arguments.of('P', 21),
                Arguments.of('P', 8212),
                Arguments.of('P', 8214),
                Arguments.of('H', 5),
                Arguments.of('H', 3),
                Arguments.of('A', 11),
                Arguments.of('A', (1 << 30) + 13),
                Arguments.of('A', -1));
    }

    @ParameterizedTest
    @MethodSource("badLengths")
    void rejectsBadLength(char type, int length) throws Exception {
        byte[] bad = ByteBuffer.allocate(5).put((byte) type).putInt(length).array();
        assertProtocolError(
                concat(frame('B', FakeRedoModel.wireTag(SHORT_TAG)), bad),
                "invalid message length " + Integer.toUnsignedString(length) + " for '" + type + "'");
    }

    @ParameterizedTest
    @ValueSource(chars = {'A', 'P', 'G'})
    void rejectsMessageBeforeBegin(char type) throws Exception {
        byte[] tag = FakeRedoModel.wireTag(SHORT_TAG);
        byte[] payload = switch (type) {
            case 'A' -> lsnAndRecord(1, new byte[] {1});
            case 'P' -> concat(tag, new byte[PAGE]);
            default -> tag;
        };
        assertProtocolError(concat(frame('H', new byte[0]), frame(type, payload)), "'" + type + "' (");
    }

    @Test
    void rejectsEofInsideMessage() throws Exception {
        byte[] a = frame('A', lsnAndRecord(5, new byte[100]));
        assertProtocolError(
                concat(frame('B', FakeRedoModel.wireTag(SHORT_TAG)), Arrays.copyOf(a, 50)),
                "unexpected EOF on stdin inside a 'A'");
        assertProtocolError(Arrays.copyOf(frame('H', new byte[0]), 3), "inside a message header");
    }

    // ---------------------------------------------------------------- argv

    @Test
    void refusesToRunWithoutWalRedo() throws Exception {
        assertStartupFailure(
                List.of("--tenant-shard-id", FakeProcess.TENANT), FakeRedoModel.EXIT_FAILURE, "--wal-redo is required");
    }

    @Test
    void noWalRedoSupportMimicsVanillaPostgres() throws Exception {
        assertStartupFailure(
                List.of("--wal-redo", "--no-walredo-support"),
                FakeRedoModel.EXIT_FAILURE,
                "FATAL:  --wal-redo requires a value");
    }

    @ParameterizedTest
    @ValueSource(strings = {"--bogus", "--crash-after=2", "-D"})
    void rejectsUnknownFlag(String flag) throws Exception {
        assertStartupFailure(
                List.of("--wal-redo", flag), FakeRedoModel.EXIT_FAILURE, "unknown option \"" + flag + "\"");
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-1", "x", "", "99999999999999999999999"})
    void rejectsBadFlagValue(String value) throws Exception {
        assertStartupFailure(
                List.of("--wal-redo", "--crash-after", value), FakeRedoModel.EXIT_FAILURE, "--crash-after");
    }

    @Test
    void rejectsMissingFlagValue() throws Exception {
        assertStartupFailure(
                List.of("--wal-redo", "--tenant-shard-id"),
                FakeRedoModel.EXIT_FAILURE,
                "--tenant-shard-id requires a value");
    }

    @Test
    void acceptsTheRealArgv() throws Exception {
        try (FakeProcess fake = FakeProcess.startArgs(
                List.of("--wal-redo", "--tenant-shard-id", FakeProcess.TENANT, "--disable-seccomp"))) {
            fake.write(ping());
            fake.awaitStdout(PAGE, TIMEOUT);
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
        }
    }

    // ---------------------------------------------------------------- fault flags

    @Test
    void delayUsStillAnswersCorrectly() throws Exception {
        List<RedoRequest> requests = List.of(
                request(new Random(7), 1, false, 1, 10),
                request(new Random(8), 2, true, 2, 10),
                request(new Random(9), 3, false, 1, 10));
        long started = System.nanoTime();
        try (FakeProcess fake = FakeProcess.start(Fault.DELAY_US.args(20_000))) {
            fake.write(encode(requests));
            fake.awaitStdout(3 * PAGE, TIMEOUT);
            // A lower bound only: the fake sleeps at least this long per answer, so this cannot flake.
            assertTrue(System.nanoTime() - started >= Duration.ofMillis(60).toNanos());
            for (int i = 0; i < requests.size(); i++) {
                assertPage(
                        FakeRedoModel.expectedPage(requests.get(i)),
                        fake.stdout().range(i * PAGE, PAGE));
            }
        }
    }

    @Test
    void startupDelayPostponesTheFirstAnswer() throws Exception {
        long started = System.nanoTime();
        try (FakeProcess fake = FakeProcess.start(Fault.STARTUP_DELAY_MS.args(200))) {
            fake.write(ping());
            fake.awaitStdout(PAGE, TIMEOUT);
            // A lower bound only, as above.
            assertTrue(System.nanoTime() - started >= Duration.ofMillis(200).toNanos());
            assertArrayEquals(FakeRedoModel.pingAnswer(), fake.stdout().bytes());
        }
    }

    @Test
    void crashAfterDiesOfSigsegvBeforeTheNthAnswer() throws Exception {
        List<RedoRequest> requests = requests(10, 3);
        try (FakeProcess fake = FakeProcess.start(Fault.CRASH_AFTER.args(2))) {
            fake.write(encode(requests));
            assertEquals(128 + FakeRedoModel.CRASH_SIGNAL, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stdout().awaitEof(TIMEOUT));
            assertEquals(PAGE, fake.stdout().size(), fake::describe);
            assertPage(
                    FakeRedoModel.expectedPage(requests.get(0)), fake.stdout().bytes());
            assertTrue(fake.stderr().awaitText("--crash-after 2", TIMEOUT), fake::describe);
        }
    }

    @Test
    void exitAfterExitsWithStatus1AfterNMinus1Answers() throws Exception {
        List<RedoRequest> requests = requests(11, 4);
        try (FakeProcess fake = FakeProcess.start(Fault.EXIT_AFTER.args(3))) {
            fake.write(encode(requests));
            assertEquals(FakeRedoModel.EXIT_FAILURE, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stdout().awaitEof(TIMEOUT));
            assertEquals(2 * PAGE, fake.stdout().size(), fake::describe);
            for (int i = 0; i < 2; i++) {
                assertPage(
                        FakeRedoModel.expectedPage(requests.get(i)),
                        fake.stdout().range(i * PAGE, PAGE));
            }
        }
    }

    @Test
    void hangAfterStopsAnsweringWithPipesOpen() throws Exception {
        List<RedoRequest> requests = requests(12, 3);
        try (FakeProcess fake = FakeProcess.start(Fault.HANG_AFTER.args(2))) {
            fake.write(encode(requests));
            fake.awaitStdout(PAGE, TIMEOUT);
            assertTrue(fake.stderr().awaitText("--hang-after 2", TIMEOUT), fake::describe);
            assertFalse(fake.stdout().awaitBytes(PAGE + 1, QUIET), fake::describe);
            assertFalse(fake.stdout().awaitEof(Duration.ZERO));
            assertTrue(fake.process().isAlive());
            assertPage(
                    FakeRedoModel.expectedPage(requests.get(0)), fake.stdout().bytes());
            // It no longer reads, so EOF on stdin does not end it either.
            fake.closeStdin();
            assertFalse(fake.process().waitFor(QUIET.toMillis(), TimeUnit.MILLISECONDS), fake::describe);
        }
    }

    @Test
    void garbageAfterWritesGarbageThenClosesStdoutAndKeepsRunning() throws Exception {
        List<RedoRequest> requests = requests(13, 3);
        try (FakeProcess fake = FakeProcess.start(Fault.GARBAGE_AFTER.args(2))) {
            fake.write(encode(requests));
            assertTrue(fake.stdout().awaitEof(TIMEOUT), fake::describe);
            assertEquals(PAGE + FakeRedoModel.GARBAGE_BYTES, fake.stdout().size(), fake::describe);
            assertPage(
                    FakeRedoModel.expectedPage(requests.get(0)), fake.stdout().range(0, PAGE));
            assertArrayEquals(FakeRedoModel.garbage(), fake.stdout().range(PAGE, FakeRedoModel.GARBAGE_BYTES));
            // Still reading: it ends at stdin EOF, not at the garbage.
            assertTrue(fake.process().isAlive(), fake::describe);
            fake.write(ping());
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
        }
    }

    @Test
    void partialAfterWritesHalfAPageThenHangs() throws Exception {
        List<RedoRequest> requests = requests(14, 2);
        try (FakeProcess fake = FakeProcess.start(Fault.PARTIAL_AFTER.args(2))) {
            fake.write(encode(requests));
            fake.awaitStdout(PAGE + FakeRedoModel.PARTIAL_BYTES, TIMEOUT);
            assertTrue(fake.stderr().awaitText("--partial-after 2", TIMEOUT), fake::describe);
            assertFalse(fake.stdout().awaitBytes(PAGE + FakeRedoModel.PARTIAL_BYTES + 1, QUIET), fake::describe);
            assertFalse(fake.stdout().awaitEof(Duration.ZERO));
            assertTrue(fake.process().isAlive());
            assertPage(
                    FakeRedoModel.expectedPage(requests.get(0)), fake.stdout().range(0, PAGE));
            assertArrayEquals(
                    Arrays.copyOf(FakeRedoModel.expectedPage(requests.get(1)), FakeRedoModel.PARTIAL_BYTES),
                    fake.stdout().range(PAGE, FakeRedoModel.PARTIAL_BYTES));
        }
    }

    @Test
    void unsolicitedAfterWritesAnExtraPageAfterItsAnswerAndGoesOn() throws Exception {
        List<RedoRequest> requests = requests(16, 2);
        try (FakeProcess fake = FakeProcess.start(Fault.UNSOLICITED_AFTER.args(1))) {
            fake.write(encode(requests.subList(0, 1)));
            fake.awaitStdout(2 * PAGE, TIMEOUT);
            assertTrue(fake.stderr().awaitText("--unsolicited-after 1", TIMEOUT), fake::describe);
            assertPage(
                    FakeRedoModel.expectedPage(requests.get(0)), fake.stdout().range(0, PAGE));
            byte[] extra = new byte[PAGE];
            Arrays.fill(extra, (byte) 0xFF);
            assertArrayEquals(extra, fake.stdout().range(PAGE, PAGE));
            fake.write(encode(requests.subList(1, 2)));
            fake.awaitStdout(3 * PAGE, TIMEOUT);
            assertPage(
                    FakeRedoModel.expectedPage(requests.get(1)), fake.stdout().range(2 * PAGE, PAGE));
        }
    }

    @Test
    void exitMidPageWritesHalfAPageThenExits() throws Exception {
        List<RedoRequest> requests = requests(15, 3);
        try (FakeProcess fake = FakeProcess.start(Fault.EXIT_MID_PAGE.args(2))) {
            fake.write(encode(requests));
            assertEquals(FakeRedoModel.EXIT_FAILURE, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stdout().awaitEof(TIMEOUT));
            assertEquals(PAGE + FakeRedoModel.PARTIAL_BYTES, fake.stdout().size(), fake::describe);
            assertPage(
                    FakeRedoModel.expectedPage(requests.get(0)), fake.stdout().range(0, PAGE));
            assertArrayEquals(
                    Arrays.copyOf(FakeRedoModel.expectedPage(requests.get(1)), FakeRedoModel.PARTIAL_BYTES),
                    fake.stdout().range(PAGE, FakeRedoModel.PARTIAL_BYTES));
        }
    }

    @Test
    void exitAtStartPrintsOneLineAndExits3() throws Exception {
        try (FakeProcess fake = FakeProcess.start(Fault.EXIT_AT_START.args())) {
            assertEquals(FakeRedoModel.EXIT_AT_START, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stderr().awaitEof(TIMEOUT));
            assertTrue(fake.stdout().awaitEof(TIMEOUT));
            assertEquals(0, fake.stdout().size());
            List<String> lines = fake.stderr().text().lines().toList();
            assertEquals(1, lines.size(), fake::describe);
            assertTrue(lines.get(0).contains("--exit-at-start"), fake::describe);
        }
    }

    @Test
    void stderrLinesPrintsNLogLines() throws Exception {
        try (FakeProcess fake = FakeProcess.start(Fault.STDERR_LINES.args(5))) {
            fake.write(ping());
            fake.awaitStdout(PAGE, TIMEOUT);
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stderr().awaitEof(TIMEOUT));
            List<String> lines = fake.stderr().text().lines().toList();
            assertEquals(5, lines.size(), fake::describe);
            assertEquals(FakeRedoModel.RMGR_LOG_LINE, lines.get(0));
            assertEquals("LOG:  fake-walredo log line 5 of 5", lines.get(4));
        }
    }

    @Test
    void stderrFloodWritesExactlyThatManyBytesInLines() throws Exception {
        int bytes = 1_000_050;
        byte[] err = floodAndCollect(Fault.STDERR_FLOOD.args(bytes));
        assertEquals(bytes, err.length);
        for (int i = 0; i < err.length; i++) {
            byte expected =
                    i % FakeRedoModel.FLOOD_LINE_BYTES == FakeRedoModel.FLOOD_LINE_BYTES - 1 ? (byte) '\n' : (byte) 'x';
            if (err[i] != expected) {
                assertEquals(expected, err[i], "stderr byte " + i);
            }
        }
    }

    @Test
    void stderrFloodNonlWritesExactlyThatManyBytesWithoutNewline() throws Exception {
        int bytes = 300_001;
        byte[] err = floodAndCollect(Fault.STDERR_FLOOD_NONL.args(bytes));
        assertEquals(bytes, err.length);
        for (int i = 0; i < err.length; i++) {
            if (err[i] != 'x') {
                assertEquals('x', err[i], "stderr byte " + i);
            }
        }
    }

    @Test
    void noReadLetsTheParentsWritesBlock() throws Exception {
        byte[] chunk = ping();
        byte[] many = new byte[chunk.length * 200_000];
        for (int i = 0; i < many.length; i += chunk.length) {
            System.arraycopy(chunk, 0, many, i, chunk.length);
        }
        CountDownLatch writerDone = new CountDownLatch(1);
        AtomicLong written = new AtomicLong();
        try (FakeProcess fake = FakeProcess.start(Fault.NO_READ.args())) {
            Thread writer = Thread.ofPlatform().daemon().name("no-read-writer").start(() -> {
                try {
                    OutputStream in = fake.stdin();
                    for (int off = 0; off < many.length; off += 4096) {
                        in.write(many, off, 4096);
                        in.flush();
                        written.addAndGet(4096);
                    }
                } catch (IOException expectedOnceKilled) {
                    // The pipe breaks when the test kills the fake; that is how the writer gets unstuck.
                } finally {
                    writerDone.countDown();
                }
            });
            assertFalse(
                    writerDone.await(QUIET.toMillis(), TimeUnit.MILLISECONDS),
                    () -> "writer finished " + written + " bytes although the fake never reads: " + fake.describe());
            assertTrue(written.get() < many.length);
            fake.process().destroyForcibly();
            assertEquals(SIGKILL_STATUS, fake.awaitExit(TIMEOUT));
            assertTrue(writerDone.await(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS), "writer still blocked");
            writer.join(TIMEOUT.toMillis());
            assertEquals(0, fake.stdout().size());
        }
    }

    @Test
    void reportFdsIsTheFirstStderrLine() throws Exception {
        try (FakeProcess fake = FakeProcess.start(concatArgs(Fault.STDERR_LINES.args(1), Fault.REPORT_FDS.args()))) {
            fake.write(ping());
            fake.awaitStdout(PAGE, TIMEOUT);
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stderr().awaitEof(TIMEOUT));
            List<String> lines = fake.stderr().text().lines().toList();
            assertEquals(2, lines.size(), fake::describe);
            assertTrue(lines.get(0).matches("fds:( \\d+)+"), lines.get(0));
            // The JDK closes every other descriptor in the child before exec.
            assertEquals("fds: 0 1 2", lines.get(0));
            assertEquals(FakeRedoModel.RMGR_LOG_LINE, lines.get(1));
        }
    }

    @Test
    void reportFdsShowsAnInheritedDescriptor() throws Exception {
        // The shell opens descriptor 7 without close-on-exec and execs the fake: the leak a careless spawner
        // would cause, which the fake must show rather than close.
        List<String> fake = FakeRedoModel.command(FakeProcess.TENANT, Fault.REPORT_FDS.args());
        String script = "exec 7</dev/null; exec \"$@\"";
        List<String> command = new ArrayList<>(List.of("/bin/sh", "-c", script, "sh"));
        command.addAll(fake);
        try (FakeProcess p = FakeProcess.startRaw(command)) {
            p.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, p.awaitExit(TIMEOUT), p::describe);
            assertTrue(p.stderr().awaitEof(TIMEOUT));
            String first = p.stderr().text().lines().findFirst().orElse("");
            assertTrue(first.matches("fds: 0 1 2( \\d+)* 7( \\d+)*"), first);
        }
    }

    @Test
    void ignoreSigtermSurvivesSigtermButNotSigkill() throws Exception {
        try (FakeProcess fake = FakeProcess.start(Fault.IGNORE_SIGTERM.args())) {
            // The answer proves startup, including the SIG_IGN, is done before SIGTERM is sent.
            fake.write(ping());
            fake.awaitStdout(PAGE, TIMEOUT);
            // Through the handle: Process.destroy() would also close stdin, and the fake exits 0 at EOF.
            assertTrue(fake.process().toHandle().destroy());
            assertFalse(fake.process().waitFor(QUIET.toMillis(), TimeUnit.MILLISECONDS), fake::describe);
            fake.write(ping());
            fake.awaitStdout(2 * PAGE, TIMEOUT);
            fake.process().destroyForcibly();
            assertEquals(SIGKILL_STATUS, fake.awaitExit(TIMEOUT));
        }
    }

    @Test
    void withoutIgnoreSigtermSigtermEndsIt() throws Exception {
        try (FakeProcess fake = FakeProcess.start(List.of())) {
            fake.write(ping());
            fake.awaitStdout(PAGE, TIMEOUT);
            assertTrue(fake.process().toHandle().destroy());
            assertEquals(128 + 15, fake.awaitExit(TIMEOUT), fake::describe);
        }
    }

    @Test
    void spawnGrandchildHoldsStdoutOpenAfterTheFakeDies(@TempDir Path dir) throws Exception {
        File fifo = dir.resolve("stdout.fifo").toFile();
        Process mkfifo =
                new ProcessBuilder("mkfifo", fifo.getPath()).inheritIO().start();
        assertTrue(mkfifo.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS), "mkfifo did not finish");
        assertEquals(0, mkfifo.exitValue(), "mkfifo failed");

        Optional<ProcessHandle> grandchild = Optional.empty();
        try (FakeProcess fake = FakeProcess.startWithStdoutFifo(fifo, Fault.SPAWN_GRANDCHILD.args())) {
            try {
                assertTrue(fake.stderr().awaitText("\n", TIMEOUT), fake::describe);
                Matcher m = Pattern.compile("grandchild: (\\d+)")
                        .matcher(fake.stderr().text());
                assertTrue(m.find(), fake::describe);
                long pid = Long.parseLong(m.group(1));
                grandchild = ProcessHandle.of(pid);
                assertTrue(grandchild.isPresent(), "grandchild " + pid + " is not running");
                fake.write(ping());
                fake.awaitStdout(PAGE, TIMEOUT);

                fake.process().destroyForcibly();
                assertEquals(SIGKILL_STATUS, fake.awaitExit(TIMEOUT));
                assertFalse(fake.stdout().awaitEof(QUIET), "stdout reached EOF while the grandchild holds it");

                assertTrue(grandchild.get().destroyForcibly(), "could not SIGKILL grandchild " + pid);
                assertTrue(fake.stdout().awaitEof(TIMEOUT), fake::describe);
                assertEquals(PAGE, fake.stdout().size());
            } finally {
                grandchild.ifPresent(ProcessHandle::destroyForcibly);
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private static void assertAnswers(List<RedoRequest> requests) throws Exception {
        byte[] bytes = encode(requests);
        try (FakeProcess fake = FakeProcess.start(List.of())) {
            fake.write(bytes);
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stdout().awaitEof(TIMEOUT), fake::describe);
            assertEquals(requests.size() * PAGE, fake.stdout().size(), fake::describe);
            byte[] out = fake.stdout().bytes();
            for (int i = 0; i < requests.size(); i++) {
                byte[] actual = Arrays.copyOfRange(out, i * PAGE, (i + 1) * PAGE);
                byte[] expected = FakeRedoModel.expectedPage(requests.get(i));
                assertArrayEquals(
                        expected, actual, "answer " + i + ": " + FakeRedoModel.describeMismatch(expected, actual));
            }
        }
    }

    private static void assertPage(byte[] expected, byte[] actual) {
        assertArrayEquals(expected, actual, () -> FakeRedoModel.describeMismatch(expected, actual));
    }

    private static void assertProtocolError(byte[] stream, String expectedText) throws Exception {
        try (FakeProcess fake = FakeProcess.start(List.of())) {
            try {
                fake.write(stream);
                fake.closeStdin();
            } catch (IOException brokenPipe) {
                // The fake may exit before the whole stream is written; its status says why.
            }
            assertEquals(FakeRedoModel.EXIT_PROTOCOL, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stderr().awaitEof(TIMEOUT));
            List<String> lines = fake.stderr().text().lines().toList();
            assertEquals(1, lines.size(), fake::describe);
            assertTrue(lines.get(0).startsWith("FATAL:  "), fake::describe);
            assertTrue(
                    lines.get(0).contains(expectedText), () -> "expected \"" + expectedText + "\": " + fake.describe());
        }
    }

    private static void assertStartupFailure(List<String> args, int status, String expectedText) throws Exception {
        try (FakeProcess fake = FakeProcess.startArgs(args)) {
            assertEquals(status, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stderr().awaitEof(TIMEOUT));
            List<String> lines = fake.stderr().text().lines().toList();
            assertEquals(1, lines.size(), fake::describe);
            assertTrue(
                    lines.get(0).contains(expectedText), () -> "expected \"" + expectedText + "\": " + fake.describe());
            assertEquals(0, fake.stdout().size());
        }
    }

    private static byte[] floodAndCollect(List<String> flag) throws Exception {
        try (FakeProcess fake = FakeProcess.start(flag)) {
            fake.write(ping());
            fake.awaitStdout(PAGE, TIMEOUT);
            fake.closeStdin();
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.awaitExit(TIMEOUT), fake::describe);
            assertTrue(fake.stderr().awaitEof(TIMEOUT), fake::describe);
            return fake.stderr().bytes();
        }
    }

    private static List<RedoRequest> requests(long seed, int count) {
        Random rnd = new Random(seed);
        List<RedoRequest> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(request(rnd, i, i % 2 == 1, 1 + rnd.nextInt(3), 1 + rnd.nextInt(300)));
        }
        return out;
    }

    private static RedoRequest request(Random rnd, int i, boolean withBase, int records, int maxRecordBytes) {
        BufferTag tag = BufferTag.of(1663, 13010 + i, 16384 + 3L * i, i % 4, 7L * i);
        long lsn = 0x1000_0000L + 0x10_0000L * i;
        RedoRequest.Builder b = RedoRequest.builder(16, tag, Lsn.of(lsn + 0x1000L * (records + 1)));
        if (withBase) {
            byte[] image = new byte[PAGE];
            rnd.nextBytes(image);
            b.baseImage(Lsn.of(lsn), image);
        }
        for (int r = 1; r <= records; r++) {
            byte[] data = new byte[1 + rnd.nextInt(maxRecordBytes)];
            rnd.nextBytes(data);
            b.addRecord(WalRecord.of(Lsn.of(lsn + 0x1000L * r), r == 1 && !withBase, data));
        }
        return b.build();
    }

    private static byte[] encode(List<RedoRequest> requests) {
        int size = requests.stream().mapToInt(ProtocolCodec::encodedSize).sum();
        ByteBuffer buf = ByteBuffer.allocate(size);
        for (RedoRequest r : requests) {
            ProtocolCodec.encodeRequest(r, buf);
        }
        return buf.array();
    }

    /** A frame written by hand: {@code type, length = 4 + payload, payload}. */
    private static byte[] frame(char type, byte[] payload) {
        return ByteBuffer.allocate(5 + payload.length)
                .put((byte) type)
                .putInt(4 + payload.length)
                .put(payload)
                .array();
    }

    private static byte[] ping() {
        return frame('H', new byte[0]);
    }

    private static byte[] lsnAndRecord(long lsn, byte[] record) {
        return ByteBuffer.allocate(8 + record.length).putLong(lsn).put(record).array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static List<String> concatArgs(List<String> a, List<String> b) {
        List<String> out = new ArrayList<>(a);
        out.addAll(b);
        return out;
    }

    private static byte[] resource(String name) {
        try (InputStream in = FakeBinaryTest.class.getResourceAsStream("/neon-vectors/" + name)) {
            if (in == null) {
                throw new IllegalStateException("test resource /neon-vectors/" + name + " is missing");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Parses short.records: {@code end_lsn:u64, will_init:u8, length:u32, bytes}, repeated (see its README). */
    private static List<WalRecord> parseRecords(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        List<WalRecord> out = new ArrayList<>();
        while (b.hasRemaining()) {
            long lsn = b.getLong();
            boolean willInit = b.get() != 0;
            byte[] data = new byte[b.getInt()];
            b.get(data);
            out.add(WalRecord.of(Lsn.of(lsn), willInit, data));
        }
        return out;
    }
}
