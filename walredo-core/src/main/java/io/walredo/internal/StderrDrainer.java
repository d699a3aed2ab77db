// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.TenantShardId;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.PipeReadEnd;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

/**
 * Drains one sidecar's stderr on its own virtual thread, the only reader of that pipe (reading stderr
 * from request threads raced in Neon and produced false failures).
 *
 * <p>The content is untrusted: each line is cut at {@code maxLineBytes} (the rest of the line is
 * dropped, not buffered), control characters are escaped so a line cannot forge log records, and a
 * token bucket limits logged lines per second (suppressed lines are counted and reported). Memory is
 * fixed: one read buffer, one line buffer and the tail ring of the last {@code tailLines} lines. CPU is
 * bounded too: a second token bucket limits the bytes read per second, and while it is empty the
 * drainer stops reading, so a sidecar writing faster blocks in its own write(2) to stderr instead of
 * keeping a carrier busy. The thread ends at end of file or when the pipe is closed by the sidecar's owner.
 */
final class StderrDrainer implements Runnable {
    private static final Logger log = LoggerFactory.getLogger("io.walredo.sidecar.stderr");
    private static final int READ_CHUNK = 4096;
    /** A read waits at most this long before the loop re-checks; the pipe's EOF or close ends it. */
    private static final Duration READ_SLICE = Duration.ofMinutes(10);
    /** The byte bucket holds this much, or one second's worth if that is more. */
    private static final long BYTE_BURST = 1 << 20;
    /** A throttled drainer wakes at least this often to notice that the pipe was closed. */
    private static final long THROTTLE_SLICE_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    /** Null for a warm spare until {@link #assign}. */
    private volatile TenantShardId tenant;

    private final int pid;
    private final PipeReadEnd stderr;
    private final Metrics metrics;
    private final LongSupplier nanoClock;
    private final byte[] line;
    private final int tailLines;
    private final ReentrantLock tailLock = new ReentrantLock();
    private final ArrayDeque<String> tail;
    private final CountDownLatch done = new CountDownLatch(1);
    private final int bytesPerSecond;
    /** Lines that may be logged now: {@code linesPerSecond} a second, bursts of twice that. Injectable clock. */
    private final Bucket lineTokens;
    /** Bytes that may be read now; real time, because a drainer in debt really parks. */
    private final Bucket byteTokens;

    private int lineLength;
    private boolean lineTruncated;
    private long suppressedSinceReport;
    private boolean throttleReported;

    StderrDrainer(
            TenantShardId tenant,
            int pid,
            PipeReadEnd stderr,
            Metrics metrics,
            LongSupplier nanoClock,
            StderrLimits limits) {
        this.tenant = tenant;
        this.pid = pid;
        this.stderr = stderr;
        this.metrics = metrics;
        this.nanoClock = nanoClock;
        this.line = new byte[limits.maxLineBytes()];
        this.tailLines = limits.tailLines();
        this.tail = new ArrayDeque<>(tailLines);
        int linesPerSecond = limits.linesPerSecond();
        this.lineTokens = new Bucket(linesPerSecond, 2.0 * linesPerSecond, nanoClock.getAsLong());
        this.bytesPerSecond = limits.bytesPerSecond();
        this.byteTokens = new Bucket(bytesPerSecond, Math.max(BYTE_BURST, bytesPerSecond), System.nanoTime());
    }

    /** Names the tenant a warm spare was handed to, for the lines logged from now on. */
    void assign(TenantShardId tenant) {
        this.tenant = tenant;
    }

    /** Starts the drainer on a new virtual thread. */
    void start() {
        Thread.ofVirtual().name("walredo-stderr-" + pid).start(this);
    }

    @Override
    public void run() {
        ByteBuffer buf = ByteBuffer.allocate(READ_CHUNK);
        try {
            for (; ; ) {
                buf.clear();
                int n;
                try {
                    n = stderr.read(buf, Deadline.after(READ_SLICE));
                } catch (io.walredo.nativeio.DeadlineExceededException quiet) {
                    continue;
                }
                if (n < 0) {
                    break;
                }
                buf.flip();
                try {
                    consume(buf);
                } catch (RuntimeException | Error e) {
                    lineFailed(e);
                }
                if (!throttle(n)) {
                    break;
                }
            }
        } catch (IOException closedOrFailed) {
            // The owner closed the pipe (kill, quiesce, shutdown): nothing more will come.
        } catch (RuntimeException e) {
            log.atWarn()
                    .addKeyValue("tenant", tenant)
                    .addKeyValue("pid", pid)
                    .setCause(e)
                    .log("stderr drainer failed; the sidecar's stderr is no longer read");
        } finally {
            try {
                if (lineLength > 0 || lineTruncated) {
                    emit();
                }
                reportSuppressed();
            } catch (RuntimeException | Error e) {
                lineFailed(e);
            } finally {
                // Whoever waits for the tail must not wait for a drainer that is gone.
                done.countDown();
            }
        }
    }

    /**
     * A line could not be handled (a metrics listener that threw, no memory to build it): it is lost, and reading
     * goes on, or the sidecar would block on a full stderr and its requests stall. Logged within the line rate limit.
     */
    private void lineFailed(Throwable e) {
        try {
            if (takeToken()) {
                log.atWarn()
                        .addKeyValue("tenant", tenant)
                        .addKeyValue("pid", pid)
                        .setCause(e)
                        .log("a sidecar stderr line could not be handled and was dropped; stderr is still read");
            }
        } catch (RuntimeException | Error ignored) {
            // Not even that: reading goes on all the same.
        }
    }

