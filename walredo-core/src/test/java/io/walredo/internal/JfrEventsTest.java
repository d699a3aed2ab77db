// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import jdk.jfr.Event;
import jdk.jfr.EventType;
import jdk.jfr.SettingDescriptor;
import org.junit.jupiter.api.Test;

/** What a continuous recording pays for: no stack traces, io.walredo.Redo only past its threshold. */
class JfrEventsTest {

    @Test
    void noEventRecordsAStackTraceAndRedoHasADefaultThreshold() {
        List<Class<? extends Event>> events = List.of(
                JfrEvents.SpawnEvent.class,
                JfrEvents.RedoEvent.class,
                JfrEvents.KillEvent.class,
                JfrEvents.RefusedEvent.class);
        for (Class<? extends Event> c : events) {
            Map<String, String> defaults = defaults(EventType.getEventType(c));
            assertEquals("false", defaults.get("stackTrace"), c.getSimpleName() + " records stack traces");
            assertEquals(
                    c == JfrEvents.RedoEvent.class ? "1 ms" : "0 ns", defaults.get("threshold"), c.getSimpleName());
        }
    }

    private static Map<String, String> defaults(EventType type) {
        return type.getSettingDescriptors().stream()
                .collect(java.util.stream.Collectors.toMap(
                        SettingDescriptor::getName, SettingDescriptor::getDefaultValue));
    }
}
