// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.AttemptType;
import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.TenantShardId;
import io.walredo.WalRecord;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import io.walredo.testing.FakeRedoModel;
import io.walredo.testing.WireEncoder;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The three kinds of work Neon's {@code pageserver/benches/bench_walredo.rs} measures, as requests for the
 * fake redo binary: {@link #PING} (a Ping, answered with a zero page), {@link #SHORT} (Neon's own "short"
 * request, replayed from its recorded bytes: 2 records, 1,132 bytes on the wire) and {@link #MEDIUM} (a
 * synthesized request of the shape the issue gives for Neon's "medium": 227 small records, about 26 KB on the
 * wire; Neon's own medium records are not available here, so its record bytes are random).
 *
 * <p>Every kind can be run through the library ({@link #run}) and written out as the exact bytes the library
 * sends ({@link #writeWireBytes}), so the C limit client replays the same stream. Those bytes come from
 * walredo-testing's {@link WireEncoder}, a second implementation of the wire format whose tests pin it to Neon's
 * recorded bytes and to the library's codec, not from the library's internals.
 */
public enum Workload {
    /** A Ping: 5 bytes out, 8,192 zero bytes back; measures the round trip alone. */
    PING,
    /** Neon's recorded "short" request (pg14, two records, 1,062 record bytes). */
    SHORT,
    /** 227 records of 95 to 110 bytes, no base image (the first record initialises the page): Neon's "medium" shape. */
    MEDIUM;

    /** PostgreSQL version the benchmarks configure the fake for (the short request is a pg14 request). */
    public static final int PG_VERSION = 14;

    private static final int MEDIUM_RECORDS = 227;

    /** The request (null for {@link #PING}). Built once per call; requests are immutable. */
    public RedoRequest request() {
        return switch (this) {
            case PING -> null;
            case SHORT -> shortRequest();
            case MEDIUM -> mediumRequest();
        };
    }

    /** The page the fake answers, from its independent Java model. */
    public byte[] expectedPage() {
        return this == PING ? FakeRedoModel.pingAnswer() : FakeRedoModel.expectedPage(request());
    }

    /** Bytes this work puts on the wire per request. */
    public int wireBytes() {
        return this == PING ? WireEncoder.PING_BYTES : WireEncoder.requestBytes(request());
    }

    /**
     * Runs the work once through the manager and checks the answer.
     *
     * @param request {@link #request()}, built once by the caller (null for ping)
     * @param expected {@link #expectedPage()}
     * @throws IllegalStateException if the page is wrong: a benchmark that returns wrong pages measures nothing
     */
    public void run(WalRedoManager manager, TenantShardId tenant, RedoRequest request, byte[] expected)
            throws WalRedoException {
        if (this == PING) {
            manager.ping(tenant, PG_VERSION);
            return;
        }
        byte[] page = manager.redo(tenant, request, AttemptType.READ_PAGE);
        if (!Arrays.equals(page, expected)) {
            throw new IllegalStateException("wrong page for " + this + " from tenant " + tenant + ": "
                    + FakeRedoModel.describeMismatch(expected, page));
        }
    }

    /**
     * As {@link #run}, with the page written into {@code page} (cleared first; a ping ignores it) and compared in
     * place with {@code expected} (a buffer over the expected page), so nothing is allocated here per call.
     */
    public void runInto(
            WalRedoManager manager, TenantShardId tenant, RedoRequest request, ByteBuffer expected, ByteBuffer page)
            throws WalRedoException {
        if (this == PING) {
            manager.ping(tenant, PG_VERSION);
            return;
        }
        manager.redo(tenant, request, AttemptType.READ_PAGE, manager.config().redoTimeout(), page.clear());
        if (page.flip().mismatch(expected) != -1) {
            byte[] got = new byte[page.remaining()];
            page.get(got);
            throw new IllegalStateException("wrong page for " + this + " from tenant " + tenant + ": "
                    + FakeRedoModel.describeMismatch(expected.array(), got));
        }
    }

    /** Writes one request's wire bytes, exactly as the library encodes them, to {@code file}. */
    public void writeWireBytes(Path file) throws IOException {
        Files.write(file, this == PING ? WireEncoder.ping() : WireEncoder.request(request()));
    }

    /** Lower-case name, as in Neon's tables ("ping", "short", "medium"). */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    private static RedoRequest shortRequest() {
        List<WalRecord> records = new ArrayList<>();
        ByteBuffer in;
        try (InputStream s = Workload.class.getResourceAsStream("/neon-vectors/short.records")) {
            if (s == null) {
                throw new IllegalStateException("resource /neon-vectors/short.records is missing from the class path");
            }
            in = ByteBuffer.wrap(s.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        while (in.hasRemaining()) {
            Lsn end = Lsn.of(in.getLong());
            boolean willInit = in.get() != 0;
            byte[] data = new byte[in.getInt()];
            in.get(data);
            records.add(WalRecord.of(end, willInit, data));
        }
        return RedoRequest.builder(PG_VERSION, BufferTag.of(1663, 13010, 1259, 0, 0), Lsn.parse("0/16E2408"))
                .addRecords(records)
                .build();
    }

    private static RedoRequest mediumRequest() {
        SplittableRandom rnd = new SplittableRandom(227);
        long lsn = 0x0200_0000L;
        RedoRequest.Builder b = RedoRequest.builder(
                PG_VERSION, BufferTag.of(1663, 13010, 16384, 0, 7), Lsn.of(lsn + MEDIUM_RECORDS * 0x80L + 0x80));
        for (int i = 0; i < MEDIUM_RECORDS; i++) {
            byte[] rec = new byte[95 + rnd.nextInt(16)];
            for (int j = 0; j < rec.length; j++) {
                rec[j] = (byte) rnd.nextInt(256);
            }
            lsn += 0x80;
            b.addRecord(WalRecord.of(Lsn.of(lsn), i == 0, rec));
        }
        return b.build();
    }
}
