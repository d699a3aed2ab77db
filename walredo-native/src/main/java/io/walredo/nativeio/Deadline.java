// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import java.time.Duration;
import java.util.Objects;

/**
 * A point in time on the monotonic {@link System#nanoTime()} clock by which an operation must finish. Computed once
 * per operation; retries use what remains. There is no "wait forever": the longest deadline is about 146 years away.
 *
 * @param nanoTime the {@code System.nanoTime()} value at which the deadline passes; compare only by subtraction
 */
public record Deadline(long nanoTime) {

    /** The farthest any deadline lies in the future, so that {@code nanoTime - System.nanoTime()} cannot overflow. */
    private static final long MAX_NANOS = Long.MAX_VALUE / 2;

    /**
     * Returns the deadline {@code d} from now. Durations too long to represent are capped at about 146 years.
     *
     * @throws IllegalArgumentException if {@code d} is negative
     */
    public static Deadline after(Duration d) {
        Objects.requireNonNull(d, "duration");
        if (d.isNegative()) {
            throw new IllegalArgumentException("deadline duration must be >= 0, got " + d);
        }
        long nanos;
        try {
            nanos = Math.min(d.toNanos(), MAX_NANOS);
        } catch (ArithmeticException tooLong) {
            nanos = MAX_NANOS;
        }
        return new Deadline(System.nanoTime() + nanos);
    }

    /** Returns the nanoseconds left; zero or negative once the deadline has passed. */
    public long remainingNanos() {
        return nanoTime - System.nanoTime();
    }

    /** Returns true once the deadline has passed. */
    public boolean isExpired() {
        return remainingNanos() <= 0;
    }

    /** Returns whichever of this and {@code other} passes first. */
    public Deadline earliest(Deadline other) {
        Objects.requireNonNull(other, "other");
        return nanoTime - other.nanoTime <= 0 ? this : other;
    }
}
