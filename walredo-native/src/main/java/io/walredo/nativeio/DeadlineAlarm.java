// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

/**
 * An armed alarm: when its deadline passes, the reactor thread unparks the thread that armed it, once, unless the alarm
 * was closed first. Made by {@link NativeRuntime#armAlarm(Deadline)}.
 *
 * <p>Why it exists: a virtual thread whose timed park expires is woken by the JDK's timer thread, whose wake-ups wait
 * in their own submission queue of the virtual-thread scheduler; under load that queue is served last (see {@code
 * docs/architecture.md}, "Deadlines under load"). The reactor's wake-ups are the ones that keep the scheduler busy, so
 * an alarm fired by the reactor is served in turn with them.
 *
 * <p>The wake-up is an ordinary {@link java.util.concurrent.locks.LockSupport#unpark unpark}: every park the owner
 * makes must re-check its own deadline after returning, as {@code LockSupport} requires anyway. An alarm that fires
 * while its owner is not parked leaves a permit, so the owner's next park may return at once (a spurious wake-up,
 * which {@code java.util.concurrent} tolerates). Precision: about one millisecond late at most on an idle reactor.
 */
public interface DeadlineAlarm extends AutoCloseable {

    /**
     * Disarms the alarm. An alarm closed before the reactor fired it never fires; if it fired just before, its unpark
     * may still arrive after this returns (see the class comment). Idempotent; may be called from any thread.
     */
    @Override
    void close();
}
