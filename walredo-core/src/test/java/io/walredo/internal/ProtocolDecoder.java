// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * Test-only reader of the walredo request stream, written from walredoproc.c's {@code ReadRedoCommand} and
 * message handlers rather than from {@link ProtocolCodec}: it shares no constant or helper with the codec, so a
 * bug in one is not mirrored in the other. Not thread-safe; one instance per stream.
 *
 * <p>{@link #feed} accepts the stream in arbitrary chunks, as a pipe delivers it, and returns each frame once
 * its last byte has arrived.
 */
final class ProtocolDecoder {

    /** walredoproc.c's BLCKSZ. */
    static final int PAGE = 8192;
    /** forknum u8 + four u32. */
    static final int TAG = 17;

    private byte[] pending = new byte[256];
    private int pendingLen;

    /** One message: its type byte and its payload (the bytes after the length field). */
    record Frame(char type, byte[] payload) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Frame f && f.type == type && Arrays.equals(f.payload, payload);
        }

        @Override
        public int hashCode() {
            return type * 31 + Arrays.hashCode(payload);
        }

        @Override
        public String toString() {
            String hex = HexFormat.of().formatHex(payload, 0, Math.min(payload.length, 24));
            return "Frame[" + type + ", " + payload.length + " bytes " + hex + (payload.length > 24 ? "…]" : "]");
        }
    }

    /** A BufferTag as read off the wire, fields unsigned. */
    record Tag(int fork, long spc, long db, long rel, long blk) {}

    /** One ApplyRecord. */
    record Applied(long endLsn, byte[] data) {}

    /** One B, optional P, A…, G group. */
    record Request(Tag tag, byte[] baseImage, List<Applied> records) {}

    /**
     * Appends {@code len} bytes and returns every frame completed by them.
     *
     * @throws IllegalStateException on a frame walredoproc.c would reject
     */
    List<Frame> feed(byte[] src, int off, int len) {
        if (pendingLen + len > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLen + len));
        }
        System.arraycopy(src, off, pending, pendingLen, len);
        pendingLen += len;
        List<Frame> out = new ArrayList<>();
        int pos = 0;
        while (pendingLen - pos >= 5) {
            char type = (char) (pending[pos] & 0xFF);
            long length = u32(pending, pos + 1);
            checkLength(type, length);
            int total = 1 + (int) length;
            if (pendingLen - pos < total) {
                break;
            }
            out.add(new Frame(type, Arrays.copyOfRange(pending, pos + 5, pos + total)));
            pos += total;
        }
        if (pos > 0) {
            System.arraycopy(pending, pos, pending, 0, pendingLen - pos);
            pendingLen -= pos;
        }
        return out;
    }

    /** Whether every byte fed so far belongs to a complete frame. */
    boolean atFrameBoundary() {
        return pendingLen == 0;
    }

    /** Decodes a whole stream that must end on a frame boundary. */
    static List<Frame> decodeAll(byte[] stream) {
        ProtocolDecoder d = new ProtocolDecoder();
        List<Frame> frames = d.feed(stream, 0, stream.length);
        if (!d.atFrameBoundary()) {
            throw new IllegalStateException("stream ends inside a frame: " + d.pendingLen + " bytes left over");
        }
        return frames;
    }

    private static void checkLength(char type, long length) {
        long expected = switch (type) {
            case 'B', 'G' -> 4 + TAG;
            case 'P' -> 4 + TAG + PAGE;
            case 'H' -> 4;
            case 'A' -> -1;
            default -> throw new IllegalStateException("unknown message type 0x" + Integer.toHexString(type));
        };
        if (expected >= 0 && length != expected) {
            throw new IllegalStateException("message " + type + " has length " + length + ", expected " + expected);
        }
        if (type == 'A' && length < 4 + 8 + 1) {
            throw new IllegalStateException("ApplyRecord length " + length + " leaves no record bytes");
        }
    }

    /** Groups frames into requests the way walredoproc.c's main loop consumes them; pings are skipped. */
    static List<Request> requests(List<Frame> frames) {
        List<Request> out = new ArrayList<>();
        Tag tag = null;
        byte[] base = null;
        List<Applied> records = null;
        for (Frame f : frames) {
            byte[] p = f.payload();
            switch (f.type()) {
                case 'H' -> {
                    if (tag != null) {
                        throw new IllegalStateException("ping inside a request for " + tag);
                    }
                }
                case 'B' -> {
                    if (tag != null) {
                        throw new IllegalStateException("B inside a request for " + tag);
                    }
                    tag = tag(p, 0);
                    base = null;
                    records = new ArrayList<>();
                }
                case 'P' -> {
                    requireIn(tag, 'P');
                    if (base != null || !records.isEmpty()) {
                        throw new IllegalStateException("P must directly follow B");
                    }
                    requireSameTag(tag, tag(p, 0), 'P');
                    base = Arrays.copyOfRange(p, TAG, TAG + PAGE);
                }
                case 'A' -> {
                    requireIn(tag, 'A');
                    long lsn = u32(p, 0) << 32 | u32(p, 4);
                    records.add(new Applied(lsn, Arrays.copyOfRange(p, 8, p.length)));
                }
                case 'G' -> {
                    requireIn(tag, 'G');
                    requireSameTag(tag, tag(p, 0), 'G');
                    out.add(new Request(tag, base, records));
                    tag = null;
                }
                default -> throw new IllegalStateException("unexpected frame " + f);
            }
        }
        if (tag != null) {
            throw new IllegalStateException("request for " + tag + " has no G");
        }
        return out;
    }

    private static void requireIn(Tag tag, char type) {
        if (tag == null) {
            throw new IllegalStateException(type + " outside a request");
        }
    }

    private static void requireSameTag(Tag expected, Tag actual, char type) {
        if (!expected.equals(actual)) {
            throw new IllegalStateException(type + " names " + actual + " but B named " + expected);
        }
    }

    private static Tag tag(byte[] p, int at) {
        return new Tag(p[at] & 0xFF, u32(p, at + 1), u32(p, at + 5), u32(p, at + 9), u32(p, at + 13));
    }

    private static long u32(byte[] b, int at) {
        return (b[at] & 0xFFL) << 24 | (b[at + 1] & 0xFFL) << 16 | (b[at + 2] & 0xFFL) << 8 | (b[at + 3] & 0xFFL);
    }
}
