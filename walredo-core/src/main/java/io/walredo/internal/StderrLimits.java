// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.WalRedoConfig;

/**
 * What a sidecar's {@link StderrDrainer} may keep and spend: a value, so four ints cannot be passed in the wrong
 * order. Built once per manager from the validated {@link WalRedoConfig} (whose builder keeps
 * {@code stderrLimits(maxLineBytes, linesPerSecond, tailLines)} and {@code stderrBytesPerSecond}).
 *
 * @param maxLineBytes a line is cut here (the rest is dropped and the line marked truncated)
 * @param linesPerSecond lines logged per second per sidecar, in bursts of twice that
 * @param tailLines the last lines kept for crash reports
 * @param bytesPerSecond bytes read from the pipe per second per sidecar
 */
record StderrLimits(int maxLineBytes, int linesPerSecond, int tailLines, int bytesPerSecond) {
    StderrLimits {
        if (maxLineBytes < 1 || linesPerSecond < 1 || tailLines < 1 || bytesPerSecond < 1) {
            throw new IllegalArgumentException("stderr limits must be positive: " + maxLineBytes + " bytes a line, "
                    + linesPerSecond + " lines/s, " + tailLines + " tail lines, " + bytesPerSecond + " bytes/s");
        }
    }

    static StderrLimits from(WalRedoConfig config) {
        return new StderrLimits(
                config.stderrMaxLineBytes(),
                config.stderrLinesPerSecond(),
                config.stderrTailLines(),
                config.stderrBytesPerSecond());
    }
}
