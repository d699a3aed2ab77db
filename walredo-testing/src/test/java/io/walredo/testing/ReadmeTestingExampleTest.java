// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.AttemptType;
import io.walredo.BufferTag;
import io.walredo.Lsn;
import io.walredo.RedoRequest;
import io.walredo.RelTag;
import io.walredo.SidecarCrashedException;
import io.walredo.TenantShardId;
import io.walredo.WalRecord;
import io.walredo.WalRedoException;
import io.walredo.WalRedoManager;
import io.walredo.testing.FakeRedoModel.Fault;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The testing example in README.md ("Testing your code against the fake"), run here so the README stays true; a
 * further test checks that README.md's Java block in that section is exactly the code between the markers below.
 */
@Timeout(60)
class ReadmeTestingExampleTest {

    // --- README testing example begins ---
    static final TenantShardId TENANT = TenantShardId.parse("3f1c0b7e9a4d4c2a8e5b6d7f8091a2b3");
    static final RedoRequest REQUEST = RedoRequest.builder(
                    16, new BufferTag(new RelTag(1663, 13010, 1259, RelTag.MAIN_FORKNUM), 0), Lsn.parse("0/16E2408"))
            .addRecord(WalRecord.of(Lsn.parse("0/16A9388"), false, new byte[] {1, 2, 3}))
            .build();

    @Test
    void pagesComeBackAsTheFakeComputesThem(@FakeRedo WalRedoManager redo) throws WalRedoException {
        assertArrayEquals(FakeRedoModel.expectedPage(REQUEST), redo.redo(TENANT, REQUEST, AttemptType.READ_PAGE));
    }

    @Test
    void aCrashedSidecarIsATypedError(
            @FakeRedo(faults = @FakeFault(value = Fault.CRASH_AFTER, arg = 1)) WalRedoManager redo) {
        SidecarCrashedException e = assertThrows(
                SidecarCrashedException.class, () -> redo.redo(TENANT, REQUEST, AttemptType.GC_COMPACTION));
        assertEquals(FakeRedoModel.CRASH_SIGNAL, e.signal().orElseThrow());
    }
    // --- README testing example ends ---

    @Test
    void theReadmeShowsExactlyThisCode() throws IOException {
        Path module = Path.of("").toAbsolutePath();
        List<String> test = Files.readAllLines(
                module.resolve("src/test/java/io/walredo/testing/ReadmeTestingExampleTest.java"),
                StandardCharsets.UTF_8);
        List<String> readme = Files.readAllLines(module.resolve("../README.md"), StandardCharsets.UTF_8);

        int begin = test.indexOf("    // --- README testing example begins ---");
        int end = test.indexOf("    // --- README testing example ends ---");
        assertTrue(begin >= 0 && end > begin, "markers in ReadmeTestingExampleTest");
        List<String> code = test.subList(begin + 1, end).stream()
                .map(l -> l.isEmpty() ? l : l.substring(4))
                .toList();
        int section = readme.indexOf("## Testing your code against the fake");
        assertTrue(section >= 0, "a section \"Testing your code against the fake\" in README.md");
        int fence = readme.subList(section, readme.size()).indexOf("```java") + section;
        assertTrue(fence > section, "a ```java block in that section");
        int close = readme.subList(fence + 1, readme.size()).indexOf("```") + fence + 1;
        assertEquals(
                String.join("\n", code),
                String.join("\n", readme.subList(fence + 1, close)),
                "README.md's testing example differs from ReadmeTestingExampleTest; change both together");
    }
}
