"""What every LLM-using tool shares: the error a dead model raises and the message form.

The backends themselves live in agent/llm.py (the agent picks and configures one); tools take
any LangChain chat model and only need these two names.
"""

from __future__ import annotations

import re

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage


class LLMUnavailable(RuntimeError):
    """The language model cannot answer (not installed, endpoint down, bad key, timeout)."""


def as_messages(dicts: list[dict]) -> list[BaseMessage]:
    """Role/content dicts (how prompts are built and tuned on) → LangChain messages."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[d["role"]](d["content"]) for d in dicts]


def first_sentences(text: str, n: int = 3) -> str:
    """At most ``n`` sentences of a model's text, and never a cut-off one when a whole one exists."""
    parts = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p]
    kept = parts[:n]
    if len(kept) > 1 and kept[-1][-1] not in ".!?":
        kept = kept[:-1]
    return " ".join(kept)


__all__ = ["LLMUnavailable", "as_messages", "first_sentences"]
