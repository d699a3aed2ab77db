// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Compiles the fake redo binary from the C source this jar carries ({@value #SOURCE_RESOURCE}), once, into a
 * cache directory: an embedder's tests need a C compiler, not a build step of their own.
 *
 * <p>Why a source and not binaries: a jar with the binary would need one per OS and architecture
 * (linux-x86_64, linux-aarch64), and the machine that builds this project has no cross compiler. The source is
 * one C11 + POSIX file that any Linux {@code cc} compiles in well under a second. This project's own build
 * still compiles it with {@code -Werror} in walredo-native and points {@value FakeRedoModel#BINARY_PROPERTY} at
 * the result, so its tests never compile here; this class leaves {@code -Werror} out, so that a newer
 * compiler's new warning does not fail an embedder's tests.
 *
 * <p>A cache entry is named by the SHA-256 of the source, the compiler command and the architecture, so a new
 * version of this jar never runs an old binary. The compiler writes a temporary file inside the entry, which is
 * then renamed into place atomically: threads and JVMs that race on a cold cache each compile, and every one
 * sees either no binary or a whole one. Holds no state; any thread may call it.
 */
public final class FakeBinaryCompiler {

    /** The classpath resource, beside this class, holding the fake's C source. */
    public static final String SOURCE_RESOURCE = "fake_walredo.c";

    /** The binary's file name inside a cache entry. */
    public static final String BINARY_NAME = "fake-walredo";

    /** How long one compilation may take before the compiler is killed: generous for a loaded CI machine. */
    public static final Duration COMPILE_TIMEOUT = Duration.ofMinutes(2);

    private FakeBinaryCompiler() {}

    /**
     * Returns the cache directory used when none is given: {@code $XDG_CACHE_HOME/walredo-testing}, or
     * {@code ~/.cache/walredo-testing} when that variable is unset.
     *
     * @return a path that may not exist yet
     */
    public static Path defaultCacheDir() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("walredo-testing");
    }

    /**
     * Returns the fake binary in {@code cacheDir}, compiling it first if this source and compiler have no entry
     * there yet. The compiler is {@code $CC} (split at spaces, so {@code ccache gcc} works) or {@code cc}.
     *
     * @param cacheDir the cache directory; created if missing
     * @return an absolute path to an executable file
     * @throws IllegalStateException if there is no compiler, it fails, or it takes longer than
     *     {@link #COMPILE_TIMEOUT}; the message quotes its output and says what to install
     * @throws UncheckedIOException if the cache directory cannot be written
     */
    public static Path compileInto(Path cacheDir) {
        byte[] source = source();
        List<String> cc = compilerCommand();
        Path entry = cacheDir.toAbsolutePath().resolve(key(source, cc));
        Path binary = entry.resolve(BINARY_NAME);
        if (Files.isExecutable(binary)) {
            return binary;
        }
        Path src = null;
        Path tmp = null;
        Path log = null;
        try {
            Files.createDirectories(entry);
            src = Files.createTempFile(entry, "fake_walredo-", ".c");
            tmp = Files.createTempFile(entry, BINARY_NAME + "-", ".tmp");
            log = Files.createTempFile(entry, "cc-", ".log");
            Files.write(src, source);
            List<String> argv = new ArrayList<>(cc);
            argv.addAll(List.of(
                    "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-o", tmp.toString(), src.toString()));
            run(argv, log);
            Files.move(tmp, binary, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return binary;
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "cannot write the fake redo binary's cache entry " + entry
                            + "; pass another directory to FakeBinaryCompiler.compileInto or set XDG_CACHE_HOME",
                    e);
        } finally {
            deleteQuietly(src);
            deleteQuietly(tmp);
            deleteQuietly(log);
        }
    }

    /**
     * Returns the fake's C source as this jar carries it.
     *
     * @return a new array
     * @throws IllegalStateException if the resource is missing (a jar built without it)
     */
    public static byte[] source() {
        try (InputStream in = FakeBinaryCompiler.class.getResourceAsStream(SOURCE_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("resource io/walredo/testing/" + SOURCE_RESOURCE + " is missing from"
                        + " the class path; walredo-testing's jar carries it (walredo-native/src/main/c in the"
                        + " source tree)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read resource " + SOURCE_RESOURCE, e);
        }
    }

    private static List<String> compilerCommand() {
        String cc = System.getenv("CC");
        if (cc == null || cc.isBlank()) {
            return List.of("cc");
        }
        return List.of(cc.trim().split("\\s+"));
    }

    private static String key(byte[] source, List<String> cc) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(source);
            sha.update(String.join(" ", cc).getBytes(StandardCharsets.UTF_8));
            sha.update((byte) 0);
            sha.update(System.getProperty("os.arch").getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(sha.digest(), 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JDK", e);
        }
    }

    /** Runs the compiler with its output in {@code log}; the deadline is computed once, before it starts. */
    private static void run(List<String> argv, Path log) throws IOException {
        long deadline = System.nanoTime() + COMPILE_TIMEOUT.toNanos();
        Process p;
        try {
            p = new ProcessBuilder(argv)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
        } catch (IOException e) {
            throw new IllegalStateException(
                    "no C compiler: cannot run " + argv.get(0) + " (" + e.getMessage()
                            + ") to build the fake redo binary; install gcc (apt-get install gcc), set CC, or point -D"
                            + FakeRedoModel.BINARY_PROPERTY + " at a built fake",
                    e);
        }
        try {
            if (!p.waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                p.destroyForcibly();
                p.waitFor(
                        Math.max(1, deadline - System.nanoTime()) + TimeUnit.SECONDS.toNanos(5), TimeUnit.NANOSECONDS);
                throw new IllegalStateException(argv.get(0) + " did not finish compiling the fake redo binary within "
                        + COMPILE_TIMEOUT + "; killed it. Output: " + Files.readString(log));
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while compiling the fake redo binary", e);
        }
        if (p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", argv) + " failed with exit code " + p.exitValue()
                    + " compiling the fake redo binary; install gcc (apt-get install gcc) or point -D"
                    + FakeRedoModel.BINARY_PROPERTY + " at a built fake. Output: " + Files.readString(log));
        }
    }

    private static void deleteQuietly(Path p) {
        if (p == null) {
            return;
        }
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a leftover temporary file in the cache entry; the next compile makes its own
        }
    }
}
