package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The checkpoint files read and write as they did when Gson handled them: the bundled demo model
 * (written by this project's Gson code) is reproduced byte for byte, and Gson's number conversions,
 * escapes and layout hold.
 */
class HfJsonTest {
    private static final Path DEMO = Path.of("models/demo");

    @TempDir
    Path tmp;

    @Test
    void theDemoModelsJsonFilesAreWrittenByteForByteAsBefore() throws Exception {
        Path config = tmp.resolve("config.json");
        ModelConfig.read(DEMO.resolve("config.json")).write(config);
        assertEquals(Files.readString(DEMO.resolve("config.json")), Files.readString(config));

        // the demo was trained from this recipe; training changes the weights only
        Path fresh = TinyModelRecipe.read(Path.of("preference-data/synthetic/tiny-model.json")).write(tmp.resolve("fresh"));
        for (String f : new String[] {"config.json", "tokenizer.json", "tokenizer_config.json"}) {
            assertEquals(Files.readString(DEMO.resolve(f)), Files.readString(fresh.resolve(f)), f);
        }
    }

    @Test
    void theDemoModelsSafetensorsAreWrittenByteForByteAsBefore() throws Exception {
        Path file = DEMO.resolve("model.safetensors");
        Map<String, String> metadata = new TreeMap<>(Safetensors.metadata(file));
        metadata.remove("format");
        Path again = tmp.resolve("again.safetensors");
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            Safetensors.read(file).forEach((name, t) -> tensors.put(name, t.toNDArray(m)));
            Safetensors.write(again, tensors, metadata);
        }
        assertArrayEquals(Files.readAllBytes(file), Files.readAllBytes(again));
    }

    @Test
    void layoutAndEscapesAreGsons() throws Exception {
        ObjectNode json = HfJson.parseObject("{\"s\": \"a\\u2028b\\u2029c\\u0001d\\u001fe\\tf\\ng\\\\h\\\"i<j>k&l=m'n/o\u00e9p\ud83d\ude00q\u007f\","
                + " \"n\": null, \"eps\": 1.0E-5, \"big\": 1099511627776, \"e\": [], \"o\": {},"
                + " \"arr\": [{\"x\": null, \"y\": [1, null]}], \"t\": true}", "sample");
        String string = "\"a\\u2028b\\u2029c\\u0001d\\u001fe\\tf\\ng\\\\h\\\"i<j>k&l=m'n/o\u00e9p\ud83d\ude00q\u007f\"";
        // what Gson 2.13 printed for the same tree (pretty: null members left out)
        assertEquals("{\n  \"s\": " + string + ",\n  \"eps\": 1.0E-5,\n  \"big\": 1099511627776,\n  \"e\": [],\n  \"o\": {},\n"
                + "  \"arr\": [\n    {\n      \"y\": [\n        1,\n        null\n      ]\n    }\n  ],\n  \"t\": true\n}\n",
                Files.readString(write(json), StandardCharsets.UTF_8));
        assertEquals("{\"s\":" + string + ",\"n\":null,\"eps\":1.0E-5,\"big\":1099511627776,\"e\":[],\"o\":{},"
                + "\"arr\":[{\"x\":null,\"y\":[1,null]}],\"t\":true}", HfJson.compact(json));
    }

    @Test
    void valuesConvertAsGsonsGettersDid() {
        ObjectNode j = HfJson.parseObject("{'quoted': '32', whole: 2.0, big: 1099511627776, word: 'abc', yes: 'true', one: 1,"
                + " /* python's json writes these */ nan: NaN, inf: -Infinity, obj: {}}", "sample");
        assertEquals(32, HfJson.intValue(j.get("quoted"), "quoted"));
        assertEquals(2, HfJson.intValue(j.get("whole"), "whole"));
        assertEquals(1099511627776L, HfJson.longValue(j.get("big"), "big"));
        assertEquals(32.0, HfJson.doubleValue(j.get("quoted"), "quoted"));
        assertTrue(Double.isNaN(HfJson.doubleValue(j.get("nan"), "nan")));
        assertEquals(Double.NEGATIVE_INFINITY, HfJson.doubleValue(j.get("inf"), "inf"));
        assertTrue(HfJson.boolValue(j.get("yes"), "yes"));
        assertFalse(HfJson.boolValue(j.get("one"), "one"), "Gson: a number is no boolean, and not true");
        assertThrows(NumberFormatException.class, () -> HfJson.intValue(j.get("word"), "word"));
        var missing = assertThrows(IllegalArgumentException.class, () -> HfJson.intValue(j.get("absent"), "absent"));
        assertEquals("absent is missing", missing.getMessage());
        var object = assertThrows(IllegalArgumentException.class, () -> HfJson.text(j.get("obj"), "obj"));
        assertTrue(object.getMessage().startsWith("obj is not a string"), object.getMessage());
        var broken = assertThrows(IllegalArgumentException.class, () -> HfJson.parseObject("{\"a\": ", "config.json"));
        assertTrue(broken.getMessage().startsWith("config.json is not valid JSON"), broken.getMessage());
        assertThrows(IllegalArgumentException.class, () -> HfJson.parseObject("[1]", "config.json"));
    }

    private Path write(ObjectNode json) {
        Path f = tmp.resolve("pretty.json");
        HfJson.writePretty(f, json);
        return f;
    }
}
