// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.walredo.AttemptType;
import io.walredo.KillCause;
import io.walredo.SidecarCrashedException;
import io.walredo.SidecarStatus;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import io.walredo.WalRedoMetrics;
import io.walredo.bench.RequestMix.Work;
import io.walredo.micrometer.WalRedoMeters;
import io.walredo.testing.ChildPid;
import io.walredo.testing.FakeRedoModel;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.StringJoiner;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import picocli.CommandLine;

/**
 * The main job: a multi-tenant redo workload against a redo binary, by default the fake the build makes.
 *
 * <p>Workload: a tenth of the tenants are hot and take half the requests; the others are visited by a window
 * that slides by half its width every idle timeout, so tenants go quiet, their sidecars are quiesced, and
 * come back to a respawn while the run goes on. Requests and tenants come from {@link RequestMix}, which the
 * soak shares: Neon-shaped, three in four "short" (Neon's walredo benchmark request, 1132 bytes with two records,
 * or the same shape with other records), one in four "medium" (227 small records, about 26 KiB). One hot
 * tenant's sidecar is SIGKILLed from outside every
 * {@link #CRASH_EVERY}, like an OOM kill. With the fake binary every page is checked against
 * {@link FakeRedoModel}; with the PostgreSQL 15 redo binary of {@code ./scripts/build-postgres} the requests are
 * real pages a throwaway PostgreSQL 15 cluster wrote, each checked against the server's page
 * ({@link RealPagesWorkload}); with another real postgres (Neon's, 14) only Neon's short request is sent, unchecked,
 * because its records are real PostgreSQL 14 WAL.
 *
 * <p>Prints a progress line every second and a summary table at the end. Exit status: 0 when every request
 * returned the right page, 1 when a request failed or a page was wrong or the binary could not serve at all,
 * 2 for a usage error.
 */
public final class Demo {
    /** The PostgreSQL version of every request: Neon's short request vector is PostgreSQL 14 WAL. */
    static final int PG_VERSION = RequestMix.PG_VERSION;
    /** How often the crashing tenant's sidecar is SIGKILLed. */
    static final Duration CRASH_EVERY = Duration.ofSeconds(2);
    /** Budget of one redo call (the library's default is 60 s; a demo on a busy machine should not wait that long). */
    static final Duration REDO_TIMEOUT = Duration.ofSeconds(10);
    /**
     * How often peak fds, live sidecars, threads and the sidecars' memory are sampled ({@code metrics()} reads each
     * sidecar's /proc/PID/smaps_rollup: a few ms per sample with a hundred sidecars).
     */
    private static final Duration SAMPLE_EVERY = Duration.ofMillis(100);
    /** Exit status of a usage error. */
    static final int EXIT_USAGE = CliArgs.EXIT_USAGE;

    private Demo() {}

    /**
     * Parsed command line.
     *
     * @param tenants tenant count
     * @param duration how long callers run
     * @param idleTimeout the manager's idle timeout (and the workload's wave length)
     * @param callers virtual-thread callers
     * @param redoBinary the binary to run
     * @param libDir its library directory, if it needs one
     * @param fake whether {@code redoBinary} is the fake (pages are then checked)
     * @param extraArgs arguments after {@code --wal-redo} (tests pass fault flags of the fake here)
     * @param realPages a corpus of real pages ({@code postgres/capture-corpus}) to request instead of the default
     */
    record Options(
            int tenants,
            Duration duration,
            Duration idleTimeout,
            int callers,
            Path redoBinary,
            Optional<Path> libDir,
            boolean fake,
            List<String> extraArgs,
            Optional<Path> realPages,
            int warmSpares,
            Optional<Path> prometheus) {
        Options(
                int tenants,
                Duration duration,
                Duration idleTimeout,
                int callers,
                Path redoBinary,
                Optional<Path> libDir,
                boolean fake,
                List<String> extraArgs,
                Optional<Path> realPages) {
            this(
                    tenants,
                    duration,
                    idleTimeout,
                    callers,
                    redoBinary,
                    libDir,
                    fake,
                    extraArgs,
                    realPages,
                    DEFAULT_WARM_SPARES,
                    Optional.empty());
        }
    }

