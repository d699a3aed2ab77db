// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.SidecarStatus;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Benchmark 6: what 1,000 and 4,000 live sidecars cost the host (heap, platform threads, fds) and
 * themselves (RSS, PSS); then 10,000 spawn/kill cycles through the manager and a leak check.
 */
final class DensityScenario {
    static final int[] LIVE = {1_000, 4_000};
    static final int CYCLES = 10_000;
    private static final int SPAWNERS = 16;

    private final Path fake;

    DensityScenario(Path fake) {
        this.fake = fake;
    }

    record Snapshot(long heap, long direct, int threads, long fds, long zombies) {
        static Snapshot take() {
            long heap = Probes.heapAfterGc();
            return new Snapshot(heap, Probes.directBytes(), Probes.platformThreads(), Probes.fds(), Probes.zombies());
        }
    }

    Section run(BenchSuite.Progress progress) throws Exception {
        Section s = new Section(
                "Density and leaks",
                "One manager; tenants are started with `ping` by " + SPAWNERS + " virtual threads until 1,000, then "
                        + "4,000 sidecars are live. Heap is the minimum used heap over four `System.gc()` calls; "
                        + "direct memory is the JVM's direct buffer pool (each sidecar keeps an 8 KiB answer "
                        + "buffer); threads are live platform threads (`ThreadMXBean`, which does not count virtual "
                        + "threads); fds are `/proc/self/fd`; RSS and PSS are summed over the sidecars' "
                        + "`/proc/PID/smaps_rollup` (RSS counts shared pages once per process, PSS splits them). "
                        + "Then " + String.format("%,d", CYCLES) + " spawn/kill cycles (ping a new tenant, "
                        + "`detach` it) and a leak check against a baseline taken after 100 warm-up cycles.");
        Snapshot base = Snapshot.take();
        Table t = new Table(
                "live sidecars",
                "heap per sidecar",
                "direct memory per sidecar",
                "platform threads",
                "JVM fds",
                "fds per sidecar",
                "sidecars' RSS",
                "sidecars' PSS",
                "spawn p50 / p99");
        double heapPerSidecar4000 = Double.NaN;
        int threads4000 = -1;
        try (WalRedoManager manager = WalRedoManager.create(
                WalRedoConfig.builder().redoBinary(Workload.PG_VERSION, fake).build())) {
            int live = 0;
            for (int target : LIVE) {
                startTenants(manager, live, target, progress);
                live = target;
                progress.step("density: measuring " + live + " live sidecars");
                Snapshot now = Snapshot.take();
                List<SidecarStatus> status = manager.status();
                if (status.size() != live) {
                    throw new IllegalStateException(
                            "expected " + live + " live sidecars, status lists " + status.size());
                }
                List<Integer> pids = status.stream().map(SidecarStatus::pid).toList();
                long[] mem = Probes.rssPssKb(pids);
                double heapPer = (double) (now.heap() - base.heap()) / live;
                var spawn = manager.metrics().spawnLatency();
                t.row(
                        String.format("%,d", live),
                        String.format("%.1f KiB", heapPer / 1024),
                        String.format("%.1f KiB", (double) (now.direct() - base.direct()) / live / 1024),
                        now.threads(),
                        String.format("%,d", now.fds()),
                        String.format("%.2f", (double) (now.fds() - base.fds()) / live),
                        String.format("%,d MiB (%.0f KiB each)", mem[0] / 1024, (double) mem[0] / live),
                        String.format("%,d MiB (%.0f KiB each)", mem[1] / 1024, (double) mem[1] / live),
                        Stats.time(spawn.p50().toNanos()) + " / "
                                + Stats.time(spawn.p99().toNanos()));
                heapPerSidecar4000 = heapPer;
                threads4000 = now.threads();
            }
            progress.step("density: stopping " + live + " sidecars");
        }
        s.table("Baseline before the first spawn: " + base.threads() + " platform threads, " + base.fds() + " fds.", t);
        s.target(
                "4,000 live sidecars with at most 64 platform threads",
                threads4000 + " platform threads",
                threads4000,
                64,
                true);
        s.target(
                "4,000 live sidecars with at most 64 KiB of JVM heap per sidecar",
                String.format("%.1f KiB", heapPerSidecar4000 / 1024),
                heapPerSidecar4000,
                64 * 1024,
                true);

        Table leak = new Table("", "heap", "platform threads", "fds", "zombies");
        try (WalRedoManager manager = WalRedoManager.create(
                WalRedoConfig.builder().redoBinary(Workload.PG_VERSION, fake).build())) {
            cycles(manager, 0, 100, progress);
            Snapshot before = Snapshot.take();
            long t0 = System.nanoTime();
            cycles(manager, 100, 100 + CYCLES, progress);
            double seconds = (System.nanoTime() - t0) / 1e9;
            Snapshot after = Snapshot.take();
            leak.row("before", kib(before.heap()), before.threads(), before.fds(), before.zombies());
            leak.row(
                    String.format("after %,d cycles", CYCLES),
                    kib(after.heap()),
                    after.threads(),
                    after.fds(),
                    after.zombies());
            leak.row(
                    "change",
                    String.format("%+.1f KiB", (after.heap() - before.heap()) / 1024.0),
                    String.format("%+d", after.threads() - before.threads()),
                    String.format("%+d", after.fds() - before.fds()),
                    after.zombies());
            long started = manager.metrics().sidecarsStarted();
            s.table(
                    String.format(
                            "%,d spawn/kill cycles in %.1f s (%,.0f cycles/s); the manager counted %,d sidecars "
                                    + "started; live sidecars at the end: %d.",
                            CYCLES,
                            seconds,
                            CYCLES / seconds,
                            started,
                            manager.status().size()),
                    leak);
            boolean noLeak = after.fds() <= before.fds()
                    && after.threads() <= before.threads()
                    && after.zombies() == 0
                    && after.heap() - before.heap() < 1024 * 1024;
            s.target(
                    "zero leaks after 10,000 spawn/kill cycles (fds, threads, zombies; heap within 1 MiB)",
                    String.format(
                            "fds %+d, threads %+d, zombies %d, heap %+.1f KiB",
                            after.fds() - before.fds(),
                            after.threads() - before.threads(),
                            after.zombies(),
                            (after.heap() - before.heap()) / 1024.0),
                    noLeak);
        }
        return s;
    }

