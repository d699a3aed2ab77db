// SPDX-License-Identifier: Apache-2.0
/*
 * redo-client: the "limit" the benchmarks compare the library with. Minimal C clients for the walredo
 * protocol: posix_spawn (with the same file actions as the library: dup2 onto 0-2, closefrom 3), no framework,
 * no allocation on the request path. Two of them, because how a client drives the pipes changes the figure by
 * 2x or more under pipelining; the benchmarks run both and compare the library with the faster one.
 *
 *   redo-client redo BINARY REQUEST_FILE DEPTH WARMUP_MS MEASURE_MS
 *     Spawns BINARY --wal-redo, then keeps DEPTH copies of the request in REQUEST_FILE (its exact bytes, as
 *     the library encodes them; every request ends in one G or H) in flight over blocking pipes: a writer
 *     thread sends one request whenever fewer than DEPTH are outstanding, the main thread reads the 8192-byte
 *     answers and checks each against the first. DEPTH outstanding requests are what DEPTH closed-loop
 *     callers of the library produce against one sidecar. Prints one line:
 *       requests=N seconds=S us_per_redo_per_caller=X median_us=M
 *     where us_per_redo_per_caller = S * DEPTH / N * 1e6 (the figure Neon's bench_walredo reports) and
 *     median_us is the median round trip of single requests (only meaningful, and only printed, at DEPTH 1).
 *     The measurement window runs from the first answer read at or after WARMUP_MS (not counted) to the
 *     first answer read at or after WARMUP_MS + MEASURE_MS (counted); what is still in flight is then read
 *     and discarded, so the child is idle when it is killed.
 *
 *   redo-client redo-poll BINARY REQUEST_FILE DEPTH WARMUP_MS MEASURE_MS
 *     The same work, window, checks and output line as redo, from one thread over non-blocking pipes: poll(2)
 *     on the child's stdout (always) and stdin (while a window slot is free or a write is half done); each
 *     write(2) hands the child as many whole copies of the request as there are free slots, each read(2) takes
 *     up to 256 KiB (up to 32 answers). It exists because it is the faster reference under pipelining (an
 *     independent measurement for issue 14: about 210k to 226k redos/s at depth 16 to 128, against 84k to
 *     120k for redo): one thread, so no lock or condition variable hand-off between a writer and a reader
 *     (a futex wake, often a context switch, per request), and a few syscalls per batch of requests instead
 *     of a write and a read per request. Its window is the same but marked by reads that complete answers
 *     rather than by single answers: it runs from the first such read at or after WARMUP_MS (its answers
 *     are not counted) to the first at or after WARMUP_MS + MEASURE_MS (its answers are counted), so every
 *     counted answer arrived inside the window. Then it finishes a half-written batch, reads every answer
 *     still in flight (checking them too) and kills the child. At DEPTH 1 it sends one request at a time.
 *
 *   redo-client spawn-serve BINARY EXTRA_FDS
 *     Opens EXTRA_FDS more descriptors (each its own open of /dev/null, as the JVM's are, and without
 *     O_CLOEXEC, as a careless host would), then for every line read from stdin: posix_spawn BINARY
 *     --wal-redo, write a Ping, read its 8192-byte answer, SIGKILL, waitpid, and print the spawn -> answer
 *     latency in microseconds on its own line (flushed). Ends at EOF. The benchmark interleaves these spawns
 *     with the Java contenders' so that all of them see the same machine state.
 *
 * Exit status 0 on success, 1 on any error (with a message on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES 8192
/* redo-poll reads this much at most per read(2): 32 answers, four times the default pipe capacity. */
#define READ_BYTES (256 * 1024)
/* redo-poll fails if neither pipe is ready for this long: the child is hung, and a benchmark must not hang. */
#define STALL_MS 30000
/* At DEPTH 1, round trips kept for the median; later ones are not sampled. */
#define MAX_RTT_SAMPLES ((size_t)1 << 22)

