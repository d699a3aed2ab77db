// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Paint;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.axis.LogarithmicAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.data.category.DefaultCategoryDataset;

/**
 * Every numeric target of a run as one horizontal bar: the measured value relative to its limit, oriented so the line
 * at 1 separates met (left, green) from missed (right, red), on a log axis so "half the limit" and "twice the
 * limit" are as far from the line. The reader sees each verdict and by how much without reading a table.
 */
final class TargetsChart {
    /** Bars are clamped into this range (a measured 0 would be at minus infinity on the log axis). */
    private static final double MIN = 0.01;

    private static final double MAX = 100;

    private TargetsChart() {}

    /** One bar: the benchmark, the goal and the margin ({@link Section.Target#margin()}). */
    record Bar(String benchmark, String goal, double margin) {}

    static void write(Path file, List<Bar> bars) throws IOException {
        System.setProperty("java.awt.headless", "true");
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        for (Bar b : bars) {
            data.addValue(Math.max(MIN, Math.min(MAX, b.margin())), "margin", label(b));
        }
        BarRenderer renderer = new BarRenderer() {
            @Override
            public Paint getItemPaint(int row, int column) {
                return bars.get(column).margin() <= 1 ? new Color(0x2ca02c) : new Color(0xd62728);
            }
        };
        renderer.setBarPainter(new StandardBarPainter());
        renderer.setShadowVisible(false);
        renderer.setMaximumBarWidth(0.08);
        LogarithmicAxis axis =
                new LogarithmicAxis("measured / limit (at most 1 = met; for \"at least\" targets, limit / measured)");
        axis.setStrictValuesFlag(false);
        axis.setExpTickLabelsFlag(false);
        axis.setLog10TickLabelsFlag(false);
        axis.setRange(MIN / 2, MAX);
        CategoryAxis goals = new CategoryAxis();
        goals.setTickLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        goals.setMaximumCategoryLabelLines(2);
        goals.setMaximumCategoryLabelWidthRatio(0.55f);
        CategoryPlot plot = new CategoryPlot(data, goals, axis, renderer);
        plot.setOrientation(PlotOrientation.HORIZONTAL);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(0xdddddd));
        ValueMarker line = new ValueMarker(1, Color.BLACK, new BasicStroke(2f));
        line.setLabel("limit");
        plot.addRangeMarker(line);
        JFreeChart chart = new JFreeChart(
                "Targets: each measured value against its limit",
                new Font(Font.SANS_SERIF, Font.BOLD, 16),
                plot,
                false);
        chart.setBackgroundPaint(Color.WHITE);
        ChartUtils.saveChartAsPNG(file.toFile(), chart, 1100, 120 + 34 * Math.max(1, bars.size()));
    }

    private static String label(Bar b) {
        return b.benchmark() + ": " + b.goal();
    }
}
