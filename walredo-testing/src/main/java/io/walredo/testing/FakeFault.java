// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import java.lang.annotation.Documented;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * One fault flag of the fake redo binary inside {@link FakeRedo#faults()}, for example
 * {@code @FakeFault(value = Fault.CRASH_AFTER, arg = 3)}: die of SIGSEGV on the third GetPage.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({})
public @interface FakeFault {

    /**
     * The flag.
     *
     * @return a fault of the fake
     */
    FakeRedoModel.Fault value();

    /**
     * The flag's value (a count, microseconds or bytes, as {@link FakeRedoModel.Fault} says). Required, and not
     * negative, for a flag that takes one; left out for one that does not. An annotation has no "absent", so
     * {@link #NO_ARG} stands for it; the extension refuses a mismatch either way.
     *
     * @return the value, or {@link #NO_ARG}
     */
    long arg() default NO_ARG;

    /** The value of {@link #arg()} when it is left out. */
    long NO_ARG = -1;
}
