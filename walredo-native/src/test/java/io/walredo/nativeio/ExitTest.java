// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static io.walredo.nativeio.TestSupport.PAGE_BYTES;
import static io.walredo.nativeio.TestSupport.awaitTrue;
import static io.walredo.nativeio.TestSupport.children;
import static io.walredo.nativeio.TestSupport.fake;
import static io.walredo.nativeio.TestSupport.pingPong;
import static io.walredo.nativeio.TestSupport.readLine;
import static io.walredo.nativeio.TestSupport.seconds;
import static io.walredo.nativeio.TestSupport.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Exit statuses, signals, killAndReap, and reaping only our own children. */
class ExitTest {

    private final NativeRuntime runtime = NativeRuntime.get();

    @Test
    void exitCodeIsReported() throws Exception {
        try (ChildProcess child = runtime.spawn(sh("exit 3"), seconds(10))) {
            ExitStatus status = child.onExit().get(10, TimeUnit.SECONDS);
            assertTrue(status.exited());
            assertEquals(3, status.exitCode());
            assertEquals("exit code 3", status.toString());
            assertFalse(child.isAlive());
            assertFalse(child.signal(NativeRuntime.signalNumber("SIGKILL")), "a reaped child cannot be signalled");
            assertEquals(status, child.killAndReap(seconds(10)), "killAndReap of a reaped child returns its status");
        }
    }

