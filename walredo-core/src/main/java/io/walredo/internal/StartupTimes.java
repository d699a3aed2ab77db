// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * How long the manager's recent sidecars took to start: from the first request written to a new process (its
 * start-up probe) to that request's answer. Admission compares a sidecar still starting with these ({@link
 * ServiceTimes#startingNoSlowerThanPeers}): on a saturated machine start-ups come in waves and take seconds, and a
 * start-up that has not yet outlasted its peers' is no sign of a stuck process.
 *
 * <p>Thread-safe and lock-free: {@link #record} once per start-up, {@link #slowestNanos} only on the way to a refusal.
 */
final class StartupTimes {
    /** How many of the latest start-ups count. */
    static final int WINDOW = 16;

    private final AtomicLongArray recent = new AtomicLongArray(WINDOW);
    private final AtomicInteger next = new AtomicInteger();

    /** A sidecar answered its first request {@code nanos} after it was sent. */
    void record(long nanos) {
        recent.set(Math.floorMod(next.getAndIncrement(), WINDOW), Math.max(1, nanos));
    }

    /** The slowest of the latest {@link #WINDOW} start-ups; 0 before the first. */
    long slowestNanos() {
        long slowest = 0;
        for (int i = 0; i < WINDOW; i++) {
            slowest = Math.max(slowest, recent.get(i));
        }
        return slowest;
    }
}
