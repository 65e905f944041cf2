"""The matrix products of one decode step of the SmolLM2-135M shape (30 layers: q, k, v, o, gate, up,
down; then the 49,152-row LM head) in PyTorch on this CPU, per weight dtype and rows (1 stream, a
batch of 8): what bounds PrefLoop's single-stream decode before any engine-call overhead.

    python3 src/test/python/decode_products_bench.py [threads]

Prints the best of five passes per dtype and rows, and each dtype's time against float32's.
"""
import sys
import time

import torch

HIDDEN, INTER, LAYERS, VOCAB, KV = 576, 1536, 30, 49152, 192


def weights(dtype):
    shapes = [(HIDDEN, HIDDEN), (KV, HIDDEN), (KV, HIDDEN), (HIDDEN, HIDDEN), (INTER, HIDDEN), (INTER, HIDDEN), (HIDDEN, INTER)]
    return [torch.randn(*s, dtype=dtype) for _ in range(LAYERS) for s in shapes] + [torch.randn(VOCAB, HIDDEN, dtype=dtype)]


def best_ms(ws, rows, dtype):
    x = torch.randn(rows, HIDDEN, dtype=dtype)
    xi = torch.randn(rows, INTER, dtype=dtype)
    best = float("inf")
    with torch.no_grad():
        for _ in range(5):
            t = time.perf_counter()
            for w in ws:
                torch.nn.functional.linear(xi if w.shape[1] == INTER else x, w)
            best = min(best, time.perf_counter() - t)
    return best * 1000


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    base = {}
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        ws = weights(dtype)
        for rows in (1, 8):
            ms = best_ms(ws, rows, dtype)
            base.setdefault(rows, ms)
            print(f"{str(dtype):15s} rows {rows}: {ms:6.1f} ms ({ms / base[rows]:.2f} of float32)")


if __name__ == "__main__":
    main()
