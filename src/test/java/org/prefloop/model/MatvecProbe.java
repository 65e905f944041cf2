package org.prefloop.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;
import java.lang.management.ManagementFactory;
import java.util.function.Supplier;

/** Matrix-vector variants on decode's shapes (SmolLM2-135M, 30 layers' worth of distinct weights), interleaved. */
public final class MatvecProbe {
    private MatvecProbe() {
    }

    public static void main(String[] args) {
        int layers = 30;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            JniUtils.setGradMode(false);
            JniUtils.setNumThreads(1);
            NDArray[] q = new NDArray[layers], k = new NDArray[layers], v = new NDArray[layers], qkv = new NDArray[layers];
            NDArray[] gate = new NDArray[layers], up = new NDArray[layers], gu = new NDArray[layers];
            for (int l = 0; l < layers; l++) {
                q[l] = m.randomNormal(new Shape(576, 576));
                k[l] = m.randomNormal(new Shape(192, 576));
                v[l] = m.randomNormal(new Shape(192, 576));
                qkv[l] = NDArrays.concat(new NDList(q[l], k[l], v[l]), 0);
                gate[l] = m.randomNormal(new Shape(1536, 576));
                up[l] = m.randomNormal(new Shape(1536, 576));
                gu[l] = NDArrays.concat(new NDList(gate[l], up[l]), 0);
            }
            NDArray head = m.randomNormal(new Shape(49152, 576));
            NDArray x = m.randomNormal(new Shape(1, 1, 576));
            double[] best = new double[14];
            NDArray[] gateT = new NDArray[layers], upT = new NDArray[layers], qT = new NDArray[layers];
            for (int l = 0; l < layers; l++) { gateT[l] = gate[l].transpose().duplicate().transpose(); upT[l] = up[l].transpose().duplicate().transpose(); qT[l] = q[l].transpose().duplicate().transpose(); }
            NDArray headT = head.transpose().duplicate().transpose();
            NDArray x1 = x.reshape(576);
            java.util.Arrays.fill(best, Double.MAX_VALUE);
            String[] names = {"q,k,v separate (30 layers)", "qkv fused + split", "gate,up separate", "gate|up fused + split",
                "LM head 1 thread", "LM head 2 threads", "setNumThreads 1->2->1 (us)", "tiny add (us)", "gate,up as W.matMul(x 1-D) (mv)", "LM head mv 1 thread", "gate,up stored transposed", "LM head stored transposed", "q stored transposed", "q (row-major)"};
            for (int rep = 0; rep < 6; rep++) {
                best[0] = Math.min(best[0], time(() -> { for (int l = 0; l < layers; l++) { lin(x, q[l]); lin(x, k[l]); lin(x, v[l]); } return null; }));
                best[1] = Math.min(best[1], time(() -> { for (int l = 0; l < layers; l++) lin(x, qkv[l]).split(new long[] {576, 768}, 2); return null; }));
                best[2] = Math.min(best[2], time(() -> { for (int l = 0; l < layers; l++) { lin(x, gate[l]); lin(x, up[l]); } return null; }));
                best[3] = Math.min(best[3], time(() -> { for (int l = 0; l < layers; l++) lin(x, gu[l]).split(2, 2); return null; }));
                best[4] = Math.min(best[4], time(() -> lin(x, head)));
                JniUtils.setNumThreads(2);
                best[5] = Math.min(best[5], time(() -> lin(x, head)));
                JniUtils.setNumThreads(1);
                best[6] = Math.min(best[6], time(() -> { for (int i = 0; i < 1000; i++) { JniUtils.setNumThreads(2); JniUtils.setNumThreads(1); } return null; }));
                best[7] = Math.min(best[7], time(() -> { for (int i = 0; i < 1000; i++) x.add(x); return null; }));
                best[8] = Math.min(best[8], time(() -> { for (int l = 0; l < layers; l++) { mv(gate[l], x1); mv(up[l], x1); } return null; }));
                best[9] = Math.min(best[9], time(() -> mv(head, x1)));
                best[10] = Math.min(best[10], time(() -> { for (int l = 0; l < layers; l++) { lin(x, gateT[l]); lin(x, upT[l]); } return null; }));
                best[11] = Math.min(best[11], time(() -> lin(x, headT)));
                best[12] = Math.min(best[12], time(() -> { for (int l = 0; l < layers; l++) lin(x, qT[l]); return null; }));
                best[13] = Math.min(best[13], time(() -> { for (int l = 0; l < layers; l++) lin(x, q[l]); return null; }));
                System.out.printf("rep %d load %.2f%n", rep, ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            }
            for (int i = 0; i < 6; i++) System.out.printf("%-30s %8.3f ms%n", names[i], best[i]);
            for (int i = 8; i < 14; i++) System.out.printf("%-30s %8.3f ms%n", names[i], best[i]);
            System.out.printf("%-30s %8.3f us%n%-30s %8.3f us%n", names[6], best[6], names[7], best[7]);
        }
    }

    private static NDArray lin(NDArray x, NDArray w) {
        NDArray y = Linear.linear(x, w, null).singletonOrThrow();
        y.getFloat(0, 0, 0);
        return y;
    }

    private static NDArray mv(NDArray w, NDArray x) {
        NDArray y = w.matMul(x);
        y.getFloat(0);
        return y;
    }

    private static double time(Supplier<Object> work) {
        try (NDScope s = new NDScope()) {
            long t0 = System.nanoTime();
            work.get();
            return (System.nanoTime() - t0) / 1e6;
        }
    }
}
