package org.prefloop.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Llama-family decoder (Llama 2/3, Mistral, Qwen2, Qwen3, SmolLM) written with DJL NDArray
 * operations so that autograd runs through it: embedding, then per layer RMSNorm, grouped-query
 * attention with rotary positions, RMSNorm, SwiGLU MLP, each with a residual; a final RMSNorm; and
 * the LM head. It follows Hugging Face's LlamaModel term by term so that checkpoints load as they are.
 *
 * <p>Scalars inside the graph are arrays owned by this model's manager, never Java numbers: DJL
 * wraps a number in a tensor over a Java buffer that the GC may free while autograd still holds it.
 */
public final class LlamaModel implements AutoCloseable {
    // finite, so that a row with nothing to attend to (left padding) stays NaN-free
    private static final float MASK_PENALTY = 1e9f;
    private static final long SOFTMAX_INLINE_LIMIT = 32768; // ATen's parallel grain size

    private final ModelConfig config;
    private final NDManager manager;
    private final Map<String, NDArray> parameters;
    private final NDArray epsilon;
    private final NDArray attentionScale;
    private final NDArray one;
    private final NDArray maskPenalty;
    private final double[] inverseFrequencies;
    private NDArray cosTable; // [positions, headDim]
    private NDArray sinTable; // [positions, headDim]: [-sin, sin], the sign of rotate_half folded in (see rope)
    private volatile ProjectionHook hook;
    private volatile boolean gradientCheckpointing;
    private volatile int decodeMatmulThreads = WideMatmul.DEFAULT_THREADS;

    private LlamaModel(ModelConfig config, NDManager manager, Map<String, NDArray> parameters) {
        this.config = config;
        this.manager = manager;
        this.parameters = Collections.unmodifiableMap(parameters);
        this.epsilon = manager.create((float) config.rmsNormEps());
        this.attentionScale = manager.create((float) (1.0 / Math.sqrt(config.headDim())));
        this.one = manager.create(1f);
        this.maskPenalty = manager.create(MASK_PENALTY);
        this.inverseFrequencies = inverseFrequencies(config);
    }

    /** Loads onto the first GPU when the PyTorch engine sees one, else the CPU. */
    public static LlamaModel load(Path hfDir) {
        return load(hfDir, Engine.getEngine("PyTorch").defaultDevice());
    }

