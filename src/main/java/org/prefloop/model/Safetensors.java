package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then raw little-endian data. We read and write it
 * ourselves because DJL's codec aborts the JVM on BF16 and keeps no metadata.
 */
public final class Safetensors {
    private Safetensors() {
    }

    /** How a tensor is stored on disk. */
    public enum StoredType {
        F32(4), F16(2), BF16(2);

        final int bytes;

        StoredType(int bytes) {
            this.bytes = bytes;
        }
    }

    /**
     * One tensor of a file, its bytes memory-mapped (not on the heap): page cache backs them,
     * so a checkpoint is only materialised once, in native memory, when it becomes an NDArray.
     */
    public record Tensor(StoredType dtype, long[] shape, ByteBuffer data) {
        public long size() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        public Shape djlShape() {
            return new Shape(shape);
        }

        /** The values widened to float32; bf16 is exact in f32, f16 likewise. */
        public float[] toFloatArray() {
            int n = Math.toIntExact(size());
            float[] out = new float[n];
            ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            switch (dtype) {
                case F32 -> b.asFloatBuffer().get(out);
                case F16 -> {
                    for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(b.getShort(2 * i));
                }
                case BF16 -> {
                    for (int i = 0; i < n; i++) out[i] = Float.intBitsToFloat((b.getShort(2 * i) & 0xffff) << 16);
                }
            }
            return out;
        }

        /** A float32 NDArray in {@code manager}, its BF16 scratch (if any) released at once. */
        public NDArray toNDArray(NDManager manager) {
            try (OffHeap memory = OffHeap.open()) {
                return toNDArray(manager, memory);
            }
        }

