// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.function.LongSupplier;

/**
 * Immutable configuration of a {@link WalRedoManager}, made by {@link #builder()}.
 *
 * <p>{@link Builder#build()} checks every field and every cross-field rule and throws one
 * {@link IllegalArgumentException} that lists every problem. Bad values are rejected, never clamped; every
 * duration must be positive and at most {@link #MAX_DURATION}.
 * The table in {@code docs/operations.md} mirrors the defaults below.
 */
public final class WalRedoConfig {

    /**
     * Default {@link #idleTimeout()}: 180 s, the idle time after which Neon's pageserver (its tenant housekeeping,
     * since February 2025) kills a walredo process.
     */
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(180);
    /** Default {@link #redoTimeout()}: 60 s, Neon's wal_redo_timeout. */
    public static final Duration DEFAULT_REDO_TIMEOUT = Duration.ofSeconds(60);
    /** Default {@link #spawnTimeout()}: 10 s. */
    public static final Duration DEFAULT_SPAWN_TIMEOUT = Duration.ofSeconds(10);
    /** Default {@link #killTimeout()}: 5 s. */
    public static final Duration DEFAULT_KILL_TIMEOUT = Duration.ofSeconds(5);
    /** Upper bound of the default {@link #housekeepingPeriod()} (which is idle timeout / 4 when that is smaller). */
    public static final Duration DEFAULT_MAX_HOUSEKEEPING_PERIOD = Duration.ofSeconds(10);
    /** Default {@link #spawnBackoffInitial()}: 100 ms. */
    public static final Duration DEFAULT_SPAWN_BACKOFF_INITIAL = Duration.ofMillis(100);
    /** Default {@link #spawnBackoffMax()}: 10 s. */
    public static final Duration DEFAULT_SPAWN_BACKOFF_MAX = Duration.ofSeconds(10);
    /** Default {@link #maxLiveSidecars()}: no cap. */
    public static final int DEFAULT_MAX_LIVE_SIDECARS = Integer.MAX_VALUE;
    /** Default {@link #maxQueuedPerTenant()}: no fixed bound (deadline-aware admission still applies). */
    public static final int DEFAULT_MAX_QUEUED_PER_TENANT = Integer.MAX_VALUE;
    /** Default {@link #warmSpares()}: none, so every first request after a quiesce, attach or crash waits for a spawn. */
    public static final int DEFAULT_WARM_SPARES = 0;
    /** The most {@link #warmSpares()} per version: spares are for the next few first requests, not a fleet. */
    public static final int MAX_WARM_SPARES = 64;
    /** Default {@link #maxRequestBytes()}: 128 MiB of encoded request. */
    public static final int DEFAULT_MAX_REQUEST_BYTES = 128 << 20;
    /** Default {@link #stderrMaxLineBytes()}: 4 KiB. */
    public static final int DEFAULT_STDERR_MAX_LINE_BYTES = 4096;
    /** Default {@link #stderrLinesPerSecond()}: 50 lines a second per sidecar (bursts of twice that). */
    public static final int DEFAULT_STDERR_LINES_PER_SECOND = 50;
    /** Default {@link #stderrTailLines()}: the last 16 lines. */
    public static final int DEFAULT_STDERR_TAIL_LINES = 16;
    /** Default {@link #stderrBytesPerSecond()}: 256 KiB a second per sidecar. */
    public static final int DEFAULT_STDERR_BYTES_PER_SECOND = 256 * 1024;
    /** Default {@link #sidecarWorkingDirectory()}: the root directory. */
    public static final Path DEFAULT_SIDECAR_WORKING_DIRECTORY = Path.of("/");
    /** Default {@link #sidecarOpenFilesLimit()}: 1,024, the usual soft limit outside a JVM. */
    public static final int DEFAULT_SIDECAR_OPEN_FILES_LIMIT = 1024;
    /** Default {@link #sidecarOomScoreAdj()}: 1,000, so the OOM killer takes a sidecar before anything else. */
    public static final int DEFAULT_SIDECAR_OOM_SCORE_ADJ = 1000;
    /** Every sidecar's umask: files it creates are its user's alone. */
    public static final int SIDECAR_UMASK = 0077;
    /**
     * The environment variable the library sets on every sidecar to {@code PID:STARTTIME} of the JVM that spawned it,
     * so that a later manager can tell a sidecar orphaned by a dead JVM (see {@link #killOrphanedSidecars()}). The
     * configured {@link #environment()} may not set it.
     */
    public static final String SIDECAR_OWNER_VARIABLE = "WALREDO_SUPERVISOR_OWNER";

    /**
     * The longest duration any setting accepts: 365 days. Far beyond any useful timeout or period, and small
     * enough that deadlines and back-off sums computed in nanoseconds cannot overflow (a longer duration
     * would make {@code Duration.toNanos()} throw deep inside a request or the housekeeper).
     */
    public static final Duration MAX_DURATION = Duration.ofDays(365);

    /** Smallest stderr line bound accepted. */
    public static final int MIN_STDERR_MAX_LINE_BYTES = 64;

    /** Smallest stderr read rate accepted, in bytes a second. */
    public static final int MIN_STDERR_BYTES_PER_SECOND = 4096;
    /** Lowest {@link #sidecarOpenFilesLimit()}. */
    public static final int MIN_SIDECAR_OPEN_FILES_LIMIT = 64;
    /** Lowest {@link #sidecarAddressSpaceLimit()}: 64 MiB. */
    public static final long MIN_SIDECAR_ADDRESS_SPACE_LIMIT = 64L << 20;

