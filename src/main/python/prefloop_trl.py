"""PrefLoop's TRL executor: one run spec, trained by TRL instead of PrefLoop's DJL trainer.

    python3 prefloop_trl.py spec.json

The spec is the JSON the worker writes (TRL's and PEFT's names, paths already absolute). Same
semantics as the DJL executor: SFT, then DPO whose reference is the SFT result merged into the
base (with LoRA: the DPO adapter switched off), then the aligned model as a full checkpoint.
Same output layout under output_dir:

    sft/metrics.jsonl, sft/adapter/ (PEFT) or sft/model/, sft/summary.json
    dpo/metrics.jsonl, dpo/adapter/, dpo/summary.json
    model/         config.json (the base's), model.safetensors, tokenizer files
    summary.json   written last: its presence means the run finished

stdout carries one JSON object per line for the worker (everything else the libraries print is
sent to stderr): {"event": "stage" | "step" | "eval" | "checkpoint" | "message" | "failed", ...}.
With PREFLOOP_EVENTS set (the kubeflow executor, whose worker cannot read a pod's stdout) each
event is also appended to that file. A failure exits 1 after a "failed" event with the reason.
Killing the process at any point leaves no model/ that looks finished: it is written as
model.writing/ and renamed at the end.

Under `accelerate launch` (the spec's accelerate section) every process runs this program; the
first (RANK 0) alone reports and writes files, the others train their share and wait for it.
After a stage each process reloads the model from what was saved, so a sharded (FSDP, ZeRO-3)
stage hands the next one a whole model.
"""
import json
import math
import os
import random
import shutil
import sys
import time

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json", "chat_template.jinja"]

# The worker reads our events from fd 1; anything a library prints goes to stderr instead.
_events = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def exit_with_parent():
    """A worker killed outright (SIGKILL) cannot end us; its successor would find two trainers writing one run."""
    import threading
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(3)
    threading.Thread(target=watch, daemon=True).start()


_said = set()
RANK = int(os.environ.get("RANK", "0"))
WORLD_SIZE = int(os.environ.get("WORLD_SIZE", "1"))
MAIN = RANK == 0
_events_file = os.environ.get("PREFLOOP_EVENTS")


def emit(event, **fields):
    if not MAIN:
        return
    if event == "message" and fields["text"] in _said:  # the data is read twice: checked first, then trained on
        return
    _said.add(fields.get("text"))
    line = json.dumps({"event": event, **fields}, allow_nan=True) + "\n"
    _events.write(line)
    _events.flush()
    if _events_file:
        with open(_events_file, "a", encoding="utf-8") as f:
            f.write(line)


