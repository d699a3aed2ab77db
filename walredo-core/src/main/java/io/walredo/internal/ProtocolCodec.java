// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.BufferTag;
import io.walredo.RedoRequest;
import io.walredo.RelTag;
import io.walredo.WalRecord;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Objects;

/**
 * Encodes requests in Neon's walredo protocol, the byte stream a pageserver writes to the stdin of
 * {@code postgres --wal-redo}. Pure: no I/O, no state, no allocation per message.
 *
 * <p>The specification is Neon's own code:
 * <a href="https://github.com/neondatabase/neon/blob/main/pageserver/src/walredo/process/protocol.rs">
 * pageserver/src/walredo/process/protocol.rs</a> (the writer) and
 * <a href="https://github.com/neondatabase/neon/blob/main/pgxn/neon_walredo/walredoproc.c">
 * pgxn/neon_walredo/walredoproc.c</a> (the reader, {@code WalRedoMain} and {@code ReadRedoCommand}).
 * Every message is {@code type:u8, length:u32, payload} where {@code length} counts itself and the payload but
 * not the type byte. All integers are big-endian whatever the destination buffer's byte order, because
 * walredoproc.c reads them with {@code pq_getmsgint}. A request is
 * {@code B} (BeginRedoForBlock), an optional {@code P} (PushPage), one {@code A} (ApplyRecord) per record, and
 * {@code G} (GetPage); only {@code G} and {@code H} (Ping) are answered, each with exactly {@link #PAGE_BYTES}
 * bytes, in request order.
 *
 * <p>Changing any constant here breaks the conformance test against the bytes Neon's pageserver writes
 * ({@code src/test/resources/neon-vectors}).
 */
public final class ProtocolCodec {

    /** See {@link WireSizes#PAGE_BYTES}. */
    public static final int PAGE_BYTES = WireSizes.PAGE_BYTES;

    /** See {@link WireSizes#TAG_BYTES}. */
    public static final int TAG_BYTES = WireSizes.TAG_BYTES;

    /** See {@link WireSizes#LENGTH_BYTES}. */
    public static final int LENGTH_BYTES = WireSizes.LENGTH_BYTES;

    /** See {@link WireSizes#HEADER_BYTES}. */
    public static final int HEADER_BYTES = WireSizes.HEADER_BYTES;

    /** See {@link WireSizes#LSN_BYTES}. */
    public static final int LSN_BYTES = WireSizes.LSN_BYTES;

    /** BeginRedoForBlock: starts a request and names the page; payload = tag. */
    public static final byte BEGIN_REDO_FOR_BLOCK = 'B';

    /** PushPage: supplies the base image; payload = tag + {@link #PAGE_BYTES} bytes. */
    public static final byte PUSH_PAGE = 'P';

    /** ApplyRecord: one WAL record; payload = end LSN + record bytes. */
    public static final byte APPLY_RECORD = 'A';

    /** GetPage: ends a request and asks for the redone page; payload = tag. */
    public static final byte GET_PAGE = 'G';

    /** Ping: asks for {@link #PAGE_BYTES} zero bytes, proving the process reads and writes; no payload. */
    public static final byte PING = 'H';

    /** See {@link WireSizes#BEGIN_REDO_BYTES}. */
    public static final int BEGIN_REDO_BYTES = WireSizes.BEGIN_REDO_BYTES;

    /** See {@link WireSizes#PUSH_PAGE_BYTES}. */
    public static final int PUSH_PAGE_BYTES = WireSizes.PUSH_PAGE_BYTES;

    /** See {@link WireSizes#GET_PAGE_BYTES}. */
    public static final int GET_PAGE_BYTES = WireSizes.GET_PAGE_BYTES;

    /** See {@link WireSizes#APPLY_RECORD_OVERHEAD}. */
    public static final int APPLY_RECORD_OVERHEAD = WireSizes.APPLY_RECORD_OVERHEAD;

    /** See {@link WireSizes#PING_BYTES}. */
    public static final int PING_BYTES = WireSizes.PING_BYTES;

    /** Bytes {@link #encodeBlankPageRequest} writes: B, P, G. */
    public static final int BLANK_PAGE_REQUEST_BYTES = BEGIN_REDO_BYTES + PUSH_PAGE_BYTES + GET_PAGE_BYTES;

    /** See {@link WireSizes#MAX_ENCODED_BYTES}. */
    public static final int MAX_ENCODED_BYTES = WireSizes.MAX_ENCODED_BYTES;

    private ProtocolCodec() {}

    /** See {@link WireSizes#encodedSize}. */
    public static long encodedSize(boolean hasBaseImage, int recordCount, long recordBytes) {
        return WireSizes.encodedSize(hasBaseImage, recordCount, recordBytes);
    }

    /**
     * Returns the number of bytes {@link #encodeRequest} writes for {@code request}.
     *
     * @param request the request
     * @return the encoded size, at most {@link #MAX_ENCODED_BYTES}
     */
    public static int encodedSize(RedoRequest request) {
        return request.encodedSize();
    }

