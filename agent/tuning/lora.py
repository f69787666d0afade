"""LoRA tuning of the local model on CPU (or CUDA), exported for llama.cpp where it can be.

Two kinds of base model:

- a GGUF file (the shipped SmolLM2-135M, or another llama / qwen2 GGUF): transformers
  de-quantises it (``gguf_file=``), peft adds low-rank adapters, and :func:`export_gguf_adapter`
  writes them in llama.cpp's LoRA adapter format for that architecture, so the agent serves base +
  adapter from llama.cpp with no conversion tools;
- a transformers directory, causal or sequence-to-sequence (T5 / Flan-T5, InstructRec's own
  backbone): the same loop; the adapter is saved in peft's format and served through
  transformers (agent/llm.py, ``TransformersChatModel``).

One example is chat messages (the prompt) plus the assistant's answer; the loss covers the
answer only. Training writes a checkpoint (adapter, optimizer, schedule, step) every
``save_every`` steps into ``checkpoint_dir`` and picks up from it when asked to resume: the batch
plan is fixed by the seed, so a resumed run sees the same batches a straight run would.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.llm import TUNE_DIR, adapter_path, flatten, is_seq2seq, load_base  # their home: serving loads with them too
from recsys.io import atomic_dir, atomic_path

log = logging.getLogger(__name__)

# HF module name → llama.cpp tensor name inside block i (the same for llama and qwen2).
GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}
# transformers' model_type → llama.cpp's architecture, and whether llama.cpp keeps that
# architecture's Q / K rows interleaved (convert_hf_to_gguf permutes llama's, not qwen2's)
GGUF_ARCHITECTURES = {"llama": ("llama", True), "qwen2": ("qwen2", False)}
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
    device: str = "cpu"
    save_every: int = 50  # steps between checkpoints (when a checkpoint folder is given)
    max_steps: int | None = None  # cap the plan at this many batches (a time box: the schedule ends there)
    # a batch larger than this (rows x longest row, in tokens) runs in slices with the same gradient:
    # 8 re-rank prompts with codes (about 900 tokens each) in one pass took 24 GB on the CPU
    max_batch_tokens: int | None = 2048
    # "bf16": forward and backward under bfloat16 autocast (the adapters and optimizer stay fp32);
    # 2.4x faster for Qwen2.5-1.5B on a 2-core AMD EPYC with AVX-512 BF16, and what a GPU run wants
    precision: str = "fp32"


def target_modules(model) -> list[str]:
    """The linear layers LoRA adapts: llama's projections, or T5's attention and feed-forward."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    wanted = ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"] if is_seq2seq(model) else TARGET_MODULES
    return [m for m in wanted if m in names]


def encode_seq2seq(tokenizer, example: SftExample, max_input: int = 1024) -> tuple[list[int], list[int]]:
    """(encoder input ids, decoder label ids) of one example."""
    source = tokenizer(flatten(example.messages), truncation=True, max_length=max_input)["input_ids"]
    return source, tokenizer(example.answer)["input_ids"]


def encode(tokenizer, example: SftExample) -> tuple[list[int], int]:
    """Token ids of prompt + answer + end-of-turn, and where the answer starts."""
    prompt = tokenizer.apply_chat_template(example.messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    return prompt_ids + answer_ids, len(prompt_ids)


def _batch_plan(lengths: Sequence[int], config: TuneConfig) -> list[list[int]]:
    """Every batch of every epoch, in order; fixed by the seed (so a resumed run can skip ahead)."""
    rng = random.Random(config.seed)
    order_keys = list(enumerate(lengths))
    plan = []
    for _ in range(config.epochs):
        order = [i for i, _ in sorted(order_keys, key=lambda x: (x[1], rng.random()))]
        batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        rng.shuffle(batches)
        plan += batches
    return plan[:config.max_steps] if config.max_steps else plan


def _causal_batch(encoded, batch, pad):
    import torch

    width = max(len(encoded[i][0]) for i in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        tokens, start = encoded[i]
        ids[row, :len(tokens)] = torch.tensor(tokens)
        labels[row, start:len(tokens)] = torch.tensor(tokens[start:])
        mask[row, :len(tokens)] = 1
    return ids, mask, labels


def _seq2seq_batch(encoded, batch, pad):
    import torch

    width = max(len(encoded[i][0]) for i in batch)
    out_width = max(len(encoded[i][1]) for i in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), out_width), -100, dtype=torch.long)
    for row, i in enumerate(batch):
        source, target = encoded[i]
        ids[row, :len(source)] = torch.tensor(source)
        mask[row, :len(source)] = 1
        labels[row, :len(target)] = torch.tensor(target)
    return ids, mask, labels


