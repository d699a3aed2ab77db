// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Untrusted stderr cannot forge log records: control characters are escaped, tabs kept. */
class StderrSanitizeTest {
    @Test
    void controlCharactersAreEscaped() {
        byte[] b = "a\rb\u001b[31mc\td\u0000".getBytes(StandardCharsets.UTF_8);
        assertEquals("a\\x0db\\x1b[31mc\td\\x00", StderrDrainer.sanitize(b, b.length));
    }

    @Test
    void plainTextIsUnchangedAndMalformedUtf8IsReplaced() {
        byte[] ok = "LOG:  registered custom resource manager".getBytes(StandardCharsets.UTF_8);
        assertEquals("LOG:  registered custom resource manager", StderrDrainer.sanitize(ok, ok.length));
        byte[] bad = {'x', (byte) 0xff, 'y'};
        assertEquals("x\uFFFDy", StderrDrainer.sanitize(bad, bad.length));
    }
}
