package org.prefloop.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.smallrye.common.annotation.Blocking;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.platform.FileRoots;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Settings;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;

/**
 * vLLM's run-time LoRA API on PrefLoop's own serve role: {@code POST /v1/load_lora_adapter
 * {lora_name, lora_path}} and {@code POST /v1/unload_lora_adapter {lora_name}}, with vLLM's
 * answers (200 with a line of text; 400 when the name is taken or the adapter is unusable, 404
 * when the name is not loaded), so that PrefLoop can stand where vLLM would
 * ({@link ServingBackend}). Off unless {@code prefloop.serve.runtime-lora-updating} is true (vLLM
 * asks for {@code VLLM_ALLOW_RUNTIME_LORA_UPDATING} likewise), and then an API key is needed as
 * for all of /v1. The path must lie under the configured file roots ({@link FileRoots}).
 */
@Path("/v1")
public class RuntimeAdapterResource {
    @Inject
    ModelHost host;
    @Inject
    FileRoots roots;
    @Inject
    ObjectMapper json;
    @Inject
    Settings settings;

    @POST
    @Path("/load_lora_adapter")
    @Blocking // reads and maps the adapter's weights
    @Consumes(MediaType.WILDCARD)
    public Response load(String body) {
        try {
            JsonNode request = parse(body);
            String name = text(request, "lora_name");
            String given = text(request, "lora_path");
            java.nio.file.Path dir;
            try {
                dir = roots.resolve("lora_path", given);
            } catch (ProblemException e) {
                throw OpenAiException.invalid("lora_path", "invalid_value", e.getMessage());
            }
            if (!Files.isRegularFile(dir.resolve("adapter_config.json"))) {
                throw OpenAiException.invalid("lora_path", "invalid_value", "no PEFT adapter (adapter_config.json) at " + given);
            }
            boolean added;
            try {
                added = host.loadAdapter(name, dir);
            } catch (IllegalArgumentException | UncheckedIOException e) {
                throw OpenAiException.invalid("lora_path", "invalid_value", "the adapter at " + given + " cannot be loaded: " + e.getMessage());
            } catch (IllegalStateException e) {
                throw new OpenAiException(503, e.getMessage(), null, null);
            }
            if (!added) throw OpenAiException.invalid("lora_name", "invalid_value", "The lora adapter '" + name + "' has already been loaded.");
            return Response.ok("Success: LoRA adapter '" + name + "' added successfully.", MediaType.TEXT_PLAIN).build();
        } catch (OpenAiException e) {
            return ChatCompletionsResource.openAiError(e);
        }
    }

    @POST
    @Path("/unload_lora_adapter")
    @Consumes(MediaType.WILDCARD)
    public Response unload(String body) {
        try {
            String name = text(parse(body), "lora_name");
            if (!host.unloadAdapter(name)) {
                throw new OpenAiException(404, "The lora adapter '" + name + "' cannot be found.", "lora_name", "model_not_found");
            }
            return Response.ok("Success: LoRA adapter '" + name + "' removed successfully.", MediaType.TEXT_PLAIN).build();
        } catch (OpenAiException e) {
            return ChatCompletionsResource.openAiError(e);
        }
    }

    private JsonNode parse(String body) {
        if (!settings.serve().runtimeLoraUpdating()) {
            throw new OpenAiException(404, "run-time LoRA updating is off on this service (prefloop.serve.runtime-lora-updating)", null, "not_found");
        }
        try {
            JsonNode tree = json.readTree(body == null ? "" : body);
            if (tree == null || !tree.isObject()) throw OpenAiException.invalid(null, "invalid_json", "the body must be a JSON object");
            return tree;
        } catch (IOException e) {
            throw OpenAiException.invalid(null, "invalid_json", "the body is not valid JSON");
        }
    }

    private static String text(JsonNode request, String field) {
        JsonNode v = request.get(field);
        if (v == null || !v.isTextual() || v.asText().isBlank()) throw OpenAiException.invalid(field, "invalid_value", field + " (a non-empty string) is required");
        return v.asText();
    }
}
