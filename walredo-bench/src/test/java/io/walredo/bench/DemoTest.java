// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The demo's command line, its diagnosis of a binary without walredo support, and one short run. */
@Timeout(120)
class DemoTest {

    @Test
    void defaultsAreTheDocumentedWorkload() {
        Demo.Options o = Demo.parse(new String[0]);

        assertEquals(200, o.tenants());
        assertEquals(300, o.callers());
        assertEquals(Duration.ofSeconds(30), o.duration());
        assertEquals(Duration.ofSeconds(2), o.idleTimeout());
        assertTrue(o.fake());
        assertEquals(Optional.empty(), o.libDir());
        assertEquals(2, o.warmSpares());
        assertEquals(
                32,
                Demo.parse(new String[] {"--redo-binary", "/bin/true"}).callers(),
                "fewer callers by default for a real binary");
        assertEquals(0, Demo.parse(new String[] {"--warm-spares", "0"}).warmSpares());
    }

    @Test
    void parsesEveryOptionInBothForms() {
        Demo.Options o = Demo.parse(new String[] {
            "--tenants",
            "7",
            "--duration=500ms",
            "--idle-timeout",
            "2m",
            "--callers=3",
            "--redo-binary",
            "/bin/true",
            "--lib-dir=/lib"
        });

        assertEquals(7, o.tenants());
        assertEquals(3, o.callers());
        assertEquals(Duration.ofMillis(500), o.duration());
        assertEquals(Duration.ofMinutes(2), o.idleTimeout());
        assertEquals(Path.of("/bin/true"), o.redoBinary());
        assertEquals(Optional.of(Path.of("/lib")), o.libDir());
        assertTrue(!o.fake());
    }

    @Test
    void helpReturnsNoOptions() {
        assertNull(Demo.parse(new String[] {"--tenants", "5", "--help"}));
    }

    @Test
    void rejectsBadCommandLinesNamingTheOption() {
        assertMessage("Invalid value for option '--tenants': takes a positive whole number, got '0'", "--tenants", "0");
        assertMessage(
                "Invalid value for option '--callers': takes a positive whole number, got 'many'", "--callers", "many");
        assertMessage(
                "Invalid value for option '--duration': takes a positive duration such as 500ms, 30s or 2m, "
                        + "got '0s'",
                "--duration",
                "0s");
        assertMessage("Missing required parameter for option '--idle-timeout' (D)", "--idle-timeout");
        assertMessage("Unknown options: '--tenant', '5'", "--tenant", "5");
        assertMessage("--lib-dir needs --redo-binary", "--lib-dir", "/lib");
        assertMessage(
                "Invalid value for option '--warm-spares': takes a whole number, 0 or more, got '-1'",
                "--warm-spares",
                "-1");
    }

    @Test
    void theUsageIsGeneratedAndNamesEveryOption() {
        String u = Demo.usage();
        for (String o : List.of(
                "--tenants",
                "--duration",
                "--idle-timeout",
                "--callers",
                "--warm-spares",
                "--prometheus",
                "--redo-binary",
                "--real-pages",
                "--lib-dir",
                "--help",
                "(default 200)")) {
            assertTrue(u.contains(o), o + " in\n" + u);
        }
    }

    @Test
    void aMissingBinaryIsAUsageError() throws Exception {
        Demo.Options o = options(Path.of("/nonexistent/postgres"), List.of());
        Output out = new Output();

        assertEquals(Demo.EXIT_USAGE, Demo.run(o, out.stream));
        assertTrue(out.text().contains("/nonexistent/postgres does not exist"), out.text());
    }

    /** The fake's --no-walredo-support prints what a vanilla postgres prints for --wal-redo. */
    @Test
    void aBinaryWithoutWalredoSupportFailsAtOnceSayingSo() throws Exception {
        Demo.Options o = options(Demo.parse(new String[0]).redoBinary(), List.of("--no-walredo-support"));
        Output out = new Output();

        assertEquals(1, Demo.run(o, out.stream));
        assertTrue(out.text().contains("lacks walredo support"), out.text());
        assertTrue(!out.text().contains("requests that waited"), out.text());
    }