    @Test
    void sigkillIsReported() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            assertTrue(child.signal(NativeRuntime.signalNumber("SIGKILL")));
            ExitStatus status = child.onExit().get(10, TimeUnit.SECONDS);
            assertTrue(status.signaled());
            assertEquals(9, status.signal());
            assertEquals("signal 9 (SIGKILL)", status.toString());
        }
    }

    @Test
    void sigsegvIsReported() throws Exception {
        try (ChildProcess child = runtime.spawn(sh("kill -SEGV $$"), seconds(10))) {
            ExitStatus status = child.onExit().get(10, TimeUnit.SECONDS);
            assertEquals(11, status.signal(), status.toString());
            assertTrue(status.toString().startsWith("signal 11 (SIGSEGV)"), status.toString());
        }
    }

    @Test
    void sigtermEndsAPlainFake() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            assertTrue(child.signal(NativeRuntime.signalNumber("TERM")));
            assertEquals(15, child.onExit().get(10, TimeUnit.SECONDS).signal());
        }
    }

    @Test
    void killAndReapEndsAChildThatIgnoresSigterm() throws Exception {
        try (ChildProcess child = runtime.spawn(fake("--ignore-sigterm"), seconds(10))) {
            // The fake ignores SIGTERM only once it has started; a ping answered proves it is past that point.
            pingPong(child, ByteBuffer.allocateDirect(PAGE_BYTES), seconds(10));
            assertTrue(child.signal(NativeRuntime.signalNumber("SIGTERM")));
            pingPong(child, ByteBuffer.allocateDirect(PAGE_BYTES), seconds(10));
            assertTrue(child.isAlive(), "SIGTERM was ignored");
            ExitStatus status = child.killAndReap(seconds(10));
            assertEquals(9, status.signal());
            assertFalse(child.isAlive());
        }
    }

    @Test
    void killAndReapCompletesWhileAGrandchildHoldsThePipes() throws Exception {
        long grandchild = -1;
        // setsid: the grandchild leaves the child's process group, so killing the group does not reach it.
        try (ChildProcess child = runtime.spawn(sh("setsid sleep 600 & echo $!; exec sleep 600"), seconds(10))) {
            grandchild = Long.parseLong(readLine(child.stdout(), seconds(10)).trim());
            int escaped = (int) grandchild;
            awaitTrue("the grandchild has left the group", () -> inOwnGroup(escaped), seconds(10));
            assertEquals(9, child.killAndReap(seconds(10)).signal());
            // The grandchild still holds stdout open: no EOF yet.
            assertThrows(
                    DeadlineExceededException.class,
                    () -> child.stdout().read(ByteBuffer.allocateDirect(16), Deadline.after(Duration.ofMillis(100))));
            ProcessHandle.of(grandchild).ifPresent(ProcessHandle::destroyForcibly);
            assertEquals(-1, child.stdout().read(ByteBuffer.allocateDirect(16), seconds(10)));
            grandchild = -1;
        } finally {
            if (grandchild > 0) {
                ProcessHandle.of(grandchild).ifPresent(ProcessHandle::destroyForcibly);
            }
        }
    }

    private static boolean inOwnGroup(int pid) {
        try {
            return ContainmentTest.processGroup(pid) == pid;
        } catch (IOException e) {
            throw new AssertionError("pid " + pid + " is gone", e);
        }
    }

    /** A grandchild that stays in the child's process group dies with the child, so its pipes reach EOF at once. */
    @Test
    void killAndReapAlsoKillsAGrandchildInTheChildsGroup() throws Exception {
        try (ChildProcess child = runtime.spawn(fake("--spawn-grandchild"), seconds(10))) {
            String line = readLine(child.stderr(), seconds(10));
            assertTrue(line != null && line.startsWith("grandchild: "), line);
            long grandchild =
                    Long.parseLong(line.substring("grandchild: ".length()).trim());
            assertEquals(9, child.killAndReap(seconds(10)).signal());
            assertEquals(-1, child.stdout().read(ByteBuffer.allocateDirect(16), seconds(10)));
            awaitTrue(
                    "the grandchild is gone",
                    () -> ProcessHandle.of(grandchild).map(h -> !h.isAlive()).orElse(true),
                    seconds(10));
        }
    }

    @Test
    void closeKillsAndTheReactorReaps() throws Exception {
        ChildProcess child = runtime.spawn(fake(), seconds(10));
        CompletableFuture<ExitStatus> exit = child.onExit();
        child.close();
        assertEquals(9, exit.get(10, TimeUnit.SECONDS).signal());
        assertFalse(child.stdin().isOpen());
        assertFalse(child.stdout().isOpen());
        assertFalse(child.stderr().isOpen());
        awaitTrue("child reaped", () -> !child.isAlive(), seconds(10));
        child.close();
    }

    @Test
    void onExitDependentsRunOffTheReactorAndCopiesAreIndependent() throws Exception {
        try (ChildProcess child = runtime.spawn(fake(), seconds(10))) {
            Thread caller = Thread.currentThread();
            CompletableFuture<Thread> ranOn = child.onExit().thenApply(s -> Thread.currentThread());
            child.onExit().cancel(true);
            child.stdin().close();
            assertEquals(0, child.onExit().get(10, TimeUnit.SECONDS).exitCode(), "a cancelled copy changes nothing");
            Thread t = ranOn.get(10, TimeUnit.SECONDS);
            assertTrue(t == caller || (t.isVirtual() && t.getName().startsWith("walredo-callback-")), t.toString());
        }
    }

    /**
     * The JDK reaps ProcessBuilder children itself (waitpid on their pid). Ours must not steal their status: start one
     * beside running sidecars, kill the sidecars while it runs (the reactor reaps them), and check its exit code.
     */
    @Test
    void processBuilderChildStartedBesideSidecarsKeepsItsExitCode() throws Exception {
        List<ChildProcess> sidecars = new ArrayList<>();
        try {
            for (int i = 0; i < 5; i++) {
                sidecars.add(runtime.spawn(fake(), seconds(10)));
            }
            Process jdkChild = new ProcessBuilder("/bin/sh", "-c", "read line; exit 42").start();
            for (ChildProcess s : sidecars) {
                assertEquals(9, s.killAndReap(seconds(10)).signal());
            }
            jdkChild.getOutputStream().close();
            assertTrue(jdkChild.waitFor(10, TimeUnit.SECONDS));
            assertEquals(42, jdkChild.exitValue());
            assertEquals(42, jdkChild.onExit().get(10, TimeUnit.SECONDS).exitValue());
        } finally {
            sidecars.forEach(ChildProcess::close);
        }
    }

    @Test
    void spawnPastItsDeadlineLeavesNoChild() throws Exception {
        runtime.spawn(fake(), seconds(10)).killAndReap(seconds(10));
        List<Integer> before = children();
        try {
            ChildProcess raced = runtime.spawn(fake(), Deadline.after(Duration.ZERO));
            raced.close();
        } catch (DeadlineExceededException expected) {
            assertTrue(expected.getMessage().contains("did not finish by its deadline"), expected.getMessage());
        }
        awaitTrue("abandoned spawn cleaned up", () -> childrenUnchecked().equals(before), seconds(10));
    }

    private static List<Integer> childrenUnchecked() {
        try {
            return children();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void signalNumbers() {
        assertEquals(9, NativeRuntime.signalNumber("SIGKILL"));
        assertEquals(15, NativeRuntime.signalNumber("TERM"));
        assertEquals(11, NativeRuntime.signalNumber("SIGSEGV"));
        assertThrows(IllegalArgumentException.class, () -> NativeRuntime.signalNumber("SIGNOPE"));
    }
}
