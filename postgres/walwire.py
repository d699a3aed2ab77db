# SPDX-License-Identifier: Apache-2.0
"""Reads WAL records out of a PostgreSQL 15 pg_wal directory, and the 'server' smoke check built on it.

The check starts a throwaway PostgreSQL 15 server (Debian's, as user postgres, on a Unix socket only, no TCP),
creates a table with a btree index, inserts rows one transaction at a time with a checkpoint half way (so the
first change of each page after it carries a full-page image), checkpoints, and reads every page of both
relations from disk. Then, for each page, it sends `postgres --wal-redo` a B, every WAL record since the
table was created that references that page (an A each, with the record's end LSN), and a G, and compares
the answer with the page the server wrote. Layouts: src/include/access/xlog_internal.h (page headers),
src/include/access/xlogrecord.h (records and block references), PostgreSQL 15.
"""
import os
import pwd
import shutil
import struct
import subprocess
import tempfile

import walredo_client as w

PG_BIN = "/usr/lib/postgresql/15/bin"
WAL_PAGE = 8192
SEG_SIZE = 16 * 1024 * 1024
SHORT_PHD = 24
LONG_PHD = 40
XLR_BLOCK_ID_DATA_SHORT = 255
XLR_BLOCK_ID_DATA_LONG = 254
XLR_BLOCK_ID_ORIGIN = 253
XLR_BLOCK_ID_TOPLEVEL_XID = 252
BKPBLOCK_FORK_MASK = 0x0F
BKPBLOCK_HAS_IMAGE = 0x10
BKPBLOCK_SAME_REL = 0x80
BKPIMAGE_HAS_HOLE = 0x01
BKPIMAGE_COMPRESSED = 0x04 | 0x08 | 0x10  # pglz, lz4, zstd in PostgreSQL 15


