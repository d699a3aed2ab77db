// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.SpawnFailedException;
import io.walredo.WalRedoConfig;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Containment;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.NativeRuntime;
import io.walredo.nativeio.PipeTimeoutException;
import io.walredo.nativeio.SpawnException;
import io.walredo.nativeio.SpawnSpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts one sidecar process and wires it up: argv and environment, {@code posix_spawn} within
 * {@code spawnTimeout}, its stderr drainer, and the exit hook that gives back its unit of the live-sidecar cap once
 * it has been reaped. The caller has reserved that unit; whatever fails here gives it back. Used for a tenant's
 * sidecar and for a warm spare alike (a spare's key names no tenant, so its argv has no {@code --tenant-shard-id}).
 */
final class SidecarLauncher {
    private static final Logger log = LoggerFactory.getLogger(SidecarLauncher.class);

    /** What the owner counts: every sidecar between its creation and its reap. */
    interface Registry {
        /** {@code sc} was created; it is reported {@link #gone} exactly once, after its reap. */
        void born(Sidecar sc);

        /** {@code sc} (null when the spawn failed before one existed) is no longer alive: its cap unit goes back. */
        void gone(Sidecar sc);
    }

    private final WalRedoConfig config;
    private final NativeRuntime runtime;
    private final Containment containment;
    private final Metrics metrics;
    private final LongSupplier nanoClock;
    private final Sidecar.Listener killed;
    private final Registry registry;
    private final Executor exitThreads = r -> Thread.ofVirtual().name("walredo-exit").start(r);

    SidecarLauncher(WalRedoConfig config, NativeRuntime runtime, Containment containment, Metrics metrics,
            LongSupplier nanoClock, Sidecar.Listener killed, Registry registry) {
        this.config = config;
        this.runtime = runtime;
        this.containment = containment;
        this.metrics = metrics;
        this.nanoClock = nanoClock;
        this.killed = killed;
        this.registry = registry;
    }

    /**
     * Spawns the sidecar for {@code key}; the caller has reserved one unit of the cap, which is given back here on
     * any failure (an {@code Error} included, rethrown as it is).
     */
    Sidecar launch(SidecarKey key) throws SpawnFailedException {
        WalRedoConfig.RedoBinary bin = config.binaries().get(key.pgVersion());
        SpawnSpec spec;
        ChildProcess child;
        long t0 = nanoClock.getAsLong();
        JfrEvents.SpawnEvent event = new JfrEvents.SpawnEvent();
        try {
            spec = new SpawnSpec(bin.executable(), argv(bin, key), environment(bin), containment);
            event.begin();
            child = runtime.spawn(spec, Deadline.after(config.spawnTimeout()));
        } catch (Throwable t) {
            registry.gone(null);
            commit(event, key, 0, false);
            throw spawnFailed(key, bin, t);
        }
        long latency = nanoClock.getAsLong() - t0;
        commit(event, key, child.pid(), true);
        Sidecar sc = null;
        boolean exitHooked = false;
        try {
            StderrDrainer drainer = new StderrDrainer(key.tenant(), child.pid(), child.stderr(), metrics, nanoClock,
                    config.stderrMaxLineBytes(), config.stderrLinesPerSecond(), config.stderrTailLines(),
                    config.stderrBytesPerSecond());
            Sidecar created = new Sidecar(key, child, Instant.now(), nanoClock, drainer, killed, config.stallTimeout());
            sc = created;
            registry.born(created);
            child.onExit().whenCompleteAsync((status, err) -> {
                try {
                    registry.gone(created);
                } finally {
                    // terminated() must complete whatever happens above, or detach/shutdown wait out their deadline
                    created.accounted(status, err);
                }
                if (status != null) {
                    created.childExited(status);
                }
            }, exitThreads);
            exitHooked = true;
            drainer.start();
        } catch (Throwable t) {
            child.close();
            if (!exitHooked) {
                // Nothing will observe this child's exit: give back what the hook would have.
                registry.gone(sc);
            }
            throw t;
        }
        metrics.sidecarStarted(key.tenant(), child.pid(), latency);
        log.atInfo().addKeyValue("tenant", JfrEvents.name(key.tenant())).addKeyValue("pid", child.pid())
                .addKeyValue("pgVersion", key.pgVersion())
                .addKeyValue("spawnMicros", TimeUnit.NANOSECONDS.toMicros(latency))
                .log(key.isSpare() ? "walredo warm spare sidecar spawned" : "walredo sidecar spawned");
        return sc;
    }

    private List<String> argv(WalRedoConfig.RedoBinary bin, SidecarKey key) {
        List<String> argv = new ArrayList<>();
        argv.add(bin.executable().toString());
        argv.add("--wal-redo");
        argv.addAll(config.extraArgs());
        if (!key.isSpare()) {
            // A spare cannot name the tenant it will serve; the id is informational for the redo process.
            argv.add("--tenant-shard-id");
            argv.add(key.tenant().toString());
        }
        return argv;
    }

    private Map<String, String> environment(WalRedoConfig.RedoBinary bin) {
        Map<String, String> env = new HashMap<>(config.environment());
        bin.libDir().ifPresent(dir -> env.put("LD_LIBRARY_PATH", dir.toString()));
        env.put(WalRedoConfig.SIDECAR_OWNER_VARIABLE, OrphanReaper.self());
        return env;
    }

    /** The typed error for a failed spawn; an {@code Error} is rethrown as it is. */
    private SpawnFailedException spawnFailed(SidecarKey key, WalRedoConfig.RedoBinary bin, Throwable t) {
        if (t instanceof Error e) {
            throw e;
        }
        String who = key.isSpare() ? "a warm spare (pg" + key.pgVersion() + ")" : "tenant " + key.tenant();
        if (t instanceof PipeTimeoutException) {
            return new SpawnFailedException(tenantOf(key), "spawning the walredo sidecar for " + who
                    + " did not finish within spawnTimeout " + config.spawnTimeout()
                    + "; the host may be overloaded or out of processes", t);
        }
        String what = t instanceof SpawnException ? "posix_spawn failed for " + who + ": "
                : "spawning the walredo sidecar for " + who + " failed: ";
        return new SpawnFailedException(tenantOf(key), what + t.getMessage() + "; check redoBinary for PostgreSQL "
                + key.pgVersion() + " = " + bin.executable(), t);
    }

    private static io.walredo.TenantShardId tenantOf(SidecarKey key) {
        return key.isSpare() ? Failures.NO_TENANT : key.tenant();
    }

    private static void commit(JfrEvents.SpawnEvent event, SidecarKey key, int pid, boolean ok) {
        if (event.shouldCommit()) {
            event.tenant = JfrEvents.name(key.tenant());
            event.pgVersion = key.pgVersion();
            event.pid = pid;
            event.succeeded = ok;
            event.commit();
        }
    }
}
