// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static io.walredo.Fixtures.PG;
import static io.walredo.Fixtures.config;
import static io.walredo.Fixtures.request;
import static io.walredo.Fixtures.tenant;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import io.walredo.testing.FakeRedoModel.Fault;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Collectors;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** The metrics listener, the built-in snapshot, JFR events and stderr log records. */
@Timeout(60)
class ObservabilityTest {

    /** Records every listener call as a line, thread-safely. */
    static final class RecordingListener implements WalRedoMetricsListener {
        final ConcurrentLinkedQueue<String> events = new ConcurrentLinkedQueue<>();

        @Override
        public void sidecarStarted(TenantShardId t, int pid, Duration latency) {
            events.add("started " + t + " " + pid);
        }

        @Override
        public void sidecarKilled(TenantShardId t, int pid, KillCause cause) {
            events.add("killed " + t + " " + pid + " " + cause);
        }

        @Override
        public void redoFinished(TenantShardId t, Duration latency, int records, int bytes, boolean ok) {
            events.add("redo " + t + " " + records + " " + bytes + " " + ok);
        }

        @Override
        public void stderrLine(TenantShardId t, boolean suppressed) {
            events.add("stderr " + t + " " + suppressed);
        }
    }

    @Test
    void listenerSnapshotAndJfrSeeSpawnRedoAndKill(@TempDir Path dir) throws Exception {
        RecordingListener listener = new RecordingListener();
        TenantShardId t = tenant(1);
        RedoRequest r = request(1);
        Path jfr = dir.resolve("walredo.jfr");
        int pid;
        try (Recording rec = new Recording()) {
            rec.enable("io.walredo.SidecarSpawn");
            rec.enable("io.walredo.Redo").withThreshold(Duration.ZERO);
            rec.enable("io.walredo.SidecarKill");
            rec.start();
            try (WalRedoManager m = WalRedoManager.create(
                    config(Fault.STDERR_LINES.args(3)).metricsListener(listener).build())) {
                m.redo(t, r, AttemptType.READ_PAGE);
                pid = Fixtures.sidecarPid(m, t);
                Fixtures.await(
                        "3 stderr lines",
                        Duration.ofSeconds(10),
                        () -> m.metrics().stderrLinesLogged() == 3);
                m.detach(t);
                WalRedoMetrics s = m.metrics();
                assertEquals(1, s.sidecarsStarted());
                assertEquals(1, s.redos());
                assertEquals(0, s.redoFailures());
                assertEquals(r.recordCount(), s.records());
                assertEquals(r.encodedSize(), s.requestBytes());
                assertEquals(1, s.redoLatency().count());
                assertEquals(1, s.spawnLatency().count());
                assertEquals(1, s.recentRedoLatency().count(), "the last minute holds it too");
                assertEquals(1, s.recentSpawnLatency().count());
                assertTrue(s.redoLatency().p99().compareTo(Duration.ZERO) > 0);
                assertEquals(1L, s.sidecarsKilled().get(KillCause.DETACH));
                assertEquals(0, s.liveSidecars());
            }
            rec.stop();
            rec.dump(jfr);
        }
        List<String> ev = List.copyOf(listener.events);
        assertTrue(ev.contains("started " + t + " " + pid), ev.toString());
        assertTrue(ev.contains("redo " + t + " " + r.recordCount() + " " + r.encodedSize() + " true"), ev.toString());
        assertTrue(ev.contains("killed " + t + " " + pid + " DETACH"), ev.toString());
        assertEquals(
                3, ev.stream().filter(e -> e.equals("stderr " + t + " false")).count(), ev.toString());

        Set<String> names = RecordingFile.readAllEvents(jfr).stream()
                .map(e -> e.getEventType().getName())
                .collect(Collectors.toSet());
        assertTrue(
                names.containsAll(Set.of("io.walredo.SidecarSpawn", "io.walredo.Redo", "io.walredo.SidecarKill")),
                names.toString());
        RecordedEvent kill = RecordingFile.readAllEvents(jfr).stream()
                .filter(e -> e.getEventType().getName().equals("io.walredo.SidecarKill"))
                .findFirst()
                .orElseThrow();
        assertEquals(pid, kill.getInt("pid"));
        assertEquals("DETACH", kill.getString("cause"));
        RecordedEvent redo = RecordingFile.readAllEvents(jfr).stream()
                .filter(e -> e.getEventType().getName().equals("io.walredo.Redo"))
                .findFirst()
                .orElseThrow();
        assertEquals(PG, redo.getInt("pgVersion"));
        assertEquals("READ_PAGE", redo.getString("attemptType"));
        assertEquals("ok", redo.getString("outcome"));
        assertEquals(r.encodedSize(), redo.getInt("requestBytes"));
        assertEquals(null, redo.getStackTrace(), "no stack trace is recorded");
        RecordedEvent spawn = RecordingFile.readAllEvents(jfr).stream()
                .filter(e -> e.getEventType().getName().equals("io.walredo.SidecarSpawn"))
                .findFirst()
                .orElseThrow();
        assertEquals(PG, spawn.getInt("pgVersion"));
        assertTrue(Files.size(jfr) > 0);
    }

