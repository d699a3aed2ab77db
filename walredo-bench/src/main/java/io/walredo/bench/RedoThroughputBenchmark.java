// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.RedoRequest;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import io.walredo.testing.FakeRedoModel;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Redo throughput through one tenant's sidecar, mirroring Neon's {@code pageserver/benches/bench_walredo.rs}:
 * {@code callers} virtual threads call {@link WalRedoManager#redo} (or {@code ping}) in a closed loop against
 * the fake redo binary, each {@code perCaller} times per invocation, and every redo page is checked against
 * the fake's model (a ping's answer is only checked for its length, by the library).
 *
 * <p>The score is the time of one invocation; divided by {@code perCaller} it is Neon's figure, "µs per redo
 * per caller" (the latency each caller sees, queueing included). {@link BenchSuite} does that division and
 * puts the C limit client's figure for the same work and pipelining depth beside it.
 *
 * <p>Neon's reference (2024-09-18, 8-vCPU im4gn.2xlarge, their Rust pageserver and real postgres): ping/1
 * 21.9 µs, short/1 32.1 µs, medium/1 138.6 µs, ping/128 688 µs, short/128 993 µs, medium/128 10.6 ms.
 * Our figures come from the fake binary (which hashes its input instead of replaying WAL) on this project's
 * 2-vCPU machine, and our medium request only has the shape of Neon's: only the ratios to the C client
 * measured in the same run are comparable across machines.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class RedoThroughputBenchmark {

    /** The work: {@code ping}, {@code short} or {@code medium} (see {@link Workload}). */
    @Param({"ping", "short", "medium"})
    public String work;

    /** Closed-loop callers (virtual threads), hence requests in flight on the one sidecar. */
    @Param({"1", "2", "4", "8", "16", "32", "64", "128"})
    public int callers;

    /**
     * Where the page goes: {@code array} (the {@code byte[]} that {@code redo} returns) or {@code buffer} (each caller's
     * own direct buffer, through the zero-copy {@code redo(..., ByteBuffer)}). Run with {@code -prof gc} to compare
     * the bytes allocated per redo.
     */
    @Param({"array"})
    public String into;

    /** Requests each caller makes per invocation; {@link #perCaller(int)} picks it so a row stays short. */
    @Param({"0"})
    public int perCaller;

    private WalRedoManager manager;
    private TenantShardId tenant;
    private Workload workload;
    private RedoRequest request;
    private byte[] expected;

    /**
     * Requests per caller per invocation: about 8,000 requests per invocation and at least 100 per caller, so
     * the ramp-up and drain at an invocation's ends (fewer than {@code callers} in flight) weigh about 1 %.
     */
    public static int perCaller(int callers) {
        return Math.max(100, 8000 / callers);
    }

    /** Starts the manager and the tenant's sidecar (spawn time is not part of this benchmark). */
    @Setup(Level.Trial)
    public void setUp() throws Exception {
        if (perCaller == 0) {
            perCaller = perCaller(callers);
        }
        workload = Workload.valueOf(work.toUpperCase(java.util.Locale.ROOT));
        request = workload.request();
        expected = workload.expectedPage();
        manager = WalRedoManager.create(WalRedoConfig.builder()
                .redoBinary(Workload.PG_VERSION, FakeRedoModel.binary())
                .redoTimeout(Duration.ofSeconds(60))
                // A fresh fork's first spawn also generates jnr's native stubs; on a loaded machine that has
                // taken longer than the 10 s default.
                .spawnTimeout(Duration.ofSeconds(60))
                .build());
        tenant = TenantShardId.of(0x6ea1_0000L, callers);
        manager.ping(tenant, Workload.PG_VERSION);
    }

    /** Stops the sidecar. */
    @TearDown(Level.Trial)
    public void tearDown() {
        manager.close();
    }

    /**
     * One invocation: {@code callers} virtual threads, each making {@code perCaller} requests back to back.
     *
     * @throws Exception the first failure of any caller (a wrong page included)
     */
    @Benchmark
    public void redo() throws Exception {
        Thread[] threads = new Thread[callers];
        Throwable[] failure = new Throwable[1];
        for (int i = 0; i < callers; i++) {
            threads[i] = Thread.ofVirtual().unstarted(() -> {
                try {
                    if (into.equals("buffer")) {
                        ByteBuffer page = ByteBuffer.allocateDirect(RedoRequest.PAGE_BYTES);
                        ByteBuffer want = ByteBuffer.wrap(expected == null ? new byte[0] : expected);
                        for (int n = 0; n < perCaller; n++) {
                            workload.runInto(manager, tenant, request, want, page);
                        }
                        return;
                    }
                    for (int n = 0; n < perCaller; n++) {
                        workload.run(manager, tenant, request, expected);
                    }
                } catch (Throwable t) {
                    failure[0] = t;
                }
            });
        }
        for (Thread t : threads) {
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        if (failure[0] != null) {
            throw new IllegalStateException("a caller failed", failure[0]);
        }
    }
}
