package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.platform.ProblemException;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads uploaded training data in TRL's JSON Lines formats. A dataset version is all or
 * nothing: the first bad line refuses the upload, naming the line and the field.
 */
@ApplicationScoped
class DatasetUpload {
    @Inject
    ObjectMapper json;

    List<DatasetItem> read(InputStream body, String kind) {
        List<DatasetItem> items = new ArrayList<>();
        long lineNo = 0;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                lineNo++;
                if (line.isBlank()) continue;
                JsonNode n;
                try {
                    n = json.readTree(line);
                } catch (IOException e) {
                    throw ProblemException.invalid("line " + lineNo, "line " + lineNo + ": malformed JSON");
                }
                items.add(kind.equals(Dataset.SFT) ? sft(n, lineNo) : preference(n, lineNo));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (items.isEmpty()) throw ProblemException.invalid(null, "the upload holds no example");
        return items;
    }

    private static DatasetItem sft(JsonNode n, long line) {
        JsonNode messages = n.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ProblemException.invalid("line " + line + ".messages", "line " + line + ": 'messages' must be a non-empty list");
        }
        for (JsonNode m : messages) {
            if (!m.hasNonNull("role") || !m.hasNonNull("content")) {
                throw ProblemException.invalid("line " + line + ".messages", "line " + line + ": every message needs role and content");
            }
        }
        return DatasetItem.sft(null, messages);
    }

    private static DatasetItem preference(JsonNode n, long line) {
        for (String field : List.of("prompt", "chosen", "rejected")) {
            JsonNode v = n.get(field);
            if (v == null || !(v.isTextual() || v.isArray())) {
                throw ProblemException.invalid("line " + line + "." + field,
                        "line " + line + ": '" + field + "' must be a string or a list of messages");
            }
        }
        double weight = n.hasNonNull("weight") ? n.get("weight").asDouble() : 1.0;
        if (!(weight > 0)) throw ProblemException.invalid("line " + line + ".weight", "line " + line + ": weight must be positive");
        return new DatasetItem(null, n.get("prompt"), n.get("chosen"), n.get("rejected"), null, null, null, null, weight, null);
    }
}