def barrier():
    """Every process waits here until all arrive (a no-op in one process)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class RunError(Exception):
    """Bad input, named for the person who wrote the spec."""


# ---------------------------------------------------------------- data (checked before the heavy imports)

def read_jsonl(path, what):
    if not os.path.isfile(path):
        raise RunError(f"{what}: no such file {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise RunError(f"{what} line {n}: not JSON ({e.msg})")
            if not isinstance(row, dict):
                raise RunError(f"{what} line {n}: not a JSON object")
            rows.append((n, row))
    if not rows:
        raise RunError(f"{what}: {path} has no examples")
    return rows


def sft_rows(rows, what):
    """TRL's SFT formats. A conversation becomes one prompt/completion example per assistant turn,
    so the loss falls on every assistant turn and nothing else, as in the DJL executor (TRL's own
    assistant_only_loss needs {% generation %} markers that most templates lack)."""
    out = []
    for n, r in rows:
        if "messages" in r:
            msgs = r["messages"]
            turns = [i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "assistant"]
            if not isinstance(msgs, list) or not turns:
                raise RunError(f"{what} line {n}: 'messages' has no assistant turn")
            out += [{"prompt": msgs[:i], "completion": [msgs[i]]} for i in turns]
        elif "prompt" in r and "completion" in r:
            out.append({"prompt": r["prompt"], "completion": r["completion"]})
        elif "text" in r:
            out.append({"text": r["text"]})
        else:
            raise RunError(f"{what} line {n}: needs 'messages', 'prompt' and 'completion', or 'text'")
    kinds = {tuple(sorted(x)) for x in out}
    if len(kinds) > 1:
        raise RunError(f"{what}: mixes SFT formats ({', '.join('/'.join(k) for k in sorted(kinds))}); use one")
    return out


def dpo_rows(rows, what):
    out, weighted = [], False
    for n, r in rows:
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in r]
        if missing:
            raise RunError(f"{what} line {n}: no '{missing[0]}'")
        kinds = {k: isinstance(r[k], list) for k in ("prompt", "chosen", "rejected")}
        if len(set(kinds.values())) > 1:
            raise RunError(f"{what} line {n}: prompt, chosen and rejected must all be strings or all message lists")
        weighted |= r.get("weight", 1) != 1
        out.append({"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]})
    if len({isinstance(x["prompt"], list) for x in out}) > 1:
        raise RunError(f"{what}: mixes plain strings and message lists")
    if weighted:
        emit("message", text="dpo: pair weights are not applied by the TRL executor (TRL's DPO has no per-pair weight)")
    return out


def stage_data(spec, name, convert):
    s = spec[name]
    train = convert(read_jsonl(s["dataset"], f"{name}.dataset"), f"{name}.dataset")
    evals = None
    if s.get("eval_dataset"):
        evals = convert(read_jsonl(s["eval_dataset"], f"{name}.eval_dataset"), f"{name}.eval_dataset")
    elif s.get("eval_split", 0) > 0:
        order = list(range(len(train)))
        random.Random(spec.get("seed", 42)).shuffle(order)
        n = max(1, round(len(train) * s["eval_split"]))
        evals = [train[i] for i in order[-n:]]
        train = [train[i] for i in order[:-n]]
    return train, evals


def refuse_unsupported(spec):
    for name in ("sft", "dpo"):
        s = spec.get(name)
        if s and s.get("replay_ratio", 0) > 0:
            raise RunError(f"{name}.replay_ratio: replay mixing is not available in the TRL executor (use executor: djl)")
        if s and s.get("stop_on_displacement"):
            raise RunError(f"{name}.stop_on_displacement: the displacement monitor is not available in the TRL executor (use executor: djl)")


# ---------------------------------------------------------------- training

# Settings the DJL executor accepts without effect that TRL applies (a GPU run wants bf16, maybe checkpointing).
APPLIED_TRL_KEYS = ("bf16", "fp16", "tf32", "gradient_checkpointing", "optim", "dataloader_num_workers", "use_liger_kernel")


def training_args(s, stage, out, seed):
    """TrainingArguments shared by both stages, under the spec's (TRL's) names."""
    has_eval = bool(s.get("eval_dataset")) or s.get("eval_split", 0) > 0
    eval_steps = s.get("eval_steps", 0)
    save_steps = s.get("save_steps", 0)
    return dict(
        output_dir=os.path.join(out, "checkpoints", "trl-" + stage),
        seed=seed,
        num_train_epochs=s.get("num_train_epochs", 1),
        max_steps=s.get("max_steps", -1),
        per_device_train_batch_size=s.get("per_device_train_batch_size", 8),
        per_device_eval_batch_size=s.get("per_device_eval_batch_size", 8),
        gradient_accumulation_steps=s.get("gradient_accumulation_steps", 1),
        learning_rate=s.get("learning_rate", 2e-4),
        lr_scheduler_type=s.get("lr_scheduler_type", "cosine"),
        # transformers 5 takes the ratio as a float below 1 in warmup_steps
        warmup_steps=s.get("warmup_steps") or s.get("warmup_ratio", 0.0),
        weight_decay=s.get("weight_decay", 0.0),
        adam_beta1=s.get("adam_beta1", 0.9),
        adam_beta2=s.get("adam_beta2", 0.999),
        adam_epsilon=s.get("adam_epsilon", 1e-8),
        max_grad_norm=s.get("max_grad_norm", 1.0),
        max_length=s.get("max_length", 1024),
        logging_steps=max(1, s.get("logging_steps", 1)),
        eval_strategy="steps" if has_eval and eval_steps > 0 else "no",
        eval_steps=eval_steps if eval_steps > 0 else None,
        save_strategy="steps" if save_steps > 0 else "no",
        save_steps=save_steps if save_steps > 0 else 500,
        save_total_limit=1,
        # PrefLoop trains in float32 like the DJL executor; TRL would default to bf16 and checkpointing
        bf16=False, fp16=False, gradient_checkpointing=False,
        report_to=[], disable_tqdm=True, dataloader_num_workers=0,
        # several processes without a GPU (accelerate's DDP launch on a CPU machine): gloo instead of NCCL
        use_cpu=WORLD_SIZE > 1 and not cuda_available(),
    ) | {k: s[k] for k in APPLIED_TRL_KEYS if k in s}


def cuda_available():
    import torch
    return torch.cuda.is_available()


def lora_config(s):
    from peft import LoraConfig
    return LoraConfig(r=s.get("r", 16), lora_alpha=s.get("lora_alpha", 32), lora_dropout=s.get("lora_dropout") or 0.0,
                      target_modules=list(s.get("target_modules")), bias="none", task_type="CAUSAL_LM")


def progress(stage, metrics_file, patience):
    """A TrainerCallback that writes metrics.jsonl and the worker's events, and stops early like the DJL loop."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self):
            self.last, self.last_eval, self.eval_step, self.best, self.bad = {}, None, None, math.inf, 0
            self.stopped_early, self.tokens, self.clock = False, 0.0, time.time()

        def on_train_begin(self, args, state, control, **kw):
            emit("stage", stage=stage, total_steps=state.max_steps)

        def on_log(self, args, state, control, logs=None, **kw):
            logs = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            if any(k.startswith("eval_") for k in logs):
                self.last_eval, self.eval_step = logs, state.global_step
                self._write(state.global_step, logs)
                emit("eval", stage=stage, step=state.global_step, metrics=logs)
            elif "loss" in logs:
                for key, what in (("loss", "loss"), ("grad_norm", "gradient norm")):  # the DJL executor stops here too
                    if key in logs and not math.isfinite(logs[key]):
                        raise RunError(f"{stage}: the {what} is {'NaN' if math.isnan(logs[key]) else 'Infinity'} at step {state.global_step}")
                now, tokens = time.time(), logs.get("num_tokens", 0.0)
                if tokens > self.tokens:  # TRL logs the running token count; the DJL executor reports a rate
                    logs["tokens_per_second"] = (tokens - self.tokens) / max(now - self.clock, 1e-9)
                self.tokens, self.clock = tokens, now
                self.last = logs
                self._write(state.global_step, logs)
                emit("step", stage=stage, step=state.global_step, total_steps=state.max_steps, metrics=logs)

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            loss = (metrics or {}).get("eval_loss")
            if loss is None:
                return
            if loss < self.best - 1e-6:
                self.best, self.bad = loss, 0
            else:
                self.bad += 1
            if 0 < patience <= self.bad and not control.should_training_stop:
                self.stopped_early = control.should_training_stop = True
                emit("message", text=f"{stage}: eval_loss did not improve for {self.bad} evaluations; stopping early at step {state.global_step}")

        def on_save(self, args, state, control, **kw):
            emit("checkpoint", stage=stage, step=state.global_step)

        def _write(self, step, logs):
            if not MAIN:
                return
            with open(metrics_file, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, **logs}) + "\n")

    return Progress()


