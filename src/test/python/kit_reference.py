"""The GPU kit's reference side: the steps KitTrainingRun took through PrefLoop, through PEFT + PyTorch.

    python3 src/test/python/kit_reference.py OUT DEVICE DTYPE

OUT is KitTrainingRun's output: batches.json (model, token ids, which positions carry the loss,
steps, learning rate, beta, clipping) and adapter-init (the PEFT adapter PrefLoop started from).
DEVICE is cpu or cuda; DTYPE float32, bfloat16 or float16 (the frozen base's dtype; PEFT keeps the
adapter in float32). LoRA SFT steps from adapter-init, then LoRA DPO steps (sigmoid, the reference
being the model with the adapter off) from adapter-init again, each with a fresh AdamW (no weight
decay), global-norm clipping and a constant learning rate, one full batch per step, as PrefLoop's
trainers take them. Prints one JSON line per step (loss, seconds, tokens/s) and one with the peak
memory (CUDA allocator peak, or the process's peak RSS on CPU), and writes them to OUT/DTYPE.jsonl.
"""
import json
import pathlib
import resource
import sys
import time

import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import AutoModelForCausalLM


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def completion_logps(model, ids, prompt_len):
    logits = model(input_ids=ids).logits[:, :-1].float()
    lp = torch.gather(F.log_softmax(logits, -1), 2, ids[:, 1:, None]).squeeze(-1)
    return lp[:, prompt_len - 1:].sum(-1)


def main(out, device, dtype_name):
    out = pathlib.Path(out)
    spec = json.loads((out / "batches.json").read_text())
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    lines = []

    def fresh():
        base = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=dtype).to(device)
        model = PeftModel.from_pretrained(base, str(out / "adapter-init"), is_trainable=True)
        params = [p for p in model.parameters() if p.requires_grad]
        return model, params, torch.optim.AdamW(params, lr=spec["learning_rate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    def record(stage, step, loss, seconds, tokens):
        line = {"side": "peft", "dtype": dtype_name, "stage": stage, "step": step, "loss": loss, "seconds": seconds,
                "tokens_per_second": tokens / seconds}
        print(json.dumps(line), flush=True)
        lines.append(line)

    model, params, opt = fresh()
    ids = torch.tensor([r["ids"] for r in spec["sft"]], device=device)
    labels = ids.masked_fill(~torch.tensor([r["scored"] for r in spec["sft"]], device=device), -100)
    for step in range(1, spec["steps"] + 1):
        sync(device)
        t = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, spec["max_grad_norm"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        value = loss.item()
        sync(device)
        record("sft", step, value, time.perf_counter() - t, ids.numel())
    del model, params, opt

    model, params, opt = fresh()
    prompt_len = len(spec["dpo"][0]["prompt"])
    chosen = torch.tensor([r["prompt"] + r["chosen"] for r in spec["dpo"]], device=device)
    rejected = torch.tensor([r["prompt"] + r["rejected"] for r in spec["dpo"]], device=device)
    both = torch.cat([chosen, rejected])
    n = chosen.shape[0]
    for step in range(1, spec["steps"] + 1):
        sync(device)
        t = time.perf_counter()
        with torch.no_grad(), model.disable_adapter():
            ref = completion_logps(model, both, prompt_len)
        pol = completion_logps(model, both, prompt_len)
        logits = (pol[:n] - ref[:n]) - (pol[n:] - ref[n:])
        loss = -F.logsigmoid(spec["beta"] * logits).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, spec["max_grad_norm"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        value = loss.item()
        sync(device)
        record("dpo", step, value, time.perf_counter() - t, both.numel())

    if device == "cuda":
        peak = {"peak_allocated_bytes": torch.cuda.max_memory_allocated(), "peak_reserved_bytes": torch.cuda.max_memory_reserved()}
    else:
        peak = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    summary = {"side": "peft", "dtype": dtype_name, "torch": torch.__version__, **peak}
    print(json.dumps(summary), flush=True)
    lines.append(summary)
    (out / (dtype_name + ".jsonl")).write_text("".join(json.dumps(x) + "\n" for x in lines))


if __name__ == "__main__":
    main(*sys.argv[1:4])
