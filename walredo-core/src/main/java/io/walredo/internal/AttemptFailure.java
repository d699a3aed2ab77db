// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.WalRedoException;
import java.util.Objects;

/**
 * Why one attempt of a request failed on one sidecar, and whether the manager may try it again on a fresh
 * sidecar. Internal: the manager unwraps it and the caller sees only {@link #error()}. It has no stack trace
 * of its own (the public error carries one).
 */
final class AttemptFailure extends Exception {
    private static final long serialVersionUID = 1L;

    /** Whether the request may be tried again on a fresh sidecar. */
    enum Retry {
        /** The caller's own doing (its deadline passed, it was interrupted) or the tenant is going away. */
        NEVER,
        /** The sidecar failed while the request was in it: retried as often as its AttemptType allows. */
        PER_ATTEMPT_TYPE,
        /**
         * No byte of the request reached the sidecar (it had already failed, or broke the protocol while idle):
         * retried without using one of the AttemptType's retries, a bounded number of times.
         */
        NOT_SENT
    }

    private final transient WalRedoException error;
    private final Retry retry;

    AttemptFailure(WalRedoException error, Retry retry) {
        super(error.getMessage(), error, false, false);
        this.error = error;
        this.retry = Objects.requireNonNull(retry, "retry");
    }

    /** The typed error the caller gets if the request is not retried. */
    WalRedoException error() {
        return error;
    }

    Retry retry() {
        return retry;
    }
}
