// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.expected;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.sidecarPid;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.walredo.nativeio.internal.LibC;
import io.walredo.nativeio.internal.NativeLibrary;
import io.walredo.nativeio.internal.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a sidecar does not inherit from the pageserver, read back from /proc of a real sidecar. */
class SidecarContainmentTest {

    private static final TenantShardId T = TenantShardId.of(0x5eed_c0deL, 1);
    private static final int RLIMIT_CORE = 4;

    @Test
    void byDefaultASidecarIsContained() throws Exception {
        try (WalRedoManager m = WalRedoManager.create(config().build())) {
            assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.GC_COMPACTION));
            int pid = sidecarPid(m, T);
            assertEquals(pid, processGroup(pid), "leads a group of its own");
            assertNotEquals(processGroup((int) ProcessHandle.current().pid()), processGroup(pid));
            assertEquals(Path.of("/"), Files.readSymbolicLink(Path.of("/proc/" + pid + "/cwd")));
            assertEquals("0077", status(pid, "Umask"));
            assertEquals(List.of("1024", "1024"), limit(pid, "Max open files"));
            assertEquals(List.of("0", "0"), limit(pid, "Max core file size"));
            assertEquals(
                    "1000",
                    Files.readString(Path.of("/proc/" + pid + "/oom_score_adj")).trim());
        }
    }

    @Test
    void everyContainmentSettingReachesTheSidecar(@TempDir Path dir) throws Exception {
        WalRedoConfig cfg = config().sidecarWorkingDirectory(dir)
                .sidecarOpenFilesLimit(256)
                .sidecarAddressSpaceLimit(4L << 30)
                .sidecarCpuTimeLimit(Duration.ofHours(1))
                .sidecarOomScoreAdj(500)
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.GC_COMPACTION));
            int pid = sidecarPid(m, T);
            assertEquals(dir.toRealPath(), Files.readSymbolicLink(Path.of("/proc/" + pid + "/cwd")));
            assertEquals(List.of("256", "256"), limit(pid, "Max open files"));
            String as = Long.toString(4L << 30);
            assertEquals(List.of(as, as), limit(pid, "Max address space"));
            assertEquals(List.of("3600", "3601"), limit(pid, "Max cpu time"));
            assertEquals(
                    "500",
                    Files.readString(Path.of("/proc/" + pid + "/oom_score_adj")).trim());
        }
    }

    /** Skipped where no cgroup v2 hierarchy is mounted or this user cannot create a cgroup in it. */
    @Test
    void aSidecarIsMovedIntoTheConfiguredCgroup() throws Exception {
        Path mount = cgroup2Mount();
        assumeTrue(mount != null, "no cgroup2 hierarchy in /proc/self/mountinfo");
        Path group =
                mount.resolve("walredo-core-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        try {
            Files.createDirectory(group);
        } catch (IOException e) {
            assumeTrue(false, "cannot create a cgroup under " + mount + ": " + e);
        }
        try {
            int pid;
            try (WalRedoManager m =
                    WalRedoManager.create(config().sidecarCgroup(group).build())) {
                assertArrayEquals(expected(request(1)), m.redo(T, request(1), AttemptType.GC_COMPACTION));
                pid = sidecarPid(m, T);
                assertTrue(
                        Files.readAllLines(Path.of("/proc/" + pid + "/cgroup"))
                                .contains("0::/" + mount.relativize(group)),
                        "not in " + group);
            }
            Fixtures.awaitReaped(pid);
        } finally {
            Fixtures.await(
                    "the test cgroup removed",
                    Duration.ofSeconds(10),
                    () -> group.toFile().delete());
        }
    }

    @Test
    void badContainmentSettingsAreRejectedAtBuild() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> config().sidecarWorkingDirectory(Path.of("/nonexistent/walredo"))
                        .sidecarOpenFilesLimit(10)
                        .sidecarAddressSpaceLimit(1024)
                        .sidecarCpuTimeLimit(Duration.ofMillis(10))
                        .sidecarOomScoreAdj(2000)
                        .sidecarCgroup(Path.of("/tmp"))
                        .build());
        for (String name : List.of(
                "sidecarWorkingDirectory",
                "sidecarOpenFilesLimit",
                "sidecarAddressSpaceLimit",
                "sidecarCpuTimeLimit",
                "sidecarOomScoreAdj",
                "sidecarCgroup")) {
            assertTrue(e.getMessage().contains(name), e.getMessage());
        }
    }

    /**
     * The pageserver allows core dumps (its soft RLIMIT_CORE is raised to its hard limit here), and the kernel
     * writes cores into the crashing process's working directory ({@code core_pattern} "core"). A crashing sidecar
     * still writes none; with {@code sidecarCoreDumps(true)} the same crash does, which shows the check can fail.
     */
    @Test
    void aCrashingSidecarWritesNoCoreEvenWhenTheHostAllowsThem(@TempDir Path dir) throws Exception {
        String pattern =
                Files.readString(Path.of("/proc/sys/kernel/core_pattern")).trim();
        assumeTrue(
                pattern.startsWith("core"), "core_pattern is '" + pattern + "', not a file in the working directory");
        long[] saved = coreLimit();
        assumeTrue(saved[1] != 0, "the hard RLIMIT_CORE is 0: no process here can dump core");
        setCoreLimit(saved[1], saved[1]);
        try {
            Path quiet = Files.createDirectory(dir.resolve("contained"));
            assertTrue(crash(quiet, false).exitStatus().orElseThrow().contains("SIGSEGV"));
            SidecarCrashedException contained = crash(quiet, false);
            assertFalse(contained.exitStatus().orElseThrow().contains("core dumped"));
            assertFalse(contained.coreDumped());
            assertEquals(java.util.OptionalInt.of(11), contained.signal());
            assertEquals(List.of(), cores(quiet));

            Path allowed = Files.createDirectory(dir.resolve("allowed"));
            SidecarCrashedException dumped = crash(allowed, true);
            assertTrue(dumped.exitStatus().orElseThrow().contains("core dumped"));
            assertTrue(dumped.coreDumped());
            assertFalse(cores(allowed).isEmpty(), "the control case wrote no core");
        } finally {
            setCoreLimit(saved[0], saved[1]);
        }
    }

    /**
     * A sidecar that reads one byte of its first request and dies of SIGSEGV (the fake's own {@code --crash-after}
     * turns core dumps off itself, so a shell stands in for it here).
     */
    private static SidecarCrashedException crash(Path dir, boolean coreDumps) throws Exception {
        Path binary = Files.writeString(
                Files.createTempFile(dir.getParent(), "segv", ".sh"),
                "#!/bin/sh\nhead -c 1 >/dev/null\nkill -SEGV $$\n");
        Files.setPosixFilePermissions(binary, PosixFilePermissions.fromString("rwx------"));
        WalRedoConfig cfg = config().redoBinary(Fixtures.PG, binary)
                .sidecarWorkingDirectory(dir)
                .sidecarCoreDumps(coreDumps)
                .build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            return assertThrows(SidecarCrashedException.class, () -> m.redo(T, request(1), AttemptType.GC_COMPACTION));
        }
    }

    private static List<Path> cores(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().startsWith("core"))
                    .toList();
        }
    }

    private static long[] coreLimit() {
        LibC libc = NativeLibrary.get().libc();
        try (NativeMemory mem = new NativeMemory(16)) {
            long rlimit = mem.allocate(16);
            assertEquals(0, libc.getrlimit(RLIMIT_CORE, rlimit));
            return new long[] {mem.getLong(rlimit), mem.getLong(rlimit + 8)};
        }
    }

    private static void setCoreLimit(long soft, long hard) {
        LibC libc = NativeLibrary.get().libc();
        try (NativeMemory mem = new NativeMemory(16)) {
            long rlimit = mem.allocate(16);
            mem.putLong(rlimit, soft);
            mem.putLong(rlimit + 8, hard);
            assertEquals(0, libc.setrlimit(RLIMIT_CORE, rlimit));
        }
    }

    /** The cgroup2 mount point from /proc/self/mountinfo (the field after " - " is the type), or null. */
    private static Path cgroup2Mount() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] halves = line.split(" - ", 2);
            if (halves.length == 2 && halves[1].startsWith("cgroup2 ")) {
                return Path.of(halves[0].split(" ")[4]);
            }
        }
        return null;
    }

    /** Field 5 of /proc/PID/stat. */
    private static int processGroup(int pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        return Integer.parseInt(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[2]);
    }

    private static String status(int pid, String field) throws IOException {
        return Files.readAllLines(Path.of("/proc/" + pid + "/status")).stream()
                .filter(l -> l.startsWith(field + ":"))
                .map(l -> l.substring(field.length() + 1).trim())
                .findFirst()
                .orElseThrow(() -> new AssertionError(field + " not in /proc/" + pid + "/status"));
    }

    /** Soft and hard value of one row of /proc/PID/limits. */
    private static List<String> limit(int pid, String name) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/limits"))) {
            if (line.startsWith(name + " ")) {
                String[] f = line.substring(name.length()).trim().split("\\s+");
                return List.of(f[0], f[1]);
            }
        }
        throw new AssertionError(name + " not in /proc/" + pid + "/limits");
    }
}
