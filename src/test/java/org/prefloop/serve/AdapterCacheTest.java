package org.prefloop.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.Device;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.ProjectionHook;
import org.prefloop.model.TinyCheckpoint;
import org.prefloop.model.TokenizerSpec;

/** The bounded adapter cache: least recently used idle adapters go first, adapters in use never. */
class AdapterCacheTest {
    @Test
    void idleAdaptersAreEvictedLeastRecentlyUsedFirstAndHeldOnesStay(@TempDir Path tmp) {
        TokenizerSpec chars = TokenizerSpec.characters("abc ");
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), ModelConfig.llama(chars.characterVocabSize(), 16, 32, 1, 2, 1), 1, chars);
        try (LlamaModel model = LlamaModel.load(ckpt, Device.cpu())) {
            Path a = tmp.resolve("a");
            Path b = tmp.resolve("b");
            Path c = tmp.resolve("c");
            for (Path dir : List.of(a, b, c)) {
                try (LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(2, 4, List.of("q_proj"), null), dir.hashCode(), true)) {
                    adapter.save(dir);
                }
            }
            AdapterCache cache = new AdapterCache(model, 2);
            ProjectionHook ha = cache.acquire(a);
            assertSame(ha, cache.acquire(a), "one hook per loaded adapter, so rows of one version group together");
            cache.acquire(b);
            cache.acquire(c); // a and b are held: the cache goes over its bound rather than pull an adapter from a running row
            assertEquals(3, cache.size());
            cache.release(b); // b idle now, and the least recently used idle one
            assertEquals(2, cache.size());
            assertEquals(3, cache.loads());
            cache.acquire(b); // reloaded
            assertEquals(4, cache.loads());
            cache.release(a);
            cache.release(a);
            cache.release(c); // all idle but b: a (least recent) goes, then nothing more over the bound
            assertEquals(2, cache.size());
            assertNotNull(cache.acquire(c));
            assertEquals(4, cache.loads(), "c stayed loaded");
            cache.acquire(a);
            assertEquals(5, cache.loads(), "a had been evicted");
            assertThrows(RuntimeException.class, () -> cache.acquire(tmp.resolve("missing")));
            cache.close();
            assertEquals(0, cache.size());
        }
    }
}
