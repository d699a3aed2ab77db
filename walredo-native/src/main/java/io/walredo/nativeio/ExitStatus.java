// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import io.walredo.nativeio.internal.Errors;

/**
 * How a child ended: it exited with a code, or a signal killed it (possibly dumping core).
 *
 * @param exitCode 0..255 if the child exited, -1 if a signal killed it
 * @param signal the killing signal's number, 0 if the child exited
 * @param coreDumped true if the signal produced a core dump (only when {@code signal > 0})
 */
public record ExitStatus(int exitCode, int signal, boolean coreDumped) {

    /**
     * Validates the combination.
     *
     * @throws IllegalArgumentException unless exactly one of "exited with 0..255" and "killed by signal 1..127" holds
     */
    public ExitStatus {
        boolean exited = signal == 0 && exitCode >= 0 && exitCode <= 255 && !coreDumped;
        boolean signaled = exitCode == -1 && signal > 0 && signal < 128;
        if (!exited && !signaled) {
            throw new IllegalArgumentException(
                    "invalid exit status: exitCode=" + exitCode + " signal=" + signal + " coreDumped=" + coreDumped);
        }
    }

    /**
     * Decodes a {@code wstatus} from {@code waitpid} (man 2 waitpid: WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG,
     * WCOREDUMP).
     *
     * @throws IllegalArgumentException for a stopped or continued status (this library never asks for those)
     */
    public static ExitStatus fromWaitStatus(int wstatus) {
        int low = wstatus & 0x7f;
        if (low == 0) {
            return new ExitStatus((wstatus >> 8) & 0xff, 0, false);
        }
        if (low != 0x7f) {
            return new ExitStatus(-1, low, (wstatus & 0x80) != 0);
        }
        throw new IllegalArgumentException("not a termination status: 0x" + Integer.toHexString(wstatus));
    }

    /** Returns true if the child exited (normally, with {@link #exitCode()}). */
    public boolean exited() {
        return signal == 0;
    }

    /** Returns true if a signal killed the child. */
    public boolean signaled() {
        return signal != 0;
    }

    /** Returns {@code "exit code 1"}, {@code "signal 9 (SIGKILL)"} or {@code "signal 11 (SIGSEGV), core dumped"}. */
    @Override
    public String toString() {
        if (exited()) {
            return "exit code " + exitCode;
        }
        String name = Errors.signalName(signal);
        return "signal " + signal + (name == null ? "" : " (" + name + ")") + (coreDumped ? ", core dumped" : "");
    }
}
