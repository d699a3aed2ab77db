// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * A line chart written as a PNG with Java2D (headless), so the report needs no plotting tool. Axes may be
 * logarithmic (base 10 ticks on y, the data's own x values as ticks on a log x axis).
 *
 * @param title chart title
 * @param xLabel x axis label
 * @param yLabel y axis label
 * @param logX logarithmic x axis
 * @param logY logarithmic y axis
 * @param series the lines
 */
record Chart(String title, String xLabel, String yLabel, boolean logX, boolean logY, List<Series> series) {

    /**
     * One line.
     *
     * @param name legend entry
     * @param points {x, y} pairs, in x order
     * @param dashed drawn dashed (used for the reference series)
     * @param group series of one group share a colour (a measurement and its reference)
     */
    record Series(String name, List<double[]> points, boolean dashed, int group) {
    }

    private static final int W = 900;
    private static final int H = 560;
    private static final int LEFT = 90;
    private static final int RIGHT = 230;
    private static final int TOP = 50;
    private static final int BOTTOM = 70;
    private static final Color[] COLORS = {
        new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd), new Color(0xff7f0e),
        new Color(0x8c564b)
    };

    void write(Path file) throws IOException {
        System.setProperty("java.awt.headless", "true");
        BufferedImage img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            draw(g);
        } finally {
            g.dispose();
        }
        if (!ImageIO.write(img, "png", file.toFile())) {
            throw new IOException("no PNG writer");
        }
    }

    private void draw(Graphics2D g) {
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, W, H);
        double minX = Double.MAX_VALUE;
        double maxX = -Double.MAX_VALUE;
        double minY = Double.MAX_VALUE;
        double maxY = -Double.MAX_VALUE;
        List<Double> xs = new ArrayList<>();
        for (Series s : series) {
            for (double[] p : s.points()) {
                minX = Math.min(minX, p[0]);
                maxX = Math.max(maxX, p[0]);
                minY = Math.min(minY, p[1]);
                maxY = Math.max(maxY, p[1]);
                if (!xs.contains(p[0])) {
                    xs.add(p[0]);
                }
            }
        }
        if (logY) {
            minY = Math.pow(10, Math.floor(Math.log10(minY)));
            maxY = Math.pow(10, Math.ceil(Math.log10(maxY)));
        } else {
            minY = 0;
            maxY = niceCeil(maxY);
        }
        if (maxX == minX) {
            maxX = minX + 1;
        }
        Frame f = new Frame(minX, maxX, minY, maxY);

        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString(title, LEFT, 30);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        FontMetrics fm = g.getFontMetrics();
        int plotW = W - LEFT - RIGHT;
        int plotH = H - TOP - BOTTOM;
        g.drawRect(LEFT, TOP, plotW, plotH);

        List<Double> yTicks = new ArrayList<>();
        if (logY) {
            for (double y = minY; y <= maxY * 1.0001; y *= 10) {
                yTicks.add(y);
            }
        } else {
            for (int i = 0; i <= 5; i++) {
                yTicks.add(maxY * i / 5);
            }
        }
        for (double y : yTicks) {
            int py = f.py(y);
            g.setColor(new Color(0xe0e0e0));
            g.drawLine(LEFT + 1, py, LEFT + plotW - 1, py);
            g.setColor(Color.BLACK);
            String label = number(y);
            g.drawString(label, LEFT - 8 - fm.stringWidth(label), py + 4);
        }
        for (double x : xs) {
            int px = f.px(x);
            g.setColor(new Color(0xe0e0e0));
            g.drawLine(px, TOP + 1, px, TOP + plotH - 1);
            g.setColor(Color.BLACK);
            String label = number(x);
            g.drawString(label, px - fm.stringWidth(label) / 2, TOP + plotH + 18);
        }
        g.drawString(xLabel, LEFT + plotW / 2 - fm.stringWidth(xLabel) / 2, H - 25);
        Graphics2D rotated = (Graphics2D) g.create();
        rotated.rotate(-Math.PI / 2);
        rotated.drawString(yLabel, -(TOP + plotH / 2 + fm.stringWidth(yLabel) / 2), 20);
        rotated.dispose();

        for (int i = 0; i < series.size(); i++) {
            Series s = series.get(i);
            g.setColor(COLORS[s.group() % COLORS.length]);
            g.setStroke(s.dashed()
                    ? new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f, new float[] {7f, 5f}, 0f)
                    : new BasicStroke(2.5f));
            int[] prev = null;
            for (double[] p : s.points()) {
                int[] q = {f.px(p[0]), f.py(p[1])};
                g.fillOval(q[0] - 3, q[1] - 3, 7, 7);
                if (prev != null) {
                    g.drawLine(prev[0], prev[1], q[0], q[1]);
                }
                prev = q;
            }
            int ly = TOP + 10 + i * 22;
            g.drawLine(LEFT + plotW + 15, ly, LEFT + plotW + 45, ly);
            g.setColor(Color.BLACK);
            g.drawString(s.name(), LEFT + plotW + 52, ly + 4);
        }
    }

    private final class Frame {
        final double minX;
        final double maxX;
        final double minY;
        final double maxY;

        Frame(double minX, double maxX, double minY, double maxY) {
            this.minX = minX;
            this.maxX = maxX;
            this.minY = minY;
            this.maxY = maxY;
        }

        int px(double x) {
            double t = logX ? (Math.log(x) - Math.log(minX)) / (Math.log(maxX) - Math.log(minX))
                    : (x - minX) / (maxX - minX);
            return LEFT + (int) Math.round(t * (W - LEFT - RIGHT));
        }

        int py(double y) {
            double t = logY ? (Math.log(y) - Math.log(minY)) / (Math.log(maxY) - Math.log(minY))
                    : (y - minY) / (maxY - minY);
            return TOP + (H - TOP - BOTTOM) - (int) Math.round(t * (H - TOP - BOTTOM));
        }
    }

    private static double niceCeil(double v) {
        if (v <= 0) {
            return 1;
        }
        double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 2.5, 5, 10}) {
            if (m * p >= v) {
                return m * p;
            }
        }
        return 10 * p;
    }

    private static String number(double v) {
        if (v >= 1000 && v == Math.rint(v)) {
            return String.format("%,.0f", v);
        }
        if (v == Math.rint(v)) {
            return String.format("%.0f", v);
        }
        return String.format("%.2g", v);
    }
}
