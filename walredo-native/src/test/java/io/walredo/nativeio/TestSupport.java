// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.nativeio.internal.LibC;
import io.walredo.nativeio.internal.NativeLibrary;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** Helpers shared by the native tests: the fake binary, protocol bytes and /proc counters. No mutable state. */
final class TestSupport {

    static final int PAGE_BYTES = 8192;
    /** A Ping message: type 'H', length 4 (the length field counts itself). */
    static final byte[] PING = {'H', 0, 0, 0, 4};

    private TestSupport() {}

    /** The fake redo binary built by walredo-native/src/main/c/build.sh. */
    static Path fakeBinary() {
        String p = System.getProperty("walredo.fake.binary");
        assertTrue(p != null && !p.isEmpty(), "system property walredo.fake.binary is not set (run through Maven)");
        Path path = Paths.get(p);
        assertTrue(Files.isExecutable(path), "fake binary missing: " + path);
        return path;
    }

    /** A spec for the fake binary with {@code --wal-redo} and the given extra flags, and an empty environment. */
    static SpawnSpec fake(String... flags) {
        List<String> argv = new ArrayList<>();
        argv.add("fake-walredo");
        argv.add("--wal-redo");
        argv.addAll(List.of(flags));
        return new SpawnSpec(fakeBinary(), argv, Map.of());
    }

    /** A spec for {@code /bin/sh -c script} with an empty environment. */
    static SpawnSpec sh(String script) {
        return new SpawnSpec(Paths.get("/bin/sh"), List.of("sh", "-c", script), Map.of());
    }

    static Deadline seconds(long s) {
        return Deadline.after(Duration.ofSeconds(s));
    }

    static ByteBuffer ping() {
        return ByteBuffer.allocateDirect(PING.length).put(PING).flip();
    }

    /** Sends a ping and reads the 8192-byte answer; asserts it is all zeros. */
    static void pingPong(ChildProcess child, ByteBuffer page, Deadline deadline) throws IOException {
        child.stdin().writeFully(ping(), deadline);
        page.clear();
        child.stdout().readFully(page, deadline);
        page.flip();
        while (page.hasRemaining()) {
            if (page.get() != 0) {
                throw new AssertionError("ping answer of pid " + child.pid() + " is not all zeros");
            }
        }
    }

    /** Reads one line (without the newline) from a pipe end, byte by byte; for short diagnostic lines only. */
    static String readLine(PipeReadEnd in, Deadline deadline) throws IOException {
        ByteBuffer one = ByteBuffer.allocateDirect(1);
        StringBuilder sb = new StringBuilder();
        while (true) {
            one.clear();
            if (in.read(one, deadline) < 0) {
                return sb.length() == 0 ? null : sb.toString();
            }
            char c = (char) (one.get(0) & 0xff);
            if (c == '\n') {
                return sb.toString();
            }
            sb.append(c);
        }
    }

    /** Reads everything until EOF. */
    static String readAll(PipeReadEnd in, Deadline deadline) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(4096);
        StringBuilder sb = new StringBuilder();
        while (true) {
            buf.clear();
            int n = in.read(buf, deadline);
            if (n < 0) {
                return sb.toString();
            }
            sb.append(new String(buf.array(), 0, n, StandardCharsets.UTF_8));
        }
    }

    static int ourPid() {
        return (int) ProcessHandle.current().pid();
    }

    /** Number of fds open in this JVM. */
    static int openFds() throws IOException {
        try (Stream<Path> s = Files.list(Paths.get("/proc/self/fd"))) {
            // Files.list itself holds one fd for the directory; it is the same before and after.
            return (int) s.count();
        }
    }

    /** Pids of this JVM's children (any state), from /proc/PID/stat. */
    static List<Integer> children() throws IOException {
        return childrenInState(null);
    }

    /** Pids of this JVM's zombie children. */
    static List<Integer> zombies() throws IOException {
        return childrenInState('Z');
    }

    private static List<Integer> childrenInState(Character state) throws IOException {
        int me = ourPid();
        List<Integer> result = new ArrayList<>();
        try (Stream<Path> s = Files.list(Paths.get("/proc"))) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String name = p.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                String stat;
                try {
                    stat = Files.readString(p.resolve("stat"));
                } catch (IOException gone) {
                    continue;
                }
                // pid (comm) state ppid ...; comm may contain spaces and parentheses, so parse after the last ')'.
                String[] rest = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                char st = rest[0].charAt(0);
                int ppid = Integer.parseInt(rest[1]);
                if (ppid == me && (state == null || st == state)) {
                    result.add(Integer.parseInt(name));
                }
            }
        }
        return result;
    }

    /** Platform (non-virtual) live threads visible to Java, as counted by ThreadMXBean. */
    static int platformThreads() {
        return ManagementFactory.getThreadMXBean().getThreadCount();
    }

    /** The value of a field of /proc/PID/status, e.g. "SigBlk". */
    static String procStatus(int pid, String field) throws IOException {
        for (String line : Files.readAllLines(Paths.get("/proc/" + pid + "/status"))) {
            if (line.startsWith(field + ":")) {
                return line.substring(field.length() + 1).trim();
            }
        }
        throw new AssertionError(field + " not in /proc/" + pid + "/status");
    }

    /** Polls {@code condition} (every millisecond) until it holds; fails the test at the deadline. */
    static void awaitTrue(String what, java.util.function.BooleanSupplier condition, Deadline deadline) {
        while (!condition.getAsBoolean()) {
            if (deadline.isExpired()) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
    }

    /** True if {@code t} is parked (a virtual thread waiting in LockSupport.park shows WAITING or TIMED_WAITING). */
    static boolean isParked(Thread t) {
        Thread.State s = t.getState();
        return s == Thread.State.WAITING || s == Thread.State.TIMED_WAITING;
    }

    static LibC libc() {
        return NativeLibrary.get().libc();
    }
}
