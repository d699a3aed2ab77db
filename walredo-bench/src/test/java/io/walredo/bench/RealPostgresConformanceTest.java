// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.walredo.AttemptType;
import io.walredo.RedoRequest;
import io.walredo.SidecarCrashedException;
import io.walredo.TenantShardId;
import io.walredo.WalRecord;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The gold-standard conformance test (issue 20): pages a real PostgreSQL 15 server wrote are rebuilt from that
 * server's WAL records through {@link WalRedoManager} and the real redo binary ({@code ./scripts/build-postgres}),
 * and compared with the server's pages byte for byte outside the bytes PostgreSQL does not WAL-log
 * ({@link RealPagesCorpus.Kind} names them and why).
 *
 * <p>Runs when {@code ./scripts/test} passes {@code -Dwalredo.realPostgres=BINARY} and
 * {@code -Dwalredo.realCorpus=FILE} (a corpus {@code postgres/capture-corpus} captured from a throwaway cluster);
 * skipped, saying so, when they are absent (a plain {@code mvn test}). {@code docs/real-postgres.md} describes the
 * workload and the results.
 */
class RealPostgresConformanceTest {
    /** The thresholds: at least this many pages compared, from at least this many record types. */
    private static final int MIN_PAGES = 200;

    private static final int MIN_RECORD_TYPES = 4;
    /** Tenants the pages are spread over, so several sidecars of the real binary serve at once. */
    private static final int TENANTS = 4;

    private static final Duration TIMEOUT = Duration.ofMinutes(2);

    private static Path binary;
    private static RealPagesCorpus corpus;

    @BeforeAll
    static void load() throws Exception {
        String bin = System.getProperty("walredo.realPostgres");
        String file = System.getProperty("walredo.realCorpus");
        assumeTrue(
                bin != null && file != null,
                "real PostgreSQL conformance skipped: -Dwalredo.realPostgres and"
                        + " -Dwalredo.realCorpus are not set (./scripts/test sets them after ./scripts/build-postgres and"
                        + " postgres/capture-corpus)");
        binary = Path.of(bin);
        assertTrue(
                Files.isExecutable(binary),
                "walredo.realPostgres=" + bin + " is not an executable file; run"
                        + " ./scripts/build-postgres and pass its last line");
        corpus = RealPagesCorpus.read(Path.of(file));
    }

    @Test
    void pagesRebuiltThroughTheLibraryEqualTheServersPages() throws Exception {
        WalRedoConfig config = WalRedoConfig.builder()
                .redoBinary(corpus.pgVersion(), binary)
                .redoTimeout(Duration.ofSeconds(30))
                .build();
        List<RealPagesCorpus.Page> pages = corpus.pages();
        List<byte[]> redone = new ArrayList<>();
        try (WalRedoManager manager = WalRedoManager.create(config);
                ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<byte[]>> futures = new ArrayList<>();
            for (int i = 0; i < pages.size(); i++) {
                RealPagesCorpus.Page p = pages.get(i);
                TenantShardId tenant = TenantShardId.of(0x20, i % TENANTS);
                Callable<byte[]> call =
                        () -> manager.redo(tenant, p.request(corpus.pgVersion()), AttemptType.READ_PAGE);
                futures.add(callers.submit(call));
            }
            for (Future<byte[]> f : futures) {
                redone.add(f.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS));
            }
        }

        Map<String, int[]> byType = new TreeMap<>(); // type -> {records, pages}
        Map<String, int[]> byRelation = new TreeMap<>(); // relation -> {pages, exact}
        List<String> mismatches = new ArrayList<>();
        int exact = 0;
        int viaImage = 0;
        long records = 0;
        for (int i = 0; i < pages.size(); i++) {
            RealPagesCorpus.Page p = pages.get(i);
            byte[] page = redone.get(i);
            Set<String> types = new HashSet<>();
            for (WalRecord r : p.records()) {
                String t = RealPagesCorpus.recordType(r);
                byType.computeIfAbsent(t, k -> new int[2])[0]++;
                types.add(t);
            }
            for (String t : types) {
                byType.get(t)[1]++;
            }
            records += p.records().size();
            viaImage += p.imageOfPage().contains(true) ? 1 : 0;
            int[] rel = byRelation.computeIfAbsent(
                    p.relation() + " (" + p.kind().name().toLowerCase() + ")", k -> new int[2]);
            rel[0]++;
            if (p.exact(page)) {
                exact++;
                rel[1]++;
            } else if (!p.matches(page)) {
                mismatches.add(p.describeMismatch(page));
            }
        }

