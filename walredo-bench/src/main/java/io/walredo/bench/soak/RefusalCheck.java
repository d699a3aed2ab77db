// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench.soak;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The soak's judge of overload refusals while no fault slows a sidecar: did admission refuse a call that would have
 * been served in time? A refused call was never sent, so its own outcome is unknown; its neighbours' is not.
 *
 * <ul>
 *   <li><b>Wrong</b>: a call with the full timeout to the same tenant, started at most {@link #WINDOW_NANOS} after
 *       the refusal, got its page before the refused call's deadline. It queued behind every answer the refused
 *       call would have waited for (and any sent since), so the refused call would have been served in time too.
 *       This is the soak's invariant: no wrong refusal.
 *   <li><b>Beside a timeout</b>: not wrong, and a call with the full timeout to the same tenant, started within
 *       {@link #WINDOW_NANOS} of the refusal, timed out: the wait admission predicted was real.
 *   <li><b>Undecided</b>: neither; typically every neighbour was refused too.
 * </ul>
 *
 * <p>Why not "no refusal at all": the soak's default load (thousands of callers on 2 cores, a moving window of
 * tenants that restart together under a live-sidecar cap) is beyond what the machine serves within the deadline;
 * calls time out without any fault, and refusing some of them at once instead is what admission is for.
 *
 * <p>Threads: callers record concurrently; {@link #verdict} runs once they have stopped. Memory is bounded: past
 * {@link #MAX_MARKS} refusals and timeouts nothing more is recorded, and a refusal not recorded counts as wrong.
 */
final class RefusalCheck {
    /** How far apart a refusal and the neighbour that judges it may have started. */
    static final long WINDOW_NANOS = TimeUnit.MILLISECONDS.toNanos(250);
    /** Most refusals and timeouts recorded together. */
    static final int MAX_MARKS = 1_000_000;
    /** Most earlier refusals of the same tenant one served call is checked against. */
    private static final int MAX_WALK = 64;

    /** One refusal; {@code previous} is the tenant's refusal before it. */
    private static final class Refusal {
        final int tenant;
        final long startNanos;
        final long deadlineNanos;
        final String what;
        final Refusal previous;
        volatile boolean servedAfter;

        Refusal(int tenant, long startNanos, long deadlineNanos, String what, Refusal previous) {
            this.tenant = tenant;
            this.startNanos = startNanos;
            this.deadlineNanos = deadlineNanos;
            this.what = what;
            this.previous = previous;
        }
    }

    /** Refusals judged, how many were wrong (up to {@code examples} of them named), beside a timeout, undecided. */
    record Verdict(long refusals, long wrong, long besideATimeout, long undecided, List<String> examples) {}

    private final ConcurrentLinkedQueue<long[]> timedOut = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Refusal> refused = new ConcurrentLinkedQueue<>();
    private final AtomicReferenceArray<Refusal> latest;
    private final AtomicInteger marks = new AtomicInteger();
    private final AtomicInteger refusalsNotRecorded = new AtomicInteger();

    /** @param tenants how many tenants the soak numbers from 0 */
    RefusalCheck(int tenants) {
        latest = new AtomicReferenceArray<>(tenants);
    }

    /** A call with the full timeout to tenant {@code tenant}, started at {@code startNanos}, timed out. */
    void timedOut(int tenant, long startNanos) {
        if (marks.incrementAndGet() <= MAX_MARKS) {
            timedOut.add(new long[] {tenant, startNanos});
        }
    }

    /**
     * A call with the full timeout to tenant {@code tenant}, started at {@code startNanos} with its deadline at
     * {@code deadlineNanos}, was refused.
     */
    void refused(int tenant, long startNanos, long deadlineNanos, String what) {
        if (marks.incrementAndGet() > MAX_MARKS) {
            refusalsNotRecorded.incrementAndGet();
            return;
        }
        Refusal r;
        Refusal before;
        do {
            before = latest.get(tenant);
            r = new Refusal(tenant, startNanos, deadlineNanos, what, before);
        } while (!latest.compareAndSet(tenant, before, r));
        refused.add(r);
    }

    /** A call with the full timeout to tenant {@code tenant}, started at {@code startNanos}, got its page at {@code endNanos}. */
    void served(int tenant, long startNanos, long endNanos) {
        Refusal r = latest.get(tenant);
        for (int i = 0; r != null && i < MAX_WALK && startNanos - r.startNanos <= WINDOW_NANOS; i++, r = r.previous) {
            if (startNanos >= r.startNanos && endNanos <= r.deadlineNanos) {
                r.servedAfter = true;
            }
        }
    }

    /** Judges every refusal recorded; call once the callers have stopped. */
    Verdict verdict(int examples) {
        Map<Integer, List<Long>> byTenant = new HashMap<>();
        for (long[] m : timedOut) {
            byTenant.computeIfAbsent((int) m[0], k -> new ArrayList<>()).add(m[1]);
        }
        Map<Integer, long[]> sorted = new HashMap<>();
        byTenant.forEach((t, list) -> {
            long[] a = list.stream().mapToLong(Long::longValue).toArray();
            Arrays.sort(a);
            sorted.put(t, a);
        });
        long notRecorded = refusalsNotRecorded.get();
        long total = notRecorded;
        long wrong = notRecorded;
        long beside = 0;
        List<String> named = new ArrayList<>();
        if (notRecorded > 0) {
            named.add(notRecorded + " refusal(s) past the " + MAX_MARKS + " recorded, not judged");
        }
        for (Refusal r : refused) {
            total++;
            if (r.servedAfter) {
                wrong++;
                if (named.size() < examples) {
                    named.add(r.what);
                }
            } else if (hasNeighbour(sorted.get(r.tenant), r.startNanos)) {
                beside++;
            }
        }
        return new Verdict(total, wrong, beside, total - wrong - beside, List.copyOf(named));
    }

    /** Whether sorted {@code starts} holds one within {@link #WINDOW_NANOS} of {@code t}. */
    static boolean hasNeighbour(long[] starts, long t) {
        if (starts == null || starts.length == 0) {
            return false;
        }
        int i = Arrays.binarySearch(starts, t - WINDOW_NANOS);
        int first = i >= 0 ? i : -i - 1;
        return first < starts.length && starts[first] - t <= WINDOW_NANOS;
    }
}