    /** A PostgreSQL from the distribution, if one is installed: as root it refuses to start, else it lacks --wal-redo. */
    @Test
    void aVanillaPostgresFailsAtOnceSayingItLacksWalredoSupport() throws Exception {
        Optional<Path> postgres = vanillaPostgres();
        Assumptions.assumeTrue(postgres.isPresent(), "no PostgreSQL under /usr/lib/postgresql");
        Output out = new Output();

        assertEquals(1, Demo.run(options(postgres.get(), List.of()), out.stream));
        assertTrue(out.text().contains("lacks walredo support"), out.text());
    }

    @Test
    void aShortRunChecksEveryPageAndPrintsTheSummary() throws Exception {
        Demo.Options o = new Demo.Options(
                4,
                Duration.ofMillis(1500),
                Duration.ofMillis(200),
                4,
                Demo.parse(new String[0]).redoBinary(),
                Optional.empty(),
                true,
                List.of(),
                Optional.empty());
        Output out = new Output();

        assertEquals(0, Demo.run(o, out.stream), out.text());
        for (String row : List.of(
                "requests  +\\| [1-9]",
                "wrong pages  +\\| 0$",
                "failed requests  +\\| 0$",
                "redo latency p50 / p99 / max  +\\| ",
                "spawn latency p50 / p99 / max  +\\| ",
                "sidecars killed, by cause  +\\| ",
                "warm spares: hits / misses  +\\| [0-9]+ / [0-9]+",
                "requests that waited for a spawn  +\\| [0-9]",
                "peak platform threads \\(JVM / walredo-\\*\\)  +\\| ",
                "open fds: at start / peak / after shutdown  +\\| ",
                "live sidecars after shutdown  +\\| 0$",
                "sidecars' RSS / PSS at the peak of PSS  +\\| [0-9.]+ [KM]iB / [0-9.]+ [KM]iB for [1-9][0-9]* "
                        + "sidecars: ")) {
            assertTrue(
                    java.util.regex.Pattern.compile("(?m)^" + row)
                            .matcher(out.text())
                            .find(),
                    row + " in\n" + out.text());
        }
        assertTrue(out.text().contains("req/s"), out.text());
        assertTrue(out.text().contains("spares hit/miss"), out.text());
    }

    @Test
    void prometheusWritesTheRegistrysScrape(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path scrape = dir.resolve("scrape.txt");
        Demo.Options p = Demo.parse(new String[] {"--prometheus", scrape.toString()});
        Demo.Options o = new Demo.Options(
                4,
                Duration.ofMillis(1200),
                Duration.ofMillis(200),
                4,
                p.redoBinary(),
                Optional.empty(),
                true,
                List.of(),
                Optional.empty(),
                1,
                p.prometheus());
        Output out = new Output();

        assertEquals(0, Demo.run(o, out.stream), out.text());
        String text = Files.readString(scrape);
        for (String line : List.of(
                "walredo_redo_seconds_count{app=\"walredo-demo\",attempt=\"read_page\",outcome=\"ok\"}",
                "walredo_sidecar_spawn_seconds_count{app=\"walredo-demo\"}",
                "walredo_sidecars_live{app=\"walredo-demo\"} 0",
                "walredo_sidecar_stopped_total{app=\"walredo-demo\",cause=\"shutdown\"}",
                "walredo_redo_spawn_wait_seconds_count{app=\"walredo-demo\"}")) {
            assertTrue(text.contains(line), line + " in\n" + text);
        }
    }

    private static void assertMessage(String expected, String... args) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Demo.parse(args));
        assertEquals(expected, e.getMessage());
    }

    private static Demo.Options options(Path binary, List<String> extraArgs) {
        return new Demo.Options(
                2,
                Duration.ofSeconds(1),
                Duration.ofSeconds(1),
                2,
                binary,
                Optional.empty(),
                false,
                extraArgs,
                Optional.empty());
    }

    private static Optional<Path> vanillaPostgres() throws IOException {
        Path root = Path.of("/usr/lib/postgresql");
        if (!Files.isDirectory(root)) {
            return Optional.empty();
        }
        try (Stream<Path> versions = Files.list(root)) {
            return versions.map(v -> v.resolve("bin/postgres"))
                    .filter(Files::isExecutable)
                    .findFirst();
        }
    }

    private static final class Output {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream stream = new PrintStream(bytes, true, StandardCharsets.UTF_8);

        String text() {
            return bytes.toString(StandardCharsets.UTF_8);
        }
    }
}
