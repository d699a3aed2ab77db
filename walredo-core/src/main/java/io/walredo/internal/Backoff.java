// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.WalRedoConfig;

/** Exponential spawn back-off: {@code spawnBackoffInitial} doubled per consecutive failure, capped at the max. */
final class Backoff {
    private Backoff() {}

    /** How long to wait before the next spawn after {@code failures} (at least 1) consecutive failures. */
    static long delayNanos(int failures, WalRedoConfig config) {
        long initial = config.spawnBackoffInitial().toNanos();
        long max = config.spawnBackoffMax().toNanos();
        int shift = Math.min(failures - 1, 30);
        return initial > (max >> shift) ? max : Math.min(max, initial << shift);
    }
}
