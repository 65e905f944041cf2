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
 * <p>The setting is process-wide. {@value #PROPERTY} sets the threshold in bytes; {@code 0} leaves
 * glibc's defaults (for comparisons). Applied once, by the first trainer a process builds; a no-op
 * off glibc.
 */
public final class TrainingAllocator {
    /** System property: the fixed mmap threshold in bytes, 0 to leave glibc's defaults. */
    public static final String PROPERTY = "prefloop.train.mmapThreshold";
    /** 256 KiB: a [tokens, hidden] activation of even a tiny model is above it, a scalar or index far below. */
    public static final long DEFAULT_THRESHOLD = 256 * 1024;
    private static final int M_TRIM_THRESHOLD = -1;
    private static final int M_MMAP_THRESHOLD = -3;

    private static long applied = -1;

    private TrainingAllocator() {
    }

    /**
     * Sets the fixed mmap threshold ({@value #PROPERTY}, default {@link #DEFAULT_THRESHOLD}) once
     * per process; returns the threshold in effect, 0 when glibc's defaults are left (property 0,
     * or no glibc).
     */
    public static synchronized long apply() {
        if (applied >= 0) return applied;
        long threshold = Long.getLong(PROPERTY, DEFAULT_THRESHOLD);
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