        /**
         * A float32 NDArray in {@code manager}, torch's own copy: it never aliases the read-only
         * mapping (in-place training updates would fault on it). BF16 is widened here, in Java,
         * because handing bf16 to DJL's PyTorch engine aborts the JVM, through a scratch from
         * {@code memory}, so the heap never holds the whole checkpoint.
         */
        public NDArray toNDArray(NDManager manager, OffHeap memory) {
            if (dtype == StoredType.F32) {
                // DJL wraps a direct buffer without copying; clone so the array never aliases the read-only mapping
                try (NDArray mapped = manager.create(data.duplicate().order(ByteOrder.LITTLE_ENDIAN), djlShape(), DataType.FLOAT32)) {
                    return mapped.duplicate();
                }
            }
            if (dtype == StoredType.F16) {
                try (NDArray half = manager.create(data.duplicate().order(ByteOrder.LITTLE_ENDIAN), djlShape(), DataType.FLOAT16)) {
                    return half.toType(DataType.FLOAT32, true);
                }
            }
            int n = Math.toIntExact(size());
            ByteBuffer wide = memory.allocate(Math.toIntExact(4L * n));
            ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) wide.putInt(4 * i, (b.getShort(2 * i) & 0xffff) << 16);
            try (NDArray wrapped = manager.create(wide, djlShape(), DataType.FLOAT32)) {
                return wrapped.duplicate();
            }
        }
    }

    /** Every tensor of {@code file} by name, memory-mapped until a garbage collection unmaps them (tests, small files). */
    public static Map<String, Tensor> read(Path file) {
        return read(file, null);
    }

    /**
     * Every tensor of {@code file} by name, mapped in {@code memory}: closing it unmaps them at
     * once, so the pages read do not stay in the resident set (see {@link OffHeap}).
     */
    public static Map<String, Tensor> read(Path file, OffHeap memory) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Map.Entry<String, Stored> e : index(file).entrySet()) out.put(e.getKey(), e.getValue().map(ch, memory));
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /** Where a tensor lies in its file, nothing mapped yet. */
    public record Stored(Path file, StoredType dtype, long[] shape, long offset, long length) {
        public Shape djlShape() {
            return new Shape(shape);
        }

        public long size() {
            return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        }

        /** Rows [from, to) of the first dimension, stored contiguously, as a tensor of their own. */
        public Stored rows(long from, long to) {
            long rowBytes = length / shape[0];
            long[] part = shape.clone();
            part[0] = to - from;
            return new Stored(file, dtype, part, offset + from * rowBytes, (to - from) * rowBytes);
        }

        /** The tensor's bytes, mapped in {@code memory}. */
        public Tensor map(OffHeap memory) {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                return map(ch, memory);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + file, e);
            }
        }

        private Tensor map(FileChannel ch, OffHeap memory) throws IOException {
            ByteBuffer data = memory != null ? memory.map(ch, offset, length) : ch.map(FileChannel.MapMode.READ_ONLY, offset, length);
            return new Tensor(dtype, shape, data);
        }
    }

    /** Every tensor of {@code file} by name and where it lies, the header checked; nothing is mapped. */
    public static Map<String, Stored> index(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, len, 0);
            long headerLen = len.getLong(0);
            long fileSize = ch.size();
            if (headerLen <= 0 || headerLen > 100_000_000 || 8 + headerLen > fileSize) {
                throw new IllegalArgumentException(file + " is not a safetensors file (header length " + headerLen + ")");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            readFully(ch, header, 8);
            ObjectNode json = HfJson.parseObject(new String(header.array(), StandardCharsets.UTF_8), "the header of " + file);
            long base = 8 + headerLen;
            Map<String, Stored> out = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : json.properties()) {
                if (e.getKey().equals("__metadata__")) continue;
                JsonNode t = e.getValue();
                String field = "tensor " + e.getKey() + " in " + file;
                if (!t.isObject()) throw new IllegalArgumentException(field + " is not an object");
                String dt = HfJson.text(t.get("dtype"), field + ": dtype");
                StoredType type;
                try {
                    type = StoredType.valueOf(dt);
                } catch (IllegalArgumentException ex) {
                    throw new IllegalArgumentException("tensor " + e.getKey() + " in " + file + " has unsupported dtype " + dt
                            + " (supported: F32, F16, BF16)");
                }
                long[] shape = longs(t.get("shape"), field + ": shape");
                long[] offsets = longs(t.get("data_offsets"), field + ": data_offsets");
                if (offsets.length < 2) throw new IllegalArgumentException(field + ": data_offsets has fewer than two numbers");
                long begin = offsets[0];
                long end = offsets[1];
                long expected = type.bytes * Arrays.stream(shape).reduce(1, (a, b) -> a * b);
                if (end - begin != expected || base + end > fileSize || begin < 0) {
                    throw new IllegalArgumentException("tensor " + e.getKey() + " in " + file + " has byte range ["
                            + begin + "," + end + ") that does not fit shape " + Arrays.toString(shape) + " " + dt);
                }
                out.put(e.getKey(), new Stored(file, type, shape, base + begin, end - begin));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /** A JSON array of integers (shapes and offsets are longs: files pass 2 GiB). */
    private static long[] longs(JsonNode array, String field) {
        if (array == null || !array.isArray()) throw new IllegalArgumentException(field + " is not an array");
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = HfJson.longValue(array.get(i), field + "[" + i + "]");
        return out;
    }

    /** The {@code __metadata__} strings of a file. */
    public static Map<String, String> metadata(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, len, 0);
            ByteBuffer header = ByteBuffer.allocate(Math.toIntExact(len.getLong(0)));
            readFully(ch, header, 8);
            ObjectNode json = HfJson.parseObject(new String(header.array(), StandardCharsets.UTF_8), "the header of " + file);
            Map<String, String> out = new TreeMap<>();
            if (json.has("__metadata__")) {
                json.get("__metadata__").properties().forEach(e -> out.put(e.getKey(), HfJson.text(e.getValue(), "__metadata__." + e.getKey())));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /** Writes the arrays as F32, keys sorted, with {@code {"format":"pt"}} plus {@code metadata}. */
    public static void write(Path file, Map<String, NDArray> tensors, Map<String, String> metadata) {
        write(file, tensors, metadata, StoredType.F32);
    }

    /** Writes the arrays in {@code type} (F32 or BF16, rounded to nearest even), keys sorted. */
    public static void write(Path file, Map<String, NDArray> tensors, Map<String, String> metadata, StoredType type) {
        if (type == StoredType.F16) throw new IllegalArgumentException("writing F16 is not supported; use F32 or BF16");
        TreeMap<String, NDArray> sorted = new TreeMap<>(tensors);
        ObjectNode header = HfJson.newObject();
        ObjectNode meta = header.putObject("__metadata__");
        meta.put("format", "pt");
        if (metadata != null) new TreeMap<>(metadata).forEach(meta::put);
        long offset = 0;
        for (Map.Entry<String, NDArray> e : sorted.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", type.name());
            ArrayNode shape = t.putArray("shape");
            for (long d : e.getValue().getShape().getShape()) shape.add(d);
            long bytes = e.getValue().size() * type.bytes;
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] h = HfJson.compact(header).getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8; // data starts 8-byte aligned, as the reference writer does
        byte[] hp = Arrays.copyOf(h, padded);
        Arrays.fill(hp, h.length, padded, (byte) ' ');
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
                writeFully(ch, len);
                writeFully(ch, ByteBuffer.wrap(hp));
                for (NDArray a : sorted.values()) {
                    float[] v = a.getDataType() == DataType.FLOAT32 ? a.toFloatArray() : a.toType(DataType.FLOAT32, false).toFloatArray();
                    ByteBuffer out = ByteBuffer.allocate(v.length * type.bytes).order(ByteOrder.LITTLE_ENDIAN);
                    if (type == StoredType.F32) {
                        out.asFloatBuffer().put(v);
                    } else {
                        for (int i = 0; i < v.length; i++) out.putShort(2 * i, toBf16(v[i]));
                    }
                    writeFully(ch, out);
                }
            }
            Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** float32 to bfloat16 with round-to-nearest-even; NaN stays NaN. */
    static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, pos + b.position());
            if (n < 0) throw new IOException("unexpected end of file");
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        b.rewind();
        while (b.hasRemaining()) ch.write(b);
    }
}
