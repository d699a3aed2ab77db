// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.SidecarStatus;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * Reads a process's RSS and PSS from {@code /proc/PID/smaps_rollup} (proc(5), Linux 4.14 and later): the
 * {@code Rss:} and {@code Pss:} lines, in kB. Stateless; any thread may call it. The read runs on the calling
 * thread and costs tens of microseconds for a small process, more for a large one (the kernel walks the process's
 * page tables to build the file: about 35 µs for the fake binary, 2.5 ms for a JVM), so only {@code status()} and
 * {@code metrics()} call it, never a request.
 *
 * <p>A process that cannot be read yields empty, never an exception: ENOENT (it is gone, or the kernel has no
 * smaps_rollup), ESRCH (it has exited and is a zombie: the kernel has already dropped its memory), EACCES (read
 * access refused: a security module, hidepid for another user's process, a non-dumpable process), or content that
 * is not what this class expects.
 *
 * <p>A pid names a process only until it is reaped; a caller that reads a child's memory must check afterwards
 * that the child had not been reaped yet, or the figures may be another process's.
 */
final class ProcMemory {
    /** smaps_rollup is about 1 KiB (a header line and some 25 fields); reading stops here whatever the file holds. */
    static final int MAX_BYTES = 64 * 1024;

    private static final int BYTES_PER_KB = 1024;
    /** At most 15 digits of kB, so the product in bytes cannot overflow a long (10^15 * 1024 < 2^63). */
    private static final int MAX_KB_DIGITS = 15;

    private static final String RSS = "Rss:";
    private static final String PSS = "Pss:";
    private static final String KB_SUFFIX = " kB";

    private ProcMemory() {}

    /**
     * The memory of process {@code pid} now, or empty if it cannot be read.
     *
     * @throws IllegalArgumentException if {@code pid} is not positive
     */
    static Optional<SidecarStatus.Memory> read(int pid) {
        if (pid <= 0) {
            throw new IllegalArgumentException("pid must be positive, got " + pid);
        }
        return read(Path.of("/proc", Integer.toString(pid), "smaps_rollup"));
    }

    /** Reads at most {@link #MAX_BYTES} of {@code file} and parses them; empty if it cannot be read. */
    static Optional<SidecarStatus.Memory> read(Path file) {
        byte[] bytes;
        try (InputStream in = Files.newInputStream(file)) {
            bytes = in.readNBytes(MAX_BYTES);
        } catch (IOException unreadable) {
            return Optional.empty();
        }
        // A line cut at the limit lacks its " kB", so parse rejects it rather than read a shorter number.
        return parse(new String(bytes, StandardCharsets.ISO_8859_1));
    }

    /**
     * Parses smaps_rollup text. The first {@code Rss:} and the first {@code Pss:} line count (the kernel writes
     * each once); every other line is ignored. Empty if either is missing, or is not a whole number followed by
     * {@code " kB"}, or is too large.
     */
    static Optional<SidecarStatus.Memory> parse(String text) {
        OptionalLong rssKb = OptionalLong.empty();
        OptionalLong pssKb = OptionalLong.empty();
        for (String line : (Iterable<String>) text.lines()::iterator) {
            if (rssKb.isEmpty() && line.startsWith(RSS)) {
                rssKb = kilobytes(line.substring(RSS.length()));
                if (rssKb.isEmpty()) {
                    return Optional.empty();
                }
            } else if (pssKb.isEmpty() && line.startsWith(PSS)) {
                pssKb = kilobytes(line.substring(PSS.length()));
                if (pssKb.isEmpty()) {
                    return Optional.empty();
                }
            }
            if (rssKb.isPresent() && pssKb.isPresent()) {
                return Optional.of(
                        new SidecarStatus.Memory(rssKb.getAsLong() * BYTES_PER_KB, pssKb.getAsLong() * BYTES_PER_KB));
            }
        }
        return Optional.empty();
    }

    /** {@code "   1234 kB"} (the value after the colon) as 1234; empty if it is anything else. */
    private static OptionalLong kilobytes(String value) {
        String v = value.strip();
        if (!v.endsWith(KB_SUFFIX)) {
            return OptionalLong.empty();
        }
        String digits = v.substring(0, v.length() - KB_SUFFIX.length());
        if (digits.isEmpty() || digits.length() > MAX_KB_DIGITS) {
            return OptionalLong.empty();
        }
        for (int i = 0; i < digits.length(); i++) {
            char c = digits.charAt(i);
            if (c < '0' || c > '9') {
                return OptionalLong.empty();
            }
        }
        return OptionalLong.of(Long.parseLong(digits));
    }
}
