"""LLM re-ranking: the model orders the candidates; we keep only a usable order.

Two ways to ask. ``Reranker`` (Chat-Rec, listwise): the answer is constrained to
``{"order": [candidate numbers]}`` and used only when every number names a candidate and none
repeats; a short list is filled up from the scored order. ``PointwiseReranker`` (InstructRec):
one yes / no ask per candidate ("would they enjoy X?") and the candidates sorted by the
probability of "yes" — read from the model's next-token distribution, nothing generated — or by
the mean of that rank and the scored rank (``fuse``). Either way, anything unusable — or an LLM
that does not answer — falls back to the scored order, and the result says why, so a reply never
depends on the model behaving.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from prompts import read_instruct_templates, read_prompt
from tools.candidates import Candidate
from tools.chat import LLMUnavailable, as_messages

log = logging.getLogger(__name__)


# BinLLM's collaborative field (agent/tuning/codes.py): the system note, the person's code and
# one code per candidate
Codes = tuple[str, str, Sequence[str]]


def code_header(user_code: str) -> str:
    """The line that opens an ask carrying BinLLM's codes (re-rank here; pointwise and pairwise
    in the instruction data)."""
    return f"Their code: {user_code}\n"


def code_tag(item_code: str) -> str:
    """What follows an item's name in an ask carrying BinLLM's codes."""
    return f" [code {item_code}]"


@dataclass
class RerankResult:
    order: list[int]  # indices into the candidate list, best first, ``count`` long (or all there are)
    used_llm: bool
    note: str = ""  # why the scored order was used, when it was
    p_yes: list[float] = field(default_factory=list)  # pointwise: P("yes") per candidate, in candidate order


def describe(candidate: Candidate) -> str:
    """One short line per candidate: prompt evaluation is most of a re-rank's time on a small CPU."""
    item = candidate.item
    line = item.title_year
    if item.author:
        line += f" by {item.author}"
    elif item.genres:
        line += " — " + ", ".join(item.genres[:2])
    return line + (" [new]" if candidate.source == "cold" else "")


def order_schema(n_candidates: int, count: int) -> dict:
    return {"type": "object", "required": ["order"],
            "properties": {"order": {"type": "array", "items": {"type": "integer", "enum": list(range(1, n_candidates + 1))},
                                     "minItems": 1, "maxItems": count}}}


def validate_order(answer: str, n_candidates: int, count: int) -> tuple[list[int] | None, str]:
    """The LLM's order as 0-based indices, or None and the reason it is unusable."""
    try:
        order = json.loads(answer)["order"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None, "the answer was not the JSON asked for"
    if not isinstance(order, list) or not order:
        return None, "the order was empty"
    if not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= n_candidates for n in order):
        return None, "the order named something that is not a candidate"
    if len(set(order)) != len(order):
        return None, "the order repeated a candidate"
    return [n - 1 for n in order[:count]], ""


class Reranker:
    def __init__(self, llm) -> None:
        self.llm = llm
        self.system = read_prompt("rerank.txt")
        self.user = read_prompt("rerank_user.txt")

    def prompt(self, candidates: Sequence[Candidate], count: int, *, profile: Sequence[str] = (),
               disliked: Sequence[str] = (), dialogue: str = "", query: str = "", domain: str = "movie",
               codes: Codes | None = None) -> list[dict]:
        """The chat messages of a re-rank request (also what instruction tuning trains on).

        ``codes``: BinLLM's collaborative field — (the note for the system prompt, the person's
        code, one code per candidate); the plain prompt without it."""
        system = self.system.format(domain=domain, count=count)
        lines = [f"{n}. {describe(c)}" for n, c in enumerate(candidates, 1)]
        header = ""
        if codes is not None:
            note, user_code, item_codes = codes
            if len(item_codes) != len(candidates):
                raise ValueError(f"{len(item_codes)} candidate codes for {len(candidates)} candidates")
            system += "\n" + note
            lines = [line + code_tag(code) for line, code in zip(lines, item_codes)]
            header = code_header(user_code)
        user = header + self.user.format(profile="; ".join(profile[:6]) or "nothing yet",
                                         disliked="; ".join(disliked[:4]) or "nothing", dialogue=dialogue or "(start)",
                                         query=query[:300], candidates="\n".join(lines))
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def rerank(self, candidates: Sequence[Candidate], count: int, *, profile: Sequence[str] = (),
               disliked: Sequence[str] = (), dialogue: str = "", query: str = "", domain: str = "movie",
               codes: Codes | None = None) -> RerankResult:
        scored = list(range(min(count, len(candidates))))
        if len(candidates) <= 1:
            return RerankResult(scored, False, "one candidate or none: nothing to order")
        messages = as_messages(self.prompt(candidates, count, profile=profile, disliked=disliked, dialogue=dialogue,
                                           query=query, domain=domain, codes=codes))
        try:
            answer = self.llm.invoke(messages, json_schema=order_schema(len(candidates), count), max_tokens=8 * count + 16)
        except LLMUnavailable as exc:
            log.warning("rerank: %s; using the scored order", exc)
            return RerankResult(scored, False, f"the LLM did not answer ({exc})")
        order, problem = validate_order(answer.content, len(candidates), count)
        if order is None:
            log.info("rerank: %s (%r); using the scored order", problem, answer.content[:200])
            return RerankResult(scored, False, problem)
        filled = order + [i for i in range(len(candidates)) if i not in order][: max(0, count - len(order))]
        return RerankResult(filled[:count], True)


