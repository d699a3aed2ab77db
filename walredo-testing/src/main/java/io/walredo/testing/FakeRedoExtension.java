// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.junit.platform.commons.support.ReflectionSupport;

/**
 * Resolves {@link FakeRedo}-annotated {@code WalRedoManager} parameters: builds the configuration, creates the
 * manager and puts it in the method's extension store, which closes it (JUnit 5.13 and later close every
 * {@code AutoCloseable} stored value) when the method's context ends. Registered by {@link FakeRedo} itself; a
 * test need not name this class.
 *
 * <p>Holds no state: each parameter gets its own manager, so tests may run in parallel.
 */
public final class FakeRedoExtension implements ParameterResolver {

    /** The PostgreSQL version the fake is registered for unless {@link FakeRedo#pgVersion()} says otherwise. */
    public static final int PG_VERSION = 16;

    /** The redo timeout of {@link #config}: long enough for a loaded CI machine, short enough to fail a hang. */
    public static final Duration REDO_TIMEOUT = Duration.ofSeconds(20);

    /** The spawn back-off of {@link #config}, initial: a test that crashes a sidecar respawns without waiting. */
    public static final Duration SPAWN_BACKOFF_INITIAL = Duration.ofMillis(20);

    /** The spawn back-off of {@link #config}, at most. */
    public static final Duration SPAWN_BACKOFF_MAX = Duration.ofMillis(200);

    /** The kill timeout of {@link #config}. */
    public static final Duration KILL_TIMEOUT = Duration.ofSeconds(5);

    private static final ExtensionContext.Namespace NAMESPACE =
            ExtensionContext.Namespace.create(FakeRedoExtension.class);

    /** Created by JUnit, through {@link FakeRedo}'s {@code @ExtendWith}. */
    public FakeRedoExtension() {}

    /**
     * Returns the configuration the extension starts from, for a test that creates its own manager: the fake
     * registered for {@code pgVersion} with {@code fakeArgs}, {@link #REDO_TIMEOUT}, the spawn back-off
     * {@link #SPAWN_BACKOFF_INITIAL} to {@link #SPAWN_BACKOFF_MAX}, {@link #KILL_TIMEOUT}; the rest default.
     *
     * @param pgVersion the PostgreSQL version the fake answers for
     * @param fakeArgs extra arguments of the fake, typically from {@link FakeRedoModel.Fault#args}
     * @return a new builder
     * @throws IllegalStateException as {@link FakeRedoModel#binary()}
     */
    public static WalRedoConfig.Builder config(int pgVersion, List<String> fakeArgs) {
        return WalRedoConfig.builder()
                .redoBinary(pgVersion, FakeRedoModel.binary())
                .extraArgs(fakeArgs)
                .redoTimeout(REDO_TIMEOUT)
                .spawnBackoff(SPAWN_BACKOFF_INITIAL, SPAWN_BACKOFF_MAX)
                .killTimeout(KILL_TIMEOUT);
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == WalRedoManager.class && parameter.isAnnotated(FakeRedo.class);
    }

    @Override
    public WalRedoManager resolveParameter(ParameterContext parameter, ExtensionContext context) {
        FakeRedo spec = parameter.findAnnotation(FakeRedo.class).orElseThrow();
        WalRedoConfig config;
        try {
            config = configFor(spec);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new ParameterResolutionException(
                    "@FakeRedo on parameter " + parameter.getIndex() + " of " + parameter.getDeclaringExecutable()
                            + ": " + e.getMessage(),
                    e);
        }
        WalRedoManager manager = WalRedoManager.create(config);
        context.getStore(NAMESPACE)
                .put(new StoreKey(parameter.getDeclaringExecutable().toString(), parameter.getIndex()), manager);
        return manager;
    }

    /** The configuration {@code spec} asks for. */
    static WalRedoConfig configFor(FakeRedo spec) {
        WalRedoConfig.Builder b = config(spec.pgVersion(), args(spec.faults()));
        if (!spec.stallTimeout().isEmpty()) {
            try {
                b.stallTimeout(Duration.parse(spec.stallTimeout()));
            } catch (DateTimeParseException e) {
                throw new IllegalArgumentException(
                        "stallTimeout \"" + spec.stallTimeout() + "\" is not an ISO-8601" + " duration such as PT0.3S",
                        e);
            }
        }
        Consumer<WalRedoConfig.Builder> configure = ReflectionSupport.newInstance(spec.configure());
        configure.accept(b);
        return b.build();
    }

    /** The fake's arguments for {@code faults}, in order. */
    static List<String> args(FakeFault[] faults) {
        List<String> argv = new ArrayList<>();
        for (FakeFault f : faults) {
            try {
                argv.addAll(
                        f.arg() == FakeFault.NO_ARG
                                ? f.value().args()
                                : f.value().args(f.arg()));
            } catch (IllegalStateException e) {
                throw new IllegalArgumentException(
                        "@FakeFault(" + f.value()
                                + (f.arg() == FakeFault.NO_ARG
                                        ? ") needs arg = N"
                                        : ", arg = " + f.arg() + ") takes no arg")
                                + ": " + e.getMessage(),
                        e);
            }
        }
        return argv;
    }

    /** One stored manager per parameter of one method. */
    private record StoreKey(String executable, int index) {}
}
