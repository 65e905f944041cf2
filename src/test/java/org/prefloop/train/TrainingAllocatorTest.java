package org.prefloop.train;

import ai.djl.Device;
import com.sun.jna.Native;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prefloop.lora.LoraAdapter;
import org.prefloop.model.LlamaModel;
import org.prefloop.model.ModelConfig;
import org.prefloop.model.TinyCheckpoint;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * With {@value TrainingAllocator#PROPERTY} set, the trainers fix glibc's mmap threshold for the
 * process they train in (TrainingAllocator), so that freed activations go back to the system
 * instead of staying resident in malloc's arenas; unset, glibc's defaults stay. Each check runs in
 * a fresh JVM, since the setting is process-wide and would slow the rest of the suite's training.
 * Run under glibc (Linux); skipped elsewhere.
 */
class TrainingAllocatorTest {
    private static final long MIB = 1 << 20;
    private static final String ON = String.valueOf(TrainingAllocator.MEMORY_SAVING_THRESHOLD);

    @TempDir
    Path tmp;

    /**
     * An arena that already holds a large free chunk would serve the block without mmap whatever the
     * threshold, hence a fresh JVM: after a trainer is built, a 1 MiB block gets its own mapping even
     * though a 16 MiB block was just freed, which under glibc's dynamic threshold raises it to 16 MiB;
     * by default the same block lands in an arena.
     */
    @Test
    void aTrainerFixesTheThresholdSoAMebibyteIsMappedEvenAfterLargeFrees() throws Exception {
        assumeTrue(glibc());
        assertEquals("mapped 1", child(ON, "block"));
        assertEquals("mapped 0", child(null, "block"), "glibc's dynamic threshold by default: the test can tell the two apart");
    }

    /** Four LoRA SFT steps (hidden 256, 2 x 512 tokens) leave little freed memory resident with the setting, much without. */
    @Test
    void stepsLeaveLittleFreedMemoryResidentInMalloc() throws Exception {
        assumeTrue(glibc());
        // measured: 28 MiB with the fixed threshold, 220 MiB with glibc's dynamic one
        long fixed = Long.parseLong(child(ON, "steps", tmp.resolve("on").toString()).substring("kept ".length()));
        long dynamic = Long.parseLong(child(null, "steps", tmp.resolve("off").toString()).substring("kept ".length()));
        assertTrue(fixed < 64 * MIB, "malloc keeps " + fixed / MIB + " MiB freed but resident after four steps");
        assertTrue(dynamic > 2 * fixed, "without the setting malloc keeps more: " + dynamic / MIB + " MiB against " + fixed / MIB);
    }

    /** The child's main: "block" reports whether a 1 MiB block was mmapped after a trainer was built; "steps DIR" how much malloc keeps after four steps. */
    public static void main(String[] args) {
        if (args[0].equals("block")) {
            new SftTrainer(null, null, null, 1.0);
            Native.free(Native.malloc(16 * MIB));
            long before = TrainingAllocatorProbe.mmappedBytes();
            long block = Native.malloc(MIB);
            long after = TrainingAllocatorProbe.mmappedBytes();
            Native.free(block);
            System.out.println("mapped " + (after - before >= MIB ? 1 : 0));
        } else {
            System.out.println("kept " + keptAfterSteps(Path.of(args[1])));
        }
    }

    private static long keptAfterSteps(Path dir) {
        ModelConfig config = ModelConfig.llama(DpoTrainerTest.CHARS.characterVocabSize(), 256, 768, 2, 4, 2);
        Path ckpt = TinyCheckpoint.write(dir.resolve("base"), config, 5, DpoTrainerTest.CHARS);
        SplittableRandom r = new SplittableRandom(1);
        List<SequenceLogProbs.Sequence> batch = new ArrayList<>();
        for (int i = 0; i < 2; i++) batch.add(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, 448)));
        TrainingAllocator.apply(); // before the load, as the worker does
        try (LlamaModel model = LlamaModel.load(ckpt, Device.cpu());
             LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(8, 16,
                     List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), ckpt.toString()), 1, false);
             AdamW optimizer = AdamW.defaults();
             SftTrainer trainer = new SftTrainer(model, Trainable.lora(adapter), optimizer, 1.0)) {
            for (int s = 0; s < 4; s++) trainer.step(batch, 1, 1e-3);
            return TrainingAllocatorProbe.freeKeptBytes();
        }
    }

    private static String child(String threshold, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Dai.djl.offline=true", "-Xmx512m", "-cp", System.getProperty("java.class.path")));
        if (threshold != null) cmd.add("-D" + TrainingAllocator.PROPERTY + "=" + threshold);
        cmd.add(TrainingAllocatorTest.class.getName());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(300, java.util.concurrent.TimeUnit.SECONDS), "child timed out");
        return out.lines().filter(l -> l.startsWith("mapped ") || l.startsWith("kept ")).findFirst().orElse(out);
    }

    private static boolean glibc() {
        return System.getProperty("os.name", "").toLowerCase().contains("linux") && TrainingAllocatorProbe.available();
    }

    private static long[] ids(SplittableRandom r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(40);
        return ids;
    }
}
