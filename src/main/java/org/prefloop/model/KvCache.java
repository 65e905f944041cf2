package org.prefloop.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;

/**
 * Keys and values of every layer for a batch of sequences, preallocated to a fixed capacity so
 * that a decode step writes one slot in place instead of copying the whole history. It also
 * remembers the attention mask of everything cached, which is how padding stays masked for the
 * rest of generation.
 *
 * <p>For continuous batching ({@link DecodeBatch}) the cache has more rows allocated than in use:
 * the model sees the first {@link #batchSize()} rows; a sequence joins by having its prefilled
 * keys copied into a free row and leaves by having the last row moved into its place. All rows
 * share the column count {@link #length()}; a row's real tokens are the columns its mask marks,
 * and positions count those only, so rows of different lengths need no realignment.
 */
public final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final ModelConfig config;
    private final DataType dtype;
    private NDArray[] keys;
    private NDArray[] values;
    private NDArray mask; // [rows, capacity] float 1/0
    private int rows;
    private int active;
    private int capacity;
    private int length;

    KvCache(NDManager parent, ModelConfig config, int batch, int capacity, DataType dtype) {
        this.manager = parent.newSubManager();
        this.config = config;
        this.dtype = dtype;
        allocate(batch, capacity);
        this.active = batch;
    }

    private void allocate(int rows, int capacity) {
        int layers = config.numHiddenLayers();
        keys = new NDArray[layers];
        values = new NDArray[layers];
        Shape shape = new Shape(rows, config.numKeyValueHeads(), capacity, config.headDim());
        for (int i = 0; i < layers; i++) {
            keys[i] = manager.zeros(shape, dtype);
            values[i] = manager.zeros(shape, dtype);
        }
        mask = manager.zeros(new Shape(rows, capacity), DataType.FLOAT32);
        NDScope.unregister(keys);
        NDScope.unregister(values);
        NDScope.unregister(mask);
        this.rows = rows;
        this.capacity = capacity;
    }

    /** Bytes one cached token of one sequence takes: keys and values of every layer. */
    static long bytesPerToken(ModelConfig config, DataType dtype) {
        return 2L * config.numHiddenLayers() * config.numKeyValueHeads() * config.headDim() * dtype.getNumOfBytes();
    }

    /** Tokens cached so far (including padding). */
    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    /** The rows the model sees (the sequences in the batch). */
    public int batchSize() {
        return active;
    }

    int allocatedRows() {
        return rows;
    }

    /** Stores the mask of {@code t} new positions and returns the mask of all cached positions [B, length+t]. */
    NDArray appendMask(NDArray newMask, int t) {
        if (length + t > capacity) {
            throw new IllegalStateException("KV cache full: " + length + " + " + t + " tokens exceed capacity " + capacity);
        }
        mask.set(new NDIndex().addSliceDim(0, active).addSliceDim(length, length + t), newMask.toType(DataType.FLOAT32, false));
        return mask.get(new NDIndex().addSliceDim(0, active).addSliceDim(0, length + t));
    }

    /**
     * Writes this step's keys/values [B, kv, t, hd] of one layer and returns the cached ones up to now.
     * The indices are built, not parsed from strings: a decode step stores every layer, and parsing
     * cost more than the slice itself (measured: 12 µs per parsed get against 4 µs per small op).
     */
    NDArray[] store(int layer, NDArray k, NDArray v, int t) {
        NDIndex slot = new NDIndex().addSliceDim(0, active).addAllDim().addSliceDim(length, length + t);
        keys[layer].set(slot, k);
        values[layer].set(slot, v);
        NDIndex upTo = new NDIndex().addSliceDim(0, active).addAllDim().addSliceDim(0, length + t);
        return new NDArray[] {keys[layer].get(upTo), values[layer].get(upTo)};
    }

    void advance(int t) {
        length += t;
    }

    // ---- continuous batching: rows join, leave and move; the batch grows and compacts ----

    void setActive(int n) {
        if (n < 0 || n > rows) throw new IllegalArgumentException("active rows " + n + " outside 0.." + rows);
        active = n;
    }

    /** Reallocates to at least {@code newRows} x {@code newCapacity}, keeping the active rows' cached columns. */
    void grow(int newRows, int newCapacity) {
        if (newRows <= rows && newCapacity <= capacity) return;
        if (newCapacity < length) throw new IllegalArgumentException("capacity " + newCapacity + " below length " + length);
        NDArray[] oldKeys = keys;
        NDArray[] oldValues = values;
        NDArray oldMask = mask;
        allocate(Math.max(newRows, rows), Math.max(newCapacity, capacity));
        if (active > 0 && length > 0) {
            try (NDScope scope = new NDScope()) {
                NDIndex from = new NDIndex("0:{}, :, 0:{}", active, length);
                for (int l = 0; l < keys.length; l++) {
                    keys[l].set(from, oldKeys[l].get(from));
                    values[l].set(from, oldValues[l].get(from));
                }
                mask.set(new NDIndex("0:{}, 0:{}", active, length), oldMask.get(new NDIndex("0:{}, 0:{}", active, length)));
            }
        }
        for (int l = 0; l < oldKeys.length; l++) {
            oldKeys[l].close();
            oldValues[l].close();
        }
        oldMask.close();
    }

    /** Adds {@code t} masked columns to every row (so that a longer newcomer fits right-aligned). */
    void pad(int t) {
        if (length + t > capacity) throw new IllegalStateException("KV cache full: " + length + " + " + t + " exceed " + capacity);
        mask.set(new NDIndex(":, {}:{}", length, length + t), 0f);
        length += t;
    }

    /** Copies {@code count} cached columns of {@code src}'s row into this cache's row, which then holds exactly those. */
    void copyRow(KvCache src, int srcRow, int srcFrom, int count, int dstRow, int dstFrom) {
        try (NDScope scope = new NDScope()) {
            copyKeysAndValues(src, srcRow, srcFrom, count, dstRow, dstFrom);
            markRow(dstRow, dstFrom, count);
        }
    }

    /** Copies {@code count} columns of {@code src}'s row into this cache's row, marking just those columns real. */
    void copyColumns(KvCache src, int srcRow, int srcFrom, int count, int dstRow, int dstFrom) {
        try (NDScope scope = new NDScope()) {
            copyKeysAndValues(src, srcRow, srcFrom, count, dstRow, dstFrom);
            mask.set(new NDIndex("{}:{}, {}:{}", dstRow, dstRow + 1, dstFrom, dstFrom + count), 1f);
        }
    }

    private void copyKeysAndValues(KvCache src, int srcRow, int srcFrom, int count, int dstRow, int dstFrom) {
        NDIndex from = new NDIndex("{}:{}, :, {}:{}", srcRow, srcRow + 1, srcFrom, srcFrom + count);
        NDIndex to = new NDIndex("{}:{}, :, {}:{}", dstRow, dstRow + 1, dstFrom, dstFrom + count);
        for (int l = 0; l < keys.length; l++) {
            keys[l].set(to, src.keys[l].get(from));
            values[l].set(to, src.values[l].get(from));
        }
    }

    /** Moves row {@code from} (all cached columns and its mask) into row {@code to}. */
    void moveRow(int from, int to) {
        if (from == to) return;
        try (NDScope scope = new NDScope()) {
            NDIndex src = new NDIndex("{}:{}, :, 0:{}", from, from + 1, length);
            NDIndex dst = new NDIndex("{}:{}, :, 0:{}", to, to + 1, length);
            for (int l = 0; l < keys.length; l++) {
                keys[l].set(dst, keys[l].get(src));
                values[l].set(dst, values[l].get(src));
            }
            mask.set(new NDIndex("{}:{}, :", to, to + 1), mask.get(new NDIndex("{}:{}, :", from, from + 1)));
        }
    }

    /**
     * The real (unmasked) columns of {@code row} from column {@code from} on, as {start, count}
     * runs in column order. A row's tokens are contiguous when it joins; padding added for a
     * longer newcomer ({@link #pad}) leaves a gap of masked columns after them.
     */
    int[][] realRuns(int row, int from) {
        float[] real;
        try (NDScope scope = new NDScope()) {
            real = mask.get(new NDIndex("{}, {}:{}", row, from, length)).toFloatArray();
        }
        List<int[]> runs = new ArrayList<>();
        for (int c = 0; c < real.length; ) {
            if (real[c] == 0f) {
                c++;
                continue;
            }
            int begin = c;
            while (c < real.length && real[c] != 0f) c++;
            runs.add(new int[] {from + begin, c - begin});
        }
        return runs.toArray(int[][]::new);
    }

    /** Moves a row's real columns ({@code runs}, from {@link #realRuns}) together, from column {@code to} on; the rest of the row is masked. */
    void squeezeRow(int row, int[][] runs, int to) {
        if (runs.length == 0 || runs.length == 1 && runs[0][0] == to) return;
        int count = 0;
        for (int[] run : runs) count += run[1];
        try (NDScope scope = new NDScope()) {
            NDIndex dst = new NDIndex("{}:{}, :, {}:{}", row, row + 1, to, to + count);
            for (int l = 0; l < keys.length; l++) {
                keys[l].set(dst, gather(keys[l], row, runs));
                values[l].set(dst, gather(values[l], row, runs));
            }
            markRow(row, to, count);
        }
    }

    /** A copy of the runs' columns of one row of one layer, side by side (a copy: the destination may overlap them). */
    private static NDArray gather(NDArray layer, int row, int[][] runs) {
        NDList parts = new NDList(runs.length);
        for (int[] run : runs) parts.add(layer.get(new NDIndex("{}:{}, :, {}:{}", row, row + 1, run[0], run[0] + run[1])));
        return runs.length == 1 ? parts.get(0).duplicate() : NDArrays.concat(parts, 2);
    }

    /** The row's mask becomes 1 on [from, from + count) and 0 elsewhere. */
    private void markRow(int row, int from, int count) {
        mask.set(new NDIndex("{}:{}, :", row, row + 1), 0f);
        mask.set(new NDIndex("{}:{}, {}:{}", row, row + 1, from, from + count), 1f);
    }

    void setLength(int newLength) {
        if (newLength < 0 || newLength > capacity) throw new IllegalArgumentException("length " + newLength + " outside 0.." + capacity);
        length = newLength;
    }

    @Override
    public void close() {
        manager.close();
    }
}
