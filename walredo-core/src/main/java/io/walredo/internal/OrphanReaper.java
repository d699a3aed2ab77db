// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.WalRedoConfig;
import io.walredo.nativeio.NativeCallException;
import io.walredo.nativeio.NativeRuntime;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds and kills sidecars orphaned by an earlier, dead instance of the embedding JVM.
 *
 * <p>Every sidecar carries {@link WalRedoConfig#SIDECAR_OWNER_VARIABLE} in its environment, set by the library to
 * {@code PID:STARTTIME} of the JVM that spawned it (STARTTIME is field 22 of {@code /proc/PID/stat}, clock ticks
 * since boot, so a pid reused by another process does not look like the owner). A sidecar that does not read stdin
 * (hung in a redo) outlives a SIGKILLed JVM; the next manager created finds it here. A process is killed only if
 * all of these hold, read from {@code /proc}: same real uid as this JVM; same pid namespace as this JVM (the owner's
 * pid in the marker is a pid of the sidecar's namespace: read in another, it names an unrelated process, so a
 * manager outside a container must not judge the sidecars of a JVM inside one); its executable is one of the
 * configured redo binaries (after symlinks; a binary replaced on disk since shows as "(deleted)" and is not
 * matched); the variable is present; and no process with the owner's pid and start time exists (an owner whose
 * {@code /proc} entry exists but cannot be read counts as alive). The kill goes through a pidfd
 * opened before the last check ({@link NativeRuntime#killIfStill}), so a reused pid is never hit. The orphan's new
 * parent (init or a subreaper) reaps it. A process forked by an orphan inherits the variable and is found the same
 * way.
 *
 * <p>Never killed: another user's processes, processes of another pid namespace, a process of the same binary
 * without the variable (started by hand or by another tool), sidecars of a live JVM (another manager, in this JVM
 * or another), anything whose {@code /proc} entries cannot be read. Stateless; called once by each new manager,
 * before it spawns anything.
 */
final class OrphanReaper {

    private static final Logger log = LoggerFactory.getLogger(OrphanReaper.class);
    private static final Path PROC = Path.of("/proc");
    /** An environment larger than this is not searched (execve allows 2 MiB; the library sets a few variables). */
    private static final int MAX_ENVIRON_BYTES = 256 * 1024;

    private static final String MARKER_PREFIX = WalRedoConfig.SIDECAR_OWNER_VARIABLE + "=";
    private static final String SELF = ownerOf(ProcessHandle.current().pid());
    /** This JVM's pid namespace ({@code pid:[INODE]}), or empty if unreadable (then nothing is killed). */
    private static final Optional<Path> PID_NAMESPACE = pidNamespace(PROC.resolve("self"));

    private OrphanReaper() {}

    /** This JVM's marker value: {@code PID:STARTTIME}. */
    static String self() {
        return SELF;
    }

    /**
     * Kills every orphaned sidecar of {@code binaries}; returns how many were killed. Never throws: a failure to read
     * or kill one process is logged and the scan goes on.
     */
    static int killOrphans(Collection<Path> binaries, NativeRuntime runtime) {
        Set<Path> executables = new HashSet<>();
        for (Path b : binaries) {
            try {
                executables.add(b.toRealPath());
            } catch (IOException e) {
                executables.add(b);
            }
        }
        String uid = realUid(PROC.resolve("self")).orElse(null);
        if (uid == null) {
            log.warn("cannot read this JVM's uid from /proc/self/status; not looking for orphaned walredo sidecars");
            return 0;
        }
        int killed = 0;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(PROC, OrphanReaper::isPid)) {
            for (Path dir : entries) {
                Optional<String> owner = orphanedSidecar(dir, uid, executables);
                if (owner.isEmpty()) {
                    continue;
                }
                int pid = Integer.parseInt(dir.getFileName().toString());
                String startTime = field(dir, 22).orElse("?");
                try {
                    boolean sent = runtime.killIfStill(
                            pid,
                            () -> field(dir, 22).orElse("").equals(startTime)
                                    && orphanedSidecar(dir, uid, executables).isPresent());
                    if (sent) {
                        killed++;
                        log.atWarn()
                                .addKeyValue("pid", pid)
                                .addKeyValue("owner", owner.get())
                                .addKeyValue("executable", executable(dir).orElse(null))
                                .log("killed an orphaned walredo sidecar left by a dead earlier instance");
                    }
                } catch (NativeCallException e) {
                    log.atWarn().setCause(e).addKeyValue("pid", pid).log("cannot kill an orphaned walredo sidecar");
                }
            }
        } catch (IOException | RuntimeException e) {
            log.atWarn().setCause(e).log("looking for orphaned walredo sidecars failed; none or only some were killed");
        }
        return killed;
    }

    /** The owner marker if {@code dir} is an orphaned sidecar by every rule in the class comment, else empty. */
    private static Optional<String> orphanedSidecar(Path dir, String uid, Set<Path> executables) {
        if (!realUid(dir).map(uid::equals).orElse(false)) {
            return Optional.empty();
        }
        if (PID_NAMESPACE.isEmpty() || !pidNamespace(dir).equals(PID_NAMESPACE)) {
            return Optional.empty();
        }
        Optional<Path> exe = executable(dir);
        if (exe.isEmpty() || !executables.contains(exe.get())) {
            return Optional.empty();
        }
        Optional<String> owner = marker(dir);
        if (owner.isEmpty() || owner.get().equals(SELF) || isAlive(owner.get())) {
            return Optional.empty();
        }
        return owner;
    }

    /**
     * Whether the process named by a {@code PID:STARTTIME} marker still runs; true when unsure (malformed, or a
     * process with that pid exists and its stat cannot be read).
     */
    static boolean isAlive(String marker) {
        int colon = marker.indexOf(':');
        if (colon <= 0 || !marker.substring(0, colon).chars().allMatch(Character::isDigit)) {
            return true;
        }
        long pid;
        try {
            pid = Long.parseLong(marker.substring(0, colon));
        } catch (NumberFormatException e) {
            return true;
        }
        Path dir = PROC.resolve(Long.toString(pid));
        Optional<String> start = field(dir, 22);
        if (start.isEmpty()) {
            // Gone, or there and unreadable (then it may be the owner): only a missing entry means gone.
            return Files.exists(dir);
        }
        return marker.equals(pid + ":" + start.get());
    }

    /** The target of {@code /proc/PID/ns/pid} ({@code pid:[INODE]}), or empty if it cannot be read. */
    private static Optional<Path> pidNamespace(Path dir) {
        try {
            return Optional.of(Files.readSymbolicLink(dir.resolve("ns").resolve("pid")));
        } catch (IOException | UnsupportedOperationException e) {
            return Optional.empty();
        }
    }

    /** {@code PID:STARTTIME} of a running process, or "PID:gone". */
    static String ownerOf(long pid) {
        return pid + ":" + field(PROC.resolve(Long.toString(pid)), 22).orElse("gone");
    }

    private static Optional<String> marker(Path dir) {
        byte[] environ;
        try (InputStream in = Files.newInputStream(dir.resolve("environ"))) {
            environ = in.readNBytes(MAX_ENVIRON_BYTES);
        } catch (IOException e) {
            return Optional.empty();
        }
        int start = 0;
        for (int i = 0; i <= environ.length; i++) {
            if (i == environ.length || environ[i] == 0) {
                String entry = new String(environ, start, i - start, StandardCharsets.UTF_8);
                if (entry.startsWith(MARKER_PREFIX)) {
                    return Optional.of(entry.substring(MARKER_PREFIX.length()));
                }
                start = i + 1;
            }
        }
        return Optional.empty();
    }

    private static Optional<Path> executable(Path dir) {
        try {
            return Optional.of(Files.readSymbolicLink(dir.resolve("exe")));
        } catch (IOException | UnsupportedOperationException e) {
            return Optional.empty();
        }
    }

    /** The real uid (first value of the "Uid:" line of /proc/PID/status). */
    private static Optional<String> realUid(Path dir) {
        try {
            for (String line : Files.readAllLines(dir.resolve("status"), StandardCharsets.UTF_8)) {
                if (line.startsWith("Uid:")) {
                    String[] f = line.substring(4).trim().split("\\s+");
                    return f.length > 0 ? Optional.of(f[0]) : Optional.empty();
                }
            }
        } catch (IOException | RuntimeException e) {
            // gone or unreadable
        }
        return Optional.empty();
    }

    /** Field {@code n} (1-based, as in proc(5)) of /proc/PID/stat; the command in parentheses may hold spaces. */
    private static Optional<String> field(Path dir, int n) {
        try {
            String stat = Files.readString(dir.resolve("stat"), StandardCharsets.UTF_8);
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
            return n - 3 < f.length ? Optional.of(f[n - 3]) : Optional.empty();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static boolean isPid(Path p) {
        String name = p.getFileName().toString();
        return !name.isEmpty() && name.chars().allMatch(Character::isDigit);
    }
}
