// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.nativeio.Deadline;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The spawner's own reap of an abandoned child is bounded, and a child it gave up on is still reaped later. */
@Timeout(60)
class SpawnerReapTest {

    /** Our child {@code pid}'s /proc state letter, or null once it is gone (reaped). */
    private static String state(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).split(" ")[0];
        } catch (IOException | RuntimeException gone) {
            return null;
        }
    }

    private static void closeFds(Spawner.Spawned child) {
        LibC libc = NativeLibrary.get().libc();
        for (int fd : new int[] {child.pidfd(), child.stdin(), child.stdout(), child.stderr()}) {
            libc.close(fd);
        }
    }

    @Test
    void awaitReapedGivesUpAtItsDeadlineAndTheChildIsStillReapedLater() throws Exception {
        Spawner spawner = new Spawner();
        Spawner.Spawned child = spawner.spawn(Path.of("/bin/sleep"), List.of("sleep", "60"), Map.of());
        LibC libc = NativeLibrary.get().libc();
        try {
            // Alive and not signalled: nothing to reap, so this must return at the deadline instead of waiting on.
            // The child still sleeping afterwards proves it did not wait for the death (no timing assertion needed).
            assertFalse(spawner.awaitReaped(child.pid(), Deadline.after(Duration.ofMillis(100))));
            assertTrue("S".equals(state(child.pid())), "still running: " + state(child.pid()));
            // Handed to the background reaper: once the child dies it must not stay a zombie.
            libc.kill(child.pid(), Linux.SIGKILL);
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (state(child.pid()) != null) {
                if (System.nanoTime() - end > 0) {
                    fail("pid " + child.pid() + " not reaped in the background: state " + state(child.pid()));
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            }
        } finally {
            if (state(child.pid()) != null) {
                libc.kill(child.pid(), Linux.SIGKILL);
            }
            closeFds(child);
        }
    }

    @Test
    void killAndReapReturnsOnceTheChildIsGone() throws Exception {
        Spawner spawner = new Spawner();
        Spawner.Spawned child = spawner.spawn(Path.of("/bin/sleep"), List.of("sleep", "60"), Map.of());
        try {
            assertTrue(spawner.killAndReap(child.pid(), Deadline.after(Duration.ofSeconds(10))));
            assertTrue(state(child.pid()) == null, "reaped: " + state(child.pid()));
        } finally {
            closeFds(child);
        }
    }

    /**
     * A child whose setup failed after posix_spawn may already have started processes of its own; they share its
     * process group (it leads a new one), and killAndReap must not leave them running. Failed before killAndReap
     * signalled the group: the grandchild slept on.
     */
    @Test
    void killAndReapAlsoKillsWhatTheChildStartedInItsGroup(@TempDir Path dir) throws Exception {
        Spawner spawner = new Spawner();
        Path pidFile = dir.resolve("grandchild.pid");
        Spawner.Spawned child = spawner.spawn(
                Path.of("/bin/sh"), List.of("sh", "-c", "sleep 600 & echo $! > " + pidFile + "; wait"), Map.of());
        int grandchild = -1;
        try {
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (grandchild < 0) {
                String text = Files.exists(pidFile) ? Files.readString(pidFile).trim() : "";
                if (!text.isEmpty()) {
                    grandchild = Integer.parseInt(text);
                } else if (System.nanoTime() - end > 0) {
                    fail("the child did not start its grandchild");
                } else {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
                }
            }
            assertTrue(spawner.killAndReap(child.pid(), Deadline.after(Duration.ofSeconds(10))));
            // The grandchild is init's to reap once killed; until then it shows as a zombie.
            while (state(grandchild) != null && !"Z".equals(state(grandchild))) {
                if (System.nanoTime() - end > 0) {
                    fail("grandchild " + grandchild + " survived killAndReap: state " + state(grandchild));
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            }
        } finally {
            if (grandchild > 0 && state(grandchild) != null) {
                NativeLibrary.get().libc().kill(grandchild, Linux.SIGKILL);
            }
            closeFds(child);
        }
    }
}
