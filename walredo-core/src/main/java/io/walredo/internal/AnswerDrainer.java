// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.internal.SidecarLife.Failure;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads and drops the answers of abandoned requests while no caller waits, so the bytes on a sidecar's stdout stay
 * aligned with its answer queue: the reading counterpart of {@link BackgroundWriter}. Started by {@link
 * Sidecar#ensureReader} when answers are owed and no entry is waiting; at most one runs per sidecar ({@code
 * drainerRunning}). It takes the reader role only while nobody waits, and gives it back to a waiter that arrives.
 */
final class AnswerDrainer {
    private static final Logger log = LoggerFactory.getLogger(AnswerDrainer.class);

    private AnswerDrainer() {}

    /** Starts a drainer on a virtual thread unless one runs; if none can be started, the next caller reads on. */
    static void start(Sidecar sc) {
        if (!sc.drainerRunning.compareAndSet(false, true)) {
            return;
        }
        try {
            Thread.ofVirtual().name("walredo-drain-" + sc.pid).start(() -> drain(sc));
        } catch (Throwable t) {
            sc.drainerRunning.set(false);
            // No thread to read abandoned answers: the next caller reads through them; until then the
            // housekeeper can still quiesce it. Nothing is misaligned.
            log.atWarn()
                    .setCause(t)
                    .addKeyValue("tenant", sc.tenant())
                    .addKeyValue("pid", sc.pid)
                    .log("cannot start the walredo answer drainer");
        }
    }

    private static void drain(Sidecar sc) {
        boolean clean = false;
        try {
            while (idle(sc) && sc.readerRole.compareAndSet(false, true)) {
                try {
                    while (idle(sc)) {
                        sc.readOneAnswer(null);
                    }
                } finally {
                    sc.readerRole.set(false);
                }
            }
            clean = true;
        } catch (AttemptFailure recorded) {
            clean = true;
        } catch (Throwable t) {
            sc.fail(
                    new Failure(
                            sc.failures.cancelled(
                                    "reading abandoned answers failed (" + t + "), so the sidecar was killed", t),
                            Retry.PER_ATTEMPT_TYPE,
                            false),
                    KillCause.ERROR);
        } finally {
            sc.drainerRunning.set(false);
        }
        if (clean) {
            sc.ensureReader();
        }
    }

    /** Answers are owed, the sidecar has not failed, and no caller waits to read them itself. */
    private static boolean idle(Sidecar sc) {
        return sc.owed > 0 && sc.failure.get() == null && sc.firstWaiter() == null;
    }
}
