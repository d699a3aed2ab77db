// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import com.kenai.jffi.MemoryIO;
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

  private static final NativeLibrary INSTANCE = new NativeLibrary();

  private final LibC libc;
  private final Runtime runtime;
  private final MemoryIO memory;

  private NativeLibrary() {
    // IgnoreError is the default; the functions that set errno opt in with @SaveError, so the posix_spawn family
    // (which returns its error number) and getpid skip the errno bookkeeping.
    libc = LibraryLoader.create(LibC.class).option(LibraryOption.IgnoreError, Boolean.TRUE).load("c");
    runtime = Runtime.getRuntime(libc);
    memory = MemoryIO.getInstance();
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
