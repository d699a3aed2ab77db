// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * Benchmark 1 and 2: {@link RedoThroughputBenchmark} under JMH for every work and caller count, each row
 * followed at once by both C clients ({@code redo-client redo}, then {@code redo-client redo-poll}) running the
 * same bytes at the same pipelining depth, so every ratio compares figures measured seconds apart. The C limit
 * of a row is the faster of the two. JMH's JSON result of each row is kept in the work directory.
 */
final class ThroughputScenario {
    static final int[] CALLERS = {1, 2, 4, 8, 16, 32, 64, 128};
    /** Directory, relative to the report, of the rows' JMH JSON results. */
    static final String JMH_JSON_DIR = "jmh";

    /** The C reference clients of {@code walredo-bench/src/main/c/redo_client.c}, in the order a row runs them. */
    enum CClient {
        /** {@code redo}: blocking pipes, a writer thread and a reader thread handing window slots over a lock. */
        THREADS("redo", "threads"),
        /** {@code redo-poll}: one thread, non-blocking pipes, poll(2), batched writes, 256 KiB reads. */
        POLL("redo-poll", "poll");

        private final String command;
        private final String label;

        CClient(String command, String label) {
            this.command = command;
            this.label = label;
        }

        /** The redo-client mode that runs this client. */
        String command() {
            return command;
        }

        /** Short name for tables and target texts. */
        String label() {
            return label;
        }
    }

    /**
     * One run of a C client.
     *
     * @param client which client
     * @param us µs per redo per caller
     * @param medianUs median round trip in µs at depth 1; NaN at any other depth (the client does not report it)
     */
    record CRun(CClient client, double us, double medianUs) {}

    /**
     * One row: work and callers, the library's µs per redo per caller (with JMH's error) and both C clients'.
     * The C limit is the faster C run (the smaller µs per redo per caller).
     */
    record Row(Workload work, int callers, double libUs, double libErrorUs, CRun threads, CRun poll) {
        Row {
            if (threads.client() != CClient.THREADS || poll.client() != CClient.POLL) {
                throw new IllegalArgumentException("threads and poll runs swapped: " + threads + ", " + poll);
            }
        }

        /** The faster of the two C runs: the figure every ratio, target and chart compares the library with. */
        CRun limit() {
            return poll.us() <= threads.us() ? poll : threads;
        }

        double cUs() {
            return limit().us();
        }

        double libPerSecond() {
            return callers / libUs * 1e6;
        }

        double cPerSecond() {
            return callers / cUs() * 1e6;
        }
    }

    private final BenchSuite.Mode mode;
    private final Path fake;
    private final Path client;
    private final Path workDir;

    private final Set<String> rowFilter;
    private final boolean alwaysProfile;

    /**
     * @param rowFilter rows to run as "work/callers" (e.g. "short/1"); empty for all
     * @param alwaysProfile profile the row furthest from the C client even if every target is met
     */
    ThroughputScenario(
            BenchSuite.Mode mode, Path fake, Path client, Path workDir, Set<String> rowFilter, boolean alwaysProfile) {
        for (String row : rowFilter) {
            if (!allRows().contains(row)) {
                throw new IllegalArgumentException("--rows: no row " + row + "; rows are WORK/CALLERS with WORK one of "
                        + "ping, short, medium and CALLERS one of " + java.util.Arrays.toString(CALLERS));
            }
        }
        this.rowFilter = rowFilter;
        this.alwaysProfile = alwaysProfile;
        this.mode = mode;
        this.fake = fake;
        this.client = client;
        this.workDir = workDir;
    }

    private static Set<String> allRows() {
        Set<String> all = new java.util.LinkedHashSet<>();
        for (Workload w : Workload.values()) {
            for (int c : CALLERS) {
                all.add(w.label() + "/" + c);
            }
        }
        return all;
    }