    /** Loads {@code config.json} and the weights (single file or sharded) of a Hugging Face directory. */
    public static LlamaModel load(Path hfDir, Device device) {
        ModelConfig config = ModelConfig.read(hfDir.resolve("config.json"));
        Map<String, Safetensors.Stored> stored = new HashMap<>();
        for (Path file : weightFiles(hfDir)) stored.putAll(Safetensors.index(file));
        NDManager manager = NDManager.newBaseManager(device);
        try {
            Map<String, NDArray> params = new LinkedHashMap<>();
            for (Map.Entry<String, Shape> e : expectedShapes(config).entrySet()) {
                Safetensors.Stored t = stored.get(e.getKey());
                if (t == null) throw new IllegalArgumentException("checkpoint " + hfDir + " has no tensor " + e.getKey());
                if (!t.djlShape().equals(e.getValue())) {
                    throw new IllegalArgumentException("tensor " + e.getKey() + " has shape " + t.djlShape()
                            + " but the config needs " + e.getValue());
                }
                params.put(e.getKey(), loadTensor(t, manager));
            }
            return new LlamaModel(config, manager, params);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * Builds a model from arrays that already exist (a test, or weights computed in memory). The
     * arrays are copied into this model's manager.
     */
    public static LlamaModel of(ModelConfig config, Map<String, NDArray> weights, Device device) {
        NDManager manager = NDManager.newBaseManager(device);
        Map<String, NDArray> params = new LinkedHashMap<>();
        for (Map.Entry<String, Shape> e : expectedShapes(config).entrySet()) {
            NDArray w = weights.get(e.getKey());
            if (w == null || !w.getShape().equals(e.getValue())) {
                manager.close();
                throw new IllegalArgumentException("tensor " + e.getKey() + (w == null ? " is missing" : " has shape "
                        + w.getShape() + " but the config needs " + e.getValue()));
            }
            NDArray copy = w.toType(DataType.FLOAT32, true).toDevice(device, true);
            copy.attach(manager);
            params.put(e.getKey(), copy);
        }
        return new LlamaModel(config, manager, params);
    }

    /** Largest float32 block copied in one piece: a ByteBuffer, and DJL's create from one, stop at 2 GiB. */
    static long loadBlockBytes = 1L << 30;

    /**
     * One stored tensor as a torch-owned float32 array, mapped, copied into torch's memory (through
     * a float32 scratch for bf16) and released at once: left to the garbage collector,
     * the whole file's pages and the scratch stayed resident (0.65 GB more through training on the
     * SmolLM2-135M shape). A tensor larger than {@link #loadBlockBytes} as float32 (Llama 3 8B's
     * embedding: 2.1 GB) is filled a block of rows at a time.
     */
    private static NDArray loadTensor(Safetensors.Stored t, NDManager manager) {
        long rows = t.shape().length == 0 ? 1 : t.shape()[0];
        long rowBytes = 4 * (t.size() / Math.max(1, rows));
        long perBlock = Math.max(1, loadBlockBytes / Math.max(1, rowBytes));
        if (perBlock >= rows) {
            try (OffHeap memory = OffHeap.open()) {
                return t.map(memory).toNDArray(manager, memory);
            }
        }
        NDArray whole = manager.create(t.djlShape(), DataType.FLOAT32);
        for (long from = 0; from < rows; from += perBlock) {
            long to = Math.min(rows, from + perBlock);
            try (OffHeap memory = OffHeap.open(); NDManager block = manager.newSubManager()) {
                whole.set(new NDIndex(from + ":" + to), t.rows(from, to).map(memory).toNDArray(block, memory));
            }
        }
        return whole;
    }

    static List<Path> weightFiles(Path hfDir) {
        Path index = hfDir.resolve("model.safetensors.index.json");
        Path single = hfDir.resolve("model.safetensors");
        if (Files.exists(index)) {
            JsonNode map = HfJson.readObject(index).get("weight_map");
            if (map == null || !map.isObject()) throw new IllegalArgumentException(index + " has no weight_map");
            return map.properties().stream().map(e -> HfJson.text(e.getValue(), "weight_map." + e.getKey())).distinct().sorted()
                    .map(hfDir::resolve).toList();
        }
        if (Files.exists(single)) return List.of(single);
        throw new IllegalArgumentException(hfDir + " has neither model.safetensors nor model.safetensors.index.json");
    }

    /** Every weight the config implies, by Hugging Face name, in a stable order. */
    static Map<String, Shape> expectedShapes(ModelConfig c) {
        Map<String, Shape> s = new LinkedHashMap<>();
        long h = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        s.put("model.embed_tokens.weight", new Shape(c.vocabSize(), h));
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            s.put(p + "input_layernorm.weight", new Shape(h));
            s.put(p + "self_attn.q_proj.weight", new Shape(q, h));
            s.put(p + "self_attn.k_proj.weight", new Shape(kv, h));
            s.put(p + "self_attn.v_proj.weight", new Shape(kv, h));
            if (c.qkvBias()) {
                s.put(p + "self_attn.q_proj.bias", new Shape(q));
                s.put(p + "self_attn.k_proj.bias", new Shape(kv));
                s.put(p + "self_attn.v_proj.bias", new Shape(kv));
            }
            if (c.qkNorm()) {
                s.put(p + "self_attn.q_norm.weight", new Shape(c.headDim()));
                s.put(p + "self_attn.k_norm.weight", new Shape(c.headDim()));
            }
            s.put(p + "self_attn.o_proj.weight", new Shape(h, q));
            if (c.outputBias()) s.put(p + "self_attn.o_proj.bias", new Shape(h));
            s.put(p + "post_attention_layernorm.weight", new Shape(h));
            s.put(p + "mlp.gate_proj.weight", new Shape(c.intermediateSize(), h));
            s.put(p + "mlp.up_proj.weight", new Shape(c.intermediateSize(), h));
            s.put(p + "mlp.down_proj.weight", new Shape(h, c.intermediateSize()));
        }
        s.put("model.norm.weight", new Shape(h));
        if (!c.tieWordEmbeddings()) s.put("lm_head.weight", new Shape(c.vocabSize(), h));
        return s;
    }

    public ModelConfig config() {
        return config;
    }

    public NDManager manager() {
        return manager;
    }

    /** The arrays forward uses, by Hugging Face name; set requiresGradient on the ones to train. */
    public Map<String, NDArray> parameters() {
        return parameters;
    }

    public void setProjectionHook(ProjectionHook hook) {
        this.hook = hook;
    }

    public ProjectionHook projectionHook() {
        return hook;
    }

    /**
     * Intra-op threads for the large linear products (projections, LM head) when the engine runs
     * fewer, as decode steps do; 1: none raised. See {@link WideMatmul}.
     */
    public void setDecodeMatmulThreads(int threads) {
        if (threads <= 0) throw new IllegalArgumentException("decode matmul threads must be positive, got " + threads);
        this.decodeMatmulThreads = threads;
    }

    public int decodeMatmulThreads() {
        return decodeMatmulThreads;
    }

    /** A cache for {@code batch} sequences of up to {@code capacity} tokens each. */
    public KvCache newCache(int batch, int capacity) {
        return new KvCache(manager, config, batch, capacity, DataType.FLOAT32);
    }

    /**
     * Final-normed hidden states [B,T,H] of {@code inputIds} [B,T] (int64). {@code attentionMask}
     * [B,T] marks real tokens with 1 and padding with 0 (null: all real); padding may sit on either
     * side. Positions count real tokens only, as Hugging Face does for left-padded batches. With a
     * cache, the tokens continue the cached ones and their keys/values are appended to it.
     * Intermediate arrays belong to the input's manager; call it inside an {@link NDScope} (or close
     * the input's manager) so native memory stays flat. With gradient mode off each layer's
     * temporaries are closed when the layer ends, including arrays a projection hook creates there:
     * a hook keeps what it caches outside the call (or unregisters it from the scope).
     */
    public NDArray hidden(NDArray inputIds, NDArray attentionMask, KvCache cache) {
        return hidden(inputIds, attentionMask, cache, hook);
    }

    /**
     * As {@link #hidden(NDArray, NDArray, KvCache)}, with {@code projectionHook} (null: none) in
     * place of the model's own hook for this call only: a batch whose rows run different adapters
     * passes its per-row hook here without touching the model's shared state.
     */
    public NDArray hidden(NDArray inputIds, NDArray attentionMask, KvCache cache, ProjectionHook projectionHook) {
        return hidden(inputIds, attentionMask, cache, projectionHook, null);
    }

    /**
     * As {@link #hidden(NDArray, NDArray, KvCache, ProjectionHook)}, running {@code betweenLayers}
     * (null: nothing) after every decoder layer but the last. It may run other forward passes of
     * this model, on caches and arrays of their own; this pass's arrays and cache are left alone.
     */
    public NDArray hidden(NDArray inputIds, NDArray attentionMask, KvCache cache, ProjectionHook projectionHook, Runnable betweenLayers) {
        long[] dims = inputIds.getShape().getShape();
        if (dims.length != 2) throw new IllegalArgumentException("inputIds must be [batch, tokens], got " + inputIds.getShape());
        int b = (int) dims[0];
        int t = (int) dims[1];
        if (cache != null && cache.batchSize() != b) {
            throw new IllegalArgumentException("cache holds " + cache.batchSize() + " sequences, input has " + b);
        }
        NDArray ids = inputIds.getDataType() == DataType.INT64 ? inputIds : inputIds.toType(DataType.INT64, false);
        NDArray newMask = attentionMask != null ? attentionMask.toType(DataType.FLOAT32, false)
                : ids.onesLike().toType(DataType.FLOAT32, false);
        int past = cache == null ? 0 : cache.length();
        NDArray fullMask = cache == null ? newMask : cache.appendMask(newMask, t); // [B, S]
        int s = past + t;

        // positions: count of real tokens before each one; padding gets position 0 (it is masked anyway)
        NDArray positions = fullMask.cumSum(1).sub(one).maximum(zeroLike(fullMask)).toType(DataType.INT64, false);
        if (past > 0) positions = positions.get(new NDIndex(":, {}:", past));
        ensureRope(s + 1);
        NDArray cos = Embedding.embedding(positions, cosTable, SparseFormat.DENSE).singletonOrThrow().expandDims(1); // [B,1,T,hd]
        NDArray sin = Embedding.embedding(positions, sinTable, SparseFormat.DENSE).singletonOrThrow().expandDims(1);

        // additive mask [B,1,1,T,S]: causal (and windowed) and only real keys
        NDManager local = ids.getManager();
        NDArray col = local.arange(0, s, 1, DataType.INT64).reshape(1, s);
        NDArray row = local.arange(past, s, 1, DataType.INT64).reshape(t, 1);
        NDArray allowed = col.lte(row);
        if (config.slidingWindow() > 0) {
            NDArray window = local.create((long) config.slidingWindow());
            allowed = allowed.logicalAnd(col.gt(row.sub(window)));
        }
        allowed = allowed.expandDims(0).logicalAnd(fullMask.reshape(b, 1, s).gt(zeroLike(fullMask)));
        NDArray additive = allowed.toType(DataType.FLOAT32, false).sub(one).mul(maskPenalty).reshape(b, 1, 1, t, s);

        NDArray x = Embedding.embedding(ids, parameters.get("model.embed_tokens.weight"), SparseFormat.DENSE).singletonOrThrow();
        if (gradientCheckpointing && cache == null && JniUtils.isGradMode()) return checkpointed(x, cos, sin, additive, b, t, s, projectionHook);
        // Each layer gets its own scope, and only its output leaves it. Without gradients nothing
        // needs the rest once the layer is done. With gradients, closing a DJL array drops only its
        // handle's reference to the tensor: what autograd saved for backward it holds itself, so the
        // layer's other arrays are freed now, as PyTorch's eager mode frees them, instead of all
        // layers' arrays living until the step's scope closes. (The property keeps them for tests
        // and memory comparisons; cos/sin/mask belong to the caller's scope and stay.)
        boolean inference = !JniUtils.isGradMode();
        boolean layerScopes = inference || !Boolean.getBoolean("prefloop.train.keepLayerArrays");
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            NDScope layerScope = layerScopes ? new NDScope() : null;
            NDArray layerInput = x;
            x = layer(i, x, cos, sin, additive, cache, b, t, s, projectionHook);
            if (layerScope != null) {
                NDScope.unregister(x);
                layerScope.close();
                NDScope.register(x); // back into the caller's scope, if any
                layerInput.close();
            }
            if (betweenLayers != null && i + 1 < config.numHiddenLayers()) betweenLayers.run();
        }
        if (cache != null) cache.advance(t);
        return rmsNorm(x, parameters.get("model.norm.weight"));
    }

