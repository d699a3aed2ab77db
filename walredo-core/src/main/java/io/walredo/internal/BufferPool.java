// SPDX-License-Identifier: Apache-2.0
package io.walredo.internal;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Direct buffers for encoded requests, reused so the hot path allocates no native memory. Size classes
 * are powers of two from 4 KiB to 1 MiB, each keeping at most {@code perClass} idle buffers (so the pool
 * holds at most about 2 MiB x perClass); larger requests get a one-off heap buffer.
 * Thread-safe and lock-free.
 */
final class BufferPool {
    private static final int MIN_SHIFT = 12;
    private static final int MAX_SHIFT = 20;

    private final int perClass;
    private final List<ConcurrentLinkedQueue<ByteBuffer>> free = new ArrayList<>();
    private final AtomicInteger[] idle;

    BufferPool(int perClass) {
        this.perClass = perClass;
        int classes = MAX_SHIFT - MIN_SHIFT + 1;
        idle = new AtomicInteger[classes];
        for (int i = 0; i < classes; i++) {
            free.add(new ConcurrentLinkedQueue<>());
            idle[i] = new AtomicInteger();
        }
    }

    /** A cleared buffer with at least {@code size} bytes of room, limit set to {@code size}. */
    ByteBuffer acquire(int size) {
        int cls = sizeClass(size);
        if (cls < 0) {
            return ByteBuffer.allocate(size);
        }
        ByteBuffer b = free.get(cls).poll();
        if (b != null) {
            idle[cls].decrementAndGet();
        } else {
            b = ByteBuffer.allocateDirect(1 << (cls + MIN_SHIFT));
        }
        b.clear().limit(size);
        return b;
    }

    /** Returns a buffer from {@link #acquire}; the caller must not use it afterwards. */
    void release(ByteBuffer b) {
        if (!b.isDirect()) {
            return;
        }
        int cls = Integer.numberOfTrailingZeros(b.capacity()) - MIN_SHIFT;
        if (cls < 0 || cls >= free.size() || Integer.bitCount(b.capacity()) != 1) {
            return;
        }
        if (idle[cls].incrementAndGet() <= perClass) {
            free.get(cls).offer(b);
        } else {
            idle[cls].decrementAndGet();
        }
    }

    private static int sizeClass(int size) {
        if (size > 1 << MAX_SHIFT) {
            return -1;
        }
        int shift = Math.max(MIN_SHIFT, 32 - Integer.numberOfLeadingZeros(Math.max(1, size - 1)));
        return shift - MIN_SHIFT;
    }
}
