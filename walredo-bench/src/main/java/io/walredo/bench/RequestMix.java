// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.RelTag;
import io.walredo.TenantShardId;
import io.walredo.WalRecord;
import io.walredo.testing.FakeRedoModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Predicate;

/**
 * The requests and the tenants the demo ({@link Demo}) and the chaos soak ({@code soak.Soak}) drive the fake with:
 * one generator, so both run the same Neon-shaped mix and check every page against {@link FakeRedoModel}.
 *
 * <p>The mix ({@link #fake()}): Neon's recorded "short" request ({@link Workload#SHORT}: two real PostgreSQL 14 WAL
 * records, 1,132 bytes on the wire), 35 more of its shape (two records of 500 to 559 random bytes; 6 of them on
 * a base image) and 12 "medium" ones (227 records of 95 to 110 random bytes, about 26 KiB on the wire), three short to
 * one medium, each with the page the fake answers. The records are seeded, so every run sends the same bytes. All
 * requests are for {@link #PG_VERSION}; the fake ignores the version, a real binary is configured for it.
 *
 * <p>Immutable results; any thread. Each call builds new requests and pages.
 */
public final class RequestMix {
    /** PostgreSQL version of every request: Neon's short request is PostgreSQL 14 WAL. */
    public static final int PG_VERSION = Workload.PG_VERSION;
    /** Requests in {@link #fake()}, Neon's own first. */
    static final int REQUESTS = 48;
    /** Records of a medium request: the shape of Neon's "medium" benchmark request. */
    static final int MEDIUM_RECORDS = 227;

    private RequestMix() {}

    /** Short or medium: what the demo counts separately. */
    public enum Kind {
        /** A few records: Neon's short request or its shape, or a real page with few records. */
        SHORT,
        /** Many small records: Neon's medium shape, or a real page with many records. */
        MEDIUM
    }

    /**
     * One prebuilt request and what its answer must be.
     *
     * @param request the request
     * @param expected the page the binary must return, or null when not checked
     * @param kind short or medium
     * @param check whether a returned page is right
     */
    public record Work(RedoRequest request, byte[] expected, Kind kind, Predicate<byte[]> check) {
        /** A request whose page must equal {@code expected} byte for byte (anything goes if it is null). */
        public Work(RedoRequest request, byte[] expected, Kind kind) {
            this(request, expected, kind, page -> expected == null || Arrays.equals(page, expected));
        }
    }

    /**
     * Returns the mix for the fake binary, each request with the page the fake answers.
     *
     * @return {@value #REQUESTS} requests, Neon's short request first
     */
    public static List<Work> fake() {
        RedoRequest neonShort = Workload.SHORT.request();
        SplittableRandom rnd = new SplittableRandom(42);
        List<Work> out = new ArrayList<>();
        out.add(new Work(neonShort, FakeRedoModel.expectedPage(neonShort), Kind.SHORT));
        for (int i = 1; i < REQUESTS; i++) {
            boolean medium = i % 4 == 3;
            BufferTag tag = BufferTag.of(1663, 13010, 16384 + i, RelTag.MAIN_FORKNUM, i * 7L);
            long lsn = 0x16A9388L + i * 0x100000L;
            int records = medium ? MEDIUM_RECORDS : 2;
            RedoRequest.Builder b = RedoRequest.builder(PG_VERSION, tag, Lsn.of(lsn + (records + 1) * 0x100L));
            if (!medium && i % 8 == 1) {
                byte[] base = new byte[RedoRequest.PAGE_BYTES];
                rnd.nextBytes(base);
                b.baseImage(Lsn.of(lsn), base);
            }
            for (int r = 0; r < records; r++) {
                byte[] rec = new byte[medium ? 95 + rnd.nextInt(16) : 500 + rnd.nextInt(60)];
                rnd.nextBytes(rec);
                b.addRecord(WalRecord.of(Lsn.of(lsn + (r + 1) * 0x100L), false, rec));
            }
            RedoRequest req = b.build();
            out.add(new Work(req, FakeRedoModel.expectedPage(req), medium ? Kind.MEDIUM : Kind.SHORT));
        }
        return out;
    }

    /**
     * Returns Neon's short request alone, unchecked: for a real postgres, which can replay its records (real WAL)
     * but whose page only a real cluster could confirm.
     *
     * @return one request
     */
    public static List<Work> neonShortOnly() {
        return List.of(new Work(Workload.SHORT.request(), null, Kind.SHORT));
    }

    /**
     * Returns {@code count} distinct tenants, the same ones on every run (seeded).
     *
     * @param count how many, above 0
     * @return a new array
     */
    public static TenantShardId[] tenants(int count) {
        TenantShardId[] tenants = new TenantShardId[count];
        SplittableRandom seed = new SplittableRandom(7);
        for (int i = 0; i < tenants.length; i++) {
            tenants[i] = TenantShardId.of(seed.nextLong(), seed.nextLong());
        }
        return tenants;
    }

    /**
     * Describes a mix from {@link #fake()} or {@link #neonShortOnly()} for a run's header.
     *
     * @param work the mix, Neon's short request first
     * @return for example "short = Neon's benchmark request (1132 B, 2 records) and 35 of its shape (6 on a base
     *     image); medium ~26 KiB (227 records); 3 short to 1 medium"
     */
    public static String describe(List<Work> work) {
        int shortCount = 0;
        int onBaseImage = 0;
        long mediumBytes = 0;
        int mediumCount = 0;
        int mediumRecords = 0;
        for (Work w : work) {
            if (w.kind() == Kind.MEDIUM) {
                mediumBytes += w.request().encodedSize();
                mediumCount++;
                mediumRecords = w.request().recordCount();
            } else {
                shortCount++;
                onBaseImage += w.request().baseImage().isPresent() ? 1 : 0;
            }
        }
        RedoRequest neon = work.get(0).request();
        String s =
                "short = Neon's benchmark request (" + neon.encodedSize() + " B, " + neon.recordCount() + " records)";
        if (mediumCount == 0) {
            return s + " only";
        }
        return s + " and " + (shortCount - 1) + " of its shape (" + onBaseImage + " on a base image); medium ~"
                + Math.round(mediumBytes / (double) mediumCount / 1024) + " KiB (" + mediumRecords + " records); "
                + shortCount / mediumCount + " short to 1 medium";
    }
}
