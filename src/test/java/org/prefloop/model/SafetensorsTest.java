package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
    @TempDir
    Path tmp;

    /** A file laid out by hand as the format specifies, independent of our writer. */
    private Path handWritten(String header, byte[] data) throws Exception {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Path f = tmp.resolve("hand.safetensors");
        Files.write(f, b.array());
        return f;
    }

    @Test
    void readsF16AndBf16AsTheirFloatValues() throws Exception {
        ByteBuffer d = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        d.putShort((short) 0x3C00).putShort((short) 0xC000).putShort((short) 0x3555); // f16: 1, -2, 0.333251953125
        d.putShort((short) 0x3F80).putShort((short) 0xC040).putShort((short) 0x3EAB); // bf16: 1, -3, 0.333984375
        Path f = handWritten("{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,3],\"data_offsets\":[6,12]}}", d.array());
        Map<String, Safetensors.Tensor> t = Safetensors.read(f);
        assertArrayEquals(new float[] {1f, -2f, 0.333251953125f}, t.get("h").toFloatArray());
        assertArrayEquals(new float[] {1f, -3f, 0.333984375f}, t.get("b").toFloatArray());
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray bf16 = t.get("b").toNDArray(m); // would abort the JVM if bf16 reached the engine
            assertEquals(new Shape(1, 3), bf16.getShape());
            assertArrayEquals(new float[] {1f, -3f, 0.333984375f}, bf16.toFloatArray());
            NDArray f16 = t.get("h").toNDArray(m);
            f16.addi(1f); // an owned copy, not the read-only mapping
            assertArrayEquals(new float[] {2f, -1f, 1.333251953125f}, f16.toFloatArray());
        }
    }

    @Test
    void writesSortedKeysFormatMetadataAndAlignedData() throws Exception {
        Path f = tmp.resolve("w.safetensors");
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            tensors.put("z.weight", m.create(new float[] {1, 2, 3, 4}, new Shape(2, 2)));
            tensors.put("a.weight", m.create(new float[] {5}, new Shape(1)));
            Safetensors.write(f, tensors, Map.of("base_model", "tiny"));
        }
        byte[] bytes = Files.readAllBytes(f);
        long headerLen = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "data starts 8-byte aligned");
        JsonNode header = new ObjectMapper().readTree(new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8));
        assertEquals(java.util.List.of("__metadata__", "a.weight", "z.weight"), header.properties().stream().map(Map.Entry::getKey).toList());
        assertEquals(Map.of("format", "pt", "base_model", "tiny"), Safetensors.metadata(f));
        ByteBuffer data = ByteBuffer.wrap(bytes, 8 + (int) headerLen, 20).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(5f, data.getFloat(8 + (int) headerLen), "a.weight comes first");
        assertArrayEquals(new float[] {1, 2, 3, 4}, Safetensors.read(f).get("z.weight").toFloatArray());
    }

    @Test
    void bf16WritingRoundsToNearestEven() {
        float ulp = (float) Math.pow(2, -7); // bf16 spacing just above 1
        assertEquals((short) 0x3F80, Safetensors.toBf16(1f));
        assertEquals((short) 0x3F80, Safetensors.toBf16(1f + ulp / 2), "tie goes to the even mantissa (down)");
        assertEquals((short) 0x3F82, Safetensors.toBf16(1f + ulp + ulp / 2), "tie goes to the even mantissa (up)");
        assertEquals((short) 0x3F81, Safetensors.toBf16(1f + ulp / 2 + ulp / 8), "above the tie rounds up");
        assertTrue(Float.isNaN(Float.intBitsToFloat(Safetensors.toBf16(Float.NaN) << 16)));
    }

    @Test
    void corruptFilesAreRefusedNamingTheTensor() throws Exception {
        Path shortData = handWritten("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]);
        var e = assertThrows(IllegalArgumentException.class, () -> Safetensors.read(shortData));
        assertTrue(e.getMessage().contains("tensor w"), e.getMessage());
        Path int8 = handWritten("{\"q\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}", new byte[2]);
        var e2 = assertThrows(IllegalArgumentException.class, () -> Safetensors.read(int8));
        assertTrue(e2.getMessage().contains("q") && e2.getMessage().contains("I8"), e2.getMessage());
        Path notSafetensors = tmp.resolve("x.safetensors");
        Files.writeString(notSafetensors, "hello, this is not a tensor file");
        assertThrows(IllegalArgumentException.class, () -> Safetensors.read(notSafetensors));
    }

    /** How many regions of this process map {@code file} (/proc/self/maps). */
    private static long mappingsOf(Path file) throws Exception {
        String path = file.toRealPath().toString();
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.endsWith(" " + path)).count();
    }

    @Test
    void closingTheOffHeapUnmapsTheTensorsWithoutAGarbageCollection() throws Exception {
        Assumptions.assumeTrue(Files.exists(Path.of("/proc/self/maps")), "Linux only");
        Path f = tmp.resolve("m.safetensors");
        try (NDManager m = NDManager.newBaseManager()) {
            Safetensors.write(f, Map.of("w", m.create(new float[] {1, 2, 3, 4}, new Shape(2, 2))), Map.of());
        }
        try (OffHeap memory = OffHeap.open()) {
            Map<String, Safetensors.Tensor> t = Safetensors.read(f, memory);
            assertArrayEquals(new float[] {1, 2, 3, 4}, t.get("w").toFloatArray());
            assertTrue(mappingsOf(f) >= 1, "mapped while the arena is open");
            ByteBuffer scratch = memory.allocate(1 << 20);
            scratch.putFloat(4 * 1000, 3.5f);
            assertEquals(3.5f, scratch.getFloat(4 * 1000));
            assertEquals(java.nio.ByteOrder.nativeOrder(), scratch.order());
        }
        assertEquals(0, mappingsOf(f), "unmapped when the arena closed");
    }

    @Test
    void aLoadedModelKeepsNoMappingOfItsCheckpoint() throws Exception {
        Assumptions.assumeTrue(Files.exists(Path.of("/proc/self/maps")), "Linux only");
        // a copy of its own: other code in this JVM (Jlama, plain Safetensors.read) may map models/demo
        Path dir = Files.createDirectories(tmp.resolve("demo"));
        for (String f : new String[] {"config.json", "model.safetensors"}) Files.copy(Path.of("models/demo", f), dir.resolve(f));
        try (LlamaModel model = LlamaModel.load(dir, ai.djl.Device.cpu())) {
            assertTrue(model.parameters().size() > 0);
            assertEquals(0, mappingsOf(dir.resolve("model.safetensors")),
                    "the checkpoint's pages would stay resident until a garbage collection");
        }
    }
}
