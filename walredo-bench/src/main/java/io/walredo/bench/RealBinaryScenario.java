// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.AttemptType;
import io.walredo.RedoRequest;
import io.walredo.SidecarStatus;
import io.walredo.TenantShardId;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * The real redo binary (PostgreSQL 15 with our walredo mode, {@code ./scripts/build-postgres}) through the library,
 * beside the fake where the same measurement applies to both: spawn to first ping, cold start after quiesce,
 * redo throughput of real records (the pages of a {@link RealPagesCorpus}, each checked against the server's
 * page), and the resident memory of idle sidecars. Runs only when {@code ./scripts/bench} is given
 * {@code --redo-binary}; docs/real-postgres.md explains the binary and the corpus.
 *
 * <p>Method: one {@link WalRedoManager} per measurement. Spawn: a new tenant per sample, {@code ping} timed from
 * the call (spawn included) to the answer, then {@code detach}. Cold start: one tenant with a 100 ms idle timeout;
 * wait until the housekeeper has quiesced its sidecar, then time a redo of a real page (spawn included) and one
 * warm redo of the same page. Throughput: callers on virtual threads, one tenant each, loop over the corpus's
 * pages for a fixed time. Memory: {@code status()} of sidecars that have answered one ping and are idle, then of
 * the same sidecars after each replayed every page of the corpus once.
 *
 * @param params sample counts and durations
 * @param realBinary the PostgreSQL 15 redo binary
 * @param fake the fake redo binary, for the side-by-side rows
 * @param corpus the real pages
 */
record RealBinaryScenario(Params params, Path realBinary, Path fake, RealPagesCorpus corpus) {

    /** Idle timeout of the cold-start manager: the housekeeper quiesces a sidecar idle this long. */
    private static final Duration COLD_IDLE = Duration.ofMillis(100);

    /**
     * How much to measure.
     *
     * @param spawnSamples spawn-to-first-ping samples per binary
     * @param coldSamples cold-start samples
     * @param throughputTime how long each throughput row runs
     * @param idleSidecars sidecars whose memory is measured per binary
     */
    record Params(int spawnSamples, int coldSamples, Duration throughputTime, int idleSidecars) {
        /** The sizes of {@code ./scripts/bench quick} or {@code full}. */
        static Params of(BenchSuite.Mode mode) {
            return new Params(mode.spawnSamples(), mode.coldSamples(), Duration.ofSeconds(mode.isolationSeconds()), 20);
        }
    }

    Section run(BenchSuite.Progress progress) throws Exception {
        Section s = new Section(
                "Real redo binary: PostgreSQL 15",
                "PostgreSQL " + corpus.serverVersionNum()
                        + " with our walredo mode (`" + realBinary + "`), through the library, beside the fake. "
                        + "Real records: " + corpus.pages().size() + " pages a throwaway PostgreSQL 15 cluster wrote "
                        + "(postgres/corpus.py), " + recordCount()
                        + " records; each answer is compared with the server's page "
                        + "outside what PostgreSQL does not WAL-log. Spawn: " + params.spawnSamples()
                        + " samples per binary "
                        + "of `ping` on a new tenant (spawn + first round trip). Cold start: " + params.coldSamples()
                        + " samples, idle timeout " + COLD_IDLE.toMillis() + " ms. Throughput: "
                        + params.throughputTime().toSeconds() + " s per row. Memory: " + params.idleSidecars()
                        + " idle sidecars per binary, from "
                        + "/proc/PID/smaps_rollup (Neon reported about 22 MB RSS per walredo process).");

        Table spawn = new Table("binary", "samples", "p50", "p90", "p99", "max");
        for (Path binary : List.of(realBinary, fake)) {
            progress.step("real binary: spawn to first ping, " + name(binary));
            Stats st = Stats.of(spawnToFirstPing(binary));
            spawn.row(
                    name(binary),
                    st.n(),
                    Stats.time(st.p50()),
                    Stats.time(st.p90()),
                    Stats.time(st.p99()),
                    Stats.time(st.max()));
        }
        s.table("Spawn to first ping", spawn);

        progress.step("real binary: cold start after quiesce");
        long[][] cold = coldStart();
        Stats cs = Stats.of(cold[0]);
        Stats ws = Stats.of(cold[1]);
        Table coldTable =
                new Table("request (real page, " + cold[2][0] + " records)", "samples", "p50", "p90", "p99", "max");
        coldTable.row(
                "cold (first after quiesce)",
                cs.n(),
                Stats.time(cs.p50()),
                Stats.time(cs.p90()),
                Stats.time(cs.p99()),
                Stats.time(cs.max()));
        coldTable.row(
                "warm (right after)",
                ws.n(),
                Stats.time(ws.p50()),
                Stats.time(ws.p90()),
                Stats.time(ws.p99()),
                Stats.time(ws.max()));
        s.table("Cold start after quiesce", coldTable);

        Table tp = new Table("callers (one tenant each)", "requests/s", "records/s", "record MB/s", "p50", "p99");
        for (int callers : new int[] {1, 2}) {
            progress.step("real binary: throughput of real records, " + callers + " caller(s)");
            Throughput t = throughput(callers);
            tp.row(
                    callers,
                    String.format(Locale.ROOT, "%.0f", t.requestsPerSecond()),
                    String.format(Locale.ROOT, "%.0f", t.recordsPerSecond()),
                    String.format(Locale.ROOT, "%.1f", t.recordBytesPerSecond() / 1e6),
                    Stats.time(t.latency().p50()),
                    Stats.time(t.latency().p99()));
        }
        s.table("Redo throughput of real records (every page checked)", tp);

        Table mem = new Table("binary", "sidecars", "state", "RSS each", "PSS each");
        for (Path binary : List.of(realBinary, fake)) {
            progress.step("real binary: memory of idle sidecars, " + name(binary));
            memory(binary, mem);
        }
        s.table("Resident memory per idle sidecar", mem);
        return s;
    }

