// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class RelTagTest {

    @Test
    void forkNumbersArePostgresOnes() {
        assertEquals(0, RelTag.MAIN_FORKNUM);
        assertEquals(1, RelTag.FSM_FORKNUM);
        assertEquals(2, RelTag.VISIBILITYMAP_FORKNUM);
        assertEquals(3, RelTag.INIT_FORKNUM);
    }

    @Test
    void acceptsFullUnsignedOidRange() {
        RelTag t = new RelTag(0xFFFF_FFFFL, 0, 0xFFFF_FFFFL, RelTag.INIT_FORKNUM);

        assertEquals(0xFFFF_FFFFL, t.spcNode());
        assertEquals("4294967295/0/4294967295 fork 3", t.toString());
    }

    @Test
    void rejectsEachOidOutOfRange() {
        assertRejected(() -> new RelTag(-1, 1, 1, 0), "spcNode -1");
        assertRejected(() -> new RelTag(1, 0x1_0000_0000L, 1, 0), "dbNode 4294967296");
        assertRejected(() -> new RelTag(1, 1, Long.MIN_VALUE, 0), "relNode " + Long.MIN_VALUE);
    }

    @Test
    void rejectsForkOutOfRange() {
        assertRejected(() -> new RelTag(1, 1, 1, -1), "forkNum -1");
        assertRejected(() -> new RelTag(1, 1, 1, 4), "forkNum 4");
    }

    @Test
    void equalByValue() {
        assertEquals(new RelTag(1663, 13010, 1259, 0), new RelTag(1663, 13010, 1259, 0));
        assertEquals(new RelTag(1663, 13010, 1259, 0).hashCode(), new RelTag(1663, 13010, 1259, 0).hashCode());
    }

    static void assertRejected(org.junit.jupiter.api.function.Executable e, String messageStart) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().startsWith(messageStart), x.getMessage());
    }
}
