package org.prefloop.model;

/**
 * The model's log-probabilities at one position: of the token that came there ({@code token},
 * {@code logprob}), and of the {@code topIds.length} most likely tokens, most likely first (ties
 * by lower id). Natural logarithms of the softmax of the model's logits for the prefix before
 * any penalty, temperature, top-k or top-p, so the numbers describe the model, not the sampling
 * settings of one request.
 */
public record TokenLogprobs(long token, float logprob, long[] topIds, float[] topLogprobs) {
}
