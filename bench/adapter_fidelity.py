"""Does llama.cpp, serving a GGUF base with the adapter `chatrec tune train` exported, compute what
the tuned torch model computed? (The tests check this for the shipped llama; this checks any base,
e.g. a Qwen2 GGUF, whose Q / K rows llama.cpp keeps in another order.)

    python -m bench.adapter_fidelity --model /tmp/qwen/qwen.gguf \
        --checkpoint <home>/tune/checkpoints/qwen-instructions --adapter <home>/tune/qwen.lora.gguf

One ask from the tuning data goes through four models: torch base, torch base + the checkpoint's
adapter (rank from its tensors, alpha from the exported GGUF), llama.cpp base, llama.cpp base + the
exported adapter. Reported: the correlation of the two logit changes the adapter makes over every
position and token, and the ratio of their sizes (1.0 and 1.0 when the export is faithful; a
wrong row order gives a correlation near 0).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.common import emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the GGUF base the adapter was tuned on")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the run's checkpoint folder")
    parser.add_argument("--adapter", type=Path, required=True, help="the adapter GGUF the run exported")
    parser.add_argument("--data", type=Path, help="instructions file to take the ask from "
                                                  "(default: <data home>/tune/instructions.jsonl)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import gguf
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    from agent.config import Settings
    from agent.tuning.instruct import DATA_FILE
    from agent.llm import open_llama
    from agent.llm import load_base
    from agent.tuning.lora import CHECKPOINT, target_modules

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    tokenizer, base = load_base(args.model)
    state = torch.load(args.checkpoint / CHECKPOINT, map_location="cpu", weights_only=False)["adapter"]
    rank = next(v.shape[0] for k, v in state.items() if "lora_A" in k)
    alpha = float(gguf.GGUFReader(str(args.adapter)).get_field("adapter.lora.alpha").contents())
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                                            target_modules=target_modules(base), task_type="CAUSAL_LM"))
    set_peft_model_state_dict(model, state)
    model.eval()
    data = args.data or Settings().home / DATA_FILE
    row = json.loads(data.read_text(encoding="utf-8").splitlines()[0])
    prompt = tokenizer.apply_chat_template(row["messages"], tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        tuned = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
        with model.disable_adapter():
            plain = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()

    def llama_logits(lora: Path | None) -> np.ndarray:
        llm = open_llama(model_path=str(args.model), lora_path=str(lora) if lora else None, logits_all=True,
                         n_ctx=max(256, len(ids) + 8), n_threads=args.threads, verbose=False)
        llm.eval(ids)
        return np.array(llm.scores[:len(ids)])

    llama_delta = llama_logits(args.adapter) - llama_logits(None)
    torch_delta = tuned - plain
    correlation = float(np.corrcoef(llama_delta.ravel(), torch_delta.ravel())[0, 1])
    ratio = float(np.linalg.norm(llama_delta) / np.linalg.norm(torch_delta))
    print(f"{args.model.name} + {args.adapter.name}: the adapter's logit change in llama.cpp vs torch: "
          f"correlation {correlation:.4f}, size ratio {ratio:.4f} ({len(ids)} positions)")
    emit({"model": args.model.name, "adapter": args.adapter.name, "rank": rank, "alpha": alpha,
          "positions": len(ids), "delta_correlation": round(correlation, 4), "delta_norm_ratio": round(ratio, 4),
          "wall_s": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
