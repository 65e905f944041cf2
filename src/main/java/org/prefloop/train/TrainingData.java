package org.prefloop.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.prefloop.model.ChatTemplate;
import org.prefloop.model.TextTokenizer;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reads TRL's dataset formats from JSON Lines and turns them into token ids with loss masks.
 * <ul>
 *   <li>SFT: {@code {"messages": [...]}} (the chat template renders it; every assistant turn is
 *   scored), {@code {"prompt", "completion"}} (strings or message lists; the completion is
 *   scored) and {@code {"text"}} (plain documents: every token is scored);</li>
 *   <li>DPO: {@code {"prompt", "chosen", "rejected"}}, strings or message lists, with an optional
 *   {@code "weight"}.</li>
 * </ul>
 * Plain-text completions and documents end with the tokenizer's end-of-sequence token, as TRL
 * appends it. An example the template cannot render is counted and left out, never guessed.
 */
public final class TrainingData {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final TextTokenizer tokenizer;
    private final ChatTemplate template;
    private final long eos;

    public TrainingData(TextTokenizer tokenizer, ChatTemplate template) {
        this.tokenizer = tokenizer;
        this.template = template;
        long[] eosIds = tokenizer.eosTokenIds();
        this.eos = eosIds.length > 0 ? eosIds[0] : -1;
    }

    /** Tokenised examples and what could not be used, with every row's raw text (usable or not) for contamination checks. */
    public record Loaded<T>(List<T> examples, List<String> texts, int unrenderable, int truncated, List<String> problems) {
    }