    /** Warm spares by default: the demo quiesces sidecars every idle timeout, so first requests are frequent. */
    static final int DEFAULT_WARM_SPARES = 2;
    /** Callers by default with the fake; a real postgres redoes for real, so fewer keep 2 cores as busy. */
    static final int DEFAULT_CALLERS = 300;

    static final int DEFAULT_CALLERS_REAL = 32;

    /**
     * Runs the demo; see {@code ./scripts/demo --help}.
     *
     * @param args the command line
     * @throws InterruptedException if interrupted while waiting for the callers
     */
    public static void main(String[] args) throws InterruptedException {
        Optional<Options> o = CliArgs.parseOrExit("demo", args, Demo::parse, Demo::usage);
        if (o.isPresent()) {
            System.exit(run(o.get(), System.out));
        }
    }

    static String usage() {
        return CliArgs.usage(new Command());
    }

    /** The demo's command line: picocli fills these fields; see {@link CliArgs}. */
    @CommandLine.Command(
            name = "./scripts/demo",
            sortOptions = false,
            usageHelpWidth = 110,
            description = "Runs the walredo manager under a pageserver-like load against the fake redo binary (or a "
                    + "real one), checking every page, and prints a summary.",
            footer = "D: 500ms, 30s, 2m, or a bare number of seconds. Exit status: 0 if every page was right and no "
                    + "request failed, 1 otherwise, 2 for a usage error.")
    static final class Command {
        @CommandLine.Mixin
        CliArgs.TenantsOption tenants;

        @CommandLine.Option(
                names = "--duration",
                paramLabel = "D",
                defaultValue = "30s",
                converter = CliArgs.Seconds.class,
                description = "how long to run (default ${DEFAULT-VALUE})")
        Duration duration;

        @CommandLine.Option(
                names = "--idle-timeout",
                paramLabel = "D",
                defaultValue = "2s",
                converter = CliArgs.Seconds.class,
                description = "quiesce sidecars idle this long (default ${DEFAULT-VALUE})")
        Duration idleTimeout;

        @CommandLine.Option(
                names = "--callers",
                paramLabel = "N",
                converter = CliArgs.PositiveInt.class,
                description = "concurrent virtual-thread callers (default " + DEFAULT_CALLERS + " with the fake, "
                        + DEFAULT_CALLERS_REAL + " with --redo-binary: real redo costs real CPU, and 300 callers would "
                        + "queue seconds of it per hot tenant, which admission refuses)")
        Integer callers;

        @CommandLine.Option(
                names = "--warm-spares",
                paramLabel = "N",
                defaultValue = "" + DEFAULT_WARM_SPARES,
                converter = CliArgs.NonNegativeInt.class,
                description = "warm spare sidecars (WalRedoConfig.warmSpares), 0 for none (default ${DEFAULT-VALUE})")
        int warmSpares;

        @CommandLine.Option(
                names = "--prometheus",
                paramLabel = "FILE",
                description = "bind the manager to Micrometer (walredo-micrometer's WalRedoMeters on a Prometheus "
                        + "registry) and write the registry's scrape to FILE at the end")
        Path prometheus;

        @CommandLine.Option(
                names = "--redo-binary",
                paramLabel = "PATH",
                description = "a postgres with --wal-redo support; default: the fake the build made, whose pages "
                        + "are then checked against its model. PostgreSQL 15 from ./scripts/build-postgres: real pages "
                        + "of a throwaway cluster, checked against the server's (postgres/capture-corpus, cached); a "
                        + "Neon-built PostgreSQL 14: Neon's short request, unchecked")
        Path redoBinary;

        @CommandLine.Option(
                names = "--real-pages",
                paramLabel = "FILE",
                description = "with --redo-binary: the pages to request (a postgres/capture-corpus file)")
        Path realPages;

        @CommandLine.Option(
                names = "--lib-dir",
                paramLabel = "PATH",
                description = "library directory of --redo-binary, passed to it as LD_LIBRARY_PATH")
        Path libDir;

