// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.WalRecord;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProtocolCodecTest {

    private static final HexFormat HEX = HexFormat.of();
    private static final BufferTag TAG = BufferTag.of(1663, 13010, 1259, 0, 7);

    private static RedoRequest smallRequest() {
        return RedoRequest.builder(16, TAG, Lsn.of(0x300))
                .addRecord(WalRecord.of(Lsn.of(0x100), true, new byte[] {1, 2, 3}))
                .addRecord(WalRecord.of(Lsn.of(0x200), false, new byte[] {4}))
                .build();
    }

    @Test
    void sizesAreNamedAsOnTheWire() {
        assertEquals(8192, ProtocolCodec.PAGE_BYTES);
        assertEquals(17, ProtocolCodec.TAG_BYTES);
        assertEquals(5, ProtocolCodec.HEADER_BYTES);
        assertEquals(5, ProtocolCodec.PING_BYTES);
        assertEquals(22, ProtocolCodec.BEGIN_REDO_BYTES);
        assertEquals(22, ProtocolCodec.GET_PAGE_BYTES);
        assertEquals(22 + 8192, ProtocolCodec.PUSH_PAGE_BYTES);
        assertEquals(13, ProtocolCodec.APPLY_RECORD_OVERHEAD);
        assertEquals('B', ProtocolCodec.BEGIN_REDO_FOR_BLOCK);
        assertEquals('P', ProtocolCodec.PUSH_PAGE);
        assertEquals('A', ProtocolCodec.APPLY_RECORD);
        assertEquals('G', ProtocolCodec.GET_PAGE);
        assertEquals('H', ProtocolCodec.PING);
    }

    @Test
    void encodesSmallRequestExactly() {
        RedoRequest request = smallRequest();
        ByteBuffer dst = ByteBuffer.allocate(request.encodedSize());

        ProtocolCodec.encodeRequest(request, dst);

        String tag = "00" + "0000067f" + "000032d2" + "000004eb" + "00000007";
        String expected = "42" + "00000015" + tag
                + "41" + "0000000f" + "0000000000000100" + "010203"
                + "41" + "0000000d" + "0000000000000200" + "04"
                + "47" + "00000015" + tag;
        assertEquals(expected, HEX.formatHex(dst.array()));
        assertEquals(22 + 16 + 14 + 22, request.encodedSize());
    }

    @Test
    void encodesBaseImageAsPushPageAfterBegin() {
        byte[] page = new byte[8192];
        Arrays.fill(page, (byte) 0x5A);
        RedoRequest request = RedoRequest.builder(14, TAG, Lsn.of(0x300))
                .baseImage(Lsn.of(0x80), page)
                .addRecord(WalRecord.of(Lsn.of(0x100), false, new byte[] {9}))
                .build();
        ByteBuffer dst = ByteBuffer.allocate(request.encodedSize());

        ProtocolCodec.encodeRequest(request, dst);

        byte[] out = dst.array();
        assertEquals(22 + 22 + 8192 + 14 + 22, out.length);
        assertEquals('P', out[22]);
        assertEquals("00002015", HEX.formatHex(out, 23, 27));
        assertArrayEquals(Arrays.copyOfRange(out, 5, 22), Arrays.copyOfRange(out, 27, 44), "P repeats B's tag");
        assertArrayEquals(page, Arrays.copyOfRange(out, 44, 44 + 8192));
        assertEquals('A', out[44 + 8192]);
    }

    @Test
    void writesUnsignedFieldsAtTheirMaximum() {
        BufferTag max = BufferTag.of(0xFFFF_FFFFL, 0xFFFF_FFFFL, 0xFFFF_FFFFL, 3, 0xFFFF_FFFEL);
        ByteBuffer dst = ByteBuffer.allocate(17);

        ProtocolCodec.writeTag(max, dst);

        assertEquals("03" + "ffffffff".repeat(3) + "fffffffe", HEX.formatHex(dst.array()));
    }

    @Test
    void writesUnsignedLsnAboveLongMax() {
        RedoRequest request = RedoRequest.builder(14, TAG, Lsn.of(-1))
                .addRecord(WalRecord.of(Lsn.parse("FFFFFFFF/FFFFFFF0"), false, new byte[] {1}))
                .build();
        ByteBuffer dst = ByteBuffer.allocate(request.encodedSize());

        ProtocolCodec.encodeRequest(request, dst);

        assertEquals("fffffffffffffff0", HEX.formatHex(dst.array(), 22 + 5, 22 + 13));
    }

    @Test
    void writesBigEndianWhateverTheBufferOrder() {
        RedoRequest request = smallRequest();
        ByteBuffer big = ByteBuffer.allocate(request.encodedSize());
        ByteBuffer little = ByteBuffer.allocateDirect(request.encodedSize()).order(ByteOrder.LITTLE_ENDIAN);

        ProtocolCodec.encodeRequest(request, big);
        ProtocolCodec.encodeRequest(request, little);

        assertEquals(ByteOrder.LITTLE_ENDIAN, little.order(), "the caller's byte order is left alone");
        byte[] fromLittle = new byte[request.encodedSize()];
        little.flip().get(fromLittle);
        assertArrayEquals(big.array(), fromLittle);
    }

    @Test
    void writesAtPositionAndAdvancesBySize() {
        RedoRequest request = smallRequest();
        ByteBuffer dst = ByteBuffer.allocate(request.encodedSize() + 10);
        dst.position(3);

        ProtocolCodec.encodeRequest(request, dst);

        assertEquals(3 + request.encodedSize(), dst.position());
        assertEquals('B', dst.get(3));
        assertEquals(0, dst.get(0));
    }

    @Test
    void rejectsTooSmallBufferBeforeWritingAnything() {
        RedoRequest request = smallRequest();
        ByteBuffer dst = ByteBuffer.allocate(request.encodedSize() + 1);
        dst.position(2);

        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> ProtocolCodec.encodeRequest(request, dst));

        assertTrue(
                e.getMessage().contains("dst has " + (request.encodedSize() - 1) + " bytes remaining"), e.getMessage());
        assertTrue(e.getMessage().contains("needs " + request.encodedSize()), e.getMessage());
        assertEquals(2, dst.position());
        assertArrayEquals(new byte[request.encodedSize() + 1], dst.array(), "nothing was written");
    }

    @Test
    void rejectsReadOnlyBuffer() {
        ByteBuffer dst = ByteBuffer.allocate(1024).asReadOnlyBuffer();

        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> ProtocolCodec.encodeRequest(smallRequest(), dst));
        assertTrue(e.getMessage().contains("read-only"), e.getMessage());
        IllegalArgumentException p = assertThrows(IllegalArgumentException.class, () -> ProtocolCodec.encodePing(dst));
        assertTrue(p.getMessage().contains("read-only"), p.getMessage());
    }

    @Test
    void encodesPing() {
        ByteBuffer dst = ByteBuffer.allocate(ProtocolCodec.PING_BYTES);

        ProtocolCodec.encodePing(dst);

        assertEquals("4800000004", HEX.formatHex(dst.array()));
        assertEquals(List.of(new ProtocolDecoder.Frame('H', new byte[0])), ProtocolDecoder.decodeAll(dst.array()));
    }

    @Test
    void encodesBlankPageRequestAsBeginZeroPushAndGet() {
        ByteBuffer dst =
                ByteBuffer.allocate(ProtocolCodec.BLANK_PAGE_REQUEST_BYTES + 3).order(ByteOrder.LITTLE_ENDIAN);
        dst.position(3);

        ProtocolCodec.encodeBlankPageRequest(TAG, dst);

        assertEquals(22 + 22 + 8192 + 22, ProtocolCodec.BLANK_PAGE_REQUEST_BYTES);
        assertEquals(dst.capacity(), dst.position());
        byte[] out = Arrays.copyOfRange(dst.array(), 3, dst.capacity());
        List<ProtocolDecoder.Request> requests = ProtocolDecoder.requests(ProtocolDecoder.decodeAll(out));
        assertEquals(1, requests.size());
        ProtocolDecoder.Request r = requests.get(0);
        assertEquals(new ProtocolDecoder.Tag(0, 1663, 13010, 1259, 7), r.tag());
        assertArrayEquals(new byte[8192], r.baseImage());
        assertEquals(List.of(), r.records());
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> ProtocolCodec.encodeBlankPageRequest(TAG, ByteBuffer.allocate(100)));
        assertTrue(e.getMessage().contains("the blank page request needs 8258"), e.getMessage());
    }

    @Test
    void rejectsPingIntoTooSmallBuffer() {
        ByteBuffer dst = ByteBuffer.allocate(4);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ProtocolCodec.encodePing(dst));

        assertTrue(e.getMessage().contains("dst has 4 bytes remaining but the ping needs 5"), e.getMessage());
        assertEquals(0, dst.position());
    }

    @Test
    void encodedSizeDoesNotOverflow() {
        long size = ProtocolCodec.encodedSize(true, Integer.MAX_VALUE, Long.MAX_VALUE / 2);

        assertTrue(size > Integer.MAX_VALUE, "size " + size);
        assertEquals(22 + 8214 + 13 * 3 + 100 + 22, ProtocolCodec.encodedSize(true, 3, 100));
    }

    /** The decoder the property tests trust must refuse what walredoproc.c refuses. */
    @Test
    void testDecoderRejectsMalformedFrames() {
        assertThrows(IllegalStateException.class, () -> ProtocolDecoder.decodeAll(HEX.parseHex("5800000004")));
        assertThrows(IllegalStateException.class, () -> ProtocolDecoder.decodeAll(HEX.parseHex("4800000005ff")));
        assertThrows(
                IllegalStateException.class,
                () -> ProtocolDecoder.decodeAll(HEX.parseHex("41000000" + "0c" + "0000000000000001")));
        assertThrows(IllegalStateException.class, () -> ProtocolDecoder.decodeAll(HEX.parseHex("48000000")));
    }
}
