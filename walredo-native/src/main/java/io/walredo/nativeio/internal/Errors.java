// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import jnr.constants.platform.Errno;

/** Names and descriptions of errno values and signals (jnr-constants, Linux tables). Internal API. */
public final class Errors {

    private Errors() {}

    /** Returns the symbolic name of an errno value, e.g. {@code ENOENT}, or {@code E<n>} if unknown. */
    public static String name(int errno) {
        Errno e = Errno.valueOf(errno);
        return e != null && e.defined() && e != Errno.__UNKNOWN_CONSTANT__ ? e.name() : "E" + errno;
    }

    /** Returns the strerror text of an errno value, e.g. {@code No such file or directory}. */
    public static String description(int errno) {
        Errno e = Errno.valueOf(errno);
        return e != null && e.defined() && e != Errno.__UNKNOWN_CONSTANT__ ? e.description() : "Unknown error " + errno;
    }

    /** Linux signal names by number (asm-generic signal.h; x86-64 and aarch64 agree); 32..64 are real-time. */
    private static final String[] SIGNALS = {
        null,
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS"
    };

    /** Returns the name of a signal, e.g. {@code SIGKILL}, or null for a number without a name (real-time signals). */
    public static String signalName(int signo) {
        return signo > 0 && signo < SIGNALS.length ? SIGNALS[signo] : null;
    }

    /** Returns the number of a named signal ("SIGKILL" or "KILL"), or -1 if there is no such name. */
    public static int signalNumber(String name) {
        String full = name.startsWith("SIG") ? name : "SIG" + name;
        for (int i = 1; i < SIGNALS.length; i++) {
            if (SIGNALS[i].equals(full)) {
                return i;
            }
        }
        return -1;
    }
}
