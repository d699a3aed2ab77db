// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import io.walredo.BufferTag;
import io.walredo.RedoRequest;
import io.walredo.RelTag;
import io.walredo.WalRecord;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The fake redo binary's answers, computed in Java, plus where to find the binary and how to ask it for a fault.
 *
 * <p>This is a second, independent implementation of the page computation specified in {@code docs/protocol.md}
 * ("The fake's page"); {@code walredo-native/src/main/c/fake_walredo.c} is the first. It shares no code with the
 * library's protocol codec, so a test that compares a page the library returned with {@link #expectedPage}
 * catches a codec bug, a framing bug and an answer delivered to the wrong caller: the page carries the tag,
 * the record count, the last LSN and a hash of every input byte.
 *
 * <p>Holds no static mutable state; every method is safe to call from any thread. A {@link Session} is not
 * thread-safe. Ships in walredo-testing (not in the core jar) so that the demo, the benchmarks and an embedder's
 * own tests can check pages against the fake; it depends on nothing but the JDK and the library's value types.
 */
public final class FakeRedoModel {

    /**
     * The system property naming the fake binary to use instead of compiling one; this project's surefire
     * configuration sets it.
     */
    public static final String BINARY_PROPERTY = "walredo.fake.binary";

    /** Size of every G and H answer: PostgreSQL's {@code BLCKSZ}. */
    public static final int PAGE_BYTES = 8192;

    /** A BufferTag on the wire: {@code forknum:u8, spcnode:u32, dbnode:u32, relnode:u32, blknum:u32}. */
    public static final int TAG_BYTES = 17;

    /** Bytes {@code --partial-after} and {@code --exit-mid-page} write of the answer before hanging or exiting. */
    public static final int PARTIAL_BYTES = 4096;

    /** Bytes {@code --garbage-after} writes before closing stdout; see {@link #garbage()}. */
    public static final int GARBAGE_BYTES = 100;

    /** Length of each line of {@code --stderr-flood}, newline included. */
    public static final int FLOOD_LINE_BYTES = 100;

    /** The first line {@code --stderr-lines} prints: PostgreSQL 16's line when Neon's rmgr registers. */
    public static final String RMGR_LOG_LINE = "LOG:  registered custom resource manager \"neon\" with ID 134";

    /** Exit status at EOF on stdin between messages. */
    public static final int EXIT_CLEAN = 0;

    /**
     * Exit status for a usage error, a missing {@code --wal-redo}, {@code --no-walredo-support}, an I/O error,
     * {@code --exit-after} and {@code --exit-mid-page}.
     */
    public static final int EXIT_FAILURE = 1;

    /** Exit status for a protocol violation: unknown type, bad length, A/P/G before B, EOF inside a message. */
    public static final int EXIT_PROTOCOL = 2;

    /** Exit status of {@code --exit-at-start}. */
    public static final int EXIT_AT_START = 3;

    /** The signal {@code --crash-after} dies of (SIGSEGV). */
    public static final int CRASH_SIGNAL = 11;

    static final long FNV_OFFSET_BASIS = 0xcbf29ce484222325L;
    static final long FNV_PRIME = 0x100000001b3L;

    private static final int OFF_COUNT = 17;
    private static final int OFF_LAST_LSN = 21;
    private static final int OFF_HASH = 29;
    private static final int OFF_BODY = 40;
    private static final int BODY_WORDS = (PAGE_BYTES - OFF_BODY) / Long.BYTES;

    private FakeRedoModel() {}

