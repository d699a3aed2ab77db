// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;

/** A throwaway cgroup v2 directory for tests; the test is skipped (with the reason) where none can be made. */
final class TestCgroup {

    private TestCgroup() {}

    /** Creates {@code <cgroup2 mount>/<prefix><random>}, or skips the calling test. */
    static Path create(String prefix) {
        Optional<Path> mount = mount();
        assumeTrue(mount.isPresent(), "no cgroup2 hierarchy in /proc/self/mountinfo");
        Path group = mount.get().resolve(prefix + ProcessHandle.current().pid() + "-" + System.nanoTime());
        try {
            Files.createDirectory(group);
        } catch (IOException e) {
            assumeTrue(false, "cannot create a cgroup under " + mount.get() + ": " + e);
        }
        return group;
    }

    /** The cgroup2 mount point, from /proc/self/mountinfo. */
    static Optional<Path> mount() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] f = line.split(" ");
                int dash = java.util.Arrays.asList(f).indexOf("-");
                if (dash > 0 && dash + 1 < f.length && f[dash + 1].equals("cgroup2")) {
                    return Optional.of(Path.of(f[4]));
                }
            }
        } catch (IOException e) {
            return Optional.empty();
        }
        return Optional.empty();
    }

    /** {@code group}'s path as /proc/PID/cgroup shows it ("/name"). */
    static String relative(Path group) {
        return "/" + mount().orElseThrow().relativize(group);
    }

    /** The v2 line ("0::/path") of /proc/PID/cgroup, as a path. */
    static String of(int pid) throws IOException {
        return Files.readAllLines(Path.of("/proc/" + pid + "/cgroup")).stream()
                .filter(l -> l.startsWith("0::"))
                .map(l -> l.substring(3))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no cgroup v2 line in /proc/" + pid + "/cgroup"));
    }

    /** Removes the group once its processes are gone (a reaped child leaves it at once), within ten seconds. */
    static void remove(Path group) throws IOException {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            try {
                Files.delete(group);
                return;
            } catch (IOException busy) {
                if (System.nanoTime() - until > 0) {
                    throw busy;
                }
                LockSupport.parkNanos(Duration.ofMillis(10).toNanos());
            }
        }
    }
}
