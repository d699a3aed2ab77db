// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.RedoRequest;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Benchmark 4: the latency of the first request after the tenant's sidecar was quiesced (the caller pays
 * for the spawn), beside the warm latency of the request right after it, through {@link WalRedoManager}.
 */
final class ColdStartScenario {
    private static final Duration IDLE = Duration.ofMillis(100);
    private static final int WARM_PER_ROUND = 5;

    private final BenchSuite.Mode mode;
    private final Path fake;

    ColdStartScenario(BenchSuite.Mode mode, Path fake) {
        this.mode = mode;
        this.fake = fake;
    }

    Section run(BenchSuite.Progress progress) throws Exception {
        Workload w = Workload.SHORT;
        RedoRequest request = w.request();
        byte[] expected = w.expectedPage();
        TenantShardId tenant = TenantShardId.of(0xc01d, 1);
        int n = mode.coldSamples();
        long[] cold = new long[n];
        long[] warm = new long[n * WARM_PER_ROUND];
        try (WalRedoManager manager = WalRedoManager.create(WalRedoConfig.builder()
                .redoBinary(Workload.PG_VERSION, fake)
                .idleTimeout(IDLE)
                .build())) {
            for (int i = -mode.spawnWarmup(); i < n; i++) {
                if (i % 10 == 0) {
                    progress.step("cold start: " + Math.max(0, i) + "/" + n);
                }
                awaitQuiesced(manager);
                long t0 = System.nanoTime();
                w.run(manager, tenant, request, expected);
                long c = System.nanoTime() - t0;
                for (int k = 0; k < WARM_PER_ROUND; k++) {
                    long t1 = System.nanoTime();
                    w.run(manager, tenant, request, expected);
                    if (i >= 0) {
                        warm[i * WARM_PER_ROUND + k] = System.nanoTime() - t1;
                    }
                }
                if (i >= 0) {
                    cold[i] = c;
                }
            }
        }
        Stats cs = Stats.of(cold);
        Stats ws = Stats.of(warm);
        Section s = new Section("Cold start after quiesce",
                "One tenant, `idleTimeout` " + IDLE.toMillis() + " ms: wait until the housekeeper has quiesced "
                        + "(killed) the idle sidecar, then time the next `redo` of the short request (it spawns a "
                        + "sidecar, then redoes), then " + WARM_PER_ROUND + " warm `redo` calls right after. "
                        + n + " cold samples; percentiles are nearest-rank, so with " + n + " samples p99 is "
                        + (n <= 100 ? "the maximum." : "exceeded by " + (n - (int) Math.ceil(0.99 * n)) + " of them."));
        Table t = new Table("request", "samples", "p50", "p90", "p99", "max");
        t.row("cold (first after quiesce)", cs.n(), Stats.time(cs.p50()), Stats.time(cs.p90()), Stats.time(cs.p99()),
                Stats.time(cs.max()));
        t.row("warm", ws.n(), Stats.time(ws.p50()), Stats.time(ws.p90()), Stats.time(ws.p99()),
                Stats.time(ws.max()));
        s.table("", t);
        s.note("Cold p50 is " + Stats.ratio((double) cs.p50() / ws.p50()) + " the warm p50: the spawn is what a "
                + "cold request pays for; see the spawn benchmark above for how that cost depends on the host's fds.");
        return s;
    }

    private static void awaitQuiesced(WalRedoManager manager) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!manager.status().isEmpty()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the idle sidecar was not quiesced within 30 s: " + manager.status());
            }
            Thread.sleep(2);
        }
    }
}
