package org.prefloop.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.BenchCheckpoint;
import org.prefloop.model.LlamaModel;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Where a LoRA training step's resident memory goes, on TrainingBenchmark's settings (SmolLM2-135M
 * shape, 256 tokens, r=16 on all seven projections): RSS after the JVM starts, after libtorch runs
 * an op, after the checkpoint loads, before the first step; per step the peak of the forward pass
 * and of the backward pass (VmHWM reset between them through /proc/self/clear_refs), RSS after the
 * step, glibc's own accounting (mallinfo2: bytes in use, bytes free but kept) and the JVM's heap.
 * One stage per JVM: {@code java ... org.prefloop.train.TrainingMemoryBreakdown sft|dpo [steps]}.
 * Not a test.
 */
public final class TrainingMemoryBreakdown {
    private TrainingMemoryBreakdown() {
    }

    public static void main(String[] args) throws Exception {
        String stage = args.length > 0 ? args[0] : "sft";
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        row("JVM started");
        // as the worker does (AlignmentRun): before the checkpoint loads
        System.out.println("glibc mmap threshold fixed at " + TrainingAllocator.apply() + " bytes (0: glibc's dynamic default)");
        Path dir = BenchCheckpoint.smolLm2(BenchCheckpoint.SMOLLM2_DIR);
        Engine.getEngine("PyTorch");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            m.ones(new Shape(64, 64)).matMul(m.ones(new Shape(64, 64))).close();
        }
        row("libtorch loaded, one op run");
        SplittableRandom r = new SplittableRandom(3);
        try (LlamaModel model = LlamaModel.load(dir, Device.cpu())) {
            row("checkpoint loaded");
            System.gc();
            row("after System.gc()");
            LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(16, 32,
                    List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), dir.toString()), 1, false);
            Trainable trainable = Trainable.lora(adapter);
            AdamW optimizer = AdamW.defaults();
            row("adapter created, before the first step");
            if (stage.equals("sft")) {
                List<SequenceLogProbs.Sequence> batch = new ArrayList<>();
                for (int i = 0; i < TrainingBenchmark.SFT_BATCH; i++) {
                    batch.add(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, TrainingBenchmark.SEQ - 64)));
                }
                try (SftTrainer trainer = new SftTrainer(model, trainable, optimizer, 1.0)) {
                    for (int s = 1; s <= steps; s++) sftStep(s, model, trainable, optimizer, batch);
                }
            } else {
                List<DpoTrainer.Pair> pairs = new ArrayList<>();
                for (int i = 0; i < TrainingBenchmark.DPO_PAIRS; i++) {
                    pairs.add(new DpoTrainer.Pair(ids(r, 64), ids(r, TrainingBenchmark.SEQ - 64), ids(r, TrainingBenchmark.SEQ - 64), 1));
                }
                try (DpoTrainer trainer = new DpoTrainer(model, trainable, optimizer, DpoTrainer.Settings.defaults())) {
                    for (int s = 1; s <= steps; s++) {
                        resetPeak();
                        long t = System.nanoTime();
                        trainer.step(pairs, 1, 1e-4);
                        peak("step " + s + " (whole DPO step)", t);
                        row("after step " + s);
                    }
                }
            }
            System.out.printf("process peak over the run (VmHWM since the last reset) %s%n", gib(status("VmHWM")));
            optimizer.close();
            adapter.close();
        }
    }

    /** SftTrainer.step spelled out, with the forward and backward peaks taken apart. */
    private static void sftStep(int s, LlamaModel model, Trainable trainable, AdamW optimizer, List<SequenceLogProbs.Sequence> batch) {
        model.setProjectionHook(trainable.hook(true));
        int tokens = SftTrainer.scoredTokens(batch);
        resetPeak();
        long t = System.nanoTime();
        try (NDManager scope = model.manager().newSubManager();
             GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray nll = SequenceLogProbs.of(model, batch, scope).sum().neg().div(scope.create((float) tokens));
            nll.getFloat();
            peak("step " + s + " forward", t);
            row("step " + s + " after forward (saved tensors live)");
            resetPeak();
            t = System.nanoTime();
            collector.backward(nll);
            model.backwardCheckpoints();
            peak("step " + s + " backward", t);
        }
        resetPeak();
        t = System.nanoTime();
        AdamW.clipGradNorm(new ArrayList<>(trainable.parameters().values()), 1.0);
        optimizer.update(trainable.parameters(), 1e-4);
        peak("step " + s + " clip + AdamW", t);
        row("after step " + s);
    }

    private static void row(String what) {
        MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
        long direct = 0;
        for (BufferPoolMXBean p : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) direct += p.getMemoryUsed();
        TrainingAllocatorProbe.MallInfo2 mi = TrainingAllocatorProbe.read();
        System.out.printf("%-44s RSS %s | malloc: in use %s, free kept %s (arena %s, mmapped %s) | JVM heap used %s committed %s, non-heap committed %s, direct %s%n",
                what, gib(status("VmRSS")), gib(mi.uordblks + mi.hblkhd), gib(mi.fordblks), gib(mi.arena), gib(mi.hblkhd),
                gib(mem.getHeapMemoryUsage().getUsed()), gib(mem.getHeapMemoryUsage().getCommitted()),
                gib(mem.getNonHeapMemoryUsage().getCommitted()), gib(direct));
    }

    private static void peak(String what, long startNanos) {
        System.out.printf("%-44s peak RSS %s  (%.2f s)%n", what, gib(status("VmHWM")), (System.nanoTime() - startNanos) / 1e9);
    }

    /** Sets VmHWM back to the current RSS (Linux 4.0+). */
    static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static long status(String key) {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith(key + ":")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (java.io.IOException e) {
            return -1;
        }
        return -1;
    }

    private static String gib(long bytes) {
        return String.format("%.2f GiB", bytes / (double) (1L << 30));
    }

    private static long[] ids(SplittableRandom r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(40);
        return ids;
    }
}
