// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import com.kenai.jffi.MemoryIO;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.nio.Buffer;
import jnr.ffi.LastError;
import jnr.ffi.LibraryLoader;
import jnr.ffi.LibraryOption;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * The process-wide libc binding, loaded once on first use (jnr-ffi generates the stubs, ~300 ms), plus raw memory
 * access. Thread-safe: the binding is immutable after class initialisation. Internal API.
 */
public final class NativeLibrary {

    /** jnr-ffi's package of the ASM library loader, see {@link #loadInNamedModule}. */
    private static final String JNR_PROVIDER = "jnr.ffi.provider.jffi";

    private static final NativeLibrary INSTANCE = new NativeLibrary();

    private final LibC libc;
    private final Runtime runtime;
    private final MemoryIO memory;

    private NativeLibrary() {
        // IgnoreError is the default; the functions that set errno opt in with @SaveError, so the posix_spawn family
        // (which returns its error number) and getpid skip the errno bookkeeping.
        LibraryLoader<LibC> loader = LibraryLoader.create(LibC.class).option(LibraryOption.IgnoreError, Boolean.TRUE);
        libc = NativeLibrary.class.getModule().isNamed() ? loadInNamedModule(loader) : loader.load("c");
        runtime = Runtime.getRuntime(libc);
        memory = MemoryIO.getInstance();
    }

    /**
     * Loads the binding when this class is in the named module {@code io.walredo.nativeio} (the module path). jnr-ffi
     * defines the class that implements {@link LibC} in the unnamed module of a class loader it creates for the load;
     * the JVM lets that class implement LibC only if this module exports this package to that unnamed module, else
     * defineClass throws IllegalAccessError ("superinterface check failed"). module-info cannot name an unnamed module,
     * and exporting this package to everyone would open the reactor and spawner to any module. So the export goes to
     * that one loader: jnr-ffi 2.3.7's {@code AsmLibraryLoader} uses the loader in its per-thread slot (the private
     * static {@code ThreadLocal classLoader}) if one is set; this creates the loader as jnr-ffi would (an {@code
     * AsmClassLoader} whose parent is LibC's loader), exports this package to its unnamed module, and sets the slot
     * for the load. The generated class, its call path and its speed are those of the class path. jnr-ffi is an
     * automatic module, open to reflection. A jnr-ffi without that slot fails here with the escape hatch in the
     * message; the module-path test in walredo-core catches that on upgrade. Runs once, in class initialisation.
     */
    @SuppressWarnings("unchecked")
    private static LibC loadInNamedModule(LibraryLoader<LibC> loader) {
        ThreadLocal<Object> slot;
        ClassLoader generated;
        try {
            Field field = Class.forName(JNR_PROVIDER + ".AsmLibraryLoader").getDeclaredField("classLoader");
            field.setAccessible(true);
            slot = (ThreadLocal<Object>) field.get(null);
            Constructor<?> ctor =
                    Class.forName(JNR_PROVIDER + ".AsmClassLoader").getDeclaredConstructor(ClassLoader.class);
            ctor.setAccessible(true);
            generated = (ClassLoader) ctor.newInstance(LibC.class.getClassLoader());
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException(
                    "walredo-native cannot bind libc on the module path with this jnr-ffi (it expects jnr-ffi 2.3's"
                            + " AsmLibraryLoader.classLoader): put walredo-native on the class path, or run with --add-exports "
                            + "io.walredo.nativeio/" + LibC.class.getPackageName() + "=ALL-UNNAMED",
                    e);
        }
        NativeLibrary.class.getModule().addExports(LibC.class.getPackageName(), generated.getUnnamedModule());
        slot.set(generated);
        try {
            return loader.load("c");
        } finally {
            slot.remove();
        }
    }

    /**
     * Returns the shared instance, loading libc on the first call.
     *
     * @throws UnsatisfiedLinkError or another {@link LinkageError} if libc cannot be bound
     */
    public static NativeLibrary get() {
        return INSTANCE;
    }

    /** Returns the libc binding. */
    public LibC libc() {
        return libc;
    }

    /**
     * Returns errno as saved by the last {@code @SaveError} call on this thread. Call it right after the failing call
     * and before anything that may park, see {@link LibC}.
     */
    public int errno() {
        return LastError.getLastError(runtime);
    }

    /** Returns raw native memory access (jffi). */
    public MemoryIO memory() {
        return memory;
    }

    /** Wraps a raw address for the few calls declared with {@link Pointer} parameters; 0 gives null. */
    public Pointer pointer(long address) {
        return address == 0 ? null : Pointer.wrap(runtime, address);
    }

    /** Returns the base address of a direct buffer (not adjusted for its position). */
    public long address(Buffer direct) {
        return memory.getDirectBufferAddress(direct);
    }
}
