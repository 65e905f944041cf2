package org.prefloop.model;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training spelling of SiLU (one array kept for the backward pass instead of two) gives x·σ(x)
 * to the bit and the gradient of x·σ(x) to float32 rounding, for inputs from −12 to 12.
 */
class SiluTest {
    @Test
    void sameValueToTheBitAndTheSameGradientWithOneArrayKept() {
        try (NDManager m = NDManager.newBaseManager()) {
            java.util.Random random = new java.util.Random(7);
            float[] xs = new float[64 * 96];
            float[] ws = new float[xs.length];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) (random.nextDouble() * 24 - 12);
                ws[i] = (float) random.nextGaussian();
            }
            NDArray x = m.create(xs, new Shape(64, 96));
            NDArray weights = m.create(ws, new Shape(64, 96));
            float[][] values = new float[2][];
            float[][] grads = new float[2][];
            for (int spelling = 0; spelling < 2; spelling++) {
                NDArray input = x.duplicate();
                input.setRequiresGradient(true);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray y = spelling == 0 ? input.mul(input.getNDArrayInternal().sigmoid()) : LlamaModel.silu(input);
                    values[spelling] = y.toFloatArray();
                    gc.backward(y.mul(weights).sum());
                    grads[spelling] = input.getGradient().toFloatArray();
                }
            }
            assertArrayEquals(values[0], values[1], "the value, bit for bit");
            // against the derivative in double precision, σ(1 + x(1 − σ)), times the weight
            double[] worst = new double[2];
            for (int i = 0; i < xs.length; i++) {
                double sigma = 1 / (1 + Math.exp(-xs[i]));
                double exact = ws[i] * sigma * (1 + xs[i] * (1 - sigma));
                for (int spelling = 0; spelling < 2; spelling++) {
                    assertTrue(Float.isFinite(grads[spelling][i]), "gradient " + i);
                    worst[spelling] = Math.max(worst[spelling], Math.abs(grads[spelling][i] - exact));
                }
            }
            assertTrue(worst[1] < 1e-5 && worst[1] <= worst[0], "the gradient as close to the exact one as x·σ(x)'s: worst error "
                    + worst[1] + " against " + worst[0]);
        }
    }
}
