// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The report's charts render headless into PNGs of the promised size, log axes and markers included. */
class ChartTest {

    @Test
    void aLogLogChartWithErrorBarsAndAMarkerRenders(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("c.png");
        new Chart(
                        "t",
                        "callers",
                        "µs",
                        true,
                        true,
                        List.of(
                                new Chart.Series(
                                        "lib",
                                        List.of(
                                                new double[] {1, 40, 38, 42},
                                                new double[] {16, 8, 7.5, 8.5},
                                                new double[] {128, 5, 4.5, 5.5}),
                                        false,
                                        0),
                                new Chart.Series(
                                        "C",
                                        List.of(new double[] {1, 30}, new double[] {16, 4}, new double[] {128, 4.5}),
                                        true,
                                        0)),
                        List.of(new Chart.Marker("target", 60)))
                .write(png);
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(Chart.W, img.getWidth());
        assertEquals(Chart.H, img.getHeight());
    }

    @Test
    void theTargetsChartColoursMetAndMissed(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("targets.png");
        TargetsChart.write(
                png,
                List.of(
                        new TargetsChart.Bar("a", "met by half", 0.5),
                        new TargetsChart.Bar("b", "missed twice over", 2.0),
                        new TargetsChart.Bar("c", "zero", 0.0)));
        BufferedImage img = ImageIO.read(png.toFile());
        boolean green = false;
        boolean red = false;
        for (int x = 0; x < img.getWidth(); x++) {
            for (int y = 0; y < img.getHeight(); y++) {
                int rgb = img.getRGB(x, y) & 0xffffff;
                green |= rgb == 0x2ca02c;
                red |= rgb == 0xd62728;
            }
        }
        assertTrue(green, "a met target is drawn green");
        assertTrue(red, "a missed target is drawn red");
    }

    @Test
    void aNumericTargetDecidesMetAndItsMargin() {
        Section s = new Section("x", "y");
        s.target("at most 50", "40", 40, 50, true);
        s.target("at least 0.95", "0.5", 0.5, 0.95, false);
        assertTrue(s.targets.get(0).met());
        assertEquals(0.8, s.targets.get(0).margin(), 1e-9);
        assertTrue(!s.targets.get(1).met());
        assertEquals(1.9, s.targets.get(1).margin(), 1e-9);
    }
}
