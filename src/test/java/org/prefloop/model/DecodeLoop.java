package org.prefloop.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import java.nio.file.Path;

/** Decode steps in a loop, for a profiler to watch (JFR); prints the mean step time of each round. */
public final class DecodeLoop {
    private DecodeLoop() {
    }

    public static void main(String[] args) {
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 6;
        try (LlamaModel model = LlamaModel.load(Path.of(args.length > 0 ? args[0] : "target/bench-smollm2-135m"), Device.cpu());
             NDManager m = model.manager().newSubManager()) {
            JniUtils.setGradMode(false);
            JniUtils.setNumThreads(1);
            for (int r = 0; r < rounds; r++) System.out.printf("round %d: %.2f ms/step%n", r, DecodeProfile.decodeStepMillis(model, m));
        }
    }
}