    /**
     * The fault flags of the fake binary, each documented in {@code docs/protocol.md}. "Nth G" counts GetPage
     * messages from 1 over the process lifetime; pings do not count.
     */
    public enum Fault {
        /** Sleep N microseconds before each G and H answer. */
        DELAY_US("--delay-us", true),
        /** Sleep N microseconds before each read of stdin (at most 16 KiB each): a slow but steady consumer. */
        READ_DELAY_US("--read-delay-us", true),
        /** Sleep N milliseconds after startup output, before reading stdin. */
        STARTUP_DELAY_MS("--startup-delay-ms", true),
        /** Die of SIGSEGV on the Nth G, before answering it. */
        CRASH_AFTER("--crash-after", true),
        /** Exit with status 1 on the Nth G, before answering it. */
        EXIT_AFTER("--exit-after", true),
        /** Stop on the Nth G: answer nothing more, read nothing more, keep every pipe open. */
        HANG_AFTER("--hang-after", true),
        /** On the Nth G write {@link #garbage()}, close stdout, and keep reading stdin until EOF. */
        GARBAGE_AFTER("--garbage-after", true),
        /** On the Nth G write the first {@link #PARTIAL_BYTES} of the answer, then hang with pipes open. */
        PARTIAL_AFTER("--partial-after", true),
        /** On the Nth G write the first {@link #PARTIAL_BYTES} of the answer, then exit with status 1. */
        EXIT_MID_PAGE("--exit-mid-page", true),
        /** After answering the Nth G, wait 100 ms and write an extra page of 0xFF bytes that nobody asked for. */
        UNSOLICITED_AFTER("--unsolicited-after", true),
        /** Print one stderr line and exit with status 3 before reading anything. */
        EXIT_AT_START("--exit-at-start", false),
        /** Print N log lines on stderr at startup, the first being {@link #RMGR_LOG_LINE}. */
        STDERR_LINES("--stderr-lines", true),
        /** Write N bytes of stderr at startup, a newline every {@link #FLOOD_LINE_BYTES} bytes. */
        STDERR_FLOOD("--stderr-flood", true),
        /** Write N bytes of stderr at startup without any newline. */
        STDERR_FLOOD_NONL("--stderr-flood-nonl", true),
        /** Never read stdin, so the parent's writes eventually block. */
        NO_READ("--no-read", false),
        /** First stderr line: {@code fds: 0 1 2}, the sorted open descriptors. */
        REPORT_FDS("--report-fds", false),
        /** Ignore SIGTERM; only SIGKILL ends the process. */
        IGNORE_SIGTERM("--ignore-sigterm", false),
        /** Fork a sleeping grandchild that keeps stdin, stdout and stderr open; report {@code grandchild: PID}. */
        SPAWN_GRANDCHILD("--spawn-grandchild", false),
        /** Behave like a postgres without Neon's walredo given {@code --wal-redo}: one FATAL line, exit 1. */
        NO_WALREDO_SUPPORT("--no-walredo-support", false);

        private final String flag;
        private final boolean takesValue;

        Fault(String flag, boolean takesValue) {
            this.flag = flag;
            this.takesValue = takesValue;
        }

        /**
         * Returns the command-line flag.
         *
         * @return for example {@code --crash-after}
         */
        public String flag() {
            return flag;
        }

        /**
         * Returns the arguments for a flag without a value.
         *
         * @return a one-element list
         * @throws IllegalStateException if the flag takes a value
         */
        public List<String> args() {
            if (takesValue) {
                throw new IllegalStateException(flag + " takes a value; use args(long)");
            }
            return List.of(flag);
        }

        /**
         * Returns the arguments for a flag with a value.
         *
         * @param value the value, not negative; the binary checks its own range
         * @return the flag and the value in decimal
         * @throws IllegalStateException if the flag takes no value
         * @throws IllegalArgumentException if {@code value} is negative
         */
        public List<String> args(long value) {
            if (!takesValue) {
                throw new IllegalStateException(flag + " takes no value; use args()");
            }
            if (value < 0) {
                throw new IllegalArgumentException(flag + " value " + value + " is negative");
            }
            return List.of(flag, Long.toString(value));
        }
    }

    /**
     * Returns the fake binary: the file {@value #BINARY_PROPERTY} names if that system property is set (this
     * project's surefire configuration sets it to the binary its build compiled), else the binary
     * {@link FakeBinaryCompiler} compiles from this jar's C source into its default cache directory.
     *
     * @return an absolute path to an executable file
     * @throws IllegalStateException if the property names no executable file, or the compiler fails; the
     *     message says what to do
     */
    public static Path binary() {
        String value = System.getProperty(BINARY_PROPERTY);
        if (value == null || value.isBlank()) {
            return FakeBinaryCompiler.compileInto(FakeBinaryCompiler.defaultCacheDir());
        }
        Path path = Path.of(value).toAbsolutePath();
        if (!Files.isRegularFile(path) || !Files.isExecutable(path)) {
            throw new IllegalStateException(BINARY_PROPERTY + "=" + path + " is not an executable file; build it"
                    + " with ./scripts/test -pl walredo-native (walredo-native/src/main/c/build.sh needs a C"
                    + " compiler), or unset the property to have FakeBinaryCompiler compile one");
        }
        return path;
    }

