"""Checks PrefLoop's checkpoints and adapters against Hugging Face transformers and PEFT.

Run where transformers, peft and torch are installed (the project's build machines have no
PyPI; the GPU machine has them):

    python3 src/test/python/interop_check.py CASES_DIR OUT_DIR

CASES_DIR holds one folder per case, written by org.prefloop.lora.InteropCases (test scope):
    model/        a Hugging Face checkpoint written by PrefLoop
    adapter/      a PEFT adapter written by PrefLoop (optional)
    case.json     {"input_ids": [[...]], "logits": [[[...]]], "adapter_logits": [[[...]]] (optional),
                   "target_modules": [...], "r": N, "lora_alpha": N}
For each case this prints the largest absolute difference between PrefLoop's logits and
transformers' (and PEFT's, with the adapter), and writes into OUT_DIR/<case>/ an adapter that
PEFT itself made (random, non-zero) with the logits PEFT computes with it, so that a PrefLoop
test can load an adapter it did not write and compare.
"""
import json
import pathlib
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM


def logits(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits.float()


def main(cases_dir, out_dir):
    report = {}
    worst = 0.0
    for case in sorted(p for p in pathlib.Path(cases_dir).iterdir() if p.is_dir()):
        spec = json.loads((case / "case.json").read_text())
        ids = torch.tensor(spec["input_ids"], dtype=torch.long)
        mask = torch.tensor(spec.get("attention_mask", [[1] * len(r) for r in spec["input_ids"]]), dtype=torch.long)
        valid = mask.bool().unsqueeze(-1)
        base = AutoModelForCausalLM.from_pretrained(case / "model", torch_dtype=torch.float32).eval()
        hf = logits(base, ids, mask)
        ours = torch.tensor(spec["logits"])
        entry = {"model_type": base.config.model_type,
                 "base_max_abs_diff": (hf - ours).abs().masked_select(valid).max().item()}
        if (case / "adapter").exists():
            peft_model = PeftModel.from_pretrained(base, case / "adapter").eval()
            entry["adapter_max_abs_diff"] = (logits(peft_model, ids, mask) - torch.tensor(spec["adapter_logits"])).abs().masked_select(valid).max().item()
            entry["adapter_changes_logits"] = (logits(peft_model, ids, mask) - hf).abs().max().item()
            base = peft_model.unload()
        torch.manual_seed(1234)
        config = LoraConfig(r=spec.get("r", 4), lora_alpha=spec.get("lora_alpha", 8),
                            target_modules=spec.get("target_modules", ["q_proj", "v_proj"]),
                            init_lora_weights=False, lora_dropout=0.0, task_type="CAUSAL_LM")
        fresh = AutoModelForCausalLM.from_pretrained(case / "model", torch_dtype=torch.float32)
        made_by_peft = get_peft_model(fresh, config).eval()
        target = pathlib.Path(out_dir) / case.name
        made_by_peft.save_pretrained(target / "peft_adapter")
        (target / "peft_logits.json").write_text(json.dumps({
            "input_ids": spec["input_ids"],
            "attention_mask": mask.tolist(),
            "logits": logits(made_by_peft, ids, mask).tolist(),
            "base_logits": hf.tolist()}))
        worst = max(worst, entry["base_max_abs_diff"], entry.get("adapter_max_abs_diff", 0.0))
        report[case.name] = entry
        print(case.name, json.dumps(entry), flush=True)
    (pathlib.Path(out_dir) / "interop_report.json").write_text(json.dumps(report, indent=2))
    print("worst max abs diff", worst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
