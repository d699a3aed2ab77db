// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.util.Objects;

/**
 * Identifies one 8 KiB page: a relation fork and a block number, as PostgreSQL's {@code BufferTag}.
 * It is what the walredo process redoes and what its answer page is for.
 *
 * @param rel the relation fork
 * @param blockNumber the block, 0 to {@link #MAX_BLOCK_NUMBER}
 */
public record BufferTag(RelTag rel, long blockNumber) {

    /**
     * PostgreSQL's {@code InvalidBlockNumber}; it never names a page, so it is rejected rather than sent to a
     * sidecar that would fail on it.
     */
    public static final long INVALID_BLOCK_NUMBER = 0xFFFF_FFFFL;

    /** The largest block number that names a page ({@code MaxBlockNumber}). */
    public static final long MAX_BLOCK_NUMBER = 0xFFFF_FFFEL;

    /**
     * Validates the fields.
     *
     * @throws NullPointerException if {@code rel} is null
     * @throws IllegalArgumentException if {@code blockNumber} is outside 0..0xFFFFFFFE
     */
    public BufferTag {
        Objects.requireNonNull(rel, "rel");
        if (blockNumber < 0 || blockNumber > MAX_BLOCK_NUMBER) {
            throw new IllegalArgumentException("blockNumber " + blockNumber
                    + " is not a valid block number; expected 0 to " + MAX_BLOCK_NUMBER
                    + (blockNumber == INVALID_BLOCK_NUMBER ? " (0xFFFFFFFF is PostgreSQL's InvalidBlockNumber)" : ""));
        }
    }

    /**
     * Returns the tag of block {@code blockNumber} of the given relation fork.
     *
     * @param spcNode tablespace oid
     * @param dbNode database oid
     * @param relNode relation file node
     * @param forkNum fork number
     * @param blockNumber block number
     * @return the tag
     * @throws IllegalArgumentException as {@link RelTag#RelTag} and {@link #BufferTag}
     */
    public static BufferTag of(long spcNode, long dbNode, long relNode, int forkNum, long blockNumber) {
        return new BufferTag(new RelTag(spcNode, dbNode, relNode, forkNum), blockNumber);
    }

    /**
     * Returns the compact form used in logs and error messages.
     *
     * @return for example {@code rel 1663/13010/1259 fork 0 blk 0}
     */
    @Override
    public String toString() {
        return "rel " + rel + " blk " + blockNumber;
    }
}
