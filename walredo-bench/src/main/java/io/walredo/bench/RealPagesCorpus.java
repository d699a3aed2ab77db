// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.WalRecord;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Pages a real PostgreSQL 15 server wrote, each with the WAL records that built it, as {@code postgres/corpus.py}
 * captures them from a throwaway cluster (its docstring gives the file layout). Read once, immutable, safe to
 * share between threads. The conformance test, the demo's real-pages mode and the real-binary bench scenario
 * replay these pages through the library and compare with {@link Page#matches}.
 *
 * @param pgVersion the PostgreSQL major version that wrote the WAL (15)
 * @param serverVersionNum the server's {@code server_version_num}, e.g. 150018
 * @param pages the pages, in relation then block order
 */
public record RealPagesCorpus(int pgVersion, int serverVersionNum, List<Page> pages) {

    private static final byte[] MAGIC = "WALREDO-CORPUS\0\1".getBytes(StandardCharsets.US_ASCII);

    /** Offset of {@code pd_prune_xid} in a page header ({@code storage/bufpage.h}). */
    private static final int PD_PRUNE_XID = 20;

    private static final int PD_FLAGS = 10;
    private static final int PD_LOWER = 12;
    private static final int PD_UPPER = 14;
    private static final int PD_SPECIAL = 16;
    private static final int PAGE_HEADER_BYTES = 24;
    /** {@code PD_HAS_FREE_LINES | PD_PAGE_FULL}: hints PostgreSQL sets without WAL. */
    private static final int PD_HINT_FLAGS = 0x0001 | 0x0002;
    /** {@code HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID | HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID}. */
    private static final int HEAP_HINT_BITS = 0x0100 | 0x0200 | 0x0400 | 0x0800;
    /** {@code HEAP_XMIN_FROZEN}: both xmin bits set mean frozen, which is WAL-logged, not a hint. */
    private static final int HEAP_XMIN_FROZEN = 0x0100 | 0x0200;

    private static final int HEAP_XMAX_HINT_BITS = 0x0400 | 0x0800;
    private static final int T_CID = 8;
    private static final int T_INFOMASK = 20;
    private static final int MIN_HEAP_TUPLE = 23;
    private static final int LP_NORMAL = 1;
    /** In a btree page's special space ({@code BTPageOpaqueData}): flags at +12, cycle id at +14. */
    private static final int BTPO_FLAGS = 12;

    private static final int BTPO_CYCLEID = 14;
    private static final int BTP_LEAF = 0x0001;
    /** {@code BTP_SPLIT_END | BTP_HAS_GARBAGE}: set without WAL (garbage) or not set by redo (split end). */
    private static final int BTP_UNLOGGED_FLAGS = 0x0020 | 0x0040;

    private static final int LP_DEAD = 3;

    /**
     * What a page is, which decides which bytes PostgreSQL does not WAL-log on it. The masks are subsets of
     * PostgreSQL's own {@code heap_mask()} and {@code btree_mask()} ({@code access/heap/heapam.c},
     * {@code access/nbtree/nbtxlog.c}, used by {@code wal_consistency_checking}); narrower where narrower still
     * passes, so the comparison is stricter than PostgreSQL's own.
     */
    public enum Kind {
        /**
         * A heap page. Masked: {@code pd_prune_xid} (pruning resets it without WAL), the hint flags
         * {@code PD_HAS_FREE_LINES} and {@code PD_PAGE_FULL}, each tuple's hint bits (xmin/xmax committed and
         * invalid, unless xmin is frozen; then only xmax's) and command id (redo writes {@code FirstCommandId}),
         * and every byte no tuple covers: the free space between {@code pd_lower} and {@code pd_upper} and
         * the alignment padding after tuples, which keep whatever compaction left on the server and zeros in
         * redo. {@code PD_ALL_VISIBLE}, line pointers, tuple headers otherwise and data are compared.
         */
        HEAP(1),
        /**
         * A btree page. Masked: the free space between {@code pd_lower} and {@code pd_upper};
         * {@code BTP_HAS_GARBAGE} and {@code BTP_SPLIT_END} and the vacuum cycle id; on leaf pages the
         * {@code LP_DEAD} hint of line pointers (set by index scans without WAL).
         */
        BTREE(2);

        private final int code;

        Kind(int code) {
            this.code = code;
        }

        static Kind of(int code) {
            for (Kind k : values()) {
                if (k.code == code) {
                    return k;
                }
            }
            throw new IllegalArgumentException("unknown page kind " + code);
        }

        /** A copy of {@code page} with the bytes this kind does not WAL-log zeroed. */
        public byte[] mask(byte[] page) {
            ByteBuffer p = ByteBuffer.wrap(page.clone()).order(ByteOrder.LITTLE_ENDIAN);
            int lower = Short.toUnsignedInt(p.getShort(PD_LOWER));
            int upper = Short.toUnsignedInt(p.getShort(PD_UPPER));
            int special = Short.toUnsignedInt(p.getShort(PD_SPECIAL));
            if (lower < PAGE_HEADER_BYTES || lower > upper || upper > special || special > page.length) {
                return p.array(); // not a valid page (a zeroed one, say): compared whole
            }
            return this == HEAP ? maskHeap(page, p, lower, special) : maskBtree(p, lower, upper, special);
        }

        private static byte[] maskHeap(byte[] original, ByteBuffer p, int lower, int special) {
            byte[] out = new byte[original.length];
            System.arraycopy(original, 0, out, 0, lower);
            System.arraycopy(original, special, out, special, original.length - special);
            ByteBuffer o = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
            o.putInt(PD_PRUNE_XID, 0);
            o.putShort(PD_FLAGS, (short) (o.getShort(PD_FLAGS) & ~PD_HINT_FLAGS));
            for (int lp = PAGE_HEADER_BYTES; lp + 4 <= lower; lp += 4) {
                int item = p.getInt(lp);
                int off = item & 0x7FFF;
                int flags = (item >>> 15) & 3;
                int len = item >>> 17;
                if (flags == LP_NORMAL && len >= MIN_HEAP_TUPLE && off + len <= special) {
                    System.arraycopy(original, off, out, off, len);
                    int infomask = Short.toUnsignedInt(o.getShort(off + T_INFOMASK));
                    int hints =
                            (infomask & HEAP_XMIN_FROZEN) == HEAP_XMIN_FROZEN ? HEAP_XMAX_HINT_BITS : HEAP_HINT_BITS;
                    o.putShort(off + T_INFOMASK, (short) (infomask & ~hints));
                    o.putInt(off + T_CID, 0);
                }
            }
            return out;
        }

        private static byte[] maskBtree(ByteBuffer p, int lower, int upper, int special) {
            Arrays.fill(p.array(), lower, upper, (byte) 0);
            if (special + BTPO_CYCLEID + 2 <= p.capacity()) {
                int flags = Short.toUnsignedInt(p.getShort(special + BTPO_FLAGS));
                p.putShort(special + BTPO_FLAGS, (short) (flags & ~BTP_UNLOGGED_FLAGS));
                p.putShort(special + BTPO_CYCLEID, (short) 0);
                if ((flags & BTP_LEAF) != 0) {
                    for (int lp = PAGE_HEADER_BYTES; lp + 4 <= lower; lp += 4) {
                        int item = p.getInt(lp);
                        if (((item >>> 15) & 3) == LP_DEAD) {
                            p.putInt(lp, (item & ~(3 << 15)) | (LP_NORMAL << 15));
                        }
                    }
                }
            }
            return p.array();
        }
    }

    /**
     * One page and what built it.
     *
     * @param relation the relation's name on the server ({@code ins}, {@code mix_id}, {@code pg_toast_16401}, ...)
     * @param kind heap or btree
     * @param tag the page
     * @param records every WAL record since the relation was created that references the page, in WAL order
     * @param imageOfPage for each record, whether it carries a full-page image of this page
     * @param serverPage the page the server wrote to its data file after the final checkpoint
     */
    public record Page(
            String relation,
            Kind kind,
            BufferTag tag,
            List<WalRecord> records,
            List<Boolean> imageOfPage,
            byte[] serverPage) {

        /** The request that rebuilds the page from nothing: no base image, every record, up to the last one. */
        public RedoRequest request(int pgVersion) {
            return RedoRequest.builder(
                            pgVersion, tag, records.get(records.size() - 1).endLsn())
                    .addRecords(records)
                    .build();
        }

        /** Whether {@code redone} equals the server's page byte for byte. */
        public boolean exact(byte[] redone) {
            return Arrays.equals(redone, serverPage);
        }

        /** Whether {@code redone} equals the server's page outside the bytes {@link #kind()} masks. */
        public boolean matches(byte[] redone) {
            return exact(redone) || Arrays.equals(kind.mask(redone), kind.mask(serverPage));
        }

        /** Names the first differing byte after masking, for a failure message; empty when they match. */
        public String describeMismatch(byte[] redone) {
            byte[] a = kind.mask(serverPage);
            byte[] b = kind.mask(redone);
            int i = Arrays.mismatch(a, b);
            if (i < 0) {
                return "";
            }
            int n = 0;
            for (int k = 0; k < Math.min(a.length, b.length); k++) {
                n += a[k] != b[k] ? 1 : 0;
            }
            return relation + " " + tag + ": " + n + " bytes differ after masking, the first at offset " + i
                    + (i < a.length && i < b.length ? String.format(" (server 0x%02x, redo 0x%02x)", a[i], b[i]) : "");
        }
    }

    /**
     * Reads a corpus file.
     *
     * @throws IOException if it cannot be read or is not a corpus ({@code postgres/corpus.py} writes them)
     */
    public static RealPagesCorpus read(Path file) throws IOException {
        try (InputStream raw = Files.newInputStream(file);
                DataInputStream in = new DataInputStream(new BufferedInputStream(raw, 1 << 16))) {
            byte[] magic = new byte[MAGIC.length];
            in.readFully(magic);
            if (!Arrays.equals(magic, MAGIC)) {
                throw new IOException(file + " is not a corpus of postgres/corpus.py (bad magic); capture one with"
                        + " postgres/capture-corpus");
            }
            int pgVersion = in.readInt();
            int versionNum = in.readInt();
            int count = in.readInt();
            List<Page> pages = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                int fork = in.readUnsignedByte();
                long spc = Integer.toUnsignedLong(in.readInt());
                long db = Integer.toUnsignedLong(in.readInt());
                long rel = Integer.toUnsignedLong(in.readInt());
                long blk = Integer.toUnsignedLong(in.readInt());
                Kind kind = Kind.of(in.readUnsignedByte());
                byte[] name = new byte[in.readUnsignedShort()];
                in.readFully(name);
                int nrec = in.readInt();
                List<WalRecord> records = new ArrayList<>(nrec);
                List<Boolean> images = new ArrayList<>(nrec);
                for (int r = 0; r < nrec; r++) {
                    long end = in.readLong();
                    boolean willInit = in.readUnsignedByte() != 0;
                    images.add(in.readUnsignedByte() != 0);
                    byte[] data = new byte[in.readInt()];
                    in.readFully(data);
                    records.add(WalRecord.of(Lsn.of(end), willInit, data));
                }
                byte[] page = new byte[RedoRequest.PAGE_BYTES];
                in.readFully(page);
                pages.add(new Page(
                        new String(name, StandardCharsets.UTF_8),
                        kind,
                        BufferTag.of(spc, db, rel, fork, blk),
                        List.copyOf(records),
                        List.copyOf(images),
                        page));
            }
            if (in.read() != -1) {
                throw new IOException(file + " has bytes after its " + count + " pages; recapture it with"
                        + " postgres/capture-corpus");
            }
            return new RealPagesCorpus(pgVersion, versionNum, List.copyOf(pages));
        } catch (EOFException e) {
            throw new IOException(
                    file + " ends early (a capture that was cut short?); recapture it with"
                            + " postgres/capture-corpus",
                    e);
        }
    }

    /**
     * Names a PostgreSQL 15 record by resource manager and operation, as {@code pg_waldump} does ("Heap/INSERT",
     * "Btree/SPLIT_L", "XLOG/FPI"); "+INIT" when a heap record initialises the page.
     */
    public static String recordType(WalRecord record) {
        byte[] data = record.data(); // XLogRecord: xl_info at offset 16, xl_rmid at 17 (access/xlogrecord.h)
        int info = Byte.toUnsignedInt(data[16]);
        int rmid = Byte.toUnsignedInt(data[17]);
        return switch (rmid) {
            case 0 ->
                "XLOG/"
                        + switch (info & 0xF0) {
                            case 0xB0 -> "FPI";
                            case 0xA0 -> "FPI_FOR_HINT";
                            default -> String.format("0x%02X", info & 0xF0);
                        };
            case 9 -> "Heap2/" + HEAP2_OPS[(info & 0x70) >> 4] + ((info & 0x80) != 0 ? "+INIT" : "");
            case 10 -> "Heap/" + HEAP_OPS[(info & 0x70) >> 4] + ((info & 0x80) != 0 ? "+INIT" : "");
            case 11 -> "Btree/" + BTREE_OPS[(info & 0xF0) >> 4];
            default -> "rmgr " + rmid + String.format("/0x%02X", info & 0xF0);
        };
    }

    /** {@code access/heapam_xlog.h}, PostgreSQL 15: the operation is {@code info & XLOG_HEAP_OPMASK}. */
    private static final String[] HEAP_OPS = {
        "INSERT", "DELETE", "UPDATE", "TRUNCATE", "HOT_UPDATE", "CONFIRM", "LOCK", "INPLACE"
    };

    private static final String[] HEAP2_OPS = {
        "REWRITE", "PRUNE", "VACUUM", "FREEZE_PAGE", "VISIBLE", "MULTI_INSERT", "LOCK_UPDATED", "NEW_CID"
    };
    /** {@code access/nbtxlog.h}, PostgreSQL 15. */
    private static final String[] BTREE_OPS = {
        "INSERT_LEAF",
        "INSERT_UPPER",
        "INSERT_META",
        "SPLIT_L",
        "SPLIT_R",
        "INSERT_POST",
        "DEDUP",
        "DELETE",
        "UNLINK_PAGE",
        "UNLINK_PAGE_META",
        "NEWROOT",
        "MARK_PAGE_HALFDEAD",
        "VACUUM",
        "REUSE_PAGE",
        "META_CLEANUP",
        "0xF0"
    };
}
