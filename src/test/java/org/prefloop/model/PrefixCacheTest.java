package org.prefloop.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The prefix cache's eviction: leaves first, so a shared beginning outlives the prompts that continue it. */
class PrefixCacheTest {
    @RegisterExtension
    static final TinyGenerator tiny = new TinyGenerator();

    @Test
    void aSharedBeginningOutlivesThePromptsThatContinueItWhenTheBudgetShrinks() {
        Generator cached = new Generator(tiny.model, tiny.tokenizer);
        cached.prefixCache().setBudgetBytes(64L << 20);
        long blockBytes = cached.prefixCache().blockBytes();
        String system = "you answer in one word only now "; // 32 characters, a token each: two whole blocks
        long[] first = tiny.tokenizer.encode(system + "what is the sum of 1 and 2 then");
        long[] second = tiny.tokenizer.encode(system + "name a color of the sky at noon");
        assertEquals(2 * PrefixCache.BLOCK, tiny.tokenizer.encode(system).length);
        assertEquals(4 * PrefixCache.BLOCK - 1, first.length); // two whole blocks after the system prompt's, the second ends one short
        try (DecodeBatch batch = cached.newBatch()) {
            batch.admit(List.of(new DecodeBatch.Request(first, DecodeBatchTest.fixedLength(1), 0, new DecodeBatchTest.Probe())));
            batch.admit(List.of(new DecodeBatch.Request(second, DecodeBatchTest.fixedLength(1), 0, new DecodeBatchTest.Probe())));
            while (!batch.isEmpty()) batch.step();
        }
        PrefixCache cache = cached.prefixCache();
        assertEquals(6 * blockBytes, cache.bytes(), "the system prompt's two blocks, shared, and two of each prompt's own");

        cache.setBudgetBytes(2 * blockBytes); // four must go: the least recently used first, but never a block others follow
        assertEquals(2 * blockBytes, cache.bytes());
        long[] third = tiny.tokenizer.encode(system + "and then?");
        assertEquals(2 * PrefixCache.BLOCK, cache.cachedTokens(third, null), "the system prompt is still found, its blocks whole");
    }
}
