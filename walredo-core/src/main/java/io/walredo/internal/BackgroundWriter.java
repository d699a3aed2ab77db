// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.internal.AttemptFailure.Retry;
import io.walredo.internal.SidecarLife.Failure;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineExceededException;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Finishes a request its caller stopped writing half-way (its deadline passed, it was interrupted, an {@code Error}
 * was thrown mid-write), so the bytes on the sidecar's stdin stay whole requests and every later answer stays
 * aligned. Started by {@link Sidecar}'s write path, which hands over its write permit: the writer releases it when
 * it is done, and wakes a reader for the answers owed (the abandoned request's answer is read and dropped).
 */
final class BackgroundWriter {
    private BackgroundWriter() {}

    /**
     * Hands the unwritten rest of a request to a background writer, which inherits the write permit. It copies
     * the rest (the caller reuses its buffer) and writes until done, the sidecar dies, or the sidecar accepts no
     * byte for {@code stallTimeout}. Returns false if it could not be started: then the stream is torn and the
     * sidecar is killed here.
     */
    static boolean start(Sidecar sc, ByteBuffer rest, int written, int total) {
        try {
            ByteBuffer copy = ByteBuffer.allocate(rest.remaining());
            copy.put(rest).flip();
            Thread.ofVirtual().name("walredo-finish-" + sc.pid).start(() -> finish(sc, copy));
            return true;
        } catch (Throwable t) {
            try {
                sc.fail(
                        new Failure(
                                sc.failures.cancelled(
                                        "another request stopped half-way through writing (" + written + " of "
                                                + total + " bytes written) and its rest could not be handed on (" + t
                                                + "), so the sidecar was killed",
                                        t),
                                Retry.PER_ATTEMPT_TYPE,
                                false),
                        KillCause.ERROR);
            } catch (Throwable again) {
                // Not even the message could be built (the heap is exhausted): kill it with the default failure.
                sc.kill(KillCause.ERROR);
            }
            return false;
        }
    }

    private static void finish(Sidecar sc, ByteBuffer rest) {
        try {
            // Each round waits one stallTimeout; a round in which the sidecar took no byte kills it.
            int before = rest.position();
            while (rest.hasRemaining() && sc.failure.get() == null) {
                try {
                    sc.child.stdin().writeFully(rest, Deadline.after(sc.stallTimeout));
                } catch (DeadlineExceededException e) {
                    if (rest.position() == before) {
                        sc.fail(
                                new Failure(
                                        sc.failures.stalled(
                                                "reading its stdin (" + rest.remaining()
                                                        + " bytes of a request still to write)",
                                                sc.stallTimeout),
                                        Retry.PER_ATTEMPT_TYPE,
                                        true),
                                KillCause.TIMEOUT);
                        return;
                    }
                    before = rest.position();
                }
            }
        } catch (IOException e) {
            if (sc.failure.get() == null) {
                sc.fail(
                        new Failure(sc.crashed("writing to its stdin", e, 0, null), Retry.PER_ATTEMPT_TYPE, true),
                        KillCause.ERROR);
            }
        } catch (Throwable t) {
            sc.fail(
                    new Failure(
                            sc.failures.cancelled(
                                    "finishing a half-written request failed (" + t + "), so the sidecar was killed",
                                    t),
                            Retry.PER_ATTEMPT_TYPE,
                            false),
                    KillCause.ERROR);
        } finally {
            sc.writePermit.release();
            sc.ensureReader();
        }
    }
}
