// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.RelTag;
import io.walredo.WalRecord;
import io.walredo.internal.ProtocolCodec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The independent wire encoder against Neon's recorded bytes, the spec's layout of the messages the recording lacks
 * (P), the library's codec on random requests, and the fake binary reading its stream.
 */
@Timeout(60)
class WireEncoderTest {

    /** Neon's "short" request (src/test/resources/neon-vectors/README.md). */
    private static final BufferTag NEON_TAG = BufferTag.of(1663, 13010, 1259, 0, 0);

    private static final Lsn NEON_LSN = Lsn.parse("0/16E2408");

    @Test
    void neonsShortRequestIsTheRecordedStreamByteForByte() throws IOException {
        byte[] recorded = resource("short.request.bin");
        RedoRequest request = RedoRequest.builder(14, NEON_TAG, NEON_LSN)
                .addRecords(neonShortRecords())
                .build();

        assertEquals(1132, recorded.length);
        assertEquals(recorded.length, WireEncoder.requestBytes(request));
        assertArrayEquals(recorded, WireEncoder.request(request));
    }

    @Test
    void aPingIsHWithLengthFour() {
        assertArrayEquals(new byte[] {'H', 0, 0, 0, 4}, WireEncoder.ping());
        assertEquals(WireEncoder.PING_BYTES, WireEncoder.ping().length);
    }

    /** Neon's recording has no PushPage, so the layout of a request with a base image is checked field by field. */
    @Test
    void aBaseImageIsAPushPageBetweenBeginAndTheRecords() {
        byte[] base = new byte[FakeRedoModel.PAGE_BYTES];
        Arrays.fill(base, (byte) 0x5A);
        BufferTag tag = BufferTag.of(0xFFFF_FFFEL, 2, 3, 1, 0x0102_0304L);
        RedoRequest request = RedoRequest.builder(16, tag, Lsn.of(0x20))
                .baseImage(Lsn.of(0x8), base)
                .addRecord(WalRecord.of(Lsn.of(0x10), false, new byte[] {1, 2, 3}))
                .build();
        byte[] wireTag = {1, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFE, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4};

        ByteBuffer b = ByteBuffer.wrap(WireEncoder.request(request));

        assertEquals(22 + 8214 + (13 + 3) + 22, b.remaining());
        assertEquals('B', b.get());
        assertEquals(21, b.getInt());
        assertArrayEquals(wireTag, bytes(b, 17));
        assertEquals('P', b.get());
        assertEquals(8213, b.getInt());
        assertArrayEquals(wireTag, bytes(b, 17));
        assertArrayEquals(base, bytes(b, FakeRedoModel.PAGE_BYTES));
        assertEquals('A', b.get());
        assertEquals(15, b.getInt());
        assertEquals(0x10, b.getLong());
        assertArrayEquals(new byte[] {1, 2, 3}, bytes(b, 3));
        assertEquals('G', b.get());
        assertEquals(21, b.getInt());
        assertArrayEquals(wireTag, bytes(b, 17));
        assertEquals(0, b.remaining());
    }

    /** Two implementations written apart agree; a seed in the message reproduces a failing case. */
    @Test
    void agreesWithTheLibrarysCodecOnRandomRequests() {
        for (int i = 0; i < 1_000; i++) {
            long seed = 0x3C0DE_C0DECL + i;
            RedoRequest request = randomRequest(new SplittableRandom(seed));
            ByteBuffer codec = ByteBuffer.allocate(ProtocolCodec.encodedSize(request));
            ProtocolCodec.encodeRequest(request, codec);

            assertEquals(codec.capacity(), WireEncoder.requestBytes(request), "seed " + seed + ": " + request);
            assertArrayEquals(codec.array(), WireEncoder.request(request), "seed " + seed + ": " + request);
        }
        ByteBuffer ping = ByteBuffer.allocate(ProtocolCodec.PING_BYTES);
        ProtocolCodec.encodePing(ping);
        assertArrayEquals(ping.array(), WireEncoder.ping());
    }

