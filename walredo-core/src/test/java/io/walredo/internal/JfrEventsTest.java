// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.walredo.CapacityExhaustedException;
import io.walredo.ManagerClosedException;
import io.walredo.ProtocolException;
import io.walredo.RedoCancelledException;
import io.walredo.RedoTimeoutException;
import io.walredo.SidecarCrashedException;
import io.walredo.SpawnFailedException;
import io.walredo.TenantOverloadedException;
import io.walredo.TenantShardId;
import io.walredo.WalRedoException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import jdk.jfr.Event;
import jdk.jfr.EventType;
import jdk.jfr.SettingDescriptor;
import org.junit.jupiter.api.Test;

/** What a continuous recording pays for: no stack traces, io.walredo.Redo only past its threshold; the outcomes. */
class JfrEventsTest {

    private static final TenantShardId T = TenantShardId.of(1, 2);

    @Test
    void noEventRecordsAStackTraceAndRedoHasADefaultThreshold() {
        List<Class<? extends Event>> events = List.of(JfrEvents.SpawnEvent.class, JfrEvents.RedoEvent.class,
                JfrEvents.KillEvent.class, JfrEvents.RefusedEvent.class);
        for (Class<? extends Event> c : events) {
            Map<String, String> defaults = defaults(EventType.getEventType(c));
            assertEquals("false", defaults.get("stackTrace"), c.getSimpleName() + " records stack traces");
            assertEquals(c == JfrEvents.RedoEvent.class ? "1 ms" : "0 ns", defaults.get("threshold"),
                    c.getSimpleName());
        }
    }

    @Test
    void everyErrorHasItsOutcome() {
        assertEquals("ok", JfrEvents.outcome(null));
        assertEquals("timeout", JfrEvents.outcome(new RedoTimeoutException(T, 1, "m", null)));
        assertEquals("crashed", JfrEvents.outcome(new SidecarCrashedException(T, 1, null, List.of(), "m", null)));
        assertEquals("protocol", JfrEvents.outcome(new ProtocolException(T, 1, "m", null)));
        assertEquals("cancelled", JfrEvents.outcome(new RedoCancelledException(T, 1, "m", null)));
        assertEquals("capacity", JfrEvents.outcome(new CapacityExhaustedException(T, "m", null)));
        assertEquals("overloaded", JfrEvents.outcome(new TenantOverloadedException(T, 1,
                TenantOverloadedException.Reason.QUEUE_BOUND, 4, Duration.ZERO, "m")));
        assertEquals("spawn_failed", JfrEvents.outcome(new SpawnFailedException(T, "m", null)));
        assertEquals("closed", JfrEvents.outcome(new ManagerClosedException("m")));
        assertEquals("error", JfrEvents.outcome(new WalRedoException(T, 1, "m", null)));
        assertEquals("error", JfrEvents.outcome(new OutOfMemoryError()));
    }

    private static Map<String, String> defaults(EventType type) {
        return type.getSettingDescriptors().stream()
                .collect(java.util.stream.Collectors.toMap(SettingDescriptor::getName,
                        SettingDescriptor::getDefaultValue));
    }
}
