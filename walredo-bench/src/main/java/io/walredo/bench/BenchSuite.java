// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import picocli.CommandLine;

/**
 * Runs every benchmark of {@code ./scripts/bench}, prints one table per benchmark (with a progress line while
 * it runs) and writes the report {@code docs/benchmarks.md} with its PNG charts.
 *
 * <p>Usage: {@code BenchSuite quick|full [--only throughput,spawn,cold,isolation,shared,deadlines,density,jfr]
 * [--report DIR] [--rows WORK/CALLERS,...] [--profile] [--redo-binary POSTGRES [--real-pages FILE]]}: with
 * {@code --redo-binary} (the PostgreSQL 15 binary of {@code ./scripts/build-postgres}) a last section, "real",
 * measures it beside the fake ({@link RealBinaryScenario}) on the pages of {@code --real-pages} or of
 * {@code postgres/capture-corpus}.
 * System properties: {@code walredo.fake.binary} (the fake redo binary), {@code walredo.bench.client} (the C
 * limit client), {@code walredo.bench.command} (the command line to print in the report).
 */
public final class BenchSuite {

    /** How long each benchmark runs. {@code quick} fits in 10 minutes on the project's 2-vCPU machine. */
    enum Mode {
        QUICK(2, 3, 1000, 60, 10, 30, 40, 2, 8),
        FULL(2, 5, 2000, 200, 20, 100, 200, 2, 30);

        private final int jmhWarmupIterations;
        private final int jmhMeasurementIterations;
        private final int jmhIterationMillis;
        private final int spawnSamples;
        private final int spawnWarmup;
        private final int exitSamples;
        private final int coldSamples;
        private final int isolationRounds;
        private final int isolationSeconds;

        Mode(
                int jmhWarmupIterations,
                int jmhMeasurementIterations,
                int jmhIterationMillis,
                int spawnSamples,
                int spawnWarmup,
                int exitSamples,
                int coldSamples,
                int isolationRounds,
                int isolationSeconds) {
            this.jmhWarmupIterations = jmhWarmupIterations;
            this.jmhMeasurementIterations = jmhMeasurementIterations;
            this.jmhIterationMillis = jmhIterationMillis;
            this.spawnSamples = spawnSamples;
            this.spawnWarmup = spawnWarmup;
            this.exitSamples = exitSamples;
            this.coldSamples = coldSamples;
            this.isolationRounds = isolationRounds;
            this.isolationSeconds = isolationSeconds;
        }

        int jmhWarmupIterations() {
            return jmhWarmupIterations;
        }

        int jmhMeasurementIterations() {
            return jmhMeasurementIterations;
        }

        int jmhIterationMillis() {
            return jmhIterationMillis;
        }

        int spawnSamples() {
            return spawnSamples;
        }

        int spawnWarmup() {
            return spawnWarmup;
        }

        int exitSamples() {
            return exitSamples;
        }

        int coldSamples() {
            return coldSamples;
        }

        int isolationRounds() {
            return isolationRounds;
        }

        int isolationSeconds() {
            return isolationSeconds;
        }

        String describe() {
            return String.format(
                    "JMH %d warm-up + %d measured iterations of %d ms, one fork per row; %d spawn "
                            + "samples per cell; %d exit samples; %d cold-start samples; %d isolation round(s) of %d s",
                    jmhWarmupIterations,
                    jmhMeasurementIterations,
                    jmhIterationMillis,
                    spawnSamples,
                    exitSamples,
                    coldSamples,
                    isolationRounds,
                    isolationSeconds);
        }
    }

    private static final List<String> ALL =
            List.of("throughput", "spawn", "cold", "isolation", "shared", "deadlines", "density", "jfr");
    /** Every section: {@link #ALL} and "real", which runs only with {@code --redo-binary}. */
    private static final List<String> KNOWN =
            List.of("throughput", "spawn", "cold", "isolation", "shared", "deadlines", "density", "jfr", "real");

    private static Path reportDir = Path.of("docs");

    private BenchSuite() {}

