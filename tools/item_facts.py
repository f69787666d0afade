"""What the catalogue knows about one item, and answers to questions about it from that alone.

A movie's facts are its year and genres, and where the catalogue has a description (ReDial's
movies, a user's own items) its plot and credits: "<plot>. Directed by A. Written by B and C.
Starring D, E and F." A question the facts answer gets them; one they do not ("is it in black and
white?", "who directed it?" where no credits are known) gets "I don't know that" and what *is*
known. Nothing here is generated: the agent's small LLM invents plots and names (issue 24).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from prompts import read_replies
from tools.catalog import CatalogItem
from tools.resolve import everyday_word
from tools.vocabulary import GENRE_ADJECTIVE, GENRES, genre_key

ROLES = {"director": "Directed by", "writer": "Written by", "cast": "Starring"}
_GENRE_ASKED = [(g, re.compile(rf"\b(?:{g.asked})\b", re.I)) for g in GENRES]  # "is it animated?"
_ROLE = re.compile(r"\b(?:(Directed|Written|Produced|Narrated) by|(Starring))\s+")
_ROLE_NAME = {"Directed": "director", "Written": "writer", "Produced": "producer", "Narrated": "narrator",
              "Starring": "cast"}
# a full stop that ends the credit sentence: not an initial's ("William H. Macy", "T.J. Miller") nor "Jr."'s
_CREDIT_END = re.compile(r"(?<!\b[A-Z])(?<!\bJr)(?<!\bSr)(?<!\bSt)\.(?=\s|$)")


def credits_by_role(description: str | None) -> dict[str, list[str]]:
    """{"director": [...], "writer": [...], "cast": [...], ...} from a description's credit
    sentences ("Directed by A. Written by B and C. Starring D, E and F.")."""
    out: dict[str, list[str]] = {}
    text = description or ""
    roles = list(_ROLE.finditer(text))
    for n, m in enumerate(roles):
        stop = roles[n + 1].start() if n + 1 < len(roles) else len(text)  # the next credit, at the latest
        end = _CREDIT_END.search(text, m.end(), stop)
        listed = text[m.end():end.start() if end else stop].strip().rstrip(".")
        names = [p.strip() for p in re.split(r",\s*|\s+and\s+", listed) if p.strip()]
        role = out.setdefault(_ROLE_NAME[m.group(1) or m.group(2)], [])
        role.extend(n for n in names if n not in role)
    return out


def spoken_list(names: Sequence[str]) -> str:
    """"A", "A and B", "A, B and C": names as a sentence says them."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class ItemFacts:
    item: CatalogItem
    plot: str  # the description without its credits ("" when there is none)
    credits: dict[str, list[str]]

    @classmethod
    def of(cls, item: CatalogItem) -> ItemFacts:
        description = item.description or ""
        first_credit = _ROLE.search(description)  # the credits follow the plot
        plot = description[:first_credit.start()] if first_credit else description
        return cls(item, plot.strip(), credits_by_role(description))

    def people(self) -> set[str]:
        """Every name the facts hold, lower case (a book's author too)."""
        names = [n for names in self.credits.values() for n in names] + ([self.item.author] if self.item.author else [])
        return {n.lower() for n in names}

    def genres_said(self) -> str:
        words = [GENRE_ADJECTIVE.get(g, g).lower() if g != "IMAX" else g for g in self.item.genres]
        return spoken_list(list(dict.fromkeys(words))) if words else ""

    def summary(self) -> str:
        """One sentence of what is known besides the plot: year, genres, director, stars."""
        replies = read_replies()
        parts = [replies["facts_what"].format(title=self.item.title_year, kind=self.kind())]
        if names := self.credits.get("director"):
            parts.append(replies["facts_directed"].format(names=spoken_list(names)))
        if names := self.credits.get("cast"):
            parts.append(replies["facts_starring"].format(names=spoken_list(names)))
        if self.item.author:
            parts.append(replies["facts_by"].format(names=self.item.author))
        return ", ".join(parts) + "."

    def _genre_answer(self, text: str, replies: dict) -> str:
        """Its genres, and whether they are the ones the question names ("is it animated?"): yes,
        or "not as my catalogue files it" — the catalogue's filing, not a verdict on the film."""
        words = re.sub(re.escape(self.item.title), " ", text, flags=re.I)  # "is Scary Movie a comedy?"
        named = [g for g, asked in _GENRE_ASKED if asked.search(words)]
        if not named:
            return replies["answer_genre"].format(title=self.item.title_year, kind=self.kind())
        filed = {genre_key(g) for g in self.item.genres}
        if all(genre_key(g.catalogue) in filed for g in named):
            return replies["genre_yes"].format(title=self.item.title_year, kind=self.kind())
        return replies["genre_not_listed"].format(title=self.item.title_year, kind=self.kind())

    def kind(self) -> str:
        noun = "film" if self.item.domain == "movie" else self.item.domain
        genres = self.genres_said()
        return f"{_a(genres)} {genres} {noun}" if genres else f"{_a(noun)} {noun}"

    def answer(self, asked: Sequence[str], text: str = "") -> str:
        """The reply to a question asking for the facts ``asked`` (agent.reading.facts_asked's
        kinds); ``text``: the question, for a person it names ("is Tom Hanks in Toy Story?")."""
        replies = read_replies()
        title = self.item.title_year
        said: list[str] = []
        unknown: list[str] = []
        for kind in asked:
            if kind in ROLES:
                names = self.credits.get(kind) or ([self.item.author] if kind == "writer" and self.item.author else [])
                if not names:
                    unknown.append(replies[f"unknown_{kind}"])
                    continue
                person = person_asked(text) if kind == "cast" else None
                if person:
                    listed = any(person.lower() == n.lower() or person.lower() in n.lower() for n in names)
                    said.append(replies["cast_yes" if listed else "cast_not_listed"].format(
                        person=person, title=title, names=spoken_list(names)))
                else:
                    said.append(replies[f"answer_{kind}"].format(title=title, names=spoken_list(names)))
            elif kind == "year":
                said.append(replies["answer_year"].format(title=self.item.title, year=self.item.year)
                            if self.item.year else "")
                unknown += [] if self.item.year else [replies["unknown_year"]]
            elif kind == "genre":
                if self.item.genres:
                    said.append(self._genre_answer(text, replies))
                else:
                    unknown.append(replies["unknown_genre"])
            elif kind == "plot":
                if self.plot:
                    said.append(replies["answer_plot"].format(title=title, plot=self.plot))
                else:
                    unknown.append(replies["unknown_plot"])
            else:
                unknown.append(replies["unknown_other"])
        said = [s for s in said if s]
        if not unknown:
            return " ".join(said)
        head = replies["dont_know"].format(title=title, what=" or ".join(dict.fromkeys(unknown)))
        return " ".join([head, *said]) if said else f"{head} {replies['what_i_know']} {self.summary()}"


