"""Router accuracy on the public labelled set (tests/data/router_set.jsonl), per backend.

    python -m bench.router_accuracy [--backend local|openai] [--mode auto|tuned|few-shot] [--shots 4] [--limit N]

Intent accuracy overall and per intent, slot exact-match rates (titles, genres, years,
domain, count, reference) on the rows whose gold slot is not empty, and seconds per call.
The tuned router (default local model + agent/data/router_lora.gguf) and the few-shot
examples both come from agent/data/router_train.jsonl, written separately from the evaluation
set; ``--mode`` picks (default: what the agent would use for the backend). Target: >= 95% intent accuracy with the default local model.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from agent.config import Settings
from agent.router import make_router
from agent.llm import make_chat_model
from agent.router import SLOT_KEYS
from bench.common import emit

EVAL = Path(__file__).resolve().parent.parent / "tests" / "data" / "router_set.jsonl"


def _norm(value):
    if isinstance(value, list):
        return sorted(str(v).lower() for v in value)
    return str(value).lower() if isinstance(value, str) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["local", "openai"], help="default: the configured one")
    parser.add_argument("--mode", choices=["auto", "tuned", "few-shot"], default="auto")
    parser.add_argument("--shots", type=int, default=4, help="few-shot mode: examples per call")
    parser.add_argument("--limit", type=int, help="only the first N rows")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(router_mode=args.mode, **({"llm_backend": args.backend} if args.backend else {}))
    router = make_router(settings, make_chat_model(settings))
    router.shots = args.shots
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[: args.limit] if args.limit else rows

    per_intent: dict[str, list[bool]] = defaultdict(list)
    slot_hits: dict[str, list[bool]] = defaultdict(list)
    seconds = []
    for row in rows:
        started = time.perf_counter()
        route = router.route(row["utterance"], row["context"])
        seconds.append(time.perf_counter() - started)
        per_intent[row["intent"]].append(route.intent == row["intent"])
        if args.show_misses and route.intent != row["intent"]:
            print(f"  MISS {row['id']} {row['utterance']!r}: {row['intent']} -> {route.intent}")
        for slot in SLOT_KEYS:
            gold = row["slots"].get(slot)
            if gold not in (None, [], ""):
                slot_hits[slot].append(_norm(route.slots.get(slot)) == _norm(gold))

    total = sum(sum(v) for v in per_intent.values()) / len(rows)
    figures = {"backend": settings.llm_backend, "model": settings.llm_model or "SmolLM2-135M-Instruct Q4_1",
               "mode": router.mode, "shots": args.shots if router.mode == "few-shot" else 0, "rows": len(rows),
               "intent_accuracy": round(total, 4),
               **{f"{k}_accuracy": round(sum(v) / len(v), 4) for k, v in sorted(per_intent.items())},
               **{f"slot_{k}": round(sum(v) / len(v), 3) for k, v in sorted(slot_hits.items())},
               "p50_s": round(float(np.percentile(seconds, 50)), 3), "p95_s": round(float(np.percentile(seconds, 95)), 3)}
    print(f"{len(rows)} utterances, backend {figures['backend']}, {router.mode} router: intent accuracy {total:.3f}")
    for intent, hits in sorted(per_intent.items()):
        print(f"  {intent:<10} {sum(hits)}/{len(hits)}")
    emit(figures)


if __name__ == "__main__":
    main()
