"""Do BinLLM's codes help the tuned model? Pointwise yes / no accuracy on people it was not tuned on.

    python -m bench.pointwise_codes --adapter step1=<home>/tune/SmolLM2-135M-Instruct.Q4_1.lora.gguf \
        --adapter codes=<home>/tune/SmolLM2-135M-Instruct.Q4_1.codes.lora.gguf [--adapter base=none] [--users 150]

Held-out asks: `chatrec tune data`'s pointwise task (one validation item as "yes", one never-rated
item as "no" per person) for ml-100k users with validation items who are NOT in the tuning data
(``--exclude``, default <home>/tune/instructions.jsonl), each asked plain and with the codes.
Reported per adapter and prompt: accuracy, the share of "yes" answers (a model that always says
yes scores 0.5), and answers that were neither.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from agent.tuning.codes import load_codes
from agent.config import Settings
from agent.evals.rerank import load_eval_data
from agent.tuning.instruct import DATA_FILE, make_instructions
from agent.llm import LocalChatModel
from bench.common import emit
from recsys.workflow import load_recommender
from tools.chat import as_messages


def answer_of(text: str) -> str | None:
    words = text.strip().lower().split()
    first = words[0].strip(".,!:") if words else ""
    return first if first in ("yes", "no") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", action="append", required=True, metavar="NAME=PATH",
                        help="an adapter to measure (PATH 'none': the base model); repeatable")
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--exclude", type=Path, help="tuning data whose users are left out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings = Settings()
    rec = load_recommender("ml-100k", None, settings.home)
    ev = load_eval_data(rec, settings.home)
    codes = load_codes(rec, settings.home)
    exclude_path = args.exclude or settings.home / DATA_FILE
    exclude = {json.loads(line)["user"] for line in exclude_path.read_text(encoding="utf-8").splitlines() if line.strip()}
    rows = make_instructions(ev, args.users, args.seed, ("pointwise",), progress=False, codes=codes,
                             exclude_users=exclude - {None})
    print(f"{len(rows)} held-out asks from {len({r.user for r in rows})} people not among the "
          f"{len(exclude - {None})} in {exclude_path}")

    figures: dict = {"asks": len(rows), "users": len({r.user for r in rows}), "seed": args.seed}
    for spec in args.adapter:
        name, _, path = spec.partition("=")
        llm = LocalChatModel(lora_path=None if path == "none" else path, n_threads=settings.threads)
        for prompt in ("plain", "codes"):
            said = [answer_of(llm.invoke(as_messages(r.messages if prompt == "plain" else r.coded),
                                         max_tokens=3).content) for r in rows]
            right = [s == r.answer for s, r in zip(said, rows)]
            result = {"accuracy": round(float(np.mean(right)), 4), "yes_share": round(said.count("yes") / len(said), 4),
                      "neither": said.count(None)}
            figures[f"{name}/{prompt}"] = result
            print(f"{name:>8} {prompt:>6}: accuracy {result['accuracy']:.3f}, said yes {result['yes_share']:.3f}, "
                  f"neither {result['neither']}")
    emit(figures)


if __name__ == "__main__":
    main()