    /** One decoder layer: attention and MLP, each after an RMSNorm and with a residual. */
    private NDArray layer(int i, NDArray x, NDArray cos, NDArray sin, NDArray additive, KvCache cache, int b, int t, int s, ProjectionHook projectionHook) {
        String p = "model.layers." + i + ".";
        NDArray h = rmsNorm(x, parameters.get(p + "input_layernorm.weight"));
        x = x.add(attention(i, p, h, cos, sin, additive, cache, b, t, s, projectionHook));
        h = rmsNorm(x, parameters.get(p + "post_attention_layernorm.weight"));
        NDArray gate = project(p + "mlp.gate_proj", h, projectionHook);
        NDArray up = project(p + "mlp.up_proj", h, projectionHook);
        return x.add(project(p + "mlp.down_proj", silu(gate).mul(up), projectionHook));
    }

    // ---- training side: activation checkpointing (gradient_checkpointing) ----

    /**
     * With gradient checkpointing on, a forward pass that records gradients keeps only each decoder
     * layer's input instead of every intermediate of every layer; {@link #backwardCheckpoints}
     * then recomputes the layers one at a time, last first, to push the gradient through them.
     * DJL has no checkpoint operator, so the graph is cut by hand at the layer boundaries.
     */
    public void setGradientCheckpointing(boolean on) {
        this.gradientCheckpointing = on;
    }

