// SPDX-License-Identifier: Apache-2.0
/*
 * walredo.c: `postgres --wal-redo [--tenant-shard-id ID] [--run-as USER] [--disable-seccomp]`, a process that
 * turns "base page + WAL records" into "page image" with PostgreSQL's own redo routines. It speaks Neon's
 * walredo protocol on stdin/stdout (docs/protocol.md in walredo-supervisor: B, P, A, G, H; an 8192-byte answer
 * per G and H), logs on stderr, touches no data directory and exits 0 at EOF on stdin. Any error is FATAL
 * (exit 1): a caller that sees one must not trust the stream any more, and the process has nothing worth
 * keeping. Once the first bytes of input have arrived, and before it parses any, it drops root (drop_root)
 * and then confines itself with a seccomp filter (enter_seccomp): from then on it can read stdin, write
 * stdout and stderr, manage its memory and exit, and any other system call kills it with SIGSYS.
 *
 * scripts/build-postgres copies this file to src/backend/tcop/walredo.c; postgres/walredo.patch makes the
 * changes to core that it relies on (see docs/real-postgres.md for the design):
 *  - main.c sends argv[1] == "--wal-redo" here, before the root check (we drop root ourselves, below);
 *  - smgr.c gives every relation the storage manager at the end of this file when InWalRedoMode;
 *  - bufmgr.c makes every buffer a process-local buffer (localbuf.c) when InWalRedoMode, so no shared
 *    memory, no LWLocks and no PGPROC are needed;
 *  - xlogutils.c skips, with BLK_NOTFOUND, every block of a record but the one being reconstructed (a
 *    block the routine initialises gets a scratch buffer instead, which nothing reads back);
 *  - xlog.c gives this process a zeroed pg_control (WalRedoUseEmptyControlFile: no data checksums).
 *
 * Where a page lives. The page being reconstructed (the target, named by B) lives only in a local buffer:
 * P copies the base image into it, redo routines change it there, G copies it out. The storage manager
 * stores nothing: every block reads as zeros, every write is dropped. That is right for the pages a redo
 * routine reads besides the target through other paths (the free space map and visibility map pages of the
 * target's relation, which heap redo updates as a side effect) and would be wrong only if the target's
 * buffer were evicted; walredo_smgr_write() makes that a FATAL error instead of a silently zeroed page. It
 * cannot happen while one request touches fewer than WALREDO_LOCAL_BUFFERS pages, and every B drops all
 * buffers of the previous request.
 *
 * Single-threaded, like every postgres process.
 */
#include "postgres.h"

#include <fcntl.h>
#include <grp.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogrecord.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "port/pg_crc32c.h"
#include "postmaster/postmaster.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/smgr.h"
#include "tcop/walredo.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

bool		InWalRedoMode = false;

/* Wire sizes; docs/protocol.md section 1. The length field counts itself and the payload. */
#define TAG_BYTES 17
#define LEN_FIELD_BYTES 4
#define LSN_BYTES 8
#define LEN_TAG_MSG (LEN_FIELD_BYTES + TAG_BYTES)	/* B, G: 21 */
#define LEN_PUSH_PAGE (LEN_TAG_MSG + BLCKSZ)	/* P: 8213 */
#define LEN_PING LEN_FIELD_BYTES	/* H: 4 */
#define LEN_APPLY_MIN (LEN_FIELD_BYTES + LSN_BYTES) /* A with an empty record: 12 */
#define MAX_RECORD_BYTES (1U << 30) /* docs/protocol.md: a record is at most 1 GiB */
#define LEN_APPLY_MAX (LEN_APPLY_MIN + MAX_RECORD_BYTES)

#define IN_BUF_BYTES (64 * 1024)

/*
 * Local buffers (temp_buffers) of this process: the smallest count the GUC accepts. Each costs 8 KiB once
 * used; one request touches the target and a few free space map and visibility map pages. See "Where a page
 * lives" above for why the count matters.
 */
#define WALREDO_LOCAL_BUFFERS "100"

/* The user a walredo process started as root switches to before it parses any input (--run-as). */
#define DEFAULT_RUN_AS "nobody"

/* ---------- request state ---------- */

static BufferTag target;		/* set by B */
static bool have_target = false;

/*
 * Every relation the storage manager opened since the last B, so that B can drop their local buffers:
 * localbuf.c offers no "drop every buffer" call, only one per relation.
 */
