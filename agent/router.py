"""The router: one LLM call per turn → ``{"intent": ..., "slots": {...}}``.

A 135M model cannot route from instructions alone (about a third right, zero-shot, on the
public set), so each call shows it the labelled training examples (agent/data/
router_train.jsonl) nearest in meaning to this turn — few-shot selection by similarity with
the item-store embedding model — and constrains the answer to the JSON schema below.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from agent.config import Settings, TurnSettings
from tools.chat import as_messages
from prompts import read_prompt
from tools.embeddings import embed
from tools.vocabulary import INTENTS, ROUTER_GENRES

log = logging.getLogger(__name__)

CLEARABLE = ("year", "genres", "domain", "all")  # "any decade is fine" → clear ["year"]
TRAIN_FILE = Path(__file__).parent / "data" / "router_train.jsonl"
ROUTER_ADAPTER = Path(__file__).parent / "data" / "router_lora.gguf"  # `chatrec tune-router` writes it
HEAD_FILE = Path(__file__).parent / "data" / "router_intent_head.jsonl"  # `python -m agent.tuning.router_data`

GenreName = Literal[ROUTER_GENRES]  # tools/vocabulary.py's genres, in its order
Clearable = Literal[CLEARABLE]


@dataclass
class Slots:
    """What a turn asks for, beside its intent: the router's slots, typed. The field order is the
    JSON schema's (:data:`SCHEMA`, which the tuned router adapter was trained on) and the order of
    :func:`compact_answer`; unset is ``[]`` or ``None``."""

    titles: list[str] = field(default_factory=list)  # titles named in the message
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    genres: list[GenreName] = field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    domain: Literal["movie", "book"] | None = None
    count: int | None = None
    reference: int | str | None = None  # a place in the last list (2) or a title
    clear: list[Clearable] = field(default_factory=list)  # constraints dropped ("any decade is fine")


_JSON_TYPES = {str: "string", int: "integer", type(None): "null"}


def json_schema(tp) -> dict:
    """The JSON schema of a slot's type: ``list[str]`` → an array of strings, ``int | None`` →
    anyOf integer / null, a ``Literal`` → its values as an enum (keys in the router's order)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is list:
        return {"type": "array", "items": json_schema(args[0])}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema(a) for a in args]}
    if origin is Literal:
        return {"type": _JSON_TYPES[type(args[0])], "enum": list(args)}
    return {"type": _JSON_TYPES[tp]}


SLOT_KEYS = tuple(f.name for f in fields(Slots))
SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(INTENTS)},
        "slots": {"type": "object",
                  "properties": {key: json_schema(tp) for key, tp in get_type_hints(Slots).items()}},
    },
    "required": ["intent", "slots"],
}


def fits(value, schema: dict) -> bool:
    """Whether ``value`` fits ``schema``, for the few JSON Schema words :data:`SCHEMA` uses."""
    if "anyOf" in schema:
        return any(fits(value, option) for option in schema["anyOf"])
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return (isinstance(value, dict) and all(key in value for key in schema.get("required", ()))
                and all(key in properties and fits(item, properties[key]) for key, item in value.items()))
    if kind == "array":
        return isinstance(value, list) and all(fits(item, schema["items"]) for item in value)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return {"string": isinstance(value, str), "null": value is None}.get(kind, False)


def empty_slots() -> dict:
    return asdict(Slots())


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


