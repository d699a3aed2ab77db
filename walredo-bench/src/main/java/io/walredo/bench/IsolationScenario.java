// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.RedoRequest;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;

/**
 * Benchmark 5, the slow-server effect: 100 tenants with 10 closed-loop callers each; the healthy tenants'
 * throughput with every sidecar fast, against the same with one tenant's sidecar answering after 1 s
 * ({@code --delay-us 1000000}). Phases alternate in ABBA order (fast, slow, slow, fast, ...).
 */
final class IsolationScenario {
    static final int TENANTS = 100;
    static final int CALLERS_PER_TENANT = 10;
    /** The environment variable naming the slow tenant for {@link #slowOneTenantWrapper}. */
    static final String SLOW_ENV = "WALREDO_BENCH_SLOW_TENANT";

    private final BenchSuite.Mode mode;
    private final Path fake;
    private final Path workDir;

    IsolationScenario(BenchSuite.Mode mode, Path fake, Path workDir) {
        this.mode = mode;
        this.fake = fake;
        this.workDir = workDir;
    }

    Section run(BenchSuite.Progress progress) throws Exception {
        Path wrapper = wrapper();
        TenantShardId[] tenants = new TenantShardId[TENANTS];
        for (int i = 0; i < TENANTS; i++) {
            tenants[i] = TenantShardId.of(0x150_1a7eL, i);
        }
        Workload w = Workload.SHORT;
        RedoRequest request = w.request();
        byte[] expected = w.expectedPage();
        Table t = new Table("phase", "slow tenant", "healthy tenants' redos/s", "slow tenant's redos/s", "errors");
        double fastSum = 0;
        double slowSum = 0;
        List<Double> fastRates = new ArrayList<>();
        List<Double> slowRates = new ArrayList<>();
        for (int round = 0; round < mode.isolationRounds(); round++) {
            // ABBA order (fast, slow, slow, fast, ...) so that warm-up and drift weigh on both kinds alike.
            boolean[] order = round % 2 == 0 ? new boolean[] {false, true} : new boolean[] {true, false};
            for (boolean slow : order) {
                String label = (slow ? "one slow" : "all fast") + " #" + (round + 1);
                double[] r = phase(progress, label, wrapper, tenants, slow, w, request, expected);
                t.row(
                        label,
                        slow ? "yes (1 s per answer)" : "no",
                        String.format("%,.0f", r[0]),
                        String.format("%.1f", r[1]),
                        String.format("%.0f", r[2]));
                if (slow) {
                    slowSum += r[0];
                    slowRates.add(r[0]);
                } else {
                    fastSum += r[0];
                    fastRates.add(r[0]);
                }
            }
        }
        double kept = slowSum / fastSum;
        Section s = new Section(
                "Isolation: one slow tenant among 100",
                TENANTS + " tenants, " + CALLERS_PER_TENANT + " closed-loop virtual-thread callers each ("
                        + TENANTS * CALLERS_PER_TENANT + " in all), short requests, every page checked. Each phase "
                        + "runs " + mode.isolationSeconds()
                        + " s after all sidecars are up and a 2 s warm-up; phases run in ABBA order; in the \"one slow\" "
                        + "phases tenant 0's sidecar sleeps 1 s before every answer (`--delay-us 1000000`). Both "
                        + "kinds of phase start the fake through the same wrapper script. \"Healthy\" counts "
                        + "tenants 1 to 99 in both kinds of phase. While tenant 0 is slow its 10 callers are "
                        + "parked, which frees about 1 % of the CPU for the others: a figure near 100 % still "
                        + "hides an interference of that size.");
        s.table("", t);
        s.target(
                "isolation: the 99 healthy tenants keep at least 95 % of their throughput",
                String.format("%.1f %%", kept * 100), kept, 0.95, false);
        if (fastRates.size() > 1) {
            s.note(String.format(
                    "Noise: phases of the same kind differed by up to %.1f %% (all fast) and %.1f %% (one "
                            + "slow) in this run, so a difference between the kinds smaller than that is within the "
                            + "machine's run-to-run noise.",
                    spread(fastRates), spread(slowRates)));
        }
        return s;
    }

