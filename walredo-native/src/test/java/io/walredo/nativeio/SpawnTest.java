// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static io.walredo.nativeio.TestSupport.PAGE_BYTES;
import static io.walredo.nativeio.TestSupport.children;
import static io.walredo.nativeio.TestSupport.fake;
import static io.walredo.nativeio.TestSupport.libc;
import static io.walredo.nativeio.TestSupport.openFds;
import static io.walredo.nativeio.TestSupport.pingPong;
import static io.walredo.nativeio.TestSupport.procStatus;
import static io.walredo.nativeio.TestSupport.readAll;
import static io.walredo.nativeio.TestSupport.readLine;
import static io.walredo.nativeio.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.nativeio.internal.Linux;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a spawned child gets: fds, signals, environment; and how failed spawns are reported. */
class SpawnTest {

    private final NativeRuntime runtime = NativeRuntime.get();

    @Test
    void spawnPingThenEofExitsZero() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            assertTrue(child.pid() > 0);
            assertTrue(child.isAlive());
            pingPong(child, ByteBuffer.allocateDirect(PAGE_BYTES), seconds(10));
            child.stdin().close();
            ExitStatus status = child.onExit().get(10, TimeUnit.SECONDS);
            assertEquals(new ExitStatus(0, 0, false), status);
            assertEquals("exit code 0", status.toString());
            assertFalse(child.isAlive());
            assertEquals(-1, child.stdout().read(ByteBuffer.allocateDirect(16), seconds(10)));
        }
    }

    @Test
    void childSeesOnlyFdsZeroOneTwoEvenWhenTheJvmLeakedFdsWithoutCloexec() throws Exception {
        List<Integer> leaked = new ArrayList<>();
        try {
            for (int i = 0; i < 1000; i++) {
                int fd = libc().open("/dev/null", Linux.O_RDONLY);
                assertTrue(fd >= 0, "open /dev/null failed");
                leaked.add(fd);
            }
            assertEquals(0, libc().fcntl(leaked.get(999), Linux.F_GETFD, 0), "the leaked fd must lack FD_CLOEXEC");
            try (ChildProcess child = runtime.spawn(fake("--report-fds"), seconds(10))) {
                assertEquals("fds: 0 1 2", readLine(child.stderr(), seconds(10)));
                child.stdin().close();
                assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode());
            }
        } finally {
            for (int fd : leaked) {
                libc().close(fd);
            }
        }
    }

    @Test
    void twoSidecarsDoNotHoldEachOthersPipeEnds() throws Exception {
        try (ChildProcess a = runtime.spawn(fake(), seconds(10));
                ChildProcess b = runtime.spawn(fake(), seconds(10))) {
            a.stdin().close();
            assertEquals(0, a.onExit().get(10, TimeUnit.SECONDS).exitCode(), "a must see EOF on its stdin");
            assertEquals(-1, a.stdout().read(ByteBuffer.allocateDirect(16), seconds(10)));
            assertTrue(b.isAlive());
            pingPong(b, ByteBuffer.allocateDirect(PAGE_BYTES), seconds(10));
            b.stdin().close();
            assertEquals(0, b.onExit().get(10, TimeUnit.SECONDS).exitCode(), "b must see EOF on its stdin");
        }
    }

    @Test
    void childStartsWithNoBlockedAndNoIgnoredSignals() throws Exception {
        // cat leaves its signal state as exec gave it (the fake ignores SIGPIPE by design, so it cannot show this).
        SpawnSpec cat = new SpawnSpec(Paths.get("/bin/cat"), List.of("cat"), Map.of());
        try (ChildProcess child = runtime.spawn(cat, seconds(10))) {
            // posix_spawn returns after the exec, so /proc shows cat's own state.
            assertEquals("0000000000000000", procStatus(child.pid(), "SigBlk"));
            assertEquals("0000000000000000", procStatus(child.pid(), "SigIgn"));
            child.killAndReap(seconds(10));
        }
        // The fake sidecar: nothing blocked, and only the SIGPIPE it ignores itself, like a postgres backend (bit 13).
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            pingPong(child, ByteBuffer.allocateDirect(PAGE_BYTES), seconds(10));
            assertEquals("0000000000000000", procStatus(child.pid(), "SigBlk"));
            assertEquals("0000000000001000", procStatus(child.pid(), "SigIgn"));
        }
    }

    @Test
    void environmentHoldsExactlyThePassedVariables() throws Exception {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("LD_LIBRARY_PATH", "/opt/pg/lib");
        env.put("B", "two words");
        env.put("EMPTY", "");
        SpawnSpec spec = new SpawnSpec(Paths.get("/usr/bin/env"), List.of("env"), env);
        try (ChildProcess child = runtime.spawn(spec, seconds(10))) {
            assertEquals("LD_LIBRARY_PATH=/opt/pg/lib\nB=two words\nEMPTY=\n", readAll(child.stdout(), seconds(10)));
            assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode());
        }
        SpawnSpec empty = new SpawnSpec(Paths.get("/usr/bin/env"), List.of("env"), Map.of());
        try (ChildProcess child = runtime.spawn(empty, seconds(10))) {
            assertEquals("", readAll(child.stdout(), seconds(10)));
            assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode());
        }
    }

    @Test
    void argvIsPassedVerbatim() throws Exception {
        SpawnSpec spec = new SpawnSpec(
                Paths.get("/bin/sh"),
                List.of("custom-argv0", "-c", "printf '%s|' \"$0\" \"$@\"", "zero", "a b", "", "ü"),
                Map.of());
        try (ChildProcess child = runtime.spawn(spec, seconds(10))) {
            assertEquals("zero|a b||ü|", readAll(child.stdout(), seconds(10)));
        }
    }

    @Test
    void failedSpawnsNameThePathAndErrnoAndLeakNothing(@TempDir Path dir) throws Exception {
        Path missing = dir.resolve("missing");
        Path directory = Files.createDirectory(dir.resolve("a-directory"));
        Path text = dir.resolve("text-without-shebang");
        Files.writeString(text, "echo hello\n");
        Files.setPosixFilePermissions(text, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path notExecutable = dir.resolve("not-executable");
        Files.copy(Paths.get("/bin/true"), notExecutable);
        Files.setPosixFilePermissions(notExecutable, PosixFilePermissions.fromString("rw-r--r--"));
        Map<Path, String> expected = new LinkedHashMap<>();
        expected.put(missing, "ENOENT");
        expected.put(directory, "EACCES");
        expected.put(text, "ENOEXEC");
        expected.put(notExecutable, "EACCES");

        // Warm-up: load every class on these paths first so the counts below see only what spawning does.
        for (Path p : expected.keySet()) {
            assertThrows(SpawnException.class, () -> runtime.spawn(spec(p), seconds(10)));
        }
        int fdsBefore = openFds();
        List<Integer> childrenBefore = children();
        for (Map.Entry<Path, String> e : expected.entrySet()) {
            SpawnException ex = assertThrows(SpawnException.class, () -> runtime.spawn(spec(e.getKey()), seconds(10)));
            assertEquals(e.getValue(), ex.errnoName(), ex.getMessage());
            assertEquals("posix_spawn", ex.syscall());
            assertEquals(e.getKey(), ex.executable());
            assertTrue(ex.getMessage().contains(e.getKey().toString()), ex.getMessage());
            assertTrue(ex.getMessage().contains(e.getValue()), ex.getMessage());
        }
        assertEquals(fdsBefore, openFds(), "fd count after failed spawns");
        assertEquals(childrenBefore, children(), "children after failed spawns");
    }

    /**
     * With the fd table full (0, 2 or 4 fds free, so that the first, second or third pipe2 fails), spawning fails with
     * EMFILE naming pipe2, and closes the pipes it had already created.
     */
    @Test
    void emfileIsReportedAndTheFdsOfTheAttemptAreClosed() throws Exception {
        int devNull = libc().open("/dev/null", Linux.O_RDONLY | Linux.O_CLOEXEC);
        assertTrue(devNull >= 0);
        // Warm-up: load every class on the failing path while opening files is still possible.
        runtime.spawn(fake(), seconds(10)).killAndReap(seconds(10));
        assertThrows(SpawnException.class, () -> runtime.spawn(spec(Paths.get("/nonexistent/x")), seconds(10)));
        int fdsBefore = openFds();
        for (int free : new int[] {0, 2, 4}) {
            List<Integer> fillers = new ArrayList<>();
            SpawnException failure = null;
            try {
                while (true) {
                    int fd = libc().fcntl(devNull, Linux.F_DUPFD_CLOEXEC, 0);
                    if (fd < 0) {
                        break;
                    }
                    fillers.add(fd);
                }
                for (int i = 0; i < free; i++) {
                    libc().close(fillers.remove(fillers.size() - 1));
                }
                try {
                    runtime.spawn(fake(), seconds(10)).close();
                } catch (SpawnException e) {
                    failure = e;
                }
            } finally {
                for (int fd : fillers) {
                    libc().close(fd);
                }
            }
            assertTrue(failure != null, "spawn with " + free + " free fds must fail");
            assertEquals("EMFILE", failure.errnoName(), failure.getMessage());
            assertEquals("pipe2", failure.syscall(), failure.getMessage());
            assertTrue(failure.getMessage().contains("RLIMIT_NOFILE"), failure.getMessage());
            assertEquals(fdsBefore, openFds(), "fds after EMFILE with " + free + " free");
        }
        libc().close(devNull);
    }

    private static SpawnSpec spec(Path executable) {
        return new SpawnSpec(executable, List.of(executable.getFileName().toString()), Map.of());
    }
}
