"""The chat helpers (tools/chat.py) without a model."""

from __future__ import annotations

from tools.chat import first_sentences


def test_replies_are_cut_at_whole_sentences() -> None:
    assert first_sentences("One. Two! Three? Four.", 3) == "One. Two! Three?"
    assert first_sentences("One. Two and then it was cut", 3) == "One."
    assert first_sentences("just one unfinished", 3) == "just one unfinished"