    /**
     * One redo binary: a {@code postgres} built with {@code --wal-redo} support, and the directory of its
     * shared libraries (passed to it as {@code LD_LIBRARY_PATH}, as Neon does), if it needs one.
     *
     * @param executable absolute path of the binary
     * @param libDir directory for {@code LD_LIBRARY_PATH}, if any
     */
    public record RedoBinary(Path executable, Optional<Path> libDir) {
        /** Validates non-null fields. */
        public RedoBinary {
            Objects.requireNonNull(executable, "executable");
            Objects.requireNonNull(libDir, "libDir");
        }
    }

    private final Map<Integer, RedoBinary> binaries;
    private final List<String> extraArgs;
    private final Map<String, String> environment;
    private final Duration idleTimeout;
    private final Duration redoTimeout;
    private final Duration spawnTimeout;
    private final Duration killTimeout;
    private final Duration stallTimeout;
    private final Duration housekeepingPeriod;
    private final Duration spawnBackoffInitial;
    private final Duration spawnBackoffMax;
    private final int maxLiveSidecars;
    private final int maxQueuedPerTenant;
    private final int warmSpares;
    private final int maxRequestBytes;
    private final int stderrMaxLineBytes;
    private final int stderrLinesPerSecond;
    private final int stderrTailLines;
    private final int stderrBytesPerSecond;
    private final WalRedoMetricsListener metricsListener;
    private final boolean shutdownHook;
    private final LongSupplier nanoClock;
    private final Path sidecarWorkingDirectory;
    private final int sidecarOpenFilesLimit;
    private final boolean sidecarCoreDumps;
    private final OptionalLong sidecarAddressSpaceLimit;
    private final Optional<Duration> sidecarCpuTimeLimit;
    private final int sidecarOomScoreAdj;
    private final boolean killOrphanedSidecars;
    private final Optional<Path> sidecarCgroup;
    private final Builder source;

    private WalRedoConfig(Builder b, Duration housekeepingPeriod) {
        // What it was built from, with stallTimeout and housekeepingPeriod still unset where they were, so that a
        // builder from toBuilder() derives them again from a changed redoTimeout or idleTimeout.
        this.source = new Builder(b);
        this.binaries = Collections.unmodifiableMap(new TreeMap<>(b.binaries));
        this.extraArgs = List.copyOf(b.extraArgs);
        this.environment = Collections.unmodifiableMap(new TreeMap<>(b.environment));
        this.idleTimeout = b.idleTimeout;
        this.redoTimeout = b.redoTimeout;
        this.spawnTimeout = b.spawnTimeout;
        this.killTimeout = b.killTimeout;
        this.stallTimeout = b.stallTimeout != null ? b.stallTimeout : b.redoTimeout;
        this.housekeepingPeriod = housekeepingPeriod;
        this.spawnBackoffInitial = b.spawnBackoffInitial;
        this.spawnBackoffMax = b.spawnBackoffMax;
        this.maxLiveSidecars = b.maxLiveSidecars;
        this.maxQueuedPerTenant = b.maxQueuedPerTenant;
        this.warmSpares = b.warmSpares;
        this.maxRequestBytes = b.maxRequestBytes;
        this.stderrMaxLineBytes = b.stderrMaxLineBytes;
        this.stderrLinesPerSecond = b.stderrLinesPerSecond;
        this.stderrTailLines = b.stderrTailLines;
        this.stderrBytesPerSecond = b.stderrBytesPerSecond;
        this.metricsListener = b.metricsListener;
        this.shutdownHook = b.shutdownHook;
        this.nanoClock = b.nanoClock;
        this.sidecarWorkingDirectory = b.sidecarWorkingDirectory;
        this.sidecarOpenFilesLimit = b.sidecarOpenFilesLimit;
        this.sidecarCoreDumps = b.sidecarCoreDumps;
        this.sidecarAddressSpaceLimit = b.sidecarAddressSpaceLimit;
        this.sidecarCpuTimeLimit = b.sidecarCpuTimeLimit;
        this.sidecarOomScoreAdj = b.sidecarOomScoreAdj;
        this.killOrphanedSidecars = b.killOrphanedSidecars;
        this.sidecarCgroup = b.sidecarCgroup;
    }

    /** A builder with every default set and no redo binary yet. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * A builder holding every setting of this configuration, to derive another from it. Settings derived from others
     * ({@code stallTimeout} from {@code redoTimeout}, {@code housekeepingPeriod} from {@code idleTimeout}) stay derived
     * unless they were set explicitly.
     */
    public Builder toBuilder() {
        return new Builder(source);
    }

