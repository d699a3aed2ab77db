// SPDX-License-Identifier: Apache-2.0
/**
 * walredo-core, the per-tenant WAL redo manager a pageserver embeds. Exports its public API, {@code io.walredo};
 * {@code io.walredo.internal} stays encapsulated, and walredo-native is an implementation detail (no native type
 * appears in this module's API, so it is not required transitively).
 */
module io.walredo {
    requires io.walredo.nativeio;
    requires org.slf4j;
    requires jdk.jfr;

    exports io.walredo;
}
