// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import com.zaxxer.nuprocess.NuAbstractProcessHandler;
import com.zaxxer.nuprocess.NuProcess;
import com.zaxxer.nuprocess.NuProcessBuilder;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.NativeRuntime;
import io.walredo.nativeio.SpawnSpec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark 3: spawn → first ping answered, as the host JVM holds more and more open fds, for this library,
 * {@link ProcessBuilder} and NuProcess, alternating per iteration so all three see the same machine state;
 * the C client's posix_spawn at the same fd count is the reference. Then the time from a SIGKILL sent from
 * outside to each one noticing the death.
 */
final class SpawnScenario {
    static final int[] EXTRA_FDS = {0, 1_000, 10_000, 19_000};
    private static final byte[] PING = {'H', 0, 0, 0, 4};
    private static final int PAGE = 8192;
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    /** One way to start a sidecar, ping it and kill it. */
    interface Contender {
        String name();

        /** Spawns, pings, returns the spawn → answer nanoseconds, and kills and reaps the child. */
        long spawnAndPing() throws Exception;

        /** Spawns and pings, SIGKILLs the child by pid from outside, returns nanoseconds until it noticed. */
        long exitNoticed() throws Exception;
    }

    private final BenchSuite.Mode mode;
    private final Path fake;
    private final Path client;

    SpawnScenario(BenchSuite.Mode mode, Path fake, Path client) {
        this.mode = mode;
        this.fake = fake;
        this.client = client;
    }

    Section run(BenchSuite.Progress progress) throws Exception {
        long needed = EXTRA_FDS[EXTRA_FDS.length - 1] + 500L;
        if (Probes.fdSoftLimit() < needed) {
            throw new IllegalStateException("the spawn benchmark holds " + EXTRA_FDS[EXTRA_FDS.length - 1]
                    + " extra fds and needs an fd limit of at least " + needed + "; this JVM has "
                    + Probes.fdLimit() + " (./scripts/bench raises the soft limit to the hard one)");
        }
        List<Contender> contenders = List.of(new Library(fake), new Jdk(fake), new Nu(fake));
        int n = mode.spawnSamples();
        progress.step("spawn latency: warm-up");
        for (int i = 0; i < mode.spawnWarmup(); i++) {
            for (Contender c : contenders) {
                c.spawnAndPing();
            }
        }
        long[][][] samples = new long[EXTRA_FDS.length][contenders.size()][n];
        long[][] cSamples = new long[EXTRA_FDS.length][n];
        List<FileChannel> held = new ArrayList<>();
        try {
            for (int level = 0; level < EXTRA_FDS.length; level++) {
                while (held.size() < EXTRA_FDS[level]) {
                    held.add(FileChannel.open(Path.of("/dev/null")));
                }
                try (CSpawner c = new CSpawner(client, fake, EXTRA_FDS[level])) {
                    for (int i = 0; i < mode.spawnWarmup(); i++) {
                        c.spawnAndPing();
                    }
                    for (int i = 0; i < n; i++) {
                        if (i % 10 == 0) {
                            progress.step("spawn latency with " + EXTRA_FDS[level] + " extra fds: " + i + "/" + n
                                    + " (JVM fds " + Probes.fds() + ")");
                        }
                        // All four take turns, and the order rotates, so none always runs right after another.
                        for (int k = 0; k <= contenders.size(); k++) {
                            int who = (k + i) % (contenders.size() + 1);
                            if (who == contenders.size()) {
                                cSamples[level][i] = c.spawnAndPing();
                            } else {
                                samples[level][who][i] = contenders.get(who).spawnAndPing();
                            }
                        }
                    }
                }
            }
        } finally {
            for (FileChannel ch : held) {
                ch.close();
            }
        }
        int m = mode.exitSamples();
        long[][] exit = new long[contenders.size()][m];
        for (int i = 0; i < m; i++) {
            progress.step("exit noticed: " + i + "/" + m);
            for (int c = 0; c < contenders.size(); c++) {
                exit[c][i] = contenders.get(c).exitNoticed();
            }
        }
        return report(contenders, samples, cSamples, exit);
    }

