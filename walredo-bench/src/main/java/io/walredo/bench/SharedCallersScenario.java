// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.AttemptType;
import io.walredo.RedoRequest;
import io.walredo.RedoTimeoutException;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * Benchmark 5b, the slow-server puzzler of issue 19: {@value #TENANTS} tenants share one pool of {@value #CALLERS}
 * closed-loop virtual-thread callers, as a pageserver with a bounded worker pool does; each caller picks a tenant
 * uniformly at random for every redo (short request, {@link #DEADLINE} deadline). Measures the healthy tenants'
 * throughput with every sidecar fast against the same with tenant 0's sidecar answering after 1 s
 * ({@code --delay-us 1000000}), how many callers tenant 0 holds (sampled every {@value #SAMPLE_MILLIS} ms), and
 * the refusals ({@link TenantOverloadedException} by reason), timeouts, other errors and wrong pages. Phases
 * alternate in ABBA order, separately for the default configuration and for {@code maxQueuedPerTenant(}{@value
 * #QUEUE_BOUND}{@code )}; each phase has its own manager.
 */
final class SharedCallersScenario {
    static final int TENANTS = 20;
    static final int CALLERS = 200;
    static final Duration DEADLINE = Duration.ofSeconds(5);
    static final int QUEUE_BOUND = 4;
    /** Target: the healthy tenants' throughput with one slow tenant, as a share of the same with all fast. */
    static final double KEPT_TARGET = 0.90;

    private static final long SAMPLE_MILLIS = 100;
    private static final long WARM_UP_MILLIS = 2000;
    private static final int ERROR_EXAMPLES = 5;
    /** How long a refused caller pauses before its next pick. */
    private static final long REFUSAL_PAUSE_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

    private static final String SLOW_ENV = IsolationScenario.SLOW_ENV;

    /** A configuration under test: its label in the table, a short one for the chart's legend, its queue bound. */
    private record Config(String label, String legend, int maxQueuedPerTenant) {}

    /** One phase's figures; rates, samples, refusals and timeouts cover the measured window only. */
    private record PhaseResult(
            double healthyPerSecond,
            double slowPerSecond,
            double heldMean,
            int heldMax,
            long queueBoundRefusals,
            long expectedWaitRefusals,
            long timeouts,
            long otherErrors,
            long wrongPages) {}

    private final BenchSuite.Mode mode;
    private final Path fake;
    private final Path workDir;

    SharedCallersScenario(BenchSuite.Mode mode, Path fake, Path workDir) {
        this.mode = mode;
        this.fake = fake;
        this.workDir = workDir;
    }

    Section run(BenchSuite.Progress progress) throws Exception {
        Path wrapper = IsolationScenario.slowOneTenantWrapper(fake, workDir.resolve("slow-one-of-shared.sh"));
        TenantShardId[] tenants = new TenantShardId[TENANTS];
        for (int i = 0; i < TENANTS; i++) {
            tenants[i] = TenantShardId.of(0x5ba7_ed0L, i);
        }
        Workload w = Workload.SHORT;
        RedoRequest request = w.request();
        byte[] expected = w.expectedPage();
        List<Config> configs = List.of(
                new Config("default", "default", WalRedoConfig.DEFAULT_MAX_QUEUED_PER_TENANT),
                new Config("maxQueuedPerTenant " + QUEUE_BOUND, "bound " + QUEUE_BOUND, QUEUE_BOUND));
        Section s = new Section(
                "Shared callers: one slow tenant among 20 sharing 200 callers",
                "The slow-server puzzler: a server answers all its tenants from one fixed pool of callers, and a "
                        + "slow backend holds every caller that lands on it for as long as it takes to answer, so "
                        + "the pool drains into the slow tenant and the healthy tenants starve although their own "
                        + "sidecars sit idle. Without admission the issue measured the healthy tenants in this "
                        + "shape at 3 % of their all-fast throughput (27,101 → 811 redos/s). " + TENANTS
                        + " tenants share " + CALLERS + " closed-loop virtual-thread callers; for every redo a "
                        + "caller picks a tenant uniformly at random (short request, `AttemptType.READ_PAGE`, "
                        + DEADLINE.toSeconds() + " s deadline, every page checked); a refused or timed-out caller "
                        + "picks again at once, a refused one after a 1 ms pause (a refusal does not park; "
                        + "callers retrying at once, even with `Thread.yield()`, kept every admitted call off the "
                        + "carriers when " + CALLERS + " callers met " + TENANTS + " × " + QUEUE_BOUND + " slots, "
                        + "and a server would answer \"busy\" and be asked again later anyway). Each phase builds a new manager, starts all "
                        + TENANTS
                        + " sidecars with a ping, warms up " + WARM_UP_MILLIS / 1000 + " s and measures "
                        + mode.isolationSeconds() + " s; phases run in ABBA order over " + mode.isolationRounds()
                        + " round(s), separately for each configuration: the default `WalRedoConfig` and one with "
                        + "`maxQueuedPerTenant(" + QUEUE_BOUND + ")`. In the \"one slow\" phases tenant 0's sidecar "
                        + "sleeps 1 s before every answer (`--delay-us 1000000`); both kinds of phase start the fake "
                        + "through the same wrapper script. \"Healthy\" counts tenants 1 to " + (TENANTS - 1)
                        + " in both kinds of phase. \"Callers held\" is the number of callers inside a call to "
                        + "tenant 0, sampled every " + SAMPLE_MILLIS + " ms. Rates, refusals "
                        + "(`TenantOverloadedException` by reason) and timeouts cover the measured window; other "
                        + "errors count from the warm-up on, wrong pages always. In the \"all fast\" phases "
                        + "tenant 0 takes 1/" + TENANTS + " of the calls, which do not count as healthy; when the "
                        + "slow tenant refuses at once those callers serve the healthy tenants instead, so a "
                        + "share somewhat above 100 % is what working admission looks like.");
        Table t = new Table(
                "config",
                "phase",
                "healthy tenants' redos/s",
                "slow tenant's redos/s",
                "callers held by the slow tenant (mean / max)",
                "refusals (queue bound / expected wait)",
                "timeouts",
                "other errors",
                "wrong pages");
        ConcurrentLinkedQueue<String> errorExamples = new ConcurrentLinkedQueue<>();
        List<Chart.Series> series = new ArrayList<>();
        List<String> noise = new ArrayList<>();
        long wrongPages = 0;
        for (int g = 0; g < configs.size(); g++) {
            Config config = configs.get(g);
            List<Double> fastRates = new ArrayList<>();
            List<Double> slowRates = new ArrayList<>();
            List<double[]> fastPoints = new ArrayList<>();
            List<double[]> slowPoints = new ArrayList<>();
            for (int round = 0; round < mode.isolationRounds(); round++) {
                // ABBA order (fast, slow, slow, fast, ...) so that warm-up and drift weigh on both kinds alike.
                boolean[] order = round % 2 == 0 ? new boolean[] {false, true} : new boolean[] {true, false};
                for (boolean slow : order) {
                    String label = (slow ? "one slow" : "all fast") + " #" + (round + 1);
                    PhaseResult r =
                            phase(progress, config, label, wrapper, tenants, slow, request, expected, errorExamples);
                    t.row(
                            config.label(),
                            label,
                            String.format("%,.0f", r.healthyPerSecond()),
                            String.format("%,.1f", r.slowPerSecond()),
                            String.format("%.1f / %d", r.heldMean(), r.heldMax()),
                            String.format("%,d / %,d", r.queueBoundRefusals(), r.expectedWaitRefusals()),
                            String.format("%,d", r.timeouts()),
                            String.format("%,d", r.otherErrors()),
                            String.format("%,d", r.wrongPages()));
                    wrongPages += r.wrongPages();
                    (slow ? slowRates : fastRates).add(r.healthyPerSecond());
                    (slow ? slowPoints : fastPoints).add(new double[] {round + 1, r.healthyPerSecond()});
                }
            }
            double fastSum = fastRates.stream().mapToDouble(Double::doubleValue).sum();
            double slowSum = slowRates.stream().mapToDouble(Double::doubleValue).sum();
            double kept = fastSum > 0 ? slowSum / fastSum : 0;
            s.target(
                    "shared callers (" + config.label() + "): healthy tenants keep at least "
                            + Math.round(KEPT_TARGET * 100) + " % of their all-fast throughput with one slow tenant",
                    String.format(
                            "%.1f %% (%,.0f → %,.0f redos/s)",
                            kept * 100, fastSum / fastRates.size(), slowSum / slowRates.size()),
                    kept,
                    KEPT_TARGET,
                    false);
            series.add(new Chart.Series(config.legend() + ", all fast", fastPoints, false, g));
            series.add(new Chart.Series(config.legend() + ", one slow", slowPoints, true, g));
            if (fastRates.size() > 1) {
                noise.add(String.format(
                        "%s (all fast) and %s (one slow) with %s",
                        spread(fastRates), spread(slowRates), config.label()));
            }
        }
        s.table("", t);
        s.target("shared callers: no wrong page", String.format("%,d wrong pages", wrongPages), wrongPages == 0);
        s.charts.add(BenchSuite.chart(
                "shared-callers.png",
                new Chart(
                        "healthy tenants' redos/s, 20 tenants sharing 200 callers",
                        "round",
                        "healthy tenants' redos/s",
                        false,
                        false,
                        series)));
        if (!noise.isEmpty()) {
            s.note("Noise: phases of the same kind and configuration differed by up to " + String.join("; ", noise)
                    + " in this run, so a difference between the kinds smaller than that is within the machine's "
                    + "run-to-run noise.");
        }
        if (!errorExamples.isEmpty()) {
            s.note("Other errors (first " + errorExamples.size() + "): " + String.join("; ", errorExamples));
        }
        return s;
    }

    private PhaseResult phase(
            BenchSuite.Progress progress,
            Config config,
            String label,
            Path wrapper,
            TenantShardId[] tenants,
            boolean slow,
            RedoRequest request,
            byte[] expected,
            ConcurrentLinkedQueue<String> errorExamples)
            throws Exception {
        String name = "shared " + config.label() + " " + label;
        LongAdder healthyDone = new LongAdder();
        LongAdder slowDone = new LongAdder();
        LongAdder queueBound = new LongAdder();
        LongAdder expectedWait = new LongAdder();
        LongAdder timeouts = new LongAdder();
        LongAdder otherErrors = new LongAdder();
        LongAdder wrongPages = new LongAdder();
        AtomicInteger held = new AtomicInteger();
        AtomicBoolean measuring = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        WalRedoManager manager = WalRedoManager.create(WalRedoConfig.builder()
                .redoBinary(Workload.PG_VERSION, wrapper)
                .environment(Map.of(SLOW_ENV, slow ? tenants[0].toString() : "none"))
                .maxQueuedPerTenant(config.maxQueuedPerTenant())
                .build());
        try {
            progress.step(name + ": starting " + tenants.length + " sidecars");
            for (TenantShardId tenant : tenants) {
                manager.ping(tenant, Workload.PG_VERSION);
            }
            SplittableRandom seeds = new SplittableRandom(19);
            for (int c = 0; c < CALLERS; c++) {
                SplittableRandom rnd = seeds.split();
                threads.add(Thread.ofVirtual().start(() -> {
                    while (!stop.get()) {
                        int i = rnd.nextInt(tenants.length);
                        boolean refused = false;
                        if (i == 0) {
                            held.incrementAndGet();
                        }
                        try {
                            byte[] page = manager.redo(tenants[i], request, AttemptType.READ_PAGE, DEADLINE);
                            if (!Arrays.equals(expected, page)) {
                                wrongPages.increment();
                            } else if (measuring.get()) {
                                (i == 0 ? slowDone : healthyDone).increment();
                            }
                        } catch (TenantOverloadedException e) {
                            if (measuring.get()) {
                                (e.reason() == TenantOverloadedException.Reason.QUEUE_BOUND ? queueBound : expectedWait)
                                        .increment();
                            }
                            refused = true;
                        } catch (RedoTimeoutException e) {
                            if (measuring.get()) {
                                timeouts.increment();
                            }
                        } catch (Exception e) {
                            if (!stop.get()) {
                                otherErrors.increment();
                                if (errorExamples.size() < ERROR_EXAMPLES) {
                                    errorExamples.add(config.label() + ", " + label + ": " + e);
                                }
                            }
                        } finally {
                            if (i == 0) {
                                held.decrementAndGet();
                            }
                        }
                        if (refused) {
                            // A refusal returns without parking. Retrying at once (even with Thread.yield()) kept
                            // every admitted call off the carriers when the pool outnumbered the bound's slots: the
                            // yielding callers fill the carriers' local queues, which run before the reactor's
                            // wake-ups. A server would answer "busy" and be asked again later; this caller pauses
                            // (outside the call, so the pause does not count as held by the tenant).
                            LockSupport.parkNanos(REFUSAL_PAUSE_NANOS);
                        }
                    }
                }));
            }
            progress.step(name + ": warm-up");
            Thread.sleep(WARM_UP_MILLIS);
            measuring.set(true);
            long t0 = System.nanoTime();
            long end = t0 + TimeUnit.SECONDS.toNanos(mode.isolationSeconds());
            long nextProgress = t0 + TimeUnit.SECONDS.toNanos(1);
            long samples = 0;
            long heldSum = 0;
            int heldMax = 0;
            while (System.nanoTime() < end) {
                Thread.sleep(SAMPLE_MILLIS);
                int h = held.get();
                heldSum += h;
                heldMax = Math.max(heldMax, h);
                samples++;
                if (System.nanoTime() >= nextProgress) {
                    nextProgress += TimeUnit.SECONDS.toNanos(1);
                    progress.step(String.format(
                            "%s: %,d healthy redos, %d callers held by tenant 0", name, healthyDone.sum(), h));
                }
            }
            measuring.set(false);
            double seconds = (System.nanoTime() - t0) / 1e9;
            return new PhaseResult(
                    healthyDone.sum() / seconds,
                    slowDone.sum() / seconds,
                    samples == 0 ? 0 : (double) heldSum / samples,
                    heldMax,
                    queueBound.sum(),
                    expectedWait.sum(),
                    timeouts.sum(),
                    otherErrors.sum(),
                    wrongPages.sum());
        } finally {
            stop.set(true);
            manager.close();
            for (Thread th : threads) {
                th.join();
            }
        }
    }

    /** (max - min) / min of a series, in per cent; "n/a" when a phase measured nothing. */
    private static String spread(List<Double> rates) {
        return rates.stream().anyMatch(r -> r <= 0)
                ? "n/a (a phase measured 0)"
                : String.format("%.1f %%", IsolationScenario.spread(rates));
    }
}
