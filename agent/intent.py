"""What a turn asks for, learned from real seekers: the shipped MiniLM fine-tuned
(:mod:`agent.classifier`) to read a turn with what came just before it — recommend, explain or
chit-chat. Built by ``python -m agent.tuning.intent_data`` from the router's training pool and
1,639 seeker turns of ReDial dialogues outside every evaluation sample, labelled by hand
(``agent/data/redial_intent_labels.jsonl``); ships as ``agent/data/intent_reader.safetensors``.

Why: the router (a 135M model) and the reading's rules were fitted on words written for them;
real seekers answer a question about their taste in two words, or react to a suggestion and ask
for another in one breath, and rules read off 400 development turns gained a third as much on
turns they had not seen (bench/RESULTS.md). A reader trained on real turns with their context sees the
family, not the sentence.

It settles only recommend against chit-chat, where it is sure (``sure``, chosen on the ReDial
development sets), and never where the product answers by a rule of its own: an outright ask for
suggestions stays a request, and so does a list said to be all seen; a taste told in answer to
suggestions stays chit-chat, and so do the turns the chit-chat path has fixed words for (its
abilities, a greeting, its taste, a goodbye). Left free there, it read "do you like comedies?" as a
request and "I've seen all of these" as chit-chat (ReDial's seekers' "seen them" is a reaction);
explanation requests stay with the router, the intent head and the rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from agent.classifier import load_classifier
from agent.reading import asks_for_facts, asks_for_suggestions, gives_something_to_go_on, own_reply, seen_them_all, states_taste

log = logging.getLogger(__name__)

READER_FILE = Path(__file__).resolve().parent / "data" / "intent_reader.safetensors"
INTENTS = ("recommend", "explain", "chitchat")
MAX_TOKENS = 128  # the turn first: a long context is what gets cut
SETTLES = ("recommend", "chitchat")
_CONTEXT_WORDS = 40


def intent_text(utterance: str, context: Sequence[dict]) -> str:
    """The turn as the reader reads it: the words, then whether anything was suggested earlier and
    the other speaker's last turn (cut to its last words), with "[SEP]" between."""
    suggested = any(t.get("role") == "assistant" and t.get("items") for t in context)
    last = next((t.get("text") or "" for t in reversed(context) if t.get("role") == "assistant"), "")
    words = last.split()
    last = " ".join(words[-_CONTEXT_WORDS:])
    return f"{' '.join(utterance.split())} [SEP] {'suggested before' if suggested else 'nothing suggested yet'}: {last}"


class IntentReader:
    """The intent of a turn read with its context (:func:`intent_text`)."""

    def __init__(self, path: Path = READER_FILE) -> None:
        self.model, self.facts = load_classifier(path, INTENTS, MAX_TOKENS, "an intent reader",
                                                 "python -m agent.tuning.intent_data")
        self.sure = float(self.facts.get("sure", 0.9))

    def probabilities(self, utterance: str, context: Sequence[dict]) -> dict[str, float]:
        return dict(zip(INTENTS, self.model.probabilities([intent_text(utterance, context)])[0].tolist()))

    def settle(self, intent: str, utterance: str, context: Sequence[dict], answering: bool, spotter=None) -> str:
        """``intent`` (what the router and the reading decided), or the reader's where both are
        recommend / chit-chat, they differ and the reader is sure. Two limits, the labelling
        rules' own: words that ask for suggestions outright stay a request (a reaction ending
        "any you can recommend?" reads like the reactions the reader learned as chit-chat), and a
        taste told in answer to suggestions (``answering``, the reading's
        :func:`agent.reading.after_suggestions` for this turn: something was suggested and the
        other speaker's last turn did not ask about taste) stays chit-chat
        — "I love movies about friendship" after a list reads like an opening request to the
        reader, but asks for nothing; "something lighter" there is still the reader's to read.
        Three more, the product's own: the chit-chat path's fixed replies (:func:`own_reply`), a
        question about an item or trivia asked for (:func:`asks_for_facts`: "which genre would you
        put Mad Max: Fury Road in?" read as a request at 0.99), and a spent list after
        suggestions (:func:`seen_them_all`) are not the reader's call. And it
        makes a request only of words that give the recommender something to go on (a title —
        ``spotter``, the catalogue's :class:`tools.resolve.TitleSpotter`, None: titles unseen —,
        a genre, years, a kind of film, a taste told): after "what do you like?" it read "hey
        again" as a request at 0.99, as ReDial's answers to that question mostly are."""
        if intent not in SETTLES or (intent == "recommend" and asks_for_suggestions(utterance)):
            return intent
        if intent == "chitchat" and answering and states_taste(utterance):
            return intent
        if intent == "chitchat" and (own_reply(utterance) is not None or asks_for_facts(utterance, spotter)):
            return intent
        if intent == "recommend" and answering and seen_them_all(utterance):
            return intent
        if intent == "chitchat" and not gives_something_to_go_on(utterance, spotter):
            return intent
        p = self.probabilities(utterance, context)
        other = next(i for i in SETTLES if i != intent)
        if p[other] >= self.sure:
            log.info("intent: the reader (%.2f) reads %s where the reading said %s", p[other], other, intent)
            return other
        return intent


def load_intent_reader(path: Path | None = None) -> IntentReader | None:
    """The reader at ``path``, or the shipped one (None when none ships); a named file that is
    missing is an error, not silently the rules alone."""
    if path:
        if not Path(path).exists():
            raise ValueError(f"{path}: no such intent reader file (python -m agent.tuning.intent_data writes one)")
        return IntentReader(Path(path))
    return IntentReader(READER_FILE) if READER_FILE.exists() else None