    private static String kib(long bytes) {
        return String.format("%,.0f KiB", bytes / 1024.0);
    }

    private void startTenants(WalRedoManager manager, int from, int to, BenchSuite.Progress progress)
            throws InterruptedException {
        forEachTenant(
                from, to, progress, "density: starting sidecars", tenant -> manager.ping(tenant, Workload.PG_VERSION));
    }

    private void cycles(WalRedoManager manager, int from, int to, BenchSuite.Progress progress)
            throws InterruptedException {
        forEachTenant(from, to, progress, "leak check: spawn/kill cycles", tenant -> {
            manager.ping(tenant, Workload.PG_VERSION);
            manager.detach(tenant);
        });
    }

    interface TenantTask {
        void run(TenantShardId tenant) throws Exception;
    }

    private static void forEachTenant(int from, int to, BenchSuite.Progress progress, String what, TenantTask task)
            throws InterruptedException {
        AtomicInteger next = new AtomicInteger(from);
        AtomicReference<Exception> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < SPAWNERS; i++) {
            threads.add(Thread.ofVirtual().start(() -> {
                int n;
                while (failure.get() == null && (n = next.getAndIncrement()) < to) {
                    if (n % 500 == 0) {
                        progress.step(what + ": " + n + "/" + to);
                    }
                    try {
                        task.run(TenantShardId.of(0xde75_1770L, n));
                    } catch (Exception e) {
                        failure.compareAndSet(null, e);
                    }
                }
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        if (failure.get() != null) {
            throw new IllegalStateException(what + " failed", failure.get());
        }
    }
}
