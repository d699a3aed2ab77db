// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.WalRecord;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Seeded random tests of the codec against the independent {@link ProtocolDecoder}. Each case uses its own seed,
 * named in every failure message; rerun a failing case with {@code new Random(seed)} through the same generator.
 */
class ProtocolCodecPropertyTest {

    private static final long MASTER_SEED = 0x5EED_0F_C0DECL;

    @Test
    void everyRequestRoundTrips() {
        for (int i = 0; i < 2_000; i++) {
            long seed = MASTER_SEED + i;
            withSeed(seed, () -> roundTrip(seed));
        }
    }

    private static void roundTrip(long seed) {
        Random rnd = new Random(seed);
        RedoRequest request = randomRequest(rnd);
        String ctx = "seed=" + seed + " " + request;

        byte[] bytes = encode(request);
        List<ProtocolDecoder.Request> decoded = ProtocolDecoder.requests(ProtocolDecoder.decodeAll(bytes));

        assertEquals(request.encodedSize(), bytes.length, ctx);
        assertEquals(1, decoded.size(), ctx);
        assertMatches(request, decoded.get(0), ctx);
    }

    /** Names the seed when the decoder or codec throws instead of an assertion failing. */
    private static void withSeed(long seed, Runnable oneCase) {
        try {
            oneCase.run();
        } catch (RuntimeException e) {
            throw new AssertionError("seed=" + seed + ": " + e, e);
        }
    }

    @Test
    void anySplitOfAPipelinedStreamYieldsTheSameFrames() {
        for (int i = 0; i < 300; i++) {
            long seed = MASTER_SEED ^ (0x9E37_79B9L * (i + 1));
            withSeed(seed, () -> splitStream(seed));
        }
    }

    private static void splitStream(long seed) {
        Random rnd = new Random(seed);
        List<RedoRequest> requests = new ArrayList<>();
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        int n = 1 + rnd.nextInt(5);
        for (int k = 0; k < n; k++) {
            if (rnd.nextInt(4) == 0) {
                ByteBuffer ping = ByteBuffer.allocate(ProtocolCodec.PING_BYTES);
                ProtocolCodec.encodePing(ping);
                stream.writeBytes(ping.array());
            }
            RedoRequest r = randomRequest(rnd);
            requests.add(r);
            stream.writeBytes(encode(r));
        }
        byte[] bytes = stream.toByteArray();
        List<ProtocolDecoder.Frame> whole = ProtocolDecoder.decodeAll(bytes);

        ProtocolDecoder decoder = new ProtocolDecoder();
        List<ProtocolDecoder.Frame> chunked = new ArrayList<>();
        int maxChunk = switch (rnd.nextInt(4)) {
            case 0 -> 1;
            case 1 -> 7;
            case 2 -> 300;
            default -> 20_000;
        };
        for (int pos = 0; pos < bytes.length; ) {
            int len = Math.min(bytes.length - pos, 1 + rnd.nextInt(maxChunk));
            chunked.addAll(decoder.feed(bytes, pos, len));
            pos += len;
        }

        String ctx = "seed=" + seed + " maxChunk=" + maxChunk + " streamBytes=" + bytes.length;
        assertTrue(decoder.atFrameBoundary(), ctx);
        assertEquals(whole, chunked, ctx);
        List<ProtocolDecoder.Request> decoded = ProtocolDecoder.requests(chunked);
        assertEquals(requests.size(), decoded.size(), ctx);
        for (int k = 0; k < requests.size(); k++) {
            assertMatches(requests.get(k), decoded.get(k), ctx + " request " + k);
        }
    }

    private static byte[] encode(RedoRequest request) {
        ByteBuffer dst = ByteBuffer.allocate(ProtocolCodec.encodedSize(request));
        ProtocolCodec.encodeRequest(request, dst);
        assertEquals(0, dst.remaining(), "encodeRequest fills exactly encodedSize bytes");
        return dst.array();
    }

    static void assertMatches(RedoRequest expected, ProtocolDecoder.Request actual, String ctx) {
        BufferTag t = expected.tag();
        assertEquals(
                new ProtocolDecoder.Tag(
                        t.rel().forkNum(),
                        t.rel().spcNode(),
                        t.rel().dbNode(),
                        t.rel().relNode(),
                        t.blockNumber()),
                actual.tag(),
                ctx);
        if (expected.hasBaseImage()) {
            assertArrayEquals(expected.baseImage().orElseThrow(), actual.baseImage(), ctx);
        } else {
            assertNull(actual.baseImage(), ctx);
        }
        assertEquals(expected.recordCount(), actual.records().size(), ctx);
        for (int i = 0; i < expected.recordCount(); i++) {
            WalRecord r = expected.records().get(i);
            assertEquals(r.endLsn().value(), actual.records().get(i).endLsn(), ctx + " record " + i);
            assertArrayEquals(r.data(), actual.records().get(i).data(), ctx + " record " + i);
        }
    }

    /**
     * A valid request: any tag including unsigned extremes, with or without a base image, 1..50 records whose
     * sizes mix 1 byte, small, a few KiB and more than a page, at LSNs that may exceed {@code Long.MAX_VALUE}.
     */
    static RedoRequest randomRequest(Random rnd) {
        BufferTag tag = BufferTag.of(u32(rnd), u32(rnd), u32(rnd), rnd.nextInt(4), rnd.nextLong(0xFFFF_FFFFL));
        int count = 1 + rnd.nextInt(50);
        long lsn = rnd.nextBoolean() ? rnd.nextLong(1L << 40) : -1L - (1L << 40) + rnd.nextLong(1L << 39);
        boolean base = rnd.nextBoolean();
        Lsn baseLsn = Lsn.of(lsn);
        List<WalRecord> records = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            lsn += 1 + rnd.nextInt(100_000);
            byte[] data = new byte[recordSize(rnd)];
            rnd.nextBytes(data);
            records.add(WalRecord.of(Lsn.of(lsn), i == 0 && !base, data));
        }
        long target = lsn + (rnd.nextBoolean() ? 0 : rnd.nextInt(1000));
        RedoRequest.Builder b = RedoRequest.builder(14 + rnd.nextInt(4), tag, Lsn.of(target));
        if (base) {
            byte[] page = new byte[ProtocolDecoder.PAGE];
            rnd.nextBytes(page);
            b.baseImage(baseLsn, page);
        }
        if (rnd.nextBoolean()) {
            b.addRecords(records);
        } else {
            records.forEach(b::addRecord);
        }
        return b.build();
    }

    private static int recordSize(Random rnd) {
        return switch (rnd.nextInt(10)) {
            case 0 -> 1;
            case 1, 2, 3, 4, 5 -> 1 + rnd.nextInt(200);
            case 6, 7, 8 -> 1 + rnd.nextInt(4096);
            default -> 4096 + rnd.nextInt(8192);
        };
    }

    private static long u32(Random rnd) {
        return switch (rnd.nextInt(4)) {
            case 0 -> 0;
            case 1 -> 0xFFFF_FFFFL;
            default -> rnd.nextLong(0x1_0000_0000L);
        };
    }
}
