// SPDX-License-Identifier: Apache-2.0
package io.walredo;

/** The manager has been shut down (or the tenant detached) and takes no new requests. */
public final class ManagerClosedException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what was refused
     */
    public ManagerClosedException(String message) {
        super(message);
    }
}
