# SPDX-License-Identifier: Apache-2.0
"""Smoke checks of `postgres --wal-redo` (docs/real-postgres.md). Usage: python3 postgres/smoke.py POSTGRES

  ping       H answers 8192 zero bytes; EOF on stdin exits 0, nothing on stdout
  roundtrip  B, P, G answers the pushed page byte for byte (two requests in one stream, pipelined)
  protocol   a bad message type, a bad length and an A before any B each exit 1 with one FATAL line
  heap       B, A (a heap insert that initialises the page), A (a second insert), G: PostgreSQL's heap redo
             built the page: header, line pointers, tuple headers and data as heap_xlog_insert writes them
  crc        a record with one flipped byte is refused (exit 1, 'incorrect CRC')
  noblock    a record that references no block (not page redo: checkpoint, commit, ...) is refused (exit 1)
  root       started as root, the process runs as nobody before it reads input, with no descriptor but
             0, 1 and 2 open (no file, no data directory); --run-as root is refused (skipped unless root)
  seccomp    while serving, /proc/PID/status shows Seccomp: 2 (a filter) and NoNewPrivs: 1, and stderr says
             the filter is on; an error with a strerror() text (EPIPE on a closed stdout) is still reported
             under the filter; with --disable-seccomp, Seccomp: 0
  violation  a forbidden system call kills the process with SIGSYS: --seccomp-test-violation (a test hook)
             makes it call open() once right after the filter is on; with --disable-seccomp as well, the
             same open() succeeds and the process serves a ping and exits 0
  panic      a PANIC in a redo routine (heap insert at an impossible offset) dies of SIGABRT under the filter,
             as in any postgres: abort()'s system calls are allowed
  server     pages a real PostgreSQL 15 server wrote (a heap and its btree index, inserts, a checkpoint in
             between so some records carry full-page images) are rebuilt from that server's WAL records alone
             and compared byte for byte (skipped without /usr/lib/postgresql/15/bin or a 'postgres' user)
  mixed      the same with zstd-compressed full-page images, then updates (HOT and not), deletes, VACUUM and
             more inserts; pages are compared with what PostgreSQL's heap_mask() and btree_mask() ignore
             masked: hint bits and hint flags (set without WAL), the unused space between pd_lower and
             pd_upper, and the alignment padding after each heap tuple

Prints one line per check and 'N passed, N failed'; exits 1 if any failed.
"""
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import walredo_client as w  # noqa: E402
import walwire  # noqa: E402

BIN = None
RESULTS = []


def check(name):
    def wrap(fn):
        def run():
            try:
                detail = fn()
                if detail is None or detail is True or isinstance(detail, str):
                    RESULTS.append((name, "ok", detail if isinstance(detail, str) else ""))
            except Skip as s:
                RESULTS.append((name, "skipped", str(s)))
            except AssertionError as e:
                RESULTS.append((name, "FAILED", str(e)))
            except Exception as e:  # a crash of the check itself is a failure too
                RESULTS.append((name, "FAILED", f"{type(e).__name__}: {e}"))
        run.__name__ = name
        return run
    return wrap


class Skip(Exception):
    pass


TAG = w.tag(1663, 5, 16384, 0, 0)


@check("ping")
def ping():
    rc, out, err = w.run(BIN, w.ping() + w.ping())
    assert rc == 0, f"exit {rc}, stderr {err!r}"
    assert out == bytes(2 * w.PAGE_BYTES), f"{len(out)} bytes, expected 16384 zero bytes"
    rc, out, err = w.run(BIN, b"")
    assert rc == 0 and out == b"", f"EOF at once: exit {rc}, {len(out)} bytes out"
    return "2 pings: 16384 zero bytes; EOF: exit 0"


@check("roundtrip")
def roundtrip():
    page1 = bytes((i * 7 + 3) & 0xFF for i in range(w.PAGE_BYTES))
    page2 = os.urandom(w.PAGE_BYTES)
    tag2 = w.tag(1663, 5, 16385, 1, 7)
    stream = (w.begin(TAG) + w.push(TAG, page1) + w.get(TAG) +
              w.begin(tag2) + w.push(tag2, page2) + w.ping() + w.get(tag2) + w.get(tag2))
    rc, out, err = w.run(BIN, stream)
    assert rc == 0, f"exit {rc}, stderr {err!r}"
    assert len(out) == 4 * w.PAGE_BYTES, f"{len(out)} bytes out"
    assert out[:8192] == page1, "first page differs"
    assert out[8192:16384] == bytes(8192), "ping answer not zeros"
    assert out[16384:24576] == page2 and out[24576:] == page2, "second page differs"
    return "2 requests, 3 pages + 1 ping, byte for byte"


@check("protocol")
def protocol():
    cases = [
        (b"X\x00\x00\x00\x04", "invalid frontend message type 88"),
        (w.msg(b"B", b"\x00" * 16), "invalid message length 20 for 'B'"),
        (w.apply(1, b""), "before any BeginRedoForBlock"),
        (w.begin(TAG)[:10], "unexpected EOF on stdin inside a 'B' message"),
    ]
    for stream, want in cases:
        rc, out, err = w.run(BIN, stream)
        assert rc == 1, f"{want}: exit {rc}"
        assert want in err and "FATAL" in err, f"expected {want!r} in stderr, got {err!r}"
        assert out == b"", f"{want}: wrote {len(out)} bytes"
    return f"{len(cases)} violations: exit 1, one FATAL line each"