    /** A failed call's event says how it failed. */
    @Test
    void aFailedRedosJfrEventNamesItsOutcome(@TempDir Path dir) throws Exception {
        Path jfr = dir.resolve("fail.jfr");
        try (Recording rec = new Recording()) {
            rec.enable("io.walredo.Redo").withThreshold(Duration.ZERO);
            rec.start();
            try (WalRedoManager m =
                    WalRedoManager.create(config(Fault.CRASH_AFTER.args(1)).build())) {
                assertThrows(
                        SidecarCrashedException.class, () -> m.redo(tenant(2), request(2), AttemptType.GC_COMPACTION));
            }
            rec.stop();
            rec.dump(jfr);
        }
        RecordedEvent redo = RecordingFile.readAllEvents(jfr).stream()
                .filter(e -> e.getEventType().getName().equals("io.walredo.Redo"))
                .findFirst()
                .orElseThrow();
        assertEquals("crashed", redo.getString("outcome"));
        assertEquals("GC_COMPACTION", redo.getString("attemptType"));
        assertFalse(redo.getBoolean("succeeded"));
    }

    @Test
    void aThrowingListenerDoesNotBreakRedo() throws Exception {
        WalRedoMetricsListener bad = new WalRedoMetricsListener() {
            @Override
            public void redoFinished(TenantShardId t, Duration l, int records, int bytes, boolean ok) {
                throw new IllegalStateException("listener bug");
            }
        };
        try (WalRedoManager m =
                WalRedoManager.create(config().metricsListener(bad).build())) {
            m.redo(tenant(2), request(2), AttemptType.READ_PAGE);
            m.redo(tenant(2), request(3), AttemptType.READ_PAGE);
            assertEquals(2, m.metrics().redos());
        }
    }

    @Test
    void stderrLinesAreLoggedWithTenantAndPidAndEscapedControlCharacters() throws Exception {
        Logger logger = (Logger) LoggerFactory.getLogger("io.walredo.sidecar.stderr");
        ConcurrentLinkedQueue<ILoggingEvent> events = new ConcurrentLinkedQueue<>();
        AppenderBase<ILoggingEvent> appender = new AppenderBase<>() {
            @Override
            protected void append(ILoggingEvent e) {
                events.add(e);
            }
        };
        appender.start();
        ch.qos.logback.classic.Level before = logger.getLevel();
        logger.setLevel(ch.qos.logback.classic.Level.INFO);
        logger.addAppender(appender);
        TenantShardId t = tenant(77);
        try (WalRedoManager m =
                WalRedoManager.create(config(Fault.STDERR_LINES.args(2)).build())) {
            m.ping(t, PG);
            int pid = Fixtures.sidecarPid(m, t);
            Fixtures.await(
                    "2 lines logged",
                    Duration.ofSeconds(10),
                    () -> events.stream()
                                    .filter(e -> e.getKeyValuePairs() != null
                                            && e.getKeyValuePairs().stream()
                                                    .anyMatch(kv -> kv.key.equals("pid") && kv.value.equals(pid)))
                                    .count()
                            == 2);
            ILoggingEvent e = events.peek();
            var kvs = e.getKeyValuePairs().stream().collect(Collectors.toMap(kv -> kv.key, kv -> kv.value));
            assertEquals(t, kvs.get("tenant"));
            assertEquals(pid, kvs.get("pid"));
            assertTrue(e.getFormattedMessage().contains("registered custom resource manager"), e.getFormattedMessage());
        } finally {
            logger.detachAppender(appender);
            logger.setLevel(before);
        }
    }

