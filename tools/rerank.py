"""LLM re-ranking (Chat-Rec): the model orders the candidates; we keep only a usable order.

The answer is constrained to ``{"order": [candidate numbers]}``. It is used only when every
number names a candidate and none repeats; a short list is filled up from the scored order.
Anything else — or an LLM that does not answer — falls back to the scored order, and the
result says why, so a reply never depends on the model behaving.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prompts import read_prompt
from tools.candidates import Candidate
from tools.chat import LLMUnavailable, as_messages

log = logging.getLogger(__name__)


# BinLLM's collaborative field (agent/collab_codes.py): the system note, the person's code and
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


def describe(candidate: Candidate) -> str:
    """One short line per candidate: prompt evaluation is most of a re-rank's time on a small CPU."""
    item = candidate.item
    line = item.title + (f" ({item.year})" if item.year else "")
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


__all__ = ["Codes", "RerankResult", "Reranker", "code_header", "code_tag", "describe", "order_schema",
           "validate_order"]
