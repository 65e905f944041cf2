package org.prefloop.serve;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/** OpenAI's response shapes for chat completions: the whole answer, and the streamed chunks. */
final class ChatCompletionChunks {
    private ChatCompletionChunks() {
    }

    record Usage(int prompt_tokens, int completion_tokens, int total_tokens) {
        static Usage of(int prompt, int completion) {
            return new Usage(prompt, completion, prompt + completion);
        }
    }

    record AssistantMessage(String role, String content) {
    }

    /** {@code logprobs} is null unless the request asked for them, and then sent as JSON null, as OpenAI does. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Choice(int index, AssistantMessage message, Logprobs.Chat logprobs, String finish_reason) {
    }

    record Completion(String id, String object, long created, String model, List<Choice> choices, Usage usage) {
    }

    @JsonInclude(JsonInclude.Include.NON_NULL)
    record Delta(String role, String content) {
    }

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ChunkChoice(int index, Delta delta, Logprobs.Chat logprobs, String finish_reason) {
    }

    @JsonInclude(JsonInclude.Include.NON_NULL)
    record Chunk(String id, String object, long created, String model, List<ChunkChoice> choices, Usage usage) {
    }
}
