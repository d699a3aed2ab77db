// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * One PostgreSQL WAL record to apply to a page: the record's bytes as they appear in the WAL and the LSN at
 * which it ends, which is what Neon's ApplyRecord message carries and what the redo process sets as the page
 * LSN.
 *
 * <p>Immutable and safe to share between threads: {@link #of} copies the bytes once and no method exposes the
 * internal array. This is a class rather than a record because a record would expose the array and compare it
 * by identity.
 */
public final class WalRecord {

    /**
     * The largest record, 1 GiB: PostgreSQL's {@code XLogRecordMaxSize} ({@code access/xlogrecord.h}); the
     * server never writes a larger one, so a larger one here is a caller's bug.
     */
    public static final int MAX_LENGTH = 1 << 30;

    private final Lsn endLsn;
    private final boolean willInit;
    private final byte[] data;

    private WalRecord(Lsn endLsn, boolean willInit, byte[] data) {
        this.endLsn = endLsn;
        this.willInit = willInit;
        this.data = data;
    }

    /**
     * Returns a record holding a copy of {@code data}.
     *
     * @param endLsn the LSN just past the record's end; must be valid (not 0/0)
     * @param willInit whether the record initialises the page from scratch (Neon's {@code will_init}), so that
     *     no base image is needed
     * @param data the record bytes, 1 to {@link #MAX_LENGTH}; copied, so later changes do not affect the record
     * @return the record
     * @throws NullPointerException if {@code endLsn} or {@code data} is null
     * @throws IllegalArgumentException if {@code endLsn} is 0/0 or the length is outside 1..{@link #MAX_LENGTH}
     */
    public static WalRecord of(Lsn endLsn, boolean willInit, byte[] data) {
        Objects.requireNonNull(endLsn, "endLsn");
        Objects.requireNonNull(data, "data");
        if (!endLsn.isValid()) {
            throw new IllegalArgumentException("endLsn " + endLsn + " is invalid; a WAL record cannot end at 0/0");
        }
        checkLength(data.length);
        return new WalRecord(endLsn, willInit, data.clone());
    }

    /** Separate so that tests can check the upper bound without allocating 1 GiB. */
    static void checkLength(int length) {
        if (length < 1 || length > MAX_LENGTH) {
            throw new IllegalArgumentException(
                    "data length " + length + " is outside 1.." + MAX_LENGTH + " (PostgreSQL's XLogRecordMaxSize)");
        }
    }

    /**
     * Returns the LSN just past the end of the record.
     *
     * @return the end LSN, never 0/0
     */
    public Lsn endLsn() {
        return endLsn;
    }

    /**
     * Tells whether the record initialises the page, making any earlier page content irrelevant.
     *
     * @return Neon's {@code will_init} flag
     */
    public boolean willInit() {
        return willInit;
    }

    /**
     * Returns the record's length in bytes.
     *
     * @return 1 to {@link #MAX_LENGTH}
     */
    public int length() {
        return data.length;
    }

    /**
     * Returns a copy of the record bytes; use {@link #writeDataTo} to avoid the copy.
     *
     * @return a new array the caller owns
     */
    public byte[] data() {
        return data.clone();
    }

    /**
     * Puts the record bytes at {@code dst}'s position and advances it by {@link #length()}.
     *
     * @param dst the buffer to write to
     * @throws java.nio.BufferOverflowException if fewer than {@link #length()} bytes remain in {@code dst}
     * @throws java.nio.ReadOnlyBufferException if {@code dst} is read-only
     */
    public void writeDataTo(ByteBuffer dst) {
        dst.put(data);
    }

    /**
     * Compares end LSN, {@code willInit} and the bytes.
     *
     * @param o the object to compare with
     * @return whether {@code o} is a record with the same content
     */
    @Override
    public boolean equals(Object o) {
        return o instanceof WalRecord r
                && endLsn.equals(r.endLsn)
                && willInit == r.willInit
                && Arrays.equals(data, r.data);
    }

    /**
     * Hashes the same content {@link #equals} compares; reads every byte, so it costs O(length).
     *
     * @return the hash code
     */
    @Override
    public int hashCode() {
        return (endLsn.hashCode() * 31 + Boolean.hashCode(willInit)) * 31 + Arrays.hashCode(data);
    }

    /**
     * Describes the record without its bytes.
     *
     * @return for example {@code WalRecord[endLsn=0/16A9388, willInit=true, length=874]}
     */
    @Override
    public String toString() {
        return "WalRecord[endLsn=" + endLsn + ", willInit=" + willInit + ", length=" + data.length + "]";
    }
}
