// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.AttemptType;
import io.walredo.KillCause;
import io.walredo.RedoRequest;
import io.walredo.RedoTimeoutException;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import io.walredo.WalRedoMetrics;
import io.walredo.WalRedoMetricsListener;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Deadlines under load: {@value #TENANTS} tenants whose sidecars answer after 1 s, each with
 * {@value #CALLERS_PER_TENANT} closed-loop callers giving every redo {@value #DEADLINE_MILLIS} ms, beside as many
 * fast tenants and callers keeping the machine busy. Measures how late the slow callers' calls return after their
 * deadline, and whether any sidecar was killed for a caller's deadline (none should be: only the stall limit
 * retires a sidecar). Runnable alone: {@code DeadlineScenario FAKE SECONDS}.
 */
final class DeadlineScenario {
    static final int TENANTS = 100;
    static final int CALLERS_PER_TENANT = 10;
    static final long DEADLINE_MILLIS = 100;
    /** Targets: the 99th percentile and the maximum of how late a call returns after its deadline. */
    static final long P99_LATE_MILLIS = 50;

    static final long MAX_LATE_MILLIS = 250;
    private static final long SLOW_TENANT_HI = 0x510e;
    private static final long FAST_TENANT_HI = 0xfa57;

    private final Path fake;
    private final Path workDir;
    private final int seconds;

    DeadlineScenario(Path fake, Path workDir, int seconds) {
        this.fake = fake;
        this.workDir = workDir;
        this.seconds = seconds;
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("walredo-deadline");
        Section s = new DeadlineScenario(Path.of(args[0]), dir, Integer.parseInt(args[1]))
                .run(new BenchSuite.Progress(System.out));
        System.out.print(s.console());
    }

    Section run(BenchSuite.Progress progress) throws Exception {
        Path wrapper = wrapper();
        Workload w = Workload.SHORT;
        RedoRequest request = w.request();
        byte[] expected = w.expectedPage();
        LongAdder fastDone = new LongAdder();
        LongAdder slowAnswered = new LongAdder();
        LongAdder slowTimedOut = new LongAdder();
        LongAdder slowRefused = new LongAdder();
        LongAdder wrongPages = new LongAdder();
        ConcurrentLinkedQueue<String> otherErrors = new ConcurrentLinkedQueue<>();
        LongAdder otherErrorCount = new LongAdder();
        Recorder late = new Recorder(Stats.SIGNIFICANT_DIGITS);
        // The library's part of each late return: when it woke the call (WalRedoMetrics.deadlineWakeLateness).
        Recorder wake = new Recorder(Stats.SIGNIFICANT_DIGITS);
        AtomicBoolean measuring = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        WalRedoMetrics before;
        WalRedoMetrics after;
        double fastPerSecond;
        WalRedoMetricsListener wakes = new WalRedoMetricsListener() {
            @Override
            public void deadlineWake(TenantShardId tenant, Duration lateness) {
                if (measuring.get()) {
                    wake.recordValue(Math.max(0, lateness.toNanos()));
                }
            }
        };
        WalRedoManager manager = WalRedoManager.create(WalRedoConfig.builder()
                .redoBinary(Workload.PG_VERSION, wrapper)
                .metricsListener(wakes)
                .build());
        try {
            progress.step("deadlines: starting " + 2 * TENANTS + " sidecars");
            List<Thread> starters = new ArrayList<>();
            for (int i = 0; i < TENANTS; i++) {
                for (long hi : new long[] {SLOW_TENANT_HI, FAST_TENANT_HI}) {
                    TenantShardId t = TenantShardId.of(hi, i);
                    starters.add(Thread.ofVirtual().start(() -> {
                        try {
                            manager.ping(t, Workload.PG_VERSION);
                        } catch (WalRedoException e) {
                            otherErrors.add("start: " + e);
                        }
                    }));
                }
            }
            for (Thread th : starters) {
                th.join();
            }
            for (int i = 0; i < TENANTS; i++) {
                TenantShardId slow = TenantShardId.of(SLOW_TENANT_HI, i);
                TenantShardId fast = TenantShardId.of(FAST_TENANT_HI, i);
                for (int c = 0; c < CALLERS_PER_TENANT; c++) {
                    threads.add(Thread.ofVirtual().start(() -> {
                        while (!stop.get()) {
                            long t0 = System.nanoTime();
                            try {
                                byte[] page = manager.redo(
                                        slow, request, AttemptType.READ_PAGE, Duration.ofMillis(DEADLINE_MILLIS));
                                if (!Arrays.equals(expected, page)) {
                                    wrongPages.increment();
                                }
                                slowAnswered.increment();
                            } catch (RedoTimeoutException e) {
                                if (measuring.get()) {
                                    late.recordValue(Math.max(
                                            0,
                                            System.nanoTime() - t0 - TimeUnit.MILLISECONDS.toNanos(DEADLINE_MILLIS)));
                                    slowTimedOut.increment();
                                }
                            } catch (TenantOverloadedException e) {
                                // Refused at once (the answers ahead take a second each): a server would answer
                                // "busy" and its client come back later; this caller comes back when its deadline
                                // would have passed, so the load keeps its shape.
                                if (measuring.get()) {
                                    slowRefused.increment();
                                }
                                LockSupport.parkNanos(
                                        TimeUnit.MILLISECONDS.toNanos(DEADLINE_MILLIS) - (System.nanoTime() - t0));
                            } catch (Exception e) {
                                if (!stop.get()) {
                                    noteError(otherErrors, otherErrorCount, e);
                                }
                            }
                        }
                    }));
                    threads.add(Thread.ofVirtual().start(() -> {
                        while (!stop.get()) {
                            try {
                                w.run(manager, fast, request, expected);
                                if (measuring.get()) {
                                    fastDone.increment();
                                }
                            } catch (Exception e) {
                                if (!stop.get()) {
                                    noteError(otherErrors, otherErrorCount, e);
                                }
                            }
                        }
                    }));
                }
            }
            progress.step("deadlines: warm-up");
            Thread.sleep(3000);
            before = manager.metrics();
            measuring.set(true);
            long t0 = System.nanoTime();
            long end = t0 + TimeUnit.SECONDS.toNanos(seconds);
            while (System.nanoTime() < end) {
                Thread.sleep(1000);
                progress.step(
                        String.format("deadlines: %,d timed out, %,d fast redos", slowTimedOut.sum(), fastDone.sum()));
            }
            measuring.set(false);
            fastPerSecond = fastDone.sum() / ((System.nanoTime() - t0) / 1e9);
            after = manager.metrics();
        } finally {
            stop.set(true);
            manager.close();
            for (Thread th : threads) {
                th.join();
            }
        }
        long started = after.sidecarsStarted() - before.sidecarsStarted();
        long timeoutKills = after.sidecarsKilled().get(KillCause.TIMEOUT)
                - before.sidecarsKilled().get(KillCause.TIMEOUT);
        Histogram lateness = late.getIntervalHistogram();
        long p50 = lateness.getValueAtPercentile(50);
        long p99 = lateness.getValueAtPercentile(99);
        long max = lateness.getMaxValue();
        Table t = new Table("metric", "value");
        t.row(
                "slow callers' calls timed out / refused at once (TenantOverloadedException)",
                String.format("%,d / %,d", slowTimedOut.sum(), slowRefused.sum()));
        t.row("returned after the deadline: p50 / p99 / max", ms(p50) + " / " + ms(p99) + " / " + ms(max));
        Histogram woken = wake.getIntervalHistogram();
        t.row(
                "of that, the library's part: woken after the deadline (deadlineWakeLateness), p50 / p99 / max",
                woken.getTotalCount() == 0
                        ? "no call"
                        : ms(woken.getValueAtPercentile(50)) + " / " + ms(woken.getValueAtPercentile(99)) + " / "
                                + ms(woken.getMaxValue()));
        t.row("fast tenants' redos/s", String.format("%,.0f", fastPerSecond));
        t.row("sidecars started / killed for TIMEOUT while measuring", started + " / " + timeoutKills);
        t.row("sidecars killed while measuring, by cause", killsByCause(before, after));
        t.row(
                "wrong pages / other errors",
                wrongPages.sum() + " / " + otherErrorCount.sum()
                        + (otherErrors.isEmpty() ? "" : " (" + String.join("; ", otherErrors) + ")"));
        Section s = new Section(
                "Deadlines under load",
                TENANTS + " tenants whose sidecars answer after 1 s (`--delay-us 1000000`), " + CALLERS_PER_TENANT
                        + " closed-loop callers each with a " + DEADLINE_MILLIS + " ms deadline per redo, beside "
                        + TENANTS + " fast tenants with " + CALLERS_PER_TENANT + " closed-loop callers each (60 s "
                        + "deadline); short requests; " + seconds + " s measured after a 3 s warm-up. \"After the "
                        + "deadline\" is the time a timed-out call returned, minus its start, minus "
                        + DEADLINE_MILLIS
                        + " ms (nearest-rank percentiles over every timed-out call, to 0.1 %; a call back before its deadline counts as 0). A call refused at once by admission (the "
                        + "answers owed ahead outlast its deadline) is counted apart; its caller waits out the "
                        + "deadline outside the library before its next call, so the load keeps its shape. The default "
                        + "stallTimeout (= redoTimeout, 60 s) applies: the slow sidecars answer once a second, so none "
                        + "stalls, and a caller's deadline alone kills nothing.");
        s.table("", t);
        s.target(
                "deadlines: p99 return at most " + P99_LATE_MILLIS + " ms after the deadline",
                ms(p99),
                p99,
                TimeUnit.MILLISECONDS.toNanos(P99_LATE_MILLIS),
                true);
        s.target(
                "deadlines: no call returns more than " + MAX_LATE_MILLIS + " ms after its deadline",
                ms(max),
                max,
                TimeUnit.MILLISECONDS.toNanos(MAX_LATE_MILLIS),
                true);
        s.target(
                "deadlines: no sidecar killed for a caller's deadline",
                timeoutKills + " TIMEOUT kills, " + started + " spawns",
                timeoutKills == 0 && started == 0);
        return s;
    }

    private static void noteError(ConcurrentLinkedQueue<String> first, LongAdder count, Exception e) {
        count.increment();
        if (first.size() < 5) {
            first.add(e.toString());
        }
    }

    private static String killsByCause(WalRedoMetrics before, WalRedoMetrics after) {
        StringBuilder b = new StringBuilder();
        for (KillCause c : KillCause.values()) {
            long n = after.sidecarsKilled().get(c) - before.sidecarsKilled().get(c);
            if (n > 0) {
                b.append(b.length() == 0 ? "" : ", ")
                        .append(c.name().toLowerCase(java.util.Locale.ROOT))
                        .append(' ')
                        .append(n);
            }
        }
        return b.length() == 0 ? "none" : b.toString();
    }

    private static String ms(long nanos) {
        return String.format("%.1f ms", nanos / 1e6);
    }

    /** A wrapper that adds {@code --delay-us 1000000} for the slow tenants (their ids start with the slow prefix). */
    private Path wrapper() throws IOException {
        Path p = workDir.resolve("slow-tenants.sh");
        String slowPrefix = String.format("%016x", SLOW_TENANT_HI);
        Files.writeString(
                p,
                "#!/bin/sh\n"
                        + "# argv: --wal-redo [extra...] --tenant-shard-id ID\n"
                        + "for a in \"$@\"; do last=$a; done\n"
                        + "case \"$last\" in " + slowPrefix + "*) exec '" + fake
                        + "' \"$@\" --delay-us 1000000;; esac\n"
                        + "exec '" + fake + "' \"$@\"\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }
}