    public static List<JsonNode> readLines(Path file) {
        List<JsonNode> rows = new ArrayList<>();
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int n = 0;
            while ((line = in.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                try {
                    rows.add(JSON.readTree(line));
                } catch (IOException e) {
                    throw new IllegalArgumentException(file + " line " + n + " is not JSON: " + e.getMessage().lines().findFirst().orElse(""));
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage());
        }
        if (rows.isEmpty()) throw new IllegalArgumentException(file + " has no examples");
        return rows;
    }

    public Loaded<SequenceLogProbs.Sequence> sft(List<JsonNode> rows, int maxLength) {
        List<SequenceLogProbs.Sequence> out = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        int unrenderable = 0, truncated = 0;
        for (int i = 0; i < rows.size(); i++) {
            texts.add(rows.get(i).toString());
            try {
                SequenceLogProbs.Sequence s = sft(rows.get(i));
                if (s.length() > maxLength) {
                    truncated++;
                    s = s.truncate(maxLength);
                }
                if (s.scoredTokens() == 0) throw new IllegalArgumentException("nothing left to learn after truncation to max_length " + maxLength);
                out.add(s);
            } catch (IllegalArgumentException | com.hubspot.jinjava.interpret.FatalTemplateErrorsException e) {
                unrenderable++;
                if (problems.size() < 5) problems.add("example " + (i + 1) + ": " + e.getMessage());
            }
        }
        return new Loaded<>(out, texts, unrenderable, truncated, problems);
    }

    public Loaded<DpoTrainer.Pair> preferences(List<JsonNode> rows, int maxLength, Integer maxPromptLength) {
        List<DpoTrainer.Pair> out = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        int unrenderable = 0, truncated = 0;
        for (int i = 0; i < rows.size(); i++) {
            texts.add(String.valueOf(rows.get(i).get("prompt")));
            try {
                DpoTrainer.Pair p = pair(rows.get(i));
                DpoTrainer.Pair t = truncate(p, maxLength, maxPromptLength);
                if (t != p) truncated++;
                out.add(t);
            } catch (IllegalArgumentException | com.hubspot.jinjava.interpret.FatalTemplateErrorsException e) {
                unrenderable++;
                if (problems.size() < 5) problems.add("pair " + (i + 1) + ": " + e.getMessage());
            }
        }
        return new Loaded<>(out, texts, unrenderable, truncated, problems);
    }

    /**
     * KTO's unpaired examples, TRL's unpaired format: {@code prompt}, {@code completion} and a
     * boolean {@code label} (true: desirable). Paired rows ({@code chosen}, {@code rejected}) are
     * unpaired as TRL's KTOTrainer does: the chosen completion desirable, the rejected one not.
     */
    public Loaded<KtoTrainer.Example> unpaired(List<JsonNode> rows, int maxLength) {
        List<KtoTrainer.Example> out = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        int unrenderable = 0, truncated = 0;
        for (int i = 0; i < rows.size(); i++) {
            JsonNode row = rows.get(i);
            texts.add(String.valueOf(row.get("prompt")));
            try {
                List<KtoTrainer.Example> examples = new ArrayList<>();
                if (row.has("chosen") && row.has("rejected") && !row.has("completion")) {
                    DpoTrainer.Pair p = pair(row);
                    examples.add(new KtoTrainer.Example(p.prompt(), p.chosen(), true));
                    examples.add(new KtoTrainer.Example(p.prompt(), p.rejected(), false));
                } else {
                    examples.add(unpaired(row));
                }
                for (KtoTrainer.Example e : examples) {
                    if (e.prompt().length >= maxLength) throw new IllegalArgumentException("the prompt alone fills max_length " + maxLength + " (TRL leaves such examples out too)");
                    if (e.prompt().length + e.completion().length > maxLength) {
                        truncated++;
                        e = new KtoTrainer.Example(e.prompt(), Arrays.copyOf(e.completion(), maxLength - e.prompt().length), e.label());
                    }
                    out.add(e);
                }
            } catch (IllegalArgumentException | com.hubspot.jinjava.interpret.FatalTemplateErrorsException e) {
                unrenderable++;
                if (problems.size() < 5) problems.add("example " + (i + 1) + ": " + e.getMessage());
            }
        }
        return new Loaded<>(out, texts, unrenderable, truncated, problems);
    }

    KtoTrainer.Example unpaired(JsonNode row) {
        for (String f : List.of("prompt", "completion", "label")) {
            if (!row.has(f)) throw new IllegalArgumentException("an unpaired (KTO) example needs \"" + f + "\"");
        }
        if (!row.get("label").isBoolean()) throw new IllegalArgumentException("label must be true (desirable) or false (undesirable)");
        boolean label = row.get("label").asBoolean();
        JsonNode prompt = row.get("prompt");
        if (prompt.isArray()) {
            long[][] pc = conversational(messages(prompt, "prompt"), messages(row.get("completion"), "completion"));
            return new KtoTrainer.Example(pc[0], pc[1], label);
        }
        return new KtoTrainer.Example(tokenizer.encode(text(prompt, "prompt")),
                withEos(tokenizer.encodeContinuation(text(row.get("completion"), "completion"))), label);
    }

    SequenceLogProbs.Sequence sft(JsonNode row) {
        if (row.has("messages")) return conversation(messages(row.get("messages"), "messages"));
        if (row.has("prompt") && row.has("completion")) {
            JsonNode p = row.get("prompt"), c = row.get("completion");
            if (p.isArray()) {
                long[][] pc = conversational(messages(p, "prompt"), messages(c, "completion"));
                return SequenceLogProbs.Sequence.of(pc[0], pc[1]);
            }
            return SequenceLogProbs.Sequence.of(tokenizer.encode(text(p, "prompt")), withEos(tokenizer.encodeContinuation(text(c, "completion"))));
        }
        if (row.has("text")) return SequenceLogProbs.Sequence.text(withEos(tokenizer.encode(text(row.get("text"), "text"))));
        throw new IllegalArgumentException("an SFT example needs \"messages\", \"prompt\" and \"completion\", or \"text\"");
    }

    DpoTrainer.Pair pair(JsonNode row) {
        for (String f : List.of("prompt", "chosen", "rejected")) {
            if (!row.has(f)) throw new IllegalArgumentException("a preference pair needs \"" + f + "\"");
        }
        double weight = row.has("weight") ? row.get("weight").asDouble(Double.NaN) : 1.0;
        if (!(weight >= 0) || Double.isInfinite(weight)) throw new IllegalArgumentException("weight must be a non-negative number");
        JsonNode prompt = row.get("prompt");
        if (prompt.isArray()) {
            List<ChatTemplate.ChatMessage> p = messages(prompt, "prompt");
            long[][] chosen = conversational(p, messages(row.get("chosen"), "chosen"));
            long[][] rejected = conversational(p, messages(row.get("rejected"), "rejected"));
            return new DpoTrainer.Pair(chosen[0], chosen[1], rejected[1], weight);
        }
        return new DpoTrainer.Pair(tokenizer.encode(text(prompt, "prompt")),
                withEos(tokenizer.encodeContinuation(text(row.get("chosen"), "chosen"))),
                withEos(tokenizer.encodeContinuation(text(row.get("rejected"), "rejected"))), weight);
    }

    /**
     * A whole conversation with every assistant turn scored. Turn i's text is what the template
     * emits between the prompt before it (rendered with the generation prompt) and the end of that
     * turn as it reads when the conversation goes on: the conversation is rendered with one more
     * user message, so templates that close every rendering with an assistant header (Llama 3's)
     * score only the turn itself. Nothing after the last assistant turn is kept.
     */
    SequenceLogProbs.Sequence conversation(List<ChatTemplate.ChatMessage> messages) {
        if (messages.stream().noneMatch(m -> m.role().equals("assistant"))) throw new IllegalArgumentException("the conversation has no assistant turn to learn");
        List<ChatTemplate.ChatMessage> extended = new ArrayList<>(messages);
        extended.add(new ChatTemplate.ChatMessage("user", "..."));
        String full = render(extended, false);
        List<int[]> spans = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            if (!messages.get(i).role().equals("assistant")) continue;
            String prompt = render(messages.subList(0, i), true);
            String upTo = render(messages.subList(0, i + 1), false);
            int start = prompt.length();
            if (!full.startsWith(prompt) || (!spans.isEmpty() && start < spans.get(spans.size() - 1)[1])) {
                int at = commonPrefix(full, prompt);
                throw new IllegalArgumentException("the chat template does not render turn " + (i + 1) + " as a continuation of the turns before it"
                        + " (they differ at character " + at + ": '" + snippet(full, at) + "' vs '" + snippet(prompt, at) + "')");
            }
            int end = full.startsWith(upTo) ? upTo.length() : endOfTurn(full, start, commonPrefix(full, upTo));
            if (end <= start) throw new IllegalArgumentException("the chat template renders assistant turn " + (i + 1) + " as nothing");
            spans.add(new int[]{start, end});
        }
        List<Long> ids = new ArrayList<>();
        List<Boolean> mask = new ArrayList<>();
        int at = 0;
        for (int[] span : spans) {
            if (span[0] > at) append(ids, mask, at == 0 ? tokenizer.encode(full.substring(0, span[0])) : tokenizer.encodeContinuation(full.substring(at, span[0])), false);
            append(ids, mask, tokenizer.encodeContinuation(full.substring(span[0], span[1])), true);
            at = span[1];
        }
        long[] idArray = ids.stream().mapToLong(Long::longValue).toArray();
        boolean[] scored = new boolean[mask.size()];
        for (int k = 0; k < scored.length; k++) scored[k] = mask.get(k);
        return new SequenceLogProbs.Sequence(idArray, scored);
    }

