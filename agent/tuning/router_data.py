"""The router's training pool and its intent head.

The pool: the labelled turns of ``agent/data/router_train.jsonl``, the paraphrase families of
``agent/data/router_families.jsonl`` (explanation requests with and without a list, questions
about a movie, decades and relative years, a domain other than the titles named, typos, a like +
a dislike + a request; written apart from the held-out families of
tests/data/router_heldout.jsonl, no template shared), and the training pool's explanation
requests again without the list they were asked about (:func:`without_list`): every explain row
of router_train.jsonl carried a list, so the tuned adapter learned "no list, no explanation".

The intent head (``agent/data/router_intent_head.jsonl``): a multinomial logistic regression on
the shipped sentence-embedding model's vector of the message alone (all-MiniLM-L6-v2), trained on
the pool. It does not see the context, so a "why the third?" is an explanation request whether a
list was shown or not. The router asks it after the LLM and takes its intent over the LLM's only
when it is sure (the file's ``sure``: the least probability at which the head's 5-fold
cross-validated answers on the pool were right 97% of the time or more; 0.80 for the shipped head).

    python -m agent.tuning.router_data            # rebuild the head (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
FAMILIES_FILE = DATA / "router_families.jsonl"
HEAD_FILE = DATA / "router_intent_head.jsonl"
_NO_LIST_CONTEXTS = (
    [],
    [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "Hello! Looking for something to watch or read?",
                                      "items": []}],
    [{"role": "user", "text": "thanks!"}, {"role": "assistant", "text": "You're welcome.", "items": []}],
)


def load_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def without_list(rows: Sequence[dict], share: float = 0.5, seed: int = 24) -> list[dict]:
    """A seeded ``share`` of the explain rows asked about a list, again with a context that shows
    none: the same words are still an explanation request (the agent then says it has no list)."""
    rng = random.Random(seed)
    asked = [r for r in rows if r["intent"] == "explain" and any(t.get("items") for t in r["context"])]
    picked = rng.sample(asked, int(len(asked) * share))
    return [{**r, "id": f"{r['id']}-nolist", "context": rng.choice(_NO_LIST_CONTEXTS)} for r in picked]


def training_pool() -> list[dict]:
    """router_train.jsonl + the families + explain rows without their list."""
    from agent.router import load_examples

    base = load_examples()
    families = load_rows(FAMILIES_FILE)
    return base + families + without_list(base + families)


# -- the intent head ------------------------------------------------------------------------------

def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, l2: float = 1e-4, steps: int = 1000,
                lr: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent: (weights ``(d, classes)``, bias).
    The defaults: the best of three settings by 5-fold cross-validation on the pool (0.893; 0.886
    for 1e-3 / 400 steps and for 1e-5 / 2000 steps)."""
    w = np.zeros((x.shape[1], classes))
    b = np.zeros(classes)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        p = softmax(x @ w + b)
        grad = p - onehot
        w -= lr * (x.T @ grad / len(x) + l2 * w)
        b -= lr * grad.mean(axis=0)
    return w, b


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sure_threshold(x: np.ndarray, y: np.ndarray, classes: int, folds: int = 5, precision: float = 0.97,
                   seed: int = 0) -> tuple[float, float]:
    """The least top probability at which the head's cross-validated answers are right at least
    ``precision`` of the time, and the share of rows at or above it."""
    order = np.random.default_rng(seed).permutation(len(x))
    top, right = np.zeros(len(x)), np.zeros(len(x), dtype=bool)
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        w, b = fit_softmax(x[train], y[train], classes)
        p = softmax(x[test] @ w + b)
        top[test], right[test] = p.max(axis=1), p.argmax(axis=1) == y[test]
    for t in np.arange(0.5, 0.99, 0.01):
        kept = top >= t
        if kept.any() and right[kept].mean() >= precision:
            return round(float(t), 2), round(float(kept.mean()), 3)
    return 0.99, round(float((top >= 0.99).mean()), 3)


def build_head(out: Path = HEAD_FILE) -> dict:
    """Fit the head on the pool and write it (one JSON line per intent, then one of facts)."""
    from tools.embeddings import MODEL_NAME, embed
    from tools.vocabulary import INTENTS

    rows = training_pool()
    x = embed([r["utterance"] for r in rows]).astype(np.float64)
    y = np.array([INTENTS.index(r["intent"]) for r in rows])
    threshold, covered = sure_threshold(x, y, len(INTENTS))
    w, b = fit_softmax(x, y, len(INTENTS))
    facts = {"model": MODEL_NAME, "rows": len(rows), "sure": threshold, "cv_share_sure": covered}
    write_head(out, "intent", INTENTS, w, b, facts)
    return facts


def write_head(out: Path, key: str, classes: Sequence[str], w: np.ndarray, b: np.ndarray, facts: dict) -> None:
    """A logistic-regression head as the agent loads it: one JSON line per class (``key``: its
    name, its bias and weights), then one line of facts."""
    from recsys.io import atomic_write_text

    lines = [json.dumps({key: name, "bias": round(float(b[i]), 6), "weights": [round(float(v), 6) for v in w[:, i]]})
             for i, name in enumerate(classes)]
    lines.append(json.dumps({"facts": facts}))
    atomic_write_text(out, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HEAD_FILE)
    parser.add_argument("--pool", type=Path, help="also write the whole training pool (JSONL) here, for tune-router")
    args = parser.parse_args()
    if args.pool:
        from recsys.io import atomic_write_text

        atomic_write_text(args.pool, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in training_pool()))
    facts = build_head(args.out)
    print(f"wrote {args.out}: {facts}")


if __name__ == "__main__":
    main()
