// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.walredo.TenantShardId;
import io.walredo.testing.FakeRedoModel;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The one request mix of the demo and the soak: its shape, its expected pages, its tenants. */
class RequestMixTest {

    @Test
    void neonsShortRequestComesFirstAt1132BytesOnTheWire() {
        RequestMix.Work neon = RequestMix.fake().get(0);

        assertEquals(1132, neon.request().encodedSize());
        assertEquals(2, neon.request().recordCount());
        assertEquals(Workload.SHORT.request().records(), neon.request().records());
    }

    @Test
    void isThreeShortToOneMediumOfAbout26KiB() {
        List<RequestMix.Work> work = RequestMix.fake();
        long medium =
                work.stream().filter(w -> w.kind() == RequestMix.Kind.MEDIUM).count();

        assertEquals(48, work.size());
        assertEquals(work.size(), 4 * medium);
        for (RequestMix.Work w : work) {
            if (w.kind() == RequestMix.Kind.MEDIUM) {
                assertEquals(227, w.request().recordCount());
                assertTrue(w.request().encodedSize() > 24 << 10 && w.request().encodedSize() < 28 << 10);
            }
        }
        assertEquals(
                "short = Neon's benchmark request (1132 B, 2 records) and 35 of its shape (6 on a base image);"
                        + " medium ~26 KiB (227 records); 3 short to 1 medium",
                RequestMix.describe(work));
    }

    @Test
    void everyPageIsTheModelsAndTheMixIsTheSameOnEveryCall() {
        List<RequestMix.Work> work = RequestMix.fake();
        List<RequestMix.Work> again = RequestMix.fake();

        for (int i = 0; i < work.size(); i++) {
            RequestMix.Work w = work.get(i);
            assertArrayEquals(FakeRedoModel.expectedPage(w.request()), w.expected());
            assertTrue(w.check().test(w.expected().clone()));
            assertTrue(!w.check().test(FakeRedoModel.pingAnswer()), "a wrong page fails the check");
            assertEquals(RequestMix.PG_VERSION, w.request().pgVersion());
            assertEquals(w.request().records(), again.get(i).request().records(), "seeded");
        }
    }

    @Test
    void aRealBinaryGetsNeonsShortRequestUnchecked() {
        List<RequestMix.Work> work = RequestMix.neonShortOnly();

        assertEquals(1, work.size());
        assertNull(work.get(0).expected());
        assertTrue(work.get(0).check().test(new byte[8192]));
        assertEquals("short = Neon's benchmark request (1132 B, 2 records) only", RequestMix.describe(work));
    }

    @Test
    void tenantsAreDistinctAndTheSameOnEveryRun() {
        TenantShardId[] tenants = RequestMix.tenants(200);

        assertEquals(200, new HashSet<>(Arrays.asList(tenants)).size());
        assertArrayEquals(tenants, RequestMix.tenants(200));
        assertArrayEquals(Arrays.copyOf(tenants, 5), RequestMix.tenants(5), "a prefix: fewer tenants, same ids");
    }
}
