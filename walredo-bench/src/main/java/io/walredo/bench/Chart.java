// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogarithmicAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYErrorRenderer;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.xy.YIntervalSeries;
import org.jfree.data.xy.YIntervalSeriesCollection;

/**
 * A line chart written as a PNG with JFreeChart (headless). Axes are logarithmic where the data spans decades, else
 * linear and fitted to the data (never forced down to zero, which flattens close lines along the floor). Points may
 * carry an error bar, and horizontal markers show targets.
 *
 * @param title chart title
 * @param xLabel x axis label
 * @param yLabel y axis label
 * @param logX logarithmic x axis
 * @param logY logarithmic y axis
 * @param series the lines
 * @param markers horizontal lines (targets) across the plot
 */
record Chart(
        String title,
        String xLabel,
        String yLabel,
        boolean logX,
        boolean logY,
        List<Series> series,
        List<Marker> markers) {

    Chart(String title, String xLabel, String yLabel, boolean logX, boolean logY, List<Series> series) {
        this(title, xLabel, yLabel, logX, logY, series, List.of());
    }

    /**
     * One line.
     *
     * @param name legend entry
     * @param points {x, y} pairs, or {x, y, low, high} with an error bar from low to high, in x order
     * @param dashed drawn dashed (used for the reference series)
     * @param group series of one group share a colour (a measurement and its reference)
     */
    record Series(String name, List<double[]> points, boolean dashed, int group) {}

    /**
     * A horizontal line at {@code y}, labelled.
     *
     * @param label what the line is, e.g. "target: 50 %"
     * @param y where
     */
    record Marker(String label, double y) {}

    static final int W = 900;
    static final int H = 560;
    static final Color[] COLORS = {
        new Color(0x1f77b4),
        new Color(0xd62728),
        new Color(0x2ca02c),
        new Color(0x9467bd),
        new Color(0xff7f0e),
        new Color(0x8c564b)
    };
    static final Font FONT = new Font(Font.SANS_SERIF, Font.PLAIN, 13);

    void write(Path file) throws IOException {
        System.setProperty("java.awt.headless", "true");
        YIntervalSeriesCollection data = new YIntervalSeriesCollection();
        boolean errorBars = false;
        for (Series s : series) {
            YIntervalSeries ys = new YIntervalSeries(s.name(), false, true);
            for (double[] p : s.points()) {
                if (p.length >= 4) {
                    ys.add(p[0], p[1], p[2], p[3]);
                    errorBars = true;
                } else {
                    ys.add(p[0], p[1], p[1], p[1]);
                }
            }
            data.addSeries(ys);
        }
        XYErrorRenderer renderer = new XYErrorRenderer();
        renderer.setDrawXError(false);
        renderer.setDrawYError(errorBars);
        renderer.setCapLength(6);
        for (int i = 0; i < series.size(); i++) {
            Series s = series.get(i);
            Color c = COLORS[Math.floorMod(s.group(), COLORS.length)];
            renderer.setSeriesPaint(i, c);
            renderer.setSeriesLinesVisible(i, true);
            renderer.setSeriesShapesVisible(i, true);
            renderer.setSeriesStroke(
                    i,
                    s.dashed()
                            ? new BasicStroke(
                                    2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f, new float[] {7f, 5f}, 0f)
                            : new BasicStroke(2.2f));
        }
        XYPlot plot = new XYPlot(data, axis(xLabel, logX, true), axis(yLabel, logY, false), renderer);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xdddddd));
        plot.setRangeGridlinePaint(new Color(0xdddddd));
        for (Marker m : markers) {
            ValueMarker vm = new ValueMarker(
                    m.y(),
                    new Color(0x555555),
                    new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f, new float[] {3f, 3f}, 0f));
            vm.setLabel(m.label());
            vm.setLabelFont(FONT);
            vm.setLabelAnchor(RectangleAnchor.TOP_LEFT);
            vm.setLabelTextAnchor(TextAnchor.BOTTOM_LEFT);
            plot.addRangeMarker(vm);
        }
        JFreeChart chart = new JFreeChart(title, new Font(Font.SANS_SERIF, Font.BOLD, 16), plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        chart.getLegend().setItemFont(FONT);
        ChartUtils.saveChartAsPNG(file.toFile(), chart, W, H);
    }

    private ValueAxis axis(String label, boolean log, boolean domain) {
        if (log) {
            // Ticks at 1-9 x 10^n, labelled plainly (1, 2, 5, 10, 20 ...), not at fractional powers of ten.
            LogarithmicAxis a = new LogarithmicAxis(label);
            a.setStrictValuesFlag(false);
            a.setExpTickLabelsFlag(false);
            a.setLog10TickLabelsFlag(false);
            a.setAutoRangeNextLogFlag(false);
            a.setLabelFont(FONT);
            includeMarkers(a, domain);
            return a;
        }
        NumberAxis a = new NumberAxis(label);
        a.setAutoRangeIncludesZero(false);
        a.setLabelFont(FONT);
        if (domain && series.stream().allMatch(s -> s.points().stream().allMatch(p -> p[0] == Math.rint(p[0])))) {
            a.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        }
        includeMarkers(a, domain);
        return a;
    }

    /** Widens a range axis so that every marker is inside it (a target far from the data is still drawn). */
    private void includeMarkers(ValueAxis a, boolean domain) {
        if (domain || markers.isEmpty()) {
            return;
        }
        double lo = Double.MAX_VALUE;
        double hi = -Double.MAX_VALUE;
        for (Series s : series) {
            for (double[] p : s.points()) {
                lo = Math.min(lo, p.length >= 4 ? p[2] : p[1]);
                hi = Math.max(hi, p.length >= 4 ? p[3] : p[1]);
            }
        }
        for (Marker m : markers) {
            lo = Math.min(lo, m.y());
            hi = Math.max(hi, m.y());
        }
        if (lo == Double.MAX_VALUE) {
            return;
        }
        if (a instanceof LogarithmicAxis) {
            a.setRange(lo / 1.5, hi * 1.5);
        } else {
            double pad = Math.max((hi - lo) * 0.08, Math.abs(hi) * 0.01);
            a.setRange(lo - pad, hi + pad);
        }
    }
}
