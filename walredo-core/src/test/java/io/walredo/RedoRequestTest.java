// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class RedoRequestTest {

    private static final BufferTag TAG = BufferTag.of(1663, 13010, 1259, RelTag.MAIN_FORKNUM, 0);
    private static final Lsn TARGET = Lsn.of(0x1000);

    private static WalRecord rec(long endLsn, int length) {
        return WalRecord.of(Lsn.of(endLsn), false, new byte[length]);
    }

    private static RedoRequest.Builder valid() {
        return RedoRequest.builder(14, TAG, TARGET).addRecord(rec(0x100, 10)).addRecord(rec(0x200, 20));
    }

    private static String rejected(RedoRequest.Builder b) {
        return assertThrows(IllegalArgumentException.class, b::build).getMessage();
    }

    private static void assertContains(String message, String part) {
        assertTrue(message.contains(part), message);
    }

    @Test
    void exposesWhatWasBuilt() {
        byte[] page = new byte[RedoRequest.PAGE_BYTES];
        page[0] = 42;
        RedoRequest r = valid().baseImage(Lsn.of(0x80), page).build();
        page[0] = 0;

        assertEquals(14, r.pgVersion());
        assertEquals(TAG, r.tag());
        assertEquals(TARGET, r.lsn());
        assertTrue(r.hasBaseImage());
        assertEquals(Optional.of(Lsn.of(0x80)), r.baseLsn());
        assertEquals(42, r.baseImage().orElseThrow()[0], "the builder copied the page");
        assertNotSame(r.baseImage().orElseThrow(), r.baseImage().orElseThrow());
        assertEquals(2, r.recordCount());
        assertEquals(30, r.recordBytes());
        assertEquals(List.of(rec(0x100, 10), rec(0x200, 20)), r.records());
        assertEquals(22 + 8214 + 13 + 10 + 13 + 20 + 22, r.encodedSize());
    }

    @Test
    void writesBaseImage() {
        byte[] page = new byte[RedoRequest.PAGE_BYTES];
        Arrays.fill(page, (byte) 3);
        RedoRequest r = valid().baseImage(Lsn.of(0x80), page).build();
        ByteBuffer dst = ByteBuffer.allocate(RedoRequest.PAGE_BYTES);

        r.writeBaseImageTo(dst);

        assertArrayEquals(page, dst.array());
    }

    @Test
    void withoutBaseImage() {
        RedoRequest r = valid().build();

        assertFalse(r.hasBaseImage());
        assertEquals(Optional.empty(), r.baseLsn());
        assertEquals(Optional.empty(), r.baseImage());
        IllegalStateException e = assertThrows(
                IllegalStateException.class, () -> r.writeBaseImageTo(ByteBuffer.allocate(RedoRequest.PAGE_BYTES)));
        assertContains(e.getMessage(), "no base image");
    }

    @Test
    void recordsAreUnmodifiableAndIndependentOfTheBuilder() {
        RedoRequest.Builder b = valid();
        RedoRequest first = b.build();
        b.addRecord(rec(0x300, 1));
        RedoRequest second = b.build();

        assertEquals(2, first.recordCount());
        assertEquals(3, second.recordCount());
        assertThrows(UnsupportedOperationException.class, () -> first.records().add(rec(0x400, 1)));
    }

    @Test
    void addRecordsKeepsCollectionOrder() {
        List<WalRecord> more = new ArrayList<>(List.of(rec(0x100, 1), rec(0x101, 2), rec(0x102, 3)));
        RedoRequest r = RedoRequest.builder(17, TAG, TARGET).addRecords(more).build();
        more.clear();

        assertEquals(List.of(rec(0x100, 1), rec(0x101, 2), rec(0x102, 3)), r.records());
    }

    @Test
    void acceptsVersionBoundsAndTargetAtLastRecord() {
        assertEquals(14, valid().build().pgVersion());
        RedoRequest r = RedoRequest.builder(99, TAG, Lsn.of(0x200))
                .addRecord(rec(0x200, 1))
                .build();
        assertEquals(99, r.pgVersion());
    }

    @Test
    void rejectsPgVersionOutOfRange() {
        assertContains(
                rejected(RedoRequest.builder(13, TAG, TARGET).addRecord(rec(0x100, 1))),
                "pgVersion 13 is outside 14..99");
        assertContains(
                rejected(RedoRequest.builder(100, TAG, TARGET).addRecord(rec(0x100, 1))),
                "pgVersion 100 is outside 14..99");
    }

    @Test
    void rejectsBaseImageOfWrongSize() {
        assertContains(rejected(valid().baseImage(Lsn.of(0x80), new byte[8191])), "baseImage is 8191 bytes");
        assertContains(rejected(valid().baseImage(Lsn.of(0x80), new byte[8193])), "baseImage is 8193 bytes");
        assertContains(rejected(valid().baseImage(Lsn.of(0x80), new byte[0])), "baseImage is 0 bytes");
    }

    @Test
    void rejectsNoRecords() {
        assertContains(rejected(RedoRequest.builder(14, TAG, TARGET)), "records is empty");
        assertContains(rejected(RedoRequest.builder(14, TAG, TARGET).addRecords(List.of())), "records is empty");
    }

    @Test
    void rejectsEndLsnsNotStrictlyIncreasing() {
        assertContains(
                rejected(valid().addRecord(rec(0x200, 1))),
                "records[2].endLsn 0/200 is not after records[1].endLsn 0/200");
        assertContains(
                rejected(valid().addRecord(rec(0x150, 1))),
                "records[2].endLsn 0/150 is not after records[1].endLsn 0/200");
    }

    @Test
    void rejectsBaseLsnNotBeforeFirstRecord() {
        byte[] page = new byte[RedoRequest.PAGE_BYTES];
        assertContains(
                rejected(valid().baseImage(Lsn.of(0x100), page)),
                "baseLsn 0/100 is not before records[0].endLsn 0/100");
        assertContains(rejected(valid().baseImage(Lsn.of(0x101), page)), "baseLsn 0/101");
    }

    @Test
    void rejectsLastRecordAfterTarget() {
        assertContains(
                rejected(RedoRequest.builder(14, TAG, Lsn.of(0x1FF))
                        .addRecord(rec(0x100, 1))
                        .addRecord(rec(0x200, 1))),
                "records[1].endLsn 0/200 is after the target lsn 0/1FF");
    }

    @Test
    void comparesLsnsUnsigned() {
        RedoRequest r = RedoRequest.builder(14, TAG, Lsn.of(-1))
                .baseImage(Lsn.of(Long.MAX_VALUE), new byte[RedoRequest.PAGE_BYTES])
                .addRecord(rec(Long.MIN_VALUE, 1))
                .addRecord(rec(-2, 1))
                .build();
        assertEquals(2, r.recordCount());
    }

    /**
     * One 16 MiB record added 128 times: encodes to more than 2 GiB while holding only 16 MiB, and also shows
     * that every broken rule is reported in the same exception.
     */
    @Test
    void rejectsEncodedSizeAboveOneBufferAndReportsEveryProblem() {
        WalRecord big = rec(0x100, 16 << 20);
        RedoRequest.Builder b = RedoRequest.builder(12, TAG, Lsn.of(0x10)).baseImage(Lsn.of(0x200), new byte[1]);
        for (int i = 0; i < 128; i++) {
            b.addRecord(big);
        }

        String m = rejected(b);

        long expectedSize = 22 + 8214 + 128L * (13 + (16 << 20)) + 22;
        assertContains(m, "encoded size " + expectedSize + " bytes exceeds 2147483647");
        assertContains(m, "pgVersion 12");
        assertContains(m, "baseImage is 1 bytes");
        assertContains(m, "records[1].endLsn 0/100 is not after records[0].endLsn 0/100");
        assertContains(m, "baseLsn 0/200 is not before records[0].endLsn 0/100");
        assertContains(m, "records[127].endLsn 0/100 is after the target lsn 0/10");
        assertTrue(m.startsWith("invalid redo request for rel 1663/13010/1259 fork 0 blk 0 at 0/10: "), m);
    }

    @Test
    void rejectsNulls() {
        assertEquals(
                "tag",
                assertThrows(NullPointerException.class, () -> RedoRequest.builder(14, null, TARGET))
                        .getMessage());
        assertEquals(
                "lsn",
                assertThrows(NullPointerException.class, () -> RedoRequest.builder(14, TAG, null))
                        .getMessage());
        RedoRequest.Builder b = RedoRequest.builder(14, TAG, TARGET);
        assertEquals(
                "record",
                assertThrows(NullPointerException.class, () -> b.addRecord(null))
                        .getMessage());
        assertEquals(
                "baseLsn",
                assertThrows(NullPointerException.class, () -> b.baseImage(null, new byte[8192]))
                        .getMessage());
        assertEquals(
                "baseImage",
                assertThrows(NullPointerException.class, () -> b.baseImage(Lsn.of(1), null))
                        .getMessage());
        List<WalRecord> withNull = new ArrayList<>();
        withNull.add(rec(0x100, 1));
        withNull.add(null);
        assertThrows(NullPointerException.class, () -> b.addRecords(withNull));
        assertContains(rejected(b), "records is empty");
    }

    @Test
    void describesItselfLikeNeonsLog() {
        assertEquals(
                "RedoRequest[pg14 rel 1663/13010/1259 fork 0 blk 0 at 0/1000, no base image, "
                        + "2 records 0/100..0/200 (30 bytes)]",
                valid().build().toString());
        assertEquals(
                "RedoRequest[pg14 rel 1663/13010/1259 fork 0 blk 0 at 0/1000, base image at 0/80, "
                        + "1 record 0/100..0/100 (1 bytes)]",
                RedoRequest.builder(14, TAG, TARGET)
                        .baseImage(Lsn.of(0x80), new byte[8192])
                        .addRecord(rec(0x100, 1))
                        .build()
                        .toString());
    }
}
