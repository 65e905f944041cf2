package org.prefloop.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Builds a kustomization the way {@code kubectl kustomize} does, for the subset of kustomize
 * that k8s/ uses: resources (files and directories), namespace, secretGenerator with literals,
 * and patches (JSON 6902 inline or from a file with a target; strategic merge from a file,
 * matched by kind and name). A patch whose target or path does not exist is an error, as it
 * is in kustomize, so a broken overlay fails the test instead of the deployment.
 */
final class Kustomization {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    private Kustomization() {
    }

    static List<ObjectNode> build(Path dir) {
        JsonNode k = readOne(dir.resolve("kustomization.yaml"));
        List<ObjectNode> out = new ArrayList<>();
        for (JsonNode r : k.path("resources")) {
            Path p = dir.resolve(r.asText()).normalize();
            if (Files.isDirectory(p)) out.addAll(build(p));
            else out.addAll(readAll(p));
        }
        for (JsonNode g : k.path("secretGenerator")) {
            ObjectNode secret = YAML.createObjectNode();
            secret.put("apiVersion", "v1").put("kind", "Secret");
            secret.putObject("metadata").put("name", g.path("name").asText());
            ObjectNode data = secret.putObject("stringData");
            for (JsonNode lit : g.path("literals")) {
                String[] kv = lit.asText().split("=", 2);
                data.put(kv[0], kv[1]);
            }
            out.add(secret);
        }
        for (JsonNode patch : k.path("patches")) applyPatch(dir, patch, out);
        if (k.hasNonNull("labels")) {
            for (JsonNode l : k.path("labels")) {
                for (ObjectNode o : out) {
                    ObjectNode labels = metadata(o).with("labels");
                    l.path("pairs").fields().forEachRemaining(e -> labels.set(e.getKey(), e.getValue()));
                }
            }
        }
        if (k.hasNonNull("namespace")) {
            for (ObjectNode o : out) metadata(o).put("namespace", k.path("namespace").asText());
        }
        return out;
    }

    private static void applyPatch(Path dir, JsonNode patch, List<ObjectNode> resources) {
        List<JsonNode> docs = new ArrayList<>();
        if (patch.has("patch")) {
            JsonNode inline = readString(patch.path("patch").asText());
            if (inline.isArray()) inline.forEach(docs::add); else docs.add(inline);
        } else {
            docs.addAll(readAll(dir.resolve(patch.path("path").asText())));
        }
        JsonNode target = patch.path("target");
        if (target.isMissingNode()) {
            // strategic merge: every document names its own target by kind and name
            for (JsonNode doc : docs) {
                String kind = doc.path("kind").asText();
                String name = doc.path("metadata").path("name").asText();
                ObjectNode match = find(resources, kind, name).stream().findFirst().orElseThrow(
                        () -> new IllegalArgumentException("strategic merge patch targets a missing " + kind + "/" + name));
                merge(match, doc);
            }
            return;
        }
        List<ObjectNode> matches = find(resources, target.path("kind").asText(), target.path("name").asText(null));
        if (matches.isEmpty()) throw new IllegalArgumentException("patch target matches nothing: " + target);
        for (ObjectNode m : matches) {
            for (JsonNode op : docs) jsonPatch(m, op);
        }
    }

    private static List<ObjectNode> find(List<ObjectNode> resources, String kind, String name) {
        return resources.stream()
                .filter(r -> r.path("kind").asText().equals(kind))
                .filter(r -> name == null || r.path("metadata").path("name").asText().equals(name))
                .toList();
    }

    private static void merge(ObjectNode into, JsonNode patch) {
        patch.fields().forEachRemaining(e -> {
            JsonNode existing = into.get(e.getKey());
            if (existing instanceof ObjectNode obj && e.getValue().isObject()) merge(obj, e.getValue());
            else into.set(e.getKey(), e.getValue());
        });
    }

    private static void jsonPatch(ObjectNode doc, JsonNode op) {
        String path = op.path("path").asText();
        String[] parts = path.substring(1).split("/");
        JsonNode parent = doc;
        for (int i = 0; i < parts.length - 1; i++) {
            parent = child(parent, unescape(parts[i]));
            if (parent == null || parent.isMissingNode()) throw new IllegalArgumentException("JSON patch path does not exist: " + path);
        }
        String last = unescape(parts[parts.length - 1]);
        switch (op.path("op").asText()) {
            case "replace", "remove" -> {
                if (child(parent, last) == null) throw new IllegalArgumentException("JSON patch path does not exist: " + path);
                if (op.path("op").asText().equals("remove")) remove(parent, last);
                else set(parent, last, op.get("value"));
            }
            case "add" -> set(parent, last, op.get("value"));
            default -> throw new IllegalArgumentException("unsupported JSON patch op: " + op);
        }
    }

    private static JsonNode child(JsonNode node, String key) {
        if (node instanceof ArrayNode a) {
            int i = Integer.parseInt(key);
            return i < a.size() ? a.get(i) : null;
        }
        return node.get(key);
    }

    private static void set(JsonNode parent, String key, JsonNode value) {
        if (parent instanceof ArrayNode a) {
            if (key.equals("-")) a.add(value); else a.set(Integer.parseInt(key), value);
        } else {
            ((ObjectNode) parent).set(key, value);
        }
    }

    private static void remove(JsonNode parent, String key) {
        if (parent instanceof ArrayNode a) a.remove(Integer.parseInt(key));
        else ((ObjectNode) parent).remove(key);
    }

    private static String unescape(String token) {
        return token.replace("~1", "/").replace("~0", "~");
    }

    private static ObjectNode metadata(ObjectNode o) {
        return o.with("metadata");
    }

    static List<ObjectNode> readAll(Path file) {
        try (YAMLParser parser = (YAMLParser) YAML.getFactory().createParser(file.toFile())) {
            List<ObjectNode> docs = new ArrayList<>();
            Iterator<JsonNode> it = YAML.readValues(parser, JsonNode.class);
            while (it.hasNext()) {
                JsonNode n = it.next();
                if (n instanceof ObjectNode o) docs.add(o);
                else if (n instanceof ArrayNode a) a.forEach(x -> docs.add((ObjectNode) x));
            }
            return docs;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot parse " + file, e);
        }
    }

    private static JsonNode readOne(Path file) {
        List<ObjectNode> docs = readAll(file);
        if (docs.size() != 1) throw new IllegalArgumentException(file + ": expected one document");
        return docs.get(0);
    }

    private static JsonNode readString(String yaml) {
        try {
            return YAML.readTree(yaml);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
