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

    @Test
    void aTrainerFixesTheThresholdSoAMebibyteIsMappedEvenAfterLargeFrees() {
        assumeTrue(glibc());
        new SftTrainer(null, null, null, 1.0); // what every trainer does when built
        assertEquals(TrainingAllocator.DEFAULT_THRESHOLD, TrainingAllocator.apply());
        // glibc's dynamic threshold would rise to 16 MiB on this free, and put the next MiB in an arena
        Native.free(Native.malloc(16 * MIB));
        long before = TrainingAllocatorProbe.mmappedBytes();
        long block = Native.malloc(MIB);
        long after = TrainingAllocatorProbe.mmappedBytes();
        Native.free(block);
        assertTrue(after - before >= MIB, "a 1 MiB block must get its own mapping; mmapped bytes went " + before + " -> " + after);
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
