"""What every LLM-using tool shares: the error a dead model raises and the message form.

The backends themselves live in agent/llm.py (the agent picks and configures one); tools take
any LangChain chat model and only need these two names.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage


class LLMUnavailable(RuntimeError):
    """The language model cannot answer (not installed, endpoint down, bad key, timeout)."""


def as_messages(dicts: list[dict]) -> list[BaseMessage]:
    """Role/content dicts (how prompts are built and tuned on) → LangChain messages."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[d["role"]](d["content"]) for d in dicts]


__all__ = ["LLMUnavailable", "as_messages"]
