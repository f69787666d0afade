"""LoRA tuning of the default local model (SmolLM2-135M) on CPU, exported as a llama.cpp adapter.

The shipped model is a quantised GGUF; transformers de-quantises it for training (``gguf_file=``),
peft adds low-rank adapters, and :func:`export_gguf_adapter` writes them in llama.cpp's LoRA
adapter format so the agent serves base + adapter from llama.cpp with no conversion tools. The
router (agent/router.py) is the first user; the InstructRec rerank tuning reuses this.

One example is chat messages (the prompt) plus the assistant's answer; the loss covers the
answer only.
"""

from __future__ import annotations

import logging
import math
import os
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# HF module name → llama.cpp tensor name inside block i (llama architecture).
GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class SftExample:
    messages: list[dict]  # [{"role": "system"|"user"|"assistant", "content": ...}, ...] ending with the ask
    answer: str


@dataclass
class TuneConfig:
    rank: int = 8
    alpha: float = 16.0
    epochs: int = 3
    lr: float = 3e-4
    batch_size: int = 8
    seed: int = 0
    threads: int | None = None
    # The router's decision (its intent label) comes first in the answer; its tokens can count more
    # than the JSON around them. 1.0 = plain cross-entropy over the answer.
    lead_tokens: int = 0
    lead_weight: float = 1.0


def load_base(gguf_path: Path):
    """Tokenizer and fp32 model de-quantised from the GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=torch.float32)
    return tokenizer, model


def encode(tokenizer, example: SftExample) -> tuple[list[int], int]:
    """Token ids of prompt + answer + end-of-turn, and where the answer starts."""
    prompt = tokenizer.apply_chat_template(example.messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    return prompt_ids + answer_ids, len(prompt_ids)


def _batches(encoded: list[tuple[list[int], int]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (little padding), batches in random order."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def train_lora(examples: Sequence[SftExample], gguf_path: Path, config: TuneConfig = TuneConfig()):
    """Fine-tune LoRA adapters on the examples; returns the peft model (base + adapters)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    tokenizer, base = load_base(gguf_path)
    model = get_peft_model(base, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                                            target_modules=TARGET_MODULES))
    encoded = [encode(tokenizer, e) for e in examples]
    rng = random.Random(config.seed)
    steps = config.epochs * math.ceil(len(encoded) / config.batch_size)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10) * (1 - s / steps))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.train()
    with tqdm(total=steps, desc="tuning", unit="batch") as bar:
        for epoch in range(config.epochs):
            losses = []
            for batch in _batches(encoded, config.batch_size, rng):
                width = max(len(encoded[i][0]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                labels = torch.full((len(batch), width), -100, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    tokens, start = encoded[i]
                    ids[row, :len(tokens)] = torch.tensor(tokens)
                    labels[row, start:len(tokens)] = torch.tensor(tokens[start:])
                    mask[row, :len(tokens)] = 1
                loss = _weighted_loss(model(input_ids=ids, attention_mask=mask).logits, labels,
                                      [encoded[i][1] for i in batch], config)
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-20:]):.3f}")
            log.info("epoch %d: mean loss %.4f", epoch + 1, float(np.mean(losses)))
    model.eval()
    return tokenizer, model


def _weighted_loss(logits, labels, starts: list[int], config: TuneConfig):
    """Next-token cross-entropy over the answer tokens; the first ``lead_tokens`` of each answer
    weigh ``lead_weight``."""
    import torch
    import torch.nn.functional as F

    logits, targets = logits[:, :-1], labels[:, 1:]
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                             reduction="none").view(targets.shape)
    weights = (targets != -100).float()
    if config.lead_tokens and config.lead_weight != 1.0:
        for row, start in enumerate(starts):  # target t predicts token t+1: the answer starts at start-1
            weights[row, start - 1:start - 1 + config.lead_tokens] *= config.lead_weight
    return (losses * weights).sum() / torch.clamp(weights.sum(), min=1.0)


def _permute_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp stores Q and K rows interleaved for its rotary embedding (as convert_hf_to_gguf does)."""
    return (weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def export_gguf_adapter(model, path: Path, alpha: float) -> Path:
    """Write the LoRA matrices as a llama.cpp adapter GGUF (``lora_path=``); temp file, then rename."""
    import gguf

    tensors: dict[str, np.ndarray] = {}
    for name, module in model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        # name: base_model.model.model.layers.{i}.{self_attn|mlp}.{proj}
        parts = name.split(".")
        layer = int(parts[parts.index("layers") + 1])
        gguf_name = GGUF_NAMES[".".join(parts[-2:])]
        a = module.lora_A["default"].weight.detach().float().numpy()  # (rank, in)
        b = module.lora_B["default"].weight.detach().float().numpy()  # (out, rank)
        if gguf_name in ("attn_q", "attn_k"):
            b = _permute_rows(b, model.config.num_attention_heads if gguf_name == "attn_q"
                              else model.config.num_key_value_heads)
        tensors[f"blk.{layer}.{gguf_name}.weight.lora_a"] = np.ascontiguousarray(a, dtype=np.float32)
        tensors[f"blk.{layer}.{gguf_name}.weight.lora_b"] = np.ascontiguousarray(b, dtype=np.float32)
    if not tensors:
        raise ValueError("the model has no LoRA adapters to export")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, "llama")
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        for name, value in tensors.items():
            writer.add_tensor(name, value.astype(np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an adapter is package data
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("wrote %d adapter tensors to %s", len(tensors), path)
    return path


__all__ = ["SftExample", "TuneConfig", "encode", "export_gguf_adapter", "load_base", "train_lora"]
