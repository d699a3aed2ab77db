// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.stream.Stream;

/**
 * Reads this JVM's and its children's resource use from /proc and the JDK's management beans: the one
 * place the benchmarks, the soak and the demo take these figures from, so they agree.
 */
public final class Probes {
    private Probes() {}

    /** Open file descriptors of this JVM (not counting the one used to list them). */
    public static long fds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count() - 1; // the directory stream's own fd
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc/self/fd", e);
        }
    }

    /** Live platform threads (the JDK's thread bean does not count virtual threads). */
    public static int platformThreads() {
        return ManagementFactory.getThreadMXBean().getThreadCount();
    }

    /** Heap in use after garbage collection settles: the minimum over a few explicit full GCs. */
    public static long heapAfterGc() {
        long min = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            System.gc();
            min = Math.min(
                    min,
                    ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
        }
        return min;
    }

    /** Children of this JVM that have exited and not been reaped. */
    public static long zombies() {
        long self = ProcessHandle.current().pid();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            return s.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit))
                    .map(p -> stat(p.resolve("stat")))
                    .filter(st -> st != null && st.length > 3 && st[2].equals("Z") && Long.parseLong(st[3]) == self)
                    .count();
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc", e);
        }
    }

    private static String[] stat(Path p) {
        try {
            String s = Files.readString(p);
            // "pid (comm) state ppid ..."; comm may contain spaces, so split after the last ')'.
            int close = s.lastIndexOf(')');
            String[] rest = s.substring(close + 2).split(" ");
            return new String[] {s.substring(0, s.indexOf(' ')), "", rest[0], rest[1]};
        } catch (IOException | RuntimeException e) {
            return null; // the process exited while we looked
        }
    }

    /** Summed Rss and Pss (kB) of the given processes, from /proc/PID/smaps_rollup; gone pids are skipped. */
    public static long[] rssPssKb(Collection<Integer> pids) {
        long rss = 0;
        long pss = 0;
        for (int pid : pids) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/smaps_rollup"))) {
                    if (line.startsWith("Rss:")) {
                        rss += kb(line);
                    } else if (line.startsWith("Pss:")) {
                        pss += kb(line);
                    }
                }
            } catch (IOException e) {
                // exited meanwhile
            }
        }
        return new long[] {rss, pss};
    }

    private static long kb(String line) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
    }

    /** This machine, for the report's header. */
    public static List<String> machine() {
        String cpu = grep("/proc/cpuinfo", "model name");
        String mem = grep("/proc/meminfo", "MemTotal");
        String kernel = read("/proc/sys/kernel/osrelease");
        return List.of(
                "CPUs: " + Runtime.getRuntime().availableProcessors() + " (" + cpu + ")",
                "Memory: " + gib(mem),
                "Kernel: Linux " + kernel,
                "JDK: " + System.getProperty("java.vm.name") + " " + Runtime.version(),
                "fd limit (soft, hard): " + fdLimit());
    }

    private static String gib(String memTotal) {
        String kb = memTotal.replaceAll("[^0-9]", "");
        return kb.isEmpty() ? memTotal : String.format("%.1f GiB", Long.parseLong(kb) / 1024.0 / 1024.0);
    }

    /** "soft hard files" from /proc/self/limits. */
    public static String fdLimit() {
        return grep("/proc/self/limits", "Max open files").replaceAll("\\s+", " ");
    }

    /** The soft RLIMIT_NOFILE of this JVM (Long.MAX_VALUE if unlimited). */
    public static long fdSoftLimit() {
        String soft = fdLimit().split(" ")[0];
        return soft.equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(soft);
    }

    /** Bytes of direct buffers allocated by this JVM (the "direct" buffer pool). */
    public static long directBytes() {
        return ManagementFactory.getPlatformMXBeans(java.lang.management.BufferPoolMXBean.class).stream()
                .filter(b -> b.getName().equals("direct"))
                .mapToLong(java.lang.management.BufferPoolMXBean::getMemoryUsed)
                .sum();
    }

    private static String grep(String file, String key) {
        try {
            for (String line : Files.readAllLines(Path.of(file))) {
                if (line.startsWith(key)) {
                    int colon = line.indexOf(':');
                    return (colon >= 0 ? line.substring(colon + 1) : line.substring(key.length())).trim();
                }
            }
        } catch (IOException e) {
            return "unknown";
        }
        return "unknown";
    }

    private static String read(String file) {
        try {
            return Files.readString(Path.of(file)).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
