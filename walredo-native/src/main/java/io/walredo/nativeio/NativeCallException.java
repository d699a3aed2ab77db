// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.Errors;
import java.io.IOException;
import java.util.Objects;

/**
 * A failed system call. Callers branch on {@link #errno()} (or {@link #errnoName()}), never on the message text.
 * The message reads {@code "<context>: <syscall> failed: errno 2 ENOENT (No such file or directory)"}.
 */
public class NativeCallException extends IOException {

    private static final long serialVersionUID = 1L;

    private final String syscall;
    private final int errno;

    /**
     * Creates the exception for {@code syscall} failing with {@code errno}.
     *
     * @param syscall the C function that failed, e.g. {@code posix_spawn}
     * @param errno the error number it reported
     * @param context what was being done, e.g. {@code "cannot spawn /usr/bin/postgres"}
     */
    public NativeCallException(String syscall, int errno, String context) {
        this(syscall, errno, context, null);
    }

    /**
     * Creates the exception with a hint appended to the standard message ({@code "...; <hint>"}), for subclasses that
     * can say what to do next.
     *
     * @param syscall the C function that failed
     * @param errno the error number it reported
     * @param context what was being done
     * @param hint what to check or do next, or null
     */
    protected NativeCallException(String syscall, int errno, String context, String hint) {
        super(message(syscall, errno, context, hint));
        this.syscall = syscall;
        this.errno = errno;
    }

    private static String message(String syscall, int errno, String context, String hint) {
        Objects.requireNonNull(syscall, "syscall");
        Objects.requireNonNull(context, "context");
        String m = context + ": " + syscall + " failed: errno " + errno + " " + Errors.name(errno) + " ("
                + Errors.description(errno) + ")";
        return hint == null ? m : m + "; " + hint;
    }

    /** Returns the name of the C function that failed. */
    public String syscall() {
        return syscall;
    }

    /** Returns the error number, e.g. 2. */
    public int errno() {
        return errno;
    }

    /** Returns the symbolic name of the error number, e.g. {@code ENOENT}. */
    public String errnoName() {
        return Errors.name(errno);
    }
}
