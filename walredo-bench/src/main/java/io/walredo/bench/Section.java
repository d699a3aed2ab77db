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

    /** A goal from the issue and whether this run met it. */
    record Target(String goal, String measured, boolean met) {
    }

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
        targets.add(new Target(goal, measured, met));
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
            sb.append(t.met() ? "  [met]    " : "  [MISSED] ").append(t.goal()).append(": ").append(t.measured())
                    .append('\n');
        }
        notes.forEach(n -> sb.append("  note: ").append(n).append('\n'));
        return sb.toString();
    }

    String markdown() {
        StringBuilder sb = new StringBuilder("## ").append(title).append("\n\n").append(method).append("\n\n");
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
