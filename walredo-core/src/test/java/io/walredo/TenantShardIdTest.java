// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.RelTagTest.assertRejected;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TenantShardIdTest {

    private static final String TENANT = "3f1c0d2e4b5a69788796a5b4c3d2e1f0";

    @Test
    void parsesUnsharded() {
        TenantShardId id = TenantShardId.parse(TENANT);

        assertEquals(TenantShardId.of(0x3f1c0d2e4b5a6978L, 0x8796a5b4c3d2e1f0L), id);
        assertFalse(id.isSharded());
        assertEquals(0, id.shardNumber());
        assertEquals(0, id.shardCount());
        assertEquals(TENANT, id.toString());
        assertEquals(TENANT, id.tenantId());
    }

    @Test
    void parsesSharded() {
        TenantShardId id = TenantShardId.parse(TENANT + "-0104");

        assertEquals(TenantShardId.of(0x3f1c0d2e4b5a6978L, 0x8796a5b4c3d2e1f0L, 1, 4), id);
        assertTrue(id.isSharded());
        assertEquals(TENANT + "-0104", id.toString());
        assertEquals(TENANT, id.tenantId());
        assertEquals(
                TENANT + "-0001",
                TenantShardId.of(0x3f1c0d2e4b5a6978L, 0x8796a5b4c3d2e1f0L, 0, 1).toString());
        assertEquals(TENANT + "-feff", TenantShardId.parse(TENANT + "-feff").toString());
    }

    @Test
    void canonicalisesCaseAndExplicitUnshardedSuffix() {
        assertEquals(
                TENANT + "-0a0b",
                TenantShardId.parse(TENANT.toUpperCase() + "-0A0B").toString());
        assertEquals(TENANT, TenantShardId.parse(TENANT + "-0000").toString());
    }

    @Test
    void printsLeadingZeros() {
        assertEquals("0".repeat(32), TenantShardId.of(0, 0).toString());
        assertEquals("0".repeat(31) + "1-0002", TenantShardId.of(0, 1, 0, 2).toString());
        assertEquals("f".repeat(32), TenantShardId.of(-1, -1).toString());
    }

    @Test
    void parseAndFormatRoundTrip() {
        long seed = 0x7E4A_47L;
        Random rnd = new Random(seed);
        for (int i = 0; i < 5_000; i++) {
            int count = rnd.nextInt(3) == 0 ? 0 : 1 + rnd.nextInt(255);
            int number = count == 0 ? 0 : rnd.nextInt(count);
            TenantShardId id = TenantShardId.of(rnd.nextLong(), rnd.nextLong(), number, count);
            String text = id.toString();

            assertEquals(id, TenantShardId.parse(text), "seed=" + seed + " text=" + text);
            assertEquals(count == 0 ? 32 : 37, text.length(), "seed=" + seed + " text=" + text);
            assertEquals(text, text.toLowerCase(), "seed=" + seed);
        }
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f00",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f0-010",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f0-01040",
                "3f1c0d2e4b5a69788796a5b4c3d2e1fg",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f0_0104",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f0-01g4",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f0-0404",
                "3f1c0d2e4b5a69788796a5b4c3d2e1f0-0500",
                "+3f1c0d2e4b5a69788796a5b4c3d2e1f",
                " 3f1c0d2e4b5a69788796a5b4c3d2e1f",
                "3f1c0d2e-4b5a-6978-8796-a5b4c3d2e1f0",
                "\uFF13f1c0d2e4b5a69788796a5b4c3d2e1f"
            })
    void rejectsMalformedText(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TenantShardId.parse(text));

        assertTrue(e.getMessage().startsWith("tenantShardId \"" + text + "\" is malformed"), e.getMessage());
    }

    @Test
    void parseExplainsShardInconsistency() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> TenantShardId.parse(TENANT + "-0404"));
        assertTrue(e.getMessage().contains("shardNumber 4 must be below shardCount 4"), e.getMessage());
    }

    @Test
    void rejectsInconsistentShardFields() {
        assertRejected(() -> TenantShardId.of(1, 2, 1, 0), "shardNumber 1 must be 0 for an unsharded tenant");
        assertRejected(() -> TenantShardId.of(1, 2, 2, 2), "shardNumber 2 must be below shardCount 2");
        assertRejected(() -> TenantShardId.of(1, 2, 0, 256), "shardCount 256");
        assertRejected(() -> TenantShardId.of(1, 2, 0, -1), "shardCount -1");
        assertRejected(() -> TenantShardId.of(1, 2, -1, 4), "shardNumber -1");
        assertRejected(() -> TenantShardId.of(1, 2, 256, 255), "shardNumber 256");
    }

    @Test
    void rejectsNullText() {
        assertEquals(
                "text",
                assertThrows(NullPointerException.class, () -> TenantShardId.parse(null))
                        .getMessage());
    }

    @Test
    void equalityAndOrderFollowNeon() {
        TenantShardId low = TenantShardId.of(0x7FFF_FFFF_FFFF_FFFFL, 0);
        TenantShardId high = TenantShardId.of(0x8000_0000_0000_0000L, 0);
        TenantShardId s0 = TenantShardId.of(1, 1, 0, 2);
        TenantShardId s1 = TenantShardId.of(1, 1, 1, 2);
        TenantShardId unsharded = TenantShardId.of(1, 1);
        TenantShardId loHigh = TenantShardId.of(1, -1);
        List<TenantShardId> ids = new ArrayList<>(List.of(high, loHigh, s1, low, s0, unsharded));
        Collections.sort(ids);

        assertEquals(List.of(unsharded, s0, s1, loHigh, low, high), ids);
        assertEquals(TenantShardId.parse(TENANT + "-0104"), TenantShardId.parse(TENANT + "-0104"));
        assertEquals(
                TenantShardId.parse(TENANT).hashCode(),
                TenantShardId.parse(TENANT.toUpperCase()).hashCode());
        assertNotEquals(TenantShardId.parse(TENANT), TenantShardId.parse(TENANT + "-0001"));
    }
}