    /**
     * Entry point.
     *
     * @param args {@code quick|full [--only a,b] [--report DIR]}
     */
    public static void main(String[] args) throws Exception {
        Command c;
        try {
            c = CliArgs.parse(new Command(), args);
        } catch (IllegalArgumentException e) {
            usage(e.getMessage());
            return;
        }
        if (c == null) {
            usage(null);
            return;
        }
        Mode mode = c.mode;
        Set<String> only = new LinkedHashSet<>(c.only != null ? c.only : ALL);
        if (!KNOWN.containsAll(only)) {
            usage("--only takes a comma-separated subset of " + KNOWN + ", got " + only);
        }
        Set<String> rows = new LinkedHashSet<>(c.rows);
        boolean profile = c.profile;
        Path redoBinary = c.redoBinary == null ? null : c.redoBinary.toAbsolutePath();
        Path realPages = c.realPages == null ? null : c.realPages.toAbsolutePath();
        if (c.report != null) {
            reportDir = c.report;
        }
        if (redoBinary != null && c.only == null) {
            only.add("real");
        }
        if (only.contains("real") && redoBinary == null) {
            usage("--only real needs --redo-binary POSTGRES (./scripts/build-postgres prints it)");
        }
        Path fake = executable("walredo.fake.binary");
        Path client = executable("walredo.bench.client");
        Path work = Files.createTempDirectory("walredo-bench");
        Progress progress = new Progress(System.err);
        long start = System.nanoTime();
        List<Section> sections = new ArrayList<>();
        System.out.println("walredo benchmarks, " + mode.name().toLowerCase(Locale.ROOT) + ": " + mode.describe());
        Probes.machine().forEach(m -> System.out.println("  " + m));
        for (String b : KNOWN) {
            if (!only.contains(b)) {
                continue;
            }
            Section s = switch (b) {
                case "throughput" -> new ThroughputScenario(mode, fake, client, work, rows, profile).run(progress);
                case "spawn" -> new SpawnScenario(mode, fake, client).run(progress);
                case "cold" -> new ColdStartScenario(mode, fake).run(progress);
                case "isolation" -> new IsolationScenario(mode, fake, work).run(progress);
                case "shared" -> new SharedCallersScenario(mode, fake, work).run(progress);
                case "deadlines" -> new DeadlineScenario(fake, work, mode.isolationSeconds()).run(progress);
                case "density" -> new DensityScenario(fake).run(progress);
                case "jfr" ->
                    JfrOverheadScenario.run(
                            fake, Duration.ofSeconds(mode == Mode.FULL ? 10 : 5), mode == Mode.FULL ? 3 : 2, 4, 16);
                case "real" ->
                    new RealBinaryScenario(
                                    RealBinaryScenario.Params.of(mode),
                                    redoBinary,
                                    fake,
                                    realPages(redoBinary, realPages))
                            .run(progress);
                default -> throw new IllegalStateException(b);
            };
            progress.clear();
            System.out.print(s.console());
            System.out.flush();
            sections.add(s);
        }
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        Path report = writeReport(mode, only, sections, took);
        System.out.printf(
                "%nall benchmarks done in %d min %d s; report written to %s%n",
                took.toMinutes(), took.toSecondsPart(), report);
    }

    /** The pages of {@code file}, or of the corpus postgres/capture-corpus captures or finds in its cache. */
    private static RealPagesCorpus realPages(Path binary, Path file) throws IOException, InterruptedException {
        return RealPagesWorkload.forBinary(binary, Optional.ofNullable(file), System.err)
                .orElseThrow(() -> new IllegalStateException(binary + " is not a PostgreSQL 15 with a walredo mode;"
                        + " pass the binary ./scripts/build-postgres prints, or --real-pages FILE"))
                .corpus();
    }

    /** The benchmarks' command line: picocli fills these fields; see {@link CliArgs}. */
    @CommandLine.Command(
            name = "./scripts/bench",
            sortOptions = false,
            usageHelpWidth = 110,
            description = "Runs the benchmarks, prints one table per benchmark and writes DIR/benchmarks.md (default "
                    + "docs/) with PNG charts under DIR/img/. Run it alone: two busy processes on a 2-core machine "
                    + "make every figure meaningless.")
    static final class Command {
        @CommandLine.Parameters(
                index = "0",
                arity = "0..1",
                paramLabel = "quick|full",
                defaultValue = "quick",
                converter = ModeName.class,
                description =
                        "quick (default) fits in 10 minutes; full runs about half " + "an hour for tighter figures")
        Mode mode;

