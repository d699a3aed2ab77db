// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench.soak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The soak's command line, parsed by the CliArgs it shares with the demo. */
class SoakOptionsTest {

    @Test
    void defaultsAreTheDocumentedRun() {
        Soak.Options o = Soak.parse(new String[] {"0.5"});

        assertEquals(Duration.ofSeconds(30), o.duration());
        assertEquals(200, o.tenants());
        assertEquals(2000, o.callers());
        assertEquals(Duration.ofMillis(100), o.faultEvery());
        assertEquals(EnumSet.allOf(Soak.FaultKind.class), o.faults());
        assertEquals(Duration.ofSeconds(5), o.hangGrace());
        assertEquals(Duration.ofSeconds(1), o.zombieLimit());
        assertEquals(Duration.ofMillis(50), o.wakeLimit());
        assertNull(o.report());
        assertEquals("./scripts/soak 0.5", o.command());
    }

    @Test
    void parsesEveryOptionInBothForms() {
        Soak.Options o = Soak.parse(new String[] {
            "2",
            "--tenants",
            "7",
            "--callers=3",
            "--fault-every",
            "250",
            "--faults=sigkill,detach",
            "--hang-grace",
            "30s",
            "--zombie-limit=2m",
            "--wake-limit",
            "100ms"
        });

        assertEquals(Duration.ofMinutes(2), o.duration());
        assertEquals(7, o.tenants());
        assertEquals(3, o.callers());
        assertEquals(Duration.ofMillis(250), o.faultEvery(), "a bare number is milliseconds here");
        assertEquals(EnumSet.of(Soak.FaultKind.SIGKILL, Soak.FaultKind.DETACH), o.faults());
        assertEquals(Duration.ofSeconds(30), o.hangGrace());
        assertEquals(Duration.ofMinutes(2), o.zombieLimit());
        assertEquals(Duration.ofMillis(100), o.wakeLimit());
        assertEquals(
                EnumSet.noneOf(Soak.FaultKind.class),
                Soak.parse(new String[] {"1", "--faults", "none"}).faults());
    }

    @Test
    void helpReturnsNoOptions() {
        assertNull(Soak.parse(new String[] {"--help"}));
    }

    @Test
    void rejectsBadCommandLinesNamingTheProblem() {
        assertMessage("Missing required parameter: 'MINUTES'");
        assertMessage(
                "Invalid value for positional parameter at index 0 (MINUTES): MINUTES must be above 0 and at most"
                        + " a week, got 0",
                "0");
        assertMessage(
                "Invalid value for positional parameter at index 0 (MINUTES): MINUTES must be a number, got 'x'", "x");
        assertMessage(
                "Invalid value for option '--tenants': takes a positive whole number, got 'x'", "1", "--tenants", "x");
        assertMessage(
                "Invalid value for option '--fault-every': takes a positive duration of at most a day such as "
                        + "100ms, 5s or 2m, got '2d'",
                "1",
                "--fault-every",
                "2d");
    }

    @Test
    void theUsageIsGeneratedAndNamesEveryOption() {
        String u = Soak.usage();
        for (String o : List.of(
                "MINUTES",
                "--tenants",
                "--callers",
                "--fault-every",
                "--faults",
                "--hang-grace",
                "--zombie-limit",
                "--report",
                "--help",
                "(default 200)",
                "(default 2000)")) {
            assertTrue(u.contains(o), o + " in\n" + u);
        }
    }

    private static void assertMessage(String expected, String... args) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Soak.parse(args));
        assertEquals(expected, e.getMessage());
    }
}