        StringBuilder report = new StringBuilder();
        report.append(String.format(
                "real PostgreSQL %d (server_version_num %d) through the library and %s:%n"
                        + "  %d pages rebuilt from %d record applications; %d equal byte for byte, %d equal after"
                        + " masking, %d differ; %d built on a full-page image of their own%n",
                corpus.pgVersion(),
                corpus.serverVersionNum(),
                binary,
                pages.size(),
                records,
                exact,
                pages.size() - exact - mismatches.size(),
                mismatches.size(),
                viaImage));
        report.append("  by relation (pages / byte-exact):");
        byRelation.forEach((k, v) -> report.append(' ')
                .append(k)
                .append(' ')
                .append(v[0])
                .append('/')
                .append(v[1])
                .append(';'));
        report.append(String.format("%n  %-26s %8s %6s%n", "record type", "records", "pages"));
        byType.forEach((k, v) -> report.append(String.format("  %-26s %8d %6d%n", k, v[0], v[1])));
        System.out.print(report);

        assertTrue(
                mismatches.isEmpty(),
                mismatches.size() + " of " + pages.size() + " pages differ from the"
                        + " server's: " + String.join("; ", mismatches.subList(0, Math.min(5, mismatches.size())))
                        + "\n" + report);
        assertTrue(
                pages.size() >= MIN_PAGES,
                "only " + pages.size() + " pages compared, the issue asks for " + MIN_PAGES
                        + "; the corpus's workload (postgres/corpus.py) shrank?\n" + report);
        assertTrue(
                byType.size() >= MIN_RECORD_TYPES,
                "only " + byType.size() + " record types " + byType.keySet() + ", the issue asks for "
                        + MIN_RECORD_TYPES + "\n" + report);
    }

    /**
     * Neon's recorded "short" request holds PostgreSQL 14 records; the PostgreSQL 15 binary refuses them. The first
     * record carries a full-page image whose {@code bimg_info} is 0x05: {@code BKPIMAGE_HAS_HOLE | BKPIMAGE_APPLY}
     * in 14, but {@code BKPIMAGE_HAS_HOLE | BKPIMAGE_COMPRESS_PGLZ} in 15, so 15's decoder reads two bytes of
     * hole length that are not there and the record falls apart ("out-of-order block_id"). WAL is not portable
     * across major versions; a request must go to the binary of its own version. This checks that the failure
     * is loud and typed, never a wrong page.
     */
    @Test
    void neonsPostgres14ShortRequestIsRefusedByPostgres15() {
        RedoRequest neonShort = Workload.SHORT.request();
        assertEquals(14, neonShort.pgVersion());
        WalRedoConfig config = WalRedoConfig.builder()
                .redoBinary(neonShort.pgVersion(), binary)
                .redoTimeout(Duration.ofSeconds(30))
                .build();
        try (WalRedoManager manager = WalRedoManager.create(config)) {
            WalRedoException e = assertThrows(
                    WalRedoException.class,
                    () -> manager.redo(TenantShardId.of(0x14, 1), neonShort, AttemptType.READ_PAGE));
            SidecarCrashedException crash = assertInstanceOf(SidecarCrashedException.class, e, e::toString);
            String said = String.join("\n", crash.stderrTail());
            assertTrue(said.contains("could not decode WAL record ending at 0/16A9388"), said);
            System.out.println("Neon's PostgreSQL 14 short request on PostgreSQL 15: "
                    + e.getClass().getSimpleName() + "; stderr: "
                    + crash.stderrTail().get(crash.stderrTail().size() - 1));
        }
    }
}