    /**
     * Where a turn ends when its rendering and the continued conversation part ways: just after the
     * last special token (end of turn, such as Llama 3's {@code <|eot_id|>}) before that point.
     */
    private int endOfTurn(String full, int start, int limit) {
        int best = -1;
        for (long id : tokenizer.encodeContinuation(full.substring(start, limit))) {
            if (!tokenizer.isSpecial(id)) continue;
            String special = tokenizer.decode(new long[]{id});
            int k = full.lastIndexOf(special, limit - special.length());
            if (k >= start) best = Math.max(best, k + special.length());
        }
        if (best < 0) throw new IllegalArgumentException("cannot tell where an assistant turn ends in the chat template's rendering");
        return best;
    }

    private static void append(List<Long> ids, List<Boolean> mask, long[] part, boolean scored) {
        for (long id : part) {
            ids.add(id);
            mask.add(scored);
        }
    }

    private static int commonPrefix(String a, String b) {
        int n = 0;
        while (n < Math.min(a.length(), b.length()) && a.charAt(n) == b.charAt(n)) n++;
        return n;
    }

    /** {prompt ids, completion ids} of a conversational prompt and its completion turn(s). */
    private long[][] conversational(List<ChatTemplate.ChatMessage> prompt, List<ChatTemplate.ChatMessage> completion) {
        String p = render(prompt, true);
        List<ChatTemplate.ChatMessage> all = new ArrayList<>(prompt);
        all.addAll(completion);
        String full = render(all, false);
        if (!full.startsWith(p)) throw new IllegalArgumentException("the chat template does not render the prompt as a prefix of the conversation");
        return new long[][]{tokenizer.encode(p), tokenizer.encodeContinuation(full.substring(p.length()))};
    }