CHECKPOINT = "checkpoint.pt"


def save_peft_adapter(model, path: Path) -> Path:
    """peft's adapter folder, written beside and renamed into place."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(str(tmp))
    return path


def train_lora(examples: Sequence[SftExample], source: Path, config: TuneConfig = TuneConfig(), *,
               checkpoint_dir: Path | None = None, resume: bool = False, stop_at: int | None = None,
               progress: bool = True, then: Sequence[SftExample] = (), after_first: Callable | None = None):
    """Fine-tune LoRA adapters on the examples; returns (tokenizer, the peft model: base + adapters).

    ``then``: a second stage on the same adapters after the first (BinLLM's two-step tuning:
    first the plain prompts, then the ones with codes); ``config.max_steps`` caps each stage, and
    ``after_first(model)`` is called when the first stage's last batch is done.

    ``source``: the GGUF file or a transformers directory (:func:`load_base`). With
    ``checkpoint_dir``, a checkpoint is written every ``config.save_every`` steps and at the end;
    ``resume`` picks up from the one there (it must come from the same examples and config).
    ``stop_at``: stop after this many steps of the plan (a checkpoint is written), to resume later."""
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    tokenizer, base = load_base(source)
    seq2seq = is_seq2seq(base)
    model = get_peft_model(base, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                                            target_modules=target_modules(base),
                                            task_type="SEQ_2_SEQ_LM" if seq2seq else "CAUSAL_LM"))
    model.to(config.device)
    examples = list(examples) + list(then)
    encoded = [encode_seq2seq(tokenizer, e) if seq2seq else encode(tokenizer, e) for e in examples]
    first = len(examples) - len(then)
    plan = _batch_plan([len(e[0]) for e in encoded[:first]], config)
    first_steps = len(plan)
    if then:
        plan += [[first + i for i in batch] for batch in _batch_plan([len(e[0]) for e in encoded[first:]], config)]
    steps = len(plan)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10) * max(0.0, 1 - s / steps))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    done, losses = 0, []
    saved = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    if resume and saved is not None and saved.exists():
        state = torch.load(saved, map_location=config.device, weights_only=False)
        if state["steps"] != steps or state["examples"] != len(examples):
            raise ValueError(f"the checkpoint in {checkpoint_dir} is from another run ({state['examples']} examples, "
                             f"{state['steps']} steps; this one: {len(examples)}, {steps}); start afresh without resume")
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        done, losses = state["done"], state["losses"]
        log.info("resuming at step %d of %d", done, steps)

    def checkpoint() -> None:
        from peft import get_peft_model_state_dict

        with atomic_path(saved) as tmp:
            torch.save({"adapter": get_peft_model_state_dict(model), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "done": done, "losses": losses, "steps": steps,
                        "examples": len(examples)}, tmp)

    model.train()
    with tqdm(total=steps, initial=done, desc="tuning", unit="batch", disable=not progress) as bar:
        for batch in plan[done:stop_at]:
            loss = backward_batch(model, encoded, batch, pad, config, seq2seq)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(round(loss, 5))
            done += 1
            bar.update(1)
            bar.set_postfix(**progress_position(done, first_steps, first, len(then), config.batch_size),
                            loss=f"{np.mean(losses[-20:]):.3f}")
            if saved is not None and (done % config.save_every == 0 or done in (steps, stop_at)):
                checkpoint()
            if then and done == first_steps and after_first is not None:
                model.eval()
                after_first(model)
                model.train()
    log.info("tuned %d steps: mean loss of the last 20 %.4f", done, float(np.mean(losses[-20:])) if losses else 0.0)
    model.eval()
    return tokenizer, model


def progress_position(step: int, first_steps: int, first_examples: int, then_examples: int,
                      batch_size: int) -> dict:
    """Where batch ``step`` (1-based) of a plan stands: its epoch and, in a two-step run, its stage,
    each stage counting its own epochs (its own examples make them up)."""
    def epoch(n: int, examples: int) -> int:
        return (n - 1) // max(1, math.ceil(examples / batch_size)) + 1

    if not then_examples:
        return {"epoch": epoch(step, first_examples)}
    if step <= first_steps:
        return {"stage": 1, "epoch": epoch(step, first_examples)}
    return {"stage": 2, "epoch": epoch(step - first_steps, then_examples)}


def backward_batch(model, encoded, batch: list[int], pad: int, config: TuneConfig, seq2seq: bool) -> float:
    """Forward and backward one batch; returns its loss (one weighted mean over all its answer tokens).

    Long prompts (a re-rank with codes) go through in slices of at most ``config.max_batch_tokens``
    whose gradients add up to the whole batch's."""
    import torch

    parts = []
    for rows in _micro_batches(batch, encoded, config.max_batch_tokens, seq2seq):
        ids, mask, labels = (_seq2seq_batch if seq2seq else _causal_batch)(encoded, rows, pad)
        weights = _answer_weights(labels, [encoded[i][1] for i in rows], config, seq2seq)
        parts.append((ids.to(config.device), mask.to(config.device), labels.to(config.device), weights.to(config.device)))
    total = max(1.0, float(sum(w.sum() for *_, w in parts)))
    loss = 0.0
    autocast = torch.autocast(config.device.split(":")[0], dtype=torch.bfloat16, enabled=config.precision == "bf16")
    for ids, mask, labels, weights in parts:
        with autocast:
            if seq2seq:  # T5 shifts the labels into decoder inputs itself; its logits line up with them
                logits, targets = model(input_ids=ids, attention_mask=mask, labels=labels).logits, labels
            else:  # the logit at t predicts token t+1
                logits, targets = model(input_ids=ids, attention_mask=mask).logits[:, :-1], labels[:, 1:]
        part = _weighted_sum(logits.float(), targets, weights) / total
        part.backward()
        loss += part.item()
    return loss