extern char **environ;

static void die(const char *what) {
    fprintf(stderr, "redo-client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(const char *msg) {
    fprintf(stderr, "redo-client: %s\n", msg);
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write to the child's stdin");
        }
        p += w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read from the child's stdout");
        }
        if (r == 0) fail("the child closed its stdout (did it crash?)");
        p += r;
        n -= (size_t)r;
    }
}

struct child {
    pid_t pid;
    int in;  /* our end of the child's stdin */
    int out; /* our end of the child's stdout */
};

/* The library's spawn: pipes with O_CLOEXEC, dup2 onto 0/1 (stderr goes to /dev/null here), closefrom(3). */
static struct child spawn_child(const char *binary, int devnull) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe2");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    if (posix_spawn_file_actions_init(&fa) != 0 || posix_spawnattr_init(&attr) != 0) fail("posix_spawn init");
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, devnull, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {(char *)binary, "--wal-redo", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, binary, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        die("posix_spawn");
    }
    close(in[0]);
    close(out[1]);
    struct child c = {pid, in[1], out[0]};
    return c;
}

static void kill_child(struct child *c) {
    close(c->in);
    close(c->out);
    kill(c->pid, SIGKILL);
    int status;
    while (waitpid(c->pid, &status, 0) < 0) {
        if (errno != EINTR) die("waitpid");
    }
}

static unsigned char *read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    unsigned char *buf = malloc((size_t)st.st_size);
    if (buf == NULL) fail("out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0) die("read request file");
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

/* The window: the writer waits while DEPTH requests are outstanding; the reader frees a slot per answer. */
struct window {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long depth;
    long outstanding;
    int stop;
    int fd;
    const unsigned char *req;
    size_t req_len;
    int64_t *sent_at; /* ring of send times, DEPTH entries; used at DEPTH 1 for the median */
    long sent;
};

static void *writer(void *arg) {
    struct window *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->outstanding >= w->depth && !w->stop) pthread_cond_wait(&w->cond, &w->lock);
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        w->outstanding++;
        w->sent_at[w->sent % w->depth] = now_ns();
        w->sent++;
        pthread_mutex_unlock(&w->lock);
        write_all(w->fd, w->req, w->req_len);
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The result line both redo modes print (see the header); sorts rtt in place for the median. */
static void print_result(long measured, int64_t window_ns, long depth, int64_t *rtt, size_t n_rtt) {
    double seconds = (double)window_ns / 1e9;
    double us = seconds * (double)depth / (double)measured * 1e6;
    printf("requests=%ld seconds=%.6f us_per_redo_per_caller=%.3f", measured, seconds, us);
    if (rtt != NULL && n_rtt > 0) {
        qsort(rtt, n_rtt, sizeof(int64_t), cmp_i64);
        printf(" median_us=%.3f", (double)rtt[n_rtt / 2] / 1e3);
    }
    printf("\n");
}

static int run_redo(const char *binary, const char *request_file, long depth, long warmup_ms, long measure_ms) {
    size_t req_len;
    unsigned char *req = read_file(request_file, &req_len);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) die("/dev/null");
    struct child c = spawn_child(binary, devnull);

    struct window w;
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    w.depth = depth;
    w.outstanding = 0;
    w.stop = 0;
    w.fd = c.in;
    w.req = req;
    w.req_len = req_len;
    w.sent_at = calloc((size_t)depth, sizeof(int64_t));
    w.sent = 0;
    size_t max_samples = MAX_RTT_SAMPLES;
    int64_t *rtt = depth == 1 ? malloc(max_samples * sizeof(int64_t)) : NULL;
    size_t n_rtt = 0;

    pthread_t th;
    if (pthread_create(&th, NULL, writer, &w) != 0) fail("pthread_create");

    static unsigned char first[PAGE_BYTES], page[PAGE_BYTES];
    long answered = 0, measured = 0;
    int64_t start = now_ns();
    int64_t measure_start = start + warmup_ms * 1000000L;
    int64_t end = measure_start + measure_ms * 1000000L;
    int64_t t_begin = 0, t_end = 0;
    int measuring = 0;
    for (;;) {
        read_all(c.out, answered == 0 ? first : page, PAGE_BYTES);
        int64_t t = now_ns();
        if (answered > 0 && memcmp(first, page, PAGE_BYTES) != 0) fail("an answer differs from the first one");
        pthread_mutex_lock(&w.lock);
        int64_t sent = w.sent_at[answered % depth];
        w.outstanding--;
        int done = t >= end;
        if (done) w.stop = 1;
        pthread_cond_signal(&w.cond);
        long in_flight = w.outstanding;
        pthread_mutex_unlock(&w.lock);
        answered++;
        if (!measuring && t >= measure_start) {
            measuring = 1;
            t_begin = t;
        } else if (measuring) {
            measured++;
            if (rtt != NULL && n_rtt < max_samples) rtt[n_rtt++] = t - sent;
        }
        if (done) {
            t_end = t;
            /* drain what is still in flight so the child is idle when it is killed */
            for (long i = 0; i < in_flight; i++) read_all(c.out, page, PAGE_BYTES);
            break;
        }
    }
    pthread_join(th, NULL);
    kill_child(&c);
    print_result(measured, t_end - t_begin, depth, rtt, n_rtt);
    return 0;
}

