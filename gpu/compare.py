"""Prints the kit's comparison: per-step losses, tokens/s and peak memory, PrefLoop against PEFT.

    python3 compare.py OUT [DTYPE ...] [LABEL=FILE.jsonl ...]

Reads OUT/prefloop.jsonl (KitTrainingRun), OUT/DTYPE.jsonl (kit_reference.py) and the peak GPU
memory run.sh sampled (OUT/*.gpu-peak-mib). LABEL=FILE adds another PrefLoop run of the same steps
(for instance on DJL's bundled libtorch) to the loss table.
"""
import json
import pathlib
import sys


def read(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def steps(lines):
    return {(x["stage"], x["step"]): x for x in lines if "stage" in x}


def mean_rate(s, stage):
    rows = sorted((k[1], v) for k, v in s.items() if k[0] == stage)
    timed = [v for n, v in rows if n > 1] or [v for _, v in rows]  # the first step warms up
    tokens = sum(v["tokens_per_second"] * v["seconds"] for v in timed)
    return tokens / sum(v["seconds"] for v in timed)


def gib(b):
    return f"{b / 2**30:.2f} GiB"


def main(out, *rest):
    out = pathlib.Path(out)
    dtypes = [a for a in rest if "=" not in a] or ["float32"]
    extra = dict(a.split("=", 1) for a in rest if "=" in a)
    ours_lines = read(out / "prefloop.jsonl")
    ours = steps(ours_lines)
    others = {f"PEFT {d}": read(out / f"{d}.jsonl") for d in dtypes if (out / f"{d}.jsonl").exists()}
    others.update({label: read(path) for label, path in extra.items()})
    print("\nloss per step (PrefLoop first; each other column: its loss, and its difference from PrefLoop's)")
    print("| stage | step | PrefLoop | " + " | ".join(others) + " |")
    print("|---|---|---|" + "---|" * len(others))
    worst = {name: 0.0 for name in others}
    for key in sorted(ours, key=lambda k: (k[0] != "sft", k[1])):
        cells = []
        for name, lines in others.items():
            theirs = steps(lines).get(key)
            if theirs is None:
                cells.append("-")
                continue
            d = theirs["loss"] - ours[key]["loss"]
            worst[name] = max(worst[name], abs(d) / max(abs(ours[key]["loss"]), 1e-12))
            cells.append(f"{theirs['loss']:.6f} ({d:+.2e})")
        print(f"| {key[0]} | {key[1]} | {ours[key]['loss']:.6f} | " + " | ".join(cells) + " |")
    for name, w in worst.items():
        print(f"largest relative loss difference, {name} against PrefLoop: {w:.2e}")

    print("\n| stage | PrefLoop tokens/s | " + " | ".join(f"{n} tokens/s | ratio" for n in others) + " |")
    print("|---|---|" + "---|---|" * len(others))
    for stage in ("sft", "dpo"):
        r = mean_rate(ours, stage)
        cells = []
        for lines in others.values():
            t = mean_rate(steps(lines), stage) if any(k[0] == stage for k in steps(lines)) else None
            cells.append(f"{t:,.0f} | {r / t:.2f}" if t else "- | -")
        print(f"| {stage} | {r:,.0f} | " + " | ".join(cells) + " |")

    for f in sorted(out.glob("trl-*.jsonl")):
        for x in read(f):
            mem = (f"allocator peak {gib(x['peak_allocated_bytes'])}" if "peak_allocated_bytes" in x
                   else f"peak RSS {gib(x.get('peak_rss_bytes', 0))}")
            print(f"TRL trainers, {f.stem[4:]}, {x['stage']}: {x['tokens_per_second']:,.0f} tokens/s "
                  f"(PrefLoop {mean_rate(ours, x['stage']):,.0f}), {mem}")

    print("\npeak memory")
    for f in sorted(out.glob("*.gpu-peak-mib")):
        print(f"  {f.name[:-len('.gpu-peak-mib')]}: {int(f.read_text()):,} MiB on the GPU (nvidia-smi: context + allocator cache)")
    for x in ours_lines:
        if "peak_rss_bytes" in x:
            print(f"  PrefLoop: peak resident set {gib(x['peak_rss_bytes'])}")
    for name, lines in others.items():
        for x in lines:
            if "peak_allocated_bytes" in x:
                print(f"  {name}: CUDA allocator peak {gib(x['peak_allocated_bytes'])}, reserved {gib(x['peak_reserved_bytes'])}")
            if "peak_rss_bytes" in x and x.get("side") == "peft":
                print(f"  {name}: peak resident set {gib(x['peak_rss_bytes'])}")


if __name__ == "__main__":
    main(*sys.argv[1:])
