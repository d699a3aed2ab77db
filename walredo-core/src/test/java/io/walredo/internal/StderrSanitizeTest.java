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

    /**
     * Characters that some log viewers and terminals render as a line break (U+2028, U+2029, U+0085) or that
     * reorder the text around them (bidi embeddings, overrides and isolates) would let a sidecar forge or disguise a
     * log record. Failed before: only C0, DEL and C1 were escaped.
     */
    @Test
    void unicodeLineBreaksAndBidiControlsAreEscaped() {
        String forged = "LOG:  ok\u2028ERROR:  forged\u2029\u202edesrever\u2066x\u2069\u200ey\u061cz";
        byte[] b = forged.getBytes(StandardCharsets.UTF_8);
        assertEquals(
                "LOG:  ok\\u2028ERROR:  forged\\u2029\\u202edesrever\\u2066x\\u2069\\u200ey\\u061cz",
                StderrDrainer.sanitize(b, b.length));
    }
}