    /** Returns {healthy redos/s, slow tenant redos/s, errors}. */
    private double[] phase(
            BenchSuite.Progress progress,
            String label,
            Path wrapper,
            TenantShardId[] tenants,
            boolean slow,
            Workload w,
            RedoRequest request,
            byte[] expected)
            throws Exception {
        LongAdder[] done = new LongAdder[tenants.length];
        LongAdder errors = new LongAdder();
        AtomicBoolean measuring = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        WalRedoManager manager = WalRedoManager.create(WalRedoConfig.builder()
                .redoBinary(Workload.PG_VERSION, wrapper)
                .environment(Map.of(SLOW_ENV, slow ? tenants[0].toString() : "none"))
                .redoTimeout(Duration.ofSeconds(60))
                .build());
        try {
            progress.step("isolation " + label + ": starting " + tenants.length + " sidecars");
            for (TenantShardId tenant : tenants) {
                manager.ping(tenant, Workload.PG_VERSION);
            }
            for (int i = 0; i < tenants.length; i++) {
                done[i] = new LongAdder();
                TenantShardId tenant = tenants[i];
                LongAdder counter = done[i];
                for (int c = 0; c < CALLERS_PER_TENANT; c++) {
                    threads.add(Thread.ofVirtual().start(() -> {
                        while (!stop.get()) {
                            try {
                                w.run(manager, tenant, request, expected);
                                if (measuring.get()) {
                                    counter.increment();
                                }
                            } catch (Exception e) {
                                if (!stop.get()) {
                                    errors.increment();
                                }
                            }
                        }
                    }));
                }
            }
            progress.step("isolation " + label + ": warm-up");
            Thread.sleep(2000);
            long before = sum(done, 1);
            long slowBefore = done[0].sum();
            measuring.set(true);
            long t0 = System.nanoTime();
            long end = t0 + Duration.ofSeconds(mode.isolationSeconds()).toNanos();
            while (System.nanoTime() < end) {
                Thread.sleep(1000);
                progress.step(String.format("isolation %s: %,d healthy redos", label, sum(done, 1) - before));
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            long healthy = sum(done, 1) - before;
            long slowDone = done[0].sum() - slowBefore;
            stop.set(true);
            return new double[] {healthy / seconds, slowDone / seconds, errors.sum()};
        } finally {
            stop.set(true);
            manager.close();
            for (Thread th : threads) {
                th.join();
            }
        }
    }

    /** (max - min) / min of a series, in per cent. */
    static double spread(List<Double> rates) {
        double min = rates.stream().mapToDouble(Double::doubleValue).min().orElseThrow();
        double max = rates.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
        return (max - min) / min * 100;
    }

    private static long sum(LongAdder[] done, int from) {
        long s = 0;
        for (int i = from; i < done.length; i++) {
            s += done[i].sum();
        }
        return s;
    }

    private Path wrapper() throws IOException {
        return slowOneTenantWrapper(fake, workDir.resolve("slow-one-tenant.sh"));
    }

    /**
     * Writes {@code p}: a wrapper that runs {@code fake}, adding {@code --delay-us 1000000} for the tenant named in
     * the environment variable {@value #SLOW_ENV} (a sidecar's environment is exactly the configured one).
     */
    static Path slowOneTenantWrapper(Path fake, Path p) throws IOException {
        Files.writeString(
                p,
                "#!/bin/sh\n"
                        + "# argv: --wal-redo [extra...] --tenant-shard-id ID\n"
                        + "for a in \"$@\"; do last=$a; done\n"
                        + "if [ \"$last\" = \"$" + SLOW_ENV + "\" ]; then exec '" + fake
                        + "' \"$@\" --delay-us 1000000; fi\n"
                        + "exec '" + fake + "' \"$@\"\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }
}
