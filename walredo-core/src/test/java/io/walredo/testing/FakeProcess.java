// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One run of the fake binary started with {@link ProcessBuilder}, for tests of the fake itself (the library's
 * spawner is tested elsewhere). stdout and stderr are collected continuously by {@link StreamCollector}s.
 *
 * <p>Created by a test, which must close it in a finally block (try-with-resources): {@link #close()} SIGKILLs
 * the process if it is still running and reaps it within {@link #REAP_TIMEOUT}. Not thread-safe except for the
 * collectors.
 */
final class FakeProcess implements AutoCloseable {

    /** The tenant shard id every run is given, in Neon's text form. */
    static final String TENANT = "3f1c9b2e4d5a6f708192a3b4c5d6e7f8-0102";

    /** Bound on reaping after SIGKILL; generous because the machine may be busy with other builds. */
    static final Duration REAP_TIMEOUT = Duration.ofSeconds(10);

    private final Process process;
    private final StreamCollector stdout;
    private final StreamCollector stderr;
    private final List<String> command;

    private FakeProcess(Process process, StreamCollector stdout, StreamCollector stderr, List<String> command) {
        this.process = process;
        this.stdout = stdout;
        this.stderr = stderr;
        this.command = command;
    }

    /**
     * Starts {@code fake --wal-redo --tenant-shard-id TENANT extra...}.
     *
     * @param extra extra arguments, usually fault flags
     * @return the running process
     * @throws IOException if it cannot be started
     */
    static FakeProcess start(List<String> extra) throws IOException {
        return startRaw(FakeRedoModel.command(TENANT, extra));
    }

    /**
     * Starts the fake with the given arguments after the binary path, without adding {@code --wal-redo}.
     *
     * @param args the arguments
     * @return the running process
     * @throws IOException if it cannot be started
     */
    static FakeProcess startArgs(List<String> args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(FakeRedoModel.binary().toString());
        command.addAll(args);
        return startRaw(command);
    }

    /**
     * Starts an arbitrary command, for wrappers such as {@code sh -c '... exec fake ...'}.
     *
     * @param command the full command line
     * @return the running process
     * @throws IOException if it cannot be started
     */
    static FakeProcess startRaw(List<String> command) throws IOException {
        Process p = new ProcessBuilder(command).start();
        return new FakeProcess(
                p,
                StreamCollector.start("stdout", p.getInputStream()),
                StreamCollector.start("stderr", p.getErrorStream()),
                List.copyOf(command));
    }

    /**
     * Starts the fake with its stdout going to a FIFO that a collector opens itself, so that EOF on stdout
     * means exactly "every writer closed it". The JDK's own pipe stream closes its descriptor when the child
     * exits, which would fake an EOF while a grandchild still holds the pipe.
     *
     * @param fifo an existing FIFO
     * @param extra extra arguments
     * @return the running process
     * @throws IOException if it cannot be started
     */
    static FakeProcess startWithStdoutFifo(File fifo, List<String> extra) throws IOException {
        // Opening a FIFO for reading blocks until a writer opens it, and ProcessBuilder's open for writing blocks
        // until a reader opens it: the collector's thread opens while this thread starts the process.
        StreamCollector out = StreamCollector.start("stdout", () -> new FileInputStream(fifo));
        List<String> command = FakeRedoModel.command(TENANT, extra);
        Process p = new ProcessBuilder(command).redirectOutput(fifo).start();
        return new FakeProcess(p, out, StreamCollector.start("stderr", p.getErrorStream()), List.copyOf(command));
    }

    /**
     * Writes {@code bytes} to the child's stdin in one write and flushes.
     *
     * @param bytes the bytes
     * @throws IOException if the pipe is broken
     */
    void write(byte[] bytes) throws IOException {
        OutputStream in = process.getOutputStream();
        in.write(bytes);
        in.flush();
    }

    /**
     * Returns the child's stdin.
     *
     * @return the stream; closing it sends EOF
     */
    OutputStream stdin() {
        return process.getOutputStream();
    }

    /**
     * Closes the child's stdin, so it sees EOF.
     *
     * @throws IOException if flushing fails
     */
    void closeStdin() throws IOException {
        process.getOutputStream().close();
    }

    StreamCollector stdout() {
        return stdout;
    }

    StreamCollector stderr() {
        return stderr;
    }

    Process process() {
        return process;
    }

    long pid() {
        return process.pid();
    }

    /**
     * Waits for the child to exit and returns its status as the JDK reports it: the exit code, or 128 plus the
     * signal number.
     *
     * @param timeout the bound
     * @return the status
     * @throws InterruptedException if interrupted
     */
    int awaitExit(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            fail("fake did not exit within " + timeout + ": " + describe());
        }
        return process.exitValue();
    }

    /**
     * Waits for {@code count} stdout bytes, failing with the process state if they do not come.
     *
     * @param count the number of bytes
     * @param timeout the bound
     * @throws InterruptedException if interrupted
     */
    void awaitStdout(int count, Duration timeout) throws InterruptedException {
        assertTrue(
                stdout.awaitBytes(count, timeout),
                () -> "expected " + count + " stdout bytes within " + timeout + ": " + describe());
    }

    /**
     * Describes the run for assertion messages: command, liveness, both streams and the stderr text.
     *
     * @return a one-paragraph description
     */
    String describe() {
        String text = stderr.text();
        if (text.length() > 2000) {
            text = text.substring(0, 2000) + "…";
        }
        return "command " + command + ", pid " + process.pid()
                + (process.isAlive() ? " alive" : " exited " + process.exitValue())
                + ", " + stdout + ", " + stderr + ", stderr text: " + text.strip();
    }

    /** SIGKILLs the child if it is running and reaps it; fails the test if it cannot be reaped in time. */
    @Override
    public void close() {
        // Kill before closing stdin: a test thread blocked writing to a child that does not read holds the
        // stream's monitor, and close() would wait for it forever; the child's death unblocks that write.
        process.destroyForcibly();
        boolean reaped;
        try {
            reaped = process.waitFor(REAP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            reaped = false;
        }
        if (reaped) {
            try {
                process.getOutputStream().close();
            } catch (IOException ignored) {
                // The child is dead; a broken stdin pipe is expected and carries no information.
            }
        }
        if (!reaped) {
            fail("fake pid " + process.pid() + " not reaped within " + REAP_TIMEOUT + " after SIGKILL");
        }
    }
}
