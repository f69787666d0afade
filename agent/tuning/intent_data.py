"""The intent reader (:mod:`agent.intent`): trained on the router's training pool and on real
seekers' turns.

- The pool (:func:`agent.tuning.router_data.training_pool`): turns written for the router,
  explanation requests with and without a list among them.
- ``agent/data/intent_families.jsonl``: 150 turns in 10 families of what the agent's own replies
  lead to (a taste told after a list and asking nothing, the same with an ask, a film named after
  "I couldn't find …", reactions, questions about a suggestion), written for this file by a
  helper session that never opened the evaluation sets or the scripted dialogues (2026-12-07):
  ReDial's seekers answer a human, not this agent's lists and clarifications.
- ``agent/data/redial_intent_labels.jsonl``: 1,639 seeker turns — every seeker turn of the 270
  ReDial valid dialogues outside the evaluation sample (evaluation/redial/seeker_labels.jsonl)
  and both development samples — labelled by hand by the rules of evaluation/redial/README.md,
  by four helper sessions that saw no router answer (2026-12-07). Like the evaluation files it
  holds ids, a hash of the words and the label; the words are joined from the benchmark
  (``../shared/benchmarks/redial/valid_data.jsonl`` or ``$CHATREC_REDIAL``) when the reader is
  built, so building needs the benchmark and running it does not. Turns marked ambiguous are
  left out. ReDial (Li et al., 2018) is CC BY 4.0.

Selection of ``sure`` and of every choice here: ReDial's development sets, the held-out families
and the public set (``bench.router_accuracy --set redial-dev redial-dev2 heldout public --reading
--intent-reader FILE``), never its evaluation set. The product runs with the reader on
(``CHATREC_INTENT_READER=off`` for the rules alone), bound by the product's own rules
(:meth:`agent.intent.IntentReader.settle`).

    python -m agent.tuning.intent_data            # rebuild agent/data/intent_reader.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.intent import INTENTS, MAX_TOKENS, READER_FILE, intent_text
from agent.classifier import save_classifier
from agent.tuning.classifier_fit import SEED, fit

LABELS_FILE = READER_FILE.parent / "redial_intent_labels.jsonl"
FAMILIES_FILE = READER_FILE.parent / "intent_families.jsonl"
SURE = 0.9
EPOCHS = 4


def seeker_rows(labels: Path = LABELS_FILE) -> list[dict]:
    """The labelled seeker turns joined with their words and the dialogue before them."""
    # the benchmark's reader lives with the benchmarks; building the reader is a development step
    from bench.router_accuracy import redial_rows

    return [r for r in redial_rows(labels) if not r["ambiguous"]]


def examples(labels: Path = LABELS_FILE) -> tuple[list[str], list[int], dict]:
    """(texts, labels as indices into INTENTS, counts by source)."""
    from agent.tuning.router_data import load_rows, training_pool

    pool, families, seekers = training_pool(), load_rows(FAMILIES_FILE), seeker_rows(labels)
    rows = pool + families + seekers
    counts = {"pool": len(pool), "families": len(families), "redial_seekers": len(seekers),
              **{i: sum(r["intent"] == i for r in rows) for i in INTENTS}}
    return ([intent_text(r["utterance"], r["context"]) for r in rows], [INTENTS.index(r["intent"]) for r in rows],
            counts)


def build_reader(out: Path = READER_FILE, sure: float = SURE, labels: Path = LABELS_FILE,
                 epochs: int = EPOCHS) -> dict:
    texts, y, counts = examples(labels)
    facts = {"model": "all-MiniLM-L6-v2 + LoRA", "rows": counts, "epochs": epochs, "seed": SEED, "sure": sure,
             "data": "router training pool + ReDial seekers (CC BY 4.0), dialogues outside every evaluation sample"}
    save_classifier(fit(texts, y, INTENTS, MAX_TOKENS, epochs, desc="intent reader"), facts, out)
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=READER_FILE)
    parser.add_argument("--labels", type=Path, default=LABELS_FILE)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--sure", type=float, default=SURE,
                        help=f"least probability at which the reader's recommend / chit-chat overrides the "
                             f"reading's (default {SURE})")
    args = parser.parse_args()
    facts = build_reader(args.out, args.sure, args.labels, args.epochs)
    print(f"wrote {args.out}: {facts}")


if __name__ == "__main__":
    main()
