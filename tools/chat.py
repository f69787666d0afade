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


SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")


def _sentences(text: str) -> list[str]:
    return [p for p in SENTENCE_BREAK.split(text.strip()) if p]


def first_sentences(text: str, n: int = 3) -> str:
    """At most ``n`` sentences of a model's text, and never a cut-off one when a whole one exists."""
    kept = _sentences(text)[:n]
    if len(kept) > 1 and kept[-1][-1] not in ".!?":
        kept = kept[:-1]
    return " ".join(kept)


def stream_sentences(llm, messages: list[BaseMessage], n: int, max_tokens: int) -> str:
    """``first_sentences(reply, n)`` of the model's reply, generation stopped once ``n`` sentences are
    whole and another has begun: more text can no longer change them, and on a slow CPU the words
    that would be cut anyway are most of a short reply's time."""
    pieces: list[str] = []
    stream = llm.stream(messages, max_tokens=max_tokens)
    try:
        for chunk in stream:
            pieces.append(chunk.content)
            if len(_sentences("".join(pieces))) > n:
                break
    finally:
        stream.close()  # ends the generation now, before the model is asked anything else
    return first_sentences("".join(pieces), n)


__all__ = ["LLMUnavailable", "as_messages", "first_sentences", "stream_sentences"]
