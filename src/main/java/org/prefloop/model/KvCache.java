package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Keys and values of every layer for a batch of sequences, preallocated to a fixed capacity so
 * that a decode step writes one slot in place instead of copying the whole history. It also
 * remembers the attention mask of everything cached, which is how left-padded prompts keep
 * their padding masked for the rest of generation.
 */
public final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final NDArray mask; // [B, capacity] float 1/0
    private final int batch;
    private final int capacity;
    private int length;

    KvCache(NDManager parent, ModelConfig config, int batch, int capacity, DataType dtype) {
        this.manager = parent.newSubManager();
        this.batch = batch;
        this.capacity = capacity;
        int layers = config.numHiddenLayers();
        keys = new NDArray[layers];
        values = new NDArray[layers];
        Shape shape = new Shape(batch, config.numKeyValueHeads(), capacity, config.headDim());
        for (int i = 0; i < layers; i++) {
            keys[i] = manager.zeros(shape, dtype);
            values[i] = manager.zeros(shape, dtype);
        }
        mask = manager.zeros(new Shape(batch, capacity), DataType.FLOAT32);
    }

    /** Tokens cached so far (including padding). */
    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public int batchSize() {
        return batch;
    }

    /** Stores the mask of {@code t} new positions and returns the mask of all cached positions [B, length+t]. */
    NDArray appendMask(NDArray newMask, int t) {
        if (length + t > capacity) {
            throw new IllegalStateException("KV cache full: " + length + " + " + t + " tokens exceed capacity " + capacity);
        }
        mask.set(new NDIndex(":, {}:{}", length, length + t), newMask.toType(DataType.FLOAT32, false));
        return mask.get(new NDIndex(":, :{}", length + t));
    }

    /** Writes this step's keys/values [B, kv, t, hd] of one layer and returns the cached ones up to now. */
    NDArray[] store(int layer, NDArray k, NDArray v, int t) {
        NDIndex slot = new NDIndex(":, :, {}:{}", length, length + t);
        keys[layer].set(slot, k);
        values[layer].set(slot, v);
        NDIndex upTo = new NDIndex(":, :, :{}", length + t);
        return new NDArray[] {keys[layer].get(upTo), values[layer].get(upTo)};
    }

    void advance(int t) {
        length += t;
    }

    @Override
    public void close() {
        manager.close();
    }
}
