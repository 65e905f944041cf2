package org.prefloop.serve;

import java.util.List;

/**
 * The body of OpenAI's legacy {@code POST /v1/completions} after {@link CompletionRequests#parse}
 * checked it. {@code settings} carries the sampling fields it shares with chat (its messages
 * empty); {@code maxTokens} may be 0 (with {@code echo}: score the prompt, generate nothing);
 * {@code logprobs} is null when not asked for, else the alternatives per token.
 */
record CompletionRequest(String model, List<Prompt> prompts, int maxTokens, boolean echo, Integer logprobs,
                         ChatCompletionRequest settings) {

    /** One prompt: a text, or token ids as given. */
    record Prompt(String text, long[] ids) {
    }

    /** Alternatives per token the sampler should report: -1 without {@code logprobs}. */
    int logprobAlternatives() {
        return logprobs == null ? -1 : logprobs;
    }
}
