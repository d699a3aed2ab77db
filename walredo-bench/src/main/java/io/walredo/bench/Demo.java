package io.walredo.bench;

import io.walredo.AttemptType;
import io.walredo.BufferTag;
import io.walredo.KillCause;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.RelTag;
import io.walredo.SidecarStatus;
import io.walredo.TenantShardId;
import io.walredo.WalRecord;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import io.walredo.WalRedoMetrics;
import io.walredo.testing.FakeRedoModel;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The main job: a realistic multi-tenant workload against the redo binary (by default the fake the build
 * makes). Neon-shaped short and medium requests from virtual-thread callers; tenants come and go in
 * waves so idle sidecars are quiesced and respawned during the run; one tenant's sidecar is SIGKILLed
 * from outside now and then. Every page is checked against the fake's model. Prints a progress line
 * each second and a summary table at the end.
 */
public final class Demo {
    private static final int PG_VERSION = 16;
    private static final Duration CRASH_EVERY = Duration.ofSeconds(3);

    private Demo() {
    }

    record Options(int tenants, Duration duration, Duration idleTimeout, int callers, Path redoBinary, boolean fake) {
    }

    public static void main(String[] args) throws Exception {
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("demo: " + e.getMessage());
            System.err.println(usage());
            System.exit(2);
            return;
        }
        if (o == null) {
            System.out.println(usage());
            return;
        }
        System.exit(run(o, System.out));
    }

    static String usage() {
        return """
                usage: ./scripts/demo [options]
                  --tenants N          tenants (default 200)
                  --duration D         how long to run, e.g. 30s, 2m (default 30s)
                  --idle-timeout D     quiesce sidecars idle this long (default 2s)
                  --callers N          concurrent virtual-thread callers (default 300)
                  --redo-binary PATH   a Neon postgres with --wal-redo support (default: the fake the build made;
                                       pages are then checked against its model)
                  --help               this text""";
    }

    static Options parse(String[] args) {
        int tenants = 200;
        int callers = 300;
        Duration duration = Duration.ofSeconds(30);
        Duration idle = Duration.ofSeconds(2);
        Path binary = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                return null;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("option " + a + " needs a value");
            }
            String v = args[++i];
            switch (a) {
                case "--tenants" -> tenants = positiveInt(a, v);
                case "--callers" -> callers = positiveInt(a, v);
                case "--duration" -> duration = duration(a, v);
                case "--idle-timeout" -> idle = duration(a, v);
                case "--redo-binary" -> binary = Path.of(v).toAbsolutePath();
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        boolean fake = binary == null;
        if (fake) {
            binary = FakeRedoModel.binary();
        }
        return new Options(tenants, duration, idle, callers, binary, fake);
    }

    private static int positiveInt(String opt, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(opt + " takes a positive whole number, got '" + v + "'");
    }

    static Duration duration(String opt, String v) {
        try {
            Duration d;
            if (v.endsWith("ms")) {
                d = Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
            } else if (v.endsWith("s")) {
                d = Duration.ofSeconds(Long.parseLong(v.substring(0, v.length() - 1)));
            } else if (v.endsWith("m")) {
                d = Duration.ofMinutes(Long.parseLong(v.substring(0, v.length() - 1)));
            } else {
                d = Duration.ofSeconds(Long.parseLong(v));
            }
            if (!d.isNegative() && !d.isZero()) {
                return d;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(opt + " takes a positive duration such as 500ms, 30s or 2m, got '" + v + "'");
    }

    /** Prebuilt requests and, for the fake, their expected pages. */
    record Work(RedoRequest request, byte[] expected, String kind) {
    }

    static List<Work> workload(boolean withExpected) {
        SplittableRandom rnd = new SplittableRandom(42);
        List<Work> out = new ArrayList<>();
        for (int i = 0; i < 48; i++) {
            boolean medium = i % 4 == 3;
            BufferTag tag = new BufferTag(new RelTag(1663, 13010, 16384 + i, RelTag.MAIN_FORKNUM), i * 7L);
            long lsn = 0x16A9388L + i * 0x10000L;
            int records = medium ? 227 : 2;
            RedoRequest.Builder b = RedoRequest.builder(PG_VERSION, tag, Lsn.of(lsn + records * 0x100L + 8));
            if (i % 8 == 1) {
                byte[] base = new byte[RedoRequest.PAGE_BYTES];
                rnd.nextBytes(base);
                b.baseImage(Lsn.of(lsn), base);
            }
            for (int r = 0; r < records; r++) {
                byte[] rec = new byte[medium ? 100 + rnd.nextInt(30) : 500 + rnd.nextInt(60)];
                rnd.nextBytes(rec);
                b.addRecord(WalRecord.of(Lsn.of(lsn + (r + 1) * 0x100L), false, rec));
            }
            RedoRequest req = b.build();
            out.add(new Work(req, withExpected ? FakeRedoModel.expectedPage(req) : null, medium ? "medium" : "short"));
        }
        return out;
    }

    static int run(Options o, PrintStream out) throws Exception {
        WalRedoConfig config = WalRedoConfig.builder()
                .redoBinary(PG_VERSION, o.redoBinary())
                .idleTimeout(o.idleTimeout())
                .redoTimeout(Duration.ofSeconds(10))
                .build();
        List<Work> work = workload(o.fake());
        TenantShardId[] tenants = new TenantShardId[o.tenants()];
        SplittableRandom seed = new SplittableRandom(7);
        for (int i = 0; i < tenants.length; i++) {
            tenants[i] = TenantShardId.of(seed.nextLong(), seed.nextLong());
        }
        out.printf("walredo demo: %d tenants, %d callers, %s, idle timeout %s, binary %s%s%n", tenants.length,
                o.callers(), o.duration(), o.idleTimeout(), o.redoBinary(), o.fake() ? " (the fake; pages checked)" : "");

        try (WalRedoManager manager = WalRedoManager.create(config)) {
            try {
                manager.ping(tenants[0], PG_VERSION);
            } catch (WalRedoException e) {
                out.println("demo: the redo binary " + o.redoBinary() + " does not answer the walredo protocol;"
                        + " it probably lacks walredo support (a Neon-built postgres is needed). Details: "
                        + e.getMessage());
                return 1;
            }
            return drive(o, manager, tenants, work, out);
        }
    }

    private static int drive(Options o, WalRedoManager manager, TenantShardId[] tenants, List<Work> work,
            PrintStream out) throws InterruptedException {
        LongAdder done = new LongAdder();
        LongAdder errors = new LongAdder();
        LongAdder wrong = new LongAdder();
        AtomicLong maxPlatformThreads = new AtomicLong();
        AtomicLong maxFds = new AtomicLong();
        AtomicBoolean stop = new AtomicBoolean();
        Map<String, LongAdder> errorKinds = new ConcurrentHashMap<>();
        long start = System.nanoTime();
        long end = start + o.duration().toNanos();
        int window = Math.max(1, tenants.length / 4);
        long waveNanos = Math.max(o.idleTimeout().toNanos() * 2, TimeUnit.SECONDS.toNanos(1));
        CountDownLatch finished = new CountDownLatch(o.callers());
        for (int c = 0; c < o.callers(); c++) {
            SplittableRandom rnd = new SplittableRandom(1000 + c);
            Thread.ofVirtual().name("demo-caller-" + c).start(() -> {
                try {
                    while (!stop.get()) {
                        long now = System.nanoTime();
                        int wave = (int) ((now - start) / waveNanos);
                        int t = Math.floorMod(wave * window / 2 + rnd.nextInt(window), tenants.length);
                        Work w = work.get(rnd.nextInt(work.size()));
                        try {
                            byte[] page = manager.redo(tenants[t], w.request(), AttemptType.READ_PAGE);
                            if (w.expected() != null && !Arrays.equals(page, w.expected())) {
                                wrong.increment();
                            }
                            done.increment();
                        } catch (WalRedoException e) {
                            errors.increment();
                            errorKinds.computeIfAbsent(e.getClass().getSimpleName(), k -> new LongAdder()).increment();
                        }
                    }
                } finally {
                    finished.countDown();
                }
            });
        }
        Thread crasher = Thread.ofVirtual().name("demo-crasher").start(() -> {
            while (!stop.get()) {
                try {
                    Thread.sleep(CRASH_EVERY);
                } catch (InterruptedException e) {
                    return;
                }
                for (SidecarStatus s : manager.status()) {
                    if (s.tenant().equals(tenants[0]) || s.tenant().equals(tenants[tenants.length / 2])) {
                        ProcessHandle.of(s.pid()).ifPresent(ProcessHandle::destroyForcibly);
                    }
                }
            }
        });
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long lastDone = 0;
        long lastTick = System.nanoTime();
        while (System.nanoTime() < end) {
            Thread.sleep(1000);
            long now = System.nanoTime();
            long d = done.sum();
            maxPlatformThreads.accumulateAndGet(threads.getThreadCount(), Math::max);
            maxFds.accumulateAndGet(openFds(), Math::max);
            WalRedoMetrics m = manager.metrics();
            out.printf("t=%3ds  %8.0f redo/s  p99 %7s  live %4d  spawned %5d  quiesced %5d  crashed %4d  errors %d  wrong %d%n",
                    TimeUnit.NANOSECONDS.toSeconds(now - start), (d - lastDone) * 1e9 / (now - lastTick),
                    fmt(m.redoLatency().p99()), m.liveSidecars(), m.sidecarsStarted(),
                    m.sidecarsKilled().get(KillCause.QUIESCE), m.sidecarsKilled().get(KillCause.ERROR), errors.sum(),
                    wrong.sum());
            lastDone = d;
            lastTick = now;
        }
        stop.set(true);
        crasher.interrupt();
        finished.await(30, TimeUnit.SECONDS);
        double secs = (System.nanoTime() - start) / 1e9;
        WalRedoMetrics m = manager.metrics();
        out.println();
        out.println("| metric | value |");
        out.println("|---|---|");
        row(out, "requests", String.format("%d (%.0f/s)", done.sum(), done.sum() / secs));
        row(out, "wrong pages", o.fake() ? Long.toString(wrong.sum()) : "not checked (real binary)");
        row(out, "errors", errors.sum() + (errorKinds.isEmpty() ? "" : " " + new TreeMap<>(errorKinds)));
        row(out, "redo latency p50 / p99 / max", fmt(m.redoLatency().p50()) + " / " + fmt(m.redoLatency().p99())
                + " / " + fmt(m.redoLatency().max()));
        row(out, "spawn latency p50 / p99", fmt(m.spawnLatency().p50()) + " / " + fmt(m.spawnLatency().p99()));
        row(out, "sidecars started", Long.toString(m.sidecarsStarted()));
        row(out, "sidecars killed by cause", m.sidecarsKilled().toString());
        row(out, "retries", Long.toString(m.retries()));
        row(out, "stderr lines logged / suppressed", m.stderrLinesLogged() + " / " + m.stderrLinesSuppressed());
        row(out, "peak platform threads", Long.toString(maxPlatformThreads.get()));
        row(out, "peak open fds", Long.toString(maxFds.get()));
        return wrong.sum() == 0 ? 0 : 1;
    }

    private static void row(PrintStream out, String k, String v) {
        out.println("| " + k + " | " + v + " |");
    }

    static String fmt(Duration d) {
        long us = TimeUnit.NANOSECONDS.toMicros(d.toNanos());
        return us >= 10_000 ? (us / 1000) + " ms" : us + " µs";
    }

    static long openFds() {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        } catch (IOException e) {
            return -1;
        }
    }
}