def _micro_batches(batch: list[int], encoded, max_tokens: int | None, seq2seq: bool) -> list[list[int]]:
    """The batch's rows in slices whose padded size (rows x longest row) stays within max_tokens."""
    if not max_tokens:
        return [batch]
    out, width = [[]], 0
    for i in batch:
        size = len(encoded[i][0]) + (len(encoded[i][1]) if seq2seq else 0)  # T5: encoder + decoder tokens
        if out[-1] and (len(out[-1]) + 1) * max(width, size) > max_tokens:
            out.append([])
            width = 0
        out[-1].append(i)
        width = max(width, size)
    return out


def _answer_weights(labels, starts: list[int], config: TuneConfig, seq2seq: bool):
    """Per target token: 1 on answer tokens, 0 elsewhere; the first ``lead_tokens`` of each causal
    answer weigh ``lead_weight``. Aligned with the targets the loss compares against."""
    if seq2seq:
        return (labels != -100).float()
    targets = labels[:, 1:]
    weights = (targets != -100).float()
    if config.lead_tokens and config.lead_weight != 1.0:
        for row, start in enumerate(starts):  # target t predicts token t+1: the answer starts at start-1
            weights[row, start - 1:start - 1 + config.lead_tokens] *= config.lead_weight
    return weights


def _weighted_sum(logits, targets, weights):
    """Cross-entropy of each target token times its weight, summed."""
    import torch.nn.functional as F

    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                             reduction="none").view(targets.shape)
    return (losses * weights).sum()