static RelFileNode *opened_rels = NULL;
static int	n_opened_rels = 0;
static int	max_opened_rels = 0;

static XLogReaderState *reader;

/* ---------- stdin and stdout ---------- */

static char in_buf[IN_BUF_BYTES];
static size_t in_pos = 0;
static size_t in_len = 0;
static uint64 in_offset = 0;	/* bytes of stdin consumed so far, for error messages */

/* Refills in_buf; returns false at EOF. FATAL on a read error. */
static bool
fill_input(void)
{
	ssize_t		n;

	for (;;)
	{
		n = read(STDIN_FILENO, in_buf, sizeof(in_buf));
		if (n >= 0)
			break;
		if (errno != EINTR)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not read from stdin: %m")));
	}
	in_pos = 0;
	in_len = (size_t) n;
	return n > 0;
}

/* Reads exactly n bytes of the message that started at msg_offset; EOF here is a protocol violation. */
static void
read_exact(void *dst, size_t n, char type, uint64 msg_offset)
{
	char	   *p = dst;

	while (n > 0)
	{
		size_t		take;

		if (in_pos == in_len && !fill_input())
			ereport(FATAL,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unexpected EOF on stdin inside a '%c' message at input offset " UINT64_FORMAT,
							type, msg_offset)));
		take = Min(n, in_len - in_pos);
		memcpy(p, in_buf + in_pos, take);
		in_pos += take;
		in_offset += take;
		p += take;
		n -= take;
	}
}

/* Writes all of buf to stdout; FATAL if stdout is gone (SIGPIPE is ignored, so that is EPIPE). */
static void
write_stdout(const char *buf, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = write(STDOUT_FILENO, buf, n);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not write to stdout: %m")));
		}
		buf += w;
		n -= (size_t) w;
	}
}

static uint32
get_be32(const char *p)
{
	uint32		v;

	memcpy(&v, p, sizeof(v));
	return pg_ntoh32(v);
}

static uint64
get_be64(const char *p)
{
	uint64		v;

	memcpy(&v, p, sizeof(v));
	return pg_ntoh64(v);
}

/* A BufferTag on the wire: forknum (1 byte), spcnode, dbnode, relnode, blknum (u32 BE each). */
static BufferTag
read_tag(char type, uint64 msg_offset)
{
	char		raw[TAG_BYTES];
	BufferTag	tag;

	read_exact(raw, TAG_BYTES, type, msg_offset);
	if ((uint8) raw[0] > MAX_FORKNUM)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid fork number %d in '%c' message at input offset " UINT64_FORMAT,
						(uint8) raw[0], type, msg_offset)));
	tag.forkNum = (ForkNumber) (uint8) raw[0];
	tag.rnode.spcNode = get_be32(raw + 1);
	tag.rnode.dbNode = get_be32(raw + 5);
	tag.rnode.relNode = get_be32(raw + 9);
	tag.blockNum = get_be32(raw + 13);
	return tag;
}

/* ---------- the messages ---------- */

/* B: a new request. Forgets every page of the previous one. */
static void
begin_redo_for_block(uint64 msg_offset)
{
	BufferTag	tag = read_tag('B', msg_offset);

	for (int i = 0; i < n_opened_rels; i++)
		DropRelFileNodeAllLocalBuffers(opened_rels[i]);
	n_opened_rels = 0;
	smgrcloseall();				/* so the next smgropen of each relation is recorded again */

	target = tag;
	have_target = true;
}

/* P: the base image, straight into a local buffer for the P's tag (which is the B's in practice). */
static void
push_page(uint64 msg_offset)
{
	BufferTag	tag = read_tag('P', msg_offset);
	Buffer		buf;

	buf = ReadBufferWithoutRelcache(tag.rnode, tag.forkNum, tag.blockNum, RBM_ZERO_AND_LOCK, NULL, true);
	read_exact(BufferGetPage(buf), BLCKSZ, 'P', msg_offset);
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
}

/* Names the record being replayed in any error it raises. */
static void
redo_error_callback(void *arg)
{
	XLogReaderState *r = (XLogReaderState *) arg;

	errcontext("WAL redo of a %s record ending at %X/%X for block %u/%u/%u fork %d blk %u",
			   GetRmgr(XLogRecGetRmid(r)).rm_name, LSN_FORMAT_ARGS(r->EndRecPtr),
			   target.rnode.spcNode, target.rnode.dbNode, target.rnode.relNode,
			   target.forkNum, target.blockNum);
}