    /**
     * Returns the command line the library would run, plus extra flags: {@code binary --wal-redo
     * --tenant-shard-id ID extra...}.
     *
     * @param tenantShardId the value of {@code --tenant-shard-id}
     * @param extra more arguments, typically from {@link Fault#args}
     * @return a new list
     * @throws IllegalStateException as {@link #binary()}
     */
    public static List<String> command(String tenantShardId, List<String> extra) {
        Objects.requireNonNull(tenantShardId, "tenantShardId");
        List<String> argv = new ArrayList<>();
        argv.add(binary().toString());
        argv.add("--wal-redo");
        argv.add("--tenant-shard-id");
        argv.add(tenantShardId);
        argv.addAll(extra);
        return argv;
    }

    /**
     * Returns the page the fake answers to {@code request}'s GetPage.
     *
     * @param request the request
     * @return a new {@value #PAGE_BYTES}-byte array
     */
    public static byte[] expectedPage(RedoRequest request) {
        return expectedPage(request.tag(), request.baseImage(), request.records());
    }

    /**
     * Returns the page the fake answers for B(tag), optional P(baseImage), A per record, G(tag).
     *
     * @param tag the page
     * @param baseImage the pushed image, {@value #PAGE_BYTES} bytes, or empty for none
     * @param records the records in application order
     * @return a new {@value #PAGE_BYTES}-byte array
     * @throws IllegalArgumentException if the base image is not {@value #PAGE_BYTES} bytes
     */
    public static byte[] expectedPage(BufferTag tag, Optional<byte[]> baseImage, List<WalRecord> records) {
        byte[] wireTag = wireTag(tag);
        Session s = new Session().begin(wireTag);
        baseImage.ifPresent(s::pushPage);
        for (WalRecord r : records) {
            s.apply(r.endLsn().value(), r.data());
        }
        return s.getPage(wireTag);
    }

    /**
     * Returns the answer to a Ping.
     *
     * @return a new array of {@value #PAGE_BYTES} zero bytes
     */
    public static byte[] pingAnswer() {
        return new byte[PAGE_BYTES];
    }

    /**
     * Returns the bytes {@code --garbage-after} writes instead of a page: byte i is {@code 0xA5 ^ (i * 37)}.
     *
     * @return a new {@value #GARBAGE_BYTES}-byte array
     */
    public static byte[] garbage() {
        byte[] g = new byte[GARBAGE_BYTES];
        for (int i = 0; i < g.length; i++) {
            g[i] = (byte) (0xA5 ^ (i * 37));
        }
        return g;
    }

    /**
     * Returns the 17-byte wire form of a tag, written here rather than taken from the codec so that a codec bug
     * shows up as a mismatch.
     *
     * @param tag the tag
     * @return {@code forknum:u8, spcnode:u32, dbnode:u32, relnode:u32, blknum:u32}, big-endian
     */
    public static byte[] wireTag(BufferTag tag) {
        RelTag rel = tag.rel();
        return ByteBuffer.allocate(TAG_BYTES)
                .put((byte) rel.forkNum())
                .putInt((int) rel.spcNode())
                .putInt((int) rel.dbNode())
                .putInt((int) rel.relNode())
                .putInt((int) tag.blockNumber())
                .array();
    }

    /**
     * The fake's per-request state, message by message, for streams the library's types cannot express: a G
     * with another tag than its B, several Gs per B, empty records, LSN 0. Mirrors the C state machine: only B
     * resets it. Not thread-safe.
     */
    public static final class Session {

        private boolean begun;
        private byte[] base;
        private int count;
        private long lastLsn;
        private long hash;

        /** Creates a session that has seen no message yet. */
        public Session() {}

        /**
         * Applies a BeginRedoForBlock: forget the base image, zero the count and last LSN, restart the hash.
         *
         * @param wireTag the 17-byte tag (unused by the page computation; accepted to mirror the message)
         * @return this session
         * @throws IllegalArgumentException if {@code wireTag} is not 17 bytes
         */
        public Session begin(byte[] wireTag) {
            checkLength("tag", wireTag, TAG_BYTES);
            begun = true;
            base = null;
            count = 0;
            lastLsn = 0;
            hash = FNV_OFFSET_BASIS;
            return this;
        }

