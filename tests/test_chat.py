"""The chat helpers (tools/chat.py) without a model."""

from __future__ import annotations

from tools.chat import drop_repeats, first_sentences, stream_sentences


def test_replies_are_cut_at_whole_sentences() -> None:
    assert first_sentences("One. Two! Three? Four.", 3) == "One. Two! Three?"
    assert first_sentences("One. Two and then it was cut", 3) == "One."
    assert first_sentences("just one unfinished", 3) == "just one unfinished"


def test_a_phrase_said_again_right_after_itself_is_said_once() -> None:
    assert drop_repeats("It is a unique blend of horror and horror.") == "It is a unique blend of horror."
    assert drop_repeats("horror and horror and horror and horror") == "horror"
    assert drop_repeats("It is so so so good, like Heat.") == "It is so good, like Heat."
    # an echoed message, in any script
    assert drop_repeats("أريد فيلم رعب أريد فيلم رعب أريد فيلم رعب") == "أريد فيلم رعب"


def test_repeated_sentences_are_dropped_and_nothing_left_is_empty() -> None:
    assert drop_repeats("Fargo is great. Fargo is great. Fargo is great.") == "Fargo is great."
    assert drop_repeats("I love movies! I love movies! What do you like?") == "I love movies! What do you like?"
    looped = "The film is tense and moving. The film is tense and moving, like Heat. The film is tense and moving too."
    assert drop_repeats(looped) == "The film is tense and moving. The film is tense and moving, like Heat."
    assert drop_repeats("Fargo and Heat share a dark, funny tone. You liked both.") == \
        "Fargo and Heat share a dark, funny tone. You liked both."
    assert drop_repeats("") == "" and first_sentences("and and and", 2) == "and"


class _Streams:
    def __init__(self, text: str) -> None:
        self.text, self.chunks = text, 0

    def stream(self, messages, **kwargs):
        from langchain_core.messages import AIMessageChunk

        for word in self.text.split(" "):
            self.chunks += 1
            yield AIMessageChunk(content=word + " ")


def test_streamed_replies_drop_repeats_and_a_repeat_does_not_use_up_a_sentence() -> None:
    llm = _Streams("I love movies! I love movies! I love movies! What do you like? Tell me.")
    assert stream_sentences(llm, [], 2, max_tokens=60) == "I love movies! What do you like?"
