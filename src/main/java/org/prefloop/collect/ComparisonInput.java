package org.prefloop.collect;

import com.fasterxml.jackson.core.JsonProcessingException;
import org.prefloop.platform.ProblemException;

import java.util.List;

/**
 * What a client sends to create a comparison, validated field by field so that a bad line
 * of an import or a bad request names exactly what is wrong.
 */
public record ComparisonInput(List<ChatMessage> prompt, List<Response> responses, String source) {
    static final int MAX_TEXT = 256 * 1024;

    public record Response(String text, String model, String version) {
    }

    /** Checks the input; throws a 422 problem naming the field. */
    public ComparisonInput validated() {
        if (prompt == null || prompt.isEmpty()) throw ProblemException.invalid("prompt", "prompt must be a non-empty list of messages");
        for (int i = 0; i < prompt.size(); i++) {
            ChatMessage m = prompt.get(i);
            if (m == null || m.role() == null || m.role().isBlank()) throw ProblemException.invalid("prompt[" + i + "].role", "every message needs a role");
            if (!List.of("system", "user", "assistant", "tool").contains(m.role())) {
                throw ProblemException.invalid("prompt[" + i + "].role", "role must be system, user, assistant or tool; got '" + m.role() + "'");
            }
            if (m.content() == null) throw ProblemException.invalid("prompt[" + i + "].content", "every message needs content");
        }
        if (responses == null || responses.size() != 2) throw ProblemException.invalid("responses", "responses must hold exactly two candidates");
        for (int i = 0; i < 2; i++) {
            Response r = responses.get(i);
            if (r == null || r.text() == null) throw ProblemException.invalid("responses[" + i + "].text", "every response needs text");
            if (r.text().length() > MAX_TEXT) throw ProblemException.invalid("responses[" + i + "].text", "response text is longer than 256 KiB");
        }
        return this;
    }

    Comparison toEntity() {
        Comparison c = new Comparison();
        try {
            c.prompt = Comparison.JSON.writeValueAsString(prompt);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        c.responseA = responses.get(0).text();
        c.modelA = responses.get(0).model();
        c.versionA = responses.get(0).version();
        c.responseB = responses.get(1).text();
        c.modelB = responses.get(1).model();
        c.versionB = responses.get(1).version();
        c.source = source == null || source.isBlank() ? "api" : source;
        return c;
    }
}
