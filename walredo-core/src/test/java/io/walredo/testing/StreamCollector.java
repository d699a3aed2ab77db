// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * Reads a stream to its end on its own daemon thread and lets a test wait, with a bound, for a number of bytes
 * or for EOF. Reading continuously means the child never blocks on a full pipe unless the test wants it to,
 * and a test never blocks in {@code read} without a deadline.
 *
 * <p>The reader thread ends at EOF or on a read error; it is a daemon, so a child that keeps the pipe open
 * (a leaked grandchild) cannot hold up the JVM's exit. All methods are thread-safe.
 */
final class StreamCollector {

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final String name;
    private boolean eof;
    private IOException error;

    private StreamCollector(String name) {
        this.name = name;
    }

    /**
     * Starts collecting {@code in}.
     *
     * @param name for thread names and assertion messages, e.g. {@code "stdout"}
     * @param in the stream; the collector's thread owns and closes it
     * @return the running collector
     */
    static StreamCollector start(String name, InputStream in) {
        return start(name, () -> in);
    }

    /**
     * Starts collecting a stream that is opened on the collector's thread, for a FIFO whose {@code open} blocks
     * until the writer opens it.
     *
     * @param name for thread names and assertion messages
     * @param opener opens the stream; called once, on the collector's thread
     * @return the running collector
     */
    static StreamCollector start(String name, StreamOpener opener) {
        StreamCollector c = new StreamCollector(name);
        Thread.ofPlatform().daemon().name("fake-" + name + "-reader").start(() -> c.run(opener));
        return c;
    }

    /** Opens the stream to collect; may block. */
    @FunctionalInterface
    interface StreamOpener {
        /**
         * Opens the stream.
         *
         * @return the stream
         * @throws IOException if it cannot be opened
         */
        InputStream open() throws IOException;
    }

    private void run(StreamOpener opener) {
        byte[] buf = new byte[64 * 1024];
        try (InputStream in = opener.open()) {
            for (; ; ) {
                int n = in.read(buf);
                if (n < 0) {
                    break;
                }
                lock.lock();
                try {
                    bytes.write(buf, 0, n);
                    changed.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        } catch (IOException e) {
            lock.lock();
            try {
                error = e;
            } finally {
                lock.unlock();
            }
        } finally {
            lock.lock();
            try {
                eof = true;
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Waits until at least {@code count} bytes have arrived or the stream has ended.
     *
     * @param count the number of bytes
     * @param timeout the bound
     * @return whether {@code count} bytes arrived within {@code timeout}
     * @throws InterruptedException if interrupted
     */
    boolean awaitBytes(int count, Duration timeout) throws InterruptedException {
        return await(() -> bytes.size() >= count || eof, timeout) && size() >= count;
    }

    /**
     * Waits for EOF (or a read error).
     *
     * @param timeout the bound
     * @return whether the stream ended within {@code timeout}
     * @throws InterruptedException if interrupted
     */
    boolean awaitEof(Duration timeout) throws InterruptedException {
        return await(() -> eof, timeout);
    }

    /**
     * Waits until the collected text contains {@code text}.
     *
     * @param text the text to find
     * @param timeout the bound
     * @return whether it appeared within {@code timeout}
     * @throws InterruptedException if interrupted
     */
    boolean awaitText(String text, Duration timeout) throws InterruptedException {
        return await(() -> bytes.toString(StandardCharsets.UTF_8).contains(text) || eof, timeout)
                && text().contains(text);
    }

    private boolean await(Supplier<Boolean> done, Duration timeout) throws InterruptedException {
        long remaining = timeout.toNanos();
        lock.lock();
        try {
            while (!done.get()) {
                if (remaining <= 0) {
                    return false;
                }
                remaining = changed.awaitNanos(remaining);
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Returns everything collected so far.
     *
     * @return a new array
     */
    byte[] bytes() {
        lock.lock();
        try {
            return bytes.toByteArray();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Returns {@code length} collected bytes from {@code from}.
     *
     * @param from the first offset
     * @param length the number of bytes; must all have arrived
     * @return a new array
     */
    byte[] range(int from, int length) {
        return Arrays.copyOfRange(bytes(), from, from + length);
    }

    /**
     * Returns the number of bytes collected so far.
     *
     * @return the count
     */
    int size() {
        lock.lock();
        try {
            return bytes.size();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Returns everything collected so far as UTF-8 text.
     *
     * @return the text
     */
    String text() {
        return new String(bytes(), StandardCharsets.UTF_8);
    }

    /**
     * Describes the state for assertion messages.
     *
     * @return name, byte count, EOF and any read error
     */
    @Override
    public String toString() {
        lock.lock();
        try {
            return name + "[" + bytes.size() + " bytes" + (eof ? ", EOF" : "")
                    + (error != null ? ", error " + error : "") + "]";
        } finally {
            lock.unlock();
        }
    }
}
