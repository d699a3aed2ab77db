// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.KillCause;
import io.walredo.SpawnFailedException;
import io.walredo.WalRedoConfig;
import io.walredo.nativeio.ChildProcess;
import io.walredo.nativeio.Containment;
import io.walredo.nativeio.Deadline;
import io.walredo.nativeio.DeadlineExceededException;
import io.walredo.nativeio.NativeRuntime;
import io.walredo.nativeio.SpawnException;
import io.walredo.nativeio.SpawnSpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts one sidecar process and wires it up: argv and environment, {@code posix_spawn} within
 * {@code spawnTimeout}, its stderr drainer, and the sidecar's own watch on its exit ({@link Sidecar#watchExit}),
 * after which the sidecar reports its end to {@link SidecarDeaths} itself. The caller has reserved a unit of the
 * live-sidecar cap; a spawn that leaves no sidecar to report gives it back here ({@link SidecarDeaths#unborn}).
 * Used for a tenant's sidecar and for a warm spare alike (a spare's key names no tenant, so its argv has no
 * {@code --tenant-shard-id}).
 */
final class SidecarLauncher {
    private static final Logger log = LoggerFactory.getLogger(SidecarLauncher.class);

    private final WalRedoConfig config;
    private final NativeRuntime runtime;
    private final Containment containment;
    private final Metrics metrics;
    private final LongSupplier nanoClock;
    private final SidecarDeaths deaths;
    /** The start-up times of every sidecar this launcher starts (admission compares a start-up with them). */
    private final StartupTimes startups = new StartupTimes();

    private final StderrLimits stderrLimits;

    SidecarLauncher(
            WalRedoConfig config,
            NativeRuntime runtime,
            Containment containment,
            Metrics metrics,
            LongSupplier nanoClock,
            SidecarDeaths deaths) {
        this.config = config;
        this.runtime = runtime;
        this.containment = containment;
        this.metrics = metrics;
        this.nanoClock = nanoClock;
        this.deaths = deaths;
        this.stderrLimits = StderrLimits.from(config);
    }

    /**
     * Spawns the sidecar for {@code key}; the caller has reserved one unit of the cap, which is given back here on
     * any failure (an {@code Error} included, rethrown as it is).
     */
    Sidecar launch(SidecarKey key) throws SpawnFailedException {
        WalRedoConfig.RedoBinary bin = config.binaries().get(key.pgVersion());
        ChildProcess child;
        long t0 = 0;
        JfrEvents.SpawnEvent event = null;
        try {
            t0 = nanoClock.getAsLong();
            event = new JfrEvents.SpawnEvent();
            SpawnSpec spec = new SpawnSpec(bin.executable(), argv(bin, key), environment(bin), containment);
            event.begin();
            child = runtime.spawn(spec, Deadline.after(config.spawnTimeout()));
        } catch (Throwable t) {
            deaths.unborn(null);
            if (event != null) {
                commit(event, key, 0, false);
            }
            throw spawnFailed(key, bin, t);
        }
        Sidecar sc = null;
        boolean exitWatched = false;
        try {
            long latency = nanoClock.getAsLong() - t0;
            commit(event, key, child.pid(), true);
            StderrDrainer drainer =
                    new StderrDrainer(key.tenant(), child.pid(), child.stderr(), metrics, nanoClock, stderrLimits);
            sc = new Sidecar(new SidecarLife.Parts(
                    key, child, Instant.now(), nanoClock, drainer, deaths, config.stallTimeout(), startups));
            deaths.born(sc);
            sc.watchExit();
            exitWatched = true;
            // Reported before anything else can fail, so a sidecar killed below still has its start to pair with.
            metrics.sidecarStarted(key.tenant(), child.pid(), latency);
            drainer.start();
            log.atInfo()
                    .addKeyValue("tenant", JfrEvents.name(key.tenant()))
                    .addKeyValue("pid", child.pid())
                    .addKeyValue("pgVersion", key.pgVersion())
                    .addKeyValue("spawnMicros", TimeUnit.NANOSECONDS.toMicros(latency))
                    .log(key.isSpare() ? "walredo warm spare sidecar spawned" : "walredo sidecar spawned");
            return sc;
        } catch (Throwable t) {
            if (exitWatched) {
                // The sidecar watches its own exit: killing it books its death and, after the reap, its cap unit.
                sc.kill(KillCause.ERROR);
            } else {
                // Nothing will observe this child's exit: give back what its reap report would have.
                child.close();
                deaths.unborn(sc);
            }
            throw t;
        }
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
        if (t instanceof DeadlineExceededException) {
            return new SpawnFailedException(
                    tenantOf(key),
                    "spawning the walredo sidecar for " + who
                            + " did not finish within spawnTimeout " + config.spawnTimeout()
                            + "; the host may be overloaded or out of processes",
                    t);
        }
        String what = t instanceof SpawnException
                ? "posix_spawn failed for " + who + ": "
                : "spawning the walredo sidecar for " + who + " failed: ";
        return new SpawnFailedException(
                tenantOf(key),
                what + t.getMessage() + "; check redoBinary for PostgreSQL " + key.pgVersion() + " = "
                        + bin.executable(),
                t);
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
