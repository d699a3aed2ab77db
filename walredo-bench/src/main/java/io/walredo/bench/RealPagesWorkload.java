// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The demo's work for the real PostgreSQL 15 redo binary ({@code ./scripts/build-postgres}): pages a throwaway
 * PostgreSQL 15 cluster wrote, each requested with the WAL records that built it and checked against the page the
 * server wrote, through the masks of {@link RealPagesCorpus.Kind} (docs/real-postgres.md). The fake's page model
 * does not apply to a real binary; the server's own pages do.
 *
 * @param corpus the pages
 * @param source where they came from, for the demo's header
 */
record RealPagesWorkload(RealPagesCorpus corpus, String source) {
    /** Requests of at least this many records count as "medium" in the demo's summary, the others as "short". */
    static final int MEDIUM_RECORDS = 100;
    /** The script that captures (or finds in its cache) a corpus; run from the project root, as scripts/demo does. */
    static final Path CAPTURE = Path.of("postgres", "capture-corpus");

    private static final Pattern VERSION = Pattern.compile("\\(PostgreSQL\\) (\\d+)");
    private static final long CAPTURE_TIMEOUT_SECONDS = 300;

    /**
     * Decides what the demo sends to {@code binary}: the pages of {@code realPages} if given; else, for a binary
     * with a walredo mode that reports PostgreSQL 15, a corpus {@link #CAPTURE} captures or finds in its cache
     * (its progress goes to {@code out}); else empty, and the demo sends Neon's PostgreSQL 14 request as before.
     *
     * @throws IOException naming the file or the step that failed and what to do
     */
    static Optional<RealPagesWorkload> forBinary(Path binary, Optional<Path> realPages, PrintStream out)
            throws IOException, InterruptedException {
        if (realPages.isPresent()) {
            return Optional.of(new RealPagesWorkload(
                    RealPagesCorpus.read(realPages.get()), realPages.get().toString()));
        }
        if (!Demo.mentionsWalRedo(binary) || majorVersion(binary).orElse(0) != 15) {
            return Optional.empty();
        }
        if (!Files.isExecutable(CAPTURE)) {
            throw new IOException(
                    "no " + CAPTURE.toAbsolutePath() + " to capture real pages for " + binary
                            + "; run the demo through ./scripts/demo, or pass --real-pages FILE (postgres/capture-corpus prints one)");
        }
        out.println("  real pages: postgres/capture-corpus (a throwaway PostgreSQL 15 cluster, ~5 s, or its cache)");
        Process p = new ProcessBuilder(CAPTURE.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        p.getOutputStream().close();
        String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!p.waitFor(CAPTURE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(CAPTURE + " did not finish within " + CAPTURE_TIMEOUT_SECONDS + " s; run it by hand"
                    + " and pass its last line as --real-pages");
        }
        if (p.exitValue() != 0 || stdout.isEmpty()) {
            throw new IOException(CAPTURE + " failed with exit " + p.exitValue() + " (its error is above); it needs"
                    + " root and Debian's postgresql-15, or pass --real-pages FILE");
        }
        Path file = Path.of(stdout.substring(stdout.lastIndexOf('\n') + 1));
        return Optional.of(new RealPagesWorkload(RealPagesCorpus.read(file), file.toString()));
    }

    /** The major version {@code binary --version} reports, empty if it cannot be run or says something else. */
    static OptionalInt majorVersion(Path binary) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(binary.toString(), "--version")
                    .redirectErrorStream(true)
                    .start();
            p.getOutputStream().close();
            String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return OptionalInt.empty();
            }
            Matcher m = VERSION.matcher(said);
            return p.exitValue() == 0 && m.find() ? OptionalInt.of(Integer.parseInt(m.group(1))) : OptionalInt.empty();
        } catch (IOException e) {
            return OptionalInt.empty(); // not runnable: the demo's ping then explains what is wrong with it
        }
    }

    /** The PostgreSQL major version of the corpus's records, which the demo configures its binary for. */
    int pgVersion() {
        return corpus.pgVersion();
    }

    /** One request per page, each checked against the server's page through its kind's mask. */
    List<RequestMix.Work> work() {
        List<RequestMix.Work> out = new ArrayList<>();
        for (RealPagesCorpus.Page page : corpus.pages()) {
            out.add(new RequestMix.Work(
                    page.request(corpus.pgVersion()),
                    page.serverPage(),
                    page.records().size() >= MEDIUM_RECORDS ? RequestMix.Kind.MEDIUM : RequestMix.Kind.SHORT,
                    page::matches));
        }
        return out;
    }

    /** The demo header's description of the requests. */
    String describe() {
        int medium = 0;
        long records = 0;
        for (RealPagesCorpus.Page page : corpus.pages()) {
            medium += page.records().size() >= MEDIUM_RECORDS ? 1 : 0;
            records += page.records().size();
        }
        return corpus.pages().size() + " real pages of a PostgreSQL " + corpus.pgVersion() + " server ("
                + source + "), " + records + " records; short < " + MEDIUM_RECORDS + " records ("
                + (corpus.pages().size() - medium) + " pages), medium >= " + MEDIUM_RECORDS + " (" + medium
                + "); each page checked against"
                + " the server's, outside what PostgreSQL does not WAL-log";
    }
}
