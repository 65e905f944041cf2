package org.prefloop.platform;

import io.quarkus.runtime.configuration.DurationConverter;
import io.quarkus.runtime.configuration.MemorySize;
import io.quarkus.runtime.configuration.MemorySizeConverter;
import io.smallrye.config.ConfigMappings;
import io.smallrye.config.EnvConfigSource;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import org.eclipse.microprofile.config.spi.ConfigSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Settings} is the one list of PrefLoop's settings: application.properties may set no
 * {@code prefloop.*} key it lacks (in any profile), every setting resolves from application.properties
 * alone, and the README's Configuration section names each setting's environment variable.
 * Plain SmallRye Config, no Quarkus start: it takes well under a second.
 */
class SettingsTest {
    private static final Pattern ENV_EXPRESSION = Pattern.compile("\\$\\{(PREFLOOP_[A-Z0-9_]+):");

    @Test
    void applicationPropertiesSetsOnlySettingsAndResolvesThemInEveryProfile() throws IOException {
        Properties file = applicationProperties();
        Set<String> profiles = new TreeSet<>(Set.of("prod"));
        for (String key : file.stringPropertyNames()) {
            if (key.startsWith("%") && key.contains(".prefloop.")) profiles.add(key.substring(1, key.indexOf('.')));
        }
        assertTrue(profiles.contains("test"), "the test profile overrides some settings: " + profiles);
        for (String profile : profiles) {
            // validate-unknown: a prefloop.* key that no method of Settings maps fails the build
            Settings s = config(profile).getConfigMapping(Settings.class);
            assertTrue(s.roles().containsAll(List.of("web", "ingest", "worker", "serve")), profile);
            assertEquals(Duration.ofHours(12), s.session().lifetime(), profile);
            assertEquals(4L * 1024 * 1024, s.api().maxBodySize().asLongValue(), profile);
            assertEquals(16, s.serve().maxBatch(), profile);
        }
        Settings test = config("test").getConfigMapping(Settings.class);
        assertEquals(List.of("helpfulness", "correctness", "safety"), test.annotation().criteria().orElseThrow());
        assertTrue(test.model().isEmpty(), "an empty value is an unset Optional");
        Settings prod = config("prod").getConfigMapping(Settings.class);
        assertEquals("models/demo", prod.model().orElseThrow());
        assertEquals("./data/runs", prod.runsDir());
        assertEquals(10, prod.bcryptCost());
    }

    @Test
    void everySettingIsAlsoAnEnvironmentVariable() throws IOException {
        Settings s = config("prod", new EnvConfigSource(Map.of("PREFLOOP_SERVE_MAX_BATCH", "3", "PREFLOOP_SIGN_IN_MAX_FAILURES", "7",
                "PREFLOOP_DATA", "/srv/prefloop", "PREFLOOP_KUBEFLOW_MASTER_URL", "https://k8s:6443"), 300))
                .getConfigMapping(Settings.class);
        assertEquals(3, s.serve().maxBatch(), "a @WithDefault setting");
        assertEquals(7, s.signIn().maxFailures(), "a dashed name");
        assertEquals("/srv/prefloop/runs", s.runsDir(), "application.properties' own variable, and what refers to it");
        assertEquals("https://k8s:6443", s.kubeflow().masterUrl().orElseThrow());
    }

    @Test
    void theReadmeNamesTheEnvironmentVariableOfEverySetting() throws IOException {
        Properties file = applicationProperties();
        String readme = Files.readString(Path.of("README.md"), StandardCharsets.UTF_8);
        int start = readme.indexOf("\n## Configuration\n");
        assertTrue(start >= 0, "README has a Configuration section");
        int end = readme.indexOf("\n## ", start + 1);
        String section = readme.substring(start, end < 0 ? readme.length() : end);
        List<String> missing = new ArrayList<>();
        for (String path : ConfigMappings.getProperties(ConfigMappings.ConfigClass.configClass(Settings.class)).keySet()) {
            String property = path.replace("[*]", ""); // a list's elements
            String env = environmentVariable(property, file.getProperty(property));
            if (!Pattern.compile("(?<![A-Z0-9_])" + env + "(?![A-Z0-9_])").matcher(section).find()) {
                missing.add(env + " (" + property + ")");
            }
        }
        assertTrue(missing.isEmpty(), "README's Configuration section does not name " + missing);
    }

    /** The variable application.properties reads the setting from, else SmallRye's own name for it. */
    static String environmentVariable(String property, String value) {
        Matcher m = ENV_EXPRESSION.matcher(value == null ? "" : value);
        if (m.find()) return m.group(1);
        return property.toUpperCase().replaceAll("[^A-Z0-9]", "_");
    }

    /** application.properties (and {@code more}) as Quarkus reads them, with the mapping's unknown keys refused. */
    private static SmallRyeConfig config(String profile, ConfigSource... more) throws IOException {
        return new SmallRyeConfigBuilder()
                .withSources(new PropertiesConfigSource(applicationPropertiesUrl()))
                .withSources(more)
                .withProfile(profile)
                .withConverter(Duration.class, 200, new DurationConverter())
                .withConverter(MemorySize.class, 200, new MemorySizeConverter())
                .withMapping(Settings.class)
                .withValidateUnknown(true)
                .build();
    }

    private static Properties applicationProperties() throws IOException {
        Properties p = new Properties();
        try (InputStream in = applicationPropertiesUrl().openStream()) {
            p.load(in);
        }
        return p;
    }

    private static URL applicationPropertiesUrl() {
        return SettingsTest.class.getClassLoader().getResource("application.properties");
    }
}