    /**
     * The C reference: a {@code redo-client spawn-serve} process holding the same number of extra fds, asked
     * for one spawn at a time so that its spawns interleave with the Java contenders'.
     */
    private static final class CSpawner implements AutoCloseable {
        private final Process process;
        private final BufferedReader answers;
        private final Writer requests;

        CSpawner(Path client, Path fake, int extraFds) throws IOException {
            process = new ProcessBuilder(client.toString(), "spawn-serve", fake.toString(), Integer.toString(extraFds))
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start();
            answers = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.US_ASCII));
            requests = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.US_ASCII);
        }

        long spawnAndPing() throws IOException {
            requests.write("spawn\n");
            requests.flush();
            String line = answers.readLine();
            if (line == null) {
                throw new IOException("redo-client spawn-serve ended early; its stderr is above");
            }
            return Math.round(Double.parseDouble(line) * 1e3);
        }

        @Override
        public void close() throws IOException, InterruptedException {
            requests.close();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
            answers.close();
        }
    }

    private Section report(List<Contender> contenders, long[][][] samples, long[][] cSamples, long[][] exit)
            throws IOException {
        Section s = new Section(
                "Spawn latency vs the host's open fds",
                "Spawn → first ping answered (spawn the fake, write a Ping, read its 8,192-byte answer), with 0, "
                        + "1,000, 10,000 and 19,000 extra fds open in the JVM (fd limit: " + Probes.fdLimit() + "). "
                        + "The three Java contenders alternate per iteration (the order rotates) so they see the "
                        + "same machine state: this library (`NativeRuntime.spawn`: posix_spawn with "
                        + "`addclosefrom_np`), `java.lang.ProcessBuilder` and NuProcess 3.0.0, and the C reference "
                        + "takes its turn among them: `redo-client spawn-serve`, posix_spawn with the same file "
                        + "actions from a C process holding the same number of extra fds, asked for one spawn at a "
                        + "time. " + samples[0][0].length + " samples per cell. Each Java contender's clock stops "
                        + "where it sees the answer: after the waiting thread wakes for this library and "
                        + "ProcessBuilder, inside the callback thread for NuProcess (one wake-up less); this "
                        + "library starts the child with an empty environment, the others with the JVM's.");
        Table t = new Table("extra fds", "contender", "median", "p90", "max", "vs library (median)");
        List<Chart.Series> series = new ArrayList<>();
        List<List<double[]>> points = new ArrayList<>();
        for (int c = 0; c <= contenders.size(); c++) {
            points.add(new ArrayList<>());
        }
        for (int level = 0; level < EXTRA_FDS.length; level++) {
            Stats lib = Stats.of(samples[level][0]);
            for (int c = 0; c <= contenders.size(); c++) {
                Stats st = c < contenders.size() ? Stats.of(samples[level][c]) : Stats.of(cSamples[level]);
                String name = c < contenders.size() ? contenders.get(c).name() : "C posix_spawn";
                t.row(
                        String.format("%,d", EXTRA_FDS[level]),
                        name,
                        Stats.time(st.p50()),
                        Stats.time(st.p90()),
                        Stats.time(st.max()),
                        c == 0 ? "" : Stats.ratio((double) st.p50() / lib.p50()));
                points.get(c).add(new double[] {EXTRA_FDS[level], st.p50() / 1e6, st.p50() / 1e6, st.p90() / 1e6});
            }
        }
        s.table("", t);
        for (int c = 0; c <= contenders.size(); c++) {
            String name = c < contenders.size() ? contenders.get(c).name() : "C posix_spawn";
            series.add(new Chart.Series(name, points.get(c), c == contenders.size(), c));
        }
        s.charts.add(BenchSuite.chart(
                "spawn-latency-vs-fds.png",
                new Chart(
                        "spawn → first ping vs extra open fds (points: median; bars up to p90)",
                        "extra open fds in the host",
                        "ms",
                        false,
                        false,
                        series)));

        int top = EXTRA_FDS.length - 1;
        Stats lib = Stats.of(samples[top][0]);
        Stats c19 = Stats.of(cSamples[top]);
        double vsC = (double) lib.p50() / c19.p50();
        s.target(
                "spawn with 19,000 extra fds: at most 1.3x the C posix_spawn figure",
                Stats.time(lib.p50()) + " vs " + Stats.time(c19.p50()) + ": " + Stats.ratio(vsC),
                vsC,
                1.3,
                true);
        for (int c = 1; c < contenders.size(); c++) {
            Stats other = Stats.of(samples[top][c]);
            double speedup = (double) other.p50() / lib.p50();
            s.target(
                    "spawn with 19,000 extra fds: at least 10x faster than "
                            + contenders.get(c).name(),
                    Stats.time(other.p50()) + " vs " + Stats.time(lib.p50()) + ": " + Stats.ratio(speedup),
                    speedup,
                    10,
                    false);
        }

        Table e = new Table("contender", "median", "p90", "max");
        for (int c = 0; c < contenders.size(); c++) {
            Stats st = Stats.of(exit[c]);
            e.row(contenders.get(c).name(), Stats.time(st.p50()), Stats.time(st.p90()), Stats.time(st.max()));
        }
        s.table(
                "Exit noticed: SIGKILL sent by pid from outside (`kill(2)` through `ProcessHandle.destroyForcibly`) "
                        + "→ the contender reports the exit (our `onExit()` future, `Process.onExit()`, NuProcess's "
                        + "`onExit` callback); " + exit[0].length + " samples each, 0 extra fds.",
                e);
        Stats libExit = Stats.of(exit[0]);
        s.target("exit noticed: median under 5 ms", Stats.time(libExit.p50()), libExit.p50(), 5_000_000, true);
        return s;
    }

    private static void checkPage(byte[] page, int got, String who) {
        if (got != PAGE) {
            throw new IllegalStateException(who + ": ping answer was " + got + " bytes, expected " + PAGE);
        }
    }

    private static void killFromOutside(long pid) {
        ProcessHandle.of(pid)
                .orElseThrow(() -> new IllegalStateException("pid " + pid + " is gone before the kill"))
                .destroyForcibly();
    }

    /** This library's spawn: {@link NativeRuntime#spawn}, pipes through the reactor. */
    static final class Library implements Contender {
        private final NativeRuntime runtime = NativeRuntime.get();
        private final SpawnSpec spec;
        private final ByteBuffer page = ByteBuffer.allocateDirect(PAGE);

        Library(Path fake) {
            spec = new SpawnSpec(fake, List.of(fake.toString(), "--wal-redo"), Map.of());
        }

        @Override
        public String name() {
            return "walredo (posix_spawn)";
        }

        private ChildProcess spawnPinged(Deadline d, long[] nanos) throws IOException {
            long t0 = System.nanoTime();
            ChildProcess child = runtime.spawn(spec, d);
            try {
                child.stdin().writeFully(ByteBuffer.wrap(PING), d);
                page.clear();
                child.stdout().readFully(page, d);
            } catch (IOException | RuntimeException e) {
                child.close();
                throw e;
            }
            nanos[0] = System.nanoTime() - t0;
            return child;
        }

        @Override
        public long spawnAndPing() throws Exception {
            Deadline d = Deadline.after(TIMEOUT);
            long[] nanos = new long[1];
            try (ChildProcess child = spawnPinged(d, nanos)) {
                child.killAndReap(d);
            }
            return nanos[0];
        }

        @Override
        public long exitNoticed() throws Exception {
            Deadline d = Deadline.after(TIMEOUT);
            try (ChildProcess child = spawnPinged(d, new long[1])) {
                CompletableFuture<?> exit = child.onExit();
                long t0 = System.nanoTime();
                killFromOutside(child.pid());
                exit.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                return System.nanoTime() - t0;
            }
        }
    }

    /** {@link ProcessBuilder}: the JDK's jspawnhelper, which closes every inherited fd one by one. */
    static final class Jdk implements Contender {
        private final List<String> command;
        private final byte[] page = new byte[PAGE];

        Jdk(Path fake) {
            command = List.of(fake.toString(), "--wal-redo");
        }

        @Override
        public String name() {
            return "ProcessBuilder";
        }

        private Process spawnPinged(long[] nanos) throws IOException {
            long t0 = System.nanoTime();
            Process p = new ProcessBuilder(command).start();
            try {
                OutputStream in = p.getOutputStream();
                in.write(PING);
                in.flush();
                InputStream out = p.getInputStream();
                checkPage(page, out.readNBytes(page, 0, PAGE), name());
            } catch (IOException | RuntimeException e) {
                p.destroyForcibly();
                throw e;
            }
            nanos[0] = System.nanoTime() - t0;
            return p;
        }

        @Override
        public long spawnAndPing() throws Exception {
            long[] nanos = new long[1];
            Process p = spawnPinged(nanos);
            p.destroyForcibly();
            p.waitFor();
            p.getOutputStream().close();
            p.getInputStream().close();
            p.getErrorStream().close();
            return nanos[0];
        }

        @Override
        public long exitNoticed() throws Exception {
            Process p = spawnPinged(new long[1]);
            CompletableFuture<Process> exit = p.onExit();
            long t0 = System.nanoTime();
            killFromOutside(p.pid());
            exit.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            long noticed = System.nanoTime() - t0;
            p.getOutputStream().close();
            p.getInputStream().close();
            p.getErrorStream().close();
            return noticed;
        }
    }

    /** NuProcess 3.0.0: callbacks from its own epoll threads. */
    static final class Nu implements Contender {
        private final List<String> command;

        Nu(Path fake) {
            command = List.of(fake.toString(), "--wal-redo");
        }

        @Override
        public String name() {
            return "NuProcess 3.0.0";
        }

        /** Collects one ping answer and the exit. */
        private static final class Handler extends NuAbstractProcessHandler {
            final CompletableFuture<Long> answered = new CompletableFuture<>();
            final CompletableFuture<Long> exited = new CompletableFuture<>();
            private int got;

            @Override
            public void onStart(NuProcess p) {
                p.wantWrite();
            }

            @Override
            public boolean onStdinReady(ByteBuffer buffer) {
                buffer.put(PING);
                buffer.flip();
                return false;
            }

            @Override
            public void onStdout(ByteBuffer buffer, boolean closed) {
                got += buffer.remaining();
                buffer.position(buffer.limit());
                if (got >= PAGE) {
                    answered.complete(System.nanoTime());
                }
            }

            @Override
            public void onExit(int exitCode) {
                exited.complete(System.nanoTime());
                answered.completeExceptionally(
                        new IllegalStateException("exited with " + exitCode + " after " + got + " bytes"));
            }
        }

        private NuProcess spawnPinged(Handler h, long[] nanos) throws Exception {
            NuProcessBuilder b = new NuProcessBuilder(command);
            b.setProcessListener(h);
            long t0 = System.nanoTime();
            NuProcess p = b.start();
            if (p == null) {
                throw new IllegalStateException("NuProcess failed to start " + command);
            }
            nanos[0] = h.answered.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS) - t0;
            return p;
        }

        @Override
        public long spawnAndPing() throws Exception {
            Handler h = new Handler();
            long[] nanos = new long[1];
            NuProcess p = spawnPinged(h, nanos);
            p.destroy(true);
            h.exited.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            return nanos[0];
        }

        @Override
        public long exitNoticed() throws Exception {
            Handler h = new Handler();
            NuProcess p = spawnPinged(h, new long[1]);
            long t0 = System.nanoTime();
            killFromOutside(p.getPID());
            return h.exited.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS) - t0;
        }
    }
}