/* A: end_lsn, then one WAL record exactly as it is in the WAL (header, block references, data). */
static void
apply_record(uint32 len, uint64 msg_offset)
{
	char		lsn_raw[LSN_BYTES];
	XLogRecPtr	end_lsn;
	size_t		rec_len = len - LEN_APPLY_MIN;
	XLogRecord *rec;
	pg_crc32c	crc;
	DecodedXLogRecord *decoded;
	char	   *errormsg;
	ErrorContextCallback errcallback;

	read_exact(lsn_raw, LSN_BYTES, 'A', msg_offset);
	end_lsn = get_be64(lsn_raw);
	if (rec_len < SizeOfXLogRecord)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("'A' message at input offset " UINT64_FORMAT " carries %zu record bytes, fewer than a WAL record header (%zu)",
						msg_offset, rec_len, (size_t) SizeOfXLogRecord)));

	/* MAXALIGNed, as DecodeXLogRecord expects; up to 1 GiB, hence HUGE. */
	rec = palloc_extended(rec_len, MCXT_ALLOC_HUGE);
	read_exact(rec, rec_len, 'A', msg_offset);
	if (rec->xl_tot_len != rec_len)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("WAL record in 'A' message at input offset " UINT64_FORMAT " says it is %u bytes long, the message carries %zu",
						msg_offset, rec->xl_tot_len, rec_len)));

	/* The CRC check ValidXLogRecord() makes when reading WAL: data first, then the header up to xl_crc. */
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, ((char *) rec) + SizeOfXLogRecord, rec_len - SizeOfXLogRecord);
	COMP_CRC32C(crc, (char *) rec, offsetof(XLogRecord, xl_crc));
	FIN_CRC32C(crc);
	if (!EQ_CRC32C(rec->xl_crc, crc))
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("incorrect CRC in WAL record ending at %X/%X ('A' message at input offset " UINT64_FORMAT ")",
						LSN_FORMAT_ARGS(end_lsn), msg_offset)));
	if (!RmgrIdExists(rec->xl_rmid))
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("WAL record ending at %X/%X has resource manager id %u, which this postgres does not have",
						LSN_FORMAT_ARGS(end_lsn), rec->xl_rmid)));

	decoded = palloc_extended(DecodeXLogRecordRequiredSpace(rec_len), MCXT_ALLOC_HUGE);
	decoded->oversized = false;
	/* The record's start LSN is not on the wire; nothing on the page-redo path reads it. */
	if (!DecodeXLogRecord(reader, decoded, rec, InvalidXLogRecPtr, &errormsg))
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decode WAL record ending at %X/%X: %s",
						LSN_FORMAT_ARGS(end_lsn), errormsg)));

	/*
	 * Page redo changes pages through block references. A record with none (checkpoint, commit, relation
	 * create or truncate, ...) would reach code that expects shared memory or files this process does not
	 * have; the pageserver has no reason to send one, so it is an error here rather than a crash.
	 */
	if (decoded->max_block_id < 0)
		ereport(FATAL,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("WAL record ending at %X/%X (%s, info 0x%02X) references no block: it is not page redo",
						LSN_FORMAT_ARGS(end_lsn), GetRmgr(rec->xl_rmid).rm_name, rec->xl_info)));

	/* What XLogReadBufferForRedo compares page LSNs with, and what it stamps on pages it changes. */
	reader->ReadRecPtr = InvalidXLogRecPtr;
	reader->EndRecPtr = end_lsn;
	reader->record = decoded;

	errcallback.callback = redo_error_callback;
	errcallback.arg = reader;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	GetRmgr(rec->xl_rmid).rm_redo(reader);

	error_context_stack = errcallback.previous;
	reader->record = NULL;
}

/* G: the page for the G's tag as it is now. A page no P and no record produced is all zeros. */
static void
get_page(uint64 msg_offset)
{
	BufferTag	tag = read_tag('G', msg_offset);
	Buffer		buf;

	buf = ReadBufferWithoutRelcache(tag.rnode, tag.forkNum, tag.blockNum, RBM_NORMAL, NULL, true);
	write_stdout(BufferGetPage(buf), BLCKSZ);
	ReleaseBuffer(buf);
}

/* H: 8192 zero bytes. */
static void
ping(void)
{
	static const PGAlignedBlock zeros;

	write_stdout(zeros.data, BLCKSZ);
}