    /**
     * Takes {@code n} bytes from the byte bucket; while it is in debt, parks (in slices, so a closed pipe
     * ends the wait) instead of reading. Real time, not the injectable clock: the wait is real parking.
     * Returns false if the pipe was closed meanwhile.
     */
    private boolean throttle(int n) {
        byteTokens.take(n);
        for (; ; ) {
            double available = byteTokens.refill(System.nanoTime());
            if (available >= 0) {
                return true;
            }
            if (!throttleReported) {
                throttleReported = true;
                log.atWarn()
                        .addKeyValue("tenant", tenant)
                        .addKeyValue("pid", pid)
                        .addKeyValue("bytesPerSecond", bytesPerSecond)
                        .log("sidecar writes to stderr faster than stderrBytesPerSecond; reading it is slowed down,"
                                + " so the sidecar blocks on stderr and its requests may time out");
            }
            if (!stderr.isOpen()) {
                return false;
            }
            long wait = (long) (-available * 1e9 / bytesPerSecond) + 1;
            LockSupport.parkNanos(this, Math.min(wait, THROTTLE_SLICE_NANOS));
            Thread.interrupted(); // nobody interrupts a drainer; if someone does, do not spin
        }
    }

    private void consume(ByteBuffer buf) {
        while (buf.hasRemaining()) {
            byte b = buf.get();
            if (b == '\n') {
                emit();
            } else if (lineLength < line.length) {
                line[lineLength++] = b;
            } else {
                lineTruncated = true;
            }
        }
    }

    private void emit() {
        int length = lineLength;
        boolean truncated = lineTruncated;
        // Reset first: if building or handling this line fails, the next line starts clean.
        lineLength = 0;
        lineTruncated = false;
        String text = sanitize(line, length) + (truncated ? " [line cut at " + line.length + " bytes]" : "");
        tailLock.lock();
        try {
            if (tail.size() == tailLines) {
                tail.removeFirst();
            }
            tail.addLast(text);
        } finally {
            tailLock.unlock();
        }
        if (takeToken()) {
            reportSuppressed();
            log.atLevel(levelOf(text))
                    .addKeyValue("tenant", tenant)
                    .addKeyValue("pid", pid)
                    .log(text);
            metrics.stderrLine(tenant, false);
        } else {
            suppressedSinceReport++;
            metrics.stderrLine(tenant, true);
        }
    }

    private boolean takeToken() {
        if (lineTokens.refill(nanoClock.getAsLong()) >= 1.0) {
            lineTokens.take(1);
            return true;
        }
        return false;
    }

    private void reportSuppressed() {
        if (suppressedSinceReport > 0) {
            log.atWarn()
                    .addKeyValue("tenant", tenant)
                    .addKeyValue("pid", pid)
                    .addKeyValue("suppressed", suppressedSinceReport)
                    .log("sidecar stderr lines suppressed by the rate limit");
            suppressedSinceReport = 0;
        }
    }

    private static Level levelOf(String text) {
        if (text.startsWith("PANIC") || text.startsWith("FATAL") || text.startsWith("ERROR")) {
            return Level.WARN;
        }
        return Level.INFO;
    }

    /**
     * Decodes UTF-8 (malformed input replaced) and escapes control characters except tab, and the characters that
     * some viewers render as a line break (U+2028, U+2029) or that reorder the text around them (the bidi marks,
     * embeddings, overrides and isolates), so a sidecar cannot forge or disguise a log record.
     */
    static String sanitize(byte[] bytes, int length) {
        String s = new String(bytes, 0, length, StandardCharsets.UTF_8);
        StringBuilder out = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean control = (c < 0x20 && c != '\t') || c == 0x7f || (c >= 0x80 && c < 0xa0);
            if (control || isLineBreakOrBidi(c)) {
                if (out == null) {
                    out = new StringBuilder(s.length() + 16).append(s, 0, i);
                }
                out.append(control ? String.format("\\x%02x", (int) c) : String.format("\\u%04x", (int) c));
            } else if (out != null) {
                out.append(c);
            }
        }
        return out == null ? s : out.toString();
    }

    private static boolean isLineBreakOrBidi(char c) {
        return c == '\u2028'
                || c == '\u2029'
                || c == '\u061c'
                || c == '\u200e'
                || c == '\u200f'
                || (c >= '\u202a' && c <= '\u202e')
                || (c >= '\u2066' && c <= '\u2069');
    }

    /** The last lines, oldest first. */
    List<String> tail() {
        tailLock.lock();
        try {
            return new ArrayList<>(tail);
        } finally {
            tailLock.unlock();
        }
    }

    /**
     * The last lines once the drainer has reached end of file, or after {@code wait} at the most (a
     * grandchild may hold stderr open after the sidecar died).
     */
    List<String> tailAfterEof(Duration wait) {
        try {
            done.await(wait.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return tail();
    }

    /** A token bucket that may go into debt: refills at {@code perSecond}, holds at most {@code burst}. */
    private static final class Bucket {
        private final double perSecond;
        private final double burst;
        private double tokens;
        private long lastNanos;

        Bucket(double perSecond, double burst, long nowNanos) {
            this.perSecond = perSecond;
            this.burst = burst;
            this.tokens = burst;
            this.lastNanos = nowNanos;
        }

        /** Adds what accrued since the last refill; returns the tokens available (negative while in debt). */
        double refill(long nowNanos) {
            tokens = Math.min(burst, tokens + (nowNanos - lastNanos) * (perSecond / 1e9));
            lastNanos = nowNanos;
            return tokens;
        }

        void take(double n) {
            tokens -= n;
        }
    }
}
