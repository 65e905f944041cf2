package org.prefloop.serve;

/**
 * A refusal on /v1, answered in OpenAI's error shape ({@link BearerKeyFilter.OpenAiError}) so that
 * OpenAI clients show the message and the parameter it names.
 */
final class OpenAiException extends RuntimeException {
    final int status;
    final String param;
    final String code;

    OpenAiException(int status, String message, String param, String code) {
        super(message);
        this.status = status;
        this.param = param;
        this.code = code;
    }

    static OpenAiException invalid(String param, String code, String message) {
        return new OpenAiException(400, message, param, code);
    }

    String type() {
        return status >= 500 ? "server_error" : status == 429 ? "rate_limit_exceeded" : "invalid_request_error";
    }
}
