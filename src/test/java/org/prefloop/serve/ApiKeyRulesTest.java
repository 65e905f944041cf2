package org.prefloop.serve;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Seeded keys have a minimum length, and a key's shown prefix never gives away more than a third of it. */
class ApiKeyRulesTest {

    @Test
    void shortSeededKeysStopTheStartWithoutQuotingThem() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ApiKeys.checkSeeded(List.of("a-long-enough-key-0123456789", "short-key")));
        assertTrue(e.getMessage().contains("PREFLOOP_API_KEYS[1]"), e.getMessage());
        assertFalse(e.getMessage().contains("short-key"), e.getMessage());
        ApiKeys.checkSeeded(List.of("a-long-enough-key-0123456789", " ", "x".repeat(20)));
    }

    @Test
    void theShownPrefixIsAtMostAThirdOfTheKey() {
        for (int n = 0; n < 60; n++) {
            String key = "k".repeat(n);
            assertTrue(ApiKey.shownPrefix(key).length() * 3 <= n, "key of " + n);
        }
        assertEquals(8, ApiKey.shownPrefix(ApiKey.newSecret()).length());
        assertEquals("abcdef", ApiKey.shownPrefix("abcdefghijklmnopqrst"));
    }
}
