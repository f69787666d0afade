"""What every LLM-using tool shares: the error a dead model raises and the message form.

The backends themselves live in agent/llm.py (the agent picks and configures one); tools take
any LangChain chat model and only need these two names.
"""

from __future__ import annotations

import re

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from rapidfuzz import fuzz


class LLMUnavailable(RuntimeError):
    """The language model cannot answer (not installed, endpoint down, bad key, timeout)."""


def as_messages(dicts: list[dict]) -> list[BaseMessage]:
    """Role/content dicts (how prompts are built and tuned on) → LangChain messages."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[d["role"]](d["content"]) for d in dicts]


# where one sentence ends and the next begins; a full stop after a lone capital is an initial's
# ("William H. Macy", "E.T. the Extra-Terrestrial", "A.I. Artificial Intelligence"), not an end
SENTENCE_BREAK = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)\s+(?=\S)")


def _sentences(text: str) -> list[str]:
    return [p for p in SENTENCE_BREAK.split(text.strip()) if p]


# a phrase of one to six words said again right after itself, bare or joined by "and", "or", "&" or a comma:
# "a blend of horror and horror", "so so so good", an echoed message
_RUN = re.compile(r"(?<!\w)(\w[\w'’-]*(?:\s+\w[\w'’-]*){0,5})(?:(?:\s*,\s*|\s+(?:and|or|&)\s+|\s+)\1(?![\w'’-]))+",
                  re.I)
_PHRASE = 4  # words: a phrase of this length said a third time is a loop, not a reply
_SAME = 90  # rapidfuzz ratio: a sentence this close to one already said is said again


def _key(sentence: str) -> str:
    return " ".join(re.findall(r"\w+", sentence.lower()))


def drop_repeats(text: str) -> str:
    """A model's text without what it says again: a phrase repeated right after itself is said
    once, a sentence that (nearly) repeats an earlier one is dropped, and so is one that brings a
    phrase of four words a third time. "" when nothing is left (the caller's fallback applies).
    Every LLM reply that is shown passes here (:func:`first_sentences`)."""
    kept: list[str] = []
    said: dict[str, int] = {}
    for sentence in _sentences(text):
        previous = None
        while previous != sentence:
            previous, sentence = sentence, _RUN.sub(r"\1", sentence)
        key = _key(sentence)
        if not key or any(fuzz.ratio(key, _key(k)) >= _SAME for k in kept):
            continue
        words = key.split()
        phrases = {" ".join(words[i:i + _PHRASE]) for i in range(len(words) - _PHRASE + 1)}
        if any(said.get(p, 0) >= 2 for p in phrases):
            continue
        for p in phrases:
            said[p] = said.get(p, 0) + 1
        kept.append(sentence)
    return " ".join(kept)


def first_sentences(text: str, n: int = 3) -> str:
    """At most ``n`` sentences of a model's text, repeats dropped (:func:`drop_repeats`), and never a
    cut-off one when a whole one exists."""
    kept = _sentences(drop_repeats(text))[:n]
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
            if len(_sentences(drop_repeats("".join(pieces)))) > n:  # a repeat does not count
                break
    finally:
        stream.close()  # ends the generation now, before the model is asked anything else
    return first_sentences("".join(pieces), n)


# What a small model says in place of a reply (bench/RESULTS.md "Chit-chat that says something"):
# SmolLM2-135M answered most real seekers' chit-chat ("I will check those out", "bye") with
# "I'm sorry for any misunderstanding, but as a chat-rec, I'm not equipped to …" or said the message
# back. An apology needs something in the message to be sorry about: a fault of the assistant's
# ("that's wrong", "you misunderstood") for "sorry for the confusion", a sorrow for the rest.
_APOLOGY = re.compile(r"\b(?:(?:i'?m|i am)\s+(?:so\s+|very\s+|really\s+|truly\s+)?sorry|^\W*sorry|"
                      r"apologi[sz]e|my apologies)\b", re.I)
_OWN_FAULT = re.compile(r"\b(?:confusion|misunderst\w*|mistakes?|inconvenience|errors?|(?:sorry|apologi[sz]e) if i)\b",
                        re.I)
_FAULT = re.compile(r"\b(?:wrong|mistake|misunderst\w*|confus\w*|not what i|(?:did|do)\s*n[o']?t (?:get|understand|"
                    r"answer)|makes? no sense)\b", re.I)
_SORROW = re.compile(r"\b(?:sad|died|dead|death|passed away|sick|hurt|rough|awful|terrible|"
                     r"(?:did|do|was|is)\s*n[o']?t\s+(?:like|enjoy|work|help)|hated?|boring|disappoint\w*)\b", re.I)
_ABOUT_ITSELF = re.compile(r"\b(?:as an? (?:ai|assistant|language model|chat-?rec)|chat-?rec|"
                           r"(?:i'?m|i am) (?:[\w-]+, )?(?:not |just |only )?an? (?:[\w-]+ ){0,2}(?:ai|assistant|language model|bot)\b|"
                           r"(?:i'?m|i am) (?:not )?(?:capable|equipped|designed|programmed)\b|(?:i'?m|i am) not an? |"
                           r"(?:i'?m|i am) (?:always |just |only )?(?:here|always happy) to (?:help|assist)|"
                           r"\b(?:just )?a (?:quick )?reminder\b)", re.I)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ECHO = 0.8  # of a sentence's words (two or more) found in the message: said back, not a reply


def unsaid(sentence: str, message: str) -> str | None:
    """Why ``sentence`` of a chit-chat reply says nothing to ``message`` — a sentence begun in the
    middle, an apology for nothing the message names, talk about the assistant itself, or the
    message said back — or None."""
    if sentence[:1].islower() and not sentence.startswith("i "):
        return "a broken sentence"  # the model went on from words it did not write
    if _APOLOGY.search(sentence) and not (_FAULT if _OWN_FAULT.search(sentence) else _SORROW).search(message):
        return "an apology for nothing"
    if _ABOUT_ITSELF.search(sentence):
        return "talk about itself"
    words = _WORD.findall(sentence.lower())
    theirs = set(_WORD.findall(message.lower()))
    if len(words) >= 2 and sum(w in theirs for w in words) >= _ECHO * len(words):
        return "the message said back"
    return None


_GOES_ON = re.compile(r"^\W*(?:but|and|so|or|however|also|though)\b", re.I)


def keep_said(text: str, message: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` without the sentences that say nothing to ``message`` (:func:`unsaid`) or go on
    from one dropped ("… I'm not equipped to help. But I can suggest something else."), and those
    dropped with why."""
    kept, dropped, previous = [], [], None
    for sentence in _sentences(text):
        why = unsaid(sentence, message)
        if not why and dropped and dropped[-1][0] == previous and _GOES_ON.match(sentence):
            why = "goes on from a sentence dropped"
        previous = sentence
        if why:
            dropped.append((sentence, why))
        else:
            kept.append(sentence)
    return " ".join(kept), dropped


__all__ = ["LLMUnavailable", "as_messages", "drop_repeats", "first_sentences", "keep_said", "stream_sentences",
           "unsaid"]