/* ---------- the message loop ---------- */

static const char *
message_name(char type)
{
	switch (type)
	{
		case 'B':
			return "BeginRedoForBlock";
		case 'P':
			return "PushPage";
		case 'A':
			return "ApplyRecord";
		case 'G':
			return "GetPage";
		default:
			return "Ping";
	}
}

static void
check_length(char type, uint32 len, uint64 msg_offset)
{
	bool		ok;
	const char *expected;

	switch (type)
	{
		case 'B':
		case 'G':
			ok = len == LEN_TAG_MSG;
			expected = "21";
			break;
		case 'P':
			ok = len == LEN_PUSH_PAGE;
			expected = "8213";
			break;
		case 'H':
			ok = len == LEN_PING;
			expected = "4";
			break;
		default:				/* 'A' */
			ok = len >= LEN_APPLY_MIN && len <= LEN_APPLY_MAX;
			expected = "12 to 1073741836";
			break;
	}
	if (!ok)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid message length %u for '%c' (%s) message at input offset " UINT64_FORMAT ": expected %s",
						len, type, message_name(type), msg_offset, expected)));
	if (type != 'B' && type != 'H' && !have_target)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("'%c' (%s) message at input offset " UINT64_FORMAT " before any BeginRedoForBlock ('B')",
						type, message_name(type), msg_offset)));
}

static void pg_attribute_noreturn()
message_loop(void)
{
	MemoryContextSwitchTo(MessageContext);
	for (;;)
	{
		uint64		msg_offset = in_offset;
		char		type;
		char		len_raw[LEN_FIELD_BYTES];
		uint32		len;

		MemoryContextReset(MessageContext);

		if (in_pos == in_len && !fill_input())
		{
			ereport(DEBUG1, (errmsg_internal("EOF on stdin, exiting")));
			proc_exit(0);
		}
		type = in_buf[in_pos++];
		in_offset++;
		if (type != 'B' && type != 'P' && type != 'A' && type != 'G' && type != 'H')
			ereport(FATAL,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("invalid frontend message type %d at input offset " UINT64_FORMAT,
							(int) (uint8) type, msg_offset)));
		read_exact(len_raw, LEN_FIELD_BYTES, type, msg_offset);
		len = get_be32(len_raw);
		check_length(type, len, msg_offset);

		switch (type)
		{
			case 'B':
				begin_redo_for_block(msg_offset);
				break;
			case 'P':
				push_page(msg_offset);
				break;
			case 'A':
				apply_record(len, msg_offset);
				break;
			case 'G':
				get_page(msg_offset);
				break;
			case 'H':
				ping();
				break;
		}
	}
}

/* ---------- startup ---------- */

/*
 * postgres refuses to run as root, and WAL from a tenant is untrusted input to a large C parser: a redo
 * routine that a crafted record drives out of bounds must not hand root to whoever wrote that record. So a
 * walredo process started as root becomes `user` (default nobody, never uid 0) for good before it parses
 * any input; started as anyone else it stays who it is. Real and effective uid must agree either way, as
 * check_root() requires of every postgres.
 *
 * Two steps: lookup_run_as() at start-up (the user database needs files, so before seccomp; every refusal
 * happens here), and drop_root() once the first bytes of input have arrived, before they are parsed. The
 * wait is for the supervisor: it sets the child's resource limits (prlimit), oom_score_adj and cgroup right
 * after posix_spawn returns and before it writes the first request, and a kernel without CAP_SYS_RESOURCE
 * lets it prlimit() only a process whose uids are still its own. Switching at once raced with that (EPERM,
 * a failed spawn, now and then under load); switching after the first read cannot, since the first request
 * is written only after the limits are set. Nothing is parsed as root: the bytes wait in in_buf.
 */
static struct passwd run_as_user;
static bool run_as_pending = false;

static void
lookup_run_as(const char *user)
{
	struct passwd *pw;
	int			lookup_errno;

	if (getuid() != geteuid())
		ereport(FATAL,
				(errmsg("real and effective user ids must match (uid %d, euid %d)",
						(int) getuid(), (int) geteuid())));
	if (geteuid() != 0)
		return;

	errno = 0;
	pw = getpwnam(user);
	lookup_errno = errno;		/* ereport() forbids reading errno inside it */
	if (pw == NULL)
		ereport(FATAL,
				(errmsg("started as root and cannot switch to user \"%s\": %s", user,
						lookup_errno != 0 ? strerror(lookup_errno) : "no such user"),
				 errhint("Run it as an unprivileged user, or name one with --run-as USER.")));
	if (pw->pw_uid == 0)
		ereport(FATAL,
				(errmsg("refusing to replay WAL as root: --run-as user \"%s\" has uid 0", user)));
	run_as_user = *pw;
	run_as_user.pw_name = pstrdup(pw->pw_name);
	run_as_pending = true;
}

