// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import java.io.IOException;

/**
 * An operation on a child (a pipe read or write, a spawn, or waiting for a killed child to be reaped) did not finish by
 * its {@link Deadline}. The message says what was awaited and how far it got. After a timed-out read or write the pipe
 * may hold part of a message: the caller must not reuse it for framed traffic.
 */
public final class DeadlineExceededException extends IOException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what was awaited, on which pipe or pid, and the progress made
     */
    public DeadlineExceededException(String message) {
        super(message);
    }
}