    /**
     * TRL 1.13's truncation when {@code maxPromptLength} is null: each of prompt+chosen and
     * prompt+rejected keeps its first {@code maxLength} tokens, and a pair whose prompt alone fills
     * {@code maxLength} is left out (TRL drops it: nothing of the completions would be scored).
     * With {@code max_prompt_length}, a key TRL 1.13 no longer has, PrefLoop keeps what earlier TRL
     * releases did: the prompt is cut from the left to that length, then the completions to what
     * {@code maxLength} leaves.
     */
    static DpoTrainer.Pair truncate(DpoTrainer.Pair p, int maxLength, Integer maxPromptLength) {
        int longest = Math.max(p.chosen().length, p.rejected().length);
        if (p.prompt().length + longest <= maxLength) return p;
        long[] prompt = p.prompt();
        if (maxPromptLength != null) {
            int keepPrompt = Math.min(prompt.length, maxPromptLength);
            prompt = Arrays.copyOfRange(prompt, prompt.length - keepPrompt, prompt.length);
        } else if (prompt.length >= maxLength) {
            throw new IllegalArgumentException("the prompt alone fills max_length " + maxLength + " (TRL leaves such pairs out too)");
        }
        int room = maxLength - prompt.length;
        if (room < 1) throw new IllegalArgumentException("max_prompt_length leaves no room for the completion within max_length");
        return new DpoTrainer.Pair(prompt, Arrays.copyOf(p.chosen(), Math.min(room, p.chosen().length)),
                Arrays.copyOf(p.rejected(), Math.min(room, p.rejected().length)), p.weight());
    }

    private static String snippet(String s, int at) {
        return s.substring(Math.max(0, at - 10), Math.min(s.length(), at + 20)).replace("\n", "\\n");
    }

    private String render(List<ChatTemplate.ChatMessage> messages, boolean addGenerationPrompt) {
        if (template == null) throw new IllegalArgumentException("the model has no chat template, so conversations cannot be rendered");
        return template.render(messages, addGenerationPrompt);
    }

    /**
     * Packs sequences, in order, into rows of at most {@code maxLength} tokens, each keeping its own
     * loss mask (attention crosses the boundaries, as in TRL's classic packing).
     */
    public static List<SequenceLogProbs.Sequence> pack(List<SequenceLogProbs.Sequence> sequences, int maxLength) {
        List<SequenceLogProbs.Sequence> rows = new ArrayList<>();
        long[] ids = new long[maxLength];
        boolean[] scored = new boolean[maxLength];
        int used = 0;
        for (SequenceLogProbs.Sequence s : sequences) {
            SequenceLogProbs.Sequence t = s.truncate(maxLength);
            if (used + t.length() > maxLength && used > 1) {
                rows.add(new SequenceLogProbs.Sequence(Arrays.copyOf(ids, used), Arrays.copyOf(scored, used)));
                used = 0;
            }
            System.arraycopy(t.ids(), 0, ids, used, t.length());
            System.arraycopy(t.scored(), 0, scored, used, t.length());
            if (used > 0) scored[used] = false;
            used += t.length();
        }
        if (used > 1) rows.add(new SequenceLogProbs.Sequence(Arrays.copyOf(ids, used), Arrays.copyOf(scored, used)));
        return rows;
    }

    private long[] withEos(long[] ids) {
        if (eos < 0) return ids;
        long[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eos;
        return out;
    }

    static List<ChatTemplate.ChatMessage> messages(JsonNode node, String field) {
        if (node == null || !node.isArray() || node.isEmpty()) throw new IllegalArgumentException("\"" + field + "\" must be a non-empty list of messages");
        List<ChatTemplate.ChatMessage> out = new ArrayList<>();
        for (JsonNode m : node) {
            if (!m.hasNonNull("role") || !m.hasNonNull("content")) throw new IllegalArgumentException("every message in \"" + field + "\" needs role and content");
            out.add(new ChatTemplate.ChatMessage(m.get("role").asText(), m.get("content").asText()));
        }
        return out;
    }

    private static String text(JsonNode node, String field) {
        if (node == null || !node.isTextual()) throw new IllegalArgumentException("\"" + field + "\" must be a string");
        return node.asText();
    }
}