    /**
     * Every effective setting, for a log line ({@link WalRedoManager#create} logs it once at INFO). The environment
     * is shown by variable names only: its values may be secrets.
     */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("WalRedoConfig[binaries=");
        sb.append(binaries.entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue().executable()
                        + e.getValue().libDir().map(d -> " (libDir " + d + ")").orElse(""))
                .collect(java.util.stream.Collectors.joining(", ", "{", "}")));
        sb.append(", extraArgs=")
                .append(extraArgs)
                .append(", environment names=")
                .append(environment.keySet())
                .append(", idleTimeout=")
                .append(idleTimeout)
                .append(", redoTimeout=")
                .append(redoTimeout)
                .append(", stallTimeout=")
                .append(stallTimeout)
                .append(", spawnTimeout=")
                .append(spawnTimeout)
                .append(", killTimeout=")
                .append(killTimeout)
                .append(", housekeepingPeriod=")
                .append(housekeepingPeriod)
                .append(", spawnBackoff=")
                .append(spawnBackoffInitial)
                .append("..")
                .append(spawnBackoffMax)
                .append(", maxLiveSidecars=")
                .append(maxLiveSidecars == Integer.MAX_VALUE ? "none" : maxLiveSidecars)
                .append(", maxQueuedPerTenant=")
                .append(maxQueuedPerTenant == Integer.MAX_VALUE ? "none" : maxQueuedPerTenant)
                .append(", warmSpares=")
                .append(warmSpares)
                .append(", maxRequestBytes=")
                .append(maxRequestBytes)
                .append(", stderrLimits=")
                .append(stderrMaxLineBytes)
                .append(" B/line, ")
                .append(stderrLinesPerSecond)
                .append(" lines/s, ")
                .append(stderrTailLines)
                .append(" tail lines")
                .append(", stderrBytesPerSecond=")
                .append(stderrBytesPerSecond)
                .append(", metricsListener=")
                .append(
                        metricsListener == WalRedoMetricsListener.NONE
                                ? "none"
                                : metricsListener.getClass().getName())
                .append(", shutdownHook=")
                .append(shutdownHook)
                .append(", sidecarWorkingDirectory=")
                .append(sidecarWorkingDirectory)
                .append(", sidecarUmask=0")
                .append(Integer.toOctalString(SIDECAR_UMASK))
                .append(", sidecarOpenFilesLimit=")
                .append(sidecarOpenFilesLimit)
                .append(", sidecarCoreDumps=")
                .append(sidecarCoreDumps)
                .append(", sidecarAddressSpaceLimit=")
                .append(
                        sidecarAddressSpaceLimit.isPresent()
                                ? Long.toString(sidecarAddressSpaceLimit.getAsLong())
                                : "none")
                .append(", sidecarCpuTimeLimit=")
                .append(sidecarCpuTimeLimit.map(Duration::toString).orElse("none"))
                .append(", sidecarOomScoreAdj=")
                .append(sidecarOomScoreAdj)
                .append(", sidecarCgroup=")
                .append(sidecarCgroup.map(Path::toString).orElse("none"))
                .append(", killOrphanedSidecars=")
                .append(killOrphanedSidecars)
                .append(']');
        return sb.toString();
    }

    /** The redo binary for each PostgreSQL major version, by version. */
    public Map<Integer, RedoBinary> binaries() {
        return binaries;
    }

    /** Arguments added after {@code --wal-redo} and before {@code --tenant-shard-id ID}. */
    public List<String> extraArgs() {
        return extraArgs;
    }

    /**
     * The sidecar's whole environment (nothing is inherited from this JVM), to which
     * {@code LD_LIBRARY_PATH} is added for a binary that names a library directory, and {@link
     * #SIDECAR_OWNER_VARIABLE} to every sidecar.
     */
    public Map<String, String> environment() {
        return environment;
    }

    /**
     * A sidecar with no request in flight for at least this long is killed by the housekeeper (quiesced);
     * the next request respawns it. Precision: plus up to one {@link #housekeepingPeriod()}.
     * Default {@link #DEFAULT_IDLE_TIMEOUT}; must be positive.
     */
    public Duration idleTimeout() {
        return idleTimeout;
    }

    /**
     * The whole budget of one {@code redo} or {@code ping} call: waiting for a spawn, writing, reading, and
     * every retry. Default {@link #DEFAULT_REDO_TIMEOUT}; must be positive.
     */
    public Duration redoTimeout() {
        return redoTimeout;
    }

    /** How long one posix_spawn of a sidecar may take. Default {@link #DEFAULT_SPAWN_TIMEOUT}; positive. */
    public Duration spawnTimeout() {
        return spawnTimeout;
    }

    /** How long killing and reaping one sidecar may take before it is reported as stuck. Positive. */
    public Duration killTimeout() {
        return killTimeout;
    }

    /**
     * How long a sidecar that owes answers may go without sending a byte (or, while a request is being written,
     * without taking one from its stdin) before it is killed as stuck, with cause {@link KillCause#TIMEOUT}.
     * This, not a caller's deadline, retires a hung sidecar: a caller whose own deadline passes gives up its
     * wait and its answer is dropped when it comes, so a short per-call timeout never kills a healthy sidecar.
     * Default: {@link #redoTimeout()}; must be positive.
     */
    public Duration stallTimeout() {
        return stallTimeout;
    }

    /**
     * How often the housekeeper looks for idle sidecars. Default: idle timeout / 4, at most
     * {@link #DEFAULT_MAX_HOUSEKEEPING_PERIOD}; must be positive and at most the idle timeout.
     */
    public Duration housekeepingPeriod() {
        return housekeepingPeriod;
    }

    /**
     * After a sidecar fails to spawn or dies without answering, the tenant's next spawn waits this long,
     * doubling on each consecutive failure up to {@link #spawnBackoffMax()}; a successful redo resets it.
     * This stops a binary that dies at once from causing a spawn storm. Positive.
     */
    public Duration spawnBackoffInitial() {
        return spawnBackoffInitial;
    }

    /** The longest spawn back-off. At least {@link #spawnBackoffInitial()}. */
    public Duration spawnBackoffMax() {
        return spawnBackoffMax;
    }

    /**
     * The most sidecars alive at once. At the cap, the least recently used idle sidecar is quiesced early
     * to make room; when none is idle, the request waits within its deadline, then fails with
     * {@link RedoCancelledException}. Default: no cap; at least 1.
     */
    public int maxLiveSidecars() {
        return maxLiveSidecars;
    }

    /**
     * The most requests queued or in flight on one tenant's sidecar (per PostgreSQL version) at once; the next
     * is refused at once with {@link TenantOverloadedException} ({@code QUEUE_BOUND}) instead of waiting. Bounds
     * how many callers one slow tenant can hold. Default: no fixed bound; at least 1.
     *
     * <p>Independently of this bound, a request is always refused at once ({@code EXPECTED_WAIT}) when the
     * answers already owed ahead of it are expected to take longer than its remaining deadline (twice as long when
     * the estimate is unsure); see {@code
     * docs/operations.md} ("Admission") for the estimate.
     */
    public int maxQueuedPerTenant() {
        return maxQueuedPerTenant;
    }

    /**
     * Warm spare sidecars kept ready per configured PostgreSQL version: spawned in the background, fed nothing,
     * and handed to the first tenant whose request finds no live sidecar (after a quiesce, an attach or a crash),
     * so that request runs at once instead of waiting for a spawn. A spare serves exactly one tenant for its whole
     * life: once handed over it is that tenant's sidecar, and when it is quiesced, evicted or crashes it is killed,
     * never returned. The pool refills in the background, at most this many spawns at a time per version, only
     * while there is room under {@link #maxLiveSidecars()} (spares count as live sidecars) and no spawn for a tenant
     * waits for room; a spare is the first sidecar evicted to make room for a tenant. Spares are not quiesced.
     * {@code shutdown} kills them; {@code detach} leaves them alone.
     *
     * <p>Default 0: no spares, exactly the behaviour without them. A pageserver whose tenants are quiesced after
     * {@link #idleTimeout()} and come back now and then does well with 1 or 2: each spare costs one idle process
     * (a few MB of PSS; see {@code docs/operations.md}), and the pool needs about as many as first requests
     * arrive within one spawn time. At most {@value #MAX_WARM_SPARES}.
     */
    public int warmSpares() {
        return warmSpares;
    }

    /** The largest encoded request accepted (base image plus records plus framing). Default 128 MiB. */
    public int maxRequestBytes() {
        return maxRequestBytes;
    }

    /** A sidecar's stderr line longer than this is cut (the rest is dropped). Default 4 KiB; at least 64. */
    public int stderrMaxLineBytes() {
        return stderrMaxLineBytes;
    }

    /** Stderr lines logged per second per sidecar; lines beyond are counted, not logged. At least 1. */
    public int stderrLinesPerSecond() {
        return stderrLinesPerSecond;
    }

    /** How many of a sidecar's last stderr lines are kept for error messages. At least 1. */
    public int stderrTailLines() {
        return stderrTailLines;
    }

    /**
     * How fast each sidecar's stderr is read, in bytes a second, with bursts of up to 1 MiB (or one second's worth,
     * if that is more). A sidecar that writes faster blocks in its own write to stderr until reading catches up, so
     * a flood costs the host a bounded amount of CPU whatever the sidecar does; the flooding sidecar's own requests
     * slow down or time out, and other tenants are not slowed. Default 256 KiB; at least 4 KiB.
     */
    public int stderrBytesPerSecond() {
        return stderrBytesPerSecond;
    }

    /** Receives metrics events; the default does nothing. */
    public WalRedoMetricsListener metricsListener() {
        return metricsListener;
    }

    /** Whether the manager registers a JVM shutdown hook that shuts it down. Default false. */
    public boolean shutdownHook() {
        return shutdownHook;
    }

    LongSupplier nanoClock() {
        return nanoClock;
    }

    /**
     * Each sidecar's working directory, instead of the JVM's: where a relative path it opens, and a core file, would
     * land. Default {@link #DEFAULT_SIDECAR_WORKING_DIRECTORY}; an existing absolute directory. Every sidecar also
     * runs with umask {@link #SIDECAR_UMASK} and leads a process group of its own (see {@code docs/reliability.md},
     * "Containment").
     */
    public Path sidecarWorkingDirectory() {
        return sidecarWorkingDirectory;
    }

    /**
     * Each sidecar's {@code RLIMIT_NOFILE} (soft and hard), instead of the JVM's, which the JVM raises to its hard
     * limit. Default {@link #DEFAULT_SIDECAR_OPEN_FILES_LIMIT}; from 64 up to the JVM's own hard limit (more fails
     * every spawn with EPERM unless the JVM has CAP_SYS_RESOURCE).
     */
    public int sidecarOpenFilesLimit() {
        return sidecarOpenFilesLimit;
    }

    /**
     * Whether a crashing sidecar may write a core file (then with the JVM's {@code RLIMIT_CORE}). Default false:
     * {@code RLIMIT_CORE} 0, soft and hard, so a crash-looping sidecar cannot fill a disk with cores.
     */
    public boolean sidecarCoreDumps() {
        return sidecarCoreDumps;
    }

    /**
     * Each sidecar's {@code RLIMIT_AS} in bytes (soft and hard), if set: an allocation beyond it fails in the sidecar,
     * which then reports an error or dies, instead of growing without bound. Default none (the JVM's, usually
     * unlimited).
     */
    public OptionalLong sidecarAddressSpaceLimit() {
        return sidecarAddressSpaceLimit;
    }

    /**
     * Each sidecar's {@code RLIMIT_CPU} (whole seconds of CPU over its life; SIGXCPU kills it at the limit), if set.
     * A sidecar is respawned when needed, so this bounds the CPU one process may burn, not a tenant's. Default none.
     */
    public Optional<Duration> sidecarCpuTimeLimit() {
        return sidecarCpuTimeLimit;
    }

    /**
     * Each sidecar's {@code /proc/PID/oom_score_adj}. Default {@link #DEFAULT_SIDECAR_OOM_SCORE_ADJ}: under memory
     * pressure the kernel kills a sidecar, which the next request respawns, before the pageserver. Within
     * -1000..1000; a value below the JVM's own needs CAP_SYS_RESOURCE (else every spawn fails with EACCES).
     */
    public int sidecarOomScoreAdj() {
        return sidecarOomScoreAdj;
    }

    /**
     * Whether {@link WalRedoManager#create} first kills sidecars orphaned by an earlier, dead JVM: processes of this
     * user running one of the configured redo binaries whose {@link #SIDECAR_OWNER_VARIABLE} names a JVM that no
     * longer exists. Such a sidecar is one that did not read stdin when its JVM was SIGKILLed (hung in a redo). Nothing
     * else is touched (see {@code docs/reliability.md}, "Containment"). Default true.
     */
    public boolean killOrphanedSidecars() {
        return killOrphanedSidecars;
    }

    /**
     * A cgroup v2 directory every sidecar is moved into right after its spawn, before its first request (its pid is
     * written to {@code cgroup.procs}), if set: the embedder creates it and sets its limits ({@code memory.max},
     * {@code cpu.max}, {@code pids.max}) for all sidecars together. The JVM needs write access to it and to the
     * common ancestor's {@code cgroup.procs}; a cgroup with controllers enabled in its {@code cgroup.subtree_control}
     * takes no processes (cgroup v2's "no internal processes" rule). If the move fails the spawn fails with
     * {@link SpawnFailedException} naming the file and errno. Default none (the JVM's cgroup).
     */
    public Optional<Path> sidecarCgroup() {
        return sidecarCgroup;
    }

    /** Builds a {@link WalRedoConfig}. Not thread-safe. */
    public static final class Builder {
        private final Map<Integer, RedoBinary> binaries = new TreeMap<>();
        private final List<String> extraArgs = new ArrayList<>();
        private final Map<String, String> environment = new TreeMap<>();
        private Duration idleTimeout = DEFAULT_IDLE_TIMEOUT;
        private Duration redoTimeout = DEFAULT_REDO_TIMEOUT;
        private Duration spawnTimeout = DEFAULT_SPAWN_TIMEOUT;
        private Duration killTimeout = DEFAULT_KILL_TIMEOUT;
        private Duration stallTimeout;
        private Duration housekeepingPeriod;
        private Duration spawnBackoffInitial = DEFAULT_SPAWN_BACKOFF_INITIAL;
        private Duration spawnBackoffMax = DEFAULT_SPAWN_BACKOFF_MAX;
        private int maxLiveSidecars = DEFAULT_MAX_LIVE_SIDECARS;
        private int maxQueuedPerTenant = DEFAULT_MAX_QUEUED_PER_TENANT;
        private int warmSpares = DEFAULT_WARM_SPARES;
        private int maxRequestBytes = DEFAULT_MAX_REQUEST_BYTES;
        private int stderrMaxLineBytes = DEFAULT_STDERR_MAX_LINE_BYTES;
        private int stderrLinesPerSecond = DEFAULT_STDERR_LINES_PER_SECOND;
        private int stderrTailLines = DEFAULT_STDERR_TAIL_LINES;
        private int stderrBytesPerSecond = DEFAULT_STDERR_BYTES_PER_SECOND;
        private WalRedoMetricsListener metricsListener = WalRedoMetricsListener.NONE;
        private boolean shutdownHook;
        private LongSupplier nanoClock = System::nanoTime;
        private Path sidecarWorkingDirectory = DEFAULT_SIDECAR_WORKING_DIRECTORY;
        private int sidecarOpenFilesLimit = DEFAULT_SIDECAR_OPEN_FILES_LIMIT;
        private boolean sidecarCoreDumps;
        private OptionalLong sidecarAddressSpaceLimit = OptionalLong.empty();
        private Optional<Duration> sidecarCpuTimeLimit = Optional.empty();
        private int sidecarOomScoreAdj = DEFAULT_SIDECAR_OOM_SCORE_ADJ;
        private boolean killOrphanedSidecars = true;
        private Optional<Path> sidecarCgroup = Optional.empty();
        private final List<String> problems = new ArrayList<>();

        private Builder() {}

        /** A copy of {@code b}: what {@link WalRedoConfig#toBuilder()} hands out. */
        private Builder(Builder b) {
            binaries.putAll(b.binaries);
            extraArgs.addAll(b.extraArgs);
            environment.putAll(b.environment);
            idleTimeout = b.idleTimeout;
            redoTimeout = b.redoTimeout;
            spawnTimeout = b.spawnTimeout;
            killTimeout = b.killTimeout;
            stallTimeout = b.stallTimeout;
            housekeepingPeriod = b.housekeepingPeriod;
            spawnBackoffInitial = b.spawnBackoffInitial;
            spawnBackoffMax = b.spawnBackoffMax;
            maxLiveSidecars = b.maxLiveSidecars;
            maxQueuedPerTenant = b.maxQueuedPerTenant;
            warmSpares = b.warmSpares;
            maxRequestBytes = b.maxRequestBytes;
            stderrMaxLineBytes = b.stderrMaxLineBytes;
            stderrLinesPerSecond = b.stderrLinesPerSecond;
            stderrTailLines = b.stderrTailLines;
            stderrBytesPerSecond = b.stderrBytesPerSecond;
            metricsListener = b.metricsListener;
            shutdownHook = b.shutdownHook;
            nanoClock = b.nanoClock;
            sidecarWorkingDirectory = b.sidecarWorkingDirectory;
            sidecarOpenFilesLimit = b.sidecarOpenFilesLimit;
            sidecarCoreDumps = b.sidecarCoreDumps;
            sidecarAddressSpaceLimit = b.sidecarAddressSpaceLimit;
            sidecarCpuTimeLimit = b.sidecarCpuTimeLimit;
            sidecarOomScoreAdj = b.sidecarOomScoreAdj;
            killOrphanedSidecars = b.killOrphanedSidecars;
            sidecarCgroup = b.sidecarCgroup;
            problems.addAll(b.problems);
        }

        /** The redo binary for PostgreSQL major version {@code pgVersion}, needing no library directory. */
        public Builder redoBinary(int pgVersion, Path executable) {
            return putBinary(pgVersion, executable, null);
        }

        /** The redo binary for {@code pgVersion}, with its library directory (passed as LD_LIBRARY_PATH). */
        public Builder redoBinary(int pgVersion, Path executable, Path libDir) {
            return putBinary(pgVersion, executable, Objects.requireNonNull(libDir, "libDir"));
        }

        private Builder putBinary(int pgVersion, Path executable, Path libDir) {
            Objects.requireNonNull(executable, "executable");
            if (pgVersion < RedoRequest.MIN_PG_VERSION || pgVersion > RedoRequest.MAX_PG_VERSION) {
                problems.add("redoBinary: PostgreSQL version " + pgVersion + " is outside " + RedoRequest.MIN_PG_VERSION
                        + ".." + RedoRequest.MAX_PG_VERSION);
            }
            binaries.put(pgVersion, new RedoBinary(executable, Optional.ofNullable(libDir)));
            return this;
        }

        /** Arguments passed after {@code --wal-redo}, e.g. {@code --disable-seccomp}. Replaces earlier ones. */
        public Builder extraArgs(List<String> args) {
            extraArgs.clear();
            for (String a : Objects.requireNonNull(args, "args")) {
                extraArgs.add(Objects.requireNonNull(a, "extraArgs element"));
            }
            return this;
        }

        /** Variables of the sidecar's environment (nothing else is inherited). Replaces earlier ones. */
        public Builder environment(Map<String, String> env) {
            environment.clear();
            Objects.requireNonNull(env, "env")
                    .forEach((k, v) -> environment.put(
                            Objects.requireNonNull(k, "environment key"),
                            Objects.requireNonNull(v, "environment value")));
            return this;
        }

        /** See {@link WalRedoConfig#idleTimeout()}. */
        public Builder idleTimeout(Duration d) {
            idleTimeout = Objects.requireNonNull(d, "idleTimeout");
            return this;
        }

        /** See {@link WalRedoConfig#redoTimeout()}. */
        public Builder redoTimeout(Duration d) {
            redoTimeout = Objects.requireNonNull(d, "redoTimeout");
            return this;
        }

        /** See {@link WalRedoConfig#spawnTimeout()}. */
        public Builder spawnTimeout(Duration d) {
            spawnTimeout = Objects.requireNonNull(d, "spawnTimeout");
            return this;
        }

        /** See {@link WalRedoConfig#killTimeout()}. */
        public Builder killTimeout(Duration d) {
            killTimeout = Objects.requireNonNull(d, "killTimeout");
            return this;
        }

        /** See {@link WalRedoConfig#stallTimeout()}. */
        public Builder stallTimeout(Duration d) {
            stallTimeout = Objects.requireNonNull(d, "stallTimeout");
            return this;
        }

        /** See {@link WalRedoConfig#housekeepingPeriod()}. */
        public Builder housekeepingPeriod(Duration d) {
            housekeepingPeriod = Objects.requireNonNull(d, "housekeepingPeriod");
            return this;
        }

        /** See {@link WalRedoConfig#spawnBackoffInitial()} and {@link WalRedoConfig#spawnBackoffMax()}. */
        public Builder spawnBackoff(Duration initial, Duration max) {
            spawnBackoffInitial = Objects.requireNonNull(initial, "spawnBackoffInitial");
            spawnBackoffMax = Objects.requireNonNull(max, "spawnBackoffMax");
            return this;
        }

        /** See {@link WalRedoConfig#maxQueuedPerTenant()}. */
        public Builder maxQueuedPerTenant(int n) {
            maxQueuedPerTenant = n;
            return this;
        }

        /** See {@link WalRedoConfig#warmSpares()}. */
        public Builder warmSpares(int n) {
            warmSpares = n;
            return this;
        }

        /** See {@link WalRedoConfig#maxLiveSidecars()}. */
        public Builder maxLiveSidecars(int n) {
            maxLiveSidecars = n;
            return this;
        }

        /** See {@link WalRedoConfig#maxRequestBytes()}. */
        public Builder maxRequestBytes(int n) {
            maxRequestBytes = n;
            return this;
        }

        /** See {@link WalRedoConfig#stderrMaxLineBytes()}, {@link WalRedoConfig#stderrLinesPerSecond()}, {@link WalRedoConfig#stderrTailLines()}. */
        public Builder stderrLimits(int maxLineBytes, int linesPerSecond, int tailLines) {
            stderrMaxLineBytes = maxLineBytes;
            stderrLinesPerSecond = linesPerSecond;
            stderrTailLines = tailLines;
            return this;
        }

        /** See {@link WalRedoConfig#stderrBytesPerSecond()}. */
        public Builder stderrBytesPerSecond(int bytesPerSecond) {
            stderrBytesPerSecond = bytesPerSecond;
            return this;
        }

        /** See {@link WalRedoConfig#metricsListener()}. */
        public Builder metricsListener(WalRedoMetricsListener listener) {
            metricsListener = Objects.requireNonNull(listener, "metricsListener");
            return this;
        }

        /** See {@link WalRedoConfig#shutdownHook()}. */
        public Builder shutdownHook(boolean register) {
            shutdownHook = register;
            return this;
        }

        /** See {@link WalRedoConfig#sidecarWorkingDirectory()}. */
        public Builder sidecarWorkingDirectory(Path dir) {
            sidecarWorkingDirectory = Objects.requireNonNull(dir, "sidecarWorkingDirectory");
            return this;
        }

        /** See {@link WalRedoConfig#sidecarOpenFilesLimit()}. */
        public Builder sidecarOpenFilesLimit(int n) {
            sidecarOpenFilesLimit = n;
            return this;
        }

        /** See {@link WalRedoConfig#sidecarCoreDumps()}. */
        public Builder sidecarCoreDumps(boolean allowed) {
            sidecarCoreDumps = allowed;
            return this;
        }

        /** See {@link WalRedoConfig#sidecarAddressSpaceLimit()}. */
        public Builder sidecarAddressSpaceLimit(long bytes) {
            sidecarAddressSpaceLimit = OptionalLong.of(bytes);
            return this;
        }

        /** See {@link WalRedoConfig#sidecarCpuTimeLimit()}. */
        public Builder sidecarCpuTimeLimit(Duration d) {
            sidecarCpuTimeLimit = Optional.of(Objects.requireNonNull(d, "sidecarCpuTimeLimit"));
            return this;
        }

        /** See {@link WalRedoConfig#sidecarOomScoreAdj()}. */
        public Builder sidecarOomScoreAdj(int adj) {
            sidecarOomScoreAdj = adj;
            return this;
        }

        /** See {@link WalRedoConfig#sidecarCgroup()}. */
        public Builder sidecarCgroup(Path dir) {
            sidecarCgroup = Optional.of(Objects.requireNonNull(dir, "sidecarCgroup"));
            return this;
        }

        /** See {@link WalRedoConfig#killOrphanedSidecars()}. */
        public Builder killOrphanedSidecars(boolean kill) {
            killOrphanedSidecars = kill;
            return this;
        }

        /** Test hook: the monotonic clock the housekeeper and idle tracking read. */
        Builder nanoClock(LongSupplier clock) {
            nanoClock = Objects.requireNonNull(clock, "nanoClock");
            return this;
        }

        /**
         * Checks everything and builds.
         *
         * @throws IllegalArgumentException listing every problem found
         */
        public WalRedoConfig build() {
            List<String> p = new ArrayList<>(problems);
            if (binaries.isEmpty()) {
                p.add("no redo binary configured: call redoBinary(pgVersion, path)");
            }
            binaries.forEach((v, b) -> checkBinary(p, v, b));
            for (String a : extraArgs) {
                if (a.indexOf('\0') >= 0) {
                    p.add("extraArgs: argument contains a NUL byte");
                }
            }
            environment.forEach((k, v) -> {
                if (k.isEmpty() || k.indexOf('=') >= 0 || k.indexOf('\0') >= 0 || v.indexOf('\0') >= 0) {
                    p.add("environment: invalid variable name or value for key '" + k + "'");
                } else if (k.equals(SIDECAR_OWNER_VARIABLE)) {
                    p.add("environment: " + SIDECAR_OWNER_VARIABLE + " is set by the library, not the configuration");
                }
            });
            positive(p, "idleTimeout", idleTimeout);
            positive(p, "redoTimeout", redoTimeout);
            positive(p, "spawnTimeout", spawnTimeout);
            positive(p, "killTimeout", killTimeout);
            if (stallTimeout != null) {
                positive(p, "stallTimeout", stallTimeout);
            }
            positive(p, "spawnBackoffInitial", spawnBackoffInitial);
            positive(p, "spawnBackoffMax", spawnBackoffMax);
            if (spawnBackoffMax.compareTo(spawnBackoffInitial) < 0) {
                p.add("spawnBackoffMax (" + spawnBackoffMax + ") is below spawnBackoffInitial (" + spawnBackoffInitial
                        + ")");
            }
            Duration period = housekeepingPeriod;
            if (period == null && !idleTimeout.isNegative() && !idleTimeout.isZero()) {
                Duration quarter = idleTimeout.dividedBy(4);
                period = quarter.isZero() ? idleTimeout : quarter;
                if (period.compareTo(DEFAULT_MAX_HOUSEKEEPING_PERIOD) > 0) {
                    period = DEFAULT_MAX_HOUSEKEEPING_PERIOD;
                }
            }
            if (period != null) {
                positive(p, "housekeepingPeriod", period);
                if (period.compareTo(idleTimeout) > 0) {
                    p.add("housekeepingPeriod (" + period + ") is longer than idleTimeout (" + idleTimeout + ")");
                }
            }
            if (maxLiveSidecars < 1) {
                p.add("maxLiveSidecars must be at least 1, got " + maxLiveSidecars);
            }
            if (maxQueuedPerTenant < 1) {
                p.add("maxQueuedPerTenant must be at least 1, got " + maxQueuedPerTenant);
            }
            if (warmSpares < 0 || warmSpares > MAX_WARM_SPARES) {
                p.add("warmSpares must be between 0 and " + MAX_WARM_SPARES + ", got " + warmSpares);
            }
            if (maxRequestBytes < 1) {
                p.add("maxRequestBytes must be positive, got " + maxRequestBytes);
            }
            if (stderrMaxLineBytes < MIN_STDERR_MAX_LINE_BYTES) {
                p.add("stderrMaxLineBytes must be at least " + MIN_STDERR_MAX_LINE_BYTES + ", got "
                        + stderrMaxLineBytes);
            }
            if (stderrLinesPerSecond < 1) {
                p.add("stderrLinesPerSecond must be at least 1, got " + stderrLinesPerSecond);
            }
            if (stderrTailLines < 1) {
                p.add("stderrTailLines must be at least 1, got " + stderrTailLines);
            }
            if (stderrBytesPerSecond < MIN_STDERR_BYTES_PER_SECOND) {
                p.add("stderrBytesPerSecond must be at least " + MIN_STDERR_BYTES_PER_SECOND + ", got "
                        + stderrBytesPerSecond);
            }
            checkContainment(p);
            if (!p.isEmpty()) {
                throw new IllegalArgumentException("invalid WalRedoConfig: " + String.join("; ", p));
            }
            return new WalRedoConfig(this, period);
        }

        private void checkContainment(List<String> p) {
            if (!sidecarWorkingDirectory.isAbsolute() || !Files.isDirectory(sidecarWorkingDirectory)) {
                p.add("sidecarWorkingDirectory " + sidecarWorkingDirectory + " is not an existing absolute directory");
            }
            sidecarCgroup.ifPresent(dir -> {
                if (!dir.isAbsolute() || !Files.isRegularFile(dir.resolve("cgroup.procs"))) {
                    p.add("sidecarCgroup " + dir
                            + " is not a cgroup directory (an absolute path holding cgroup.procs)");
                }
            });
            if (sidecarOpenFilesLimit < MIN_SIDECAR_OPEN_FILES_LIMIT) {
                p.add("sidecarOpenFilesLimit must be at least " + MIN_SIDECAR_OPEN_FILES_LIMIT + " (postgres needs"
                        + " a few dozen fds), got " + sidecarOpenFilesLimit);
            }
            sidecarAddressSpaceLimit.ifPresent(bytes -> {
                if (bytes < MIN_SIDECAR_ADDRESS_SPACE_LIMIT) {
                    p.add("sidecarAddressSpaceLimit must be at least " + MIN_SIDECAR_ADDRESS_SPACE_LIMIT
                            + " bytes (64 MiB), got " + bytes);
                }
            });
            sidecarCpuTimeLimit.ifPresent(d -> {
                if (d.compareTo(Duration.ofSeconds(1)) < 0 || d.compareTo(MAX_DURATION) > 0) {
                    p.add("sidecarCpuTimeLimit must be between 1 s and " + MAX_DURATION + ", got " + d);
                }
            });
            if (Math.abs(sidecarOomScoreAdj) > 1000) {
                p.add("sidecarOomScoreAdj must be within -1000..1000, got " + sidecarOomScoreAdj);
            }
        }

        private static void positive(List<String> p, String name, Duration d) {
            if (d.isNegative() || d.isZero()) {
                p.add(name + " must be positive, got " + d);
            } else if (d.compareTo(MAX_DURATION) > 0) {
                p.add(name + " must be at most " + MAX_DURATION + " (MAX_DURATION), got " + d);
            }
        }

        private static void checkBinary(List<String> p, int version, RedoBinary b) {
            Path exe = b.executable();
            String what = "redoBinary for PostgreSQL " + version + ": " + exe;
            if (!exe.isAbsolute()) {
                p.add(what + " is not an absolute path");
            } else if (!Files.exists(exe)) {
                p.add(what + " does not exist");
            } else if (!Files.isRegularFile(exe)) {
                p.add(what + " is not a regular file");
            } else if (!Files.isExecutable(exe)) {
                p.add(what + " is not executable (chmod +x?)");
            }
            b.libDir().ifPresent(dir -> {
                if (!Files.isDirectory(dir)) {
                    p.add("library directory for PostgreSQL " + version + ": " + dir + " is not a directory");
                }
            });
        }
    }
}