class IntentHead:
    """The intent read from the message alone by the shipped sentence-embedding model: a logistic
    regression on its vector (``agent/data/router_intent_head.jsonl``, built by
    ``python -m agent.tuning.router_data`` from the router's training pool). It does not see the
    context, so "why the third?" reads as an explanation request whether a list was shown or not,
    and "who directed Vertigo?" as a question, not a request. ``sure``: the least probability at
    which its answer is taken over the LLM's (chosen by cross-validation on the training pool)."""

    def __init__(self, path: Path = HEAD_FILE, only: tuple[str, str] | None = None) -> None:
        """``only``: the one change of intent the head may make, (from the LLM's, to the head's):
        ("chitchat", "explain") lets it send "why the third?" to the explanation and nothing else."""
        self.only = only
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        heads = {r["intent"]: r for r in rows if "intent" in r}
        if set(heads) != set(INTENTS):
            raise ValueError(f"{path} holds intents {sorted(heads)}, not {list(INTENTS)}: rebuild it "
                             "(python -m agent.tuning.router_data)")
        self.facts = next((r["facts"] for r in rows if "facts" in r), {})
        self.weights = np.array([heads[i]["weights"] for i in INTENTS], dtype=np.float32)  # (3, 384)
        self.bias = np.array([heads[i]["bias"] for i in INTENTS], dtype=np.float32)
        self.sure = float(self.facts.get("sure", 0.9))

    def probabilities(self, utterance: str) -> dict[str, float]:
        z = self.weights @ embed([utterance])[0] + self.bias
        p = np.exp(z - z.max())
        return dict(zip(INTENTS, (p / p.sum()).tolist()))

    def combine(self, route: "Route", probabilities: dict[str, float]) -> "Route":
        """The LLM's route, with the head's intent where the head is sure and disagrees."""
        intent = max(probabilities, key=probabilities.get)
        if intent == route.intent or probabilities[intent] < self.sure or self.only not in (None, (route.intent, intent)):
            return route
        log.info("router: the intent head (%.2f) reads %s where the LLM read %s", probabilities[intent], intent,
                 route.intent)
        return Route(intent, route.slots)


EXPLAIN_ONLY = ("chitchat", "explain")  # Settings.router_head = "explain"


def load_head(path: Path | None = None, only: tuple[str, str] | None = None) -> IntentHead | None:
    """The shipped intent head (``only``: see :class:`IntentHead`), or None when its file is absent."""
    path = path or HEAD_FILE
    return IntentHead(path, only) if path.exists() else None


def load_examples(path: Path = TRAIN_FILE) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Router:
    """One constrained LLM call per turn.

    ``mode="tuned"``: the default local model with the router LoRA adapter (``chatrec tune-router``)
    reads a one-line instruction and the turn. ``mode="few-shot"``: any other model reads the full
    instructions and the labelled examples nearest in meaning to the turn.
    """

    def __init__(self, llm, mode: str = "few-shot", examples: list[dict] | None = None, shots: int = 4,
                 turn: TurnSettings | None = None, head: IntentHead | None | str = None) -> None:
        """``turn``: how much of a message is read and how long the answer may be (the defaults when None);
        ``head``: the :class:`IntentHead` that checks the LLM's intent ("shipped": the one in agent/data,
        None, the default: the LLM alone; Settings.router_head)."""
        if mode not in ("tuned", "few-shot"):
            raise ValueError(f"router mode must be 'tuned' or 'few-shot', not {mode!r}")
        self.llm, self.mode, self.shots = llm, mode, shots
        # "fallback": the tuned router answers free and is held to the grammar only when its answer
        # does not fit (see llm_route); "always": every answer under the grammar
        self.grammar = "fallback"
        self.turn = turn or TurnSettings()
        self.instructions = read_prompt("router_tuned.txt" if mode == "tuned" else "router.txt")
        self.head = load_head() if head == "shipped" else head
        self._pool: ThreadPoolExecutor | None = None
        self.last_llm_route: Route | None = None  # the LLM's own answer to the last call, before the head
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
        """The LLM's route, its intent checked by the intent head when there is one."""
        if self.head is None or not utterance or not utterance.strip():
            self.last_llm_route = self.llm_route(utterance, context)
            return self.last_llm_route
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intent-head")
        # the head reads while the LLM answers (both release the GIL): its time hides behind the call
        probabilities = self._pool.submit(self.head.probabilities, utterance[:self.turn.max_message_chars])
        route = self.last_llm_route = self.llm_route(utterance, context)
        return self.head.combine(route, probabilities.result())

    def llm_route(self, utterance: str, context: Sequence[dict] = ()) -> Route:
        """The LLM's answer alone.

        The tuned adapter was trained on the answer's exact shape and writes it unconstrained, so
        it answers free first and the JSON grammar is used only when that answer does not fit the
        schema: llama.cpp checks the grammar against the whole vocabulary on every token, which
        more than doubles the cost of each answer token (about 13 → 29 ms on 2 cores)."""
        if not utterance or not utterance.strip():
            return Route("chitchat")
        messages = as_messages(self.chat(utterance[:self.turn.max_message_chars], context))
        if self.mode == "tuned" and self.grammar == "fallback":
            # the adapter's answers end with the slots' and the answer's closing braces and have no
            # other "}}": stopping there keeps a runaway answer (an unclosed string) short
            free = self.llm.invoke(messages, max_tokens=self.turn.router_max_tokens, stop=["}}"]).content + "}}"
            route = parse_strict(free) or parse_salvaged(free)
            if route is not None:
                return route
            log.info("router answer did not fit the schema, asking again with the grammar: %r", free[:200])
        answer = self.llm.invoke(messages, json_schema=SCHEMA, max_tokens=self.turn.router_max_tokens)
        return parse_answer(answer.content)