def parse_lsn(text):
    hi, lo = text.strip().split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class WalReader:
    """Sequential records from start_lsn (a record boundary) in the segment files of one timeline."""

    def __init__(self, wal_dir, tli=1):
        self.wal_dir, self.tli, self.segs = wal_dir, tli, {}

    def _page_byte_range(self, lsn, n):
        seg_no, off = divmod(lsn, SEG_SIZE)
        if seg_no not in self.segs:
            name = "%08X%08X%08X" % (self.tli, seg_no // 256, seg_no % 256)
            with open(os.path.join(self.wal_dir, name), "rb") as f:
                self.segs[seg_no] = f.read()
        return self.segs[seg_no][off:off + n]

    def _header_size(self, lsn):
        return LONG_PHD if lsn % SEG_SIZE == 0 else SHORT_PHD

    def read(self, lsn, n):
        """n bytes of record data from lsn, skipping page headers; returns (bytes, lsn just past them)."""
        out = b""
        while n > 0:
            if lsn % WAL_PAGE == 0:
                lsn += self._header_size(lsn)
            take = min(n, WAL_PAGE - lsn % WAL_PAGE)
            out += self._page_byte_range(lsn, take)
            lsn += take
            n -= take
        return out, lsn

    def records(self, start_lsn, end_lsn):
        """Yields (start lsn, end lsn, record bytes) for records starting before end_lsn."""
        lsn = start_lsn
        while lsn < end_lsn:
            if lsn % WAL_PAGE == 0:
                lsn += self._header_size(lsn)
            start = lsn
            head, _ = self.read(lsn, 4)
            (tot_len,) = struct.unpack("<I", head)
            if tot_len == 0:
                return
            rec, end = self.read(lsn, tot_len)
            # The end LSN that XLogInsert returns (the page LSN the server stamps) and xlogreader's EndRecPtr
            # are MAXALIGNed, and so is what the pageserver sends with each record.
            end = (end + 7) & ~7
            yield start, end, rec
            lsn = end


def block_refs(rec):
    """(fork, spc, db, rel, blk, has_image) for each block reference of a record (DecodeXLogRecord's walk)."""
    pos, refs, rnode = 24, [], None
    remaining, datatotal = len(rec) - 24, 0

    def take(n):
        nonlocal pos, remaining
        pos += n
        remaining -= n
        return pos - n

    while remaining > datatotal:
        block_id = rec[take(1)]
        if block_id == XLR_BLOCK_ID_DATA_SHORT:
            datatotal += rec[take(1)]
            break
        if block_id == XLR_BLOCK_ID_DATA_LONG:
            datatotal += struct.unpack_from("<I", rec, take(4))[0]
            break
        if block_id == XLR_BLOCK_ID_ORIGIN:
            take(2)
            continue
        if block_id == XLR_BLOCK_ID_TOPLEVEL_XID:
            take(4)
            continue
        fork_flags, data_length = struct.unpack_from("<BH", rec, take(3))
        datatotal += data_length
        has_image = bool(fork_flags & BKPBLOCK_HAS_IMAGE)
        if has_image:
            bimg_len, _, bimg_info = struct.unpack_from("<HHB", rec, take(5))
            datatotal += bimg_len
            if bimg_info & BKPIMAGE_HAS_HOLE and bimg_info & BKPIMAGE_COMPRESSED:
                take(2)
        if not fork_flags & BKPBLOCK_SAME_REL:
            rnode = struct.unpack_from("<III", rec, take(12))
        (blk,) = struct.unpack_from("<I", rec, take(4))
        refs.append((fork_flags & BKPBLOCK_FORK_MASK, *rnode, blk, has_image))
    return refs


# ---------- the throwaway server ----------

def _as_postgres(args, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True,
                          text=True, **kw)


HEAP_HINT_BITS = 0x0100 | 0x0200 | 0x0400 | 0x0800  # HEAP_XMIN_COMMITTED/INVALID, HEAP_XMAX_COMMITTED/INVALID
PD_HINT_FLAGS = 0x0001 | 0x0002  # PD_HAS_FREE_LINES, PD_PAGE_FULL


def mask_heap(page):
    """The heap page without what may differ between a server's page and its redo, as PostgreSQL's own
    heap_mask() (wal_consistency_checking) ignores it: tuple hint bits and the page's hint flags, which are
    set without WAL, and every byte no tuple covers: the unused space between pd_lower and pd_upper, which
    holds whatever compaction left there on the server and zeros where a full-page image's hole was restored,
    and the MAXALIGN padding after each tuple, which PageAddItem leaves as it found it (so it inherits that
    difference)."""
    h = w.page_header(page)
    lps = w.line_pointers(page)
    p = bytearray(len(page))
    p[:h["lower"]] = page[:h["lower"]]
    p[h["special"]:] = page[h["special"]:]
    struct.pack_into("<H", p, 10, h["flags"] & ~PD_HINT_FLAGS)
    for off, lp_flags, length in lps:
        if lp_flags == 1 and length >= 23:  # LP_NORMAL
            p[off:off + length] = page[off:off + length]
            infomask = struct.unpack_from("<H", p, off + 20)[0] & ~HEAP_HINT_BITS
            struct.pack_into("<H", p, off + 20, infomask)
    return bytes(p)


def mask_btree(page):
    """The btree page without its unused space (pd_lower to pd_upper), as btree_mask() ignores it: deleting
    index tuples (VACUUM) compacts the page and leaves different leftovers there on the server and in redo."""
    h = w.page_header(page)
    p = bytearray(page)
    if 24 <= h["lower"] <= h["upper"] <= len(p):
        p[h["lower"]:h["upper"]] = bytes(h["upper"] - h["lower"])
    return bytes(p)


# Workloads: SQL run after CREATE TABLE t (id int, note text) and CREATE INDEX t_id ON t (id), one
# statement per transaction. 'insert' never reads the table, so the server sets no hint bits and pages must be
# equal byte for byte; 'mixed' updates (HOT and not), deletes and vacuums, and is compared through mask_heap()
# and mask_btree().
def _workload(kind, rows):
    sql = []
    for i in range(rows):
        if i == rows // 2:
            sql.append("CHECKPOINT;")  # later first changes of a page carry a full-page image
        sql.append(f"INSERT INTO t VALUES ({(i * 7919) % 1000}, repeat('x', {20 + i % 60}) || '{i}');")
    if kind == "mixed":
        sql += ["UPDATE t SET note = note || '+' WHERE id % 10 = 0;",
                "UPDATE t SET id = id + 1 WHERE id % 13 = 0;",
                "DELETE FROM t WHERE id % 7 = 0;",
                "VACUUM t;",
                "CHECKPOINT;",
                "UPDATE t SET note = 'short' WHERE id % 5 = 0;"]
        sql += [f"INSERT INTO t VALUES ({i}, 'late {i}');" for i in range(50)]
    sql.append("CHECKPOINT;")
    return "\n".join(sql) + "\n"


class ThrowawayServer:
    """A PostgreSQL 15 server (Debian's, as user postgres) in a temporary directory, on a Unix socket only (no
    TCP), autovacuum off, fsync off; removed with its directory on exit. `skip_reason()` says why one cannot
    be started here (no server installed, no 'postgres' user, not root), or None."""

    PORT = 5499

    def __init__(self, settings=""):
        self.settings = settings
        self.work = self.data = None
        self.running = False

    @staticmethod
    def skip_reason():
        if not os.path.exists(os.path.join(PG_BIN, "initdb")):
            return "no " + PG_BIN + " (apt-get install postgresql-15)"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no 'postgres' user"
        if os.geteuid() != 0:
            return "needs root to run the server as user postgres"
        return None

    def _psql(self):
        return [os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-h", self.work, "-p", str(self.PORT),
                "-d", "postgres"]

    def sql(self, q):
        return _as_postgres(self._psql() + ["-c", q]).stdout.strip()

    def script(self, text):
        """Runs a SQL script, one transaction per statement, stopping at the first error."""
        return _as_postgres(self._psql() + ["-v", "ON_ERROR_STOP=1", "-f", "-"], input=text)

    def __enter__(self):
        self.work = tempfile.mkdtemp(prefix="walredo-pg15-")
        try:
            os.chmod(self.work, 0o755)
            shutil.chown(self.work, "postgres")
            self.data = os.path.join(self.work, "data")
            _as_postgres([os.path.join(PG_BIN, "initdb"), "-D", self.data, "--no-sync", "-A", "trust"])
            opts = (f"-c listen_addresses='' -c unix_socket_directories={self.work} -p {self.PORT} "
                    "-c autovacuum=off -c full_page_writes=on -c wal_level=replica -c fsync=off " + self.settings)
            _as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w", "-l",
                          os.path.join(self.work, "log"), "-o", opts, "start"])
            self.running = True
        except BaseException:
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        return self

    def stop(self):
        """Stops the server (fast shutdown); its files stay until the context ends."""
        if self.running:
            self.running = False
            _as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"])

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def server_pages_check(binary, workload="insert", rows=400):
    reason = ThrowawayServer.skip_reason()
    if reason:
        return "skip: " + reason
    # 'mixed' also compresses full-page images (zstd), so the redo binary's --with-zstd is exercised
    settings = f"-c wal_compression={'zstd' if workload == 'mixed' else 'off'}"
    with ThrowawayServer(settings) as srv:
        sql = srv.sql
        start = parse_lsn(sql("CHECKPOINT; SELECT pg_current_wal_insert_lsn()"))
        sql("CREATE TABLE t (id int, note text); CREATE INDEX t_id ON t (id)")
        srv.script(_workload(workload, rows))
        end = parse_lsn(sql("SELECT pg_current_wal_insert_lsn()"))
        rels = {}
        for name in ("t", "t_id"):
            rels[name] = (int(sql(f"SELECT relfilenode FROM pg_class WHERE relname = '{name}'")),
                          sql(f"SELECT pg_relation_filepath('{name}')"))
        db_oid = int(sql("SELECT oid FROM pg_database WHERE datname = 'postgres'"))
        data = srv.data
        srv.stop()

        by_page = {}
        n_records = 0
        for _, rec_end, rec in WalReader(os.path.join(data, "pg_wal")).records(start, end):
            n_records += 1
            for fork, spc, db, rel, blk, _ in block_refs(rec):
                by_page.setdefault((spc, db, rel, fork, blk), []).append((rec_end, rec))

        compared, fpi_pages, mismatches = 0, 0, []
        for name, (relfilenode, path) in rels.items():
            with open(os.path.join(data, path), "rb") as f:
                disk = f.read()
            for blk in range(len(disk) // w.PAGE_BYTES):
                key = (1663, db_oid, relfilenode, 0, blk)
                records = by_page.get(key, [])
                t = w.tag(1663, db_oid, relfilenode, 0, blk)
                stream = w.begin(t) + b"".join(w.apply(lsn, r) for lsn, r in records) + w.get(t)
                rc, out, err = w.run(binary, stream)
                expected = disk[blk * w.PAGE_BYTES:(blk + 1) * w.PAGE_BYTES]
                if workload == "mixed" and rc == 0:
                    mask = mask_heap if name == "t" else mask_btree
                    out, expected = mask(out), mask(expected)
                compared += 1
                fpi_pages += any(has_img for _, r in records
                                 for fork, spc, db, rel, b, has_img in block_refs(r)
                                 if (spc, db, rel, fork, b) == key)
                if rc != 0 or out != expected:
                    diff = next((i for i in range(min(len(out), len(expected))) if out[i] != expected[i]), None)
                    mismatches.append(f"{name} blk {blk}: exit {rc}, {len(records)} records, first diff at "
                                      f"{diff}, stderr {err.strip()[-300:]!r}")
        assert not mismatches, f"{len(mismatches)} of {compared} pages differ: " + "; ".join(mismatches[:3])
        sizes = ", ".join(f"{name} {os.path.getsize(os.path.join(data, path)) // w.PAGE_BYTES}"
                          for name, (_, path) in rels.items())
        return (f"{compared} pages ({sizes}) rebuilt from {n_records} WAL records equal the server's, "
                f"{fpi_pages} of them via full-page images")
