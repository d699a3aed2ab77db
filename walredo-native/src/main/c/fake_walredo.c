// SPDX-License-Identifier: Apache-2.0
/*
 * fake-walredo: a stand-in for `postgres --wal-redo` (Neon's pgxn/neon_walredo/walredoproc.c) that speaks
 * the same stdin/stdout protocol but computes a deterministic page instead of replaying WAL, and can be told
 * to misbehave in one precise way per run. Tests, benchmarks and the demo drive it; the library under test
 * must not be able to tell it from the real process except by the page contents.
 *
 * The wire format, the page computation, every flag and every exit code are specified in docs/protocol.md;
 * io.walredo.testing.FakeRedoModel is an independent Java implementation of the same page computation.
 * Change all three together.
 *
 * Input is parsed as a byte stream through one 16 KiB read buffer, like walredoproc.c's buffered_read():
 * a message's bytes are consumed as they arrive, whatever the read boundaries. Payloads are folded into the
 * request state as they stream past instead of being buffered whole, so an ApplyRecord of up to 1 GiB costs
 * no memory and the process allocates nothing after startup.
 *
 * Single-threaded. All output goes through write(2) (no stdio buffers), so nothing is lost or duplicated on
 * fork or _exit, and stderr lines appear in the order they were produced.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES 8192u
#define TAG_BYTES 17u
#define LEN_FIELD_BYTES 4u
#define HEADER_BYTES (1u + LEN_FIELD_BYTES)
#define LSN_BYTES 8u
#define IN_BUF_BYTES (16u * 1024u)

/* Values of the length field (it counts itself and the payload, not the type byte). */
#define LEN_TAG_MSG (LEN_FIELD_BYTES + TAG_BYTES)               /* B, G: 21 */
#define LEN_PUSH_PAGE (LEN_TAG_MSG + PAGE_BYTES)                /* P: 8213 */
#define LEN_PING LEN_FIELD_BYTES                                /* H: 4 */
#define LEN_APPLY_MIN (LEN_FIELD_BYTES + LSN_BYTES)             /* A with an empty record: 12 */
#define MAX_RECORD_BYTES (1u << 30)                             /* PostgreSQL's XLogRecordMaxSize */
#define LEN_APPLY_MAX (LEN_APPLY_MIN + MAX_RECORD_BYTES)

/* Page layout of a GetPage answer; see docs/protocol.md. */
#define OFF_COUNT 17u
#define OFF_LAST_LSN 21u
#define OFF_HASH 29u
#define OFF_BODY 40u
#define BODY_WORDS ((PAGE_BYTES - OFF_BODY) / 8u)               /* 1019 */

#define FNV_OFFSET_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

#define PARTIAL_BYTES 4096u
#define GARBAGE_BYTES 100u
#define FLOOD_LINE_BYTES 100u
#define GRANDCHILD_SLEEP_SECONDS 600
#define UNSOLICITED_DELAY_MS 100u

#define EXIT_USAGE 1
#define EXIT_IO 1
#define EXIT_FAULT 1
#define EXIT_PROTOCOL 2
#define EXIT_AT_START 3

/* ---------- output ---------- */

/* Writes all of buf, retrying on EINTR and partial writes. Returns 0, or -1 with errno set. */
static int write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

/* One stderr line, written with a single write(2) so concurrent writers (the grandchild) cannot split it. */
static void errline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errline(const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t) n > sizeof line - 2) {
        n = (int) sizeof line - 2;
    }
    line[n++] = '\n';
    /* Nothing useful can be done if stderr itself is broken. */
    (void) write_all(STDERR_FILENO, line, (size_t) n);
}

static void write_stdout_or_die(const void *buf, size_t len) {
    if (write_all(STDOUT_FILENO, buf, len) != 0) {
        errline("FATAL:  could not write to stdout: %s", strerror(errno));
        _exit(EXIT_IO);
    }
}

static void write_stderr_or_die(const void *buf, size_t len) {
    if (write_all(STDERR_FILENO, buf, len) != 0) {
        _exit(EXIT_IO);
    }
}

/* ---------- time ---------- */

