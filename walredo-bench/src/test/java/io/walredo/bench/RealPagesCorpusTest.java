// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.WalRecord;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The masks decide what the conformance test and the demo call a wrong page: they hide hints, never data. */
class RealPagesCorpusTest {
    private static final int PAGE = 8192;
    private static final int TUPLE_AT = PAGE - 40;

    /** A heap page with one 40-byte tuple at the end, or a btree leaf whose special space is 16 bytes. */
    private static byte[] page(RealPagesCorpus.Kind kind) {
        ByteBuffer b = ByteBuffer.allocate(PAGE).order(ByteOrder.LITTLE_ENDIAN);
        int special = kind == RealPagesCorpus.Kind.HEAP ? PAGE : PAGE - 16;
        int tuple = special - 40;
        b.putLong(0, 0x0000_0001_0000_2000L); // pd_lsn
        b.putShort(12, (short) 28).putShort(14, (short) tuple).putShort(16, (short) special);
        b.putShort(18, (short) (PAGE | 4));
        b.putInt(24, tuple | (1 << 15) | (40 << 17)); // LP_NORMAL, length 40
        for (int i = tuple; i < tuple + 40; i++) {
            b.put(i, (byte) i);
        }
        b.putShort(tuple + 20, (short) 0); // t_infomask: no hint set, xmin not frozen
        if (kind == RealPagesCorpus.Kind.BTREE) {
            b.putShort(special + 12, (short) 0x0001); // BTP_LEAF
        }
        return b.array();
    }

    private static RealPagesCorpus.Page corpusPage(RealPagesCorpus.Kind kind, byte[] serverPage) {
        WalRecord r = WalRecord.of(Lsn.of(0x2000), true, new byte[24]);
        return new RealPagesCorpus.Page(
                "t", kind, BufferTag.of(1663, 5, 16384, 0, 0), List.of(r), List.of(false), serverPage);
    }

    private static byte[] with(byte[] page, int offset, int value) {
        byte[] p = page.clone();
        p[offset] = (byte) value;
        return p;
    }

    @Test
    void heapHintsAreMaskedButDataLsnAndLinePointersAreNot() {
        byte[] server = page(RealPagesCorpus.Kind.HEAP);
        RealPagesCorpus.Page p = corpusPage(RealPagesCorpus.Kind.HEAP, server);

        assertTrue(p.exact(server.clone()));
        assertTrue(p.matches(with(server, TUPLE_AT + 21, server[TUPLE_AT + 21] | 0x01)), "HEAP_XMIN_COMMITTED hint");
        assertTrue(p.matches(with(server, 20, 0x7b)), "pd_prune_xid");
        assertTrue(p.matches(with(server, 100, 0x55)), "free space between pd_lower and pd_upper");
        assertTrue(p.matches(with(server, TUPLE_AT + 8, 3)), "t_cid");
        assertFalse(p.matches(with(server, TUPLE_AT + 30, 0)), "tuple data");
        assertFalse(p.matches(with(server, TUPLE_AT + 21, server[TUPLE_AT + 21] | 0x20)), "a non-hint infomask bit");
        assertFalse(p.matches(with(server, 5, 0x01)), "page LSN");
        assertFalse(p.matches(with(server, 24, 0x00)), "line pointer");
        assertTrue(p.describeMismatch(with(server, TUPLE_AT + 30, 0)).contains("offset " + (TUPLE_AT + 30)));
    }

    @Test
    void btreeLpDeadAndFreeSpaceAreMaskedButTuplesAreNot() {
        byte[] server = page(RealPagesCorpus.Kind.BTREE);
        RealPagesCorpus.Page p = corpusPage(RealPagesCorpus.Kind.BTREE, server);
        byte[] dead = server.clone();
        ByteBuffer.wrap(dead).order(ByteOrder.LITTLE_ENDIAN).putInt(24, (PAGE - 56) | (3 << 15) | (40 << 17));

        assertTrue(p.matches(dead), "LP_DEAD on a leaf");
        assertTrue(p.matches(with(server, 200, 0x11)), "free space");
        assertFalse(p.matches(with(server, PAGE - 40, 0x11)), "index tuple data");
    }

    @Test
    void recordTypesAreNamedAsPgWaldumpNamesThem() {
        byte[] head = new byte[24];
        head[17] = 10;
        head[16] = 0x40;
        assertEquals("Heap/HOT_UPDATE", RealPagesCorpus.recordType(WalRecord.of(Lsn.of(8), false, head)));
        head[16] = (byte) 0x80;
        assertEquals("Heap/INSERT+INIT", RealPagesCorpus.recordType(WalRecord.of(Lsn.of(8), false, head)));
        head[17] = 11;
        head[16] = 0x30;
        assertEquals("Btree/SPLIT_L", RealPagesCorpus.recordType(WalRecord.of(Lsn.of(8), false, head)));
        head[17] = 9;
        head[16] = 0x10;
        assertEquals("Heap2/PRUNE", RealPagesCorpus.recordType(WalRecord.of(Lsn.of(8), false, head)));
    }
}