    public boolean gradientCheckpointing() {
        return gradientCheckpointing;
    }

    /** What the recomputation of one checkpointed forward pass needs. */
    private record Checkpoints(NDArray embedded, List<NDArray> inputs, NDArray top, long seed,
                               NDArray cos, NDArray sin, NDArray additive, int b, int t, int s, ProjectionHook projectionHook) {
    }

    private final List<Checkpoints> pendingCheckpoints = new ArrayList<>();

    /**
     * The layers run with gradients off, each in its own scope, keeping only their inputs; the last
     * layer's output becomes a leaf that records, so the caller's loss can be back-propagated to it.
     * Torch's generator is reseeded per layer (from a seed drawn off it, so a seeded step stays
     * reproducible) and again before that layer's recomputation: dropout in a projection hook then
     * draws the same mask twice, as PyTorch's checkpoint does by saving the RNG state.
     */
    private NDArray checkpointed(NDArray embedded, NDArray cos, NDArray sin, NDArray additive, int b, int t, int s, ProjectionHook projectionHook) {
        long seed;
        try (NDArray draw = manager.randomUniform(0, 1, new Shape(1))) {
            seed = (long) (draw.getFloat() * (1 << 30));
        }
        List<NDArray> inputs = new ArrayList<>(config.numHiddenLayers());
        NDArray x = embedded.stopGradient();
        JniUtils.setGradMode(false);
        try {
            for (int i = 0; i < config.numHiddenLayers(); i++) {
                inputs.add(x);
                Engine.getInstance().setRandomSeed((int) (seed + i));
                try (NDScope layerScope = new NDScope()) {
                    x = layer(i, x, cos, sin, additive, null, b, t, s, projectionHook);
                    NDScope.unregister(x);
                }
                NDScope.register(x);
            }
        } finally {
            JniUtils.setGradMode(true);
        }
        x.setRequiresGradient(true);
        pendingCheckpoints.add(new Checkpoints(embedded, inputs, x, seed, cos, sin, additive, b, t, s, projectionHook));
        return rmsNorm(x, parameters.get("model.norm.weight"));
    }

