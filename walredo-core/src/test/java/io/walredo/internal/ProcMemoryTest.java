// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.SidecarStatus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Parsing /proc/PID/smaps_rollup, and reading it for a live process, a missing one and unreadable files. */
class ProcMemoryTest {
    /** Linux 6.x's smaps_rollup of a small process, as read. */
    private static final String ROLLUP = """
            55ba5e153000-7ffcb4c71000 ---p 00000000 00:00 0                          [rollup]
            Rss:                1808 kB
            Pss:                 362 kB
            Pss_Dirty:           108 kB
            Pss_Anon:            108 kB
            Pss_File:            254 kB
            Pss_Shmem:             0 kB
            Shared_Clean:       1656 kB
            Shared_Dirty:          0 kB
            Private_Clean:        44 kB
            Private_Dirty:       108 kB
            Referenced:         1808 kB
            Anonymous:           108 kB
            Swap:                  0 kB
            SwapPss:               0 kB
            Locked:                0 kB
            """;

    private static Optional<SidecarStatus.Memory> memory(long rssKb, long pssKb) {
        return Optional.of(new SidecarStatus.Memory(rssKb * 1024, pssKb * 1024));
    }

    @Test
    void parsesRssAndPssInBytes() {
        assertEquals(memory(1808, 362), ProcMemory.parse(ROLLUP));
    }

    @Test
    void pssPrefixedFieldsAreNotPss() {
        String text = "Pss_Anon: 5 kB\nPss_File: 6 kB\nRss: 10 kB\nSwapPss: 7 kB\nPss: 4 kB\n";

        assertEquals(memory(10, 4), ProcMemory.parse(text));
    }

    @Test
    void toleratesTabsNoTrailingNewlineAndGarbageLines() {
        String text = "garbage\n\nRss:\t\t20 kB\nnot: a field at all\nPss:3 kB";

        assertEquals(memory(20, 3), ProcMemory.parse(text));
    }

    @Test
    void theFirstOfARepeatedFieldCounts() {
        assertEquals(memory(1, 2), ProcMemory.parse("Rss: 1 kB\nPss: 2 kB\nRss: 9 kB\nPss: 9 kB\n"));
    }

    @Test
    void aMissingFieldIsUnknown() {
        assertEquals(Optional.empty(), ProcMemory.parse("Rss: 1808 kB\nPss_Anon: 1 kB\n"));
        assertEquals(Optional.empty(), ProcMemory.parse("Pss: 362 kB\n"));
        assertEquals(Optional.empty(), ProcMemory.parse(""));
        assertEquals(Optional.empty(), ProcMemory.parse(ROLLUP.replace("Rss:", "Rs:")));
    }

    @Test
    void aMalformedRssOrPssLineIsUnknown() {
        for (String bad : new String[] {
            "Rss: kB",
            "Rss: 12",
            "Rss: 12 KB",
            "Rss: 12 MB",
            "Rss: -12 kB",
            "Rss: 1.5 kB",
            "Rss: 12kB",
            "Rss: 0x10 kB",
            "Rss: 12 kB trailing",
            "Rss: 1 2 kB",
            "Rss: ١٢ kB",
            "Rss:"
        }) {
            assertEquals(Optional.empty(), ProcMemory.parse(bad + "\nPss: 1 kB\n"), bad);
            assertEquals(Optional.empty(), ProcMemory.parse("Rss: 1 kB\n" + bad.replace("Rss", "Pss") + "\n"), bad);
        }
    }

    @Test
    void aMalformedFirstLineIsNotRescuedByALaterOne() {
        assertEquals(Optional.empty(), ProcMemory.parse("Rss: lots kB\nPss: 1 kB\nRss: 2 kB\n"));
    }

    @Test
    void aValueTooLargeForBytesIsUnknown() {
        assertEquals(memory(999_999_999_999_999L, 1), ProcMemory.parse("Rss: 999999999999999 kB\nPss: 1 kB\n"));
        assertEquals(Optional.empty(), ProcMemory.parse("Rss: 9999999999999999 kB\nPss: 1 kB\n"));
        assertEquals(Optional.empty(), ProcMemory.parse("Rss: 99999999999999999999999 kB\nPss: 1 kB\n"));
    }

    @Test
    void theLiveJvmHasResidentMemory() {
        SidecarStatus.Memory m =
                ProcMemory.read((int) ProcessHandle.current().pid()).orElseThrow();

        assertTrue(m.rssBytes() > 0, m.toString());
        assertTrue(m.pssBytes() > 0 && m.pssBytes() <= m.rssBytes(), m.toString());
    }

    /** Linux allocates pids up to pid_max, at most 2^22, so this pid never exists. */
    @Test
    void aPidThatDoesNotExistIsUnknown() {
        assertEquals(Optional.empty(), ProcMemory.read(Integer.MAX_VALUE));
    }

    @Test
    void aPidMustBePositive() {
        assertThrows(IllegalArgumentException.class, () -> ProcMemory.read(0));
        assertThrows(IllegalArgumentException.class, () -> ProcMemory.read(-1));
    }

    @Test
    void anUnreadableOrMissingFileIsUnknown(@TempDir Path dir) {
        // A directory opens but fails to read (EISDIR); the tests may run as root, so file modes prove nothing.
        assertEquals(Optional.empty(), ProcMemory.read(dir));
        assertEquals(Optional.empty(), ProcMemory.read(dir.resolve("missing")));
    }

    @Test
    void readsAtMostMaxBytes(@TempDir Path dir) throws IOException {
        String padding = "Filler:                0 kB\n".repeat(ProcMemory.MAX_BYTES / 20);
        Path first = Files.writeString(dir.resolve("first"), "Rss: 8 kB\nPss: 4 kB\n" + padding);
        Path beyond = Files.writeString(dir.resolve("beyond"), padding + "Rss: 8 kB\nPss: 4 kB\n");

        assertTrue(Files.size(beyond) > ProcMemory.MAX_BYTES);
        assertEquals(memory(8, 4), ProcMemory.read(first));
        assertEquals(Optional.empty(), ProcMemory.read(beyond));
    }

    /** A line cut at the limit ends in a shorter number: it must not be read as that number. */
    @Test
    void aLineCutAtTheLimitIsNotReadAsASmallerNumber(@TempDir Path dir) throws IOException {
        String head = "Pss: 4 kB\n";
        String filler = "x".repeat(ProcMemory.MAX_BYTES - head.length() - "Rss: 12".length() - 1) + "\n";
        Path cut = Files.writeString(dir.resolve("cut"), head + filler + "Rss: 1234 kB\n");

        assertEquals(ProcMemory.MAX_BYTES, (head + filler + "Rss: 12").length());
        assertEquals(Optional.empty(), ProcMemory.read(cut));
    }

    @Test
    void negativeSizesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new SidecarStatus.Memory(-1, 0));
        assertThrows(IllegalArgumentException.class, () -> new SidecarStatus.Memory(0, -1));
    }
}
