// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static io.walredo.nativeio.TestSupport.awaitTrue;
import static io.walredo.nativeio.TestSupport.children;
import static io.walredo.nativeio.TestSupport.fake;
import static io.walredo.nativeio.TestSupport.ourPid;
import static io.walredo.nativeio.TestSupport.procStatus;
import static io.walredo.nativeio.TestSupport.readLine;
import static io.walredo.nativeio.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a child does not inherit: the JVM's process group, working directory, umask, resource limits and OOM score,
 * each read back from {@code /proc}; and a child's group dies with it.
 */
class ContainmentTest {

    private final NativeRuntime runtime = NativeRuntime.get();

    @Test
    void everyChildLeadsAProcessGroupOfItsOwn() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            assertEquals(child.pid(), processGroup(child.pid()));
            assertNotEquals(processGroup(ourPid()), processGroup(child.pid()));
            child.stdin().close();
            assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode());
        }
    }

    @Test
    void directoryUmaskLimitsAndOomScoreAreWhatTheContainmentSays(@TempDir Path dir) throws Exception {
        String jvmUmask = procStatus(ourPid(), "Umask");
        Containment containment = new Containment(
                Optional.of(dir),
                OptionalInt.of(0077),
                List.of(
                        ResourceLimit.of(ResourceLimit.Resource.CORE, 0),
                        new ResourceLimit(ResourceLimit.Resource.NOFILE, 100, 200),
                        ResourceLimit.of(ResourceLimit.Resource.AS, 1L << 32),
                        new ResourceLimit(ResourceLimit.Resource.CPU, 3600, ResourceLimit.UNLIMITED)),
                OptionalInt.of(777));
        SpawnSpec spec = fake();
        spec = new SpawnSpec(spec.executable(), spec.argv(), spec.environment(), containment);
        try (ChildProcess child = runtime.spawn(spec, seconds(10))) {
            int pid = child.pid();
            assertEquals(dir.toRealPath(), Files.readSymbolicLink(Path.of("/proc/" + pid + "/cwd")));
            assertEquals("0077", procStatus(pid, "Umask"));
            assertEquals(List.of("0", "0"), limit(pid, "Max core file size"));
            assertEquals(List.of("100", "200"), limit(pid, "Max open files"));
            assertEquals(List.of(Long.toString(1L << 32), Long.toString(1L << 32)), limit(pid, "Max address space"));
            assertEquals(List.of("3600", "unlimited"), limit(pid, "Max cpu time"));
            assertEquals(
                    "777",
                    Files.readString(Path.of("/proc/" + pid + "/oom_score_adj")).trim());
            child.stdin().close();
            assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode());
        }
        assertEquals(jvmUmask, procStatus(ourPid(), "Umask"), "the JVM's own umask is unchanged");
    }

    @Test
    void withoutContainmentTheChildInheritsDirectoryAndUmask() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            assertEquals(
                    Files.readSymbolicLink(Path.of("/proc/self/cwd")),
                    Files.readSymbolicLink(Path.of("/proc/" + child.pid() + "/cwd")));
            assertEquals(procStatus(ourPid(), "Umask"), procStatus(child.pid(), "Umask"));
            child.stdin().close();
            child.onExit().get(10, TimeUnit.SECONDS);
        }
    }

    /** A process the child forked is in the child's group: a signal to the child reaches it too. */
    @Test
    void signallingTheChildSignalsWhatItForked() throws Exception {
        try (ChildProcess child = runtime.spawn(TestSupport.sh("sleep 600 & echo $!; wait"), seconds(10))) {
            int grandchild =
                    Integer.parseInt(readLine(child.stdout(), seconds(10)).trim());
            assertEquals(child.pid(), processGroup(grandchild));
            assertTrue(child.signal(NativeRuntime.signalNumber("SIGKILL")));
            child.onExit().get(10, TimeUnit.SECONDS);
            awaitTrue("the grandchild is gone", () -> gone(grandchild), seconds(10));
        }
    }

    /**
     * A child that exits on its own leaves what it forked behind; the reactor kills its group before the reap. Without
     * that, the grandchild here would sleep for ten minutes.
     */
    @Test
    void whatAChildForkedDiesWhenTheChildExits() throws Exception {
        try (ChildProcess child = runtime.spawn(TestSupport.sh("sleep 600 & echo $!"), seconds(10))) {
            int grandchild =
                    Integer.parseInt(readLine(child.stdout(), seconds(10)).trim());
            assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode());
            awaitTrue("the grandchild is gone", () -> gone(grandchild), seconds(10));
        }
    }

    /** Skipped where no cgroup v2 hierarchy is mounted or this user cannot create a cgroup in it. */
    @Test
    void aChildIsMovedIntoTheNamedCgroup() throws Exception {
        Path group = TestCgroup.create("walredo-native-test-");
        try {
            Containment containment = new Containment(
                    Optional.empty(), OptionalInt.empty(), List.of(), OptionalInt.empty(), Optional.of(group));
            SpawnSpec spec = fake();
            try (ChildProcess child = runtime.spawn(
                    new SpawnSpec(spec.executable(), spec.argv(), spec.environment(), containment), seconds(10))) {
                assertEquals(TestCgroup.relative(group), TestCgroup.of(child.pid()));
                assertTrue(Files.readString(group.resolve("cgroup.procs")).contains(Integer.toString(child.pid())));
                child.stdin().close();
                assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode());
            }
        } finally {
            TestCgroup.remove(group);
        }
    }

    @Test
    void aContainmentThatCannotBeAppliedFailsTheSpawnAndLeavesNothing() throws Exception {
        Containment missingDirectory = new Containment(
                Optional.of(Path.of("/nonexistent/walredo")), OptionalInt.empty(), List.of(), OptionalInt.empty());
        SpawnSpec spec = fake();
        List<Integer> before = children();
        SpawnException e = assertThrows(
                SpawnException.class,
                () -> runtime.spawn(
                        new SpawnSpec(spec.executable(), spec.argv(), spec.environment(), missingDirectory),
                        seconds(10)));
        assertTrue(e.getMessage().contains("ENOENT"), e.getMessage());
        awaitTrue("no child left", () -> sameChildren(before), seconds(10));
    }

    @Test
    void badContainmentsAreRejectedBeforeAnySpawn() {
        assertThrows(
                IllegalArgumentException.class,
                () -> new Containment(
                        Optional.of(Path.of("relative")), OptionalInt.empty(), List.of(), OptionalInt.empty()));
        assertThrows(
                IllegalArgumentException.class,
                () -> new Containment(Optional.empty(), OptionalInt.of(01000), List.of(), OptionalInt.empty()));
        assertThrows(
                IllegalArgumentException.class,
                () -> new Containment(
                        Optional.empty(),
                        OptionalInt.empty(),
                        List.of(),
                        OptionalInt.empty(),
                        Optional.of(Path.of("cg"))));
        assertThrows(
                IllegalArgumentException.class,
                () -> new Containment(Optional.empty(), OptionalInt.empty(), List.of(), OptionalInt.of(1001)));
        assertThrows(
                IllegalArgumentException.class,
                () -> new Containment(
                        Optional.empty(),
                        OptionalInt.empty(),
                        List.of(
                                ResourceLimit.of(ResourceLimit.Resource.CORE, 0),
                                ResourceLimit.of(ResourceLimit.Resource.CORE, 1)),
                        OptionalInt.empty()));
        assertThrows(IllegalArgumentException.class, () -> new ResourceLimit(ResourceLimit.Resource.NOFILE, 10, 5));
        assertThrows(
                IllegalArgumentException.class,
                () -> new ResourceLimit(ResourceLimit.Resource.NOFILE, ResourceLimit.UNLIMITED, 5));
        assertThrows(IllegalArgumentException.class, () -> ResourceLimit.of(ResourceLimit.Resource.AS, -2));
    }

    private static boolean sameChildren(List<Integer> before) {
        try {
            return children().equals(before);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Field 5 of /proc/PID/stat (after the parenthesised command, which may contain spaces). */
    static int processGroup(int pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Integer.parseInt(fields[2]);
    }

    /** Soft and hard value of one row of /proc/PID/limits. */
    static List<String> limit(int pid, String name) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/limits"))) {
            if (line.startsWith(name + " ")) {
                String[] f = line.substring(name.length()).trim().split("\\s+");
                return List.of(f[0], f[1]);
            }
        }
        throw new AssertionError(name + " not in /proc/" + pid + "/limits");
    }

    /** Gone or a zombie (an orphan is reaped by init, or by whatever subreaper adopted it, not by us). */
    private static boolean gone(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (IOException e) {
            return true;
        }
    }
}