    Section run(BenchSuite.Progress progress) throws IOException, InterruptedException, RunnerException {
        Map<Workload, Path> wire = new EnumMap<>(Workload.class);
        for (Workload w : Workload.values()) {
            Path f = workDir.resolve(w.label() + ".request.bin");
            w.writeWireBytes(f);
            wire.put(w, f);
        }
        List<Row> rows = new ArrayList<>();
        int total = Workload.values().length * CALLERS.length;
        for (Workload w : Workload.values()) {
            for (int callers : CALLERS) {
                if (!rowFilter.isEmpty() && !rowFilter.contains(w.label() + "/" + callers)) {
                    total--;
                    continue;
                }
                progress.step(
                        "redo throughput " + w.label() + "/" + callers + " (" + (rows.size() + 1) + "/" + total + ")");
                int perCaller = RedoThroughputBenchmark.perCaller(callers);
                RunResult r = new Runner(jmhOptions(w, callers, perCaller, List.of())
                                .resultFormat(ResultFormatType.JSON)
                                .result(jmhJson(w, callers).toString())
                                .build())
                        .runSingle();
                double libUs = r.getPrimaryResult().getScore() / perCaller;
                double errUs = r.getPrimaryResult().getScoreError() / perCaller;
                CRun threads = cClient(CClient.THREADS, wire.get(w), callers);
                CRun poll = cClient(CClient.POLL, wire.get(w), callers);
                rows.add(new Row(w, callers, libUs, Double.isNaN(errUs) ? 0 : errUs, threads, poll));
            }
        }
        Section s = report(rows);
        if (!rows.isEmpty()) {
            s.note("JMH's JSON result of each row (all iterations, score error, JVM arguments) is beside this report: "
                    + JMH_JSON_DIR + "/jmh-WORK-CALLERS.json.");
        }
        profileWorstMiss(s, rows, progress);
        return s;
    }

    /**
     * If a target was missed (or {@code --profile} asked), re-runs the row furthest from the C client under
     * JFR and adds where its time went to the section.
     */
    private void profileWorstMiss(Section s, List<Row> rows, BenchSuite.Progress progress)
            throws IOException, RunnerException {
        if (!alwaysProfile && s.targets.stream().allMatch(Section.Target::met)) {
            return;
        }
        Row worst = rows.stream()
                .max((a, b) -> Double.compare(a.libUs() / a.cUs(), b.libUs() / b.cUs()))
                .orElseThrow();
        progress.step("redo throughput: profiling " + worst.work().label() + "/" + worst.callers() + " with JFR");
        Path jfr = workDir.resolve("profile-" + worst.work().label() + "-" + worst.callers() + ".jfr");
        int perCaller = RedoThroughputBenchmark.perCaller(worst.callers());
        new Runner(jmhOptions(
                                worst.work(),
                                worst.callers(),
                                perCaller,
                                List.of("-XX:StartFlightRecording:filename=" + jfr
                                        + ",settings=profile,dumponexit=true"))
                        .build())
                .runSingle();
        s.table(
                "Where the time goes in the row furthest from the C client ("
                        + worst.work().label() + ", "
                        + worst.callers() + " caller(s), " + Stats.ratio(worst.libUs() / worst.cUs()) + " the C limit, "
                        + "C " + worst.limit().client().label() + "): "
                        + "JFR execution samples of the same JMH run repeated under `settings=profile`, by top frame. \"on "
                        + "CPU\" samples are Java code running; \"in native\" samples are threads inside a native call "
                        + "(`read`, `write`; the reactor's idle `epoll_wait` is left out). JFR does not see the kernel: "
                        + "see docs/architecture.md (\"Where the time goes under deep pipelining\") for what `perf` shows "
                        + "beneath these frames.",
                JfrProfile.topFrames(jfr, 12));
    }

