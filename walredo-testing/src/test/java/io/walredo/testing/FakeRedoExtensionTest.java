// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectMethod;

import io.walredo.ManagerClosedException;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import io.walredo.testing.FakeRedoModel.Fault;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

@Timeout(60)
class FakeRedoExtensionTest {

    @Test
    void theAnnotationBecomesTheConfiguration(
            @FakeRedo(
                            faults = {@FakeFault(value = Fault.DELAY_US, arg = 10), @FakeFault(Fault.REPORT_FDS)},
                            stallTimeout = "PT0.3S",
                            configure = FourSidecars.class)
                    WalRedoManager redo) {
        WalRedoConfig c = redo.config();
        assertEquals(List.of("--delay-us", "10", "--report-fds"), c.extraArgs());
        assertEquals(Duration.ofMillis(300), c.stallTimeout());
        assertEquals(4, c.maxLiveSidecars());
        assertEquals(FakeRedoExtension.REDO_TIMEOUT, c.redoTimeout());
        assertEquals(
                FakeRedoModel.binary(),
                c.binaries().get(FakeRedoExtension.PG_VERSION).executable());
    }

    @Test
    void eachParameterGetsItsOwnManager(@FakeRedo WalRedoManager a, @FakeRedo WalRedoManager b) {
        assertNotSame(a, b);
    }

    @Test
    void aFlagWithoutItsValueIsRefusedWithTheFlagNamed() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> FakeRedoExtension.args(
                        new FakeFault[] {Holder.annotation("crashWithoutN").faults()[0]}));
        assertTrue(e.getMessage().contains("CRASH_AFTER") && e.getMessage().contains("needs arg"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> FakeRedoExtension.args(
                        new FakeFault[] {Holder.annotation("fdsWithN").faults()[0]}));
        assertTrue(e.getMessage().contains("takes no arg"), e.getMessage());
    }

    @Test
    void theManagerIsClosedAfterTheTest() {
        TestExecutionSummary summary = runSample("keepsItsManager");
        assertEquals(
                1, summary.getTestsSucceededCount(), () -> summary.getFailures().toString());
        WalRedoManager m = Sample.seen.getAndSet(null);
        assertThrows(
                ManagerClosedException.class,
                () -> m.ping(ReadmeTestingExampleTest.TENANT, FakeRedoExtension.PG_VERSION));
    }

    @Test
    void aBadDurationFailsTheTestWithTheParameterNamed() {
        List<TestExecutionSummary.Failure> failures = runSample("badDuration").getFailures();
        assertEquals(1, failures.size());
        Throwable t = failures.get(0).getException();
        assertTrue(
                t instanceof ParameterResolutionException && t.getMessage().contains("stallTimeout \"300ms\""),
                t.toString());
    }

    /** Runs one test method of {@link Sample} through the JUnit launcher. */
    private static TestExecutionSummary runSample(String method) {
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        LauncherFactory.create()
                .execute(
                        LauncherDiscoveryRequestBuilder.request()
                                .selectors(selectMethod(Sample.class, method, WalRedoManager.class.getName()))
                                .build(),
                        listener);
        return listener.getSummary();
    }

    /** A configure class: the knobs @FakeRedo has no element for. */
    static final class FourSidecars implements Consumer<WalRedoConfig.Builder> {
        @Override
        public void accept(WalRedoConfig.Builder b) {
            b.maxLiveSidecars(4);
        }
    }

    /** Run only through the launcher above (surefire skips nested classes). */
    static final class Sample {
        /** Written by the one launched test, read after it; the only shared state, touched by one test. */
        static final AtomicReference<WalRedoManager> seen = new AtomicReference<>();

        @Test
        void keepsItsManager(@FakeRedo WalRedoManager redo) throws Exception {
            redo.ping(ReadmeTestingExampleTest.TENANT, FakeRedoExtension.PG_VERSION);
            seen.set(redo);
        }

        @Test
        void badDuration(@FakeRedo(stallTimeout = "300ms") WalRedoManager redo) {}
    }

    /** Annotations to read, for the flag checks that must not reach JUnit. */
    static final class Holder {
        void crashWithoutN(@FakeRedo(faults = @FakeFault(Fault.CRASH_AFTER)) WalRedoManager m) {}

        void fdsWithN(@FakeRedo(faults = @FakeFault(value = Fault.REPORT_FDS, arg = 1)) WalRedoManager m) {}

        static FakeRedo annotation(String method) throws NoSuchMethodException {
            return Holder.class
                    .getDeclaredMethod(method, WalRedoManager.class)
                    .getParameters()[0]
                    .getAnnotation(FakeRedo.class);
        }
    }
}
