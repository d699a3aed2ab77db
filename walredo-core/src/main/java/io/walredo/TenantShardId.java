// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.util.Objects;

/**
 * Neon's {@code TenantShardId}: a 16-byte tenant id plus the shard's number and the tenant's shard count.
 *
 * <p>The text form is Neon's {@code Display}: 32 lowercase hex digits, then for a sharded tenant
 * ({@code shardCount > 0}) a suffix {@code -NNCC} with the shard number and count as two hex digits each. An
 * unsharded tenant (count 0, Neon's legacy {@code ShardCount(0)}) has no suffix. The manager passes this form to
 * each sidecar as {@code --tenant-shard-id}, so {@link #toString()} is canonical.
 *
 * @param tenantHi the tenant id's first 8 bytes, big-endian
 * @param tenantLo the tenant id's last 8 bytes, big-endian
 * @param shardNumber this shard's number, 0 to 255; below {@code shardCount}, or 0 when unsharded
 * @param shardCount the tenant's number of shards, 0 (unsharded) to 255
 */
public record TenantShardId(long tenantHi, long tenantLo, int shardNumber, int shardCount)
        implements Comparable<TenantShardId> {

    /** Hex digits of the tenant id. */
    private static final int TENANT_HEX_CHARS = 32;

    /** Length of the text form with a shard suffix: tenant, '-', two bytes in hex. */
    private static final int SHARDED_CHARS = TENANT_HEX_CHARS + 1 + 4;

    /** Neon stores shard number and count as {@code u8}. */
    private static final int MAX_SHARD_FIELD = 0xFF;

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    /**
     * Validates the shard fields.
     *
     * @throws IllegalArgumentException if {@code shardNumber} or {@code shardCount} is outside 0..255, if
     *     {@code shardNumber >= shardCount} for a sharded tenant, or if {@code shardNumber != 0} when unsharded
     */
    public TenantShardId {
        if (shardCount < 0 || shardCount > MAX_SHARD_FIELD) {
            throw new IllegalArgumentException("shardCount " + shardCount + " is outside 0..255");
        }
        if (shardNumber < 0 || shardNumber > MAX_SHARD_FIELD) {
            throw new IllegalArgumentException("shardNumber " + shardNumber + " is outside 0..255");
        }
        if (shardCount == 0 && shardNumber != 0) {
            throw new IllegalArgumentException(
                    "shardNumber " + shardNumber + " must be 0 for an unsharded tenant (shardCount 0)");
        }
        if (shardCount > 0 && shardNumber >= shardCount) {
            throw new IllegalArgumentException(
                    "shardNumber " + shardNumber + " must be below shardCount " + shardCount);
        }
    }

    /**
     * Returns the id of an unsharded tenant.
     *
     * @param tenantHi the tenant id's first 8 bytes, big-endian
     * @param tenantLo the tenant id's last 8 bytes, big-endian
     * @return the id, shard count 0
     */
    public static TenantShardId of(long tenantHi, long tenantLo) {
        return new TenantShardId(tenantHi, tenantLo, 0, 0);
    }

    /**
     * Returns the id of one shard of a tenant.
     *
     * @param tenantHi the tenant id's first 8 bytes, big-endian
     * @param tenantLo the tenant id's last 8 bytes, big-endian
     * @param shardNumber the shard's number
     * @param shardCount the tenant's shard count, 0 for unsharded
     * @return the id
     * @throws IllegalArgumentException as the constructor
     */
    public static TenantShardId of(long tenantHi, long tenantLo, int shardNumber, int shardCount) {
        return new TenantShardId(tenantHi, tenantLo, shardNumber, shardCount);
    }

    /**
     * Parses Neon's text form: 32 hex digits, optionally followed by {@code -NNCC}.
     *
     * <p>Hex digits may be either case, as Neon's parser accepts them; {@link #toString()} prints lowercase. A
     * {@code -0000} suffix is Neon's unsharded form spelled out and parses to the same id as no suffix.
     *
     * @param text the text form
     * @return the id
     * @throws IllegalArgumentException if {@code text} is malformed or the shard fields are inconsistent; the
     *     message quotes the input
     */
    public static TenantShardId parse(String text) {
        Objects.requireNonNull(text, "text");
        if (text.length() != TENANT_HEX_CHARS && text.length() != SHARDED_CHARS) {
            throw malformed(
                    text, "length " + text.length() + ", expected " + TENANT_HEX_CHARS + " or " + SHARDED_CHARS);
        }
        long hi = hex(text, 0, 16);
        long lo = hex(text, 16, TENANT_HEX_CHARS);
        if (text.length() == TENANT_HEX_CHARS) {
            return of(hi, lo);
        }
        if (text.charAt(TENANT_HEX_CHARS) != '-') {
            throw malformed(text, "expected '-' before the shard suffix");
        }
        int number = (int) hex(text, TENANT_HEX_CHARS + 1, TENANT_HEX_CHARS + 3);
        int count = (int) hex(text, TENANT_HEX_CHARS + 3, SHARDED_CHARS);
        try {
            return new TenantShardId(hi, lo, number, count);
        } catch (IllegalArgumentException e) {
            throw malformed(text, e.getMessage());
        }
    }

    private static long hex(String text, int from, int to) {
        long v = 0;
        for (int i = from; i < to; i++) {
            char c = text.charAt(i);
            int d;
            if (c >= '0' && c <= '9') {
                d = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                d = c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                d = c - 'A' + 10;
            } else {
                throw malformed(text, "'" + c + "' at index " + i + " is not a hex digit");
            }
            v = v << 4 | d;
        }
        return v;
    }

    private static IllegalArgumentException malformed(String text, String why) {
        return new IllegalArgumentException("tenantShardId \"" + text + "\" is malformed: " + why
                + "; expected 32 hex digits, optionally followed by -NNCC (shard number and count in hex)");
    }

    /**
     * Tells whether the tenant is split into shards.
     *
     * @return {@code true} if {@code shardCount > 0}
     */
    public boolean isSharded() {
        return shardCount > 0;
    }

    /**
     * Returns the tenant id alone, without the shard suffix.
     *
     * @return 32 lowercase hex digits
     */
    public String tenantId() {
        char[] out = new char[TENANT_HEX_CHARS];
        putHex(out, 0, tenantHi, 16);
        putHex(out, 16, tenantLo, 16);
        return new String(out);
    }

    /**
     * Returns the canonical text form, as Neon prints it and as sidecars receive it.
     *
     * @return for example {@code 3f1c0d2e4b5a69788796a5b4c3d2e1f0} or {@code 3f1c0d2e4b5a69788796a5b4c3d2e1f0-0104}
     */
    @Override
    public String toString() {
        char[] out = new char[isSharded() ? SHARDED_CHARS : TENANT_HEX_CHARS];
        putHex(out, 0, tenantHi, 16);
        putHex(out, 16, tenantLo, 16);
        if (isSharded()) {
            out[TENANT_HEX_CHARS] = '-';
            putHex(out, TENANT_HEX_CHARS + 1, shardNumber, 2);
            putHex(out, TENANT_HEX_CHARS + 3, shardCount, 2);
        }
        return new String(out);
    }

    private static void putHex(char[] out, int at, long v, int digits) {
        for (int i = digits - 1; i >= 0; i--) {
            out[at + i] = HEX[(int) (v & 0xF)];
            v >>>= 4;
        }
    }

    /**
     * Orders as Neon's derived {@code Ord}: tenant id bytes (unsigned), then shard number, then shard count.
     *
     * @param other the id to compare with
     * @return negative, zero or positive
     */
    @Override
    public int compareTo(TenantShardId other) {
        int c = Long.compareUnsigned(tenantHi, other.tenantHi);
        if (c == 0) {
            c = Long.compareUnsigned(tenantLo, other.tenantLo);
        }
        if (c == 0) {
            c = Integer.compare(shardNumber, other.shardNumber);
        }
        if (c == 0) {
            c = Integer.compare(shardCount, other.shardCount);
        }
        return c;
    }
}