static void sleep_ns(uint64_t ns) {
    struct timespec ts = { .tv_sec = (time_t) (ns / 1000000000u), .tv_nsec = (long) (ns % 1000000000u) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Hangs with every pipe still open; only a signal ends the process. */
static void __attribute__((noreturn)) hang_forever(void) {
    for (;;) {
        pause();
    }
}

/* ---------- options ---------- */

struct options {
    int wal_redo;
    int no_walredo_support;
    const char *tenant_shard_id;
    uint64_t delay_us;
    uint64_t read_delay_us;
    uint64_t startup_delay_ms;
    uint64_t crash_after;        /* 0 = off; otherwise the 1-based GetPage number */
    uint64_t exit_after;
    uint64_t hang_after;
    uint64_t garbage_after;
    uint64_t partial_after;
    uint64_t exit_mid_page;
    uint64_t unsolicited_after;
    int exit_at_start;
    uint64_t stderr_lines;
    uint64_t stderr_flood;
    uint64_t stderr_flood_nonl;
    int no_read;
    int report_fds;
    int ignore_sigterm;
    int spawn_grandchild;
};

static const char USAGE[] =
    "usage: fake-walredo --wal-redo [--tenant-shard-id ID] [--disable-seccomp] [--delay-us N]"
    " [--read-delay-us N]"
    " [--startup-delay-ms N] [--crash-after N] [--exit-after N] [--hang-after N] [--garbage-after N]"
    " [--partial-after N] [--exit-mid-page N] [--unsolicited-after N] [--exit-at-start] [--stderr-lines N] [--stderr-flood BYTES]"
    " [--stderr-flood-nonl BYTES] [--no-read] [--report-fds] [--ignore-sigterm] [--spawn-grandchild]"
    " [--no-walredo-support] (see docs/protocol.md)";

static void __attribute__((noreturn)) usage_error(const char *fmt, const char *arg) {
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
    errline("fake-walredo: %s; %s", what, USAGE);
    _exit(EXIT_USAGE);
}

/* Parses a decimal in min..max; anything else (sign, spaces, hex, overflow) is a usage error. */
static uint64_t parse_number(const char *flag, const char *text, uint64_t min, uint64_t max) {
    if (text == NULL) {
        usage_error("%s requires a value", flag);
    }
    uint64_t v = 0;
    const char *p = text;
    if (*p == '\0') {
        usage_error("%s requires a decimal value, got an empty string", flag);
    }
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) {
            errline("fake-walredo: %s: \"%s\" is not a decimal number from %llu to %llu; %s", flag, text,
                    (unsigned long long) min, (unsigned long long) max, USAGE);
            _exit(EXIT_USAGE);
        }
        v = v * 10 + (uint64_t) (*p - '0');
    }
    if (v < min || v > max) {
        errline("fake-walredo: %s: %llu is outside %llu..%llu; %s", flag, (unsigned long long) v,
                (unsigned long long) min, (unsigned long long) max, USAGE);
        _exit(EXIT_USAGE);
    }
    return v;
}

#define MAX_NTH UINT64_C(0x7fffffff)
#define MAX_DELAY_US UINT64_C(60000000)
#define MAX_STARTUP_DELAY_MS UINT64_C(600000)
#define MAX_STDERR_LINES UINT64_C(10000000)
#define MAX_FLOOD_BYTES UINT64_C(1073741824)

