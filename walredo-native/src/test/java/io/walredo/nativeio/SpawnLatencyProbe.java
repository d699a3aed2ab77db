// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.LibC;
import io.walredo.nativeio.internal.Linux;
import io.walredo.nativeio.internal.NativeLibrary;
import io.walredo.nativeio.internal.NativeMemory;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Measures spawn → first ping latency (spawn, write a Ping, read the 8192-byte answer) for 200 spawns, first with no
 * extra fds, then with 19,000 extra fds open without O_CLOEXEC, and prints min / median / p90. Not a test: it
 * asserts nothing. Run it on a quiet machine, e.g.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp CLASSPATH io.walredo.nativeio.SpawnLatencyProbe \
 *     walredo-native/target/native/fake-walredo
 * </pre>
 */
public final class SpawnLatencyProbe {

    private static final int SPAWNS = 200;
    private static final int WARMUP = 50;
    private static final int EXTRA_FDS = 19_000;

    private SpawnLatencyProbe() {}

    /**
     * Runs the probe.
     *
     * @param args the fake binary's path (default: the {@code walredo.fake.binary} system property)
     */
    public static void main(String[] args) throws Exception {
        Path fake = Paths.get(args.length > 0 ? args[0] : System.getProperty("walredo.fake.binary"))
                .toAbsolutePath();
        SpawnSpec spec = new SpawnSpec(fake, List.of("fake-walredo", "--wal-redo"), Map.of());
        NativeRuntime runtime = NativeRuntime.get();
        LibC libc = NativeLibrary.get().libc();
        raiseFdLimit(libc);

        measure(runtime, spec, WARMUP, "warm-up");
        measure(runtime, spec, SPAWNS, "0 extra fds");

        int devNull = libc.open("/dev/null", Linux.O_RDONLY);
        List<Integer> extra = new ArrayList<>();
        try {
            for (int i = 0; i < EXTRA_FDS - 1; i++) {
                int fd = libc.dup(devNull);
                if (fd < 0) {
                    throw new IllegalStateException("dup failed after " + extra.size() + " fds: errno "
                            + NativeLibrary.get().errno());
                }
                extra.add(fd);
            }
            measure(runtime, spec, SPAWNS, EXTRA_FDS + " extra fds (no O_CLOEXEC)");
        } finally {
            extra.forEach(libc::close);
            libc.close(devNull);
        }
    }

    private static void measure(NativeRuntime runtime, SpawnSpec spec, int n, String label) throws Exception {
        long[] total = new long[n];
        long[] spawn = new long[n];
        ByteBuffer page = ByteBuffer.allocateDirect(TestSupport.PAGE_BYTES);
        for (int i = 0; i < n; i++) {
            Deadline deadline = Deadline.after(Duration.ofSeconds(10));
            long start = System.nanoTime();
            try (ChildProcess child = runtime.spawn(spec, deadline)) {
                spawn[i] = System.nanoTime() - start;
                TestSupport.pingPong(child, page, deadline);
                total[i] = System.nanoTime() - start;
                child.killAndReap(deadline);
            }
        }
        Arrays.sort(total);
        Arrays.sort(spawn);
        System.out.printf(
                "%-32s n=%d  spawn->first ping: min %.3f ms  median %.3f ms  p90 %.3f ms  max %.3f ms"
                        + "  (spawn() alone: median %.3f ms)%n",
                label,
                n,
                total[0] / 1e6,
                total[n / 2] / 1e6,
                total[n * 9 / 10] / 1e6,
                total[n - 1] / 1e6,
                spawn[n / 2] / 1e6);
    }

    /** Raises the soft RLIMIT_NOFILE to the hard limit (the JVM usually has done so already). */
    private static void raiseFdLimit(LibC libc) {
        try (NativeMemory mem = new NativeMemory(16)) {
            long rlimit = mem.allocate(16);
            if (libc.getrlimit(Linux.RLIMIT_NOFILE, rlimit) != 0) {
                throw new IllegalStateException("getrlimit failed");
            }
            long soft = mem.getLong(rlimit);
            long hard = mem.getLong(rlimit + 8);
            if (soft < hard) {
                mem.putLong(rlimit, hard);
                if (libc.setrlimit(Linux.RLIMIT_NOFILE, rlimit) != 0) {
                    throw new IllegalStateException("setrlimit failed");
                }
            }
            System.out.printf("RLIMIT_NOFILE soft %d -> %d (hard %d)%n", soft, Math.max(soft, hard), hard);
        }
    }
}