def render_turn(utterance: str, context: Sequence[dict]) -> str:
    shown = render_context(context)
    return (f"Dialogue:\n{shown}\n" if shown else "") + f"Message: {utterance}"


def parse_strict(content: str) -> Route | None:
    """The route when ``content`` is JSON that fits :data:`SCHEMA`, else None."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return None
    if not fits(value, SCHEMA):
        return None
    return Route(value["intent"], {**empty_slots(), **value["slots"]})


def parse_salvaged(content: str) -> Route | None:
    """The route of a complete answer whose only misfits are list values outside their enum (a
    genre the model made up: "sophomerousment"), those values dropped; else None. Asked again
    under the grammar, the model would have to write *some* genre, the nearest allowed token (it
    wrote Sci-Fi for "something smarter"), while the rest of its answer was sound."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return None
    if not (isinstance(value, dict) and value.get("intent") in INTENTS and isinstance(value.get("slots"), dict)):
        return None
    properties = SCHEMA["properties"]["slots"]["properties"]
    slots, dropped = {}, []
    for key, item in value["slots"].items():
        items_schema = properties.get(key, {}).get("items", {})
        if isinstance(item, list) and "enum" in items_schema:
            dropped += [v for v in item if v not in items_schema["enum"]]
            item = [v for v in item if v in items_schema["enum"]]
        slots[key] = item
    value = {"intent": value["intent"], "slots": slots}
    if not dropped or not fits(value, SCHEMA):
        return None
    log.info("router answer named values outside the schema, dropped: %r", dropped)
    return Route(value["intent"], {**empty_slots(), **slots})


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


def make_router(settings: Settings, llm) -> Router:
    """The tuned router (default local model + the shipped LoRA adapter) when it applies, else
    few-shot prompting of whatever model is configured. ``router_mode="tuned"`` with the openai
    backend expects the endpoint to serve the tuned model, e.g. ``python -m llama_cpp.server
    --model <SmolLM2 GGUF> --lora_path agent/data/router_lora.gguf``."""
    from agent.llm import LLMUnavailable, LocalChatModel

    mode, adapter = settings.router_mode, Path(settings.router_adapter or ROUTER_ADAPTER)
    head = (None if settings.router_head == "off"
            else load_head(only=EXPLAIN_ONLY if settings.router_head == "explain" else None))
    if mode == "auto":
        default_local = settings.llm_backend == "local" and not settings.llm_model
        mode = "tuned" if default_local and adapter.exists() else "few-shot"
    if mode == "tuned" and settings.llm_backend != "local":
        # the endpoint serves the tuned model (llama_cpp.server --lora_path)
        return Router(llm, mode="tuned", turn=settings.turn, head=head)
    if mode == "tuned":
        if not adapter.exists():
            raise LLMUnavailable(f"no router adapter at {adapter}: run `chatrec tune-router`")
        routing_llm = LocalChatModel(model_path=settings.llm_model, lora_path=str(adapter), n_threads=settings.threads)
        return Router(routing_llm, mode="tuned", turn=settings.turn, head=head)
    return Router(llm, mode="few-shot", turn=settings.turn, head=head)


__all__ = ["HEAD_FILE", "INTENTS", "IntentHead", "ROUTER_ADAPTER", "SLOT_KEYS", "Route", "Router", "SCHEMA", "Slots", "compact_answer", "empty_slots", "fits", "parse_strict",
           "load_examples", "load_head", "make_router", "parse_answer", "parse_salvaged", "render_context"]
