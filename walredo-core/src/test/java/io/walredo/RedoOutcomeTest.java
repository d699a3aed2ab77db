// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Every way a call can end has its outcome; a result's derived values. */
class RedoOutcomeTest {

    private static final TenantShardId T = TenantShardId.of(1, 2);

    @Test
    void everyErrorHasItsOutcome() {
        assertEquals(RedoOutcome.OK, RedoOutcome.of(null));
        assertEquals(RedoOutcome.TIMEOUT, RedoOutcome.of(new RedoTimeoutException(T, 1, "m", null)));
        assertEquals(
                RedoOutcome.CRASHED, RedoOutcome.of(new SidecarCrashedException(T, 1, null, List.of(), "m", null)));
        assertEquals(RedoOutcome.PROTOCOL, RedoOutcome.of(new ProtocolException(T, 1, "m", null)));
        assertEquals(RedoOutcome.CANCELLED, RedoOutcome.of(new RedoCancelledException(T, 1, "m", null)));
        assertEquals(RedoOutcome.CAPACITY, RedoOutcome.of(new CapacityExhaustedException(T, "m", null)));
        assertEquals(
                RedoOutcome.OVERLOADED,
                RedoOutcome.of(new TenantOverloadedException(
                        T, 1, TenantOverloadedException.Reason.QUEUE_BOUND, 4, Duration.ZERO, "m")));
        assertEquals(RedoOutcome.SPAWN_FAILED, RedoOutcome.of(new SpawnFailedException(T, "m", null)));
        assertEquals(RedoOutcome.CLOSED, RedoOutcome.of(new ManagerClosedException("m")));
        assertEquals(RedoOutcome.ERROR, RedoOutcome.of(new WalRedoException(T, 1, "m", null)));
        assertEquals(RedoOutcome.ERROR, RedoOutcome.of(new OutOfMemoryError()));
    }

    @Test
    void aResultKnowsItsRetriesAndRejectsNonsense() {
        RedoResult r = new RedoResult(
                T, 16, AttemptType.READ_PAGE, RedoOutcome.OK, Optional.empty(), Duration.ZERO, 2, 100, 3);
        assertEquals(2, r.retries());
        assertEquals(true, r.succeeded());
        assertEquals(
                0,
                new RedoResult(
                                T,
                                16,
                                AttemptType.READ_PAGE,
                                RedoOutcome.CAPACITY,
                                Optional.of(CapacityExhaustedException.class),
                                Duration.ZERO,
                                2,
                                100,
                                0)
                        .retries());
        assertThrows(
                IllegalArgumentException.class,
                () -> new RedoResult(
                        T, 16, AttemptType.READ_PAGE, RedoOutcome.OK, Optional.empty(), Duration.ZERO, -1, 100, 1));
        assertThrows(
                NullPointerException.class,
                () -> new RedoResult(T, 16, AttemptType.READ_PAGE, null, Optional.empty(), Duration.ZERO, 1, 100, 1));
    }
}