static void parse_options(int argc, char **argv, struct options *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--wal-redo") == 0) {
            o->wal_redo = 1;
        } else if (strcmp(a, "--disable-seccomp") == 0) {
            /* The fake never enters seccomp; accepted because the real binary is given it. */
        } else if (strcmp(a, "--tenant-shard-id") == 0) {
            if (v == NULL) {
                usage_error("%s requires a value", a);
            }
            o->tenant_shard_id = v;
            i++;
        } else if (strcmp(a, "--delay-us") == 0) {
            o->delay_us = parse_number(a, v, 0, MAX_DELAY_US);
            i++;
        } else if (strcmp(a, "--read-delay-us") == 0) {
            o->read_delay_us = parse_number(a, v, 0, MAX_DELAY_US);
            i++;
        } else if (strcmp(a, "--startup-delay-ms") == 0) {
            o->startup_delay_ms = parse_number(a, v, 0, MAX_STARTUP_DELAY_MS);
            i++;
        } else if (strcmp(a, "--crash-after") == 0) {
            o->crash_after = parse_number(a, v, 1, MAX_NTH);
            i++;
        } else if (strcmp(a, "--exit-after") == 0) {
            o->exit_after = parse_number(a, v, 1, MAX_NTH);
            i++;
        } else if (strcmp(a, "--hang-after") == 0) {
            o->hang_after = parse_number(a, v, 1, MAX_NTH);
            i++;
        } else if (strcmp(a, "--garbage-after") == 0) {
            o->garbage_after = parse_number(a, v, 1, MAX_NTH);
            i++;
        } else if (strcmp(a, "--partial-after") == 0) {
            o->partial_after = parse_number(a, v, 1, MAX_NTH);
            i++;
        } else if (strcmp(a, "--exit-mid-page") == 0) {
            o->exit_mid_page = parse_number(a, v, 1, MAX_NTH);
            i++;
        } else if (strcmp(a, "--unsolicited-after") == 0) {
            o->unsolicited_after = parse_number(a, v, 1, MAX_NTH);
            i++;
        } else if (strcmp(a, "--exit-at-start") == 0) {
            o->exit_at_start = 1;
        } else if (strcmp(a, "--stderr-lines") == 0) {
            o->stderr_lines = parse_number(a, v, 0, MAX_STDERR_LINES);
            i++;
        } else if (strcmp(a, "--stderr-flood") == 0) {
            o->stderr_flood = parse_number(a, v, 0, MAX_FLOOD_BYTES);
            i++;
        } else if (strcmp(a, "--stderr-flood-nonl") == 0) {
            o->stderr_flood_nonl = parse_number(a, v, 0, MAX_FLOOD_BYTES);
            i++;
        } else if (strcmp(a, "--no-read") == 0) {
            o->no_read = 1;
        } else if (strcmp(a, "--report-fds") == 0) {
            o->report_fds = 1;
        } else if (strcmp(a, "--ignore-sigterm") == 0) {
            o->ignore_sigterm = 1;
        } else if (strcmp(a, "--spawn-grandchild") == 0) {
            o->spawn_grandchild = 1;
        } else if (strcmp(a, "--no-walredo-support") == 0) {
            o->no_walredo_support = 1;
        } else {
            usage_error("unknown option \"%s\"", a);
        }
    }
}

/* ---------- startup actions ---------- */

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *) a;
    int y = *(const int *) b;
    return (x > y) - (x < y);
}

/*
 * Prints "fds: 0 1 2": every open descriptor, sorted, except the one opendir() uses to list them. It exists so
 * that tests can see a descriptor the spawner leaked into the child; the fake itself never closes any.
 */
static void report_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) {
        errline("fds: unavailable (opendir /proc/self/fd: %s)", strerror(errno));
        return;
    }
    int self = dirfd(dir);
    int fds[1024];
    size_t n = 0;
    size_t more = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        int fd = atoi(e->d_name);
        if (fd == self) {
            continue;
        }
        if (n < sizeof fds / sizeof fds[0]) {
            fds[n++] = fd;
        } else {
            more++;
        }
    }
    closedir(dir);
    qsort(fds, n, sizeof fds[0], compare_ints);
    char line[1024 * 12 + 64];
    size_t len = (size_t) snprintf(line, sizeof line, "fds:");
    for (size_t i = 0; i < n; i++) {
        len += (size_t) snprintf(line + len, sizeof line - len, " %d", fds[i]);
    }
    if (more > 0) {
        len += (size_t) snprintf(line + len, sizeof line - len, " (and %zu more)", more);
    }
    line[len++] = '\n';
    write_stderr_or_die(line, len);
}

/*
 * Forks a process that inherits stdin, stdout and stderr and sleeps, then outlives this one: the parent's
 * reader sees no EOF on stdout or stderr until it dies too. Its pid is reported so a test can SIGKILL it;
 * the sleep is bounded so a test that forgets does not leave it behind for long.
 */