def run_stage(name, spec, model, tokenizer, out):
    """Trains one stage on the model as it stands and returns (the model with the result merged, the summary)."""
    import transformers
    from transformers.trainer_utils import get_last_checkpoint
    s = spec[name]
    seed = spec.get("seed", 42)
    stage_dir = os.path.join(out, name)
    os.makedirs(stage_dir, exist_ok=True)
    metrics_file = os.path.join(stage_dir, "metrics.jsonl")
    train, evals = stage_data(spec, name, sft_rows if name == "sft" else dpo_rows)
    from datasets import Dataset
    train_ds, eval_ds = Dataset.from_list(train), (Dataset.from_list(evals) if evals else None)
    args = training_args(s, name, out, seed)
    peft = lora_config(s) if s.get("use_peft", True) else None
    for p in model.parameters():  # full fine-tuning trains every weight, even after a LoRA stage froze them
        p.requires_grad_(peft is None)
    objective = None
    if name == "sft":
        from trl import SFTConfig, SFTTrainer
        # plain NLL: "chunked_nll" patches the model's forward for good, and DPO needs its logits afterwards
        config = SFTConfig(**args, packing=s.get("packing", False), loss_type="nll")
        make = lambda: SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                                  processing_class=tokenizer, peft_config=peft)
    else:
        from trl import DPOConfig, DPOTrainer
        loss_type = list(s.get("loss_type") or ["sigmoid"])
        weights = list(s.get("loss_weights") or [1.0] * len(loss_type))
        if s.get("rpo_alpha", 0) > 0:  # the older spelling of an sft term
            loss_type, weights = loss_type + ["sft"], weights + [s["rpo_alpha"]]
        objective = (loss_type, weights)
        if s.get("max_prompt_length"):
            emit("message", text="dpo: max_prompt_length is not applied by TRL 1.x (max_length truncates prompt and answer together)")
        config = DPOConfig(**args, beta=s.get("beta", 0.1), loss_type=loss_type, loss_weights=weights,
                           label_smoothing=s.get("label_smoothing", 0.0),
                           # full fine-tuning: the reference is this model before DPO, scored once up front
                           precompute_ref_log_probs=s.get("precompute_ref_log_probs", False) or peft is None)
        make = lambda: DPOTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                                  processing_class=tokenizer, peft_config=peft)
    transformers.set_seed(seed if name == "sft" else seed + 1)  # the adapter's initialisation, as in the DJL executor
    trainer = make()
    callback = progress(name, metrics_file, s.get("early_stopping_patience", 0))
    trainer.add_callback(callback)
    resume = get_last_checkpoint(args["output_dir"]) if os.path.isdir(args["output_dir"]) else None
    if resume:
        emit("message", text=f"{name}: resuming from {os.path.basename(resume)}")
        if MAIN:
            keep_metrics_up_to(metrics_file, int(resume.rsplit("-", 1)[1]))
    elif MAIN and os.path.exists(metrics_file):
        os.remove(metrics_file)
    barrier()
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    if eval_ds is not None and callback.eval_step != trainer.state.global_step:
        trainer.evaluate()  # every stage ends with an evaluation, as in the DJL executor
    trained = trainer.model
    summary = {
        "stage": name, "executor": "trl", "steps": trainer.state.global_step, "planned_steps": trainer.state.max_steps,
        "examples": len(train), "epochs": trainer.state.epoch, "final": callback.last,
        **({"final_eval": callback.last_eval} if callback.last_eval else {}),
        **({"best_eval_loss": callback.best} if math.isfinite(callback.best) else {}),
        "stopped_early": callback.stopped_early, "seconds_this_session": time.time() - started,
        "train_runtime": result.metrics.get("train_runtime"), "metrics": metrics_file,
        "method": "lora" if peft else "full",
        "trainable_parameters": sum(p.numel() for p in trained.parameters() if p.requires_grad),
    }
    if objective:
        summary.update(loss_type=objective[0], loss_weights=objective[1], beta=s.get("beta", 0.1),
                       reference_model=("the SFT result merged into the base" if spec.get("sft") else "the base model")
                       + (", i.e. the policy with the DPO adapter switched off" if peft else ", reference log-probs precomputed once"))
    saved = os.path.join(stage_dir, "adapter" if peft else "model")
    summary["adapter" if peft else "weights"] = saved
    if WORLD_SIZE > 1:
        # every process takes part: FSDP and ZeRO-3 gather the shards into one full state dict, RANK 0 writes it
        trainer.save_model(saved)
        barrier()
        if MAIN:
            write_json(os.path.join(stage_dir, "summary.json"), summary)
            shutil.rmtree(args["output_dir"], ignore_errors=True)
        barrier()
        return None, summary  # the caller reloads the model from what was saved
    trained.save_pretrained(saved)
    if peft:
        trained = trained.merge_and_unload()
    for p in trained.parameters():
        p.requires_grad_(False)
    write_json(os.path.join(stage_dir, "summary.json"), summary)
    shutil.rmtree(args["output_dir"], ignore_errors=True)  # the stage is done: its checkpoints are not needed
    return trained, summary


