// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * One benchmark's results: what was measured and how, its tables, its targets (each met or missed, with the
 * measured figure) and its charts. Built by a scenario, printed by {@link BenchSuite}. Not thread-safe.
 */
final class Section {
    final String title;
    final String method;
    final List<Table> tables = new ArrayList<>();
    final List<String> tableCaptions = new ArrayList<>();
    final List<Target> targets = new ArrayList<>();
    final List<String> charts = new ArrayList<>();
    final List<String> notes = new ArrayList<>();

    /**
     * A goal from the issue and whether this run met it.
     *
     * @param margin for a numeric goal, the measured value relative to its limit, oriented so that at most 1 is met
     *     (value / limit for "at most", limit / value for "at least"); NaN for a goal that is not one number
     */
    record Target(String goal, String measured, boolean met, double margin) {}

    Section(String title, String method) {
        this.title = title;
        this.method = method;
    }

    Section table(String caption, Table t) {
        tableCaptions.add(caption);
        tables.add(t);
        return this;
    }

    Section target(String goal, String measured, boolean met) {
        targets.add(new Target(goal, measured, met, Double.NaN));
        return this;
    }

    /**
     * A numeric goal: {@code value} at most (or at least) {@code limit}; met is decided here, and the margin is drawn
     * in the report's targets chart.
     */
    Section target(String goal, String measured, double value, double limit, boolean atMost) {
        boolean met = atMost ? value <= limit : value >= limit;
        double margin = atMost ? value / limit : limit / value;
        targets.add(new Target(goal, measured, met, margin));
        return this;
    }

    Section note(String text) {
        notes.add(text);
        return this;
    }

    String console() {
        StringBuilder sb = new StringBuilder("\n== ").append(title).append(" ==\n");
        for (int i = 0; i < tables.size(); i++) {
            if (!tableCaptions.get(i).isEmpty()) {
                sb.append(tableCaptions.get(i)).append('\n');
            }
            sb.append(tables.get(i).console()).append('\n');
        }
        for (Target t : targets) {
            sb.append(t.met() ? "  [met]    " : "  [MISSED] ")
                    .append(t.goal())
                    .append(": ")
                    .append(t.measured())
                    .append('\n');
        }
        notes.forEach(n -> sb.append("  note: ").append(n).append('\n'));
        return sb.toString();
    }

    String markdown() {
        StringBuilder sb = new StringBuilder("## ")
                .append(title)
                .append("\n\n")
                .append(method)
                .append("\n\n");
        for (int i = 0; i < tables.size(); i++) {
            if (!tableCaptions.get(i).isEmpty()) {
                sb.append(tableCaptions.get(i)).append("\n\n");
            }
            sb.append(tables.get(i).markdown()).append('\n');
        }
        for (String c : charts) {
            sb.append("![").append(title).append("](").append(c).append(")\n\n");
        }
        if (!targets.isEmpty()) {
            Table t = new Table("target", "this run", "");
            for (Target x : targets) {
                t.row(x.goal(), x.measured(), x.met() ? "met" : "**missed**");
            }
            sb.append(t.markdown()).append('\n');
        }
        notes.forEach(n -> sb.append(n).append("\n\n"));
        return sb.toString();
    }
}
