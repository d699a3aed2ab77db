# SPDX-License-Identifier: Apache-2.0
"""Captures a conformance corpus: pages a real PostgreSQL 15 server wrote, with the WAL records that built them.

Usage: python3 postgres/corpus.py OUT

Starts a throwaway PostgreSQL 15 server (walwire.ThrowawayServer: Debian's, as user postgres, Unix socket only),
runs the workload below, checkpoints, stops the server, reads its WAL and writes OUT: for every page of the
workload's tables, indexes and TOAST relations, the WAL records since the relations were created that reference
the page (in order, each with its end LSN) and the page the server wrote to its data file. No redo happens
here; io.walredo.bench.RealPagesCorpus reads OUT and the Java side sends each page's records through the
library and compares. docs/real-postgres.md describes the workload, the masks and the results.

OUT layout (all integers big-endian):
  magic "WALREDO-CORPUS\\0\\1" (16 bytes), u32 pg major version, u32 server version number (150018),
  u32 page count, then per page:
    u8 fork, u32 spcOid, u32 dbOid, u32 relNumber, u32 block,
    u8 page kind (1 heap, 2 btree), u16 name length, name (UTF-8: the relation's name),
    u32 record count, then per record: u64 end LSN, u8 will_init, u8 image of this page, u32 length, bytes;
    then the server's page, 8192 bytes.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import walredo_client as w  # noqa: E402
import walwire  # noqa: E402

MAGIC = b"WALREDO-CORPUS\x00\x01"
KIND_HEAP, KIND_BTREE = 1, 2
BKPBLOCK_WILL_INIT = 0x40
BKPIMAGE_APPLY = 0x02  # PostgreSQL 15 (14 had 0x04 here; see docs/real-postgres.md on Neon's PG14 vectors)


def _block_refs_with_flags(rec):
    """(fork, spc, db, rel, blk, will_init) for each block reference: will_init as Neon's pageserver derives it
    (BKPBLOCK_WILL_INIT, or a full-page image with BKPIMAGE_APPLY). Same walk as walwire.block_refs."""
    pos, refs, rnode = 24, [], None
    remaining, datatotal = len(rec) - 24, 0
    while remaining > datatotal:
        block_id = rec[pos]
        pos, remaining = pos + 1, remaining - 1
        if block_id in (walwire.XLR_BLOCK_ID_DATA_SHORT, walwire.XLR_BLOCK_ID_DATA_LONG):
            break
        if block_id == walwire.XLR_BLOCK_ID_ORIGIN:
            pos, remaining = pos + 2, remaining - 2
            continue
        if block_id == walwire.XLR_BLOCK_ID_TOPLEVEL_XID:
            pos, remaining = pos + 4, remaining - 4
            continue
        fork_flags, data_length = struct.unpack_from("<BH", rec, pos)
        pos, remaining = pos + 3, remaining - 3
        datatotal += data_length
        will_init = bool(fork_flags & BKPBLOCK_WILL_INIT)
        if fork_flags & walwire.BKPBLOCK_HAS_IMAGE:
            bimg_len, _, bimg_info = struct.unpack_from("<HHB", rec, pos)
            pos, remaining = pos + 5, remaining - 5
            datatotal += bimg_len
            will_init = will_init or bool(bimg_info & BKPIMAGE_APPLY)
            if bimg_info & walwire.BKPIMAGE_HAS_HOLE and bimg_info & walwire.BKPIMAGE_COMPRESSED:
                pos, remaining = pos + 2, remaining - 2
        if not fork_flags & walwire.BKPBLOCK_SAME_REL:
            rnode = struct.unpack_from("<III", rec, pos)
            pos, remaining = pos + 12, remaining - 12
        (blk,) = struct.unpack_from("<I", rec, pos)
        pos, remaining = pos + 4, remaining - 4
        refs.append((fork_flags & walwire.BKPBLOCK_FORK_MASK, *rnode, blk, will_init,
                     bool(fork_flags & walwire.BKPBLOCK_HAS_IMAGE)))
    return refs


def _copy_rows(n):
    """COPY data for table cp (heap multi-insert records, as COPY writes them)."""
    lines = [f"{(i * 7919) % 100000}\tcopied row {i} " + "y" * (i % 40) for i in range(n)]
    return "COPY cp FROM STDIN;\n" + "\n".join(lines) + "\n\\.\n"


# One statement per transaction (psql's autocommit), so every tuple's command id is 0 on the server as in redo.
# wal_compression changes per session: off, lz4 and zstd full-page images all appear in the WAL.
WORKLOAD = (
    """
    CREATE TABLE ins (id int, note text);
    CREATE INDEX ins_id ON ins (id);
    CREATE TABLE mix (id int, val int, note text) WITH (fillfactor = 80);
    CREATE INDEX mix_id ON mix (id);
    CREATE TABLE cp (id int, note text);
    CREATE TABLE big (id int, doc text);
    """
    + "".join(f"INSERT INTO ins SELECT g, repeat('x', 20 + g % 60) || g FROM generate_series({i * 500 + 1}, "
              f"{i * 500 + 500}) g;\n" for i in range(10))
    + "".join(f"INSERT INTO mix SELECT (g * 7919) % 20011, g, 'row ' || g FROM generate_series({i * 1000 + 1}, "
              f"{i * 1000 + 1000}) g;\n" for i in range(8))
    + "INSERT INTO big SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 150) i)"
      " FROM generate_series(1, 40) g;\n"
    + "CHECKPOINT;\nSET wal_compression = lz4;\n"
    + "".join(f"INSERT INTO ins SELECT g, 'second ' || g FROM generate_series({5000 + i * 500 + 1}, "
              f"{5000 + i * 500 + 500}) g;\n" for i in range(6))
    + _copy_rows(4000)
    + """
    SET wal_compression = zstd;
    UPDATE mix SET val = val + 1 WHERE id % 10 = 0;
    UPDATE mix SET id = id + 30000 WHERE id % 13 = 0;
    DELETE FROM mix WHERE id % 7 = 0;
    SELECT count(*) FROM (SELECT id FROM mix WHERE val % 50 = 1 FOR UPDATE) s;
    DELETE FROM ins WHERE id BETWEEN 1000 AND 4000;
    UPDATE big SET doc = doc || 'tail' WHERE id % 4 = 0;
    DELETE FROM big WHERE id % 5 = 0;
    VACUUM ins;
    VACUUM mix;
    VACUUM big;
    CHECKPOINT;
    SET wal_compression = off;
    UPDATE mix SET note = 'after vacuum' WHERE val % 9 = 0;
    INSERT INTO mix SELECT (g * 31) % 20011, g, 'late ' || g FROM generate_series(1, 500) g;
    VACUUM FREEZE cp;
    CHECKPOINT;
    """
)

RELATIONS = """
SELECT c.relname, c.relfilenode, pg_relation_filepath(c.oid), am.amname
FROM pg_class c JOIN pg_am am ON am.oid = c.relam
WHERE c.relname IN ('ins', 'ins_id', 'mix', 'mix_id', 'cp')
   OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relname = 'big')
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid =
                (SELECT reltoastrelid FROM pg_class WHERE relname = 'big'))
