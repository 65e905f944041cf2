package org.prefloop.model;

import com.fasterxml.jackson.core.JsonFactoryBuilder;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.io.SerializedString;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The JSON of a Hugging Face checkpoint (config.json, tokenizer.json, tokenizer_config.json,
 * model.safetensors.index.json, safetensors headers), read and written with Jackson.
 *
 * <p>Reading accepts what Python's json module writes beyond strict JSON (NaN, Infinity) and the
 * other leniencies Gson's parser, which read these files before, allowed (comments, single quotes,
 * unquoted names). The typed getters convert as Gson's {@code getAsInt} and friends did: a number
 * is cut to the type asked for, a string is parsed (a {@link NumberFormatException} when it is no
 * number), and a missing value, an object or an array is refused naming the field.
 *
 * <p>Writing is byte for byte what Gson wrote, so checkpoints written before and after read and hash
 * the same: two-space indentation, {@code "key": value}, an empty {@code []} or {@code {}}, members
 * whose value is null left out of pretty files (Gson's default), lower-case {@code \u001f}-style
 * escapes and escaped U+2028/U+2029.
 */
final class HfJson {
    private static final JsonMapper MAPPER = JsonMapper.builder(new JsonFactoryBuilder()
                    .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS, JsonReadFeature.ALLOW_JAVA_COMMENTS,
                            JsonReadFeature.ALLOW_SINGLE_QUOTES, JsonReadFeature.ALLOW_UNQUOTED_FIELD_NAMES)
                    .disable(JsonWriteFeature.WRITE_HEX_UPPER_CASE)
                    .characterEscapes(new LineSeparatorEscapes())
                    .build())
            .build();
    private static final DefaultPrettyPrinter GSON_PRETTY = new DefaultPrettyPrinter()
            .withSeparators(Separators.createDefaultInstance()
                    .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                    .withObjectEmptySeparator("")
                    .withArrayEmptySeparator(""))
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(new DefaultIndenter("  ", "\n"));

    private HfJson() {
    }

    static ObjectNode newObject() {
        return MAPPER.createObjectNode();
    }

    static ArrayNode newArray() {
        return MAPPER.createArrayNode();
    }

    /** The JSON object in {@code file}; an {@link IllegalArgumentException} naming the file when it is none. */
    static ObjectNode readObject(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        return parseObject(text, file.toString());
    }

    /** The JSON object {@code text}; {@code source} names it in the error when it is none. */
    static ObjectNode parseObject(String text, String source) {
        JsonNode node;
        try {
            node = MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + " is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (node == null || !node.isObject()) throw new IllegalArgumentException(source + " is not a JSON object");
        return (ObjectNode) node;
    }

    /** Gson's pretty printing, trailing newline included. */
    static void writePretty(Path file, JsonNode json) {
        try {
            Files.writeString(file, MAPPER.writer(GSON_PRETTY).writeValueAsString(withoutNullMembers(json)) + "\n",
                    StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** On one line, nulls kept (Gson's {@code JsonElement.toString}). */
    static String compact(JsonNode json) {
        try {
            return MAPPER.writeValueAsString(json);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    static String text(JsonNode n, String field) {
        if (n == null || n.isNull() || n.isContainerNode()) throw notA("a string", field, n);
        return n.asText();
    }

    static int intValue(JsonNode n, String field) {
        if (n != null && n.isNumber()) return n.intValue();
        return Integer.parseInt(text(n, field));
    }

    static long longValue(JsonNode n, String field) {
        if (n != null && n.isNumber()) return n.longValue();
        return Long.parseLong(text(n, field));
    }

    static double doubleValue(JsonNode n, String field) {
        if (n != null && n.isNumber()) return n.doubleValue();
        return Double.parseDouble(text(n, field));
    }

    /** true, or a string that says true; anything else that is no container is false (as Gson read it). */
    static boolean boolValue(JsonNode n, String field) {
        if (n != null && n.isBoolean()) return n.booleanValue();
        return Boolean.parseBoolean(text(n, field));
    }

    private static IllegalArgumentException notA(String kind, String field, JsonNode n) {
        return new IllegalArgumentException(field + " is " + (n == null ? "missing" : "not " + kind + ": " + n));
    }

    private static JsonNode withoutNullMembers(JsonNode json) {
        if (json.isObject()) {
            ObjectNode copy = MAPPER.createObjectNode();
            for (Map.Entry<String, JsonNode> e : json.properties()) {
                if (!e.getValue().isNull()) copy.set(e.getKey(), withoutNullMembers(e.getValue()));
            }
            return copy;
        }
        if (json.isArray()) {
            ArrayNode copy = MAPPER.createArrayNode();
            for (JsonNode e : json) copy.add(withoutNullMembers(e));
            return copy;
        }
        return json;
    }

    /** Gson escapes the line and paragraph separators (JavaScript cannot take them raw); Jackson does not by itself. */
    private static final class LineSeparatorEscapes extends CharacterEscapes {
        private static final int[] ASCII = standardAsciiEscapesForJSON();
        private static final SerializedString LINE = new SerializedString("\\u2028");
        private static final SerializedString PARAGRAPH = new SerializedString("\\u2029");

        @Override
        public int[] getEscapeCodesForAscii() {
            return ASCII;
        }

        @Override
        public SerializableString getEscapeSequence(int ch) {
            return ch == 0x2028 ? LINE : ch == 0x2029 ? PARAGRAPH : null;
        }
    }
}
