// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.WalRecord;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Checks the codec against the bytes Neon's pageserver writes for the "short" request of its walredo
 * benchmark (provenance in {@code src/test/resources/neon-vectors/README.md}).
 */
class ProtocolCodecConformanceTest {

    private static final BufferTag TAG = BufferTag.of(1663, 13010, 1259, 0, 0);
    private static final Lsn TARGET = Lsn.parse("0/16E2408");

    @Test
    void encodesNeonsShortRequestByteForByte() throws IOException {
        byte[] expected = resource("short.request.bin");
        RedoRequest request =
                RedoRequest.builder(14, TAG, TARGET).addRecords(shortRecords()).build();

        assertEquals(1132, expected.length);
        assertEquals(1132, ProtocolCodec.encodedSize(request));
        assertEquals(1062, request.recordBytes());
        ByteBuffer dst = ByteBuffer.allocate(ProtocolCodec.encodedSize(request));
        ProtocolCodec.encodeRequest(request, dst);
        assertFalse(dst.hasRemaining());
        assertArrayEquals(expected, dst.array());
    }

    @Test
    void recordsMatchNeonsLoggedDescription() throws IOException {
        RedoRequest request =
                RedoRequest.builder(14, TAG, TARGET).addRecords(shortRecords()).build();

        assertEquals(2, request.recordCount());
        assertEquals("0/16A9388", request.records().get(0).endLsn().toString());
        assertEquals("0/16D4080", request.records().get(1).endLsn().toString());
        assertEquals(
                "RedoRequest[pg14 rel 1663/13010/1259 fork 0 blk 0 at 0/16E2408, no base image, "
                        + "2 records 0/16A9388..0/16D4080 (1062 bytes)]",
                request.toString());
    }

    /** Proves the test decoder reads real Neon bytes, so the property tests' round trip is not circular. */
    @Test
    void testDecoderReadsNeonsBytes() throws IOException {
        List<ProtocolDecoder.Request> decoded =
                ProtocolDecoder.requests(ProtocolDecoder.decodeAll(resource("short.request.bin")));
        List<WalRecord> records = shortRecords();

        assertEquals(1, decoded.size());
        ProtocolDecoder.Request r = decoded.get(0);
        assertEquals(new ProtocolDecoder.Tag(0, 1663, 13010, 1259, 0), r.tag());
        assertNull(r.baseImage());
        assertEquals(records.size(), r.records().size());
        for (int i = 0; i < records.size(); i++) {
            assertEquals(records.get(i).endLsn().value(), r.records().get(i).endLsn());
            assertArrayEquals(records.get(i).data(), r.records().get(i).data());
        }
        assertTrue(records.get(0).willInit(), "the first record of the short request initialises the page");
    }

    /** Parses {@code short.records}: per record {@code end_lsn:u64 BE, will_init:u8, length:u32 BE, bytes}. */
    static List<WalRecord> shortRecords() throws IOException {
        ByteBuffer in = ByteBuffer.wrap(resource("short.records"));
        List<WalRecord> out = new ArrayList<>();
        while (in.hasRemaining()) {
            Lsn end = Lsn.of(in.getLong());
            int willInit = in.get();
            assertTrue(willInit == 0 || willInit == 1, "will_init " + willInit);
            byte[] data = new byte[in.getInt()];
            in.get(data);
            out.add(WalRecord.of(end, willInit == 1, data));
        }
        return out;
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = ProtocolCodecConformanceTest.class.getResourceAsStream("/neon-vectors/" + name)) {
            if (in == null) {
                throw new IOException("test resource /neon-vectors/" + name + " is missing");
            }
            return in.readAllBytes();
        }
    }
}
