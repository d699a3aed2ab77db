// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.util.Objects;

/**
 * A PostgreSQL WAL position (an {@code XLogRecPtr}): an unsigned 64-bit byte offset into the WAL stream.
 *
 * <p>Every {@code long} is a valid value; values above {@link Long#MAX_VALUE} are negative in Java but
 * compare and print as unsigned. The text form is PostgreSQL's and Neon's {@code X/Y}: the high and low 32
 * bits in hexadecimal, as printed by {@code pg_current_wal_lsn()} and Neon's {@code Display for Lsn}.
 *
 * @param value the position, read as unsigned
 */
public record Lsn(long value) implements Comparable<Lsn> {

    /** PostgreSQL's {@code InvalidXLogRecPtr}: no WAL record ends or starts at position 0. */
    public static final Lsn INVALID = new Lsn(0);

    /** The largest hex digits either half of the text form may have (32 bits). */
    private static final int MAX_HALF_DIGITS = 8;

    /**
     * Returns the LSN with the given unsigned value.
     *
     * @param value the position, read as unsigned
     * @return the LSN
     */
    public static Lsn of(long value) {
        return value == 0 ? INVALID : new Lsn(value);
    }

    /**
     * Parses PostgreSQL's {@code X/Y} form, for example {@code 0/16E2408}.
     *
     * <p>Each half is 1 to 8 ASCII hex digits, either case; nothing else (signs, spaces, {@code 0x}) is accepted,
     * so a string that parses is exactly one that PostgreSQL's {@code pg_lsn} input accepts without
     * surrounding whitespace.
     *
     * @param text the text form
     * @return the LSN
     * @throws IllegalArgumentException if {@code text} is not in {@code X/Y} form; the message quotes it
     */
    public static Lsn parse(String text) {
        Objects.requireNonNull(text, "text");
        int slash = text.indexOf('/');
        if (slash < 1
                || slash > MAX_HALF_DIGITS
                || text.length() - slash - 1 < 1
                || text.length() - slash - 1 > MAX_HALF_DIGITS) {
            throw malformed(text);
        }
        long hi = parseHex(text, 0, slash);
        long lo = parseHex(text, slash + 1, text.length());
        return of(hi << 32 | lo);
    }

    private static long parseHex(String text, int from, int to) {
        long v = 0;
        for (int i = from; i < to; i++) {
            int d = hexDigit(text.charAt(i));
            if (d < 0) {
                throw malformed(text);
            }
            v = v << 4 | d;
        }
        return v;
    }

    /** ASCII only: {@link Character#digit} would also accept full-width and other Unicode digits. */
    private static int hexDigit(char c) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    }

    private static IllegalArgumentException malformed(String text) {
        return new IllegalArgumentException("lsn: \"" + text
                + "\" is not a WAL position; expected X/Y with 1 to 8 hex digits each, e.g. 0/16E2408");
    }

    /**
     * Tells whether this is a real WAL position.
     *
     * @return {@code false} only for {@link #INVALID} (0/0)
     */
    public boolean isValid() {
        return value != 0;
    }

    /**
     * Compares as unsigned 64-bit positions, so {@code FFFFFFFF/FFFFFFFF} is the largest LSN.
     *
     * @param other the LSN to compare with
     * @return negative, zero or positive as this LSN is before, at or after {@code other}
     */
    @Override
    public int compareTo(Lsn other) {
        return Long.compareUnsigned(value, other.value);
    }

    /**
     * Returns the {@code X/Y} form with uppercase hex digits and no leading zeros, as Neon prints it.
     *
     * @return for example {@code 0/16E2408}
     */
    @Override
    public String toString() {
        return Integer.toHexString((int) (value >>> 32)).toUpperCase(java.util.Locale.ROOT)
                + '/'
                + Integer.toHexString((int) value).toUpperCase(java.util.Locale.ROOT);
    }
}