def two_inserts():
    rnode = (1663, 5, 16384)
    r1 = w.heap_insert(rnode, 0, 1, 1000, b"first tuple.....", init_page=True)
    r2 = w.heap_insert(rnode, 0, 2, 1001, b"second tuple, longer one", init_page=False)
    return r1, r2


@check("heap")
def heap():
    r1, r2 = two_inserts()
    lsn1, lsn2 = 0x1000028, 0x1000090
    stream = w.begin(TAG) + w.apply(lsn1, r1) + w.get(TAG) + w.apply(lsn2, r2) + w.get(TAG)
    rc, out, err = w.run(BIN, stream)
    assert rc == 0, f"exit {rc}, stderr {err!r}"
    assert len(out) == 2 * w.PAGE_BYTES, f"{len(out)} bytes out"
    p1, p2 = out[:8192], out[8192:]
    h1, h2 = w.page_header(p1), w.page_header(p2)
    assert h1["lsn"] == lsn1 and h2["lsn"] == lsn2, f"page LSNs {h1['lsn']:#x} {h2['lsn']:#x}"
    assert h2["size_version"] == 8192 | 4, f"pd_pagesize_version {h2['size_version']:#x}"
    lps = w.line_pointers(p2)
    assert len(lps) == 2, f"{len(lps)} line pointers"
    t1, t2 = (w.tuple_at(p2, lp) for lp in lps)
    assert (t1["xmin"], t2["xmin"]) == (1000, 1001), f"xmin {t1['xmin']} {t2['xmin']}"
    assert t1["ctid"] == (0, 1) and t2["ctid"] == (0, 2), f"ctid {t1['ctid']} {t2['ctid']}"
    assert t1["data"] == b"first tuple....." and t2["data"] == b"second tuple, longer one", "tuple data"
    assert lps[0][0] == 8192 - 40 and lps[1][0] == 8192 - 40 - 48, f"tuple offsets {lps}"
    assert h2["upper"] == lps[1][0] and h2["lower"] == 24 + 8, f"pd_lower {h2['lower']} pd_upper {h2['upper']}"
    return "init + insert: LSNs, 2 line pointers, xmin, ctid, data as heap_xlog_insert writes them"


@check("crc")
def crc():
    r1, _ = two_inserts()
    bad = bytearray(r1)
    bad[-1] ^= 1
    rc, out, err = w.run(BIN, w.begin(TAG) + w.apply(0x1000028, bytes(bad)) + w.get(TAG))
    assert rc == 1 and "incorrect CRC" in err and out == b"", f"exit {rc}, {len(out)} bytes, stderr {err!r}"
    return "flipped byte: exit 1, 'incorrect CRC'"


@check("noblock")
def noblock():
    checkpoint_like = w.record(0, 0x20, 0, [], b"")  # RM_XLOG_ID, XLOG_NOOP: no block reference
    rc, out, err = w.run(BIN, w.begin(TAG) + w.apply(0x1000028, checkpoint_like) + w.get(TAG))
    assert rc == 1 and "references no block" in err and out == b"", f"exit {rc}, {len(out)} bytes, {err!r}"
    return "a record without block references: exit 1, 'references no block'"


