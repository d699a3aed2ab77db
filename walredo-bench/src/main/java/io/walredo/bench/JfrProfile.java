// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordingFile;

/**
 * Summarises a JFR recording's execution samples: where the CPU time went (the top frame of each Java
 * sample) and where threads waited in native code (the top Java frame of each native sample, leaving out
 * the reactor's {@code epoll_wait}, which is idle time), each as a share of its samples. Used to explain a
 * missed target in the report.
 */
final class JfrProfile {
    private JfrProfile() {}

    /**
     * Reads {@code recording} and returns the top {@code n} frames of Java and of native samples.
     *
     * @param recording a .jfr file recorded with execution sampling on (settings=profile)
     * @param n rows per kind
     */
    static Table topFrames(Path recording, int n) throws IOException {
        Map<String, Integer> java = new HashMap<>();
        Map<String, Integer> nat = new HashMap<>();
        int[] totals = new int[2];
        for (RecordedEvent e : RecordingFile.readAllEvents(recording)) {
            String type = e.getEventType().getName();
            boolean isJava = type.equals("jdk.ExecutionSample");
            if (!isJava && !type.equals("jdk.NativeMethodSample")) {
                continue;
            }
            RecordedStackTrace st = e.getStackTrace();
            if (st == null || st.getFrames().isEmpty()) {
                continue;
            }
            String frame = describe(st.getFrames().get(0)) + caller(st.getFrames());
            if (!isJava && frame.contains("epoll_wait")) {
                continue; // the reactor thread idling between events: waiting, but nobody's latency
            }
            (isJava ? java : nat).merge(frame, 1, Integer::sum);
            totals[isJava ? 0 : 1]++;
        }
        Table t = new Table("kind", "share", "top frame (← its first io.walredo caller)");
        add(t, "on CPU", java, totals[0], n);
        add(t, "in native", nat, totals[1], n);
        return t;
    }

    private static void add(Table t, String kind, Map<String, Integer> counts, int total, int n) {
        counts.entrySet().stream()
                .sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
                .limit(n)
                .forEach(en -> t.row(
                        kind + " (" + total + " samples)",
                        String.format("%.1f %%", 100.0 * en.getValue() / total),
                        en.getKey()));
    }

    private static String describe(RecordedFrame f) {
        String cls = f.getMethod().getType().getName();
        return cls.substring(cls.lastIndexOf('.') + 1) + "." + f.getMethod().getName();
    }

    private static String caller(List<RecordedFrame> frames) {
        if (frames.get(0).getMethod().getType().getName().startsWith("io.walredo.")) {
            return "";
        }
        for (RecordedFrame f : frames) {
            if (f.getMethod().getType().getName().startsWith("io.walredo.")) {
                return " ← " + describe(f);
            }
        }
        return "";
    }
}