    @Test
    void createLogsTheEffectiveConfigurationOnce() {
        Logger logger = (Logger) LoggerFactory.getLogger("io.walredo.internal.Supervisor");
        ConcurrentLinkedQueue<ILoggingEvent> events = new ConcurrentLinkedQueue<>();
        AppenderBase<ILoggingEvent> appender = new AppenderBase<>() {
            @Override
            protected void append(ILoggingEvent e) {
                if (e.getFormattedMessage().equals("walredo manager created")) {
                    events.add(e);
                }
            }
        };
        appender.start();
        ch.qos.logback.classic.Level before = logger.getLevel();
        logger.setLevel(ch.qos.logback.classic.Level.INFO);
        logger.addAppender(appender);
        WalRedoConfig cfg = config().maxQueuedPerTenant(3).build();
        try (WalRedoManager m = WalRedoManager.create(cfg)) {
            m.metrics();
        } finally {
            logger.detachAppender(appender);
            logger.setLevel(before);
        }
        assertEquals(1, events.size(), "logged once");
        var kvs = events.peek().getKeyValuePairs().stream().collect(Collectors.toMap(kv -> kv.key, kv -> kv.value));
        assertEquals(cfg.toString(), String.valueOf(kvs.get("config")));
    }

    @Test
    void theListenerLearnsOutcomeAttemptTypeVersionAndRetries() throws Exception {
        ConcurrentLinkedQueue<RedoResult> results = new ConcurrentLinkedQueue<>();
        WalRedoMetricsListener listener = new WalRedoMetricsListener() {
            @Override
            public void redoCompleted(RedoResult r) {
                results.add(r);
            }
        };
        try (WalRedoManager m =
                WalRedoManager.create(config().metricsListener(listener).build())) {
            m.redo(tenant(5), request(5), AttemptType.LEGACY_COMPACTION);
        }
        try (WalRedoManager m = WalRedoManager.create(
                config(Fault.CRASH_AFTER.args(1)).metricsListener(listener).build())) {
            assertThrows(SidecarCrashedException.class, () -> m.redo(tenant(6), request(6), AttemptType.READ_PAGE));
        }
        List<RedoResult> r = List.copyOf(results);
        assertEquals(2, r.size(), r.toString());
        RedoResult ok = r.get(0);
        assertEquals(RedoOutcome.OK, ok.outcome());
        assertEquals(AttemptType.LEGACY_COMPACTION, ok.attemptType());
        assertEquals(PG, ok.pgVersion());
        assertEquals(0, ok.retries());
        assertTrue(ok.error().isEmpty());
        RedoResult crash = r.get(1);
        assertEquals(RedoOutcome.CRASHED, crash.outcome());
        assertEquals(AttemptType.READ_PAGE, crash.attemptType());
        assertEquals(AttemptType.READ_PAGE.retries(), crash.retries(), "every retry was used on a fresh sidecar");
        assertEquals(SidecarCrashedException.class, crash.error().orElseThrow());
        assertFalse(crash.succeeded());
    }
}