/* Becomes the user lookup_run_as() found, if it found one (started as root); see there for when. */
static void
drop_root(void)
{
	const struct passwd *pw = &run_as_user;
	const char *user = run_as_user.pw_name;

	if (!run_as_pending)
		return;
	run_as_pending = false;
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		ereport(FATAL,
				(errmsg("started as root and could not switch to user \"%s\" (uid %u): %m",
						user, (unsigned) pw->pw_uid)));
	if (setuid(0) == 0)
		ereport(FATAL,
				(errmsg("switched to user \"%s\" but could become root again", user)));
	ereport(LOG,
			(errmsg("started as root: switched to user \"%s\" (uid %u, gid %u) before parsing any input",
					user, (unsigned) pw->pw_uid, (unsigned) pw->pw_gid)));
}

/* What the command line asks for. */
typedef struct WalRedoArgs
{
	const char *tenant;			/* --tenant-shard-id, NULL if absent */
	const char *run_as;			/* --run-as, default DEFAULT_RUN_AS */
	bool		seccomp;		/* false with --disable-seccomp */
	bool		seccomp_test_violation; /* --seccomp-test-violation: see enter_seccomp() */
} WalRedoArgs;

#define USAGE "Usage: postgres --wal-redo [--tenant-shard-id ID] [--run-as USER] [--disable-seccomp]"

/* argv: --wal-redo [--tenant-shard-id ID] [--run-as USER] [--disable-seccomp] [--seccomp-test-violation]. */
static WalRedoArgs
parse_args(int argc, char *argv[])
{
	WalRedoArgs args = {.tenant = NULL,.run_as = DEFAULT_RUN_AS,.seccomp = true,.seccomp_test_violation = false};

	for (int i = 2; i < argc; i++)
	{
		if (strcmp(argv[i], "--tenant-shard-id") == 0 && i + 1 < argc)
			args.tenant = argv[++i];
		else if (strcmp(argv[i], "--run-as") == 0 && i + 1 < argc)
			args.run_as = argv[++i];
		else if (strcmp(argv[i], "--disable-seccomp") == 0)
			args.seccomp = false;
		else if (strcmp(argv[i], "--seccomp-test-violation") == 0)
			args.seccomp_test_violation = true;
		else
			ereport(FATAL,
					(errmsg("invalid argument \"%s\"", argv[i]),
					 errhint(USAGE)));
	}
	return args;
}

/*
 * ---------- seccomp ----------
 *
 * WAL from a tenant is untrusted input to a large C parser, and dropping root (above) still leaves a
 * hijacked process everything `nobody` may do: open world-readable files, connect to the network, run
 * programs, signal or ptrace other processes of the same uid (other tenants' walredo processes). So, like
 * Neon's walredo process, this one confines itself with a seccomp-BPF allowlist once start-up is over and
 * before it reads the first request: after it, the process can only read its stdin, write its stdout and
 * stderr, manage its own memory and exit. A system call outside the list kills the whole process at once
 * (SECCOMP_RET_KILL_PROCESS: it dies of SIGSYS, with no FATAL line; see docs/real-postgres.md).
 *
 * Neon's filter (pgxn/neon_walredo) allows exit_group, read, write, select, pselect6, brk, mmap, munmap and
 * getpid, through libseccomp, and traps violations with a SIGSYS handler. This one is raw BPF (no library)
 * and tighter where the arguments allow it: read only on fd 0, write only on fds 1 and 2, mmap only for
 * anonymous memory that is not executable. It allows no select (this loop blocks in read) and adds what
 * glibc itself may call on the paths this process takes: mremap and madvise (realloc and free of large
 * chunks), clock_gettime and gettimeofday (log line timestamps, when the vDSO falls back to the kernel),
 * rt_sigreturn (returning from any signal handler) and, so that a PANIC in a redo routine dies of SIGABRT
 * as in any postgres rather than of SIGSYS, what abort() does: rt_sigprocmask, gettid, getpid and
 * tgkill(own pid, any thread, SIGABRT).
 *
 * Arguments: seccomp sees each argument as 64 bits; the filter compares the low 32 bits, which is what the
 * kernel itself uses for an fd (unsigned int), a pid and a signal number, and where PROT_EXEC and
 * MAP_ANONYMOUS live. Both architectures handled here are little-endian, so the low half is at the
 * argument's offset.
 */