    /** Where the row's JMH JSON result goes: {@value #JMH_JSON_DIR}/ beside the report. */
    private static Path jmhJson(Workload w, int callers) throws IOException {
        return BenchSuite.reportPath(JMH_JSON_DIR + "/jmh-" + w.label() + "-" + callers + ".json");
    }

    /** The row's JMH options, unbuilt so that a caller can add a result file. */
    private ChainedOptionsBuilder jmhOptions(Workload w, int callers, int perCaller, List<String> moreJvmArgs) {
        List<String> jvmArgs = new ArrayList<>(List.of(
                "--enable-native-access=ALL-UNNAMED",
                "-XX:+IgnoreUnrecognizedVMOptions",
                "--sun-misc-unsafe-memory-access=allow",
                "-Dwalredo.fake.binary=" + fake));
        jvmArgs.addAll(moreJvmArgs);
        return new OptionsBuilder()
                .include(RedoThroughputBenchmark.class.getName() + ".redo")
                .param("work", w.label())
                .param("callers", Integer.toString(callers))
                .param("perCaller", Integer.toString(perCaller))
                .forks(1)
                .warmupIterations(mode.jmhWarmupIterations())
                .warmupTime(TimeValue.milliseconds(mode.jmhIterationMillis()))
                .measurementIterations(mode.jmhMeasurementIterations())
                .measurementTime(TimeValue.milliseconds(mode.jmhIterationMillis()))
                .jvmArgsAppend(jvmArgs.toArray(String[]::new))
                .shouldFailOnError(true)
                .verbosity(VerboseMode.SILENT);
    }

    /** Runs one C client for as long as JMH ran the row (warm-up, then measurement) at depth {@code depth}. */
    private CRun cClient(CClient which, Path request, int depth) throws IOException, InterruptedException {
        long warmupMs = mode.jmhIterationMillis() * (long) mode.jmhWarmupIterations();
        long measureMs = mode.jmhIterationMillis() * (long) mode.jmhMeasurementIterations();
        List<String> command = List.of(
                client.toString(),
                which.command(),
                fake.toString(),
                request.toString(),
                Integer.toString(depth),
                Long.toString(warmupMs),
                Long.toString(measureMs));
        Map<String, String> kv = BenchSuite.keyValues(BenchSuite.runTool(command));
        if (!kv.containsKey("us_per_redo_per_caller")) {
            throw new IllegalStateException(command + " printed no us_per_redo_per_caller: " + kv);
        }
        double us = Double.parseDouble(kv.get("us_per_redo_per_caller"));
        double median = kv.containsKey("median_us") ? Double.parseDouble(kv.get("median_us")) : Double.NaN;
        return new CRun(which, us, median);
    }

