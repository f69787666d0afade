"""The chat helpers (tools/chat.py) without a model."""

from __future__ import annotations

from tools.chat import drop_repeats, first_sentences, keep_said, stream_sentences, unsaid


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


def test_a_reply_that_apologises_for_nothing_talks_about_itself_or_says_the_message_back_says_nothing() -> None:
    # what SmolLM2-135M answered real seekers' chit-chat with (ReDial dev)
    assert unsaid("I'm sorry for any misunderstanding.", "I will check those out") == "an apology for nothing"
    assert unsaid("No, I'm sorry for your loss.", "yea saw it") == "an apology for nothing"
    assert unsaid("But as a chat-rec, I'm not equipped to recommend movies.", "Tomb Raider") == "talk about itself"
    assert unsaid("I'm here to help you with whatever you need.", "for what genre.") == "talk about itself"
    assert unsaid("I'll add both of those to my list.", "I will add both of those to my list") == \
        "the message said back"
    assert unsaid("is a classic, but a bittersweet tale.", "the sequel gives away a secret") == "a broken sentence"
    # an apology with something to be sorry about, and replies that answer, stay
    assert unsaid("I'm sorry for the misunderstanding.", "yes sorry") == "an apology for nothing"
    assert unsaid("I'm sorry for any confusion.", "Lost in Translation") == "an apology for nothing"
    assert unsaid("I'm not a movie-watching AI.", "I can recite lines from that one") == "talk about itself"
    assert unsaid("Hello! I'm Sarah, a creative writing assistant.", "Hello") == "talk about itself"
    assert unsaid("The Hangover.", "I've never seen Anchorman but I did love The Hangover") == "the message said back"
    assert unsaid("I'm sorry to hear that.", "my dog died and I need a comedy") is None
    assert unsaid("Sorry for the confusion!", "that's wrong, I asked for books") is None
    assert unsaid("I'm sorry it was boring.", "the first one was boring") is None
    assert unsaid("I'm glad you enjoyed it!", "I loved that one") is None
    assert unsaid("You're welcome!", "thanks") is None
    assert unsaid("That is a good one.", "ok") is None  # three words, none the message's


def test_keep_said_keeps_the_rest_in_order_and_says_what_it_dropped() -> None:
    text, dropped = keep_said("I'm sorry for any confusion. Glad you liked it! I'm here to help.", "loved it")
    assert text == "Glad you liked it!"
    assert [why for _, why in dropped] == ["an apology for nothing", "talk about itself"]
    assert keep_said("", "hi") == ("", [])
    text, dropped = keep_said("I'm not a movie-watching machine. But I can suggest something else. Enjoy it!",
                              "I think I'm going to show them Finding Nemo.")
    assert text == "Enjoy it!" and dropped[1][1] == "goes on from a sentence dropped"