#if defined(__x86_64__)
#define WALREDO_AUDIT_ARCH AUDIT_ARCH_X86_64
#define WALREDO_ARCH_NAME "x86_64"
#elif defined(__aarch64__) && defined(__AARCH64EL__)
#define WALREDO_AUDIT_ARCH AUDIT_ARCH_AARCH64
#define WALREDO_ARCH_NAME "aarch64"
#endif

#ifdef WALREDO_AUDIT_ARCH

/*
 * Room for the program build_filter() writes: 6 instructions of header, 2n + 3 per rule with n argument
 * conditions, 1 at the end; 72 in all today.
 */
#define MAX_FILTER_INSNS 256

typedef struct FilterBuilder
{
	struct sock_filter insns[MAX_FILTER_INSNS];
	int			n;
	int			allowed;		/* how many allow rules, for the log line */
} FilterBuilder;

/* A condition on one argument: its low 32 bits equal k, or have none of the bits of k, or some of them. */
typedef enum ArgTest
{
	ARG_EQ,
	ARG_BITS_CLEAR,
	ARG_BITS_SET
} ArgTest;

typedef struct ArgCond
{
	int			arg;
	ArgTest		test;
	uint32		k;
} ArgCond;

static void
emit(FilterBuilder *f, uint16 code, uint8 jt, uint8 jf, uint32 k)
{
	if (f->n >= MAX_FILTER_INSNS)
		elog(FATAL, "seccomp filter program too long");
	f->insns[f->n++] = (struct sock_filter) BPF_JUMP(code, k, jt, jf);
}

#define LOAD_NR(f) emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr))
#define LOAD_ARG_LO(f, i) \
	emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, args) + (i) * sizeof(uint64))

/*
 * One rule: "nr, and every condition holds: allow". A call that is not nr, or fails a condition, falls
 * through to the next rule; after the last rule comes "kill". Layout (n conditions, 2n + 3 instructions):
 *   0       A = nr
 *   1       if A != nr goto next rule
 *   2+2c    A = low half of the argument of condition c
 *   3+2c    if condition c fails goto next rule
 *   2n+2    allow
 */
static void
allow_if(FilterBuilder *f, int nr, const ArgCond *conds, int n)
{
	LOAD_NR(f);
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8) (2 * n + 1), (uint32) nr);
	for (int c = 0; c < n; c++)
	{
		uint8		to_next = (uint8) (2 * n - 2 * c - 1);

		LOAD_ARG_LO(f, conds[c].arg);
		switch (conds[c].test)
		{
			case ARG_EQ:
				emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, to_next, conds[c].k);
				break;
			case ARG_BITS_CLEAR:
				emit(f, BPF_JMP | BPF_JSET | BPF_K, to_next, 0, conds[c].k);
				break;
			case ARG_BITS_SET:
				emit(f, BPF_JMP | BPF_JSET | BPF_K, 0, to_next, conds[c].k);
				break;
		}
	}
	emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
	f->allowed++;
}

#define ALLOW(f, nr) allow_if(f, nr, NULL, 0)
#define ALLOW_IF(f, nr, ...) \
	do { \
		const ArgCond conds_[] = {__VA_ARGS__}; \
		allow_if(f, nr, conds_, lengthof(conds_)); \
	} while (0)

static void
build_filter(FilterBuilder *f)
{
	uint32		pid = (uint32) getpid();

	f->n = 0;
	f->allowed = 0;

	/* Another architecture's calling convention (or numbering) must not reach the rules: kill. */
	emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, WALREDO_AUDIT_ARCH);
	emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
#ifdef __x86_64__
	/* x32 system calls have the same arch value and numbers with bit 30 set: kill. */
	LOAD_NR(f);
	emit(f, BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000);
	emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
