"""The router: one LLM call per turn → ``{"intent": ..., "slots": {...}}``.

A 135M model cannot route from instructions alone (about a third right, zero-shot, on the
public set), so each call shows it the labelled training examples (agent/data/
router_train.jsonl) nearest in meaning to this turn — few-shot selection by similarity with
the item-store embedding model — and constrains the answer to the JSON schema below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.chat import as_messages
from prompts import read_prompt
from tools.embeddings import embed

log = logging.getLogger(__name__)

INTENTS = ("recommend", "explain", "chitchat")
GENRES = ("action", "adventure", "animation", "children's", "comedy", "crime", "documentary", "drama", "fantasy",
          "film-noir", "horror", "musical", "mystery", "romance", "sci-fi", "thriller", "war", "western")
SLOT_KEYS = ("titles", "liked", "disliked", "genres", "year_from", "year_to", "domain", "count", "reference", "clear")
CLEARABLE = ("year", "genres", "domain", "all")  # "any decade is fine" → clear ["year"]
TRAIN_FILE = Path(__file__).parent / "data" / "router_train.jsonl"

_INT_OR_NULL = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(INTENTS)},
        "slots": {
            "type": "object",
            "properties": {
                "titles": {"type": "array", "items": {"type": "string"}},
                "liked": {"type": "array", "items": {"type": "string"}},
                "disliked": {"type": "array", "items": {"type": "string"}},
                "genres": {"type": "array", "items": {"type": "string", "enum": list(GENRES)}},
                "year_from": _INT_OR_NULL, "year_to": _INT_OR_NULL,
                "domain": {"anyOf": [{"type": "string", "enum": ["movie", "book"]}, {"type": "null"}]},
                "count": _INT_OR_NULL,
                "reference": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
                "clear": {"type": "array", "items": {"type": "string", "enum": list(CLEARABLE)}},
            },
        },
    },
    "required": ["intent", "slots"],
}


def empty_slots() -> dict:
    return {"titles": [], "liked": [], "disliked": [], "genres": [], "year_from": None, "year_to": None,
            "domain": None, "count": None, "reference": None, "clear": []}


@dataclass
class Route:
    intent: str
    slots: dict = field(default_factory=empty_slots)

    def to_dict(self) -> dict:
        return {"intent": self.intent, "slots": self.slots}


def render_context(context: Sequence[dict], turns: int = 2) -> str:
    """The last turns as the prompt shows them; a list the assistant gave is numbered."""
    lines = []
    for turn in list(context)[-turns:]:
        text = f"{turn['role']}: {turn['text']}"
        if turn.get("items"):
            text += " " + "; ".join(f"{n}. {title}" for n, title in enumerate(turn["items"], 1))
        lines.append(text)
    return "\n".join(lines)


INTENT_TOKENS = 7  # tokens of '{"intent":"<label>' in SmolLM2's tokenizer (chitchat takes 3): tuning weighs them more


def compact_answer(intent: str, slots: dict) -> str:
    """The tuned router's answer: the intent and only the slots that are set, in schema order."""
    kept = {k: slots[k] for k in SLOT_KEYS if slots.get(k) not in (None, [], "")}
    return json.dumps({"intent": intent, "slots": kept}, ensure_ascii=False, separators=(",", ":"))


def load_examples(path: Path = TRAIN_FILE) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Router:
    """One constrained LLM call per turn.

    ``mode="tuned"``: the default local model with the router LoRA adapter (``chatrec tune-router``)
    reads a one-line instruction and the turn. ``mode="few-shot"``: any other model reads the full
    instructions and the labelled examples nearest in meaning to the turn.
    """

    def __init__(self, llm, mode: str = "few-shot", examples: list[dict] | None = None, shots: int = 4) -> None:
        if mode not in ("tuned", "few-shot"):
            raise ValueError(f"router mode must be 'tuned' or 'few-shot', not {mode!r}")
        self.llm, self.mode, self.shots = llm, mode, shots
        self.instructions = read_prompt("router_tuned.txt" if mode == "tuned" else "router.txt")
        if mode == "few-shot":
            self.examples = examples if examples is not None else load_examples()
            # Examples are matched on the message alone: with the previous turn in the text, MiniLM
            # matches dialogues, not asks (nearest-neighbour intent accuracy 0.82 → 0.67 on the public set).
            self._vectors = embed([e["utterance"] for e in self.examples])

    def nearest(self, utterance: str) -> list[dict]:
        query = embed([utterance])[0]
        order = np.argsort(-(self._vectors @ query))[: self.shots]
        return [self.examples[i] for i in order[::-1]]  # the closest last, next to the question

    def chat(self, utterance: str, context: Sequence[dict]) -> list[dict]:
        """The prompt as role/content dicts (what tuning trains on and what the model is served)."""
        out = [{"role": "system", "content": self.instructions}]
        if self.mode == "few-shot":
            for example in self.nearest(utterance):
                out.append({"role": "user", "content": render_turn(example["utterance"], example["context"])})
                out.append({"role": "assistant", "content": compact_answer(example["intent"], example["slots"])})
        out.append({"role": "user", "content": render_turn(utterance, context)})
        return out

    def route(self, utterance: str, context: Sequence[dict] = ()) -> Route:
        if not utterance or not utterance.strip():
            return Route("chitchat")
        answer = self.llm.invoke(as_messages(self.chat(utterance[:2000], context)), json_schema=SCHEMA,
                                 max_tokens=160)
        return parse_answer(answer.content)


def render_turn(utterance: str, context: Sequence[dict]) -> str:
    shown = render_context(context)
    return (f"Dialogue:\n{shown}\n" if shown else "") + f"Message: {utterance}"


def parse_answer(content: str) -> Route:
    try:
        value = json.loads(content)
        slots = {**empty_slots(), **{k: v for k, v in value.get("slots", {}).items() if k in SLOT_KEYS}}
        intent = value["intent"] if value.get("intent") in INTENTS else "chitchat"
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:  # cut off: the label is still usable
        log.warning("router answer was not complete JSON (%s): %r", exc, content[:200])
        intent = next((i for i in INTENTS if f'"{i}"' in content), "chitchat")
        slots = empty_slots()
    return Route(intent, slots)


__all__ = ["INTENTS", "Route", "Router", "SCHEMA", "compact_answer", "load_examples", "parse_answer", "render_context"]
