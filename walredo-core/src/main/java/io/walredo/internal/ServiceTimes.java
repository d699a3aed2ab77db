// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * One sidecar's answer times as its reader observes them: what admission estimates a request's wait from ({@link
 * #expectedWaitNanos}) and what sizes the reader's polling ({@link #spinBudgetNanos}).
 *
 * <p>An answer's service time runs from the moment the sidecar could start on it (its request's enqueue into an
 * empty queue, or the previous answer's arrival) to its arrival, when the reader has read its last byte. So it is the
 * time a caller waits per answer ahead of it, whether the sidecar or a busy JVM (a cold JIT, saturated carriers) is
 * the slower. Counting only the sidecar's share (samples of answers that were already whole in the pipe as an upper
 * bound only) was tried and reverted: in the chaos soak without faults (50 tenants, 200 callers, 2 s deadlines)
 * the requests it stopped refusing in the first seconds timed out instead (22 and 60 timeouts against 0 and 0, 2
 * and 8 refusals against 7 and 27), because those waits were real.
 *
 * <p>Threads: {@link #started} is called under the sidecar's queue lock, {@link #answered} by the reader-role
 * holder; anyone reads. Fields are volatile; a reader may see a mix of two samples, which only shifts an estimate.
 */
final class ServiceTimes {

    /**
     * Lone round trips at or above this average are not polled for. Neon's short redo takes about 30 µs on this
     * machine kind; a park and wake-up costs about as much.
     */
    static final long SPIN_LIMIT_NANOS = TimeUnit.MICROSECONDS.toNanos(100);
    /**
     * Admission looks at stdout (one FIONREAD) before it counts the time since the last answer, once that time
     * reaches this and exceeds the sidecar's history: below it the check would cost more than it could change.
     */
    static final long CURRENT_CHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    /** Service times the typical one is the mean of. */
    static final int WINDOW = 16;
    /**
     * The window's service times agree when the longest is at most this many times the shortest: then a refusal needs
     * only an expected wait over the remaining deadline, otherwise over {@link #UNSURE_MARGIN} times it.
     */
    static final int STEADY_SPREAD = 4;
    /** How many times the remaining deadline an unsure estimate must exceed for a refusal ({@link #refuses}). */
    static final int UNSURE_MARGIN = 2;

    /**
     * True from an enqueue into the empty queue until a second request joins: only a lone request's service time
     * is its whole round trip, the sidecar's answer time without queueing.
     */
    private volatile boolean lone;
    /** Moving average of lone round trips, 0 until one is measured; sizes the reader's spin. */
    private volatile long loneRoundTripNanos;
    /** When the sidecar began on the answer now owed first: its enqueue into an empty queue, or the last answer. */
    private volatile long serviceStartNanos;
    /** The last answer's service time; 0 until one was measured. */
    private volatile long lastServiceNanos;
    /**
     * The mean of the last {@link #WINDOW} service times (fewer until that many were measured); 0 until one was.
     * A mean over a window, not a moving average: when the JVM reads answers late it reads several at once, so service
     * times come as one long gap and a few near-zero ones; a moving average peaked after each long gap (a soak without
     * faults refused calls at those peaks that its neighbours, admitted at the same moment, were served in time).
     */
    private volatile long serviceMeanNanos;
    /** The window's samples, oldest overwritten first; only the reader-role holder touches these three. */
    private final long[] window = new long[WINDOW];

    /** Whether the window's service times agree ({@link #STEADY_SPREAD}); false until one is measured. */
    private volatile boolean steady;

    private int windowNext;
    private int windowSamples;
    private long windowSum;
    /**
     * Whether the process's first answer has arrived. That answer is not history: its service time runs from the
     * first enqueue, which comes right after the spawn, so it includes the process's own start-up (exec, dynamic
     * linking, postgres's initialisation; hundreds of ms on a saturated machine). Counted, it made admission refuse
     * the requests queued behind it as if every answer took that long, until the second answer arrived. A tenant's
     * new sidecar gets a ping first ({@link Sidecar#probeStartup}), a spare its warm-up, so the first answer a caller
     * waits for is measured.
     */
    private volatile boolean firstAnswered;
    /** The manager's recent start-ups, which this sidecar's first answer joins. */
    private final StartupTimes peers;

    /** @param peers the start-up times of the manager's sidecars, shared by all of them */
    ServiceTimes(StartupTimes peers) {
        this.peers = peers;
    }

    /** A request entered the empty queue at {@code now}: the sidecar starts on it. */
    void started(long now) {
        serviceStartNanos = now;
        lone = true;
    }

    /** A request joined a non-empty queue: the one ahead is no longer lone. */
    void joined() {
        lone = false;
    }

    /** An answer arrived at {@code now}; {@code owed} answers were owed including it. */
    void answered(long now, int owed) {
        long service = Math.max(0, now - serviceStartNanos);
        serviceStartNanos = now;
        if (!firstAnswered) {
            firstAnswered = true;
            peers.record(service);
            return;
        }
        if (lone && owed == 1) {
            loneRoundTripNanos = movingAverage(loneRoundTripNanos, service);
        }
        windowSum += service - window[windowNext];
        window[windowNext] = service;
        windowNext = (windowNext + 1) % WINDOW;
        windowSamples = Math.min(windowSamples + 1, WINDOW);
        serviceMeanNanos = Math.max(1, windowSum / windowSamples);
        long min = Long.MAX_VALUE;
        long max = 0;
        for (int i = 0; i < windowSamples; i++) {
            min = Math.min(min, window[i]);
            max = Math.max(max, window[i]);
        }
        steady = max <= STEADY_SPREAD * Math.max(min, 1);
        lastServiceNanos = service;
    }

    /**
     * The expected wait behind {@code ahead} owed answers: the answer owed first takes the larger of (a) the typical
     * answer time, the smaller of the last service time and the window's mean, and (b) how long the sidecar has
     * been on that answer so far ({@code owed > 0}); each of the other {@code ahead - 1} takes (a). (a) takes the
     * smaller so that one slow answer among fast ones stops counting at the next fast one; (b) lets a sidecar that has
     * gone slow (or hung) show it before its slow answer arrives, unless {@code bytesWaiting} says the answer is
     * already in the pipe (only our reader is late). (b) counts once, not once per answer ahead: a stall of the
     * answer in progress (a process descheduled on a saturated machine, a first request paging the process in) says
     * little about the answers behind it, and multiplying it refused healthy traffic (the demo's retries onto a fresh
     * sidecar on 2 busy cores); a hung sidecar is still refused to every caller whose deadline its stall outlasts.
     * With nothing measured and nothing owed the estimate is 0, so a fresh sidecar admits everything; its first
     * answer is never measured (see {@code firstAnswered}), only waited for through (b).
     */
    long expectedWaitNanos(int ahead, int owed, long now, BooleanSupplier bytesWaiting) {
        if (ahead <= 0) {
            return 0;
        }
        long history = typicalNanos();
        long current = inProgressNanos(owed, now);
        if (current > history && current >= CURRENT_CHECK_NANOS && bytesWaiting.getAsBoolean()) {
            current = 0;
        }
        long first = Math.max(history, current);
        long rest = ahead - 1;
        if (history > 0 && rest > (Long.MAX_VALUE - first) / history) {
            return Long.MAX_VALUE;
        }
        return first + rest * history;
    }

    /**
     * How many times a request's remaining deadline its expected wait must exceed for admission to refuse it: 1 when
     * the estimate is <em>sure</em>, {@link #UNSURE_MARGIN} when it is not ({@code owed} answers owed at {@code now}).
     * Sure means it rests on history whose service times agree (the longest of the window at most {@link
     * #STEADY_SPREAD} times the shortest) and the answer in progress has not yet taken longer than that spread allows
     * (at most {@link #STEADY_SPREAD} times the typical answer time). It is
     * unsure with no history yet (a process still starting), with scattered history (a JVM that reads answers late
     * reads them in bursts: one long gap, then near-zero ones), or when it rests on how long the answer in progress
     * has taken so far. On a saturated machine those estimates are often transient: the chaos soak without faults
     * (2,000 callers, 2 s deadlines, 2 cores) refused calls expected to wait 2.0-2.3 s, mostly on sidecars stuck
     * 2-4 s in start-up while a wave of others started too, and a call to the same tenant started right after was
     * served in time. A sidecar that is really slow is steadily slow (the slow-server benchmark's 1 s answers) and is
     * refused at once; one that hangs is refused once its stall outlasts twice the deadline, and is retired at the
     * stall limit.
     */
    int margin(int owed, long now) {
        long history = typicalNanos();
        long current = inProgressNanos(owed, now);
        boolean inProgressTypical = history > Long.MAX_VALUE / STEADY_SPREAD || current <= STEADY_SPREAD * history;
        return history > 0 && steady && inProgressTypical ? 1 : UNSURE_MARGIN;
    }

    /**
     * Whether the process has not answered its first request yet ({@code owed} answers owed at {@code now}) and has
     * been on it no longer than the slowest recent start-up of the manager's sidecars ({@link StartupTimes}). Such a
     * sidecar is not refused for its start-up: the time so far says how long it has been starting, not how long it
     * has left, and on a saturated machine whole waves of start-ups take seconds (the chaos soak without faults, with
     * 4,000 callers, refused calls on sidecars 2-4 s into a start-up that a call right after was served in time). One
     * that outlasts every recent peer is judged as before (see {@link #margin}).
     */
    boolean startingNoSlowerThanPeers(int owed, long now) {
        return !firstAnswered && owed > 0 && inProgressNanos(owed, now) <= peers.slowestNanos();
    }

    /**
     * How long the reader polls an empty stdout before it parks: only for a lone request (one answer owed, so the
     * wait is the sidecar's answer time, not queueing) on a sidecar whose lone round trips average under {@link
     * #SPIN_LIMIT_NANOS}, and then for twice that average at most. Parking costs a reactor wake-up and a scheduler
     * hand-off, tens of microseconds; a fast answer is read sooner by polling. Under load round trips grow past the
     * limit and the spinning stops by itself; with several answers owed the reader parks as before.
     */
    long spinBudgetNanos(int owed) {
        long avg = loneRoundTripNanos;
        return owed == 1 && avg > 0 && avg < SPIN_LIMIT_NANOS ? Math.min(2 * avg, SPIN_LIMIT_NANOS) : 0;
    }

    /**
     * What an estimate made at {@code now} with {@code owed} answers owed rested on, for a refusal's message: whether
     * the process has answered at all yet, the typical answer time and whether the recent ones agree, and how long the
     * answer in progress has taken so far.
     */
    String basis(int owed, long now) {
        long current = TimeUnit.NANOSECONDS.toMillis(inProgressNanos(owed, now));
        if (!firstAnswered) {
            return "the process has not answered its first request yet, " + current + " ms after it was sent";
        }
        long typical = typicalNanos();
        if (typical == 0) {
            return "one answer since start-up, none measured yet; the answer in progress has taken " + current
                    + " ms so far";
        }
        // windowSamples is the reader's; a racy read only shifts the message.
        return "its typical answer takes " + TimeUnit.NANOSECONDS.toMicros(typical) / 1000.0 + " ms over the last "
                + windowSamples + " (" + (steady ? "steady" : "varying") + "), and the answer in progress has taken "
                + current + " ms so far";
    }

    /** The typical answer time: the smaller of the last service time and the window's mean; 0 until one is measured. */
    private long typicalNanos() {
        long last = lastServiceNanos;
        long mean = serviceMeanNanos;
        return mean == 0 ? 0 : Math.min(last, mean);
    }

    /** How long the sidecar has been on the answer owed first; 0 with nothing owed. */
    private long inProgressNanos(int owed, long now) {
        return owed > 0 ? Math.max(0, now - serviceStartNanos) : 0;
    }

    /** Weight 1/4 for the new sample; 0 (nothing measured yet) takes the sample as it is. */
    private static long movingAverage(long average, long sample) {
        return average == 0 ? sample : average + (sample - average) / 4;
    }
}