def _permute_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp stores a llama's Q and K rows interleaved for its rotary embedding (as
    convert_hf_to_gguf does)."""
    return (weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def check_exportable(source: Path) -> None:
    """Raise ValueError before a run whose adapter :func:`export_gguf_adapter` could not write:
    a GGUF base of another architecture than llama or qwen2 (a transformers folder always saves)."""
    import gguf

    source = Path(source)
    if not source.is_file():
        return
    field = gguf.GGUFReader(str(source)).get_field("general.architecture")
    architecture = field.contents() if field is not None else None
    if architecture not in {arch for arch, _ in GGUF_ARCHITECTURES.values()}:
        raise ValueError(f"{source.name} is a {architecture!r} model: its LoRA adapter cannot be exported for "
                         f"llama.cpp (only {', '.join(GGUF_ARCHITECTURES)}); tune its transformers folder instead")


def export_gguf_adapter(model, path: Path, alpha: float) -> Path:
    """Write the LoRA matrices as a llama.cpp adapter GGUF (``lora_path=``); temp file, then rename.
    The base must be one of :data:`GGUF_ARCHITECTURES` (llama.cpp refuses an adapter whose
    architecture differs from its model's)."""
    import gguf

    model_type = model.config.model_type
    if model_type not in GGUF_ARCHITECTURES:
        raise ValueError(f"cannot export a LoRA adapter of a {model_type!r} model for llama.cpp (only "
                         f"{', '.join(GGUF_ARCHITECTURES)}); tune its transformers folder instead (--model <folder>)")
    architecture, interleaved = GGUF_ARCHITECTURES[model_type]
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
        if interleaved and gguf_name in ("attn_q", "attn_k"):
            b = _permute_rows(b, model.config.num_attention_heads if gguf_name == "attn_q"
                              else model.config.num_key_value_heads)
        tensors[f"blk.{layer}.{gguf_name}.weight.lora_a"] = np.ascontiguousarray(a, dtype=np.float32)
        tensors[f"blk.{layer}.{gguf_name}.weight.lora_b"] = np.ascontiguousarray(b, dtype=np.float32)
    if not tensors:
        raise ValueError("the model has no LoRA adapters to export")
    with atomic_path(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), architecture)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        for name, value in tensors.items():
            writer.add_tensor(name, value.astype(np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    log.info("wrote %d adapter tensors to %s", len(tensors), path)
    return path


CODES_MODES = ("off", "on", "two-step")  # BinLLM codes in the prompts: none, all, or first none then all


def tune_adapter(plain: Sequence[SftExample], source: Path, home: Path, config: TuneConfig = TuneConfig(), *,
                 coded: Sequence[SftExample] = (), codes: str = "off", run_name: str = "instructions",
                 resume: bool = False, on_saved: Callable[[Path], None] | None = None) -> Path:
    """Tune an adapter of ``source`` and save it where the local backend looks (:func:`adapter_path`:
    a llama.cpp adapter GGUF for a GGUF base, a peft folder for a transformers one); returns its path.

    ``codes``: "off" tunes on ``plain``; "on" on ``coded`` (the same asks with BinLLM's codes);
    "two-step" (BinLLM) on ``plain`` first, saved as the agent's adapter, then on ``coded`` on the
    same adapter. With codes the last adapter is saved as the "codes" variant, which the agent does
    not load by itself (its prompts carry no codes). Checkpoints go to
    ``<home>/tune/checkpoints/<base>-<run_name>[-codes-<mode>]``; ``on_saved(path)`` is called after
    each adapter is written."""
    if codes not in CODES_MODES:
        raise ValueError(f"unknown codes mode {codes!r}: {', '.join(CODES_MODES)}")
    source, home = Path(source), Path(home)
    tag = "" if codes == "off" else f"-codes-{codes}"
    run_dir = home / TUNE_DIR / "checkpoints" / f"{source.stem}-{run_name}{tag}"

    def save(tuned, out: Path) -> Path:
        if source.is_file():
            export_gguf_adapter(tuned, out, alpha=config.alpha)
        else:
            save_peft_adapter(tuned, out)
        if on_saved is not None:
            on_saved(out)
        return out

    if codes == "two-step":
        # step 1 (no codes) is the agent's adapter; step 2 goes on from it with the codes
        _, tuned = train_lora(plain, source, config, checkpoint_dir=run_dir, resume=resume, then=coded,
                              after_first=lambda m: save(m, adapter_path(home, source)))
    else:
        _, tuned = train_lora(coded if codes == "on" else plain, source, config, checkpoint_dir=run_dir,
                              resume=resume)
    return save(tuned, adapter_path(home, source, "" if codes == "off" else "codes"))


__all__ = ["CODES_MODES", "SftExample", "TuneConfig", "check_exportable", "encode", "encode_seq2seq",
           "export_gguf_adapter", "progress_position", "save_peft_adapter", "target_modules", "train_lora", "tune_adapter"]
