# SPDX-License-Identifier: Apache-2.0
"""A tiny client of the walredo protocol (docs/protocol.md) for postgres/smoke.sh and by-hand checks.

Builds B, P, A, G, H messages, runs `postgres --wal-redo` on them through real pipes, and builds PostgreSQL 15
WAL records (heap insert) with their CRC-32C, so a smoke test needs no server. Standard library only.
"""
import struct
import subprocess

PAGE_BYTES = 8192
TAG_BYTES = 17

# ---------- messages ----------


def tag(spc, db, rel, fork, blk):
    """A BufferTag on the wire: the fork comes first."""
    return struct.pack(">BIIII", fork, spc, db, rel, blk)


def msg(kind, payload=b""):
    return kind + struct.pack(">I", 4 + len(payload)) + payload


def begin(t):
    return msg(b"B", t)


def push(t, page):
    assert len(page) == PAGE_BYTES
    return msg(b"P", t + page)


def apply(end_lsn, record):
    return msg(b"A", struct.pack(">Q", end_lsn) + record)


def get(t):
    return msg(b"G", t)


def ping():
    return msg(b"H")


def run(binary, stream, args=(), timeout=30):
    """Feeds `stream` to `binary --wal-redo`, closes stdin, returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([binary, "--wal-redo", *args], input=stream, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


# ---------- WAL records (PostgreSQL 15 layout: src/include/access/xlogrecord.h) ----------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0xFFFFFFFF):
    """Unfinished CRC-32C (Castagnoli), as PostgreSQL's COMP_CRC32C; finish with ^ 0xFFFFFFFF."""
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


RM_HEAP_ID = 10
XLOG_HEAP_INSERT = 0x00
XLOG_HEAP_INIT_PAGE = 0x80
BKPBLOCK_HAS_DATA = 0x20
BKPBLOCK_WILL_INIT = 0x40
XLR_BLOCK_ID_DATA_SHORT = 255
SIZE_OF_XLOG_RECORD = 24


def record(rmid, info, xid, blocks, main_data, prev=0):
    """One WAL record: header, block references (block_id, fork, flags, rnode, blk, data), main data.

    blocks: list of (fork, flags, (spc, db, rel), blk, data). No full-page images.
    """
    headers = b""
    data = b""
    for block_id, (fork, flags, rnode, blk, bdata) in enumerate(blocks):
        headers += struct.pack("<BBH", block_id, fork | flags | (BKPBLOCK_HAS_DATA if bdata else 0), len(bdata))
        headers += struct.pack("<III", *rnode) + struct.pack("<I", blk)
        data += bdata
    if main_data:
        assert len(main_data) < 256
        headers += struct.pack("<BB", XLR_BLOCK_ID_DATA_SHORT, len(main_data))
    body = headers + data + main_data
    tot_len = SIZE_OF_XLOG_RECORD + len(body)
    head = struct.pack("<IIQBBxx", tot_len, xid, prev, info, rmid)
    crc = crc32c(head, crc32c(body)) ^ 0xFFFFFFFF
    return head + struct.pack("<I", crc) + body


def heap_insert(rnode, blk, offnum, xid, user_data, init_page):
    """XLOG_HEAP_INSERT of one tuple with no nulls: xl_heap_header, then the tuple past its fixed header.

    user_data is the column bytes; the tuple header is 23 bytes, so t_hoff is 24 and one pad byte precedes it.
    """
    natts = 1
    t_infomask2 = natts
    t_infomask = 0  # no hint bits: redo sets xmin from the record
    t_hoff = 24
    xl_heap_header = struct.pack("<HHB", t_infomask2, t_infomask, t_hoff)
    block_data = xl_heap_header + b"\x00" + user_data
    xl_heap_insert = struct.pack("<HB", offnum, 0)
    info = XLOG_HEAP_INSERT | (XLOG_HEAP_INIT_PAGE if init_page else 0)
    flags = BKPBLOCK_WILL_INIT if init_page else 0
    return record(RM_HEAP_ID, info, xid, [(0, flags, rnode, blk, block_data)], xl_heap_insert)


# ---------- reading a heap page (src/include/storage/bufpage.h, access/htup_details.h) ----------

def page_header(page):
    lsn_hi, lsn_lo, checksum, flags, lower, upper, special, size_version, prune_xid = struct.unpack_from(
        "<IIHHHHHHI", page, 0)
    return {"lsn": (lsn_hi << 32) | lsn_lo, "flags": flags, "lower": lower, "upper": upper,
            "special": special, "size_version": size_version, "prune_xid": prune_xid}


def line_pointers(page):
    h = page_header(page)
    out = []
    for i in range((h["lower"] - 24) // 4):
        (lp,) = struct.unpack_from("<I", page, 24 + 4 * i)
        out.append((lp & 0x7FFF, (lp >> 15) & 3, lp >> 17))  # offset, flags, length
    return out


def tuple_at(page, lp):
    off, _, length = lp
    t = page[off:off + length]
    xmin, xmax, cid = struct.unpack_from("<III", t, 0)
    ctid_hi, ctid_lo, ctid_off, infomask2, infomask, hoff = struct.unpack_from("<HHHHHB", t, 12)
    return {"xmin": xmin, "xmax": xmax, "cid": cid, "ctid": ((ctid_hi << 16) | ctid_lo, ctid_off),
            "infomask2": infomask2, "infomask": infomask, "hoff": hoff, "data": t[hoff:]}
