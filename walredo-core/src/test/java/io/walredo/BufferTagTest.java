// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.RelTagTest.assertRejected;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BufferTagTest {

    private static final RelTag REL = new RelTag(1663, 13010, 1259, RelTag.MAIN_FORKNUM);

    @Test
    void printsCompactly() {
        assertEquals("rel 1663/13010/1259 fork 0 blk 0", new BufferTag(REL, 0).toString());
        assertEquals(
                "rel 1663/13010/1259 fork 2 blk 42",
                BufferTag.of(1663, 13010, 1259, 2, 42).toString());
    }

    @Test
    void acceptsLargestValidBlock() {
        assertEquals(0xFFFF_FFFEL, new BufferTag(REL, BufferTag.MAX_BLOCK_NUMBER).blockNumber());
    }

    @Test
    void rejectsInvalidBlockNumber() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> new BufferTag(REL, BufferTag.INVALID_BLOCK_NUMBER));
        assertTrue(e.getMessage().startsWith("blockNumber 4294967295"), e.getMessage());
        assertTrue(e.getMessage().contains("InvalidBlockNumber"), e.getMessage());
    }

    @Test
    void rejectsBlockNumbersOutsideU32() {
        assertRejected(() -> new BufferTag(REL, -1), "blockNumber -1");
        assertRejected(() -> new BufferTag(REL, 1L << 32), "blockNumber 4294967296");
    }

    @Test
    void factoryValidatesTheRelationToo() {
        assertRejected(() -> BufferTag.of(1, 1, 1, 9, 0), "forkNum 9");
    }

    @Test
    void rejectsNullRel() {
        NullPointerException e = assertThrows(NullPointerException.class, () -> new BufferTag(null, 0));
        assertEquals("rel", e.getMessage());
    }
}
