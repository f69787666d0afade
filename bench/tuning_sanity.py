"""Can `chatrec tune train`'s loop learn a yes / no label at all? Controls for the pointwise runs.

    python -m bench.tuning_sanity --data <home>/tune/pointwise-graph-list.jsonl --steps 60

The pointwise re-rank tuning runs (bench/RESULTS.md) ended with the loss at chance. That is either
no learnable signal in the asks for the model, or a broken loop (labels, masking, the shift by
one). This tells the two apart on the same asks, the same base model and the same loop
(`agent.tuning.train_lora`), with the labels replaced by ones of known difficulty:

- ``hint``: the answer is written into the ask ("(The right answer is yes.)"). Any working loop
  learns to copy it within a few batches; a loss at chance here means a bug.
- ``year``: "yes" when the film's year (in its title) is before 1985. A rule the model can read off
  the prompt, but one it has to work out: a content skill of the kind re-ranking needs.
- ``real``: the file's own labels (what the re-rank runs tuned on).

Each variant is balanced (as many yes as no), split 80 / 20 by ask; the model is tuned for
``--steps`` batches on the 80 and scored on (up to 200 of) the 20 it never saw: the AUC of
P("yes") against the label (0.5 = nothing learned). The loss shown is the loop's own (label word and end-of-turn
token averaged: chance is ln 2 / 2 = 0.347).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import emit

VARIANTS = ("hint", "year", "real")
YEAR = re.compile(r"\((\d{4})\)")


def relabel(rows: list[dict], variant: str, seed: int = 0) -> list[dict]:
    """Pointwise rows with the variant's labels, balanced yes / no, shuffled."""
    rng = random.Random(seed)
    out = []
    for row in rows:
        row = copy.deepcopy(row)  # the ask may be edited
        ask = row["messages"][-1]
        if variant == "year":
            years = YEAR.findall(ask["content"].rsplit("\n", 1)[-1])  # the asked film, not the history
            if not years:
                continue
            row["answer"] = "yes" if int(years[-1]) < 1985 else "no"
        elif variant == "hint":
            row["answer"] = rng.choice(["yes", "no"])
            head, question = ask["content"].rsplit("\n", 1)
            ask["content"] = f"{head}\n(The right answer is {row['answer']}.)\n{question}"
        elif variant != "real":
            raise ValueError(f"variant must be one of {VARIANTS}")
        out.append(row)
    yes = [r for r in out if r["answer"] == "yes"]
    no = [r for r in out if r["answer"] == "no"]
    n = min(len(yes), len(no))
    rng.shuffle(yes)
    rng.shuffle(no)
    balanced = yes[:n] + no[:n]
    rng.shuffle(balanced)
    return balanced


def p_yes(tokenizer, model, rows: list[dict]) -> np.ndarray:
    """P("yes") against "no" at the answer's first token, for each ask, read as the product reads it
    (every spelling of each answer counted: ``agent.llm.probabilities_from_logits``)."""
    import torch

    from agent.llm import answer_token_ids, probabilities_from_logits
    from agent.tuning.lora import SftExample, encode

    answers = ("yes", "no")
    ids = answer_token_ids(lambda text: tokenizer(text, add_special_tokens=False)["input_ids"], answers,
                           unknown=tokenizer.unk_token_id)
    out = []
    with torch.no_grad():
        for row in rows:
            prompt, start = encode(tokenizer, SftExample(row["messages"], row["answer"]))
            logits = model(input_ids=torch.tensor([prompt[:start]])).logits[0, -1]
            out.append(probabilities_from_logits(logits.float().numpy(), ids, answers)["yes"])
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a `chatrec tune data` file with pointwise asks")
    parser.add_argument("--model", type=Path, help="base GGUF (default: the shipped SmolLM2-135M)")
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="repeatable (default: all three)")
    parser.add_argument("--steps", type=int, default=60, help="batches of 8 per variant")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from agent.evals.stats import pair_auc
    from agent.llm import default_model_path
    from agent.tuning.lora import SftExample, TuneConfig, train_lora

    torch.set_num_threads(args.threads)
    rows = [r for r in map(json.loads, args.data.read_text(encoding="utf-8").splitlines())
            if r.get("task") == "pointwise"]
    model_path = args.model or default_model_path()
    figures = {"model": model_path.name, "data": args.data.name, "steps": args.steps, "lr": args.lr,
               "chance_loss": round(math.log(2) / 2, 3)}
    for variant in args.variant or VARIANTS:
        started = time.perf_counter()
        data = relabel(rows, variant)
        cut = int(0.8 * len(data))
        train, held_out = data[:cut], data[cut:][:200]  # 200 unseen asks score it well enough
        config = TuneConfig(rank=16, alpha=32.0, epochs=1, lr=args.lr, max_steps=args.steps, save_every=10 ** 6)
        with tempfile.TemporaryDirectory() as folder:  # the checkpoint keeps the per-batch losses
            tokenizer, model = train_lora([SftExample(r["messages"], r["answer"]) for r in train], model_path,
                                          config, checkpoint_dir=Path(folder))
            losses = torch.load(Path(folder) / "checkpoint.pt", weights_only=False)["losses"]
        scores = p_yes(tokenizer, model, held_out)
        labels = np.array([r["answer"] == "yes" for r in held_out])
        figures[variant] = {"asks": len(data), "held_out": len(held_out),
                            "loss_first_10": round(float(np.mean(losses[:10])), 3),
                            "loss_last_10": round(float(np.mean(losses[-10:])), 3),
                            "held_out_auc": round(pair_auc([scores], [labels]), 3),
                            "held_out_accuracy": round(float(np.mean((scores > 0.5) == labels)), 3),
                            "seconds": round(time.perf_counter() - started, 1)}
        print(f"{variant}: {figures[variant]}", flush=True)
    emit(figures)


if __name__ == "__main__":
    main()
