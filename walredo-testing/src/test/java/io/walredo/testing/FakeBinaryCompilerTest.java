// SPDX-License-Identifier: Apache-2.0
package io.walredo.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.AttemptType;
import io.walredo.WalRedoConfig;
import io.walredo.WalRedoManager;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The compile-once path an embedder takes when no fake binary is given (this build always gives one). */
@Timeout(180)
class FakeBinaryCompilerTest {

    @Test
    void compilesOnceIntoTheCacheAndTheResultSpeaksTheProtocol(@TempDir Path cache) throws Exception {
        Path binary = FakeBinaryCompiler.compileInto(cache);
        assertTrue(Files.isExecutable(binary), binary.toString());
        assertTrue(binary.startsWith(cache.toAbsolutePath()), binary.toString());
        FileTime built = Files.getLastModifiedTime(binary);

        assertEquals(binary, FakeBinaryCompiler.compileInto(cache), "the second call finds the entry");
        assertEquals(built, Files.getLastModifiedTime(binary), "and does not compile again");
        try (var entry = Files.list(binary.getParent())) {
            assertEquals(
                    List.of(FakeBinaryCompiler.BINARY_NAME),
                    entry.map(p -> p.getFileName().toString()).toList(),
                    "no temporary file is left behind");
        }

        WalRedoConfig config = FakeRedoExtension.config(FakeRedoExtension.PG_VERSION, List.of())
                .redoBinary(FakeRedoExtension.PG_VERSION, binary)
                .build();
        try (WalRedoManager m = WalRedoManager.create(config)) {
            assertArrayEquals(
                    FakeRedoModel.expectedPage(ReadmeTestingExampleTest.REQUEST),
                    m.redo(ReadmeTestingExampleTest.TENANT, ReadmeTestingExampleTest.REQUEST, AttemptType.READ_PAGE));
        }
    }

    @Test
    void theJarCarriesTheSourceTheBuildCompiles() throws Exception {
        Path built = Path.of("").toAbsolutePath().resolve("../walredo-native/src/main/c/fake_walredo.c");
        assertArrayEquals(Files.readAllBytes(built), FakeBinaryCompiler.source());
    }
}
