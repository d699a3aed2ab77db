// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Runs {@link RealBinaryScenario} with tiny sizes (a few seconds), so the bench's real-binary section keeps working
 * between benchmark runs; it measures nothing worth keeping. Needs what {@link RealPostgresConformanceTest} needs
 * ({@code ./scripts/test} passes it) and is skipped without it.
 */
class RealBinaryScenarioTest {

    @Test
    void everyTableHasItsRowsWithTinySizes() throws Exception {
        String bin = System.getProperty("walredo.realPostgres");
        String file = System.getProperty("walredo.realCorpus");
        assumeTrue(
                bin != null && file != null,
                "real-binary bench smoke skipped: -Dwalredo.realPostgres and"
                        + " -Dwalredo.realCorpus are not set (./scripts/test sets them)");
        RealPagesCorpus corpus = RealPagesCorpus.read(Path.of(file));
        RealBinaryScenario.Params tiny = new RealBinaryScenario.Params(3, 2, Duration.ofMillis(500), 2);
        Section s = new RealBinaryScenario(
                        tiny, Path.of(bin), Path.of(System.getProperty("walredo.fake.binary")), corpus)
                .run(new BenchSuite.Progress(new PrintStream(PrintStream.nullOutputStream())));

        System.out.print(s.console());
        assertEquals(4, s.tables.size(), s.console());
        String text = s.console();
        for (String row : new String[] {
            "postgres 15 (real)",
            "fake",
            "cold (first after quiesce)",
            "idle after " + corpus.pages().size() + " real pages each"
        }) {
            assertTrue(text.contains(row), row + " in\n" + text);
        }
    }
}
