// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.time.Duration;
import java.time.temporal.ChronoUnit;

/** Option values of the demo's and the soak's command lines, checked with messages that name the option. */
public final class CliArgs {
    private CliArgs() {
    }

    /**
     * Parses a whole number above zero.
     *
     * @throws IllegalArgumentException naming {@code opt} and the value otherwise
     */
    public static int positiveInt(String opt, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(opt + " takes a positive whole number, got '" + v + "'");
    }

    /**
     * Parses a whole number, zero or above.
     *
     * @throws IllegalArgumentException naming {@code opt} and the value otherwise
     */
    public static int nonNegativeInt(String opt, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(opt + " takes a whole number, 0 or more, got '" + v + "'");
    }

    /**
     * Parses {@code 500ms}, {@code 30s}, {@code 2m} or a bare number in {@code bareUnit}; positive and at most
     * {@code max}.
     *
     * @param rule how the error message describes an accepted value, e.g. "a positive duration such as 30s"
     * @throws IllegalArgumentException "{@code opt} takes {@code rule}, got '{@code v}'" otherwise
     */
    public static Duration duration(String opt, String v, ChronoUnit bareUnit, Duration max, String rule) {
        try {
            Duration d;
            if (v.endsWith("ms")) {
                d = Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
            } else if (v.endsWith("s")) {
                d = Duration.ofSeconds(Long.parseLong(v.substring(0, v.length() - 1)));
            } else if (v.endsWith("m")) {
                d = Duration.ofMinutes(Long.parseLong(v.substring(0, v.length() - 1)));
            } else {
                d = Duration.of(Long.parseLong(v), bareUnit);
            }
            if (!d.isNegative() && !d.isZero() && d.compareTo(max) <= 0) {
                return d;
            }
        } catch (NumberFormatException | ArithmeticException e) {
            // reported below
        }
        throw new IllegalArgumentException(opt + " takes " + rule + ", got '" + v + "'");
    }
}