#endif

	/* The protocol loop, most frequent first: requests on stdin, pages on stdout, log lines on stderr. */
	ALLOW_IF(f, __NR_read, {0, ARG_EQ, STDIN_FILENO});
	ALLOW_IF(f, __NR_write, {0, ARG_EQ, STDOUT_FILENO});
	ALLOW_IF(f, __NR_write, {0, ARG_EQ, STDERR_FILENO});

	/* Memory: malloc (palloc, lz4 and zstd decompression) grows with brk, big chunks with mmap. */
	ALLOW(f, __NR_brk);
	ALLOW_IF(f, __NR_mmap, {2, ARG_BITS_CLEAR, PROT_EXEC}, {3, ARG_BITS_SET, MAP_ANONYMOUS});
	ALLOW(f, __NR_munmap);
	ALLOW(f, __NR_mremap);
	ALLOW(f, __NR_madvise);

	/* Log line timestamps, if the vDSO has to ask the kernel. */
	ALLOW(f, __NR_clock_gettime);
	ALLOW(f, __NR_gettimeofday);

	/* Signals: returning from a handler; abort() on PANIC (unblock SIGABRT, raise it on ourselves). */
	ALLOW(f, __NR_rt_sigreturn);
	ALLOW(f, __NR_rt_sigprocmask);
	ALLOW(f, __NR_getpid);
	ALLOW(f, __NR_gettid);
	ALLOW_IF(f, __NR_tgkill, {0, ARG_EQ, pid}, {2, ARG_EQ, SIGABRT});

	/* The end: proc_exit() and exit(). */
	ALLOW(f, __NR_exit_group);
	ALLOW(f, __NR_exit);

	emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
}

#endif							/* WALREDO_AUDIT_ARCH */

/*
 * Installs the filter for good (it cannot be lifted, and every child would inherit it, though none can be
 * made). Called last in start-up: everything that opens files (pg_control, locale data, the user
 * database for --run-as) has been done, and everything allocated up front has been.
 *
 * --seccomp-test-violation is a test hook for postgres/smoke.py, kept in every build: right after the
 * filter is on, the process calls open() once, a call the filter forbids, so it must die of SIGSYS before
 * it reads a byte. It can only ever make this process die (with --disable-seccomp, open() works, is logged,
 * and the process goes on), so it gives nothing to whoever controls the command line.
 */
static void
enter_seccomp(const WalRedoArgs *args)
{
	if (args->seccomp)
	{
#ifdef WALREDO_AUDIT_ARCH
		static FilterBuilder filter;	/* static: 2 KiB that need not be on the stack */
		struct sock_fprog prog;

		build_filter(&filter);
		prog.len = (unsigned short) filter.n;
		prog.filter = filter.insns;

		/* Required of an unprivileged process; also keeps set-uid programs from gaining anything. */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			ereport(FATAL,
					(errmsg("could not set no_new_privs before entering seccomp: %m"),
					 errhint("Start with --disable-seccomp to run without the system call filter.")));
		if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
			ereport(FATAL,
					(errmsg("could not install the seccomp filter: %m"),
					 errhint("The kernel may lack seccomp filters (CONFIG_SECCOMP_FILTER), or a container runtime forbids them; start with --disable-seccomp to run without the system call filter.")));
		ereport(LOG,
				(errmsg("seccomp filter on (%s): %d system call rules, anything else kills the process",
						WALREDO_ARCH_NAME, filter.allowed)));
#else
		ereport(FATAL,
				(errmsg("this walredo build has no seccomp filter for this architecture (only x86_64 and aarch64)"),
				 errhint("Start with --disable-seccomp to run without the system call filter.")));
#endif
	}
	else
		ereport(LOG, (errmsg("seccomp filter off (--disable-seccomp)")));

	if (args->seccomp_test_violation)
	{
		int			fd = open("/dev/null", O_RDONLY);	/* killed here when the filter is on */

		ereport(LOG,
				(errmsg("--seccomp-test-violation: open() returned %d, the process was not killed", fd)));
		if (fd >= 0)
			close(fd);
	}
}

