// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.RedoRequest;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import io.walredo.testing.FakeRedoModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * What a continuous JFR recording costs the redo path: throughput and latency of the short request with and
 * without a recording of JFR's {@code default} settings (the ones {@code -XX:StartFlightRecording} uses), in one
 * run, side by side.
 *
 * <p>Method: one manager, {@code tenants} tenants, {@code callers} closed-loop virtual-thread callers (caller i on
 * tenant i mod tenants), the short request ({@link Workload#SHORT}, every page checked). After a warm-up phase,
 * {@code rounds} pairs of phases of {@code phase} each, alternating without and with a recording (to disk, 5 min
 * max age, as a continuous recording is kept), so a drift of the machine over the run hits both sides alike. Each
 * side's figures are the sum over its phases; latencies are HdrHistogram nearest-rank percentiles (0.1 %). The
 * recording is dumped at the end of each recorded phase and its size reported, to show what it held.
 *
 * <p>Not registered in {@code BenchSuite}; run it with {@code main} (arguments: seconds per phase, rounds,
 * tenants, callers; defaults 10, 3, 4, 16). Reference numbers: none yet.
 */
final class JfrOverheadScenario {
    private static final Duration WARM_UP = Duration.ofSeconds(3);

    private JfrOverheadScenario() {}

    /** One side's totals: every phase without, or every phase with, a recording. */
    private static final class Side {
        final Histogram latency = new Histogram(Stats.SIGNIFICANT_DIGITS);
        long requests;
        long nanos;
        long recordedBytes;
    }

    /**
     * Runs the comparison.
     *
     * @param fake the fake redo binary
     * @param phase the length of each phase
     * @param rounds pairs of phases (without, with)
     * @param tenants tenants, one sidecar each
     * @param callers closed-loop callers
     * @return the report section
     */
    static Section run(Path fake, Duration phase, int rounds, int tenants, int callers) throws Exception {
        RedoRequest request = Workload.SHORT.request();
        byte[] expected = Workload.SHORT.expectedPage();
        TenantShardId[] ids = new TenantShardId[tenants];
        for (int t = 0; t < tenants; t++) {
            ids[t] = TenantShardId.of(0x6a66_7200_0000_0000L + t, t);
        }
        WalRedoConfig config =
                WalRedoConfig.builder().redoBinary(Workload.PG_VERSION, fake).build();
        Recorder latency = new Recorder(Stats.SIGNIFICANT_DIGITS);
        LongAdder done = new LongAdder();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Side without = new Side();
        Side with = new Side();
        Path dumpDir = Files.createTempDirectory("jfr-overhead");
        List<Thread> threads = new ArrayList<>();
        try (WalRedoManager manager = WalRedoManager.create(config)) {
            for (int c = 0; c < callers; c++) {
                TenantShardId tenant = ids[c % tenants];
                threads.add(Thread.ofVirtual().name("jfr-overhead-" + c).start(() -> {
                    try {
                        while (!stop.get()) {
                            long t0 = System.nanoTime();
                            Workload.SHORT.run(manager, tenant, request, expected);
                            latency.recordValue(System.nanoTime() - t0);
                            done.increment();
                        }
                    } catch (WalRedoException | RuntimeException e) {
                        failure.compareAndSet(null, e);
                        stop.set(true);
                    }
                }));
            }
            Thread.sleep(WARM_UP.toMillis());
            latency.getIntervalHistogram();
            for (int r = 0; r < rounds && !stop.get(); r++) {
                measure(phase, latency, done, without);
                try (Recording recording = new Recording(Configuration.getConfiguration("default"))) {
                    recording.setToDisk(true);
                    recording.setMaxAge(Duration.ofMinutes(5));
                    recording.start();
                    measure(phase, latency, done, with);
                    Path dump = dumpDir.resolve("round-" + r + ".jfr");
                    recording.dump(dump);
                    with.recordedBytes += Files.size(dump);
                    Files.delete(dump);
                }
            }
            stopAndJoin(stop, threads);
        } finally {
            stopAndJoin(stop, threads);
            Files.deleteIfExists(dumpDir);
        }
        if (failure.get() != null) {
            throw new IllegalStateException("a caller failed; the comparison measures nothing", failure.get());
        }
        return report(phase, rounds, tenants, callers, without, with);
    }

    /** Stops the callers and waits for them, while the manager is still open so no call fails for its close. */
    private static void stopAndJoin(AtomicBoolean stop, List<Thread> threads) throws InterruptedException {
        stop.set(true);
        for (Thread t : threads) {
            if (!t.join(Duration.ofSeconds(30))) {
                throw new IllegalStateException(t.getName() + " still running 30 s after stop");
            }
        }
    }

    /** One phase: resets the interval, waits {@code phase}, adds what was done to {@code side}. */
    private static void measure(Duration phase, Recorder latency, LongAdder done, Side side)
            throws InterruptedException {
        latency.getIntervalHistogram();
        long before = done.sum();
        long t0 = System.nanoTime();
        TimeUnit.NANOSECONDS.sleep(phase.toNanos());
        side.latency.add(latency.getIntervalHistogram());
        side.requests += done.sum() - before;
        side.nanos += System.nanoTime() - t0;
    }

    private static Section report(Duration phase, int rounds, int tenants, int callers, Side without, Side with) {
        Table t = new Table("JFR", "redos", "redos/s", "p50", "p90", "p99", "max", "recording dumped");
        double offRate = row(t, "off", without);
        double onRate = row(t, "default continuous recording", with);
        Section s = new Section(
                "JFR overhead",
                "One manager, " + tenants + " tenants, " + callers + " closed-loop callers, the short request; "
                        + rounds + " pairs of " + phase.toSeconds() + " s phases alternating without and with a "
                        + "recording of JFR's default settings (to disk, 5 min max age), after a "
                        + WARM_UP.toSeconds() + " s warm-up. Latencies are nearest-rank over every call of a side.");
        s.table("", t);
        s.note("With the recording, throughput is " + Stats.ratio(onRate / offRate) + " that without.");
        return s;
    }

    private static double row(Table t, String name, Side side) {
        double rate = side.requests / (side.nanos / 1e9);
        if (side.requests == 0) {
            t.row(name, 0, "0", "-", "-", "-", "-", "-");
            return rate;
        }
        Stats st = Stats.of(side.latency);
        t.row(
                name,
                String.format("%,d", side.requests),
                String.format("%,.0f", rate),
                Stats.time(st.p50()),
                Stats.time(st.p90()),
                Stats.time(st.p99()),
                Stats.time(st.max()),
                side.recordedBytes == 0 ? "-" : String.format("%,d KB", side.recordedBytes / 1024));
        return rate;
    }

    /**
     * Runs {@link #run} and prints the section. Arguments: seconds per phase, rounds, tenants, callers.
     *
     * @param args up to four integers; defaults 10, 3, 4, 16
     */
    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int tenants = args.length > 2 ? Integer.parseInt(args[2]) : 4;
        int callers = args.length > 3 ? Integer.parseInt(args[3]) : 16;
        Section s = run(FakeRedoModel.binary(), Duration.ofSeconds(seconds), rounds, tenants, callers);
        System.out.println(s.console());
    }
}