    /**
     * Writes {@code request} as B, optional P, one A per record, G at {@code dst}'s position and advances the
     * position by {@link #encodedSize(RedoRequest)}. The byte order of {@code dst} is ignored and left unchanged.
     *
     * @param request the request
     * @param dst the buffer; must have at least {@link #encodedSize(RedoRequest)} bytes remaining
     * @throws IllegalArgumentException if {@code dst} is read-only or has too little space; nothing is written
     */
    public static void encodeRequest(RedoRequest request, ByteBuffer dst) {
        Objects.requireNonNull(request, "request");
        int size = request.encodedSize();
        checkWritable(dst, size, "request");
        BufferTag tag = request.tag();

        dst.put(BEGIN_REDO_FOR_BLOCK);
        putInt(dst, LENGTH_BYTES + TAG_BYTES);
        writeTag(tag, dst);

        if (request.hasBaseImage()) {
            dst.put(PUSH_PAGE);
            putInt(dst, LENGTH_BYTES + TAG_BYTES + PAGE_BYTES);
            writeTag(tag, dst);
            request.writeBaseImageTo(dst);
        }

        // Indexed loop: the list is random-access and an iterator would be per-message garbage.
        List<WalRecord> records = request.records();
        for (int i = 0, n = records.size(); i < n; i++) {
            WalRecord r = records.get(i);
            dst.put(APPLY_RECORD);
            putInt(dst, LENGTH_BYTES + LSN_BYTES + r.length());
            putLong(dst, r.endLsn().value());
            r.writeDataTo(dst);
        }

        dst.put(GET_PAGE);
        putInt(dst, LENGTH_BYTES + TAG_BYTES);
        writeTag(tag, dst);
    }

    /**
     * Writes a Ping message ({@code 'H'}, length 4) at {@code dst}'s position and advances it by
     * {@link #PING_BYTES}.
     *
     * @param dst the buffer; must have at least {@link #PING_BYTES} bytes remaining
     * @throws IllegalArgumentException if {@code dst} is read-only or has too little space; nothing is written
     */
    public static void encodePing(ByteBuffer dst) {
        checkWritable(dst, PING_BYTES, "ping");
        dst.put(PING);
        putInt(dst, LENGTH_BYTES);
    }

    /**
     * Writes a request that carries nobody's data: B for {@code tag}, P with an all-zero page, G. A warm spare runs
     * it before it is shelved, so the process's request path (message parsing, the buffer it redoes into, the
     * answer's write) is paged in before a tenant's first request needs it. The next request's B forgets it.
     *
     * @param tag the page to name; any tag, since no record is applied
     * @param dst the buffer; must have at least {@link #BLANK_PAGE_REQUEST_BYTES} bytes remaining
     * @throws IllegalArgumentException if {@code dst} is read-only or has too little space; nothing is written
     */
    public static void encodeBlankPageRequest(BufferTag tag, ByteBuffer dst) {
        Objects.requireNonNull(tag, "tag");
        checkWritable(dst, BLANK_PAGE_REQUEST_BYTES, "blank page request");
        dst.put(BEGIN_REDO_FOR_BLOCK);
        putInt(dst, LENGTH_BYTES + TAG_BYTES);
        writeTag(tag, dst);
        dst.put(PUSH_PAGE);
        putInt(dst, LENGTH_BYTES + TAG_BYTES + PAGE_BYTES);
        writeTag(tag, dst);
        for (int i = 0; i < PAGE_BYTES; i += Long.BYTES) {
            dst.putLong(0L);
        }
        dst.put(GET_PAGE);
        putInt(dst, LENGTH_BYTES + TAG_BYTES);
        writeTag(tag, dst);
    }

    /**
     * Writes the 17-byte wire form of {@code tag}: {@code forknum:u8, spcnode:u32, dbnode:u32, relnode:u32,
     * blknum:u32}, big-endian. The fork comes first because walredoproc.c's {@code BeginRedoForBlock} reads it
     * first, although the comment above those reads lists it fourth.
     *
     * @param tag the tag
     * @param dst the buffer; must have at least {@link #TAG_BYTES} bytes remaining
     * @throws java.nio.BufferOverflowException if it has fewer
     */
    public static void writeTag(BufferTag tag, ByteBuffer dst) {
        RelTag rel = tag.rel();
        dst.put((byte) rel.forkNum());
        putInt(dst, (int) rel.spcNode());
        putInt(dst, (int) rel.dbNode());
        putInt(dst, (int) rel.relNode());
        putInt(dst, (int) tag.blockNumber());
    }

    private static void checkWritable(ByteBuffer dst, int required, String what) {
        Objects.requireNonNull(dst, "dst");
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("dst is read-only; cannot encode " + what);
        }
        if (dst.remaining() < required) {
            throw new IllegalArgumentException("dst has " + dst.remaining() + " bytes remaining but the " + what
                    + " needs " + required + "; nothing was written");
        }
    }

    private static void putInt(ByteBuffer dst, int v) {
        dst.putInt(dst.order() == ByteOrder.BIG_ENDIAN ? v : Integer.reverseBytes(v));
    }

    private static void putLong(ByteBuffer dst, long v) {
        dst.putLong(dst.order() == ByteOrder.BIG_ENDIAN ? v : Long.reverseBytes(v));
    }
}