void
WalRedoMain(int argc, char *argv[])
{
	WalRedoArgs args;

	InWalRedoMode = true;
	InitProcessGlobals();
	InitializeGUCOptions();
	SetConfigOption("log_min_messages", "log", PGC_POSTMASTER, PGC_S_ARGV);
	SetConfigOption("temp_buffers", WALREDO_LOCAL_BUFFERS, PGC_POSTMASTER, PGC_S_ARGV);

	args = parse_args(argc, argv);
	lookup_run_as(args.run_as);

	/* A closed stdout becomes EPIPE and a FATAL line, as in a backend, not a silent SIGPIPE death. */
	pqsignal(SIGPIPE, SIG_IGN);

	/*
	 * main.c took LC_MESSAGES from the environment. postgres itself is built without NLS, but glibc would
	 * translate strerror() texts (%m) and load its message catalog from a file on first use, which, under
	 * seccomp, would be the first error report: keep libc's messages untranslated, as postgres's are.
	 */
	setlocale(LC_MESSAGES, "C");

	WalRedoUseEmptyControlFile();
	InRecovery = true;			/* redo routines assume it */
	SetProcessingMode(NormalProcessing);
	MessageContext = AllocSetContextCreate(TopMemoryContext, "MessageContext", ALLOCSET_DEFAULT_SIZES);
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "walredo");	/* holds buffer pins */
	RmgrStartup();
	reader = XLogReaderAllocate(wal_segment_size, NULL, XL_ROUTINE(.page_read = NULL), NULL);
	if (reader == NULL)
		ereport(FATAL, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory allocating a WAL reader")));

	/*
	 * Last in start-up: wait for the first bytes of input (EOF before any is a normal exit), then drop root
	 * (see lookup_run_as for why only now) and confine the process; message_loop() starts on the buffered bytes.
	 */
	if (!fill_input())
	{
		ereport(DEBUG1, (errmsg_internal("EOF on stdin before any request, exiting")));
		proc_exit(0);
	}
	drop_root();
	enter_seccomp(&args);

	ereport(DEBUG1, (errmsg_internal("walredo ready for tenant %s", args.tenant ? args.tenant : "(none)")));
	message_loop();
}

bool
WalRedoIsTargetBlock(RelFileNode rnode, ForkNumber forknum, BlockNumber blkno)
{
	return have_target && RelFileNodeEquals(rnode, target.rnode) && forknum == target.forkNum &&
		blkno == target.blockNum;
}

/*
 * ---------- the storage manager ----------
 *
 * Stores nothing: see "Where a page lives" at the top. Called from smgr.c when InWalRedoMode.
 */

void
walredo_smgr_open(SMgrRelation reln)
{
	if (n_opened_rels == max_opened_rels)
	{
		int			n = Max(16, max_opened_rels * 2);

		opened_rels = opened_rels == NULL
			? MemoryContextAlloc(TopMemoryContext, n * sizeof(RelFileNode))
			: repalloc(opened_rels, n * sizeof(RelFileNode));
		max_opened_rels = n;
	}
	opened_rels[n_opened_rels++] = reln->smgr_rnode.node;
}

void
walredo_smgr_close(SMgrRelation reln, ForkNumber forknum)
{
}

void
walredo_smgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo)
{
}

bool
walredo_smgr_exists(SMgrRelation reln, ForkNumber forknum)
{
	return true;
}

void
walredo_smgr_unlink(RelFileNodeBackend rnode, ForkNumber forknum, bool isRedo)
{
}

void
walredo_smgr_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer,
					bool skipFsync)
{
	walredo_smgr_write(reln, forknum, blocknum, buffer, skipFsync);
}

bool
walredo_smgr_prefetch(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum)
{
	return false;
}

void
walredo_smgr_read(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer)
{
	MemSet(buffer, 0, BLCKSZ);
}

/* Only an evicted dirty buffer is ever written (nothing flushes); the target's must never be. */
void
walredo_smgr_write(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer,
				   bool skipFsync)
{
	if (WalRedoIsTargetBlock(reln->smgr_rnode.node, forknum, blocknum))
		ereport(FATAL,
				(errmsg("the page being reconstructed was evicted from the local buffers (more than %s pages touched by one request)",
						WALREDO_LOCAL_BUFFERS)));
}

void
walredo_smgr_writeback(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, BlockNumber nblocks)
{
}

/*
 * Every fork is as long as a fork can be, so XLogReadBufferExtended() never extends one (extending would
 * need a growing length) and reads every block it is asked for: a zeroed one where no P put a page.
 */
BlockNumber
walredo_smgr_nblocks(SMgrRelation reln, ForkNumber forknum)
{
	return MaxBlockNumber;
}

void
walredo_smgr_truncate(SMgrRelation reln, ForkNumber forknum, BlockNumber old_blocks, BlockNumber nblocks)
{
}

void
walredo_smgr_immedsync(SMgrRelation reln, ForkNumber forknum)
{
}
