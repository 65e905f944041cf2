package org.prefloop.runs;

import io.quarkus.test.junit.QuarkusTestProfile;

import java.nio.file.Path;
import java.util.Map;

/** The service serving the bundled demo model (models/demo), as it does on a laptop. */
public class DemoModelProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("prefloop.model", Path.of("models/demo").toAbsolutePath().toString(),
                "prefloop.serve.max-batch", "64");
    }
}
