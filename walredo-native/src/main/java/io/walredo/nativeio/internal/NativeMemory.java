// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio.internal;

import com.kenai.jffi.MemoryIO;
import java.nio.charset.StandardCharsets;

/**
 * One zeroed block of native memory, carved up by a bump allocator and freed in {@link #close()}. Used for the
 * short-lived structures of one native call (posix_spawn attributes, argv, an epoll_event): the caller opens it in a
 * try-with-resources, so the memory is freed on every path. Not thread-safe: used by one thread at a time (a
 * one-shot registration's epoll_event is filled once, then only read by the kernel). Internal API.
 */
public final class NativeMemory implements AutoCloseable {

    private static final int ALIGNMENT = 16;

    private final MemoryIO memory;
    private final long base;
    private final long size;
    private long used;
    private boolean freed;

    /**
     * Allocates {@code size} zeroed bytes.
     *
     * @throws OutOfMemoryError if malloc fails
     */
    public NativeMemory(long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("size must be positive: " + size);
        }
        this.memory = NativeLibrary.get().memory();
        this.size = size;
        this.base = memory.allocateMemory(size, true);
        if (base == 0) {
            throw new OutOfMemoryError("malloc(" + size + ") failed");
        }
    }

    /** Returns the bytes {@link #allocate} will use for {@code n} bytes, alignment included. */
    public static long footprint(long n) {
        return (n + ALIGNMENT - 1) & -ALIGNMENT;
    }

    /** Returns the address of {@code n} fresh zeroed bytes, 16-byte aligned. */
    public long allocate(long n) {
        long rounded = footprint(n);
        if (freed || used + rounded > size) {
            throw new IllegalStateException(
                    "native block exhausted or freed: " + used + " + " + rounded + " > " + size);
        }
        long address = base + used;
        used += rounded;
        return address;
    }

    /** Copies {@code bytes} plus a terminating NUL into fresh memory; returns its address. */
    public long putCString(byte[] bytes) {
        long address = allocate(bytes.length + 1L);
        memory.putByteArray(address, bytes, 0, bytes.length);
        return address;
    }

    /** Returns the UTF-8 bytes of {@code s} (for sizing and then {@link #putCString(byte[])}). */
    public static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Writes a pointer-sized value. */
    public void putAddress(long address, long value) {
        memory.putAddress(address, value);
    }

    /** Writes a 64-bit value. */
    public void putLong(long address, long value) {
        memory.putLong(address, value);
    }

    /** Writes a 32-bit value. */
    public void putInt(long address, int value) {
        memory.putInt(address, value);
    }

    /** Reads a 32-bit value. */
    public int getInt(long address) {
        return memory.getInt(address);
    }

    /** Reads a 64-bit value. */
    public long getLong(long address) {
        return memory.getLong(address);
    }

    /** Frees the block; idempotent. */
    @Override
    public void close() {
        if (!freed) {
            freed = true;
            memory.freeMemory(base);
        }
    }
}
