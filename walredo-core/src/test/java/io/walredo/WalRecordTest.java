// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.RelTagTest.assertRejected;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class WalRecordTest {

    private static final Lsn END = Lsn.parse("0/16A9388");

    @Test
    void copiesDataInAndOut() {
        byte[] data = {1, 2, 3};
        WalRecord r = WalRecord.of(END, true, data);
        data[0] = 99;

        byte[] out = r.data();
        out[1] = 99;

        assertArrayEquals(new byte[] {1, 2, 3}, r.data());
        assertNotSame(r.data(), r.data());
        assertEquals(3, r.length());
        assertEquals(END, r.endLsn());
        assertTrue(r.willInit());
    }

    @Test
    void writesDataAtPosition() {
        WalRecord r = WalRecord.of(END, false, new byte[] {7, 8});
        ByteBuffer dst = ByteBuffer.allocate(4);
        dst.put((byte) 1);

        r.writeDataTo(dst);

        assertEquals(3, dst.position());
        assertArrayEquals(new byte[] {1, 7, 8, 0}, dst.array());
    }

    @Test
    void acceptsOneByte() {
        assertEquals(1, WalRecord.of(END, false, new byte[1]).length());
    }

    @Test
    void rejectsEmptyData() {
        assertRejected(() -> WalRecord.of(END, false, new byte[0]), "data length 0");
    }

    @Test
    void rejectsDataAboveXLogRecordMaxSize() {
        WalRecord.checkLength(WalRecord.MAX_LENGTH);
        assertEquals(1 << 30, WalRecord.MAX_LENGTH);
        assertRejected(() -> WalRecord.checkLength(WalRecord.MAX_LENGTH + 1), "data length 1073741825");
    }

    @Test
    void rejectsInvalidEndLsn() {
        assertRejected(() -> WalRecord.of(Lsn.INVALID, false, new byte[1]), "endLsn 0/0");
    }

    @Test
    void rejectsNulls() {
        assertEquals(
                "endLsn",
                assertThrows(NullPointerException.class, () -> WalRecord.of(null, false, new byte[1]))
                        .getMessage());
        assertEquals(
                "data",
                assertThrows(NullPointerException.class, () -> WalRecord.of(END, false, null))
                        .getMessage());
    }

    @Test
    void equalByContent() {
        WalRecord a = WalRecord.of(END, true, new byte[] {1, 2});
        WalRecord b = WalRecord.of(Lsn.parse("0/16a9388"), true, new byte[] {1, 2});

        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertNotEquals(a, WalRecord.of(END, false, new byte[] {1, 2}));
        assertNotEquals(a, WalRecord.of(END, true, new byte[] {1, 3}));
        assertNotEquals(a, WalRecord.of(Lsn.of(1), true, new byte[] {1, 2}));
        assertEquals("WalRecord[endLsn=0/16A9388, willInit=true, length=2]", a.toString());
    }
}
