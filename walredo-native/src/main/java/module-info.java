// SPDX-License-Identifier: Apache-2.0
/**
 * The OS boundary of walredo-supervisor: posix_spawn, pipe I/O parked on an epoll reactor, pidfd reaping. Its API,
 * {@code io.walredo.nativeio}, is exported to walredo-core only; {@code io.walredo.nativeio.internal} (the jnr-ffi
 * binding of libc, the reactor, the spawner) is exported to nobody at compile time. At run time {@code NativeLibrary}
 * exports that package to the one class loader jnr-ffi defines the libc binding's generated class in, and to nothing
 * else.
 */
module io.walredo.nativeio {
    requires org.jnrproject.ffi;
    requires org.jnrproject.jffi;
    requires org.jnrproject.constants;
    requires org.slf4j;
    // jnr-ffi generates the libc binding with ASM, but as an automatic module it declares no requires: without these
    // two lines ASM is not resolved on the module path and the load fails (NoClassDefFoundError ClassVisitor).
    requires org.objectweb.asm;
    requires org.objectweb.asm.util;

    exports io.walredo.nativeio to
            io.walredo;
}