def fused_order(p_yes: Sequence[float]) -> list[int]:
    """Candidates (given in scored order) by the mean of their scored rank and their "yes" rank;
    ties keep the scored order. A parameter-free way to add the LLM's judgement to the scores'."""
    p = np.asarray(p_yes, dtype=np.float64)
    by_yes = np.empty(len(p))
    by_yes[np.argsort(-p, kind="stable")] = np.arange(len(p))
    return [int(i) for i in np.argsort(np.arange(len(p)) + by_yes, kind="stable")]


def pointwise_templates() -> dict:
    """The pointwise ask's texts: the same file ``chatrec tune data`` phrases its yes / no asks from."""
    templates = read_instruct_templates()
    return {"system": templates["pointwise"]["system"], "question": templates["pointwise"]["questions"][0],
            "liked": templates["implicit_preference"][0]}


def ask_messages(system: str, context: str, question: str) -> list[dict]:
    """A pointwise or pairwise ask: what is known about the person, then the question."""
    return [{"role": "system", "content": system}, {"role": "user", "content": context + "\n" + question}]


class PointwiseReranker:
    """InstructRec's pointwise ranking: "would this person enjoy X? yes or no" for each candidate,
    sorted by P("yes") (``fuse``: by the mean of that rank and the scored rank).

    The asks share everything but their last line, so a llama.cpp model evaluates the person's
    part once and each candidate's question on top of it. The LLM must offer
    ``answer_probabilities`` (every backend in agent/llm.py does; an endpoint without log-probs
    raises LLMUnavailable and the scored order is used)."""

    def __init__(self, llm, fuse: bool = False) -> None:
        self.llm, self.fuse = llm, fuse
        self.t = pointwise_templates()

    def prompt(self, candidate: Candidate, *, profile: Sequence[str] = (), query: str = "", domain: str = "movie",
               codes: tuple[str, str, str] | None = None) -> list[dict]:
        """The ask for one candidate. ``codes``: (the note, the person's code, the candidate's code)."""
        title = candidate.item.title_year
        lines = [self.t["liked"].format(titles="; ".join(profile[:6]))] if profile else []
        if query:
            lines.append(f"They asked for: {query[:300]}")
        system = self.t["system"].format(domain=domain)
        if codes is not None:
            note, user_code, item_code = codes
            system += "\n" + note
            lines.insert(0, code_header(user_code).rstrip("\n"))
            title += code_tag(item_code)
        return ask_messages(system, "\n".join(lines) or "Nothing is known about them yet.",
                            self.t["question"].format(title=title))

    def p_yes(self, candidate: Candidate, *, profile: Sequence[str] = (), query: str = "", domain: str = "movie",
              codes: tuple[str, str, str] | None = None) -> float:
        """P("yes") for one ask (raises LLMUnavailable when the LLM cannot say)."""
        messages = as_messages(self.prompt(candidate, profile=profile, query=query, domain=domain, codes=codes))
        return self.llm.answer_probabilities(messages, ("yes", "no"))["yes"]

    def rerank(self, candidates: Sequence[Candidate], count: int, *, profile: Sequence[str] = (),
               disliked: Sequence[str] = (), dialogue: str = "", query: str = "", domain: str = "movie",
               codes: Codes | None = None) -> RerankResult:
        """``disliked`` and ``dialogue`` are not part of the pointwise ask (the tuning data has
        neither); they are accepted so either re-ranker can be called the same way."""
        scored = list(range(min(count, len(candidates))))
        if len(candidates) <= 1:
            return RerankResult(scored, False, "one candidate or none: nothing to order")
        if codes is not None and len(codes[2]) != len(candidates):
            raise ValueError(f"{len(codes[2])} candidate codes for {len(candidates)} candidates")
        p_yes = []
        try:
            for n, candidate in enumerate(candidates):
                field_ = None if codes is None else (codes[0], codes[1], codes[2][n])
                p_yes.append(self.p_yes(candidate, profile=profile, query=query, domain=domain, codes=field_))
        except LLMUnavailable as exc:
            log.warning("pointwise rerank: %s; using the scored order", exc)
            return RerankResult(scored, False, f"the LLM did not answer ({exc})")
        order = fused_order(p_yes) if self.fuse else [int(i) for i in np.argsort(-np.asarray(p_yes), kind="stable")]
        return RerankResult(order[:count], True, p_yes=p_yes)


__all__ = ["Codes", "PointwiseReranker", "RerankResult", "Reranker", "ask_messages", "code_header", "code_tag",
           "describe", "fused_order", "order_schema", "pointwise_templates", "validate_order"]