    private Section report(List<Row> rows) throws IOException {
        Section s = new Section(
                "Redo throughput vs the C limit (JMH)",
                "One tenant, one sidecar (the fake redo binary); `callers` virtual threads call `redo` (or `ping`) "
                        + "in a closed loop and every redo page is checked against the fake's model (the C client "
                        + "checks every answer against its first). JMH "
                        + "(`RedoThroughputBenchmark`, AverageTime, one fork) measures invocations of `perCaller` "
                        + "requests per caller; the figure is Neon's: µs per redo per caller, i.e. the latency each "
                        + "caller sees, queueing included. Right after the JMH row, two C clients "
                        + "(`walredo-bench/src/main/c/redo_client.c`, no framework, no allocation per request) run "
                        + "the same request bytes with `callers` requests in flight, for as long as JMH ran: "
                        + "\"C threads\" is `redo-client redo` (blocking pipes, a writer thread and a reader thread "
                        + "handing window slots over a mutex and condition variable), \"C poll\" is `redo-client "
                        + "redo-poll` (one thread, non-blocking pipes and poll(2), each write batching a copy of "
                        + "the request per free slot, 256 KiB reads). The C limit is the faster of the two in that "
                        + "row; `lib/C`, the targets and the chart compare the library with it. `lib/C` above 1 "
                        + "is overhead; redos/s = callers / latency. `short` is Neon's recorded 1,132-byte request, "
                        + "`medium` 227 records of 95 to 110 random bytes (" + Workload.MEDIUM.wireBytes()
                        + " bytes on the "
                        + "wire), the shape of Neon's medium request.");
        Table t = new Table(
                "work",
                "callers",
                "library µs/redo/caller",
                "C threads µs",
                "C poll µs",
                "C limit",
                "lib/C",
                "library redos/s",
                "C limit redos/s");
        for (Row r : rows) {
            t.row(
                    r.work().label(),
                    r.callers(),
                    String.format("%.1f ± %.1f", r.libUs(), r.libErrorUs()),
                    String.format("%.1f", r.threads().us()),
                    String.format("%.1f", r.poll().us()),
                    r.limit().client().label(),
                    Stats.ratio(r.libUs() / r.cUs()),
                    String.format("%,.0f", r.libPerSecond()),
                    String.format("%,.0f", r.cPerSecond()));
        }
        s.table("", t);
        for (Row r : rows) {
            if (r.callers() == 1) {
                double ratio = r.libUs() / r.cUs();
                s.target(
                        "redo at 1 caller, " + r.work().label() + ": at most 1.5x the faster C client",
                        String.format(
                                "%.1f µs vs %.1f µs (C %s; its median round trip %.1f µs): %s",
                                r.libUs(),
                                r.cUs(),
                                r.limit().client().label(),
                                r.limit().medianUs(),
                                Stats.ratio(ratio)),
                        ratio,
                        1.5,
                        true);
            }
        }
        for (Row r : rows) {
            if (r.work() == Workload.SHORT && r.callers() >= 16) {
                s.target(
                        "short at " + r.callers() + " callers: at least 130k redos/s",
                        String.format("%,.0f/s", r.libPerSecond()),
                        r.libPerSecond(),
                        130_000,
                        false);
                double share = r.libPerSecond() / r.cPerSecond();
                s.target(
                        "short at " + r.callers() + " callers: at least 50 % of the C limit",
                        String.format("%.0f %% (%,.0f vs %,.0f/s)", share * 100, r.libPerSecond(), r.cPerSecond()),
                        share,
                        0.5,
                        false);
            }
        }
        List<Chart.Series> series = new ArrayList<>();
        List<Chart.Series> shares = new ArrayList<>();
        for (Workload w : Workload.values()) {
            List<double[]> lib = new ArrayList<>();
            List<double[]> c = new ArrayList<>();
            List<double[]> share = new ArrayList<>();
            for (Row r : rows) {
                if (r.work() == w) {
                    lib.add(new double[] {r.callers(), r.libUs(), r.libUs() - r.libErrorUs(), r.libUs() + r.libErrorUs()
                    });
                    c.add(new double[] {r.callers(), r.cUs()});
                    share.add(new double[] {r.callers(), 100 * r.libPerSecond() / r.cPerSecond()});
                }
            }
            series.add(new Chart.Series("library " + w.label() + " (JMH 99.9 % error)", lib, false, w.ordinal()));
            series.add(new Chart.Series("C limit " + w.label(), c, true, w.ordinal()));
            shares.add(new Chart.Series("library " + w.label(), share, false, w.ordinal()));
        }
        s.charts.add(BenchSuite.chart(
                "redo-latency-vs-callers.png",
                new Chart(
                        "µs per redo per caller vs callers (log-log)",
                        "callers",
                        "µs per redo per caller",
                        true,
                        true,
                        series)));
        s.charts.add(BenchSuite.chart(
                "redo-share-of-c-limit.png",
                new Chart(
                        "library redos/s as a share of the C limit vs callers",
                        "callers",
                        "% of the C limit",
                        true,
                        false,
                        shares,
                        List.of(new Chart.Marker("target at 16+ callers (short): 50 %", 50)))));
        return s;
    }
}