/*
 * redo-poll's state, owned by its one thread. Invariants between iterations of the loop:
 * - outstanding = sent - answered <= depth: a request counts from the moment its batch is handed to write(2),
 *   whether or not all of its bytes have been taken yet, until its complete answer has been read.
 * - batch_off < batch_end while a batch is half written; no new batch starts until it is done, so the child
 *   always sees whole requests in order.
 * - sent_at[i % depth] is the time request i's batch write started; it is overwritten only by request
 *   i + depth, which cannot start before answer i has been read.
 * - rbuf holds rlen < PAGE_BYTES bytes of the next answer (one that straddles two reads) and nothing else.
 */
struct poll_client {
    int in;  /* our end of the child's stdin, O_NONBLOCK */
    int out; /* our end of the child's stdout, O_NONBLOCK */
    long depth;
    size_t req_len;
    unsigned char *batch; /* DEPTH copies of the request back to back, filled once: a batch of k is its first k */
    size_t batch_off;     /* next byte of the current batch to hand to write(2) */
    size_t batch_end;     /* end of the current batch; batch_off == batch_end when no write is pending */
    long outstanding;
    long sent;
    long answered;
    int64_t *sent_at;     /* ring of DEPTH batch start times, indexed by request number */
    unsigned char *rbuf;  /* PAGE_BYTES + READ_BYTES: the carried-over part of an answer, then one read */
    size_t rlen;
    int64_t read_at;      /* when the last read(2) returned */
    unsigned char first[PAGE_BYTES];
};

static void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl O_NONBLOCK");
}

/* Starts a batch of one copy of the request per free slot; all of them are outstanding from now. */
static void start_batch(struct poll_client *p) {
    long k = p->depth - p->outstanding;
    int64_t t = now_ns();
    for (long i = 0; i < k; i++) p->sent_at[(p->sent + i) % p->depth] = t;
    p->sent += k;
    p->outstanding += k;
    p->batch_off = 0;
    p->batch_end = (size_t)k * p->req_len;
}