def finished_stage(name, spec, model, out):
    """A stage a killed attempt finished: its result applied to the model, its summary; None if unfinished."""
    stage_dir = os.path.join(out, name)
    if not os.path.exists(os.path.join(stage_dir, "summary.json")):
        return None
    emit("message", text=f"{name}: finished earlier, reusing {stage_dir}")
    with open(os.path.join(stage_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    return apply_stage(name, spec, model, out), summary


def apply_stage(name, spec, model, out):
    """The model with a saved stage's result applied: its adapter merged in, or its full weights."""
    stage_dir = os.path.join(out, name)
    if spec[name].get("use_peft", True):
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, os.path.join(stage_dir, "adapter")).merge_and_unload()
    else:
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(os.path.join(stage_dir, "model"), dtype="float32")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def keep_metrics_up_to(path, step):
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        kept = [l for l in f if json.loads(l)["step"] <= step]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(kept)


def save_model(model, base_dir, out):
    """The aligned model as a checkpoint PrefLoop's model core loads: weights from here, config and tokenizer from
    the base (transformers 5 rewrites config.json in its own newer shape; training changes no setting in it)."""
    final, tmp = os.path.join(out, "model"), os.path.join(out, "model.writing")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    for f in ["config.json"] + TOKENIZER_FILES:
        if os.path.exists(os.path.join(base_dir, f)):
            shutil.copyfile(os.path.join(base_dir, f), os.path.join(tmp, f))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def main(spec_file):
    started = time.time()
    with open(spec_file, encoding="utf-8") as f:
        spec = json.load(f)
    out, base = spec["output_dir"], spec["model_name_or_path"]
    if not os.path.isfile(os.path.join(base, "config.json")):
        raise RunError(f"model_name_or_path {base} is not a Hugging Face directory (no config.json)")
    refuse_unsupported(spec)
    for name, convert in (("sft", sft_rows), ("dpo", dpo_rows)):
        if spec.get(name):
            stage_data(spec, name, convert)  # bad data fails here, in a second, before torch is even imported
    os.makedirs(out, exist_ok=True)
    for stale in ("summary.json", "model.writing") if MAIN else ():  # a finished run is never half re-registered
        p = os.path.join(out, stale)
        shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else (os.path.exists(p) and os.remove(p))
    if spec.get("forgetting_dataset"):
        emit("message", text="the forgetting report is not computed by the TRL executor")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(spec.get("seed", 42))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    summary = {"name": spec.get("name", "run"), "executor": "trl", "base_model": base, "seed": spec.get("seed", 42),
               "processes": WORLD_SIZE}
    if spec.get("accelerate"):
        summary["accelerate"] = spec["accelerate"]
    done_stages = []
    for name in ("sft", "dpo"):
        if spec.get(name):
            done = finished_stage(name, spec, model, out)
            model, summary[name] = done if done else run_stage(name, spec, model, tokenizer, out)
            done_stages.append(name)
            if model is None:  # trained by several processes: every one reloads what RANK 0 saved
                model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
                for earlier in done_stages:
                    model = apply_stage(earlier, spec, model, out)
    if MAIN:
        summary["model"] = save_model(model, base, out)
        summary["seconds"] = time.time() - started
        summary["status"] = "succeeded"
        write_json(os.path.join(out, "summary.json"), summary)
    barrier()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: prefloop_trl.py spec.json", file=sys.stderr)
        sys.exit(2)
    exit_with_parent()
    try:
        main(sys.argv[1])
    except RunError as e:
        emit("failed", reason=str(e))
        print(f"prefloop_trl: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # the worker shows this line as the run's reason
        import traceback
        traceback.print_exc()
        emit("failed", reason=f"{type(e).__name__}: {e}".splitlines()[0][:500])
        sys.exit(1)
