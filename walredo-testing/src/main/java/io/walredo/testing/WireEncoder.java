// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import io.walredo.RedoRequest;
import io.walredo.WalRecord;
import java.util.Objects;
import java.util.Optional;

/**
 * The bytes a {@link RedoRequest} or a ping puts on a {@code postgres --wal-redo} child's stdin, in Neon's walredo
 * protocol: for a C client or a script to replay, or for a test to feed a sidecar by hand.
 *
 * <p>This is a second, independent implementation of the writer specified in {@code docs/protocol.md} ("Wire
 * format"), written from that page and from Neon's reader,
 * <a href="https://github.com/neondatabase/neon/blob/main/pgxn/neon_walredo/walredoproc.c">
 * pgxn/neon_walredo/walredoproc.c</a> ({@code ReadRedoCommand}). It shares no code with the library's codec: it
 * packs each integer byte by byte, big-endian, into an array sized from the spec. Its tests check it against the
 * stream Neon's pageserver wrote for the "short" request of its walredo benchmark and against the library's codec
 * on random requests, so code that uses it (the benchmarks' C client, an embedder's test) need not reach into the
 * library's internals for the wire format.
 *
 * <p>Every message is {@code type:u8, length:u32, payload}, where {@code length} counts itself and the payload but
 * not the type byte. A request is {@code B} (BeginRedoForBlock: the tag), an optional {@code P} (PushPage: the tag and
 * the base image), one {@code A} (ApplyRecord: end LSN and record bytes) per record in order, and {@code G}
 * (GetPage: the tag); a ping is {@code H} with no payload. The child answers each {@code G} and {@code H} with
 * {@value FakeRedoModel#PAGE_BYTES} raw bytes.
 *
 * <p>Pure and stateless: every method may be called from any thread. Each call allocates the whole stream, so it is
 * for test and benchmark set-up, not for a hot path.
 */
public final class WireEncoder {

    /** The type byte: one ASCII letter. */
    public static final int TYPE_BYTES = 1;

    /** The length field: u32, big-endian, counting itself and the payload. */
    public static final int LENGTH_BYTES = 4;

    /** A message's header: type and length. */
    public static final int HEADER_BYTES = TYPE_BYTES + LENGTH_BYTES;

    /** An ApplyRecord's end LSN: u64, big-endian. */
    public static final int LSN_BYTES = 8;

    /** A ping on the wire: {@code 'H'} and length 4, no payload. */
    public static final int PING_BYTES = HEADER_BYTES;

    private static final byte BEGIN_REDO_FOR_BLOCK = 'B';
    private static final byte PUSH_PAGE = 'P';
    private static final byte APPLY_RECORD = 'A';
    private static final byte GET_PAGE = 'G';
    private static final byte PING = 'H';

    /** B and G each: header and tag. */
    private static final int TAG_MESSAGE_BYTES = HEADER_BYTES + FakeRedoModel.TAG_BYTES;
    /** P: header, tag and the base image. */
    private static final int PUSH_PAGE_MESSAGE_BYTES = TAG_MESSAGE_BYTES + FakeRedoModel.PAGE_BYTES;
    /** A, without its record bytes: header and end LSN. */
    private static final int APPLY_RECORD_OVERHEAD = HEADER_BYTES + LSN_BYTES;

    private WireEncoder() {}

    /**
     * Returns a ping: {@code 'H'}, then length 4.
     *
     * @return a new {@value #PING_BYTES}-byte array
     */
    public static byte[] ping() {
        Packer p = new Packer(PING_BYTES);
        p.header(PING, 0);
        return p.done();
    }

    /**
     * Returns how many bytes {@link #request} writes for {@code request}: {@code B} and {@code G} of
     * {@value #HEADER_BYTES} + 17 bytes each, {@code P} of {@value #HEADER_BYTES} + 17 + 8192 if there is a base image,
     * and {@value #HEADER_BYTES} + {@value #LSN_BYTES} + its length per record.
     *
     * @param request the request
     * @return the stream's length
     * @throws ArithmeticException if the stream would not fit in an array; the library's own limits keep every
     *     {@link RedoRequest} below that ({@link RedoRequest#encodedSize()} is an {@code int})
     */
    public static int requestBytes(RedoRequest request) {
        Objects.requireNonNull(request, "request");
        long n = 2L * TAG_MESSAGE_BYTES;
        if (request.hasBaseImage()) {
            n += PUSH_PAGE_MESSAGE_BYTES;
        }
        for (WalRecord r : request.records()) {
            n += APPLY_RECORD_OVERHEAD + (long) r.length();
        }
        return Math.toIntExact(n);
    }

    /**
     * Returns the stream the library writes for {@code request}: {@code B}, an optional {@code P}, one {@code A} per
     * record, {@code G}, all for the request's tag.
     *
     * @param request the request
     * @return a new array of {@link #requestBytes} bytes
     */
    public static byte[] request(RedoRequest request) {
        Packer p = new Packer(requestBytes(request));
        byte[] tag = FakeRedoModel.wireTag(request.tag());
        p.header(BEGIN_REDO_FOR_BLOCK, tag.length);
        p.bytes(tag);
        Optional<byte[]> base = request.baseImage();
        if (base.isPresent()) {
            p.header(PUSH_PAGE, tag.length + base.get().length);
            p.bytes(tag);
            p.bytes(base.get());
        }
        for (WalRecord r : request.records()) {
            byte[] data = r.data();
            p.header(APPLY_RECORD, LSN_BYTES + data.length);
            p.u64(r.endLsn().value());
            p.bytes(data);
        }
        p.header(GET_PAGE, tag.length);
        p.bytes(tag);
        return p.done();
    }

    /** Writes big-endian fields into an array of the exact size; {@link #done} checks that it is full. */
    private static final class Packer {
        private final byte[] out;
        private int at;

        Packer(int size) {
            out = new byte[size];
        }

        /** The type byte, then the length: 4 for the length field itself plus the payload. */
        void header(byte type, int payloadBytes) {
            out[at++] = type;
            u32(LENGTH_BYTES + payloadBytes);
        }

        void u32(int v) {
            for (int shift = 24; shift >= 0; shift -= 8) {
                out[at++] = (byte) (v >>> shift);
            }
        }

        void u64(long v) {
            for (int shift = 56; shift >= 0; shift -= 8) {
                out[at++] = (byte) (v >>> shift);
            }
        }

        void bytes(byte[] b) {
            System.arraycopy(b, 0, out, at, b.length);
            at += b.length;
        }

        byte[] done() {
            if (at != out.length) {
                throw new IllegalStateException("wrote " + at + " of " + out.length + " bytes: the size computed"
                        + " from the spec and the messages written disagree");
            }
            return out;
        }
    }
}
