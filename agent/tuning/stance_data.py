"""The stance head (:mod:`agent.stance`): built from ``agent/data/stance_train.jsonl``.

Each row of the training file is a chat message, one title written in it, and how the writer
speaks of that title (liked / disliked / none), with the phrasing family it belongs to. The
messages were written for this file, apart from every evaluation set (ReDial's seekers are the
measure: ``python -m bench.redial_likes --spans``). A message naming several titles has a row per
title; the window each title is read in (:func:`agent.stance.stance_window`) stops at its
neighbours, so "I loved Up but Cars was boring" teaches both.

The fit: :func:`agent.tuning.router_data.fit_softmax` on the embedding of each window, with the
classes weighted to equal size. ``--sure``: the least probability of "disliked" at which the head
overrides the rules' "liked"; the shipped value was chosen on ReDial's dev half (the bench's
``--half dev``), never its held half. Cross-validation by family (a family's paraphrases never
straddle train and test) is printed for the record.

    python -m agent.tuning.stance_data            # rebuild the head (under a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from agent.stance import HEAD_FILE, STANCES, stance_window
from agent.tuning.router_data import fit_softmax, load_rows, softmax, write_head

TRAIN_FILE = HEAD_FILE.parent / "stance_train.jsonl"
SURE = 0.9


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


def balanced_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fit_softmax with each class weighted to the same total (rows repeated by class size)."""
    counts = np.bincount(y, minlength=len(STANCES))
    repeat = np.round(counts.max() / np.maximum(counts[y], 1)).astype(int)
    return fit_softmax(np.repeat(x, repeat, axis=0), np.repeat(y, repeat), len(STANCES))


def family_cv(x: np.ndarray, y: np.ndarray, families: list[str], folds: int = 5) -> dict:
    """Per-class recall of the head's top answer, five folds split by family."""
    fold = np.array([zlib.crc32(f.encode()) % folds for f in families])
    predicted = np.zeros(len(y), dtype=int)
    for k in range(folds):
        w, b = balanced_fit(x[fold != k], y[fold != k])
        predicted[fold == k] = softmax(x[fold == k] @ w + b).argmax(axis=1)
    return {s: round(float((predicted[y == i] == i).mean()), 3) for i, s in enumerate(STANCES) if (y == i).any()}


def build_head(out: Path = HEAD_FILE, sure: float = SURE, train: Path = TRAIN_FILE) -> dict:
    from tools.embeddings import MODEL_NAME, embed

    rows = load_rows(train)
    x = embed(windows(rows)).astype(np.float64)
    y = np.array([STANCES.index(r["stance"]) for r in rows])
    cv = family_cv(x, y, [r["family"] for r in rows])
    w, b = balanced_fit(x, y)
    facts = {"model": MODEL_NAME, "rows": len(rows), "families": len({r["family"] for r in rows}),
             "sure": sure, "family_cv_recall": cv}
    write_head(out, "stance", STANCES, w, b, facts)
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HEAD_FILE)
    parser.add_argument("--train", type=Path, default=TRAIN_FILE)
    parser.add_argument("--sure", type=float, default=SURE,
                        help=f"least probability of 'disliked' that overrides the rules' 'liked' (default {SURE})")
    args = parser.parse_args()
    facts = build_head(args.out, args.sure, args.train)
    print(f"wrote {args.out}: {facts}")


if __name__ == "__main__":
    main()