        @CommandLine.Option(
                names = "--only",
                paramLabel = "LIST",
                split = ",",
                description = "run only these, comma-separated: throughput, spawn, cold, isolation, shared, "
                        + "deadlines, density, jfr, real (default: all but real; real is added by --redo-binary)")
        List<String> only;

        @CommandLine.Option(
                names = "--report",
                paramLabel = "DIR",
                description = "where benchmarks.md and img/ go " + "(default docs/)")
        Path report;

        @CommandLine.Option(
                names = "--rows",
                paramLabel = "WORK/CALLERS",
                split = ",",
                description = "only these throughput rows, e.g. short/1,ping/128")
        List<String> rows = new ArrayList<>();

        @CommandLine.Option(
                names = "--profile",
                description = "profile the throughput row furthest from the C "
                        + "client with JFR even when every target is met (it always does on a miss)")
        boolean profile;

        @CommandLine.Option(
                names = "--redo-binary",
                paramLabel = "POSTGRES",
                description = "a PostgreSQL 15 with a "
                        + "walredo mode (./scripts/build-postgres prints it): adds the real-binary section")
        Path redoBinary;

        @CommandLine.Option(
                names = "--real-pages",
                paramLabel = "FILE",
                description = "with --redo-binary: the pages to request (a postgres/capture-corpus file)")
        Path realPages;

        @CommandLine.Mixin
        CliArgs.HelpOption help;
    }

    /** quick or full, any case. */
    static final class ModeName implements CommandLine.ITypeConverter<Mode> {
        @Override
        public Mode convert(String v) {
            try {
                return Mode.valueOf(v.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException("takes quick or full, got '" + v + "'");
            }
        }
    }

    private static void usage(String problem) {
        PrintStream out = problem == null ? System.out : System.err;
        if (problem != null) {
            out.println("bench: " + problem);
        }
        out.println(CliArgs.usage(new Command()));
        if (problem != null) {
            System.exit(2);
        }
    }

    private static Path executable(String property) {
        String v = System.getProperty(property);
        if (v == null || !Files.isExecutable(Path.of(v))) {
            throw new IllegalStateException("system property " + property + " must name an executable, got " + v
                    + "; run the benchmarks through ./scripts/bench, which builds and passes it");
        }
        return Path.of(v).toAbsolutePath();
    }

