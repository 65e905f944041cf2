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
 * The trainers fix glibc's mmap threshold for the process they train in (TrainingAllocator), so
 * that freed activations go back to the system instead of staying resident in malloc's arenas.
 * Run under glibc (Linux); skipped elsewhere.
 */
class TrainingAllocatorTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path tmp;

    /**
     * In a fresh JVM (an arena that already holds a large free chunk would serve the block without
     * mmap whatever the threshold): after a trainer is built, a 1 MiB block gets its own mapping even
     * though a 16 MiB block was just freed, which under glibc's dynamic threshold raises it to 16 MiB;
     * with the setting off ({@value TrainingAllocator#PROPERTY}=0) the same block lands in an arena.
     */
    @Test
    void aTrainerFixesTheThresholdSoAMebibyteIsMappedEvenAfterLargeFrees() throws Exception {
        assumeTrue(glibc());
        assertEquals("mapped 1", child(null));
        assertEquals("mapped 0", child("0"), "glibc's dynamic threshold, for contrast: the test can tell the two apart");
    }

    /** The child's main: builds a trainer as the worker does, then reports whether a 1 MiB block was mmapped. */
    public static void main(String[] args) {
        new SftTrainer(null, null, null, 1.0);
        Native.free(Native.malloc(16 * MIB));
        long before = TrainingAllocatorProbe.mmappedBytes();
        long block = Native.malloc(MIB);
        long after = TrainingAllocatorProbe.mmappedBytes();
        Native.free(block);
        System.out.println("mapped " + (after - before >= MIB ? 1 : 0));
    }

    private static String child(String threshold) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx64m", "-cp", System.getProperty("java.class.path")));
        if (threshold != null) cmd.add("-D" + TrainingAllocator.PROPERTY + "=" + threshold);
        cmd.add(TrainingAllocatorTest.class.getName());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "child timed out");
        return out.lines().filter(l -> l.startsWith("mapped ")).findFirst().orElse(out);
    }

    @Test
    void stepsLeaveLittleFreedMemoryResidentInMalloc() {
        assumeTrue(glibc());
        ModelConfig config = ModelConfig.llama(DpoTrainerTest.CHARS.characterVocabSize(), 256, 768, 2, 4, 2);
        Path ckpt = TinyCheckpoint.write(tmp.resolve("base"), config, 5, DpoTrainerTest.CHARS);
        SplittableRandom r = new SplittableRandom(1);
        List<SequenceLogProbs.Sequence> batch = new ArrayList<>();
        for (int i = 0; i < 2; i++) batch.add(SequenceLogProbs.Sequence.of(ids(r, 64), ids(r, 448)));
        try (LlamaModel model = LlamaModel.load(ckpt, Device.cpu());
             LoraAdapter adapter = LoraAdapter.create(model, LoraAdapter.Config.of(8, 16,
                     List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), ckpt.toString()), 1, false);
             AdamW optimizer = AdamW.defaults();
             SftTrainer trainer = new SftTrainer(model, Trainable.lora(adapter), optimizer, 1.0)) {
            for (int s = 0; s < 4; s++) trainer.step(batch, 1, 1e-3);
            long kept = TrainingAllocatorProbe.freeKeptBytes();
            // measured in surefire's JVM: 28 MiB with the fixed threshold, 220 MiB with glibc's dynamic
            // one (-Dprefloop.train.mmapThreshold=0 in the test JVM's arguments)
            assertTrue(kept < 64 * MIB, "malloc keeps " + kept / MIB + " MiB freed but resident after four steps");
        }
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
