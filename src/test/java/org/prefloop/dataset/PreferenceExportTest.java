package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Stored judgments export as TRL preference pairs and SFT conversations; ties and both-bad make no pair. */
@QuarkusTest
class PreferenceExportTest {
    private final ObjectMapper json = new ObjectMapper();

    private List<JsonNode> lines(Response r) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String line : r.asString().split("\n")) if (!line.isBlank()) out.add(json.readTree(line));
        return out;
    }

    @Test
    void decisiveJudgmentsBecomePairsAndTheRestAreCounted() throws Exception {
        String marker = "export-" + System.nanoTime();
        long preferA = Api.newComparison(marker + " A", "right-A", "wrong-B");
        long preferB = Api.newComparison(marker + " B", "wrong-A", "right-B");
        long tie = Api.newComparison(marker + " tie", "same", "same");
        long bothBad = Api.newComparison(marker + " bad", "bad", "worse");
        Api.judge(Api.asAdmin(), preferA, "A");
        Api.judge(Api.asAdmin(), preferB, "B");
        Api.judge(Api.asAdmin(), tie, "tie");
        Api.judge(Api.asAdmin(), bothBad, "both_bad");
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(bothBad) == 1
                && Api.storedJudgments(preferA) == 1 && Api.storedJudgments(preferB) == 1 && Api.storedJudgments(tie) == 1);

        Response dpo = Api.asAdmin().get("/api/export/preferences?format=dpo");
        dpo.then().statusCode(200);
        List<JsonNode> mine = lines(dpo).stream()
                .filter(l -> l.get("prompt").get(0).get("content").asText().startsWith(marker)).toList();
        assertEquals(2, mine.size(), "only the two decisive judgments make pairs");
        for (JsonNode l : mine) {
            assertEquals("user", l.get("prompt").get(0).get("role").asText());
            assertEquals("assistant", l.get("chosen").get(0).get("role").asText());
            assertTrue(l.get("chosen").get(0).get("content").asText().startsWith("right-"), l.toString());
            assertTrue(l.get("rejected").get(0).get("content").asText().startsWith("wrong-"), l.toString());
        }
        var summary = Api.asAdmin().get("/api/export/preferences/summary").then().statusCode(200).extract().jsonPath();
        assertTrue(summary.getLong("ties") >= 1 && summary.getLong("bothBad") >= 1);
        assertEquals(summary.getLong("pairs"), Long.parseLong(dpo.header("X-PrefLoop-Pairs")));
        assertEquals(summary.getLong("pairs") + summary.getLong("ties") + summary.getLong("bothBad"), summary.getLong("judgments"));

        List<JsonNode> sft = lines(Api.asAdmin().get("/api/export/preferences?format=sft")).stream()
                .filter(l -> l.get("messages").get(0).get("content").asText().startsWith(marker)).toList();
        assertEquals(2, sft.size());
        for (JsonNode l : sft) {
            JsonNode last = l.get("messages").get(l.get("messages").size() - 1);
            assertEquals("assistant", last.get("role").asText());
            assertTrue(last.get("content").asText().startsWith("right-"));
        }
        Api.asAdmin().get("/api/export/preferences?format=csv").then().statusCode(400);
    }
}
