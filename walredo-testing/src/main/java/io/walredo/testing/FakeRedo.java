// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import io.walredo.WalRedoConfig;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.util.function.Consumer;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Asks for a ready {@code WalRedoManager} on the fake redo binary: annotate a {@code WalRedoManager} parameter of
 * a test method (or of a {@code @BeforeEach} method) and {@link FakeRedoExtension}, which this annotation
 * registers, passes a manager configured by {@link FakeRedoExtension#config} plus the settings below. The manager
 * is closed when the method's extension context closes: after the test and its {@code @AfterEach} methods.
 *
 * <pre>{@code
 * @Test
 * void crashIsTyped(@FakeRedo(faults = @FakeFault(value = Fault.CRASH_AFTER, arg = 1)) WalRedoManager redo) {
 *     assertThrows(SidecarCrashedException.class, () -> redo.redo(tenant, request, AttemptType.GC_COMPACTION));
 * }
 * }</pre>
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.PARAMETER)
@ExtendWith(FakeRedoExtension.class)
public @interface FakeRedo {

    /**
     * The fake's fault flags, in order.
     *
     * @return none by default: a fake that answers every request
     */
    FakeFault[] faults() default {};

    /**
     * The PostgreSQL version the fake is registered for.
     *
     * @return {@value FakeRedoExtension#PG_VERSION} by default
     */
    int pgVersion() default FakeRedoExtension.PG_VERSION;

    /**
     * {@code WalRedoConfig.stallTimeout} as an ISO-8601 duration ({@code "PT0.3S"}); empty keeps the library's
     * default (the redo timeout). The fault tests of a hung or partial answer want it short.
     *
     * @return empty by default
     */
    String stallTimeout() default "";

    /**
     * Any other setting: a class with an accessible no-argument constructor whose {@code accept} changes the
     * builder last, after every other setting here.
     *
     * @return {@link NoChange} by default
     */
    Class<? extends Consumer<WalRedoConfig.Builder>> configure() default NoChange.class;

    /** The default of {@link #configure()}: leaves the builder as it is. */
    final class NoChange implements Consumer<WalRedoConfig.Builder> {
        /** Creates the no-op. */
        public NoChange() {}

        @Override
        public void accept(WalRedoConfig.Builder builder) {}
    }
}
