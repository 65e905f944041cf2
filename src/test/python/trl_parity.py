"""Runs the steps PrefLoop ran through TRL's own trainers, for org.prefloop.train.TrlParityTest.

    python3 src/test/python/trl_parity.py CASE_DIR

CASE_DIR/case.json names the checkpoint PrefLoop wrote, the runs and their settings:
    {"model": DIR, "runs": [{"name", "kind": "sft"|"dpo", "dataset": JSONL, "batch_size", "steps",
      "learning_rate", "weight_decay", "max_grad_norm", "max_length", "beta", "loss_type", "seed"}]}
Every run is full fine-tuning in float32 from that checkpoint, one full batch per step, constant
learning rate, no warm-up, dropout off (the checkpoint has none), on CPU. For each run this writes
CASE_DIR/<name>.trl.json: the per-step log (TRL's names) and the token ids TRL trained on, so the
test can require the same ids, losses and log-probabilities as PrefLoop's.
"""
import json
import pathlib
import sys
import tempfile

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer


def common(run, out):
    return dict(output_dir=out, per_device_train_batch_size=run["batch_size"], gradient_accumulation_steps=1,
                max_steps=run["steps"], learning_rate=run["learning_rate"], lr_scheduler_type="constant",
                warmup_steps=0, weight_decay=run["weight_decay"], max_grad_norm=run["max_grad_norm"],
                adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, optim="adamw_torch",
                logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, seed=run["seed"],
                max_length=run["max_length"], bf16=False, fp16=False, dataloader_drop_last=False)


def main(case_dir):
    case_dir = pathlib.Path(case_dir)
    case = json.loads((case_dir / "case.json").read_text())
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for run in case["runs"]:
        torch.manual_seed(run["seed"])
        model = AutoModelForCausalLM.from_pretrained(case["model"], dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(case["model"])
        data = load_dataset("json", data_files=str(case_dir / run["dataset"]), split="train")
        with tempfile.TemporaryDirectory() as out:
            if run["kind"] == "dpo":
                args = DPOConfig(**common(run, out), beta=run["beta"], loss_type=[run["loss_type"]])
                trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
                ids = [{"prompt": r["prompt_ids"], "chosen": r["chosen_ids"], "rejected": r["rejected_ids"]}
                       for r in trainer.train_dataset]
            else:
                args = SFTConfig(**common(run, out), completion_only_loss=True, packing=False)
                trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
                # TRL 1.13 turns the completion mask into labels: -100 where no loss is taken
                ids = [{"ids": r["input_ids"], "scored": [0 if t == -100 else 1 for t in r["labels"]]}
                       for r in trainer.train_dataset]
            trainer.train()
        steps = [h for h in trainer.state.log_history if "loss" in h and "step" in h]
        (case_dir / (run["name"] + ".trl.json")).write_text(json.dumps({"steps": steps, "ids": ids}))
        print(run["name"], json.dumps(steps), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