/* One write(2) of what is left of the batch; retries on EINTR, returns on EAGAIN (the pipe is full). */
static void write_some(struct poll_client *p) {
    for (;;) {
        ssize_t w = write(p->in, p->batch + p->batch_off, p->batch_end - p->batch_off);
        if (w >= 0) {
            p->batch_off += (size_t)w;
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        die("write to the child's stdin");
    }
}

/*
 * One read(2) of up to READ_BYTES after the carried-over part of an answer; checks every complete answer
 * against the first and frees its slot. Retries on EINTR; returns 0 on EAGAIN, else the number of complete
 * answers (possibly 0 if the read ended inside an answer). Bytes beyond the outstanding answers fail: the
 * child answered a request it was not sent.
 */
static long read_answers(struct poll_client *p) {
    ssize_t r;
    for (;;) {
        r = read(p->out, p->rbuf + p->rlen, READ_BYTES);
        if (r > 0) break;
        if (r == 0) fail("the child closed its stdout (did it crash?)");
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        die("read from the child's stdout");
    }
    p->read_at = now_ns();
    size_t have = p->rlen + (size_t)r;
    if (have > (size_t)p->outstanding * PAGE_BYTES) fail("the child sent more than the outstanding answers");
    size_t pages = have / PAGE_BYTES;
    for (size_t i = 0; i < pages; i++) {
        const unsigned char *page = p->rbuf + i * PAGE_BYTES;
        if (p->answered == 0) {
            memcpy(p->first, page, PAGE_BYTES);
        } else if (memcmp(p->first, page, PAGE_BYTES) != 0) {
            fail("an answer differs from the first one");
        }
        p->answered++;
    }
    p->outstanding -= (long)pages;
    p->rlen = have - pages * PAGE_BYTES;
    if (pages > 0 && p->rlen > 0) memmove(p->rbuf, p->rbuf + pages * PAGE_BYTES, p->rlen);
    return (long)pages;
}

static int run_redo_poll(const char *binary, const char *request_file, long depth, long warmup_ms,
                         long measure_ms) {
    size_t req_len;
    unsigned char *req = read_file(request_file, &req_len);
    if (req_len == 0) fail("the request file is empty");
    if ((size_t)depth > SIZE_MAX / req_len) fail("DEPTH copies of the request do not fit in memory");
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) die("/dev/null");

    struct poll_client p = {
        .depth = depth,
        .req_len = req_len,
        .batch = malloc((size_t)depth * req_len),
        .sent_at = calloc((size_t)depth, sizeof(int64_t)),
        .rbuf = malloc(PAGE_BYTES + READ_BYTES),
    };
    int64_t *rtt = depth == 1 ? malloc(MAX_RTT_SAMPLES * sizeof(int64_t)) : NULL;
    if (p.batch == NULL || p.sent_at == NULL || p.rbuf == NULL || (depth == 1 && rtt == NULL)) {
        fail("out of memory");
    }
    for (long i = 0; i < depth; i++) memcpy(p.batch + (size_t)i * req_len, req, req_len);
    size_t n_rtt = 0;

    struct child c = spawn_child(binary, devnull);
    /* Our ends only: the child's ends are other open file descriptions and stay blocking. */
    set_nonblocking(c.in);
    set_nonblocking(c.out);
    p.in = c.in;
    p.out = c.out;

    long measured = 0;
    int64_t start = now_ns();
    int64_t measure_start = start + warmup_ms * 1000000L;
    int64_t end = measure_start + measure_ms * 1000000L;
    int64_t t_begin = 0, t_end = 0;
    int measuring = 0, stopping = 0;
    /* After stopping, the loop drains: it finishes a half-written batch and reads every outstanding answer. */
    while (!stopping || p.outstanding > 0) {
        int pending = p.batch_off < p.batch_end;
        int want_write = pending || (!stopping && p.outstanding < depth);
        struct pollfd fds[2] = {{.fd = p.out, .events = POLLIN}, {.fd = p.in, .events = POLLOUT}};
        int n = poll(fds, want_write ? 2 : 1, STALL_MS);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if (n == 0) fail("the child neither answered nor took a request for 30 s (is it hung?)");
        /* POLLHUP and POLLERR too: the read reports end of file or the error. */
        if (fds[0].revents != 0) {
            long answered_before = p.answered;
            long got = read_answers(&p);
            if (got > 0 && !stopping) {
                int64_t t = p.read_at;
                if (!measuring) {
                    if (t >= measure_start) {
                        measuring = 1;
                        t_begin = t;
                    }
                } else {
                    measured += got;
                    for (long i = 0; rtt != NULL && i < got && n_rtt < MAX_RTT_SAMPLES; i++) {
                        rtt[n_rtt++] = t - p.sent_at[(answered_before + i) % depth];
                    }
                    if (t >= end) {
                        stopping = 1;
                        t_end = t;
                    }
                }
            }
        }
        /* POLLERR here means the child closed its stdin: the write reports EPIPE (SIGPIPE is ignored). */
        if (want_write && fds[1].revents != 0) {
            if (!pending && !stopping && p.outstanding < depth) start_batch(&p);
            if (p.batch_off < p.batch_end) write_some(&p);
        }
    }
    kill_child(&c);
    if (measured == 0) fail("no answer in the measurement window; raise MEASURE_MS");
    print_result(measured, t_end - t_begin, depth, rtt, n_rtt);
    return 0;
}

