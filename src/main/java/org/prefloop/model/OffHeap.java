package org.prefloop.model;

import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * File mappings and native scratch buffers that {@link #close()} releases at once. A plain
 * {@link FileChannel#map} mapping or {@link ByteBuffer#allocateDirect} buffer lives until a
 * garbage collection, and the JVM's heap stays so small while a model trains or serves that one
 * may never come: a checkpoint's mapped pages (resident once read) and the loader's scratch then
 * stay in the resident set for the life of the process (538 MB and 113 MB for the SmolLM2-135M
 * shape). On Java 22 and later the buffers come from a shared {@code java.lang.foreign.Arena}
 * (reached reflectively: the build targets Java 21, where that API is a preview); on Java 21 from
 * the plain calls, released through the JDK's own cleaner ({@code sun.misc.Unsafe.invokeCleaner},
 * which Java 24 and later warn about, hence the arena there). Not thread-safe.
 */
public final class OffHeap implements AutoCloseable {
    private static final Foreign FOREIGN = Foreign.find();
    private static final MethodHandle INVOKE_CLEANER = FOREIGN == null ? invokeCleaner() : null;

    private final Object arena;
    private final List<ByteBuffer> buffers = new ArrayList<>();

    private OffHeap(Object arena) {
        this.arena = arena;
    }

    public static OffHeap open() {
        try {
            return new OffHeap(FOREIGN == null ? null : FOREIGN.ofShared.invoke());
        } catch (Throwable e) {
            throw new IllegalStateException("cannot open an arena", e);
        }
    }

    /** {@code size} bytes of {@code channel} from {@code offset}, read-only. */
    public ByteBuffer map(FileChannel channel, long offset, long size) throws IOException {
        if (FOREIGN == null) return keep(channel.map(FileChannel.MapMode.READ_ONLY, offset, size));
        try {
            Object segment = FOREIGN.map.invoke(channel, FileChannel.MapMode.READ_ONLY, offset, size, arena);
            return (ByteBuffer) FOREIGN.asByteBuffer.invoke(segment);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IOException(e);
        }
    }

    /** A native buffer of {@code bytes} in native byte order, contents unspecified. */
    public ByteBuffer allocate(int bytes) {
        ByteBuffer b;
        if (FOREIGN == null) {
            b = keep(ByteBuffer.allocateDirect(bytes));
        } else {
            try {
                b = (ByteBuffer) FOREIGN.asByteBuffer.invoke(FOREIGN.allocate.invoke(arena, (long) bytes, 64L));
            } catch (Throwable e) {
                throw new IllegalStateException("cannot allocate " + bytes + " bytes", e);
            }
        }
        return b.order(ByteOrder.nativeOrder());
    }

    /** Unmaps and frees everything this handed out; none of it may be read afterwards. */
    @Override
    public void close() {
        try {
            if (arena != null) FOREIGN.close.invoke(arena);
            for (ByteBuffer b : buffers) {
                if (INVOKE_CLEANER != null) INVOKE_CLEANER.invokeExact(b);
            }
        } catch (Throwable e) {
            // where the JDK offers no way, the collector releases them, as it would have
        } finally {
            buffers.clear();
        }
    }

    private ByteBuffer keep(ByteBuffer b) {
        buffers.add(b);
        return b;
    }

    /** The final foreign-memory API of Java 22 and later, or null. */
    private record Foreign(MethodHandle ofShared, MethodHandle map, MethodHandle allocate, MethodHandle asByteBuffer, MethodHandle close) {
        static Foreign find() {
            if (Runtime.version().feature() < 22) return null;
            try {
                var lookup = MethodHandles.publicLookup();
                Class<?> arena = Class.forName("java.lang.foreign.Arena");
                Class<?> segment = Class.forName("java.lang.foreign.MemorySegment");
                return new Foreign(
                        lookup.findStatic(arena, "ofShared", MethodType.methodType(arena)),
                        lookup.findVirtual(FileChannel.class, "map", MethodType.methodType(segment, FileChannel.MapMode.class, long.class, long.class, arena)),
                        lookup.findVirtual(arena, "allocate", MethodType.methodType(segment, long.class, long.class)),
                        lookup.findVirtual(segment, "asByteBuffer", MethodType.methodType(ByteBuffer.class)),
                        lookup.findVirtual(arena, "close", MethodType.methodType(void.class)));
            } catch (ReflectiveOperationException | RuntimeException e) {
                return null;
            }
        }
    }

    private static MethodHandle invokeCleaner() {
        try {
            Class<?> unsafe = Class.forName("sun.misc.Unsafe");
            Field field = unsafe.getDeclaredField("theUnsafe");
            field.setAccessible(true);
            return MethodHandles.lookup()
                    .findVirtual(unsafe, "invokeCleaner", MethodType.methodType(void.class, ByteBuffer.class))
                    .bindTo(field.get(null));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}