    /**
     * Completes the backward pass of every checkpointed forward since the last call (a no-op when
     * there is none); call it right after the loss's backward, inside the same gradient collector.
     * Layer by layer from the top: recompute it from its saved input with gradients recording, and
     * back-propagate the gradient that arrived at its output, which leaves the gradient of its input
     * for the layer below and accumulates the weights' gradients as one backward pass would.
     */
    public void backwardCheckpoints() {
        for (int k = pendingCheckpoints.size() - 1; k >= 0; k--) {
            Checkpoints c = pendingCheckpoints.get(k);
            NDArray upstream = gradientOf(c.top());
            for (int i = c.inputs().size() - 1; i >= 0; i--) {
                NDArray in = c.inputs().get(i);
                NDArray next;
                try (NDScope layerScope = new NDScope()) {
                    in.setRequiresGradient(true);
                    Engine.getInstance().setRandomSeed((int) (c.seed() + i));
                    NDArray out;
                    try (NDScope recomputed = new NDScope()) { // backward needs only what autograd saved
                        out = layer(i, in, c.cos(), c.sin(), c.additive(), null, c.b(), c.t(), c.s(), c.projectionHook());
                        NDScope.unregister(out);
                    }
                    NDScope.register(out);
                    JniUtils.backward((PtNDArray) out, (PtNDArray) upstream, false, false);
                    next = gradientOf(in);
                    NDScope.unregister(next);
                }
                upstream.close();
                in.close();
                upstream = next;
            }
            // the embedding lookup recorded a graph only when the embeddings are trained (full fine-tuning)
            if (JniUtils.requiresGrad((PtNDArray) parameters.get("model.embed_tokens.weight"))) {
                JniUtils.backward((PtNDArray) c.embedded(), (PtNDArray) upstream, false, false);
            }
            upstream.close();
        }
        pendingCheckpoints.clear();
    }

    /** A copy of the gradient that backward left on {@code a} (zeros when nothing reached it). */
    private static NDArray gradientOf(NDArray a) {
        try (NDArray g = a.getGradient()) {
            return g.duplicate();
        }
    }

    /** Logits [..., V] of hidden states [..., H] (the tied embedding when there is no lm_head). */
    public NDArray logits(NDArray hidden) {
        NDArray head = config.tieWordEmbeddings() ? parameters.get("model.embed_tokens.weight") : parameters.get("lm_head.weight");
        return WideMatmul.linear(hidden, head, null, decodeMatmulThreads);
    }