static void spawn_grandchild(void) {
    pid_t pid = fork();
    if (pid < 0) {
        errline("FATAL:  fake-walredo: --spawn-grandchild: fork failed: %s", strerror(errno));
        _exit(EXIT_IO);
    }
    if (pid == 0) {
        sleep_ns((uint64_t) GRANDCHILD_SLEEP_SECONDS * 1000000000u);
        _exit(0);
    }
    errline("grandchild: %ld", (long) pid);
}

static void stderr_lines(uint64_t n) {
    for (uint64_t i = 1; i <= n; i++) {
        if (i == 1) {
            /* What PostgreSQL 16 prints when Neon's rmgr registers, before the redo loop starts. */
            errline("LOG:  registered custom resource manager \"neon\" with ID 134");
        } else {
            errline("LOG:  fake-walredo log line %llu of %llu", (unsigned long long) i, (unsigned long long) n);
        }
    }
}

/* Writes exactly `bytes` bytes of 'x' to stderr; with newlines, every 100th byte is '\n'. */
static void stderr_flood(uint64_t bytes, int newlines) {
    uint8_t chunk[64u * FLOOD_LINE_BYTES];
    memset(chunk, 'x', sizeof chunk);
    if (newlines) {
        for (size_t i = FLOOD_LINE_BYTES - 1; i < sizeof chunk; i += FLOOD_LINE_BYTES) {
            chunk[i] = '\n';
        }
    }
    while (bytes > 0) {
        size_t n = bytes < sizeof chunk ? (size_t) bytes : sizeof chunk;
        write_stderr_or_die(chunk, n);
        bytes -= n;
    }
}

/* ---------- the redo state ---------- */