        /**
         * Applies a PushPage: the image becomes the base and its bytes are folded into the hash.
         *
         * @param image the {@value #PAGE_BYTES}-byte image; copied
         * @return this session
         * @throws IllegalStateException before any {@link #begin}
         * @throws IllegalArgumentException if the image is not {@value #PAGE_BYTES} bytes
         */
        public Session pushPage(byte[] image) {
            checkBegun("PushPage");
            checkLength("base image", image, PAGE_BYTES);
            base = image.clone();
            hash = fnv(hash, image, 0, image.length);
            return this;
        }

        /**
         * Applies an ApplyRecord: folds the end LSN (8 bytes, big-endian) and the record into the hash, counts
         * it and remembers its end LSN.
         *
         * @param endLsn the end LSN as sent, unsigned
         * @param record the record bytes, possibly empty
         * @return this session
         * @throws IllegalStateException before any {@link #begin}
         */
        public Session apply(long endLsn, byte[] record) {
            checkBegun("ApplyRecord");
            for (int shift = 56; shift >= 0; shift -= 8) {
                hash = (hash ^ ((endLsn >>> shift) & 0xff)) * FNV_PRIME;
            }
            hash = fnv(hash, record, 0, record.length);
            count++;
            lastLsn = endLsn;
            return this;
        }

        /**
         * Returns the answer to a GetPage; the state is unchanged, so a second G gets the same body.
         *
         * @param wireTag the G's 17-byte tag, copied into the answer's first bytes
         * @return a new {@value #PAGE_BYTES}-byte page
         * @throws IllegalStateException before any {@link #begin}
         * @throws IllegalArgumentException if {@code wireTag} is not 17 bytes
         */
        public byte[] getPage(byte[] wireTag) {
            checkBegun("GetPage");
            checkLength("tag", wireTag, TAG_BYTES);
            byte[] out = new byte[PAGE_BYTES];
            ByteBuffer o = ByteBuffer.wrap(out);
            o.put(0, wireTag);
            o.putInt(OFF_COUNT, count);
            o.putLong(OFF_LAST_LSN, lastLsn);
            o.putLong(OFF_HASH, hash);
            ByteBuffer b = base == null ? null : ByteBuffer.wrap(base);
            for (int j = 0; j < BODY_WORDS; j++) {
                int off = OFF_BODY + Long.BYTES * j;
                long word = splitmix64(hash + j);
                if (b != null) {
                    word ^= b.getLong(off);
                }
                o.putLong(off, word);
            }
            return out;
        }

        private void checkBegun(String message) {
            if (!begun) {
                throw new IllegalStateException(
                        message + " before any BeginRedoForBlock; the fake exits with" + " status " + EXIT_PROTOCOL);
            }
        }

        private static void checkLength(String what, byte[] bytes, int expected) {
            if (bytes.length != expected) {
                throw new IllegalArgumentException(what + " is " + bytes.length + " bytes; expected " + expected);
            }
        }
    }

    /**
     * Folds bytes into an FNV-1a 64-bit hash.
     *
     * @param h the hash so far
     * @param bytes the bytes
     * @param from the first index
     * @param to one past the last index
     * @return the new hash
     */
    static long fnv(long h, byte[] bytes, int from, int to) {
        for (int i = from; i < to; i++) {
            h = (h ^ (bytes[i] & 0xff)) * FNV_PRIME;
        }
        return h;
    }

    /**
     * Sebastiano Vigna's SplitMix64 finaliser applied to {@code x + golden gamma}, wrapping.
     *
     * @param x the input
     * @return the mixed value
     */
    static long splitmix64(long x) {
        long z = x + 0x9e3779b97f4a7c15L;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /**
     * Describes how two pages differ, for assertion messages: the first differing offset and which header field
     * it falls in.
     *
     * @param expected the expected page
     * @param actual the page received
     * @return {@code "equal"} or a one-line description
     */
    public static String describeMismatch(byte[] expected, byte[] actual) {
        if (Arrays.equals(expected, actual)) {
            return "equal";
        }
        if (expected.length != actual.length) {
            return "length " + actual.length + ", expected " + expected.length;
        }
        int i = Arrays.mismatch(expected, actual);
        String field = i < OFF_COUNT
                ? "tag"
                : i < OFF_LAST_LSN
                        ? "record count"
                        : i < OFF_HASH
                                ? "last LSN"
                                : i < OFF_HASH + Long.BYTES ? "hash" : i < OFF_BODY ? "padding" : "body";
        return "first difference at byte " + i + " (" + field + "): expected 0x"
                + Integer.toHexString(expected[i] & 0xff) + ", got 0x" + Integer.toHexString(actual[i] & 0xff);
    }
}
