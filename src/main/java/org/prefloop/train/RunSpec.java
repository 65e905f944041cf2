package org.prefloop.train;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DatabindException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.BinaryOperator;
import java.util.stream.Collectors;

/**
 * One alignment run, as YAML or JSON: the model, an optional SFT stage ({@link SftConfig}), an
 * optional DPO stage ({@link DpoConfig}) or KTO stage ({@link KtoConfig}), each with the shared {@link TrainingArguments}, and a
 * seed. Keys carry the names of TRL's {@code SFTConfig}/{@code DPOConfig} and PEFT's
 * {@code LoraConfig}, so a team's settings carry over, and mean what they mean there.
 *
 * <p>Parsed once ({@link #parse}, {@link #of}) into an immutable value; a stage's keys are split
 * between the shared arguments and the stage's own, so a key of the other stage
 * ({@code sft: {beta: 1}}) is an error naming {@code sft.beta}. Settings TRL knows but the DJL
 * trainer does not apply (mixed precision, logging back-ends, ...) are kept aside in
 * {@link #trlOnly} (the pre-flight lists them, the TRL executor applies them); anything else is an
 * error naming the key, so a typo cannot pass silently. Resolving paths ({@code version:ID},
 * {@code dataset:ID}, relative files) makes a new spec through {@link #withPaths}.
 *
 * @param trlOnly TRL settings without effect in the DJL trainer, by their dotted key ({@code sft.bf16}, {@code report_to})
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RunSpec(
        String name,
        /* a Hugging Face directory (relative paths resolve against the spec's directory) */
        String modelNameOrPath,
        String outputDir,
        Long seed,
        /* PrefLoop's own: where the run executes, djl (the built-in trainer), trl or kubeflow; unset: the worker's default */
        String executor,
        /* accelerate's distributed set-up for the trl and kubeflow executors (processes, machines, DDP/FSDP/DeepSpeed) */
        Accelerate accelerate,
        /* PrefLoop's own: general-domain examples (SFT formats) whose loss before and after the run is the forgetting report */
        String forgettingDataset,
        SftConfig sft,
        DpoConfig dpo,
        /* KTO on unpaired thumbs (TRL's KTOTrainer), instead of a dpo stage */
        KtoConfig kto,
        Map<String, JsonNode> trlOnly) {

    /** The executors a spec may name (see the README's Executors section). */
    public static final List<String> EXECUTORS = List.of("djl", "trl", "kubeflow");

    /** TRL/transformers settings that are accepted but have no effect in the DJL trainer. */
    static final Set<String> IGNORED_TRL_KEYS = Set.of("bf16", "fp16", "tf32", "report_to", "logging_dir", "run_name",
            "push_to_hub", "hub_model_id", "dataloader_num_workers", "optim", "save_total_limit",
            "eval_strategy", "evaluation_strategy", "save_strategy", "logging_strategy", "remove_unused_columns",
            "dataset_text_field", "model_init_kwargs", "ref_model_init_kwargs", "use_liger_kernel", "task_type", "bias");

    /** The keys naming files: resolved by {@link #withPaths}, relative to the spec's directory. */
    public static final List<String> PATH_KEYS = List.of("model_name_or_path", "sft.dataset", "sft.eval_dataset", "sft.replay_dataset",
            "dpo.dataset", "dpo.eval_dataset", "kto.dataset", "kto.eval_dataset", "forgetting_dataset", "output_dir");

    /** Binds the records; the naming strategy on each record spells the keys. */
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .defaultPropertyInclusion(JsonInclude.Value.construct(JsonInclude.Include.NON_NULL, JsonInclude.Include.NON_NULL)).build();
    private static final ObjectMapper YAML = new YAMLMapper();
    static final TrainingArguments DEFAULT_TRAINING = MAPPER.convertValue(Map.of(), TrainingArguments.class);

    private static final String TRAINING = "training";
    private static final PropertyNamingStrategies.SnakeCaseStrategy SNAKE = new PropertyNamingStrategies.SnakeCaseStrategy();
    private static final Set<String> TOP_KEYS = keys(RunSpec.class, "sft", "dpo", "kto", "trl_only");
    private static final Set<String> TRAINING_KEYS = keys(TrainingArguments.class);
    private static final Set<String> SFT_KEYS = keys(SftConfig.class, TRAINING);
    private static final Set<String> DPO_KEYS = keys(DpoConfig.class, TRAINING);
    private static final Set<String> KTO_KEYS = keys(KtoConfig.class, TRAINING);

    public RunSpec {
        name = TrainingArguments.or(name, "run");
        outputDir = TrainingArguments.or(outputDir, "runs/run");
        seed = TrainingArguments.or(seed, 42L);
        trlOnly = trlOnly == null ? Map.of() : java.util.Collections.unmodifiableMap(new TreeMap<>(trlOnly)); // sorted: written out the same way every time
    }

    public static RunSpec read(Path file) {
        try {
            return parse(Files.readString(file));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the run spec " + file + ": " + e.getMessage());
        }
    }

    /** Parses YAML (JSON is YAML too) and checks it; a problem is an IllegalArgumentException naming the key. */
    public static RunSpec parse(String text) {
        JsonNode tree;
        try {
            tree = YAML.readTree(text);
        } catch (IOException e) {
            String msg = e.getMessage();
            throw new IllegalArgumentException("the run spec is not valid: " + (msg == null ? e : msg.lines().findFirst().orElse(msg)));
        }
        return of(tree);
    }

    /** Binds a spec already read as a tree (flat stages, as written) and checks it. */
    public static RunSpec of(JsonNode tree) {
        if (tree == null || tree.isNull() || tree.isMissingNode()) throw new IllegalArgumentException("the run spec is empty");
        if (!(tree instanceof ObjectNode flat)) throw new IllegalArgumentException("the run spec must be a mapping of settings");
        Map<String, JsonNode> trlOnly = new TreeMap<>();
        List<String> unknown = new ArrayList<>();
        List<String> misplaced = new ArrayList<>();
        ObjectNode nested = MAPPER.createObjectNode();
        flat.properties().forEach(e -> {
            String k = e.getKey();
            if (k.equals("sft") || k.equals("dpo") || k.equals("kto")) {
                if (!e.getValue().isNull()) nested.set(k, nest(k, e.getValue(), trlOnly, unknown, misplaced));
            } else if (TOP_KEYS.contains(k)) {
                nested.set(k, e.getValue());
            } else if (IGNORED_TRL_KEYS.contains(k)) {
                trlOnly.put(k, e.getValue());
            } else {
                unknown.add(k);
            }
        });
        if (!unknown.isEmpty()) throw new IllegalArgumentException("unknown setting " + String.join(", ", unknown) + " in the run spec");
        if (!misplaced.isEmpty()) throw new IllegalArgumentException(String.join("; ", misplaced));
        nested.set("trl_only", MAPPER.valueToTree(trlOnly));
        RunSpec spec = bind(nested);
        spec.validate();
        return spec;
    }

    /** Splits a stage's flat keys into the shared arguments ({@code training}) and the stage's own. */
    private static ObjectNode nest(String stage, JsonNode flat, Map<String, JsonNode> trlOnly, List<String> unknown, List<String> misplaced) {
        if (!(flat instanceof ObjectNode settings)) throw new IllegalArgumentException(stage + " must be a mapping of settings");
        Set<String> own = stage.equals("sft") ? SFT_KEYS : stage.equals("dpo") ? DPO_KEYS : KTO_KEYS;
        Set<String> other = stage.equals("sft") ? DPO_KEYS : SFT_KEYS;
        String otherStage = stage.equals("sft") ? "dpo" : "sft";
        ObjectNode out = MAPPER.createObjectNode();
        ObjectNode training = out.putObject(TRAINING);
        settings.properties().forEach(e -> {
            String k = e.getKey();
            if (own.contains(k)) out.set(k, e.getValue());
            else if (TRAINING_KEYS.contains(k)) training.set(k, e.getValue());
            else if (other.contains(k)) misplaced.add(stage + "." + k + " is a setting of the " + otherStage + " stage (TRL's "
                    + (otherStage.equals("sft") ? "SFTConfig" : "DPOConfig") + "); the " + stage + " stage does not take it");
            else if (IGNORED_TRL_KEYS.contains(k)) trlOnly.put(stage + "." + k, e.getValue());
            else unknown.add(stage + "." + k);
        });
        return out;
    }

    private static RunSpec bind(ObjectNode nested) {
        try {
            return MAPPER.treeToValue(nested, RunSpec.class);
        } catch (DatabindException e) {
            String at = ((JsonMappingException) e).getPath().stream().map(JsonMappingException.Reference::getFieldName)
                    .filter(f -> f != null && !f.equals(TRAINING)).collect(Collectors.joining("."));
            String msg = e.getOriginalMessage() == null ? e.toString() : e.getOriginalMessage().lines().findFirst().orElse("");
            throw new IllegalArgumentException("the run spec is not valid: " + (at.isEmpty() ? "" : at + ": ") + msg);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("the run spec is not valid: " + e.getOriginalMessage());
        }
    }

    void validate() {
        require(modelNameOrPath != null && !modelNameOrPath.isBlank(), "model_name_or_path is required");
        require(sft != null || dpo != null || kto != null, "a run needs an sft stage, a dpo or kto stage, or both");
        require(dpo == null || kto == null, "a run has a dpo stage or a kto stage, not both");
        require(kto == null || !"trl".equals(executor), "executor trl does not run a kto stage yet; use executor djl");
        require(executor == null || EXECUTORS.contains(executor), "executor must be one of " + String.join(", ", EXECUTORS) + ", not '" + executor + "'");
        if (accelerate != null) {
            accelerate.validate();
            require(!"djl".equals(executor), "accelerate: the djl executor trains in one process; use executor: trl or kubeflow");
        }
        if (sft != null) sft.validate();
        if (dpo != null) dpo.validate();
        if (kto != null) kto.validate();
    }

    /**
     * A copy with each file key ({@link #PATH_KEYS}) that is set replaced by {@code resolve(key, value)}
     * (returning null leaves it unset); this spec is left as it was.
     */
    public RunSpec withPaths(BinaryOperator<String> resolve) {
        ObjectNode tree = MAPPER.valueToTree(this);
        for (String key : PATH_KEYS) {
            String[] at = key.split("\\.");
            ObjectNode holder = tree;
            if (at.length == 2) {
                if (!(tree.get(at[0]) instanceof ObjectNode stage)) continue;
                holder = TRAINING_KEYS.contains(at[1]) ? (ObjectNode) stage.get(TRAINING) : stage;
            }
            String field = at[at.length - 1];
            JsonNode value = holder.get(field);
            if (value == null || value.isNull()) continue;
            String resolved = resolve.apply(key, value.asText());
            if (resolved == null) holder.remove(field);
            else holder.put(field, resolved);
        }
        return bind(tree);
    }

    /**
     * This spec as the server will run it: with {@code executor} (the server's PREFLOOP_EXECUTOR)
     * filled in where the spec names none, so checks that differ by executor judge the right one.
     */
    public RunSpec withDefaultExecutor(String executor) {
        if (this.executor != null) return this;
        ObjectNode tree = MAPPER.valueToTree(this);
        tree.put("executor", executor);
        return bind(tree);
    }

    /** A copy with one file key ({@link #PATH_KEYS}) that is set replaced by {@code value}. */
    public RunSpec withPath(String key, String value) {
        require(PATH_KEYS.contains(key), key + " is not a file key of the run spec");
        return withPaths((k, v) -> k.equals(key) ? value : v);
    }

    /** The settings given without effect here, by dotted key (listed by the pre-flight report). */
    public List<String> ignoredSettings() {
        return trlOnly.keySet().stream().sorted().toList(); // trlOnly is a Map.copyOf: no stable order of its own
    }

    /** The spec as written: stages flat, as TRL's configs are, without the TRL-only settings. */
    public ObjectNode toTree() {
        ObjectNode tree = MAPPER.valueToTree(this);
        tree.remove("trl_only");
        for (String stage : List.of("sft", "dpo", "kto")) {
            if (tree.get(stage) instanceof ObjectNode s && s.remove(TRAINING) instanceof ObjectNode training) {
                ObjectNode flat = training.deepCopy();
                flat.setAll(s);
                tree.set(stage, flat);
            }
        }
        return tree;
    }

    public String toJson() {
        return toTree().toString();
    }

    /** The TRL-only settings given under one stage ({@code sft}, {@code dpo}), by their key there. */
    public Map<String, JsonNode> trlOnly(String stage) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        trlOnly.forEach((k, v) -> {
            if (k.startsWith(stage + ".")) out.put(k.substring(stage.length() + 1), v);
        });
        return out;
    }

    static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    /** An unmodifiable copy; a null element (YAML's {@code [a, ~]}) is refused. */
    static <T> List<T> immutable(List<T> list) {
        if (list.stream().anyMatch(java.util.Objects::isNull)) throw new IllegalArgumentException("a list must not contain null");
        return List.copyOf(list);
    }

    /** The keys a record binds: its components' names as the naming strategy spells them. */
    private static Set<String> keys(Class<? extends Record> type, String... except) {
        Set<String> out = new java.util.HashSet<>();
        for (var c : type.getRecordComponents()) out.add(SNAKE.translate(c.getName()));
        Arrays.asList(except).forEach(out::remove);
        return Set.copyOf(out);
    }
}
