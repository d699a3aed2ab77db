// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import io.walredo.internal.WireSizes;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One page to reconstruct: an optional base image and the WAL records to apply to it, up to a target LSN. It is
 * what Neon's {@code WalRedoManager::request_redo} takes, and it encodes to one B, optional P, A…, G exchange
 * with a sidecar.
 *
 * <p>Built with {@link #builder}, which checks every rule in {@link Builder#build()} and reports every broken
 * rule in one {@link IllegalArgumentException}. A built request is immutable and safe to share between threads:
 * the base image and the records are copied in, and no accessor exposes internal arrays. Builders are not
 * thread-safe.
 */
public final class RedoRequest {

    /** The oldest PostgreSQL major version Neon's walredo supports. */
    public static final int MIN_PG_VERSION = 14;

    /**
     * The largest accepted major version. Neon ships 14 to 17, but the manager maps versions to binaries, so a
     * newer major needs a configured binary rather than a library release; only nonsense is rejected here.
     */
    public static final int MAX_PG_VERSION = 99;

    /** The size a base image must have: one PostgreSQL page. */
    public static final int PAGE_BYTES = WireSizes.PAGE_BYTES;

    private final int pgVersion;
    private final BufferTag tag;
    private final Lsn lsn;
    private final Lsn baseLsn;
    private final byte[] baseImage;
    private final List<WalRecord> records;
    private final long recordBytes;
    private final int encodedSize;

    private RedoRequest(Builder b, List<WalRecord> records, long recordBytes, int encodedSize) {
        this.pgVersion = b.pgVersion;
        this.tag = b.tag;
        this.lsn = b.lsn;
        this.baseLsn = b.baseLsn;
        this.baseImage = b.baseImage;
        this.records = records;
        this.recordBytes = recordBytes;
        this.encodedSize = encodedSize;
    }

    /**
     * Starts a request for page {@code tag} as of {@code lsn}.
     *
     * @param pgVersion the PostgreSQL major version whose redo binary must apply the records
     * @param tag the page
     * @param lsn the target LSN: the page is wanted as of this position
     * @return a builder; add records and optionally a base image, then {@link Builder#build()}
     * @throws NullPointerException if {@code tag} or {@code lsn} is null
     */
    public static Builder builder(int pgVersion, BufferTag tag, Lsn lsn) {
        return new Builder(pgVersion, tag, lsn);
    }

    /**
     * Returns the PostgreSQL major version.
     *
     * @return {@link #MIN_PG_VERSION} to {@link #MAX_PG_VERSION}
     */
    public int pgVersion() {
        return pgVersion;
    }

    /**
     * Returns the page to reconstruct.
     *
     * @return the tag sent in B, P and G
     */
    public BufferTag tag() {
        return tag;
    }

    /**
     * Returns the target LSN.
     *
     * @return the LSN the page is wanted as of; at or after the last record's end
     */
    public Lsn lsn() {
        return lsn;
    }

    /**
     * Tells whether the request carries a base image (a PushPage message).
     *
     * @return {@code true} if {@link #baseImage()} is present
     */
    public boolean hasBaseImage() {
        return baseImage != null;
    }

    /**
     * Returns the LSN of the base image.
     *
     * @return the LSN the base image is as of; empty without a base image
     */
    public Optional<Lsn> baseLsn() {
        return Optional.ofNullable(baseLsn);
    }

    /**
     * Returns a copy of the base image; use {@link #writeBaseImageTo} to avoid the copy.
     *
     * @return a new {@link #PAGE_BYTES}-byte array, or empty without a base image
     */
    public Optional<byte[]> baseImage() {
        return baseImage == null ? Optional.empty() : Optional.of(baseImage.clone());
    }

    /**
     * Puts the {@link #PAGE_BYTES}-byte base image at {@code dst}'s position and advances it.
     *
     * @param dst the buffer
     * @throws IllegalStateException if the request has no base image
     * @throws java.nio.BufferOverflowException if fewer than {@link #PAGE_BYTES} bytes remain
     */
    public void writeBaseImageTo(ByteBuffer dst) {
        if (baseImage == null) {
            throw new IllegalStateException("request for " + tag + " has no base image");
        }
        dst.put(baseImage);
    }

    /**
     * Returns the records in application order.
     *
     * @return an unmodifiable, random-access list; end LSNs strictly increase
     */
    public List<WalRecord> records() {
        return records;
    }

    /**
     * Returns the number of records.
     *
     * @return at least 1
     */
    public int recordCount() {
        return records.size();
    }

    /**
     * Returns the sum of the record lengths, without framing.
     *
     * @return the record bytes
     */
    public long recordBytes() {
        return recordBytes;
    }

    /**
     * Returns the number of bytes the request occupies on the wire, as written by the protocol codec.
     *
     * @return at most {@code Integer.MAX_VALUE}, so the request fits in one {@link ByteBuffer}
     */
    public int encodedSize() {
        return encodedSize;
    }

    /**
     * Describes the request the way Neon logs one, without its bytes.
     *
     * @return for example {@code RedoRequest[pg14 rel 1663/13010/1259 fork 0 blk 0 at 0/16E2408, no base image,
     *     2 records 0/16A9388..0/16D4080 (1062 bytes)]}
     */
    @Override
    public String toString() {
        return "RedoRequest[pg" + pgVersion + " " + tag + " at " + lsn
                + (baseImage == null ? ", no base image, " : ", base image at " + baseLsn + ", ")
                + records.size() + (records.size() == 1 ? " record " : " records ")
                + records.get(0).endLsn() + ".."
                + records.get(records.size() - 1).endLsn()
                + " (" + recordBytes + " bytes)]";
    }

    /**
     * Collects the parts of a {@link RedoRequest}. Not thread-safe; {@link #build()} may be called more than once
     * and each result is independent of later changes to the builder.
     */
    public static final class Builder {

        private final int pgVersion;
        private final BufferTag tag;
        private final Lsn lsn;
        private Lsn baseLsn;
        private byte[] baseImage;
        private final ArrayList<WalRecord> records = new ArrayList<>();

        private Builder(int pgVersion, BufferTag tag, Lsn lsn) {
            this.pgVersion = pgVersion;
            this.tag = Objects.requireNonNull(tag, "tag");
            this.lsn = Objects.requireNonNull(lsn, "lsn");
        }

        /**
         * Sets the page image the records apply to, replacing any earlier one. Without one the first record must
         * initialise the page, or the redo process starts from a zeroed page.
         *
         * @param baseLsn the LSN the image is as of; before the first record's end
         * @param page8192 the image, {@link #PAGE_BYTES} bytes (checked in {@link #build()}); copied
         * @return this builder
         * @throws NullPointerException if an argument is null
         */
        public Builder baseImage(Lsn baseLsn, byte[] page8192) {
            Objects.requireNonNull(baseLsn, "baseLsn");
            Objects.requireNonNull(page8192, "baseImage");
            this.baseLsn = baseLsn;
            this.baseImage = page8192.clone();
            return this;
        }

        /**
         * Appends a record; records are applied in the order added.
         *
         * @param record the record
         * @return this builder
         * @throws NullPointerException if {@code record} is null
         */
        public Builder addRecord(WalRecord record) {
            records.add(Objects.requireNonNull(record, "record"));
            return this;
        }

        /**
         * Appends records in the collection's iteration order.
         *
         * @param more the records
         * @return this builder
         * @throws NullPointerException if {@code more} or one of its elements is null; then nothing is added
         */
        public Builder addRecords(Collection<WalRecord> more) {
            Objects.requireNonNull(more, "records");
            List<WalRecord> copy = new ArrayList<>(more);
            for (int i = 0; i < copy.size(); i++) {
                Objects.requireNonNull(copy.get(i), "records[" + i + "]");
            }
            records.addAll(copy);
            return this;
        }

        /**
         * Checks every rule and returns the request.
         *
         * @return the immutable request
         * @throws IllegalArgumentException listing every broken rule: pgVersion outside
         *     {@link #MIN_PG_VERSION}..{@link #MAX_PG_VERSION}; a base image not {@link #PAGE_BYTES} long; no
         *     records; record end LSNs not strictly increasing; base image LSN not before the first record's end;
         *     last record's end after the target lsn; encoded size above {@code Integer.MAX_VALUE}
         */
        public RedoRequest build() {
            List<String> problems = new ArrayList<>();
            if (pgVersion < MIN_PG_VERSION || pgVersion > MAX_PG_VERSION) {
                problems.add("pgVersion " + pgVersion + " is outside " + MIN_PG_VERSION + ".." + MAX_PG_VERSION);
            }
            if (baseImage != null && baseImage.length != PAGE_BYTES) {
                problems.add("baseImage is " + baseImage.length + " bytes; a page is " + PAGE_BYTES);
            }
            List<WalRecord> recs = List.copyOf(records);
            long bytes = 0;
            if (recs.isEmpty()) {
                problems.add("records is empty; a request needs at least one record");
            } else {
                // Report only the first ordering violation: one misplaced record among millions must not make
                // a message of millions of lines.
                for (int i = 1; i < recs.size(); i++) {
                    Lsn prev = recs.get(i - 1).endLsn();
                    Lsn cur = recs.get(i).endLsn();
                    if (cur.compareTo(prev) <= 0) {
                        problems.add("records[" + i + "].endLsn " + cur + " is not after records[" + (i - 1)
                                + "].endLsn " + prev + "; end LSNs must strictly increase");
                        break;
                    }
                }
                Lsn first = recs.get(0).endLsn();
                if (baseLsn != null && baseLsn.compareTo(first) >= 0) {
                    problems.add("baseLsn " + baseLsn + " is not before records[0].endLsn " + first);
                }
                Lsn last = recs.get(recs.size() - 1).endLsn();
                if (last.compareTo(lsn) > 0) {
                    problems.add(
                            "records[" + (recs.size() - 1) + "].endLsn " + last + " is after the target lsn " + lsn);
                }
                for (int i = 0; i < recs.size(); i++) {
                    bytes += recs.get(i).length();
                }
            }
            long size = WireSizes.encodedSize(baseImage != null, recs.size(), bytes);
            if (size > WireSizes.MAX_ENCODED_BYTES) {
                problems.add("encoded size " + size + " bytes exceeds " + WireSizes.MAX_ENCODED_BYTES
                        + " (one ByteBuffer); split the records over several requests, each using the previous"
                        + " result as its base image");
            }
            if (!problems.isEmpty()) {
                throw new IllegalArgumentException(
                        "invalid redo request for " + tag + " at " + lsn + ": " + String.join("; ", problems));
            }
            return new RedoRequest(this, recs, bytes, (int) size);
        }
    }
}
