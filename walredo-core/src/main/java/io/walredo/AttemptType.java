// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/**
 * Why a redo is being asked for; decides how often a failed redo is retried on a fresh sidecar.
 *
 * <p>The retry counts follow Neon's pageserver: a page read that a client waits for is worth two
 * more tries, legacy compaction one, and gc-compaction none (it has its own retry loop higher up).
 * A retry never extends the request's deadline: it only uses what remains of it.
 */
public enum AttemptType {
    /** Serving a page read (getpage@lsn): up to 2 retries. */
    READ_PAGE(2),
    /** Legacy compaction rewriting images: 1 retry. */
    LEGACY_COMPACTION(1),
    /** GC-compaction: no retry. */
    GC_COMPACTION(0);

    private final int retries;

    AttemptType(int retries) {
        this.retries = retries;
    }

    /** How many times a failed redo is tried again on a fresh sidecar, within the same deadline. */
    public int retries() {
        return retries;
    }
}