class People:
    """Who the catalogue credits and on what: name (lower case) → [(role, item)], most rated first."""

    SHOWN = 4  # titles named per role; the rest are counted

    def __init__(self, items: Sequence[CatalogItem]) -> None:
        self.by_name: dict[str, list[tuple[str, CatalogItem]]] = {}
        self.written: dict[str, str] = {}  # lower case → as the catalogue writes it
        for item in items:
            if not item.description and not item.author:
                continue
            credited = ItemFacts.of(item).credits | ({"writer": [item.author]} if item.author else {})
            for role, names in credited.items():
                for name in names:
                    self.by_name.setdefault(name.lower(), []).append((role, item))
                    self.written.setdefault(name.lower(), name)
        for credits in self.by_name.values():
            credits.sort(key=lambda pair: (-pair[1].n_ratings, -(pair[1].year or 0)))
        # a name as people type it: letters only ("Robert Deniro", "robert de niro" → "robertdeniro");
        # one word is too often a word ("Madonna" aside), so a name has two or more
        self._by_letters: dict[str, str] = {}
        for name in self.by_name:
            if len(name.split()) >= 2:
                self._by_letters.setdefault(_letters(name), name)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.by_name

    def items_of(self, names: Sequence[str]) -> set[str]:
        """The ids of the items the catalogue credits any of ``names`` on (any role)."""
        return {item.item_id for name in names for _, item in self.by_name.get(name.lower(), ())}

    def named_in(self, text: str) -> list[tuple[int, int, str]]:
        """The people the catalogue credits that ``text`` names, as (start, end, name as the
        catalogue writes it), longest first where two overlap: "I love Robert Deniro!",
        "anything with tom hanks". Lower case counts only where the name has a word that is not
        everyday English ("hanks", "deniro"), or word for word in a message typed all in lower case ("i like
        jack black"); elsewhere "Will Smith" needs its capitals."""
        words = list(_WORD.finditer(text))
        lower_case = not any(w.group()[:1].isupper() for w in words if w.group() != "I")  # types in lower case
        found: list[tuple[int, int, str]] = []
        taken = -1
        for i in range(len(words)):
            if words[i].start() < taken:
                continue
            for n in range(min(_NAME_WORDS, len(words) - i), 1, -1):
                span = words[i:i + n]
                name = self._by_letters.get(_letters(" ".join(w.group() for w in span)))
                if name is None:
                    continue
                written = [w.group() for w in span]
                as_written = [_letters(w) for w in written] == [_letters(w) for w in name.split()]
                if (all(w[:1].isupper() for w in written) or not all(everyday_word(w.lower()) for w in written)
                        or (lower_case and as_written)):  # "that will be all" is not Will Beall
                    found.append((span[0].start(), span[-1].end(), self.written[name]))
                    taken = span[-1].end()
                    break
        return found

    def answer(self, name: str) -> str:
        """What the catalogue credits ``name`` with ("In my catalogue, Jordan Peele directed Get
        Out (2017) and Us (2019), and wrote ..."), or that it credits them with nothing."""
        replies = read_replies()
        credits = self.by_name.get(name.lower(), [])
        if not credits:
            return replies["unknown_person"].format(name=name)
        parts = []
        for role, verb in (("director", "directed"), ("writer", "wrote"), ("cast", "stars in"),
                           ("producer", "produced"), ("narrator", "narrated")):
            titles = list(dict.fromkeys(item.title_year for r, item in credits if r == role))
            if titles:
                more = len(titles) - self.SHOWN
                shown = titles[:self.SHOWN] + ([f"{more} more"] if more > 0 else [])
                parts.append(f"{verb} {spoken_list(shown)}")
        return replies["person_credits"].format(name=self.written[name.lower()], credits="; ".join(parts))


_WORD = re.compile(r"[^\W_][\w.'’-]*")
_NAME_WORDS = 4  # the longest name looked for, in words ("Samuel L. Jackson" is three)


def _letters(name: str) -> str:
    return re.sub(r"[\W\d_]", "", name.lower())


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


_PERSON = re.compile(r"\b(?-i:(?:[Ii]s|[Ww]as|[Dd]oes|[Dd]id)\s+((?:[A-Z][\w.'’-]+\s+)+?[A-Z][\w.'’-]+))\s+"
                     r"(?:in|star|play|appear|act)\b")


def person_asked(text: str) -> str | None:
    """The person a question asks about as cast ("is Tom Hanks in Toy Story?" → "Tom Hanks")."""
    m = _PERSON.search(text)
    return m.group(1) if m else None


__all__ = ["ItemFacts", "People", "ROLES", "credits_by_role", "person_asked"]