def while_serving(args=()):
    """Starts the binary with args and, once it answered a ping, reads /proc/PID/status and its open fds; then
    closes stdin. Returns (status fields, sorted fds, exit code, stderr)."""
    p = subprocess.Popen([BIN, "--wal-redo", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(w.ping())
        p.stdin.flush()
        assert len(p.stdout.read(w.PAGE_BYTES)) == w.PAGE_BYTES, "no ping answer"
        with open(f"/proc/{p.pid}/status") as f:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{p.pid}/fd"))
    finally:
        p.stdin.close()
        rc = p.wait(timeout=10)
    return fields, fds, rc, p.stderr.read().decode()


@check("root")
def root():
    if os.geteuid() != 0:
        raise Skip("not root")
    fields, fds, rc, err = while_serving()
    uids = fields["Uid"].split()
    nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout.strip()
    assert uids == [nobody] * 4, f"uids {uids}, nobody is {nobody}"
    assert rc == 0 and 'switched to user "nobody"' in err, f"exit {rc}, stderr {err!r}"
    assert fds == [0, 1, 2], f"open descriptors while serving: {fds}"
    rc, _, err = w.run(BIN, b"", ["--run-as", "root"])
    assert rc == 1 and "refusing to replay WAL as root" in err, f"--run-as root: exit {rc}, {err!r}"
    before = before_input()
    assert before.get("Uid", "").split() == ["0"] * 4 and before.get("Seccomp") == "0", \
        f"before any input: Uid {before.get('Uid')!r}, Seccomp {before.get('Seccomp')!r}"
    return (f"real/effective/saved/fs uid {nobody} and fds 0 1 2 only while serving, still root and unfiltered "
            f"until the first input arrives (so the supervisor's prlimit never races the switch); --run-as root refused")


def before_input():
    """Starts the binary and, once it has finished start-up (its start-up LOG lines are on stderr) but before any
    input, reads /proc/PID/status; then closes stdin."""
    p = subprocess.Popen([BIN, "--wal-redo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with open(f"/proc/{p.pid}/wchan") as f:
                waiting = f.read().strip()
            with open(f"/proc/{p.pid}/status") as f:
                fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            # Blocked in its first read of stdin (pipe_read / pipe_wait...), or give up after 10 s.
            if "pipe" in waiting or time.monotonic() > deadline:
                return fields
            time.sleep(0.01)
    finally:
        p.stdin.close()
        p.wait(timeout=10)


@check("seccomp")
def seccomp():
    fields, _, rc, err = while_serving()
    assert rc == 0, f"exit {rc}, stderr {err!r}"
    assert fields.get("Seccomp") == "2", f"Seccomp: {fields.get('Seccomp')!r} while serving, expected 2 (filter)"
    assert fields.get("NoNewPrivs") == "1", f"NoNewPrivs: {fields.get('NoNewPrivs')!r}"
    assert "seccomp filter on" in err, f"no 'seccomp filter on' line in stderr {err!r}"
    # An error report with %m (strerror) under the filter: stdout closed, so writing a page fails with EPIPE.
    p = subprocess.Popen([BIN, "--wal-redo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    _, err = p.communicate(w.ping(), timeout=10)
    err = err.decode()
    assert p.returncode == 1 and "could not write to stdout: Broken pipe" in err, f"EPIPE: exit {p.returncode}, {err!r}"
    fields, _, rc, err = while_serving(["--disable-seccomp"])
    assert rc == 0, f"--disable-seccomp: exit {rc}, stderr {err!r}"
    assert fields.get("Seccomp") == "0", f"--disable-seccomp: Seccomp: {fields.get('Seccomp')!r}, expected 0"
    assert "seccomp filter off" in err, f"--disable-seccomp: stderr {err!r}"
    return "Seccomp: 2 and NoNewPrivs: 1 while serving, EPIPE reported; --disable-seccomp: Seccomp: 0"


@check("violation")
def violation():
    rc, out, err = w.run(BIN, w.ping(), ["--seccomp-test-violation"])
    assert rc == -signal.SIGSYS, f"exit {rc}, expected death by SIGSYS ({-signal.SIGSYS}); stderr {err!r}"
    assert out == b"", f"answered {len(out)} bytes before dying"
    assert "seccomp filter on" in err and "open() returned" not in err, f"stderr {err!r}"
    rc, out, err = w.run(BIN, w.ping(), ["--disable-seccomp", "--seccomp-test-violation"])
    assert rc == 0 and out == bytes(w.PAGE_BYTES), f"--disable-seccomp: exit {rc}, {len(out)} bytes, {err!r}"
    assert "open() returned" in err, f"--disable-seccomp: stderr {err!r}"
    return "open() under the filter: killed by SIGSYS before answering; without the filter: served"


@check("panic")
def panic():
    # A second insert at offset 5 of a page with one tuple: heap_xlog_insert raises PANIC, which abort()s.
    rnode = (1663, 5, 16384)
    r1 = w.heap_insert(rnode, 0, 1, 1000, b"first tuple.....", init_page=True)
    r2 = w.heap_insert(rnode, 0, 5, 1001, b"second tuple", init_page=False)
    rc, out, err = w.run(BIN, w.begin(TAG) + w.apply(0x1000028, r1) + w.apply(0x1000090, r2) + w.get(TAG))
    assert rc == -signal.SIGABRT, f"exit {rc}, expected death by SIGABRT ({-signal.SIGABRT}); stderr {err!r}"
    assert "PANIC:  invalid max offset number" in err and "seccomp filter on" in err, f"stderr {err!r}"
    return "a PANIC in heap redo under the filter: SIGABRT as in any postgres, not SIGSYS"


@check("server")
def server():
    result = walwire.server_pages_check(BIN, "insert")
    if result.startswith("skip:"):
        raise Skip(result[5:].strip())
    return result


@check("mixed")
def server_mixed():
    result = walwire.server_pages_check(BIN, "mixed")
    if result.startswith("skip:"):
        raise Skip(result[5:].strip())
    return result + " (through heap_mask's and btree_mask's masks)"


def main():
    global BIN
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    BIN = sys.argv[1]
    for fn in (ping, roundtrip, protocol, heap, crc, noblock, root, seccomp, violation, panic, server,
               server_mixed):
        t0 = time.monotonic()
        fn()
        name, status, detail = RESULTS[-1]
        print(f"{status:8} {name:10} {time.monotonic() - t0:6.2f}s  {detail}", flush=True)
    passed = sum(1 for r in RESULTS if r[1] == "ok")
    failed = sum(1 for r in RESULTS if r[1] == "FAILED")
    skipped = sum(1 for r in RESULTS if r[1] == "skipped")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