        @CommandLine.Mixin
        CliArgs.HelpOption help;
    }

    /** Parses the command line; null for {@code --help}. Throws IllegalArgumentException naming the problem. */
    static Options parse(String[] args) {
        Command c = CliArgs.parse(new Command(), args);
        if (c == null) {
            return null;
        }
        boolean fake = c.redoBinary == null;
        if (fake && c.libDir != null) {
            throw new IllegalArgumentException("--lib-dir needs --redo-binary");
        }
        if (fake && c.realPages != null) {
            throw new IllegalArgumentException("--real-pages needs --redo-binary");
        }
        Path binary = fake ? FakeRedoModel.binary() : c.redoBinary.toAbsolutePath();
        int callers = c.callers != null ? c.callers : fake ? DEFAULT_CALLERS : DEFAULT_CALLERS_REAL;
        return new Options(
                c.tenants.tenants(),
                c.duration,
                c.idleTimeout,
                callers,
                binary,
                Optional.ofNullable(c.libDir).map(Path::toAbsolutePath),
                fake,
                List.of(),
                Optional.ofNullable(c.realPages).map(Path::toAbsolutePath),
                c.warmSpares,
                Optional.ofNullable(c.prometheus).map(Path::toAbsolutePath));
    }

    /** Runs the demo with {@code o}, printing to {@code out}; returns the exit status. */
    static int run(Options o, PrintStream out) throws InterruptedException {
        Optional<RealPagesWorkload> real;
        try {
            real = o.fake() ? Optional.empty() : RealPagesWorkload.forBinary(o.redoBinary(), o.realPages(), out);
        } catch (IOException e) {
            out.println("demo: " + e.getMessage());
            return 1;
        }
        int pgVersion = real.map(RealPagesWorkload::pgVersion).orElse(PG_VERSION);
        boolean checked = o.fake() || real.isPresent();
        WalRedoConfig config;
        PrometheusMeterRegistry registry =
                o.prometheus().isPresent() ? new PrometheusMeterRegistry(PrometheusConfig.DEFAULT) : null;
        try {
            WalRedoConfig.Builder b = WalRedoConfig.builder()
                    .idleTimeout(o.idleTimeout())
                    .warmSpares(o.warmSpares())
                    .redoTimeout(REDO_TIMEOUT)
                    .extraArgs(o.extraArgs());
            if (registry != null) {
                b.metricsListener(WalRedoMeters.builder(registry)
                        .tags(Tags.of("app", "walredo-demo"))
                        .build());
            }
            if (o.libDir().isPresent()) {
                b.redoBinary(pgVersion, o.redoBinary(), o.libDir().get());
            } else {
                b.redoBinary(pgVersion, o.redoBinary());
            }
            config = b.build();
        } catch (IllegalArgumentException e) {
            out.println("demo: " + e.getMessage());
            return EXIT_USAGE;
        }
        List<Work> work =
                real.isPresent() ? real.get().work() : o.fake() ? RequestMix.fake() : RequestMix.neonShortOnly();
        TenantShardId[] tenants = RequestMix.tenants(o.tenants());
        out.printf(
                "walredo demo: %d tenants (%d hot), %d callers, %s, idle timeout %s, %d warm spares%n",
                tenants.length,
                hotCount(tenants.length),
                o.callers(),
                text(o.duration()),
                text(o.idleTimeout()),
                o.warmSpares());
        out.printf("  binary %s%s%n", o.redoBinary(), o.fake() ? " (the fake; every page is checked)" : "");
        out.printf(
                "  requests: %s; tenant %s's sidecar is SIGKILLed every %s%n",
                real.isPresent() ? real.get().describe() : RequestMix.describe(work), tenants[0], text(CRASH_EVERY));

        WalRedoManager manager = WalRedoManager.create(config);
        long fdsBefore = Probes.fds();
        Result r;
        try {
            Optional<String> problem = probe(manager, tenants[0], o.redoBinary(), pgVersion);
            if (problem.isPresent()) {
                out.println(problem.get());
                return 1;
            }
            r = drive(o, checked, manager, tenants, work, out);
        } finally {
            manager.close();
        }
        summary(o, checked, manager.metrics(), r, fdsBefore, Probes.fds(), out);
        if (registry != null) {
            try {
                Files.writeString(o.prometheus().get(), registry.scrape());
                out.println("Prometheus scrape written to " + o.prometheus().get());
            } catch (IOException e) {
                out.println("demo: cannot write the Prometheus scrape: " + e.getMessage());
                return 1;
            }
        }
        return r.wrong() == 0 && r.errors() == 0 ? 0 : 1;
    }

