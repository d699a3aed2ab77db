package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.walredo.testing.FakeRedoModel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The embedding example in README.md, compiled and run here so the README stays true. */
class ReadmeExampleTest {

    static byte[] readmeExample(Path postgres) throws WalRedoException {
        // --- README example begins ---
        WalRedoConfig config = WalRedoConfig.builder()
                .redoBinary(16, postgres)                 // a Neon-built postgres with --wal-redo
                .idleTimeout(java.time.Duration.ofSeconds(200))
                .build();
        try (WalRedoManager redo = WalRedoManager.create(config)) {
            TenantShardId tenant = TenantShardId.parse("3f1c0b7e9a4d4c2a8e5b6d7f8091a2b3");
            BufferTag page = new BufferTag(new RelTag(1663, 13010, 1259, RelTag.MAIN_FORKNUM), 0);
            RedoRequest request = RedoRequest.builder(16, page, Lsn.parse("0/16E2408"))
                    .addRecord(WalRecord.of(Lsn.parse("0/16A9388"), false, new byte[] {1, 2, 3}))
                    .build();
            return redo.redo(tenant, request, AttemptType.READ_PAGE);   // 8192 bytes
        }
        // --- README example ends ---
    }

    @Test
    void theReadmeExampleRuns() throws Exception {
        assertEquals(8192, readmeExample(FakeRedoModel.binary()).length);
    }
}