/* Raises the soft fd limit to the hard one and opens EXTRA_FDS descriptors; returns an fd on /dev/null. */
static int open_extra_fds(long extra_fds) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) die("/dev/null");
    for (long i = 0; i < extra_fds; i++) {
        if (open("/dev/null", O_RDONLY) < 0) die("open /dev/null (raise ulimit -n?)");
    }
    return devnull;
}

/* One spawn, Ping, answer, SIGKILL, waitpid; returns spawn -> answer in microseconds. */
static double spawn_once(const char *binary, int devnull) {
    /* The Ping message: 'H', length 4 (it counts itself). */
    static const unsigned char ping[5] = {'H', 0, 0, 0, 4};
    static unsigned char page[PAGE_BYTES];
    int64_t t0 = now_ns();
    struct child c = spawn_child(binary, devnull);
    write_all(c.in, ping, sizeof ping);
    read_all(c.out, page, PAGE_BYTES);
    int64_t t1 = now_ns();
    kill_child(&c);
    return (double)(t1 - t0) / 1e3;
}

static int run_spawn_serve(const char *binary, long extra_fds) {
    int devnull = open_extra_fds(extra_fds);
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        printf("%.1f\n", spawn_once(binary, devnull));
        fflush(stdout);
    }
    return 0;
}

static long number(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0) {
        fprintf(stderr, "redo-client: %s must be a non-negative integer, got '%s'\n", what, s);
        exit(1);
    }
    return v;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 7 && strcmp(argv[1], "redo") == 0) {
        long depth = number(argv[4], "DEPTH");
        if (depth < 1) fail("DEPTH must be at least 1");
        return run_redo(argv[2], argv[3], depth, number(argv[5], "WARMUP_MS"), number(argv[6], "MEASURE_MS"));
    }
    if (argc == 7 && strcmp(argv[1], "redo-poll") == 0) {
        long depth = number(argv[4], "DEPTH");
        if (depth < 1) fail("DEPTH must be at least 1");
        return run_redo_poll(argv[2], argv[3], depth, number(argv[5], "WARMUP_MS"),
                             number(argv[6], "MEASURE_MS"));
    }
    if (argc == 4 && strcmp(argv[1], "spawn-serve") == 0) {
        return run_spawn_serve(argv[2], number(argv[3], "EXTRA_FDS"));
    }
    fprintf(stderr,
            "usage: redo-client redo BINARY REQUEST_FILE DEPTH WARMUP_MS MEASURE_MS\n"
            "       redo-client redo-poll BINARY REQUEST_FILE DEPTH WARMUP_MS MEASURE_MS\n"
            "       redo-client spawn-serve BINARY EXTRA_FDS\n");
    return 1;
}