    /**
     * Pings one tenant's sidecar, so a binary that cannot serve fails the demo at once with an explanation,
     * not after every caller has failed. Empty when the ping was answered.
     */
    static Optional<String> probe(WalRedoManager manager, TenantShardId tenant, Path binary, int pgVersion) {
        try {
            manager.ping(tenant, pgVersion);
            return Optional.empty();
        } catch (WalRedoException e) {
            return Optional.of(diagnose(binary, e));
        }
    }

    /** Explains why {@code binary} could not answer a ping, naming the likely cause and what to do. */
    static String diagnose(Path binary, WalRedoException e) {
        List<String> tail = e instanceof SidecarCrashedException c ? c.stderrTail() : List.of();
        String said = String.join(" ", tail);
        String neon =
                "use the postgres of a Neon build (pg_install/v14/bin/postgres) with --lib-dir pg_install/v14/lib";
        if (said.contains("\"root\" execution of the PostgreSQL server is not permitted")) {
            String m =
                    "demo: " + binary + " refused to start as root (\"root\" execution of the PostgreSQL server is not"
                            + " permitted); run the demo as an unprivileged user.";
            if (!mentionsWalRedo(binary)) {
                m += " Besides, " + binary + " lacks walredo support: it does not contain the option --wal-redo,"
                        + " so it is a PostgreSQL built without Neon's walredo; " + neon + ".";
            }
            return m;
        }
        if (said.contains("--wal-redo requires a value")) {
            return "demo: " + binary + " lacks walredo support: it is a PostgreSQL built without Neon's walredo (it"
                    + " read --wal-redo as an ordinary --name=value setting and said \"--wal-redo requires a value\"); "
                    + neon + ".";
        }
        return "demo: " + binary + " did not answer the walredo protocol; is it a Neon-built postgres with --wal-redo"
                + " support (" + neon + ")? " + e.getMessage();
    }

