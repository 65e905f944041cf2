package org.prefloop.serve;

import io.quarkus.test.junit.QuarkusTestProfile;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The service with PREFLOOP_MODEL pointing at a tiny checkpoint the project writes itself. The
 * service loads models lazily, so the test writes the checkpoint (see {@link #ensureCheckpoint})
 * before its first request; the profile itself touches no DJL class, because it is also loaded
 * outside the application's class loader.
 */
public class TinyModelProfile implements QuarkusTestProfile {
    static final Path CHECKPOINT = Path.of("target", "tiny-serve-model").toAbsolutePath();

    static synchronized void ensureCheckpoint() {
        if (Files.exists(CHECKPOINT.resolve("config.json"))) return;
        TokenizerSpec chars = TokenizerSpec.characters("abcdefghijklmnopqrstuvwxyz0123456789 +=?.,\n");
        TinyCheckpoint.write(CHECKPOINT, ModelConfig.llama(chars.characterVocabSize(), 64, 128, 2, 4, 2), 11, chars);
    }

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("prefloop.model", CHECKPOINT.toString());
    }
}
