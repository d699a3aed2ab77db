// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Signals to a child of this JVM (a {@code sleep}), and the pid-reuse guard: a stale identity is never signalled. */
@Timeout(60)
class ChildPidTest {

    private Process child;

    @BeforeEach
    void startChild() throws IOException {
        child = new ProcessBuilder("sleep", "600").start();
    }

    @AfterEach
    void killChild() throws InterruptedException {
        child.destroyForcibly();
        child.waitFor(30, TimeUnit.SECONDS);
    }

    @Test
    void findsARunningChildWithItsStartTime() {
        ChildPid c = ChildPid.of(pid()).orElseThrow();

        assertEquals(pid(), c.pid());
        assertTrue(c.isRunning());
        assertEquals(c, ChildPid.of(pid()).orElseThrow(), "the start time does not change while it runs");
    }

    @Test
    void findsNoProcessThatIsNotAChildOfThisJvm() {
        assertEquals(Optional.empty(), ChildPid.of((int) ProcessHandle.current().pid()), "this JVM itself");
        assertEquals(Optional.empty(), ChildPid.of(1), "init");
        assertEquals(Optional.empty(), ChildPid.of(0));
        assertEquals(Optional.empty(), ChildPid.of(-1));
        assertEquals(Optional.empty(), ChildPid.of(Integer.MAX_VALUE), "no such process");
    }

    @Test
    void stopsAndContinues() {
        ChildPid c = ChildPid.of(pid()).orElseThrow();

        assertTrue(c.signal(ChildPid.Signal.SIGSTOP));
        awaitState('T');
        assertTrue(c.isRunning(), "a stopped process is still running: not a zombie, same start time");
        assertTrue(c.signal(ChildPid.Signal.SIGCONT));
        awaitState('S');
    }

    @Test
    void killsAndThenFindsItGone() throws InterruptedException {
        ChildPid c = ChildPid.of(pid()).orElseThrow();

        assertTrue(c.signal(ChildPid.Signal.SIGKILL));
        assertTrue(child.waitFor(30, TimeUnit.SECONDS));
        assertEquals(128 + 9, child.exitValue(), "died of SIGKILL");
        assertFalse(c.isRunning(), "reaped");
        assertFalse(c.signal(ChildPid.Signal.SIGTERM), "nothing is sent to a process that is gone");
        assertEquals(Optional.empty(), ChildPid.of(c.pid()));
    }

    @Test
    void terminates() throws InterruptedException {
        assertTrue(ChildPid.of(pid()).orElseThrow().signal(ChildPid.Signal.SIGTERM));
        assertTrue(child.waitFor(30, TimeUnit.SECONDS));
        assertEquals(128 + 15, child.exitValue(), "died of SIGTERM");
    }

    /** What a reused pid looks like: the same pid with another start time. It must not be signalled. */
    @Test
    void neverSignalsAnotherProcessThatHasThePid() throws InterruptedException {
        ChildPid current = ChildPid.of(pid()).orElseThrow();
        ChildPid stale = new ChildPid(current.pid(), current.startTime() + 1);

        assertFalse(stale.isRunning());
        assertFalse(stale.signal(ChildPid.Signal.SIGKILL));
        assertFalse(child.waitFor(200, TimeUnit.MILLISECONDS), "the process with that pid now was not killed");
        assertTrue(current.isRunning());
    }

    @Test
    void rejectsImpossibleValues() {
        assertThrows(IllegalArgumentException.class, () -> new ChildPid(0, 1));
        assertThrows(IllegalArgumentException.class, () -> new ChildPid(1, -1));
    }

    private int pid() {
        return (int) child.pid();
    }

    /** Polls the state field of /proc/PID/stat: no event reports a stop or a continue to anyone but the parent. */
    private void awaitState(char state) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        char seen;
        while ((seen = state()) != state) {
            assertTrue(System.nanoTime() - deadline < 0, "state " + seen + ", expected " + state);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
        }
    }

    private char state() {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid() + "/stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2);
        } catch (IOException e) {
            throw new AssertionError("pid " + pid() + " is gone", e);
        }
    }
}
