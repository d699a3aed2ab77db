// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

/**
 * An armed alarm: once its deadline passes, the thread that armed it is unparked, once, unless the alarm was closed
 * first. Made by {@link NativeRuntime#armAlarm(Deadline)}.
 *
 * <p>Why it exists: a virtual thread whose timed park expires is woken by the JDK's timer thread, whose wake-ups wait
 * in their own submission queue of the virtual-thread scheduler; under load that queue is served last (see {@code
 * docs/architecture.md}, "Deadlines under load"). Who fires an alarm: the next thread that arms one fires every alarm
 * already due; under load that is a caller on a carrier, whose unpark goes to the carrier's local queue and runs
 * within microseconds. When no thread comes by, the reactor fires it.
 *
 * <p>The wake-up is an ordinary {@link java.util.concurrent.locks.LockSupport#unpark unpark}: every park the owner
 * makes must re-check its own deadline after returning, as {@code LockSupport} requires anyway. An alarm that fires
 * while its owner is not parked leaves a permit, so the owner's next park may return at once (a spurious wake-up,
 * which {@code java.util.concurrent} tolerates). Precision: a few milliseconds late at most when nothing else is
 * armed, since the reactor leaves due alarms to other threads for a millisecond first.
 */
public interface DeadlineAlarm extends AutoCloseable {

    /**
     * How long after its deadline the alarm fired, in nanoseconds: the library's own lateness in waking the owner,
     * before the owner waits for a CPU to run on. -1 if it has not fired (closed first, or not due yet), or if it was
     * fired early because the runtime is stopping.
     */
    long lateNanos();

    /**
     * Disarms the alarm. An alarm closed before it fired never fires; if it fired just before, its unpark
     * may still arrive after this returns (see the class comment). Idempotent; may be called from any thread.
     */
    @Override
    void close();
}
