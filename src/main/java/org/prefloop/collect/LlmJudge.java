package org.prefloop.collect;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A language model as a judge, over any OpenAI-compatible {@code /chat/completions} (PrefLoop's own
 * {@code /v1} included). Each comparison is asked twice, the responses in both orders: models
 * favour a position, so a verdict counts only when it names the same response both times; an
 * inconsistent pair of verdicts, a tie or an answer that names neither is a tie.
 */
public final class LlmJudge {
    public static final String DEFAULT_RUBRIC = "You compare two responses to the same conversation. Judge which response is "
            + "more helpful, correct and harmless for the user's last message. Answer with exactly one of: 1, 2, tie.";
    private static final Pattern VERDICT = Pattern.compile("\\b(1|2|tie)\\b");

    /** What one ordering said: the first response shown, the second, a tie, or nothing readable. */
    enum Said { FIRST, SECOND, TIE, NOTHING }

    /** One question to the model: the rubric, the conversation, and two responses in the order shown. */
    @FunctionalInterface
    interface Asker {
        String ask(String rubric, String question);
    }

    /** The verdict on a comparison and the raw answers of both orders (kept as the rationale). */
    public record Verdict(Choice choice, String answerInOrder, String answerSwapped) {
        public boolean consistent() {
            return choice.decisive();
        }
    }

    private final Asker asker;
    private final String rubric;

    LlmJudge(Asker asker, String rubric) {
        this.asker = asker;
        this.rubric = rubric == null || rubric.isBlank() ? DEFAULT_RUBRIC : rubric;
    }

    /** A judge over an OpenAI-compatible endpoint ({@code baseUrl} ends before {@code /chat/completions}). */
    public static LlmJudge openAi(URI baseUrl, String model, String apiKey, String rubric, ObjectMapper json) {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        URI endpoint = URI.create(baseUrl.toString().replaceAll("/+$", "") + "/chat/completions");
        return new LlmJudge((system, question) -> {
            try {
                String body = json.writeValueAsString(Map.of("model", model, "temperature", 0, "max_tokens", 8,
                        "messages", List.of(Map.of("role", "system", "content", system), Map.of("role", "user", "content", question))));
                HttpRequest.Builder req = HttpRequest.newBuilder(endpoint).timeout(Duration.ofSeconds(120))
                        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
                if (apiKey != null && !apiKey.isBlank()) req.header("Authorization", "Bearer " + apiKey);
                HttpResponse<String> res = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
                if (res.statusCode() != 200) {
                    throw new JudgeUnavailableException("the judge endpoint answered " + res.statusCode() + ": "
                            + res.body().substring(0, Math.min(200, res.body().length())));
                }
                JsonNode content = json.readTree(res.body()).at("/choices/0/message/content");
                return content.isMissingNode() || content.isNull() ? "" : content.asText();
            } catch (IOException e) {
                throw new JudgeUnavailableException("the judge endpoint " + endpoint + " cannot be reached: " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new JudgeUnavailableException("interrupted while asking the judge");
            }
        }, rubric);
    }

    /** The judge's verdict on (prompt, A, B), asked with A shown first and again with B shown first. */
    public Verdict judge(List<ChatMessage> prompt, String responseA, String responseB) {
        String inOrder = asker.ask(rubric, question(prompt, responseA, responseB));
        String swapped = asker.ask(rubric, question(prompt, responseB, responseA));
        return new Verdict(combine(read(inOrder), read(swapped)), inOrder, swapped);
    }

    /** Both orders must name the same response (first in one order is second in the other); anything else is a tie. */
    static Choice combine(Said inOrder, Said swapped) {
        if (inOrder == Said.FIRST && swapped == Said.SECOND) return Choice.A;
        if (inOrder == Said.SECOND && swapped == Said.FIRST) return Choice.B;
        return Choice.TIE;
    }

    static Said read(String answer) {
        Matcher m = VERDICT.matcher(answer == null ? "" : answer.toLowerCase(Locale.ROOT));
        if (!m.find()) return Said.NOTHING;
        return switch (m.group(1)) {
            case "1" -> Said.FIRST;
            case "2" -> Said.SECOND;
            default -> Said.TIE;
        };
    }

    static String question(List<ChatMessage> prompt, String first, String second) {
        StringBuilder q = new StringBuilder("Conversation:\n");
        for (ChatMessage m : prompt) q.append(m.role()).append(": ").append(m.content()).append('\n');
        q.append("\nResponse 1:\n").append(first).append("\n\nResponse 2:\n").append(second)
                .append("\n\nWhich response is better? Answer 1, 2 or tie.");
        return q.toString();
    }

    /** The endpoint failed: the judging stops with this reason (502 to the caller). */
    public static final class JudgeUnavailableException extends RuntimeException {
        JudgeUnavailableException(String message) {
            super(message);
        }
    }
}
