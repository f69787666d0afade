"""How a title is spoken of, learned: a logistic regression on the shipped sentence-embedding
model's vector of the words around the title (``agent/data/stance_head.jsonl``, built by
``python -m agent.tuning.stance_data`` from ``agent/data/stance_train.jsonl``, messages written
for it apart from any evaluation set).

The word rules of :func:`agent.reading.title_stances` read the dislikes they were written for;
people say the next one in other words ("a let down", "too dude humor for me", "I fell asleep").
The head reads the same window of words as a sentence and may only turn a title the rules call
liked into a disliked one, when it is sure (the file's ``sure``): people name films they liked,
17 to 1 among ReDial's seekers, so a like wrongly taken away costs more than it seems.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

HEAD_FILE = Path(__file__).resolve().parent / "data" / "stance_head.jsonl"
STANCES = ("liked", "disliked", "none")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)|\n")
_TITLE_STANDS_IN = "it"  # the title's own words ("Horrible Bosses") say nothing of the stance
_WORD = re.compile(r"[A-Za-z]+(?:['’][a-z]+)?")
# A window of fewer words than this besides the title (", it ,", "or it ?", "maybe it": lists and
# fragments) says nothing the head can read; on those it leaned to "disliked" by chance.
MIN_WORDS = 3


def stance_window(text: str, spans: Sequence[tuple[int, int]], n: int) -> str:
    """The words that speak of ``spans[n]``: from the start of its sentence or the end of the title
    before it, to the start of the title after it or the end of the next sentence ("X. It was
    awful."), with the title written as "it"."""
    start, end = spans[n]
    sentence_start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    left = max(sentence_start, spans[n - 1][1] if n else 0)
    right = spans[n + 1][0] if n + 1 < len(spans) else len(text)
    ends = [m.end() for m in _SENTENCE_END.finditer(text, end, right)]
    right = min(right, ends[1]) if len(ends) > 1 else right
    return " ".join(f"{text[left:start]}{_TITLE_STANDS_IN}{text[end:right]}".split())


class StanceHead:
    """Liked / disliked / none for the window around a title (:func:`stance_window`)."""

    def __init__(self, path: Path = HEAD_FILE) -> None:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        heads = {r["stance"]: r for r in rows if "stance" in r}
        if set(heads) != set(STANCES):
            raise ValueError(f"{path} holds stances {sorted(heads)}, not {list(STANCES)}: rebuild it "
                             "(python -m agent.tuning.stance_data)")
        self.facts = next((r["facts"] for r in rows if "facts" in r), {})
        self.weights = np.array([heads[s]["weights"] for s in STANCES], dtype=np.float32)  # (3, 384)
        self.bias = np.array([heads[s]["bias"] for s in STANCES], dtype=np.float32)
        self.sure = float(self.facts.get("sure", 0.9))

    def probabilities(self, windows: Sequence[str]) -> np.ndarray:
        """``(len(windows), 3)``, columns in :data:`STANCES` order."""
        from tools.embeddings import embed

        if not windows:
            return np.zeros((0, len(STANCES)), dtype=np.float32)
        z = embed(list(windows)) @ self.weights.T + self.bias
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def revise(self, text: str, spans: Sequence[tuple[int, int]], stances: Sequence[str | None]) -> list[str | None]:
        """The rules' ``stances``, with a title they call liked turned disliked where the head is sure."""
        windows = {n: stance_window(text, spans, n) for n, stance in enumerate(stances) if stance == "liked"}
        asked = [n for n, window in windows.items() if len(_WORD.findall(window)) > MIN_WORDS]
        revised = list(stances)
        if not asked:
            return revised
        p = self.probabilities([windows[n] for n in asked])
        for n, row in zip(asked, p):
            if row[STANCES.index("disliked")] >= self.sure:
                log.info("stance: the head (%.2f) reads %r as disliked", row[1], text[spans[n][0]:spans[n][1]])
                revised[n] = "disliked"
        return revised


def load_stance_head(path: Path | None = None) -> StanceHead | None:
    """The shipped stance head, or None when its file is absent."""
    path = path or HEAD_FILE
    return StanceHead(path) if path.exists() else None