    /** Runs a tool to completion and returns its standard output; fails with its stderr if it fails. */
    static String runTool(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).start();
        p.getOutputStream().close();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Thread errReader = Thread.ofVirtual().start(() -> copy(p.getErrorStream(), err));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new IllegalStateException(command + " did not finish within 10 minutes");
        }
        errReader.join();
        if (p.exitValue() != 0) {
            throw new IllegalStateException(command + " failed with exit " + p.exitValue() + ": "
                    + err.toString(StandardCharsets.UTF_8).trim());
        }
        return out;
    }

    private static void copy(InputStream in, ByteArrayOutputStream out) {
        try {
            in.transferTo(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Parses {@code key=value key=value} output. */
    static Map<String, String> keyValues(String out) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String token : out.trim().split("\\s+")) {
            int eq = token.indexOf('=');
            if (eq > 0) {
                kv.put(token.substring(0, eq), token.substring(eq + 1));
            }
        }
        return kv;
    }

    /** Returns {@code relative} resolved against the report's directory, its parent directories created. */
    static Path reportPath(String relative) throws IOException {
        Path p = reportDir.resolve(relative);
        Files.createDirectories(p.getParent());
        return p;
    }

    /** Writes a chart under the report's img/ directory; returns its path relative to the report. */
    static String chart(String file, Chart chart) throws IOException {
        Path dir = reportDir.resolve("img");
        Files.createDirectories(dir);
        chart.write(dir.resolve(file));
        return "img/" + file;
    }

    private static Path writeReport(Mode mode, Set<String> only, List<Section> sections, Duration took)
            throws IOException {
        String command = System.getProperty(
                "walredo.bench.command", "./scripts/bench " + mode.name().toLowerCase(Locale.ROOT));
        StringBuilder md = new StringBuilder();
        md.append("# Benchmarks\n\n");
        md.append("Written by `")
                .append(command)
                .append("` on ")
                .append(ZonedDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm z")))
                .append(" in ")
                .append(took.toMinutes())
                .append(" min ")
                .append(took.toSecondsPart())
                .append(" s. Every figure below is from that one run; nothing is copied from elsewhere. The machine is "
                        + "a shared VM, so absolute figures move from run to run: compare the ratios, which put "
                        + "two figures measured seconds apart side by side.\n\n");
        md.append("- Mode: `")
                .append(mode.name().toLowerCase(Locale.ROOT))
                .append("` (")
                .append(mode.describe())
                .append(")\n");
        if (!only.containsAll(ALL)) {
            md.append("- Benchmarks run: ").append(String.join(", ", only)).append('\n');
        }
        for (String m : Probes.machine()) {
            md.append("- ").append(m).append('\n');
        }
        md.append("- Redo binary: the project's fake (`walredo-native/src/main/c/fake_walredo.c`), not Neon's "
                + "postgres: its work per request is hashing the input, so these figures measure the library and "
                + "the pipes, not WAL replay"
                + (only.contains("real")
                        ? "; the last section runs PostgreSQL 15's own redo (docs/real-postgres.md)"
                        : "")
                + ".\n\n");
        md.append(
                "Reproduce: `./scripts/bench quick` (under 10 minutes) or `./scripts/bench full`; "
                        + "`--only throughput,spawn,cold,isolation,shared,deadlines,density,jfr` runs a subset; `--redo-binary POSTGRES` adds the real-binary section.\n\n");
        md.append("## Targets\n\n");
        Table all = new Table("benchmark", "target", "this run", "");
        for (Section s : sections) {
            for (Section.Target t : s.targets) {
                all.row(s.title, t.goal(), t.measured(), t.met() ? "met" : "**missed**");
            }
        }
        md.append(all.markdown()).append('\n');
        List<TargetsChart.Bar> bars = new ArrayList<>();
        for (Section s : sections) {
            for (Section.Target t : s.targets) {
                if (!Double.isNaN(t.margin())) {
                    bars.add(new TargetsChart.Bar(s.title, t.goal(), t.margin()));
                }
            }
        }
        if (!bars.isEmpty()) {
            Path img = reportDir.resolve("img");
            Files.createDirectories(img);
            TargetsChart.write(img.resolve("targets.png"), bars);
            md.append(
                    "![Every numeric target: measured against its limit, green met, red missed](img/targets.png)\n\n");
        }
        for (Section s : sections) {
            md.append(s.markdown());
        }
        Files.createDirectories(reportDir);
        Path file = reportDir.resolve("benchmarks.md");
        Files.writeString(file, md.toString());
        return file;
    }

    /**
     * The progress line: rewritten in place on a terminal, one line per step (at most one per second)
     * otherwise. Safe to call from any thread.
     */
    static final class Progress {
        private final PrintStream out;
        private final boolean terminal = System.console() != null;
        private final long start = System.nanoTime();
        private final ReentrantLock lock = new ReentrantLock();
        private long lastPrinted;
        private int lastLength;

        Progress(PrintStream out) {
            this.out = out;
        }

        void step(String what) {
            lock.lock();
            try {
                long now = System.nanoTime();
                if (!terminal && now - lastPrinted < 1_000_000_000L) {
                    return;
                }
                lastPrinted = now;
                long s = (now - start) / 1_000_000_000L;
                String line = String.format("[%02d:%02d] %s", s / 60, s % 60, what);
                if (terminal) {
                    out.print("\r" + line + " ".repeat(Math.max(0, lastLength - line.length())));
                    lastLength = line.length();
                } else {
                    out.println(line);
                }
                out.flush();
            } finally {
                lock.unlock();
            }
        }

        void clear() {
            lock.lock();
            try {
                if (terminal && lastLength > 0) {
                    out.print("\r" + " ".repeat(lastLength) + "\r");
                    out.flush();
                    lastLength = 0;
                }
            } finally {
                lock.unlock();
            }
        }
    }
}
