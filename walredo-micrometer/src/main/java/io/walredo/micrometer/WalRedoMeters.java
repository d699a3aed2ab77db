// SPDX-License-Identifier: Apache-2.0
package io.walredo.micrometer;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.walredo.AttemptType;
import io.walredo.KillCause;
import io.walredo.RedoOutcome;
import io.walredo.RedoResult;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoMetricsListener;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Feeds a Micrometer {@link MeterRegistry} from a walredo manager: pass it as the manager's metrics listener.
 *
 * <pre>{@code
 * WalRedoMeters meters = WalRedoMeters.builder(registry).build();
 * WalRedoManager manager = WalRedoManager.create(config.toBuilder().metricsListener(meters).build());
 * }</pre>
 *
 * <p>Meters (Micrometer names; a Prometheus registry renders {@code walredo.redo} as {@code walredo_redo_seconds_*},
 * counters with {@code _total}), and what Neon's pageserver calls the closest one:
 *
 * <table>
 *   <caption>Meters</caption>
 *   <tr><th>meter</th><th>type</th><th>tags</th><th>Neon</th></tr>
 *   <tr><td>walredo.redo</td><td>timer</td><td>outcome, attempt</td><td>pageserver_wal_redo_seconds</td></tr>
 *   <tr><td>walredo.redo.retries</td><td>counter</td><td>attempt</td><td></td></tr>
 *   <tr><td>walredo.redo.records</td><td>summary</td><td></td><td>pageserver_wal_redo_records_histogram</td></tr>
 *   <tr><td>walredo.redo.request.bytes</td><td>summary (bytes)</td><td></td>
 *       <td>pageserver_wal_redo_bytes_histogram</td></tr>
 *   <tr><td>walredo.redo.refused</td><td>counter</td><td>reason</td><td></td></tr>
 *   <tr><td>walredo.sidecar.spawn</td><td>timer</td><td></td><td>pageserver_wal_redo_process_launch_duration (its
 *       count: pageserver_wal_redo_process_started_total)</td></tr>
 *   <tr><td>walredo.sidecar.spawn.failures</td><td>counter</td><td></td><td></td></tr>
 *   <tr><td>walredo.sidecar.stopped</td><td>counter</td><td>cause</td>
 *       <td>pageserver_wal_redo_process_stopped_total{cause}</td></tr>
 *   <tr><td>walredo.sidecars.live</td><td>gauge</td><td></td><td>started_total minus stopped_total</td></tr>
 *   <tr><td>walredo.sidecar.stderr.lines</td><td>counter</td><td>suppressed</td><td></td></tr>
 *   <tr><td>walredo.redo.spawn.wait</td><td>timer</td><td></td><td>(none; Neon issue 6581 asks for it): redo calls
 *       that waited for their tenant's sidecar to be spawned, and how long</td></tr>
 *   <tr><td>walredo.sidecar.spares.assigned</td><td>counter</td><td></td><td>(none): first requests handed a warm
 *       spare instead of waiting for a spawn</td></tr>
 *   <tr><td>walredo.sidecars.spare</td><td>gauge</td><td></td><td>(none): warm spares started and not yet handed
 *       to a tenant, including ones still answering their warm-up requests (also counted in
 *       walredo.sidecars.live)</td></tr>
 *   <tr><td>walredo.deadline.wake.lateness</td><td>timer</td><td></td><td>(none): calls whose deadline passed while
 *       they were in the library, and how long after the deadline the library woke them; a call that returns later
 *       than this waited for a CPU</td></tr>
 * </table>
 *
 * <p>Tag values are lower case ({@code outcome} is a {@link RedoOutcome}, {@code attempt} an {@link AttemptType},
 * {@code cause} a {@link KillCause}, {@code reason} a {@link TenantOverloadedException.Reason}). No tenant tag by
 * default: a pageserver holds thousands of tenants, and a tag per tenant multiplies every time series by that many
 * (Prometheus keeps each in memory). {@link Builder#tenantTag(boolean)} adds it to the per-request meters for
 * deployments with few tenants.
 *
 * <p>Thread-safe; every method is non-blocking (Micrometer meters are lock-free), as the listener contract requires.
 * Meters are looked up once per tag combination and cached.
 */
public final class WalRedoMeters implements WalRedoMetricsListener {

    private static final int ATTEMPT_TYPES = AttemptType.values().length;

    private final MeterRegistry registry;
    private final Tags common;
    private final boolean tenantTag;
    /** Without a tenant tag: by outcome and attempt type, filled on first use (a race registers the same meter). */
    private final AtomicReferenceArray<Timer> redoTimers =
            new AtomicReferenceArray<>(RedoOutcome.values().length * ATTEMPT_TYPES);
    /** With a tenant tag. */
    private final ConcurrentHashMap<Object, Timer> tenantRedoTimers = new ConcurrentHashMap<>();

    private final ConcurrentHashMap<Object, Counter> counters = new ConcurrentHashMap<>();
    private final DistributionSummary records;
    private final DistributionSummary requestBytes;
    private final Timer spawn;
    private final Counter spawnFailures;
    private final AtomicInteger live = new AtomicInteger();
    private final AtomicInteger spares = new AtomicInteger();
    private final Timer spawnWait;
    private final Timer deadlineWake;
    private final Counter sparesAssigned;

    private WalRedoMeters(Builder b) {
        this.registry = b.registry;
        this.common = b.tags;
        this.tenantTag = b.tenantTag;
        this.records = DistributionSummary.builder("walredo.redo.records")
                .description("WAL records per redo request")
                .tags(common)
                .register(registry);
        this.requestBytes = DistributionSummary.builder("walredo.redo.request.bytes")
                .baseUnit("bytes")
                .description("encoded size of a redo request")
                .tags(common)
                .register(registry);
        this.spawn = Timer.builder("walredo.sidecar.spawn")
                .description("posix_spawn of a sidecar, successful ones")
                .tags(common)
                .register(registry);
        this.spawnFailures = Counter.builder("walredo.sidecar.spawn.failures")
                .description("failed sidecar spawns")
                .tags(common)
                .register(registry);
        Gauge.builder("walredo.sidecars.live", live, AtomicInteger::get)
                .description("sidecars started and not yet stopped")
                .tags(common)
                .register(registry);
        this.spawnWait = Timer.builder("walredo.redo.spawn.wait")
                .description("redo calls that waited for their tenant's sidecar to be spawned, and how long")
                .tags(common)
                .register(registry);
        this.deadlineWake = Timer.builder("walredo.deadline.wake.lateness")
                .description("calls whose deadline passed in the library, and how long after it the library woke them")
                .tags(common)
                .register(registry);
        this.sparesAssigned = Counter.builder("walredo.sidecar.spares.assigned")
                .description("first requests handed a warm spare sidecar instead of waiting for a spawn")
                .tags(common)
                .register(registry);
        Gauge.builder("walredo.sidecars.spare", spares, AtomicInteger::get)
                .description("warm spare sidecars started and not yet handed to a tenant")
                .tags(common)
                .register(registry);
    }

    /** A builder binding to {@code registry}. */
    public static Builder builder(MeterRegistry registry) {
        return new Builder(Objects.requireNonNull(registry, "registry"));
    }

    @Override
    public void redoCompleted(RedoResult r) {
        String tenant = tenantTag ? r.tenant().toString() : null;
        redoTimer(r.outcome(), r.attemptType(), tenant).record(r.latency());
        if (r.retries() > 0) {
            counter("walredo.redo.retries", "retries on a fresh sidecar", "attempt", lower(r.attemptType()), tenant)
                    .increment(r.retries());
        }
        records.record(r.records());
        requestBytes.record(r.requestBytes());
    }

    @Override
    public void sidecarStarted(TenantShardId tenant, int pid, Duration latency) {
        live.incrementAndGet();
        if (tenant == null) {
            spares.incrementAndGet();
        }
        spawn.record(latency);
    }

    @Override
    public void spawnFailed(TenantShardId tenant) {
        spawnFailures.increment();
    }

    @Override
    public void sidecarKilled(TenantShardId tenant, int pid, KillCause cause) {
        live.decrementAndGet();
        if (tenant == null) {
            spares.decrementAndGet();
        }
        counter("walredo.sidecar.stopped", "sidecars killed or found dead", "cause", lower(cause), null)
                .increment();
    }

    @Override
    public void spareAssigned(TenantShardId tenant, int pgVersion, int pid) {
        spares.decrementAndGet();
        sparesAssigned.increment();
    }

    @Override
    public void spawnWaited(TenantShardId tenant, Duration waited) {
        spawnWait.record(waited);
    }

    @Override
    public void deadlineWake(TenantShardId tenant, Duration lateness) {
        deadlineWake.record(lateness);
    }

    @Override
    public void requestRefused(TenantShardId tenant, int pid, TenantOverloadedException.Reason reason) {
        counter(
                        "walredo.redo.refused",
                        "requests refused at once by admission",
                        "reason",
                        lower(reason),
                        tenantTag ? tenant.toString() : null)
                .increment();
    }

    @Override
    public void stderrLine(TenantShardId tenant, boolean suppressed) {
        counter(
                        "walredo.sidecar.stderr.lines",
                        "sidecar stderr lines, logged or suppressed by the rate limit",
                        "suppressed",
                        Boolean.toString(suppressed),
                        null)
                .increment();
    }

    /** Nothing is allocated per call without a tenant tag: this runs once per redo. */
    private Timer redoTimer(RedoOutcome outcome, AttemptType attempt, String tenant) {
        if (tenant == null) {
            int i = outcome.ordinal() * ATTEMPT_TYPES + attempt.ordinal();
            Timer t = redoTimers.get(i);
            if (t == null) {
                t = registerRedoTimer(outcome, attempt, null);
                redoTimers.set(i, t);
            }
            return t;
        }
        return tenantRedoTimers.computeIfAbsent(
                List.of(outcome, attempt, tenant), k -> registerRedoTimer(outcome, attempt, tenant));
    }

    private Timer registerRedoTimer(RedoOutcome outcome, AttemptType attempt, String tenant) {
        Tags tags = common.and("outcome", lower(outcome), "attempt", lower(attempt));
        return Timer.builder("walredo.redo")
                .description("redo calls, from entry to the page or the error")
                .tags(tenant == null ? tags : tags.and("tenant", tenant))
                .register(registry);
    }

    private Counter counter(String name, String description, String tag, String value, String tenant) {
        Object key = name + '/' + value + (tenant == null ? "" : '/' + tenant);
        return counters.computeIfAbsent(key, k -> {
            Tags tags = common.and(tag, value);
            return Counter.builder(name)
                    .description(description)
                    .tags(tenant == null ? tags : tags.and("tenant", tenant))
                    .register(registry);
        });
    }

    private static String lower(Enum<?> e) {
        return e.name().toLowerCase(Locale.ROOT);
    }

    /** Builds a {@link WalRedoMeters}. Not thread-safe. */
    public static final class Builder {
        private final MeterRegistry registry;
        private Tags tags = Tags.empty();
        private boolean tenantTag;

        private Builder(MeterRegistry registry) {
            this.registry = registry;
        }

        /** Tags added to every meter (say, which pageserver); none by default. */
        public Builder tags(Tags tags) {
            this.tags = Objects.requireNonNull(tags, "tags");
            return this;
        }

        /**
         * Whether the per-request meters ({@code walredo.redo}, {@code .retries}, {@code .refused}) get a {@code
         * tenant} tag. Default false: see the class comment on cardinality.
         */
        public Builder tenantTag(boolean on) {
            this.tenantTag = on;
            return this;
        }

        /** Registers the meters that exist from the start and returns the listener. */
        public WalRedoMeters build() {
            return new WalRedoMeters(this);
        }
    }
}
