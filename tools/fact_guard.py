"""No invented facts in chit-chat: each sentence of an LLM's free reply is checked against the
catalogue, and one that states a person, a year or a plot the catalogue does not hold is dropped.

The explanation has its own, stricter check (tools/explain_check.py: every content word of every
sentence). Chit-chat may say anything that is no fact ("Happy to help!", "I love a good mystery
too"); what it may not do is *state* one the catalogue cannot back, which the small local model
does often: "Pulp Fiction was written by Steven Spielberg", "Jurassic Park was released in 2003",
"Coco is a 1990s comedy about a young woman". Per sentence:

- a **person** (two or more capitalised words that are no title): credited on a film the
  sentence or the message names, or said in the message; in a sentence about no film, credited
  on some item of the catalogue;
- a **year or decade** ("1997", "the 1990s", "the eighties"): the year of a film the sentence or
  the message names, or written in the message;
- a **plot**: a sentence about a film (it names one, or says "it" / "the film" of one the message
  named) passes the explanation's claim check against that film's facts (its genres, year,
  description and credits): a content word none of them holds is an invention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tools.catalog import Catalog, CatalogItem
from tools.explain_check import FRAMING, ClaimChecker, capitalised_names, sentences
from tools.item_facts import ItemFacts, People
from tools.resolve import match_key

_YEAR = re.compile(r"\b(1[89]\d\d|20[0-3]\d)\b")
_DECADE = re.compile(r"\b(?:(1[89]|20)?(\d)0['’]?s)\b|\b(twenties|thirties|forties|fifties|sixties|seventies|"
                     r"eighties|nineties)\b", re.I)
_DECADE_WORD = {"twenties": 2, "thirties": 3, "forties": 4, "fifties": 5, "sixties": 6, "seventies": 7,
                "eighties": 8, "nineties": 9}
_IN_A_NAME = re.compile(r"[-'’]?\s?[A-Z][a-z]")  # a lone title word followed by more of a name
_WORDS = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_GOES_ON = re.compile(r"\W*(?:he|she|it|they|his|her|its|their|this|that|these|those|also|and|but)\b", re.I)
_ABOUT_IT = re.compile(r"\b(?:it|it's|its|the (?:film|movie|book|story|plot))\b", re.I)
# what a sentence about a film may get wrong (a title it names is what it is about, not a claim)
_CLAIM_KINDS = ("content", "genre", "reaction", "acclaim", "relation")
# words about knowing and saying, not about the film: "I don't know whether Casablanca is ..."
_NOT_FACTS = ("I don't know, I do not know, I'm not sure, I can't say or tell whether; my catalogue doesn't say, "
              "does not list or hold it. What I do know, have heard or remember.")


@dataclass
class GuardedText:
    text: str  # the sentences kept, in order
    dropped: list[tuple[str, list[str]]] = field(default_factory=list)  # (sentence, what it invented)


class FactGuard:
    """``catalog``: every credited person; ``spotter``: the titles a sentence names
    (tools.resolve.TitleSpotter); ``checker``: the explanation's claim check, for plots."""

    def __init__(self, catalog: Catalog, spotter, checker: ClaimChecker | None = None) -> None:
        self.catalog, self.spotter = catalog, spotter
        self.checker = checker or ClaimChecker(spotter)
        self._people: People | None = None

    @property
    def people(self) -> People:
        """Every person the catalogue credits (built on first use: a pass over the descriptions)."""
        if self._people is None:
            self._people = People(self.catalog.items)
        return self._people

    def keep(self, text: str, message: str, about: Sequence[CatalogItem] = ()) -> GuardedText:
        """``text`` without the sentences that invent; ``about``: the items the message is about."""
        out = GuardedText("")
        kept: list[str] = []
        previous = None
        for sentence in sentences(text):
            problems = self.problems(sentence, message, about)
            if not problems and out.dropped and out.dropped[-1][0] == previous and _GOES_ON.match(sentence):
                problems = ["goes on from a sentence dropped"]  # "He's a master of ..." after "Nolan is ..."
            if problems:
                out.dropped.append((sentence, problems))
            else:
                kept.append(sentence)
            previous = sentence
        out.text = " ".join(kept)
        return out

    def problems(self, sentence: str, message: str, about: Sequence[CatalogItem] = ()) -> list[str]:
        # a lone title may open the sentence ("Fargo was ..."), but not a common word ("Sorry, ...")
        named = [item for start, end, key, item in self.spotter.spans(sentence, "movie", openers=True)
                 if " " in key or (key not in FRAMING and not _IN_A_NAME.match(sentence, end)
                                   and not sentence[:start].endswith("-"))]  # not "Carrie" of "Carrie-Anne Moss"
        items = list({item.item_id: item for item in [*named, *about]}.values())
        blank = sentence
        for item in named:
            blank = re.sub(re.escape(item.title), " ", blank, flags=re.I)
        problems = []
        said = message.lower()
        credited = {n for item in items for n in ItemFacts.of(item).people()}
        described = {w.lower() for item in items for w in _WORDS.findall(item.description or "")}
        for name in capitalised_names(blank):
            low = name.lower()
            if (low in said or (items and _credited(low, credited)) or (not items and low in self.people)
                    or all(w in described for w in low.split())):  # a place or a character of the plot
                continue
            problems.append(f"person: {name}")
        years = {item.year for item in items if item.year}
        for m in _YEAR.finditer(sentence):
            if int(m.group(1)) not in years and m.group(1) not in message:
                problems.append(f"year: {m.group(1)}")
        decades = {y // 10 % 10 for y in years}
        for m in _DECADE.finditer(sentence):
            digit = int(m.group(2)) if m.group(2) else _DECADE_WORD[m.group(3).lower()]
            if digit not in decades and m.group(0).lower() not in said:
                problems.append(f"decade: {m.group(0)}")
        key = match_key(sentence)
        about_items = (items if named or _ABOUT_IT.search(sentence) or any(match_key(i.title) in key for i in about)
                       else [])  # any one of them may back it
        if about_items:
            from tools.explain import Evidence

            checks = [self.checker.check(sentence, Evidence(item, source="store", listed=False), [_NOT_FACTS])
                      for item in about_items]
            claims = [[c for s in check.sentences for c in s.claims if c.kind in _CLAIM_KINDS and not c.supported]
                      for check in checks]
            claims = [[c for c in found if c.text.lower() not in described] for found in claims]  # its own words
            if all(claims):  # no film the sentence is about holds it
                problems += [f"{c.kind}: {c.text}" for c in claims[0]]
        return problems


def _credited(name: str, credited: set[str]) -> bool:
    """"Coen" or "Joel Coen" for a film credited to Joel Coen: every word of the name in one credit."""
    words = name.split()
    return any(all(w in c.split() for w in words) for c in credited)


__all__ = ["FactGuard", "GuardedText"]
