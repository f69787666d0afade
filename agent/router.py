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
from importlib import resources
from pathlib import Path

import numpy as np

from tools.embeddings import embed

log = logging.getLogger(__name__)

INTENTS = ("recommend", "explain", "chitchat")
GENRES = ("action", "adventure", "animation", "children's", "comedy", "crime", "documentary", "drama", "fantasy",
          "film-noir", "horror", "musical", "mystery", "romance", "sci-fi", "thriller", "war", "western")
SLOT_KEYS = ("titles", "liked", "disliked", "genres", "year_from", "year_to", "domain", "count", "reference")
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
            },
            "required": list(SLOT_KEYS),
        },
    },
    "required": ["intent", "slots"],
}


def empty_slots() -> dict:
    return {"titles": [], "liked": [], "disliked": [], "genres": [], "year_from": None, "year_to": None,
            "domain": None, "count": None, "reference": None}


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


def load_examples(path: Path = TRAIN_FILE) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Router:
    """Few-shot by similarity over labelled examples, JSON-schema-constrained output."""

    def __init__(self, llm, examples: list[dict] | None = None, shots: int = 4,
                 prompt_file: str = "router.txt") -> None:
        self.llm, self.shots = llm, shots
        self.examples = examples if examples is not None else load_examples()
        # Examples are matched on the message alone: with the previous turn in the text, MiniLM
        # matches dialogues, not asks (nearest-neighbour intent accuracy 0.82 → 0.67 on the public set).
        self._vectors = embed([e["utterance"] for e in self.examples])
        self.instructions = resources.files("prompts").joinpath(prompt_file).read_text(encoding="utf-8")

    def nearest(self, utterance: str) -> list[dict]:
        query = embed([utterance])[0]
        order = np.argsort(-(self._vectors @ query))[: self.shots]
        return [self.examples[i] for i in order[::-1]]  # the closest last, next to the question

    def messages(self, utterance: str, context: Sequence[dict]) -> list:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        out = [SystemMessage(self.instructions)]
        for example in self.nearest(utterance):
            out.append(HumanMessage(self._turn(example["utterance"], example["context"])))
            out.append(AIMessage(json.dumps({"intent": example["intent"], "slots": example["slots"]})))
        out.append(HumanMessage(self._turn(utterance, context)))
        return out

    @staticmethod
    def _turn(utterance: str, context: Sequence[dict]) -> str:
        shown = render_context(context)
        return (f"Dialogue:\n{shown}\n" if shown else "") + f"Message: {utterance}"

    def route(self, utterance: str, context: Sequence[dict] = ()) -> Route:
        if not utterance or not utterance.strip():
            return Route("chitchat")
        answer = self.llm.invoke(self.messages(utterance[:2000], context), json_schema=SCHEMA, max_tokens=160)
        try:
            value = json.loads(answer.content)
            slots = {**empty_slots(), **{k: v for k, v in value.get("slots", {}).items() if k in SLOT_KEYS}}
            intent = value["intent"] if value.get("intent") in INTENTS else "chitchat"
        except (json.JSONDecodeError, TypeError, KeyError) as exc:  # a cut-off answer: the label is still usable
            log.warning("router answer was not complete JSON (%s): %r", exc, answer.content[:200])
            intent = next((i for i in INTENTS if f'"{i}"' in answer.content), "chitchat")
            slots = empty_slots()
        return Route(intent, slots)


__all__ = ["INTENTS", "Route", "Router", "SCHEMA", "load_examples", "render_context"]