    private NDArray attention(int layer, String p, NDArray h, NDArray cos, NDArray sin, NDArray additive,
                              KvCache cache, int b, int t, int s, ProjectionHook hook) {
        int heads = config.numAttentionHeads();
        int kvHeads = config.numKeyValueHeads();
        int hd = config.headDim();
        int rep = heads / kvHeads;
        NDArray q = project(p + "self_attn.q_proj", h, hook).reshape(b, t, heads, hd);
        NDArray k = project(p + "self_attn.k_proj", h, hook).reshape(b, t, kvHeads, hd);
        NDArray v = project(p + "self_attn.v_proj", h, hook).reshape(b, t, kvHeads, hd);
        if (config.qkNorm()) {
            q = rmsNorm(q, parameters.get(p + "self_attn.q_norm.weight"));
            k = rmsNorm(k, parameters.get(p + "self_attn.k_norm.weight"));
        }
        q = rope(q.transpose(0, 2, 1, 3), cos, sin); // [B,heads,T,hd]
        k = rope(k.transpose(0, 2, 1, 3), cos, sin); // [B,kv,T,hd]
        v = v.transpose(0, 2, 1, 3);
        if (cache != null) {
            NDArray[] kvAll = cache.store(layer, k, v, t);
            k = kvAll[0];
            v = kvAll[1];
        }
        // grouped-query attention without copying K/V: the query heads sharing a KV head become rows
        NDArray grouped = q.reshape(b, kvHeads, rep * t, hd);
        NDArray scores = grouped.matMul(k.transpose(0, 1, 3, 2)).mul(attentionScale).reshape(b, kvHeads, rep, t, s);
        NDArray probs = softmax(scores.add(additive)).reshape(b, kvHeads, rep * t, s);
        NDArray out = probs.matMul(v).reshape(b, heads, t, hd).transpose(0, 2, 1, 3).reshape(b, t, heads * hd);
        return project(p + "self_attn.o_proj", out, hook);
    }

