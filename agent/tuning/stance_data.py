"""The stance reader (:mod:`agent.stance`): trained on ``agent/data/stance_train.jsonl``.

Each row of the training file is a chat message, one title written in it, and how the writer
speaks of that title (liked / disliked / none), with the phrasing family it belongs to. The
messages were written for this file, apart from every evaluation set (ReDial's seekers are the
measure: ``python -m bench.redial_likes``), in two batches by sessions told never to open the
benchmarks: 1,224 rows in 84 families, then 835 rows in 63 new ones (mild and indirect verdicts,
negated praise, mixed lists, questions and plans that look like opinions, chat typing). A message
naming several titles has a row per title; the window each title is read in
(:func:`agent.stance.stance_window`) stops at its neighbours, so "I loved Up but Cars was boring"
teaches both.

The fit: a LoRA on the shipped MiniLM and a linear head, cross-entropy with the classes weighted
to equal size, AdamW, a fixed seed, on every window and a copy of it typed with slips
(:func:`with_typos`). ``--sure``: the least probability of "disliked" at which the
reader overrides the rules' "liked"; the shipped value was chosen on ReDial's dev half (the
bench's ``--half dev``), never its held half. ``--cv``: five more fits, split by family (a
family's paraphrases never straddle train and test), for the record.

    python -m agent.tuning.stance_data            # rebuild agent/data/stance_reader.safetensors (~8 min on 2 cores)
"""

from __future__ import annotations

import argparse
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from agent.stance import MAX_TOKENS, READER_FILE, STANCES, save_reader, stance_window
from agent.tuning.classifier_fit import EPOCHS, SEED, TYPO_SHARE, fit, with_typos
from agent.tuning.router_data import load_rows

TRAIN_FILE = READER_FILE.parent / "stance_train.jsonl"
SURE = 0.95


def windows(rows: list[dict]) -> list[str]:
    """The window of each row's title, among all titles its message names (rows sharing the text)."""
    titles = defaultdict(set)
    for r in rows:
        titles[r["text"]].add(r["title"])
    out = []
    for r in rows:
        text = r["text"]
        spans = sorted({(start, start + len(t)) for t in titles[text] if (start := text.find(t)) >= 0})
        own = text.find(r["title"])
        if own < 0:
            raise ValueError(f"{TRAIN_FILE}: title {r['title']!r} is not in its text {text!r}")
        out.append(stance_window(text, spans, spans.index((own, own + len(r["title"])))))
    return out


def train(texts: list[str], labels: list[int], epochs: int = EPOCHS, seed: int = SEED, progress: bool = True):
    """A stance model fitted to ``texts`` (windows) and ``labels`` (indices into STANCES)."""
    return fit(texts, labels, STANCES, MAX_TOKENS, epochs, seed, progress, desc="stance reader")


def family_cv(texts: list[str], labels: list[int], families: list[str], folds: int = 5) -> dict:
    """Per-class recall of the reader's top answer, five fits split by family."""
    import torch

    fold = np.array([zlib.crc32(f.encode()) % folds for f in families])
    y = np.array(labels)
    predicted = np.zeros(len(y), dtype=int)
    for k in range(folds):
        seen = [t for t, f in zip(texts, fold) if f != k]
        model = train(seen + with_typos(seen), list(y[fold != k]) * 2, progress=False)
        with torch.no_grad():
            predicted[fold == k] = model([t for t, f in zip(texts, fold) if f == k]).argmax(-1).numpy()
    return {s: round(float((predicted[y == i] == i).mean()), 3) for i, s in enumerate(STANCES) if (y == i).any()}


def build_reader(out: Path = READER_FILE, sure: float = SURE, train_file: Path = TRAIN_FILE, cv: bool = False) -> dict:
    rows = load_rows(train_file)
    texts, labels = windows(rows), [STANCES.index(r["stance"]) for r in rows]
    facts = {"model": "all-MiniLM-L6-v2 + LoRA", "rows": len(rows), "families": len({r["family"] for r in rows}),
             "typed_again": TYPO_SHARE, "epochs": EPOCHS, "seed": SEED, "sure": sure}
    if cv:
        facts["family_cv_recall"] = family_cv(texts, labels, [r["family"] for r in rows])
    save_reader(train(texts + with_typos(texts), labels + labels), facts, out)
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=READER_FILE)
    parser.add_argument("--train", type=Path, default=TRAIN_FILE)
    parser.add_argument("--sure", type=float, default=SURE,
                        help=f"least probability of 'disliked' that overrides the rules' 'liked' (default {SURE})")
    parser.add_argument("--cv", action="store_true", help="also five fits split by family, for the record (5x longer)")
    args = parser.parse_args()
    facts = build_reader(args.out, args.sure, args.train, args.cv)
    print(f"wrote {args.out}: {facts}")


if __name__ == "__main__":
    main()
