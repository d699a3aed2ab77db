// SPDX-License-Identifier: Apache-2.0
/*
 * walredo.h: the `postgres --wal-redo` mode (walredo.c) and the hooks that postgres/walredo.patch adds to
 * PostgreSQL 15's core for it. scripts/build-postgres copies this file to src/include/tcop/walredo.h.
 */
#ifndef WALREDO_H
#define WALREDO_H

#include "common/relpath.h"
#include "storage/block.h"
#include "storage/relfilenode.h"
#include "storage/smgr.h"

/*
 * True only in a `postgres --wal-redo` process, from the start of WalRedoMain. Read by smgr.c (every
 * relation gets the in-memory storage manager below) and bufmgr.c (every buffer is a process-local buffer).
 */
extern PGDLLIMPORT bool InWalRedoMode;

/* Entered from main() when argv[1] is --wal-redo; never returns. */
extern void WalRedoMain(int argc, char *argv[]) pg_attribute_noreturn();

/*
 * xlogutils.c asks this for every block a redo routine reads through XLogReadBufferForRedoExtended: only the
 * block named by the last BeginRedoForBlock is replayed, every other block of the record is skipped.
 */
extern bool WalRedoIsTargetBlock(RelFileNode rnode, ForkNumber forknum, BlockNumber blkno);

/* Defined in xlog.c by the patch: gives this process a zeroed pg_control, so no data checksums. */
extern void WalRedoUseEmptyControlFile(void);

/* The storage manager of a walredo process: smgr.c's second entry. See walredo.c. */
extern void walredo_smgr_open(SMgrRelation reln);
extern void walredo_smgr_close(SMgrRelation reln, ForkNumber forknum);
extern void walredo_smgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo);
extern bool walredo_smgr_exists(SMgrRelation reln, ForkNumber forknum);
extern void walredo_smgr_unlink(RelFileNodeBackend rnode, ForkNumber forknum, bool isRedo);
extern void walredo_smgr_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
								char *buffer, bool skipFsync);
extern bool walredo_smgr_prefetch(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum);
extern void walredo_smgr_read(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
							  char *buffer);
extern void walredo_smgr_write(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
							   char *buffer, bool skipFsync);
extern void walredo_smgr_writeback(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
								   BlockNumber nblocks);
extern BlockNumber walredo_smgr_nblocks(SMgrRelation reln, ForkNumber forknum);
extern void walredo_smgr_truncate(SMgrRelation reln, ForkNumber forknum, BlockNumber old_blocks,
								  BlockNumber nblocks);
extern void walredo_smgr_immedsync(SMgrRelation reln, ForkNumber forknum);

#endif							/* WALREDO_H */