    /** A real reader of the protocol: the fake parses the stream and answers each G and H with the model's page. */
    @Test
    void theFakeAnswersTheEncodedStreamWithTheModelsPages() throws Exception {
        List<RedoRequest> requests = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(7);
        for (int i = 0; i < 5; i++) {
            requests.add(randomRequest(rnd));
        }
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        stream.writeBytes(WireEncoder.ping());
        expected.writeBytes(FakeRedoModel.pingAnswer());
        for (RedoRequest r : requests) {
            stream.writeBytes(WireEncoder.request(r));
            expected.writeBytes(FakeRedoModel.expectedPage(r));
        }

        Process fake = new ProcessBuilder(FakeRedoModel.command("wire-encoder-test", List.of()))
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        try {
            // The fake answers while it reads, so the answers are drained on another thread while this one writes.
            Thread writer = Thread.ofVirtual().start(() -> {
                try (OutputStream in = fake.getOutputStream()) {
                    in.write(stream.toByteArray());
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            byte[] answers;
            try (InputStream out = fake.getInputStream()) {
                answers = out.readAllBytes();
            }
            assertTrue(writer.join(Duration.ofSeconds(30)), "the writer finished");
            assertTrue(fake.waitFor(30, TimeUnit.SECONDS), "the fake exits at EOF");
            assertEquals(FakeRedoModel.EXIT_CLEAN, fake.exitValue(), "no protocol violation");
            assertArrayEquals(expected.toByteArray(), answers);
        } finally {
            fake.destroyForcibly();
        }
    }

    /**
     * A request within the library's rules, its fields spread over their ranges: any tag (oids up to 2^32-1, every
     * fork), LSNs both small and above 2^63 (unsigned), a base image or none, 1 to 40 records of 1 to 3000 bytes.
     */
    static RedoRequest randomRequest(SplittableRandom rnd) {
        BufferTag tag = BufferTag.of(
                rnd.nextLong(RelTag.MAX_OID + 1),
                rnd.nextLong(RelTag.MAX_OID + 1),
                rnd.nextLong(RelTag.MAX_OID + 1),
                rnd.nextInt(4),
                rnd.nextLong(BufferTag.MAX_BLOCK_NUMBER + 1));
        long lsn = rnd.nextBoolean() ? rnd.nextLong(1, 1L << 40) : 0xFFFF_FF00_0000_0000L + rnd.nextLong(1L << 32);
        long start = lsn;
        List<WalRecord> records = new ArrayList<>();
        int n = 1 + rnd.nextInt(40);
        for (int i = 0; i < n; i++) {
            lsn += 1 + rnd.nextInt(0x10000);
            byte[] data = new byte[1 + rnd.nextInt(3000)];
            rnd.nextBytes(data);
            records.add(WalRecord.of(Lsn.of(lsn), i == 0 && rnd.nextBoolean(), data));
        }
        RedoRequest.Builder b = RedoRequest.builder(14 + rnd.nextInt(4), tag, Lsn.of(lsn + rnd.nextInt(100)));
        if (rnd.nextInt(3) == 0) {
            byte[] base = new byte[FakeRedoModel.PAGE_BYTES];
            rnd.nextBytes(base);
            b.baseImage(Lsn.of(start), base);
        }
        return b.addRecords(records).build();
    }

    private static byte[] bytes(ByteBuffer b, int n) {
        byte[] out = new byte[n];
        b.get(out);
        return out;
    }

    /** Parses {@code short.records}: per record {@code end_lsn:u64 BE, will_init:u8, length:u32 BE, bytes}. */
    private static List<WalRecord> neonShortRecords() throws IOException {
        ByteBuffer in = ByteBuffer.wrap(resource("short.records"));
        List<WalRecord> out = new ArrayList<>();
        while (in.hasRemaining()) {
            Lsn end = Lsn.of(in.getLong());
            boolean willInit = in.get() != 0;
            byte[] data = new byte[in.getInt()];
            in.get(data);
            out.add(WalRecord.of(end, willInit, data));
        }
        return out;
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = WireEncoderTest.class.getResourceAsStream("/neon-vectors/" + name)) {
            if (in == null) {
                throw new IOException("test resource /neon-vectors/" + name + " is missing");
            }
            return in.readAllBytes();
        }
    }
}
