package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.api.Test;
import org.prefloop.collect.PreferenceEvent;
import org.prefloop.testing.Api;
import org.prefloop.testing.Topics;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.awaitility.Awaitility.await;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** Freezing judgments into immutable, content-hashed dataset versions with consensus and agreement. */
@QuarkusTest
class DatasetTest {
    private final ObjectMapper json = new ObjectMapper();

    @Test
    void aFrozenDatasetKeepsTheConsensusItsAgreementAndTheRawVotes() throws Exception {
        String ann = Api.newAnnotator(), bob = Api.newAnnotator(), eve = Api.newAnnotator();
        long c1 = Api.newComparison("c1", "a1", "b1");   // A, A, B -> A with 2/3
        long c2 = Api.newComparison("c2", "a2", "b2");   // B, B, B -> B with 1
        long c3 = Api.newComparison("c3", "a3", "b3");   // A, B    -> no majority
        long c4 = Api.newComparison("c4", "a4", "b4");   // tie, tie, A -> tie: no pair
        String[][] votes = {{"A", "A", "B"}, {"B", "B", "B"}, {"A", "B", null}, {"tie", "tie", "A"}};
        long[] ids = {c1, c2, c3, c4};
        String[] who = {ann, bob, eve};
        for (int i = 0; i < ids.length; i++) {
            for (int j = 0; j < 3; j++) if (votes[i][j] != null) Api.judge(Api.asAnnotator(who[j]), ids[i], votes[i][j]);
        }
        // a checker's judgment is not a human vote unless asked for (it judges under its own name, as /api/judges does)
        Topics.produce(PreferenceEvent.TOPIC, String.valueOf(c3), "{\"eventId\":\"" + UUID.randomUUID() + "\",\"comparisonId\":" + c3
                + ",\"annotator\":\"checker\",\"choice\":\"A\",\"submittedAt\":\"" + Instant.now() + "\",\"judge\":\"checker\"}");
        await().atMost(Duration.ofSeconds(30)).until(() -> Api.storedJudgments(c4) == 3 && Api.storedJudgments(c3) == 3
                && Api.storedJudgments(c1) == 3 && Api.storedJudgments(c2) == 3);

        Map<String, Object> filters = Map.of("annotators", List.of(ann, bob, eve), "weightByAgreement", true);
        JsonPath d = freeze("round-1", "preference", filters).then().statusCode(201)
                .body("items", equalTo(2))
                .body("summary.comparisons", equalTo(4))
                .body("summary.noMajority", equalTo(1))
                .body("summary.tieOrBothBad", equalTo(1))
                .extract().jsonPath();
        List<JsonNode> lines = export(d.getLong("id"));
        assertEquals("c1", lines.get(0).get("prompt").get(0).get("content").asText());
        assertEquals("a1", lines.get(0).get("chosen").get(0).get("content").asText());
        assertEquals("b1", lines.get(0).get("rejected").get(0).get("content").asText());
        assertEquals(2 / 3.0, lines.get(0).get("weight").asDouble(), 1e-9);
        assertEquals("b2", lines.get(1).get("chosen").get(0).get("content").asText());
        assertEquals(null, lines.get(1).get("weight"), "weight 1 is left out");

        // same judgments, same filters: same content, same hash; a stricter filter: another version
        String again = freeze("round-1-again", "preference", filters).then().statusCode(201).extract().path("contentHash");
        assertEquals(d.getString("contentHash"), again);
        JsonPath strict = freeze("round-1-strict", "preference", Map.of("annotators", List.of(ann, bob, eve), "minAgreement", 0.9))
                .then().statusCode(201).body("items", equalTo(1)).body("summary.belowAgreement", equalTo(1)).extract().jsonPath();
        assertNotEquals(d.getString("contentHash"), strict.getString("contentHash"));

        // with the checker's vote c3 has a majority (A, B, A)
        freeze("with-judges", "preference", Map.of("annotators", List.of(ann, bob, eve, "checker"), "includeJudges", true))
                .then().statusCode(201).body("items", equalTo(3));

        List<JsonNode> sft = export(freeze("sft-1", "sft", filters).then().statusCode(201).extract().jsonPath().getLong("id"));
        JsonNode last = sft.get(0).get("messages").get(1);
        assertEquals("assistant", last.get("role").asText());
        assertEquals("a1", last.get("content").asText());
    }

    @Test
    void anUploadIsAllOrNothing() {
        int before = Api.asAdmin().get("/api/datasets").then().extract().jsonPath().getList("$").size();
        String bad = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]}\n{\"messages\": []}\n";
        Api.asAdmin().contentType("application/x-ndjson").body(bad.getBytes(StandardCharsets.UTF_8))
                .post("/api/datasets/upload?name=greetings&kind=sft").then().statusCode(422).body("field", equalTo("line 2.messages"));
        assertEquals(before, Api.asAdmin().get("/api/datasets").then().extract().jsonPath().getList("$").size());
        String good = "{\"prompt\": \"2+2=\", \"chosen\": \"4\", \"rejected\": \"5\", \"weight\": 0.5}\n";
        long id = Api.asAdmin().contentType("application/x-ndjson").body(good.getBytes(StandardCharsets.UTF_8))
                .post("/api/datasets/upload?name=plain&kind=preference").then().statusCode(201).body("items", equalTo(1))
                .extract().jsonPath().getLong("id");
        Api.asAdmin().get("/api/datasets/" + id + "/export").then().statusCode(200)
                .body(equalTo("{\"prompt\":\"2+2=\",\"chosen\":\"4\",\"rejected\":\"5\",\"weight\":0.5}\n"));
        Api.asAdmin().get("/api/datasets/987654321").then().statusCode(404);
    }

    private io.restassured.response.Response freeze(String name, String kind, Map<String, Object> filters) {
        return Api.asAdmin().contentType(ContentType.JSON).body(Map.of("name", name, "kind", kind, "filters", filters))
                .post("/api/datasets");
    }

    private List<JsonNode> export(long id) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Api.asAdmin().get("/api/datasets/" + id + "/export").then().statusCode(200).extract().asString().split("\n")) {
            if (!l.isBlank()) out.add(json.readTree(l));
        }
        return out;
    }
}
