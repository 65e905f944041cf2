package org.prefloop.collect;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.Test;
import org.prefloop.testing.Api;

import java.io.InputStream;
import java.io.SequenceInputStream;
import java.nio.charset.StandardCharsets;
import java.util.Enumeration;
import java.util.Map;

import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.startsWith;

@QuarkusTest
class ComparisonImportTest {
    static final int LINES = 100_000;

    /** 100,000 JSON lines generated as they are sent, never held in memory; lines 10, 50,000 and 99,999 are bad. */
    private static InputStream generatedLines() {
        Enumeration<InputStream> lines = new Enumeration<>() {
            int n = 0;

            @Override
            public boolean hasMoreElements() {
                return n < LINES;
            }

            @Override
            public InputStream nextElement() {
                n++;
                String line = switch (n) {
                    case 10 -> "{\"prompt\": [{\"role\": \"user\", \"content\": \"unterminated\"}";
                    case 50_000 -> "{\"prompt\": [{\"role\": \"user\", \"content\": \"one response\"}], \"responses\": [{\"text\": \"only\"}]}";
                    case 99_999 -> "{\"prompt\": [{\"role\": \"narrator\", \"content\": \"hi\"}], \"responses\": [{\"text\": \"a\"}, {\"text\": \"b\"}]}";
                    default -> "{\"prompt\": [{\"role\": \"user\", \"content\": \"What is " + n + " + 1?\"}], "
                            + "\"responses\": [{\"text\": \"" + (n + 1) + "\", \"model\": \"tiny\", \"version\": \"v1\"}, "
                            + "{\"text\": \"" + (n + 2) + "\", \"model\": \"tiny\", \"version\": \"v2\"}]}";
                };
                return new java.io.ByteArrayInputStream((line + "\n").getBytes(StandardCharsets.UTF_8));
            }
        };
        return new SequenceInputStream(lines);
    }

    @Test
    void importsOneHundredThousandLinesAndReportsEachBadLine() {
        Api.asAdmin().contentType("application/x-ndjson").body(generatedLines())
                .post("/api/comparisons/import").then().statusCode(200)
                .body("imported", equalTo(LINES - 3))
                .body("failed", equalTo(3))
                .body("errors[0].line", equalTo(10))
                .body("errors[0].problem", startsWith("malformed JSON"))
                .body("errors[1].line", equalTo(50_000))
                .body("errors[1].field", equalTo("responses"))
                .body("errors[2].line", equalTo(99_999))
                .body("errors[2].field", equalTo("prompt[0].role"));
    }

    @Test
    void theShippedDemoComparisonsImportCleanly() throws Exception {
        byte[] demo = java.nio.file.Files.readAllBytes(java.nio.file.Path.of("preference-data/demo-comparisons.jsonl"));
        Api.asAdmin().contentType("application/x-ndjson").body(demo)
                .post("/api/comparisons/import").then().statusCode(200)
                .body("imported", equalTo(24))
                .body("failed", equalTo(0));
    }

    @Test
    void anImportWithNoGoodLineIsRefused() {
        Api.asAdmin().contentType("application/x-ndjson").body("not json\n{}\n".getBytes(StandardCharsets.UTF_8))
                .post("/api/comparisons/import").then().statusCode(422)
                .contentType(startsWith("application/problem+json"));
    }

    @Test
    void aComparisonNeedsExactlyTwoResponses() {
        Api.asAdmin().contentType(ContentType.JSON)
                .body(Map.of("prompt", java.util.List.of(Map.of("role", "user", "content", "hi")),
                        "responses", java.util.List.of(Map.of("text", "a"))))
                .post("/api/comparisons").then().statusCode(422).body("field", equalTo("responses"));
        Api.asAdmin().get("/api/comparisons/987654321").then().statusCode(404)
                .contentType(startsWith("application/problem+json"));
    }
}