    private String name(Path binary) {
        return binary.equals(realBinary) ? "postgres 15 (real)" : "fake";
    }

    private long recordCount() {
        return corpus.pages().stream().mapToLong(p -> p.records().size()).sum();
    }

    private WalRedoConfig.Builder config(Path binary) {
        return WalRedoConfig.builder().redoBinary(corpus.pgVersion(), binary);
    }

    private long[] spawnToFirstPing(Path binary) throws WalRedoException {
        long[] out = new long[params.spawnSamples()];
        try (WalRedoManager m = WalRedoManager.create(config(binary).build())) {
            for (int i = 0; i < out.length; i++) {
                TenantShardId t = TenantShardId.of(0x5a, i);
                long t0 = System.nanoTime();
                m.ping(t, corpus.pgVersion());
                out[i] = System.nanoTime() - t0;
                m.detach(t);
            }
        }
        return out;
    }

    /** {cold samples, warm samples, {records of the page used}}. */
    private long[][] coldStart() throws Exception {
        RealPagesCorpus.Page page = medianPage();
        RedoRequest request = page.request(corpus.pgVersion());
        long[] cold = new long[params.coldSamples()];
        long[] warm = new long[params.coldSamples()];
        TenantShardId t = TenantShardId.of(0xc01d, 15);
        try (WalRedoManager m =
                WalRedoManager.create(config(realBinary).idleTimeout(COLD_IDLE).build())) {
            for (int i = 0; i < cold.length; i++) {
                awaitQuiesced(m);
                long t0 = System.nanoTime();
                check(page, m.redo(t, request, AttemptType.READ_PAGE));
                cold[i] = System.nanoTime() - t0;
                long t1 = System.nanoTime();
                check(page, m.redo(t, request, AttemptType.READ_PAGE));
                warm[i] = System.nanoTime() - t1;
            }
        }
        return new long[][] {cold, warm, {page.records().size()}};
    }

