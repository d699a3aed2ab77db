// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The plain value types: no native calls. */
class ValueTypesTest {

    @Test
    void exitStatusDecodesWaitStatuses() {
        assertEquals(new ExitStatus(0, 0, false), ExitStatus.fromWaitStatus(0));
        assertEquals(new ExitStatus(1, 0, false), ExitStatus.fromWaitStatus(1 << 8));
        assertEquals(new ExitStatus(255, 0, false), ExitStatus.fromWaitStatus(255 << 8));
        assertEquals(new ExitStatus(-1, 9, false), ExitStatus.fromWaitStatus(9));
        assertEquals(new ExitStatus(-1, 11, true), ExitStatus.fromWaitStatus(11 | 0x80));
        assertEquals("exit code 1", ExitStatus.fromWaitStatus(1 << 8).toString());
        assertEquals("signal 9 (SIGKILL)", ExitStatus.fromWaitStatus(9).toString());
        assertEquals(
                "signal 11 (SIGSEGV), core dumped",
                ExitStatus.fromWaitStatus(11 | 0x80).toString());
        assertEquals("signal 40", ExitStatus.fromWaitStatus(40).toString());
        assertTrue(ExitStatus.fromWaitStatus(0).exited());
        assertTrue(ExitStatus.fromWaitStatus(9).signaled());
        assertThrows(IllegalArgumentException.class, () -> ExitStatus.fromWaitStatus(0x137f), "stopped");
        assertThrows(IllegalArgumentException.class, () -> ExitStatus.fromWaitStatus(0xffff), "continued");
        assertThrows(IllegalArgumentException.class, () -> new ExitStatus(1, 9, false));
        assertThrows(IllegalArgumentException.class, () -> new ExitStatus(256, 0, false));
        assertThrows(IllegalArgumentException.class, () -> new ExitStatus(0, 0, true));
    }

    @Test
    void deadlines() {
        Deadline past = Deadline.after(Duration.ZERO);
        assertTrue(past.isExpired());
        assertTrue(past.remainingNanos() <= 0);
        Deadline later = Deadline.after(Duration.ofHours(1));
        assertFalse(later.isExpired());
        assertTrue(later.remainingNanos() > Duration.ofMinutes(59).toNanos());
        assertSame(past, past.earliest(later));
        assertSame(past, later.earliest(past));
        Deadline forever = Deadline.after(Duration.ofSeconds(Long.MAX_VALUE));
        assertTrue(forever.remainingNanos() > Duration.ofDays(365 * 100).toNanos(), "saturates, does not overflow");
        assertSame(later, forever.earliest(later));
        assertThrows(IllegalArgumentException.class, () -> Deadline.after(Duration.ofNanos(-1)));
    }

    @Test
    void spawnSpecValidatesAndCopies() {
        Path bin = Paths.get("/bin/true");
        List<String> argv = new ArrayList<>(List.of("true"));
        Map<String, String> env = new LinkedHashMap<>();
        env.put("Z", "1");
        env.put("A", "2");
        SpawnSpec spec = new SpawnSpec(bin, argv, env);
        argv.add("later");
        env.put("LATER", "x");
        assertEquals(List.of("true"), spec.argv());
        assertEquals(List.of("Z", "A"), List.copyOf(spec.environment().keySet()), "order kept");
        assertThrows(
                UnsupportedOperationException.class, () -> spec.environment().put("X", "y"));
        assertThrows(IllegalArgumentException.class, () -> new SpawnSpec(Paths.get("bin/true"), argv, Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new SpawnSpec(bin, List.of(), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new SpawnSpec(bin, List.of("a\0b"), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new SpawnSpec(bin, argv, Map.of("A=B", "c")));
        assertThrows(IllegalArgumentException.class, () -> new SpawnSpec(bin, argv, Map.of("", "c")));
        assertThrows(IllegalArgumentException.class, () -> new SpawnSpec(bin, argv, Map.of("A", "c\0")));
        Map<String, String> nullValue = new HashMap<>();
        nullValue.put("A", null);
        assertThrows(NullPointerException.class, () -> new SpawnSpec(bin, argv, nullValue));
    }

    @Test
    void nativeCallExceptionMessages() {
        NativeCallException e = new NativeCallException("open", 2, "opening /x");
        assertEquals("opening /x: open failed: errno 2 ENOENT (No such file or directory)", e.getMessage());
        assertEquals("open", e.syscall());
        assertEquals(2, e.errno());
        assertEquals("ENOENT", e.errnoName());
        SpawnException s = new SpawnException(Paths.get("/bin/nope"), "posix_spawn", 2);
        assertTrue(
                s.getMessage()
                        .startsWith(
                                "cannot spawn /bin/nope: posix_spawn failed: errno 2 ENOENT (No such file or directory); "),
                s.getMessage());
        assertEquals(Paths.get("/bin/nope"), s.executable());
        // EPERM from prlimit names its usual cause: the child already changed its uid (issue 20's root switch race).
        SpawnException p = new SpawnException(Paths.get("/bin/pg"), "prlimit(NOFILE)", 1);
        assertTrue(
                p.getMessage().contains("errno 1 EPERM")
                        && p.getMessage().contains("the child already changed its uid"),
                p.getMessage());
        assertTrue(!new SpawnException(Paths.get("/bin/pg"), "posix_spawn", 1)
                .getMessage()
                .contains("uid"));
    }
}
