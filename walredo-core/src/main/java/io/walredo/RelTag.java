// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/**
 * Identifies one fork of one PostgreSQL relation, as PostgreSQL's {@code RelFileNode} plus {@code ForkNumber}
 * and Neon's {@code RelTag}.
 *
 * <p>The three oids are unsigned 32-bit values held in a {@code long} so that oids above 2^31 stay positive.
 *
 * @param spcNode tablespace oid, 0 to 0xFFFFFFFF
 * @param dbNode database oid, 0 to 0xFFFFFFFF (0 for shared relations)
 * @param relNode relation file node, 0 to 0xFFFFFFFF
 * @param forkNum fork number, {@link #MAIN_FORKNUM} to {@link #INIT_FORKNUM}
 */
public record RelTag(long spcNode, long dbNode, long relNode, int forkNum) {

    /** The main data fork ({@code MAIN_FORKNUM} in PostgreSQL's {@code common/relpath.h}). */
    public static final int MAIN_FORKNUM = 0;
    /** The free space map fork ({@code FSM_FORKNUM}). */
    public static final int FSM_FORKNUM = 1;
    /** The visibility map fork ({@code VISIBILITYMAP_FORKNUM}). */
    public static final int VISIBILITYMAP_FORKNUM = 2;
    /** The init fork of unlogged relations ({@code INIT_FORKNUM}, PostgreSQL's {@code MAX_FORKNUM}). */
    public static final int INIT_FORKNUM = 3;

    /** Largest oid: oids are {@code uint32} in PostgreSQL and on the wire. */
    public static final long MAX_OID = 0xFFFF_FFFFL;

    /**
     * Validates the fields.
     *
     * @throws IllegalArgumentException if an oid is outside 0..0xFFFFFFFF or {@code forkNum} outside 0..3
     */
    public RelTag {
        checkOid("spcNode", spcNode);
        checkOid("dbNode", dbNode);
        checkOid("relNode", relNode);
        if (forkNum < MAIN_FORKNUM || forkNum > INIT_FORKNUM) {
            throw new IllegalArgumentException("forkNum " + forkNum + " is not a PostgreSQL fork number; expected "
                    + MAIN_FORKNUM + " (main) to " + INIT_FORKNUM + " (init)");
        }
    }

    private static void checkOid(String field, long oid) {
        if (oid < 0 || oid > MAX_OID) {
            throw new IllegalArgumentException(
                    field + " " + oid + " is not an unsigned 32-bit oid; expected 0 to " + MAX_OID);
        }
    }

    /**
     * Returns {@code spc/db/rel fork N}, the path-like form PostgreSQL and Neon log.
     *
     * @return for example {@code 1663/13010/1259 fork 0}
     */
    @Override
    public String toString() {
        return spcNode + "/" + dbNode + "/" + relNode + " fork " + forkNum;
    }
}