    /** The single place every linear projection goes through: {@code x Wᵀ (+ b)} plus the hook's delta. */
    private NDArray project(String module, NDArray x, ProjectionHook current) {
        NDArray w = parameters.get(module + ".weight");
        NDArray bias = parameters.get(module + ".bias");
        NDArray y = WideMatmul.linear(x, w, bias, decodeMatmulThreads);
        if (current != null) {
            NDArray delta = current.delta(module, x);
            if (delta != null) y = y.add(delta);
        }
        return y;
    }

    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray meanSquare = x.mul(x).mean(new int[] {-1}, true);
        return x.div(meanSquare.add(epsilon).sqrt()).mul(weight);
    }

    /**
     * Softmax over the last axis. libtorch's CPU softmax always enters its thread pool, which costs
     * about a millisecond per call when the cores are shared (measured: 2.2 ms vs 3.5 µs single-threaded,
     * for a decode step's 1,440 scores); below the pool's grain size the spelled-out form stays on the
     * calling thread. The maximum is a constant shift (softmax is invariant to it), so no gradient
     * flows through it and the gradient is exact.
     */
    private static NDArray softmax(NDArray x) {
        if (x.size() >= SOFTMAX_INLINE_LIMIT) return x.softmax(-1);
        NDArray shifted = x.sub(x.max(new int[] {-1}, true).stopGradient());
        NDArray e = shifted.exp();
        return e.div(e.sum(new int[] {-1}, true));
    }

    /**
     * SiLU, x·σ(x). With gradients it is spelled so that autograd keeps one [tokens, intermediate]
     * array, as PyTorch's fused {@code F.silu} does, instead of two (x·σ(x) keeps x and σ(x)): the
     * value computed without a graph, plus (x − x̄)·s̄ where x̄ and s̄ carry no gradient and s̄ is
     * the derivative σ(x)(1 + x(1 − σ(x))) = σ(x) + xσ(x)·σ(−x). The added term is exactly zero, so the
     * value is x·σ(x)'s to the bit; the gradient is the derivative's, rounded once.
     */
    static NDArray silu(NDArray x) {
        if (!x.hasGradient()) return x.mul(x.getNDArrayInternal().sigmoid());
        // every array here but the result closes at once: autograd keeps its own reference to the one it saves (slope)
        try (NDArray bar = x.stopGradient();
             NDArray sigma = bar.getNDArrayInternal().sigmoid();
             NDArray value = bar.mul(sigma);
             NDArray negated = bar.neg();
             NDArray complement = negated.getNDArrayInternal().sigmoid(); // 1 − σ(x) as σ(−x): no cancellation
             NDArray rise = value.mul(complement);
             NDArray slope = sigma.add(rise);
             NDArray zero = x.sub(bar);
             NDArray delta = zero.mul(slope)) {
            return delta.add(value);
        }
    }

    /**
     * Rotary embedding in Hugging Face's half-split layout: x·cos + rotate_half(x)·sin, where
     * rotate_half(x) = [-x₂, x₁]. The sign sits in the table instead ({@code signedSin} = [-sin, sin]):
     * [x₂, x₁]·[-sin, sin] is bit for bit [-x₂, x₁]·[sin, sin], two engine calls fewer per call
     * (one split for two slices, no negation), which a decode step pays twice per layer.
     */
    private static NDArray rope(NDArray x, NDArray cos, NDArray signedSin) {
        NDList halves = x.split(2, 3);
        NDArray swapped = NDArrays.concat(new NDList(halves.get(1), halves.get(0)), -1);
        return x.mul(cos).add(swapped.mul(signedSin));
    }

    private static NDArray zeroLike(NDArray a) {
        return a.zerosLike().get(new NDIndex("0, 0"));
    }

    /** Grows the cos/sin tables to cover {@code positions}; they live in the model, outside any caller's scope. */
    private synchronized void ensureRope(int positions) {
        if (cosTable != null && cosTable.getShape().get(0) >= positions) return;
        int n = Math.max(positions, cosTable == null ? 256 : (int) cosTable.getShape().get(0) * 2);
        int hd = config.headDim();
        float[] cos = new float[n * hd];
        float[] sin = new float[n * hd];
        for (int pos = 0; pos < n; pos++) {
            for (int i = 0; i < hd / 2; i++) {
                double angle = pos * inverseFrequencies[i];
                float c = (float) Math.cos(angle);
                float sn = (float) Math.sin(angle);
                cos[pos * hd + i] = c;
                cos[pos * hd + i + hd / 2] = c;
                sin[pos * hd + i] = -sn; // rotate_half's sign (see rope)
                sin[pos * hd + i + hd / 2] = sn;
            }
        }
        NDArray oldCos = cosTable;
        NDArray oldSin = sinTable;
        cosTable = manager.create(cos, new Shape(n, hd));
        sinTable = manager.create(sin, new Shape(n, hd));
        NDScope.unregister(cosTable, sinTable);
        if (oldCos != null) {
            oldCos.close();
            oldSin.close();
        }
    }

    /** θ^(-2i/d), with Llama 3's smooth rescaling of the low frequencies when configured. */
    static double[] inverseFrequencies(ModelConfig c) {
        int hd = c.headDim();
        double[] inv = new double[hd / 2];
        for (int i = 0; i < hd / 2; i++) inv[i] = 1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / hd);
        ModelConfig.RopeScaling rs = c.ropeScaling();
        if (rs != null) {
            double lowWavelen = rs.originalMaxPositionEmbeddings() / rs.lowFreqFactor();
            double highWavelen = rs.originalMaxPositionEmbeddings() / rs.highFreqFactor();
            for (int i = 0; i < inv.length; i++) {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowWavelen) {
                    inv[i] = inv[i] / rs.factor();
                } else if (wavelen >= highWavelen) {
                    double smooth = (rs.originalMaxPositionEmbeddings() / wavelen - rs.lowFreqFactor())
                            / (rs.highFreqFactor() - rs.lowFreqFactor());
                    inv[i] = (1 - smooth) * inv[i] / rs.factor() + smooth * inv[i];
                }
            }
        }
        return inv;
    }

    /** Writes config.json and model.safetensors (F32) of the current weights. */
    public void save(Path hfDir) {
        try {
            Files.createDirectories(hfDir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + hfDir, e);
        }
        config.write(hfDir.resolve("config.json"));
        Safetensors.write(hfDir.resolve("model.safetensors"), parameters, Map.of());
    }

    @Override
    public void close() {
        manager.close();
    }
}
