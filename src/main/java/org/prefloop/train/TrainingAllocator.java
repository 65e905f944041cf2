package org.prefloop.train;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;

/**
 * glibc malloc settings for the process that trains. libtorch's CPU tensors come from malloc, and
 * glibc's default is a dynamic mmap threshold: the first time a large block that was mmapped is
 * freed (loading a checkpoint frees many), the threshold rises to that block's size, up to 32 MiB,
 * and from then on every activation below it is carved out of the heap arenas. Freed there, it
 * stays resident: in a SmolLM2-135M LoRA SFT step (4 x 256 tokens) glibc held 1.4-2.9 GiB free but
 * resident next to 0.8-2.4 GiB in use (TrainingMemoryBreakdown). A fixed threshold
 * ({@code mallopt(M_MMAP_THRESHOLD)}, which also switches the dynamic rise off) gives every block at
 * or above it its own mapping, returned to the system when the tensor is freed, as PyTorch's
 * eager mode frees it.
 *
 * <p>Off by default, because it costs speed: every such block is a fresh mapping whose pages fault
 * in again. TrainingBenchmark on this 2-core VM (SmolLM2-135M shape, LoRA r=16, 4 x 256 tokens),
 * back to back: with 256 KiB, SFT 59 tokens/s at a 3.40 GiB peak, DPO 51 tokens/s at 3.54 GiB;
 * with glibc's defaults 112 tokens/s at 4.40 GiB and 78 tokens/s at 4.53 GiB. Where memory, not
 * time, decides whether a run fits, {@value #PROPERTY}{@code =262144} (bytes; {@link
 * #MEMORY_SAVING_THRESHOLD}) turns it on (for the service: {@code PREFLOOP_JAVA_OPTS}). The setting
 * is process-wide, applied once, by the first trainer a process builds (or before the worker
 * loads a model); a no-op off glibc.
 */
public final class TrainingAllocator {
    /** System property: the fixed mmap threshold in bytes, 0 (the default) to leave glibc's defaults. */
    public static final String PROPERTY = "prefloop.train.mmapThreshold";
    /** 256 KiB: a [tokens, hidden] activation of even a tiny model is above it, a scalar or index far below. */
    public static final long MEMORY_SAVING_THRESHOLD = 256 * 1024;
    private static final int M_TRIM_THRESHOLD = -1;
    private static final int M_MMAP_THRESHOLD = -3;

    private static long applied = -1;

    private TrainingAllocator() {
    }

    /** The threshold {@value #PROPERTY} asks for, in bytes (0: glibc's defaults), whether applied yet or not. */
    public static long configured() {
        return Math.max(0, Long.getLong(PROPERTY, 0));
    }

    /**
     * Sets the fixed mmap threshold ({@value #PROPERTY}; off by default) once per process; returns
     * the threshold in effect, 0 when glibc's defaults are left (property unset or 0, or no glibc).
     */
    public static synchronized long apply() {
        if (applied >= 0) return applied;
        long threshold = configured();
        // glibc's dynamic rise also doubled the trim threshold (what each arena keeps free at its
        // top); set it back too, for a process whose threshold rose before the first trainer
        applied = threshold > 0 && mallopt(M_MMAP_THRESHOLD, threshold) && mallopt(M_TRIM_THRESHOLD, 2 * threshold) ? threshold : 0;
        return applied;
    }

    private static boolean mallopt(int param, long value) {
        Function f = libcFunction("mallopt");
        return f != null && f.invokeInt(new Object[] {param, (int) Math.min(Integer.MAX_VALUE, value)}) == 1;
    }

    private static Function libcFunction(String name) {
        if (!System.getProperty("os.name", "").toLowerCase().contains("linux")) return null;
        try {
            return NativeLibrary.getInstance("c").getFunction(name);
        } catch (UnsatisfiedLinkError e) { // musl has no mallopt: nothing to set
            return null;
        }
    }
}
