"""TRL + PEFT doing the training benchmark's steps, for org.prefloop.train.TrainingBenchmark.

    python3 src/test/python/trl_bench.py MODEL_DIR THREADS SEQ SFT_BATCH DPO_PAIRS STEPS [DEVICE [DTYPE [CHECKPOINTING]]]

On CPU in float32 unless told (DEVICE cuda, DTYPE bfloat16 for TRL's bf16: true, as gpu/run.sh
asks on a GPU), without gradient checkpointing unless CHECKPOINTING is true: TRL 1.13's SFTConfig
and DPOConfig default to gradient_checkpointing=True, so the benchmark always says which it means,
as PrefLoop's side does. LoRA r=16 (alpha 32, no dropout) on all seven projections, one step = one full
batch; SFT_BATCH prompt-completion examples of SEQ tokens (a quarter prompt, completion-only loss)
and DPO_PAIRS pairs whose prompt+chosen and prompt+rejected are SEQ tokens each (the reference is
the policy with the adapter switched off, as in PrefLoop). Prints one JSON line per stage: best
seconds per step of STEPS after one warm-up, tokens/s, and the process's peak resident memory so
far in the stage (VmHWM, reset when the stage begins) and RSS after the model loaded, or on CUDA the
allocator's peak.
"""
import json
import random
import resource
import sys
import tempfile
import time

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class StepTimes(TrainerCallback):
    def __init__(self):
        self.times = []
        self.start = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)


def text(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def peak(device):
    if device == "cuda":
        return {"peak_allocated_bytes": torch.cuda.max_memory_allocated(), "peak_reserved_bytes": torch.cuda.max_memory_reserved()}
    return {"peak_rss_bytes": vm_hwm()}


def vm_hwm():
    """This process's own peak resident set since the stage began (reset_peak). Not ru_maxrss: Linux
    carries the parent's peak into ru_maxrss across fork and exec, so a child of a 7 GiB JVM would
    report at least 7 GiB."""
    return status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def status(key):
    """A /proc/self/status size in bytes, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak(device):
    """Each stage's peak is its own: VmHWM back to the current RSS (Linux 4.0+), the allocator's peak on CUDA."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def run(kind, model_dir, seq, batch, steps, out, device="cpu", dtype="float32", checkpointing=False):
    rng = random.Random(3)
    prompt_len = seq // 4
    # completions are one character short: TRL appends the end-of-sequence token
    if kind == "sft":
        data = Dataset.from_list([{"prompt": text(rng, prompt_len), "completion": text(rng, seq - prompt_len - 1)} for _ in range(batch)])
    else:
        data = Dataset.from_list([{"prompt": text(rng, prompt_len), "chosen": text(rng, seq - prompt_len - 1),
                                   "rejected": text(rng, seq - prompt_len - 1)} for _ in range(batch)])
    common = dict(output_dir=out, per_device_train_batch_size=batch, gradient_accumulation_steps=1, max_steps=steps + 1,
                  learning_rate=1e-4, lr_scheduler_type="constant", logging_steps=1, report_to=[], save_strategy="no",
                  use_cpu=device == "cpu", max_length=seq, bf16=dtype == "bfloat16", fp16=dtype == "float16",
                  dataloader_num_workers=0, gradient_checkpointing=checkpointing)
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    reset_peak(device)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    loaded = status("VmRSS") if device == "cpu" else None
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    timer = StepTimes()
    if kind == "sft":
        trainer = SFTTrainer(model=model, args=SFTConfig(**common, completion_only_loss=True), train_dataset=data,
                             processing_class=tokenizer, peft_config=peft, callbacks=[timer])
        tokens = batch * seq
    else:
        trainer = DPOTrainer(model=model, args=DPOConfig(**common, beta=0.1), train_dataset=data,
                             processing_class=tokenizer, peft_config=peft, callbacks=[timer])
        tokens = 2 * batch * seq
    trainer.train()
    best = min(timer.times[1:])
    return {"stage": kind, "gradient_checkpointing": checkpointing, "seconds_per_step": best, "tokens_per_second": tokens / best, **peak(device),
            **({"rss_after_load_bytes": loaded} if loaded is not None else {})}


def main(model_dir, threads, seq, sft_batch, dpo_pairs, steps, device="cpu", dtype="float32", checkpointing="false"):
    torch.set_num_threads(int(threads))
    with tempfile.TemporaryDirectory() as out:
        for kind, batch in (("sft", int(sft_batch)), ("dpo", int(dpo_pairs))):
            print(json.dumps(run(kind, model_dir, int(seq), batch, int(steps), out, device, dtype, checkpointing == "true")), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:10])
