// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench.soak;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The chaos soak as part of the build, so CI guards its invariants: one minute by default, or
 * {@code -Dwalredo.soak.minutes=M}. Fails with every violated invariant and the soak's table.
 */
class SoakTest {
    static final String MINUTES_PROPERTY = "walredo.soak.minutes";

    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES)
    void chaosSoakHoldsEveryInvariant() throws Exception {
        double minutes = Double.parseDouble(System.getProperty(MINUTES_PROPERTY, "1"));
        Soak.Options o = new Soak.Options(Duration.ofMillis(Math.round(minutes * 60_000)), 200, 2000,
                Duration.ofMillis(100), null, "SoakTest (-D" + MINUTES_PROPERTY + "=" + minutes + ")");
        Soak.Result r = Soak.run(o, System.out);
        assertEquals(List.of(), r.violations(), r.table());
    }
}