ORDER BY 1
"""


def capture(out_path):
    reason = walwire.ThrowawayServer.skip_reason()
    if reason:
        raise SystemExit(f"corpus.py: cannot start a PostgreSQL 15 server here: {reason}")
    with walwire.ThrowawayServer() as srv:
        start = walwire.parse_lsn(srv.sql("CHECKPOINT; SELECT pg_current_wal_insert_lsn()"))
        srv.script(WORKLOAD)
        end = walwire.parse_lsn(srv.sql("SELECT pg_current_wal_insert_lsn()"))
        version_num = int(srv.sql("SHOW server_version_num"))
        db_oid = int(srv.sql("SELECT oid FROM pg_database WHERE datname = 'postgres'"))
        rels = [line.split("|") for line in srv.sql(RELATIONS).splitlines()]
        srv.stop()

        wanted = {int(r[1]) for r in rels}
        by_page = {}
        n_records = 0
        for _, rec_end, rec in walwire.WalReader(os.path.join(srv.data, "pg_wal")).records(start, end):
            n_records += 1
            for fork, spc, db, rel, blk, will_init, has_image in _block_refs_with_flags(rec):
                if rel in wanted and fork == 0 and db == db_oid:
                    by_page.setdefault((spc, rel, blk), []).append((rec_end, will_init, has_image, rec))

        pages = []
        for name, relfilenode, path, am in rels:
            kind = KIND_HEAP if am == "heap" else KIND_BTREE
            with open(os.path.join(srv.data, path), "rb") as f:
                disk = f.read()
            for blk in range(len(disk) // w.PAGE_BYTES):
                records = by_page.get((1663, int(relfilenode), blk), [])
                if records:
                    pages.append((name, kind, int(relfilenode), blk, records,
                                  disk[blk * w.PAGE_BYTES:(blk + 1) * w.PAGE_BYTES]))

    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack(">III", 15, version_num, len(pages)))
        for name, kind, rel, blk, records, page in pages:
            encoded = name.encode()
            f.write(struct.pack(">BIIIIBH", 0, 1663, db_oid, rel, blk, kind, len(encoded)) + encoded)
            f.write(struct.pack(">I", len(records)))
            for end_lsn, will_init, has_image, rec in records:
                f.write(struct.pack(">QBBI", end_lsn, will_init, has_image, len(rec)) + rec)
            f.write(page)
    os.replace(tmp, out_path)
    return (f"{len(pages)} pages of {len(rels)} relations ({', '.join(r[0] for r in rels)}), "
            f"{sum(len(p[4]) for p in pages)} record references from {n_records} WAL records")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print("corpus.py: " + capture(sys.argv[1]), file=sys.stderr)
