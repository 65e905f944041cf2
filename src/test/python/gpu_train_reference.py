"""GPU reference for the training benchmark: the same model shape and steps in PyTorch + PEFT.

PrefLoop trains through DJL, whose CUDA runtime needs libtorch 2.7.1 and a JVM on the GPU node
(docker/Dockerfile.worker-gpu). Where only a Python PyTorch is at hand, this script measures
what the same work costs on the GPU, as the ceiling to compare the DJL worker with:
LoRA-SFT and DPO steps (policy forward/backward on chosen and rejected, reference forward with
the adapter off) on SmolLM2-135M's configuration with random weights, and model FLOPs
utilisation against the dense matmul rate measured in the same run.

    python3 src/test/python/gpu_train_reference.py
"""
import time

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                     num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
                     rope_theta=100000.0, max_position_embeddings=8192)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def matmul_rate(dtype, n=8192, reps=10):
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def timed(step, reps=10):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps


def main(batch=8, seq=512):
    torch.manual_seed(0)
    params = None
    for dtype in (torch.float32, torch.bfloat16):
        model = LlamaForCausalLM(CONFIG).to("cuda", dtype=dtype)
        params = sum(p.numel() for p in model.parameters())
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=TARGETS, task_type="CAUSAL_LM"))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
        ids = torch.randint(0, CONFIG.vocab_size, (batch, seq), device="cuda")

        def sft():
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        def logps(m, x):
            out = m(input_ids=x).logits[:, :-1].float()
            return torch.gather(F.log_softmax(out, -1), 2, x[:, 1:, None]).squeeze(-1).sum(-1)

        chosen, rejected = ids, torch.randint(0, CONFIG.vocab_size, (batch, seq), device="cuda")

        def dpo():
            with torch.no_grad(), model.disable_adapter():
                ref = logps(model, chosen) - logps(model, rejected)
            pol = logps(model, chosen) - logps(model, rejected)
            loss = -F.logsigmoid(0.1 * (pol - ref)).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        peak = matmul_rate(dtype)
        tokens = batch * seq
        # 6N per token for forward+backward with frozen base still needs the input gradients (4N) + forward (2N);
        # attention adds 12 * layers * seq * hidden per token (forward+backward).
        attn = 12 * CONFIG.num_hidden_layers * seq * CONFIG.hidden_size
        sft_s = timed(sft)
        dpo_s = timed(dpo)
        sft_flops = tokens * (6 * params + attn)
        dpo_flops = 2 * tokens * (6 * params + attn) + 2 * tokens * (2 * params + attn / 3)
        name = str(dtype).replace("torch.", "")
        print(f"{name}: matmul {peak / 1e12:.1f} TFLOP/s | LoRA-SFT {tokens / sft_s:,.0f} tok/s, MFU {sft_flops / sft_s / peak:.1%}"
              f" | DPO {2 * tokens / dpo_s:,.0f} tok/s (chosen+rejected), MFU {dpo_flops / dpo_s / peak:.1%}", flush=True)
    print(f"model: {params / 1e6:.1f} M parameters, batch {batch} x {seq} tokens, LoRA r=16 on {','.join(TARGETS)}")


if __name__ == "__main__":
    main()
