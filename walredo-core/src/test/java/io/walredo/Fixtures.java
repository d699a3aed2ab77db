// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.testing.FakeRedoModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/** Shared helpers for the manager's integration tests against the fake redo binary. */
final class Fixtures {
    static final int PG = 16;

    private Fixtures() {}

    /** A config for the fake binary with the given extra (fault) arguments and short, test-friendly timeouts. */
    static WalRedoConfig.Builder config(List<String> fakeArgs) {
        return WalRedoConfig.builder()
                .redoBinary(PG, FakeRedoModel.binary())
                .extraArgs(fakeArgs)
                .redoTimeout(Duration.ofSeconds(20))
                .spawnBackoff(Duration.ofMillis(20), Duration.ofMillis(200))
                .killTimeout(Duration.ofSeconds(5));
    }

    static WalRedoConfig.Builder config() {
        return config(List.of());
    }

    /** A wrapper script that runs the fake with {@code fakeArgs} plus whatever argv the library passes. */
    static Path wrapper(Path dir, String name, List<String> fakeArgs) throws IOException {
        Path script = dir.resolve(name);
        Files.writeString(
                script, "#!/bin/sh\nexec " + FakeRedoModel.binary() + " \"$@\" " + String.join(" ", fakeArgs) + "\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return script;
    }

    static TenantShardId tenant(int i) {
        return TenantShardId.of(0x1234_5678_9abc_def0L + i, 0x0fed_cba9_8765_4321L * (i + 1));
    }

    /** A deterministic request, distinct for every {@code i} (tag, records and LSNs all depend on it). */
    static RedoRequest request(int i) {
        return request(i, 2, 64);
    }

    static RedoRequest request(int i, int records, int recordBytes) {
        SplittableRandom rnd = new SplittableRandom(i * 31L + 7);
        BufferTag tag =
                new BufferTag(new RelTag(1663, 13010, 16384 + (i & 0xffff), RelTag.MAIN_FORKNUM), i & 0x7fffffffL);
        long lsn = 0x1000000L + (long) i * 0x10000L;
        RedoRequest.Builder b = RedoRequest.builder(PG, tag, Lsn.of(lsn + (records + 1L) * 0x100L));
        if (i % 5 == 0) {
            byte[] base = new byte[RedoRequest.PAGE_BYTES];
            rnd.nextBytes(base);
            b.baseImage(Lsn.of(lsn), base);
        }
        for (int r = 0; r < records; r++) {
            byte[] rec = new byte[recordBytes];
            rnd.nextBytes(rec);
            b.addRecord(WalRecord.of(Lsn.of(lsn + (r + 1L) * 0x100L), false, rec));
        }
        return b.build();
    }

    static byte[] expected(RedoRequest r) {
        return FakeRedoModel.expectedPage(r);
    }

    /** Waits for {@code condition} until {@code timeout}, then fails with {@code what}. */
    static void await(String what, Duration timeout, BooleanSupplier condition) {
        long end = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - end > 0) {
                fail("timed out after " + timeout + " waiting for: " + what);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
        }
    }

    /** The state letter of our child {@code pid} from /proc (Z for a zombie), or empty if it is gone or not ours. */
    static Optional<Character> childState(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String rest = stat.substring(stat.lastIndexOf(')') + 2);
            String[] f = rest.split(" ");
            long ppid = Long.parseLong(f[1]);
            if (ppid != ProcessHandle.current().pid()) {
                return Optional.empty();
            }
            return Optional.of(f[0].charAt(0));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Waits until {@code pid} is neither alive as our child nor a zombie. */
    static void awaitReaped(int pid) {
        await(
                "pid " + pid + " reaped",
                Duration.ofSeconds(10),
                () -> childState(pid).isEmpty());
    }

    /** One of our child processes: its pid, state letter (Z for a zombie) and command line (NULs as spaces). */
    record Child(int pid, char state, String cmdline) {}

    /** Our child processes now, zombies included (a process that exits while being read is left out). */
    static List<Child> children() {
        return childrenOf(ProcessHandle.current().pid());
    }

    /** The child processes of {@code parent} now, zombies included. */
    static List<Child> childrenOf(long parent) {
        List<Child> out = new ArrayList<>();
        try (var dirs = Files.list(Path.of("/proc"))) {
            for (Path d : (Iterable<Path>) dirs::iterator) {
                String n = d.getFileName().toString();
                if (!n.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                try {
                    String stat = Files.readString(d.resolve("stat"));
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    if (Long.parseLong(f[1]) == parent) {
                        String cmdline = Files.readString(d.resolve("cmdline")).replace('\0', ' ');
                        out.add(new Child(Integer.parseInt(n), f[0].charAt(0), cmdline));
                    }
                } catch (IOException | RuntimeException gone) {
                    // raced with exit
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    /** Our children that are zombies now. */
    static List<Integer> zombies() {
        return children().stream().filter(c -> c.state() == 'Z').map(Child::pid).toList();
    }

    static int sidecarPid(WalRedoManager m, TenantShardId t) {
        return m.status().stream()
                .filter(s -> s.tenant().equals(t))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no live sidecar for " + t))
                .pid();
    }
}