static inline uint64_t fnv_fold(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static inline uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline uint64_t load_be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void store_be64(uint8_t *p, uint64_t v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof v);
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

static inline uint32_t load_be32(const uint8_t *p) {
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

/* Reset by every B. `base` holds the last pushed image and is meaningful only while has_base is set. */
struct redo_state {
    int begun;                  /* a B has been seen since the process started */
    int has_base;
    uint32_t count;
    uint64_t last_lsn;
    uint64_t hash;
    _Alignas(8) uint8_t base[PAGE_BYTES];
};

static void compute_page(const struct redo_state *s, const uint8_t tag[TAG_BYTES], uint8_t out[PAGE_BYTES]) {
    memcpy(out, tag, TAG_BYTES);
    store_be32(out + OFF_COUNT, s->count);
    store_be64(out + OFF_LAST_LSN, s->last_lsn);
    store_be64(out + OFF_HASH, s->hash);
    memset(out + OFF_HASH + 8, 0, OFF_BODY - (OFF_HASH + 8));
    const uint64_t h = s->hash;
    if (s->has_base) {
        for (uint32_t j = 0; j < BODY_WORDS; j++) {
            const uint32_t off = OFF_BODY + 8u * j;
            store_be64(out + off, load_be64(s->base + off) ^ splitmix64(h + j));
        }
    } else {
        for (uint32_t j = 0; j < BODY_WORDS; j++) {
            store_be64(out + OFF_BODY + 8u * j, splitmix64(h + j));
        }
    }
}

/* ---------- the message loop ---------- */

struct parser {
    uint8_t header[HEADER_BYTES];
    uint32_t header_have;
    int in_payload;
    uint8_t type;
    uint32_t payload_len;       /* length field minus the 4 length bytes */
    uint32_t payload_have;
    uint8_t tag[TAG_BYTES];     /* the tag of the B or G being read */
    uint64_t offset;            /* stdin bytes consumed so far, for error messages */
    uint64_t frame_offset;      /* where the current message started */
};

struct fake {
    struct options opt;
    struct redo_state state;
    struct parser in;
    uint64_t getpages;          /* G messages seen, from 1, over the process lifetime */
    int stdout_closed;          /* set by --garbage-after: later answers are dropped */
    _Alignas(8) uint8_t page[PAGE_BYTES];
    _Alignas(8) uint8_t zero_page[PAGE_BYTES];
};

static const char *message_name(uint8_t type) {
    switch (type) {
    case 'B': return "BeginRedoForBlock";
    case 'P': return "PushPage";
    case 'A': return "ApplyRecord";
    case 'G': return "GetPage";
    case 'H': return "Ping";
    default: return "unknown";
    }
}

static void __attribute__((noreturn)) protocol_error_bad_length(const struct parser *in, uint32_t len,
                                                                  const char *expected) {
    errline("FATAL:  invalid message length %u for '%c' (%s) message at input offset %llu: expected %s",
            len, in->type, message_name(in->type), (unsigned long long) in->frame_offset, expected);
    _exit(EXIT_PROTOCOL);
}

static void answer_delay(const struct fake *f) {
    if (f->opt.delay_us > 0) {
        sleep_ns(f->opt.delay_us * 1000u);
    }
}

static void answer_ping(struct fake *f) {
    answer_delay(f);
    if (!f->stdout_closed) {
        write_stdout_or_die(f->zero_page, PAGE_BYTES);
    }
}

static void answer_getpage(struct fake *f) {
    const uint64_t nth = ++f->getpages;
    const struct options *o = &f->opt;
    if (o->crash_after == nth) {
        errline("fake-walredo: --crash-after %llu: raising SIGSEGV on GetPage #%llu",
                (unsigned long long) o->crash_after, (unsigned long long) nth);
        /* No core file: the fault is the point, and a dump per test run would fill the disk. */
        struct rlimit no_core = { 0, 0 };
        (void) setrlimit(RLIMIT_CORE, &no_core);
        /* Default action and unblocked, so the death is by SIGSEGV whatever the spawner left behind. */
        signal(SIGSEGV, SIG_DFL);
        sigset_t segv;
        sigemptyset(&segv);
        sigaddset(&segv, SIGSEGV);
        sigprocmask(SIG_UNBLOCK, &segv, NULL);
        raise(SIGSEGV);
        abort();
    }
    if (o->exit_after == nth) {
        errline("fake-walredo: --exit-after %llu: exiting with status 1 on GetPage #%llu",
                (unsigned long long) o->exit_after, (unsigned long long) nth);
        _exit(EXIT_FAULT);
    }
    if (o->hang_after == nth) {
        errline("fake-walredo: --hang-after %llu: hanging on GetPage #%llu",
                (unsigned long long) o->hang_after, (unsigned long long) nth);
        hang_forever();
    }
    answer_delay(f);
    if (f->stdout_closed) {
        return;
    }
    if (o->garbage_after == nth) {
        uint8_t garbage[GARBAGE_BYTES];
        for (uint32_t i = 0; i < GARBAGE_BYTES; i++) {
            garbage[i] = (uint8_t) (0xA5u ^ (i * 37u));
        }
        write_stdout_or_die(garbage, sizeof garbage);
        close(STDOUT_FILENO);
        f->stdout_closed = 1;
        errline("fake-walredo: --garbage-after %llu: wrote %u garbage bytes and closed stdout on GetPage #%llu",
                (unsigned long long) o->garbage_after, GARBAGE_BYTES, (unsigned long long) nth);
        return;
    }
    compute_page(&f->state, f->in.tag, f->page);
    if (o->partial_after == nth || o->exit_mid_page == nth) {
        write_stdout_or_die(f->page, PARTIAL_BYTES);
        if (o->exit_mid_page == nth) {
            errline("fake-walredo: --exit-mid-page %llu: exiting after %u of %u bytes of GetPage #%llu",
                    (unsigned long long) o->exit_mid_page, PARTIAL_BYTES, PAGE_BYTES, (unsigned long long) nth);
            _exit(EXIT_FAULT);
        }
        errline("fake-walredo: --partial-after %llu: hanging after %u of %u bytes of GetPage #%llu",
                (unsigned long long) o->partial_after, PARTIAL_BYTES, PAGE_BYTES, (unsigned long long) nth);
        hang_forever();
    }
    write_stdout_or_die(f->page, PAGE_BYTES);
    if (o->unsolicited_after == nth) {
        /* Nothing is owed now (unless the parent pipelined): a page nobody asked for. */
        sleep_ns((uint64_t) UNSOLICITED_DELAY_MS * 1000000u);
        uint8_t extra[PAGE_BYTES];
        memset(extra, 0xFF, sizeof extra);
        write_stdout_or_die(extra, sizeof extra);
        errline("fake-walredo: --unsolicited-after %llu: wrote an unsolicited page %u ms after answering GetPage #%llu",
                (unsigned long long) o->unsolicited_after, UNSOLICITED_DELAY_MS, (unsigned long long) nth);
    }
}

/* Called once the 5 header bytes are in: validates type, length and order before any payload is used. */
static void begin_message(struct fake *f) {
    struct parser *in = &f->in;
    in->type = in->header[0];
    const uint32_t len = load_be32(in->header + 1);
    switch (in->type) {
    case 'B':
    case 'G':
        if (len != LEN_TAG_MSG) {
            protocol_error_bad_length(in, len, "21 (4 + 17-byte BufferTag)");
        }
        break;
    case 'P':
        if (len != LEN_PUSH_PAGE) {
            protocol_error_bad_length(in, len, "8213 (4 + 17-byte BufferTag + 8192-byte page)");
        }
        break;
    case 'H':
        if (len != LEN_PING) {
            protocol_error_bad_length(in, len, "4 (no payload)");
        }
        break;
    case 'A':
        if (len < LEN_APPLY_MIN || len > LEN_APPLY_MAX) {
            protocol_error_bad_length(in, len, "12 (4 + 8-byte end LSN) to 1073741836 (+ a record of up to 1 GiB)");
        }
        break;
    default:
        if (in->type >= 0x20 && in->type < 0x7f) {
            errline("FATAL:  invalid frontend message type %u ('%c') at input offset %llu", in->type, in->type,
                    (unsigned long long) in->frame_offset);
        } else {
            errline("FATAL:  invalid frontend message type %u at input offset %llu", in->type,
                    (unsigned long long) in->frame_offset);
        }
        _exit(EXIT_PROTOCOL);
    }
    if (!f->state.begun && in->type != 'B' && in->type != 'H') {
        errline("FATAL:  '%c' (%s) message at input offset %llu before any BeginRedoForBlock ('B')", in->type,
                message_name(in->type), (unsigned long long) in->frame_offset);
        _exit(EXIT_PROTOCOL);
    }
    in->payload_len = len - LEN_FIELD_BYTES;
    in->payload_have = 0;
    in->in_payload = 1;
}

/* Called once the whole payload has been consumed. */
static void end_message(struct fake *f) {
    struct parser *in = &f->in;
    struct redo_state *s = &f->state;
    switch (in->type) {
    case 'B':
        s->begun = 1;
        s->has_base = 0;
        s->count = 0;
        s->last_lsn = 0;
        s->hash = FNV_OFFSET_BASIS;
        break;
    case 'P':
        s->has_base = 1;
        break;
    case 'A':
        s->count++;
        break;
    case 'G':
        answer_getpage(f);
        break;
    case 'H':
        answer_ping(f);
        break;
    default:
        break;
    }
    in->in_payload = 0;
    in->header_have = 0;
    in->frame_offset = in->offset;
}

/*
 * Consumes n payload bytes of the current message. Offsets are relative to the payload start, so a byte is
 * handled the same way whichever read() delivered it.
 */
static void consume_payload(struct fake *f, const uint8_t *p, uint32_t n) {
    struct parser *in = &f->in;
    struct redo_state *s = &f->state;
    const uint32_t at = in->payload_have;
    switch (in->type) {
    case 'B':
    case 'G':
        memcpy(in->tag + at, p, n);
        break;
    case 'P': {
        /* The P's own tag is not used: the page it carries is the base of the current request. */
        uint32_t skip = at < TAG_BYTES ? TAG_BYTES - at : 0;
        if (skip > n) {
            skip = n;
        }
        if (skip < n) {
            memcpy(s->base + (at + skip - TAG_BYTES), p + skip, n - skip);
            s->hash = fnv_fold(s->hash, p + skip, n - skip);
        }
        break;
    }
    case 'A':
        /* The payload is end_lsn (8 bytes BE) then the record: exactly the bytes the hash folds, in order. */
        s->hash = fnv_fold(s->hash, p, n);
        for (uint32_t i = at; i < LSN_BYTES && i < at + n; i++) {
            s->last_lsn = (i == 0 ? 0 : s->last_lsn << 8) | p[i - at];
        }
        break;
    default:
        break;
    }
    in->payload_have += n;
}

static void consume(struct fake *f, const uint8_t *p, size_t n) {
    struct parser *in = &f->in;
    while (n > 0) {
        if (!in->in_payload) {
            uint32_t take = HEADER_BYTES - in->header_have;
            if (take > n) {
                take = (uint32_t) n;
            }
            memcpy(in->header + in->header_have, p, take);
            in->header_have += take;
            in->offset += take;
            p += take;
            n -= take;
            if (in->header_have < HEADER_BYTES) {
                return;
            }
            begin_message(f);
        } else {
            uint32_t take = in->payload_len - in->payload_have;
            if (take > n) {
                take = (uint32_t) n;
            }
            consume_payload(f, p, take);
            in->offset += take;
            p += take;
            n -= take;
        }
        if (in->in_payload && in->payload_have == in->payload_len) {
            end_message(f);
        }
    }
}

static void __attribute__((noreturn)) run(struct fake *f) {
    static uint8_t buf[IN_BUF_BYTES];
    for (;;) {
        if (f->opt.read_delay_us > 0) {
            sleep_ns(f->opt.read_delay_us * 1000u);
        }
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            errline("FATAL:  could not read from stdin: %s", strerror(errno));
            _exit(EXIT_IO);
        }
        if (n == 0) {
            const struct parser *in = &f->in;
            if (in->header_have == 0 && !in->in_payload) {
                _exit(0);
            }
            if (in->in_payload) {
                errline("FATAL:  unexpected EOF on stdin inside a '%c' (%s) message at input offset %llu:"
                        " %u of %u payload bytes received",
                        in->type, message_name(in->type), (unsigned long long) in->frame_offset,
                        in->payload_have, in->payload_len);
            } else {
                errline("FATAL:  unexpected EOF on stdin inside a message header at input offset %llu:"
                        " %u of %u header bytes received",
                        (unsigned long long) in->frame_offset, in->header_have, HEADER_BYTES);
            }
            _exit(EXIT_PROTOCOL);
        }
        consume(f, buf, (size_t) n);
    }
}

int main(int argc, char **argv) {
    /* Static rather than on the stack: it holds three 8 KiB pages, and static storage starts zeroed. */
    static struct fake f;

    /* Before anything else, so the listing shows exactly what the spawner handed over. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--report-fds") == 0) {
            report_fds();
            break;
        }
    }
    parse_options(argc, argv, &f.opt);
    if (f.opt.no_walredo_support) {
        /* What a PostgreSQL built without Neon's walredo says to `postgres --wal-redo` (postmaster.c). */
        errline("FATAL:  --wal-redo requires a value");
        _exit(EXIT_USAGE);
    }
    if (!f.opt.wal_redo) {
        errline("FATAL:  fake-walredo: --wal-redo is required: without it a postgres binary starts a postmaster,"
                " which does not speak the walredo protocol; %s", USAGE);
        _exit(EXIT_USAGE);
    }
    if (f.opt.spawn_grandchild) {
        spawn_grandchild();
    }
    if (f.opt.exit_at_start) {
        errline("FATAL:  fake-walredo: --exit-at-start: exiting with status %d before reading stdin", EXIT_AT_START);
        _exit(EXIT_AT_START);
    }
    /* Like a postgres backend: a closed stdout shows up as a write error with a message, not a silent SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (f.opt.ignore_sigterm) {
        signal(SIGTERM, SIG_IGN);
    }
    stderr_lines(f.opt.stderr_lines);
    stderr_flood(f.opt.stderr_flood, 1);
    stderr_flood(f.opt.stderr_flood_nonl, 0);
    if (f.opt.startup_delay_ms > 0) {
        sleep_ns(f.opt.startup_delay_ms * 1000000u);
    }
    if (f.opt.no_read) {
        hang_forever();
    }
    run(&f);
}
