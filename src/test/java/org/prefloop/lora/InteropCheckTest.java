package org.prefloop.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.train.Python;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * src/test/python/interop_check.py on CPU: transformers loads every checkpoint PrefLoop writes
 * (one per architecture option) and PEFT every adapter, and both compute PrefLoop's logits.
 * Skipped, saying why, only where python3 cannot import transformers and peft.
 */
class InteropCheckTest {

    @Test
    void transformersAndPeftComputePrefLoopsLogits(@TempDir Path tmp) throws Exception {
        String why = Python.missing("torch", "transformers", "peft");
        assumeTrue(why == null, why);
        Path cases = tmp.resolve("cases"), out = tmp.resolve("out");
        String before = System.getProperty("interop.out");
        System.setProperty("interop.out", cases.toString());
        try {
            InteropCases.main(new String[0]);
        } finally {
            if (before == null) System.clearProperty("interop.out");
            else System.setProperty("interop.out", before);
        }
        Python.run(List.of("src/test/python/interop_check.py", cases.toString(), out.toString()), tmp.resolve("interop.log"), 600);
        JsonNode report = new ObjectMapper().readTree(out.resolve("interop_report.json").toFile());
        assertEquals(5, report.size(), report.toString());
        report.properties().forEach(e -> {
            JsonNode c = e.getValue();
            assertTrue(c.get("base_max_abs_diff").asDouble() < 1e-4, e.getKey() + ": " + c);
            assertTrue(c.get("adapter_max_abs_diff").asDouble() < 1e-4, e.getKey() + ": " + c);
            assertTrue(c.get("adapter_changes_logits").asDouble() > 1e-3, e.getKey() + ": the adapter matters, " + c);
        });
        System.out.println("interop on CPU: " + report);
    }
}
