// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.testing.FakeRedoModel;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The embedding example in README.md, compiled and run here so the README stays true; a second test checks
 * that README.md's first Java block is exactly the code between the markers below.
 */
class ReadmeExampleTest {

    static byte[] readmeExample(Path postgres) throws WalRedoException {
        // --- README example begins ---
        WalRedoConfig config = WalRedoConfig.builder()
                .redoBinary(16, postgres) // a Neon-built postgres with --wal-redo
                .idleTimeout(java.time.Duration.ofSeconds(180))
                .build();
        try (WalRedoManager redo = WalRedoManager.create(config)) {
            TenantShardId tenant = TenantShardId.parse("3f1c0b7e9a4d4c2a8e5b6d7f8091a2b3");
            BufferTag page = new BufferTag(new RelTag(1663, 13010, 1259, RelTag.MAIN_FORKNUM), 0);
            RedoRequest request = RedoRequest.builder(16, page, Lsn.parse("0/16E2408"))
                    .addRecord(WalRecord.of(Lsn.parse("0/16A9388"), false, new byte[] {1, 2, 3}))
                    .build();
            return redo.redo(tenant, request, AttemptType.READ_PAGE); // 8192 bytes
        }
        // --- README example ends ---
    }

    @Test
    void theReadmeExampleRuns() throws Exception {
        assertEquals(8192, readmeExample(FakeRedoModel.binary()).length);
    }

    @Test
    void theReadmeShowsExactlyThisCode() throws IOException {
        Path module = Path.of("").toAbsolutePath();
        List<String> test = Files.readAllLines(
                module.resolve("src/test/java/io/walredo/ReadmeExampleTest.java"), StandardCharsets.UTF_8);
        List<String> readme = Files.readAllLines(module.resolve("../README.md"), StandardCharsets.UTF_8);

        int begin = test.indexOf("        // --- README example begins ---");
        int end = test.indexOf("        // --- README example ends ---");
        assertTrue(begin >= 0 && end > begin, "markers in ReadmeExampleTest");
        List<String> code = test.subList(begin + 1, end).stream()
                .map(l -> l.isEmpty() ? l : l.substring(8))
                .toList();
        int fence = readme.indexOf("```java");
        assertTrue(fence >= 0, "a ```java block in README.md");
        int close = readme.subList(fence + 1, readme.size()).indexOf("```") + fence + 1;
        assertEquals(
                String.join("\n", code),
                String.join("\n", readme.subList(fence + 1, close)),
                "README.md's first Java block differs from ReadmeExampleTest; change both together");
    }
}