    /** Whether the file contains the bytes {@code --wal-redo}, as a Neon-built postgres does (its argv check). */
    static boolean mentionsWalRedo(Path binary) {
        byte[] needle = "--wal-redo".getBytes(StandardCharsets.US_ASCII);
        try {
            byte[] hay = Files.readAllBytes(binary);
            outer:
            for (int i = 0; i + needle.length <= hay.length; i++) {
                for (int j = 0; j < needle.length; j++) {
                    if (hay[i + j] != needle[j]) {
                        continue outer;
                    }
                }
                return true;
            }
            return false;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * What {@link #drive} measured outside the library's own metrics.
     *
     * @param seconds how long the callers ran
     * @param shortDone short requests that returned a page
     * @param mediumDone medium requests that returned a page
     * @param errors requests that threw
     * @param errorKinds of those, by exception class
     * @param wrong pages that differ from the fake's model
     * @param sigkills SIGKILLs the demo sent to the crashing tenant's sidecar
     * @param peakLiveSidecars most live sidecars seen
     * @param peakPlatformThreads the JVM's peak count of platform threads
     * @param peakLibraryThreads most platform threads named {@code walredo-*} seen at once
     * @param peakFds most open fds seen in this process
     * @param peakSidecarMemory the sidecars' summed RSS and PSS in the sample whose PSS sum was the largest
     * @param peakMemorySidecars how many sidecars that sample measured (0 if none ever was)
     */
    record Result(
            double seconds,
            long shortDone,
            long mediumDone,
            long errors,
            Map<String, Long> errorKinds,
            long wrong,
            long sigkills,
            int peakLiveSidecars,
            int peakPlatformThreads,
            int peakLibraryThreads,
            long peakFds,
            SidecarStatus.Memory peakSidecarMemory,
            int peakMemorySidecars) {}

    static int hotCount(int tenants) {
        return Math.max(1, tenants / 10);
    }

    private static Result drive(
            Options o,
            boolean checked,
            WalRedoManager manager,
            TenantShardId[] tenants,
            List<Work> work,
            PrintStream out)
            throws InterruptedException {
        LongAdder shortDone = new LongAdder();
        LongAdder mediumDone = new LongAdder();
        LongAdder errors = new LongAdder();
        LongAdder wrong = new LongAdder();
        LongAdder sigkills = new LongAdder();
        Map<String, LongAdder> errorKinds = new ConcurrentHashMap<>();
        IntervalHistogram interval = new IntervalHistogram();
        AtomicBoolean stop = new AtomicBoolean();
        int hot = hotCount(tenants.length);
        int cold = tenants.length - hot;
        int window = Math.max(1, cold / 4);
        long waveNanos = o.idleTimeout().toNanos();
        long start = System.nanoTime();
        CountDownLatch finished = new CountDownLatch(o.callers());
        for (int c = 0; c < o.callers(); c++) {
            SplittableRandom rnd = new SplittableRandom(1000 + c);
            Thread.ofVirtual().name("demo-caller-" + c).start(() -> {
                try {
                    while (!stop.get()) {
                        int t;
                        if (cold == 0 || rnd.nextBoolean()) {
                            t = rnd.nextInt(hot);
                        } else {
                            long wave = (System.nanoTime() - start) / waveNanos;
                            t = hot + (int) Math.floorMod(wave * Math.max(1, window / 2) + rnd.nextInt(window), cold);
                        }
                        Work w = work.get(rnd.nextInt(work.size()));
                        long t0 = System.nanoTime();
                        try {
                            byte[] page = manager.redo(tenants[t], w.request(), AttemptType.READ_PAGE);
                            interval.record(System.nanoTime() - t0);
                            if (!w.check().test(page)) {
                                wrong.increment();
                            }
                            (w.kind() == RequestMix.Kind.MEDIUM ? mediumDone : shortDone).increment();
                        } catch (WalRedoException e) {
                            errors.increment();
                            errorKinds
                                    .computeIfAbsent(e.getClass().getSimpleName(), k -> new LongAdder())
                                    .increment();
                        }
                    }
                } finally {
                    finished.countDown();
                }
            });
        }
        // The demo plays the OOM killer. Library code never signals a pid it does not own (pids are reused); here
        // ChildPid pins the pid read from status() with a pidfd and checks its start time before the SIGKILL, so a
        // sidecar reaped in between (and its pid handed to another process) is left alone.
        Thread crasher = Thread.ofVirtual().name("demo-crasher").start(() -> {
            while (!stop.get()) {
                try {
                    Thread.sleep(CRASH_EVERY);
                } catch (InterruptedException e) {
                    return;
                }
                for (SidecarStatus s : manager.status()) {
                    if (s.tenant().equals(tenants[0])
                            && ChildPid.of(s.pid())
                                    .map(c -> c.signal(ChildPid.Signal.SIGKILL))
                                    .orElse(false)) {
                        sigkills.increment();
                    }
                }
            }
        });

        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        int peakLive = 0;
        int peakLibraryThreads = 0;
        long peakFds = 0;
        WalRedoMetrics peakMemory = manager.metrics();
        long end = start + o.duration().toNanos();
        long nextLine = start + TimeUnit.SECONDS.toNanos(1);
        long lastDone = 0;
        long lastLine = start;
        while (true) {
            long now = System.nanoTime();
            if (now >= end) {
                break;
            }
            Thread.sleep(Math.min(SAMPLE_EVERY.toMillis(), Math.max(1, TimeUnit.NANOSECONDS.toMillis(end - now))));
            now = System.nanoTime();
            WalRedoMetrics m = manager.metrics();
            peakLive = Math.max(peakLive, m.liveSidecars());
            peakFds = Math.max(peakFds, Probes.fds());
            if (m.sidecarMemory().pssBytes() > peakMemory.sidecarMemory().pssBytes()) {
                peakMemory = m;
            }
            if (now >= nextLine || now >= end) {
                peakLibraryThreads = Math.max(peakLibraryThreads, libraryThreads(threads));
                long done = shortDone.sum() + mediumDone.sum();
                out.printf(
                        "t=%3ds %8.0f req/s  p99 %7s  live %4d  spawns %5d  spares hit/miss %5d/%-5d quiesced %5d"
                                + "  crashed %4d  errors %d%s%n",
                        TimeUnit.NANOSECONDS.toSeconds(now - start),
                        (done - lastDone) * 1e9 / (now - lastLine),
                        text(interval.takeQuantile(0.99)),
                        m.liveSidecars(),
                        m.sidecarsStarted(),
                        m.spareHits(),
                        m.spareMisses(),
                        killed(m, KillCause.QUIESCE),
                        killed(m, KillCause.ERROR),
                        errors.sum(),
                        checked ? "  wrong pages " + wrong.sum() : "");
                lastDone = done;
                lastLine = now;
                nextLine += TimeUnit.SECONDS.toNanos(1);
            }
        }
        stop.set(true);
        crasher.interrupt();
        if (!finished.await(REDO_TIMEOUT.toSeconds() * 2, TimeUnit.SECONDS)) {
            out.println("demo: " + finished.getCount() + " callers still busy " + REDO_TIMEOUT.toSeconds() * 2
                    + " s after the end; shutting down anyway");
        }
        double secs = (System.nanoTime() - start) / 1e9;
        Map<String, Long> kinds = new TreeMap<>();
        errorKinds.forEach((k, v) -> kinds.put(k, v.sum()));
        return new Result(
                secs,
                shortDone.sum(),
                mediumDone.sum(),
                errors.sum(),
                kinds,
                wrong.sum(),
                sigkills.sum(),
                peakLive,
                threads.getPeakThreadCount(),
                peakLibraryThreads,
                peakFds,
                peakMemory.sidecarMemory(),
                peakMemory.sidecarsMeasured());
    }

    private static void summary(
            Options o, boolean checked, WalRedoMetrics m, Result r, long fdsBefore, long fdsAfter, PrintStream out) {
        long done = r.shortDone() + r.mediumDone();
        Map<String, String> rows = new java.util.LinkedHashMap<>();
        rows.put(
                "run",
                String.format(
                        "%.1f s, %d tenants, %d callers, idle timeout %s, %d warm spares",
                        r.seconds(), o.tenants(), o.callers(), text(o.idleTimeout()), o.warmSpares()));
        rows.put(
                "requests",
                String.format(
                        "%d (%.0f/s): %d short, %d medium", done, done / r.seconds(), r.shortDone(), r.mediumDone()));
        rows.put("wrong pages", checked ? Long.toString(r.wrong()) : "not checked (Neon's PostgreSQL 14 request)");
        StringJoiner kinds = new StringJoiner(", ");
        r.errorKinds().forEach((k, v) -> kinds.add(k + " " + v));
        rows.put("failed requests", r.errors() + (r.errorKinds().isEmpty() ? "" : ": " + kinds));
        rows.put(
                "redo latency p50 / p99 / max",
                text(m.redoLatency().p50()) + " / " + text(m.redoLatency().p99()) + " / "
                        + text(m.redoLatency().max()));
        rows.put(
                "spawn latency p50 / p99 / max",
                text(m.spawnLatency().p50()) + " / " + text(m.spawnLatency().p99()) + " / "
                        + text(m.spawnLatency().max()));
        rows.put("sidecars started / spawn failures", m.sidecarsStarted() + " / " + m.spawnFailures());
        long firsts = m.spareHits() + m.spareMisses();
        rows.put(
                "warm spares: hits / misses",
                o.warmSpares() == 0
                        ? "off (--warm-spares 0)"
                        : m.spareHits() + " / " + m.spareMisses()
                                + (firsts == 0
                                        ? ""
                                        : String.format(
                                                Locale.ROOT,
                                                " (%.0f %% of first requests handed a spare)",
                                                100.0 * m.spareHits() / firsts)));
        rows.put(
                "requests that waited for a spawn",
                m.spawnWait().count() == 0
                        ? "0"
                        : m.spawnWait().count() + ", waiting p50 "
                                + text(m.spawnWait().p50()) + " / p99 "
                                + text(m.spawnWait().p99()));
        StringJoiner killed = new StringJoiner(", ");
        for (KillCause c : KillCause.values()) {
            killed.add(c.name().toLowerCase(Locale.ROOT) + " " + killed(m, c));
        }
        rows.put("sidecars killed, by cause", killed.toString());
        rows.put("SIGKILLs sent by the demo", Long.toString(r.sigkills()));
        rows.put("retries on a fresh sidecar", Long.toString(m.retries()));
        rows.put("peak live sidecars", Integer.toString(r.peakLiveSidecars()));
        rows.put("live sidecars after shutdown", Integer.toString(m.liveSidecars()));
        rows.put(
                "sidecar stderr lines logged / rate-limited",
                m.stderrLinesLogged() + " / " + m.stderrLinesSuppressed());
        rows.put("peak platform threads (JVM / walredo-*)", r.peakPlatformThreads() + " / " + r.peakLibraryThreads());
        rows.put("open fds: at start / peak / after shutdown", fdsBefore + " / " + r.peakFds() + " / " + fdsAfter);
        rows.put("sidecars' RSS / PSS at the peak of PSS", sidecarMemory(r));
        out.println();
        table(out, rows);
    }

    /** Prints {@code rows} as an aligned two-column console table. */
    static void table(PrintStream out, Map<String, String> rows) {
        int width = rows.keySet().stream().mapToInt(String::length).max().orElse(0);
        String rule = "-".repeat(width + 2) + "+"
                + "-"
                        .repeat(rows.values().stream()
                                        .mapToInt(String::length)
                                        .max()
                                        .orElse(0)
                                + 2);
        out.println(rule);
        rows.forEach((k, v) -> out.printf("%-" + width + "s  | %s%n", k, v));
        out.println(rule);
    }

    /** The sidecars' summed RSS and PSS at the sample with the largest PSS sum, and the average per sidecar. */
    private static String sidecarMemory(Result r) {
        int n = r.peakMemorySidecars();
        if (n == 0) {
            return "not measured (no sidecar's /proc/PID/smaps_rollup could be read)";
        }
        SidecarStatus.Memory m = r.peakSidecarMemory();
        return bytes(m.rssBytes()) + " / " + bytes(m.pssBytes()) + " for " + n + " sidecars: " + bytes(m.rssBytes() / n)
                + " / " + bytes(m.pssBytes() / n) + " each";
    }

    private static String bytes(long b) {
        if (b >= 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f MiB", b / (1024.0 * 1024));
        }
        return String.format(Locale.ROOT, "%.0f KiB", b / 1024.0);
    }

    private static long killed(WalRedoMetrics m, KillCause c) {
        return m.sidecarsKilled().getOrDefault(c, 0L);
    }

    private static int libraryThreads(ThreadMXBean threads) {
        int n = 0;
        for (ThreadInfo t : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (t != null && t.getThreadName().startsWith("walredo-")) {
                n++;
            }
        }
        return n;
    }

    static String text(Duration d) {
        long us = TimeUnit.NANOSECONDS.toMicros(d.toNanos());
        if (us >= 1_000_000 && us % 1_000_000 == 0) {
            return us / 1_000_000 + " s";
        }
        if (us >= 10_000) {
            return us / 1000 + " ms";
        }
        return us >= 1000 ? String.format(Locale.ROOT, "%.1f ms", us / 1000.0) : us + " µs";
    }
}
