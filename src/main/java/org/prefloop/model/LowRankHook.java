package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A frozen set of low-rank deltas, one per module, in the form serving wants: for each module
 * {@code down} = Aᵀ [in, r] and {@code up} = scaling·Bᵀ [r, out], both contiguous copies, so a
 * projection's delta is two matrix products, {@code x · down · up}. Being a copy, it is independent
 * of the weights it was made from (a trainer may go on updating those; closing them leaves this
 * working), and that is what lets a batch mixing several of them stack their factors once and
 * reuse the stack across steps ({@link LowRankStacks}). Closing it frees its arrays; stacks made
 * with it are dropped the next time a stack is asked for.
 */
public final class LowRankHook implements ProjectionHook, AutoCloseable {
    private static final AtomicLong SERIALS = new AtomicLong();

    /** One module's factors: {@code down} [in, rank], {@code up} [rank, out] with the scaling folded in. */
    record Factors(NDArray down, NDArray up, int rank) {
    }

    private final long serial = SERIALS.incrementAndGet(); // a stable order for the stacks' keys
    private final NDManager manager;
    private final Map<String, Factors> modules;
    private volatile boolean closed;

    private LowRankHook(NDManager manager, Map<String, Factors> modules) {
        this.manager = manager;
        this.modules = Collections.unmodifiableMap(modules);
    }

    /**
     * Copies {@code weights} (module name → {A [r, in], B [out, r]}, PEFT's LoRA layout) into
     * serving form under {@code parent}: the delta of module m becomes {@code scaling · x Aᵀ Bᵀ}.
     * The scaling is multiplied into B here in float32, as the engine would multiply it.
     */
    public static LowRankHook of(Map<String, NDArray[]> weights, float scaling, NDManager parent) {
        NDManager manager = parent.newSubManager();
        try {
            Map<String, Factors> modules = new TreeMap<>();
            for (Map.Entry<String, NDArray[]> e : weights.entrySet()) {
                NDArray a = e.getValue()[0];
                NDArray b = e.getValue()[1];
                int r = (int) a.getShape().get(0);
                int in = (int) a.getShape().get(1);
                int out = (int) b.getShape().get(0);
                if (b.getShape().get(1) != r) {
                    throw new IllegalArgumentException(e.getKey() + ": A is " + a.getShape() + " but B is " + b.getShape());
                }
                NDArray down = manager.create(transposed(floats(a), r, in, 1f), new Shape(in, r));
                NDArray up = manager.create(transposed(floats(b), out, r, scaling), new Shape(r, out));
                NDScope.unregister(down, up); // kept across steps: no caller's scope may close them
                modules.put(e.getKey(), new Factors(down, up, r));
            }
            return new LowRankHook(manager, modules);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private static float[] floats(NDArray a) {
        if (a.getDataType() == DataType.FLOAT32) return a.toFloatArray();
        try (NDArray f = a.toType(DataType.FLOAT32, true)) {
            return f.toFloatArray();
        }
    }

    /** {@code m} [rows, cols] row-major, transposed to [cols, rows] and multiplied by {@code factor}. */
    private static float[] transposed(float[] m, int rows, int cols, float factor) {
        float[] t = new float[m.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) t[j * rows + i] = factor == 1f ? m[i * cols + j] : m[i * cols + j] * factor;
        }
        return t;
    }

    @Override
    public NDArray delta(String module, NDArray input) {
        Factors f = modules.get(module);
        return f == null ? null : input.matMul(f.down()).matMul(f.up());
    }

    /** The module's factors, or null when this hook leaves the module alone. */
    Factors factors(String module) {
        return modules.get(module);
    }

    Map<String, Factors> modules() {
        return modules;
    }

    long serial() {
        return serial;
    }

    boolean isClosed() {
        return closed;
    }

    /** Frees the copies; call it only once no batch runs this hook. */
    @Override
    public void close() {
        closed = true;
        manager.close();
    }
}
