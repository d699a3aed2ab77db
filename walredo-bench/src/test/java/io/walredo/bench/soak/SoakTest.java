// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench.soak;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The chaos soak as part of the build, so CI guards its invariants: one minute by default, or
 * {@code -Dwalredo.soak.minutes=M}. Fails with every violated invariant and the soak's table.
 *
 * <p>The build shares its machine with other builds, so the three timing thresholds are generous here:
 * {@link #HANG_GRACE} against {@code ./scripts/soak}'s 5 s, {@link #ZOMBIE_LIMIT} against its 1 s and {@link
 * #WAKE_LIMIT} against its 50 ms. A call
 * that never returns or a child that is never reaped still fails the build; a thread descheduled for a few
 * seconds on a loaded 2-core machine does not.
 */
class SoakTest {
    static final String MINUTES_PROPERTY = "walredo.soak.minutes";
    /** How long after its deadline a call may return here before it counts as hung. */
    static final Duration HANG_GRACE = Duration.ofSeconds(30);
    /** How long a child may stay a zombie here before it counts as not reaped. */
    static final Duration ZOMBIE_LIMIT = Duration.ofSeconds(10);
    /** How late the library may wake a call whose deadline passed here, at the 99th percentile (5 times for all). */
    static final Duration WAKE_LIMIT = Duration.ofSeconds(1);

    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES)
    void chaosSoakHoldsEveryInvariant() throws Exception {
        double minutes = Double.parseDouble(System.getProperty(MINUTES_PROPERTY, "1"));
        Soak.Options o = new Soak.Options(
                Duration.ofMillis(Math.round(minutes * 60_000)),
                200,
                2000,
                Duration.ofMillis(100),
                EnumSet.allOf(Soak.FaultKind.class),
                HANG_GRACE,
                ZOMBIE_LIMIT,
                WAKE_LIMIT,
                null,
                "SoakTest (-D" + MINUTES_PROPERTY + "=" + minutes + ", hang grace " + Soak.text(HANG_GRACE)
                        + ", zombie limit " + Soak.text(ZOMBIE_LIMIT) + ", wake limit " + Soak.text(WAKE_LIMIT)
                        + ")");
        Soak.Result r = Soak.run(o, System.out);
        assertEquals(List.of(), r.violations(), r.table());
    }
}