    /** The page whose record count is the corpus's median: a typical request. */
    private RealPagesCorpus.Page medianPage() {
        List<RealPagesCorpus.Page> sorted = new ArrayList<>(corpus.pages());
        sorted.sort((a, b) -> Integer.compare(a.records().size(), b.records().size()));
        return sorted.get(sorted.size() / 2);
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

    private static void check(RealPagesCorpus.Page page, byte[] redone) {
        if (!page.matches(redone)) {
            throw new IllegalStateException("wrong page from the real binary: " + page.describeMismatch(redone)
                    + "; a benchmark that returns wrong pages measures nothing");
        }
    }

    private record Throughput(
            double requestsPerSecond, double recordsPerSecond, double recordBytesPerSecond, Stats latency) {}

    private Throughput throughput(int callers) throws Exception {
        List<RealPagesCorpus.Page> pages = corpus.pages();
        List<RedoRequest> requests =
                pages.stream().map(p -> p.request(corpus.pgVersion())).toList();
        LongAdder done = new LongAdder();
        LongAdder records = new LongAdder();
        LongAdder bytes = new LongAdder();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<long[]> latencies = new ArrayList<>();
        int[] counts = new int[callers];
        try (WalRedoManager m = WalRedoManager.create(config(realBinary).build())) {
            for (int c = 0; c < callers; c++) {
                m.ping(TenantShardId.of(0x7b, c), corpus.pgVersion()); // spawned before the clock starts
                latencies.add(new long[1 << 20]);
            }
            long end = System.nanoTime() + params.throughputTime().toNanos();
            long start = System.nanoTime();
            CountDownLatch finished = new CountDownLatch(callers);
            for (int c = 0; c < callers; c++) {
                int caller = c;
                TenantShardId tenant = TenantShardId.of(0x7b, c);
                long[] lat = latencies.get(c);
                Thread.ofVirtual().name("real-throughput-" + c).start(() -> {
                    try {
                        for (int i = caller; System.nanoTime() < end; i++) {
                            int k = i % pages.size();
                            long t0 = System.nanoTime();
                            byte[] page = m.redo(tenant, requests.get(k), AttemptType.READ_PAGE);
                            long took = System.nanoTime() - t0;
                            if (counts[caller] < lat.length) {
                                lat[counts[caller]++] = took;
                            }
                            check(pages.get(k), page);
                            done.increment();
                            records.add(requests.get(k).recordCount());
                            bytes.add(requests.get(k).recordBytes());
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    } finally {
                        finished.countDown();
                    }
                });
            }
            if (!finished.await(params.throughputTime().toSeconds() + 120, TimeUnit.SECONDS)) {
                throw new IllegalStateException("throughput callers still busy 120 s after the end");
            }
            double secs = (System.nanoTime() - start) / 1e9;
            if (failure.get() != null) {
                throw new IllegalStateException("a throughput caller failed", failure.get());
            }
            int n = 0;
            for (int c = 0; c < callers; c++) {
                n += counts[c];
            }
            long[] all = new long[n];
            int at = 0;
            for (int c = 0; c < callers; c++) {
                System.arraycopy(latencies.get(c), 0, all, at, counts[c]);
                at += counts[c];
            }
            return new Throughput(done.sum() / secs, records.sum() / secs, bytes.sum() / secs, Stats.of(all));
        }
    }

    private void memory(Path binary, Table mem) throws WalRedoException {
        int n = params.idleSidecars();
        try (WalRedoManager m = WalRedoManager.create(config(binary).build())) {
            for (int i = 0; i < n; i++) {
                m.ping(TenantShardId.of(0x3e3, i), corpus.pgVersion());
            }
            row(mem, binary, m, "after one ping");
            if (binary.equals(realBinary)) {
                for (int i = 0; i < n; i++) {
                    for (RealPagesCorpus.Page p : corpus.pages()) {
                        check(
                                p,
                                m.redo(
                                        TenantShardId.of(0x3e3, i),
                                        p.request(corpus.pgVersion()),
                                        AttemptType.READ_PAGE));
                    }
                }
                row(mem, binary, m, "idle after " + corpus.pages().size() + " real pages each");
            }
        }
    }

    private void row(Table mem, Path binary, WalRedoManager m, String state) {
        long rss = 0;
        long pss = 0;
        int measured = 0;
        for (SidecarStatus st : m.status()) {
            if (st.memory().isPresent()) {
                rss += st.memory().get().rssBytes();
                pss += st.memory().get().pssBytes();
                measured++;
            }
        }
        if (measured == 0) {
            mem.row(name(binary), 0, state, "not measured (no /proc/PID/smaps_rollup readable)", "");
            return;
        }
        mem.row(name(binary), measured, state, mib(rss / measured), mib(pss / measured));
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024));
    }
}
