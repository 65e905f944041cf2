package org.prefloop.train;

import java.util.ArrayList;
import java.util.List;

/** Splits a step's batch into the micro-batches of gradient accumulation. */
final class MicroBatches {
    private MicroBatches() {
    }

    static <T> List<List<T>> split(List<T> batch, int accumulation) {
        if (accumulation < 1) throw new IllegalArgumentException("gradient_accumulation_steps must be at least 1");
        int size = Math.max(1, (batch.size() + accumulation - 1) / accumulation);
        List<List<T>> out = new ArrayList<>();
        for (int i = 0; i < batch.size(); i += size) out.add(batch.subList(i, Math.min(batch.size(), i + size)));
        return out;
    }
}
