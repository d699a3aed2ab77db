// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LsnTest {

    @Test
    void formatsLikeNeon() {
        assertEquals("0/16E2408", Lsn.of(0x16E2408).toString());
        assertEquals("0/0", Lsn.INVALID.toString());
        assertEquals("FFFFFFFF/FFFFFFFF", Lsn.of(-1).toString());
        assertEquals("1/0", Lsn.of(1L << 32).toString());
        assertEquals("ABCDEF01/2345", Lsn.of(0xABCDEF01_00002345L).toString());
    }

    @Test
    void parsesEdgeValues() {
        assertSame(Lsn.INVALID, Lsn.parse("0/0"));
        assertEquals(Lsn.of(-1), Lsn.parse("FFFFFFFF/FFFFFFFF"));
        assertEquals(Lsn.of(-1), Lsn.parse("ffffffff/ffffffff"));
        assertEquals(Lsn.of(0x16E2408), Lsn.parse("0/16e2408"));
        assertEquals(Lsn.of(1), Lsn.parse("00000000/00000001"));
        assertEquals(Lsn.of(0x8000_0000_0000_0000L), Lsn.parse("80000000/0"));
    }

    @Test
    void parseAndFormatRoundTrip() {
        long seed = 0x15A_0001L;
        Random rnd = new Random(seed);
        for (int i = 0; i < 10_000; i++) {
            long v = switch (i % 3) {
                case 0 -> rnd.nextLong();
                case 1 -> rnd.nextLong() >>> rnd.nextInt(64);
                default -> rnd.nextInt() & 0xFFFF_FFFFL;
            };
            Lsn lsn = Lsn.of(v);
            String text = lsn.toString();
            assertEquals(lsn, Lsn.parse(text), "seed=" + seed + " value=" + Long.toHexString(v) + " text=" + text);
            assertEquals(lsn, Lsn.parse(text.toLowerCase()), "seed=" + seed + " text=" + text);
        }
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "",
                "/",
                "0",
                "0/",
                "/0",
                "0/0/0",
                "123456789/0",
                "0/123456789",
                "g/0",
                "0/G",
                " 0/0",
                "0/0 ",
                "0 /0",
                "+1/0",
                "-1/0",
                "0/-1",
                "0x1/0",
                "\uFF11/0",
                "0\\0",
                "0:0"
            })
    void rejectsMalformedText(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Lsn.parse(text));

        assertTrue(e.getMessage().startsWith("lsn: \"" + text + "\""), e.getMessage());
        assertTrue(e.getMessage().contains("X/Y"), e.getMessage());
    }

    @Test
    void rejectsNullText() {
        NullPointerException e = assertThrows(NullPointerException.class, () -> Lsn.parse(null));
        assertEquals("text", e.getMessage());
    }

    @Test
    void comparesUnsigned() {
        Lsn max = Lsn.of(-1);
        Lsn big = Lsn.of(Long.MIN_VALUE);
        Lsn mid = Lsn.of(Long.MAX_VALUE);
        List<Lsn> sorted = new ArrayList<>(List.of(max, Lsn.INVALID, big, Lsn.of(1), mid));
        Collections.sort(sorted);

        assertEquals(List.of(Lsn.INVALID, Lsn.of(1), mid, big, max), sorted);
        assertTrue(big.compareTo(mid) > 0);
        assertEquals(0, Lsn.of(5).compareTo(new Lsn(5)));
    }

    @Test
    void onlyZeroIsInvalid() {
        assertFalse(Lsn.INVALID.isValid());
        assertFalse(Lsn.of(0).isValid());
        assertSame(Lsn.INVALID, Lsn.of(0));
        assertTrue(Lsn.of(1).isValid());
        assertTrue(Lsn.of(-1).isValid());
        assertEquals(0, Lsn.INVALID.value());
    }
}
