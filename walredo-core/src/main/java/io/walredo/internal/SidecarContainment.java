// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import io.walredo.WalRedoConfig;
import io.walredo.nativeio.Containment;
import io.walredo.nativeio.ResourceLimit;
import io.walredo.nativeio.ResourceLimit.Resource;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/** The configuration's sidecar settings as walredo-native's {@link Containment}, which every spawn applies. */
final class SidecarContainment {

    private SidecarContainment() {}

    static Containment from(WalRedoConfig config) {
        List<ResourceLimit> limits = new ArrayList<>();
        limits.add(ResourceLimit.of(Resource.NOFILE, config.sidecarOpenFilesLimit()));
        if (!config.sidecarCoreDumps()) {
            limits.add(ResourceLimit.of(Resource.CORE, 0));
        }
        config.sidecarAddressSpaceLimit().ifPresent(bytes -> limits.add(ResourceLimit.of(Resource.AS, bytes)));
        // Soft at the limit (SIGXCPU, which kills), hard one second later (SIGKILL, for a sidecar that handles it).
        config.sidecarCpuTimeLimit()
                .ifPresent(d -> limits.add(new ResourceLimit(Resource.CPU, d.toSeconds(), d.toSeconds() + 1)));
        return new Containment(
                Optional.of(config.sidecarWorkingDirectory()),
                OptionalInt.of(WalRedoConfig.SIDECAR_UMASK),
                limits,
                OptionalInt.of(config.sidecarOomScoreAdj()),
                config.sidecarCgroup());
    }
}
