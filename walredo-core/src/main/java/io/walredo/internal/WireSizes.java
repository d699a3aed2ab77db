// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

/**
 * The sizes of Neon's walredo wire format, and the encoded size of a request's shape. Pure arithmetic with no
 * dependency on the request types, so that {@link io.walredo.RedoRequest} can check its own size when it is built
 * while {@link ProtocolCodec}, which encodes it, depends on it: no import circle. The wire format itself (message
 * types, byte order, the specification) is documented in {@link ProtocolCodec}; changing any size here breaks the
 * conformance test against the bytes Neon's pageserver writes.
 */
public final class WireSizes {

    /** PostgreSQL's {@code BLCKSZ} as Neon builds it: the size of a base image and of every answer. */
    public static final int PAGE_BYTES = 8192;

    /** A BufferTag on the wire: {@code forknum:u8, spcnode:u32, dbnode:u32, relnode:u32, blknum:u32}. */
    public static final int TAG_BYTES = 1 + 4 * Integer.BYTES;

    /** The length field, which counts itself. */
    public static final int LENGTH_BYTES = Integer.BYTES;

    /** Every message's header: the type byte and the length field. */
    public static final int HEADER_BYTES = 1 + LENGTH_BYTES;

    /** The end LSN that starts an ApplyRecord payload. */
    public static final int LSN_BYTES = Long.BYTES;

    /** Encoded size of a BeginRedoForBlock message. */
    public static final int BEGIN_REDO_BYTES = HEADER_BYTES + TAG_BYTES;

    /** Encoded size of a PushPage message. */
    public static final int PUSH_PAGE_BYTES = HEADER_BYTES + TAG_BYTES + PAGE_BYTES;

    /** Encoded size of a GetPage message. */
    public static final int GET_PAGE_BYTES = HEADER_BYTES + TAG_BYTES;

    /** Encoded size of an ApplyRecord message minus its record bytes. */
    public static final int APPLY_RECORD_OVERHEAD = HEADER_BYTES + LSN_BYTES;

    /** Encoded size of a Ping message. */
    public static final int PING_BYTES = HEADER_BYTES;

    /**
     * The largest encoded request, {@code 2^31 - 1}: the most a single {@link java.nio.ByteBuffer} can hold.
     * walredoproc.c itself accepts any u32 length, so this is the library's limit, not the protocol's.
     */
    public static final int MAX_ENCODED_BYTES = Integer.MAX_VALUE;

    private WireSizes() {}

    /**
     * Computes the encoded size of a request with the given shape, without overflow, so that
     * {@link io.walredo.RedoRequest} can reject one too large for a buffer before it exists.
     *
     * @param hasBaseImage whether a PushPage message is sent
     * @param recordCount the number of records
     * @param recordBytes the sum of the record lengths
     * @return the size in bytes; may exceed {@link #MAX_ENCODED_BYTES}
     */
    public static long encodedSize(boolean hasBaseImage, int recordCount, long recordBytes) {
        return (long) BEGIN_REDO_BYTES
                + (hasBaseImage ? PUSH_PAGE_BYTES : 0)
                + (long) recordCount * APPLY_RECORD_OVERHEAD
                + recordBytes
                + GET_PAGE_BYTES;
    }
}
