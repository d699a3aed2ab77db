// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a sidecar's process sleeps in the kernel ({@code /proc/PID/wchan}), for admission: a sidecar asleep reading
 * its stdin or writing its stdout is waiting for this JVM (a request not yet written, an answer not yet read), so the
 * time its answers take is the JVM's delay, not its own. Linux names that wait {@code pipe_read}/{@code pipe_write}
 * ({@code anon_pipe_read}/{@code anon_pipe_write} since 6.x, {@code pipe_wait} before 5.x). A process that runs,
 * sleeps elsewhere (a timer, a disk read), is stopped, or whose wait channel cannot be read (another kernel's
 * restrictions show "0") is taken to be working.
 */
final class ProcWaitChannel {
    /** A kernel symbol name is short; reading stops here whatever the file holds. */
    static final int MAX_BYTES = 128;

    private ProcWaitChannel() {}

    /** Whether process {@code pid} is asleep on one of its pipes now; false if that cannot be told. */
    static boolean waitsOnPipe(int pid) {
        return waitsOnPipe(Path.of("/proc", Integer.toString(pid), "wchan"));
    }

    /** As {@link #waitsOnPipe(int)}, for a wait-channel file. */
    static boolean waitsOnPipe(Path wchan) {
        String symbol;
        try (InputStream in = Files.newInputStream(wchan)) {
            symbol = new String(in.readNBytes(MAX_BYTES), StandardCharsets.US_ASCII).strip();
        } catch (IOException | SecurityException e) {
            return false;
        }
        return isPipeWait(symbol);
    }

    /** Whether {@code symbol} is the kernel function a reader of an empty or a writer of a full pipe sleeps in. */
    static boolean isPipeWait(String symbol) {
        return symbol.endsWith("pipe_read") || symbol.endsWith("pipe_write") || symbol.equals("pipe_wait");
    }
}
