"""Explanations, evidence first (XRec-style grounding for a small model).

1. ``evidence``: the person's items nearest the recommended one in graph space
   (``explain_scores``), the genres they share with it, how many of the most similar users in
   the graph have it, and how it reached the list (graph, cold-start bridge, text similarity).
2. The LLM puts those facts into 1–3 sentences (prompts/explain.txt).
3. ``guard``: the text must name the item and must not name any catalog title or genre that is
   not in the evidence (:func:`unfaithful`, the same rule ``chatrec eval-explain`` measures);
   otherwise a plain sentence built from the evidence is used instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prompts import read_prompt
from tools.candidates import CandidateTool, genre_key
from tools.catalog import CatalogItem
from tools.chat import LLMUnavailable, as_messages, stream_sentences
from tools.resolve import TitleSpotter, match_key
from tools.vocabulary import GENRE_LEXICON

log = logging.getLogger(__name__)

SIMILAR_USERS = 50


@dataclass
class Evidence:
    item: CatalogItem
    nearest: list[dict] = field(default_factory=list)  # [{"title", "item_id", "share"}], the person's items
    shared_genres: list[str] = field(default_factory=list)
    similar_users: tuple[int, int] | None = None  # (how many of the N most similar users have it, N)
    source: str = "graph"  # graph | cold | store
    listed: bool = True  # on a list shown to the person ("why the second one?"), not asked about before any list

    def facts(self) -> list[str]:
        out = []
        if self.nearest:
            out.append("In the graph it sits closest to these items they liked: "
                       + ", ".join(e["title"] for e in self.nearest) + ".")
        if self.shared_genres:
            out.append("It shares genres with what they like: " + ", ".join(self.shared_genres) + ".")
        if self.similar_users and self.similar_users[0]:
            have, n = self.similar_users
            out.append(f"{have} of the {n} people with the most similar taste watched it.")
        if self.source == "cold":
            out.append("It is new: few ratings yet, placed by its description.")
        elif self.source == "store":
            out.append("Its description is close in meaning to what they like and asked for.")
        if self.item.genres:
            out.append("Its genres: " + ", ".join(self.item.genres) + ".")
        if self.item.author:
            out.append(f"It is by {self.item.author}.")
        return out

    def to_dict(self) -> dict:
        return {"nearest": self.nearest, "shared_genres": self.shared_genres,
                "similar_users": list(self.similar_users) if self.similar_users else None, "source": self.source}


# Genre words, by ml-100k genre (GENRE_LEXICON, from tools/vocabulary.py, where the rules are):
# matched case-insensitively as whole words, also inside hyphenated compounds ("action-adventure"
# names both, "post-war" names War; "live-action" is a format, not Action).
_GENRE_PATTERNS = {genre: re.compile(r"(?<![\w'])(?<!live-)(?:" + "|".join(re.escape(w).replace(r"\ ", r"[\s-]+")
                                                                   for w in sorted(words, key=len, reverse=True))
                                     + r")(?![\w])", re.IGNORECASE)
                   for genre, words in GENRE_LEXICON.items()}


def genres_named(text: str) -> set[str]:
    """The ml-100k genres ``text`` names (:data:`GENRE_LEXICON`), as their canonical names."""
    text = text.replace("’", "'")
    return {genre for genre, pattern in _GENRE_PATTERNS.items() if pattern.search(text)}


def allowed_titles(ev: Evidence) -> list[str]:
    """What an explanation may name: the item, its aliases, the evidence's nearest titles."""
    return [ev.item.title, *ev.item.aliases, *(e["title"] for e in ev.nearest)]


def blank_titles(text: str, titles: Iterable[str]) -> str:
    """``text`` without the titles, whole or by their ``:`` / `` - `` parts ("The Clone Wars" of
    "Star Wars: The Clone Wars"), so the genre words inside them do not count."""
    parts = {p.strip() for t in titles if t for p in [t, *re.split(r":\s|\s-\s", t)]}
    for title in sorted((p for p in parts if len(p) >= 3), key=len, reverse=True):
        text = re.sub(r"(?<!\w)" + re.escape(title) + r"(?!\w)", " ", text, flags=re.IGNORECASE)
    return text


_GENRE_WORD_KEYS = {match_key(w) for words in GENRE_LEXICON.values() for w in words}


def unfaithful(text: str, ev: Evidence, spotter: TitleSpotter) -> list[str]:
    """What ``text`` names that the evidence does not hold ([] = faithful):
    ``"title: <key>"`` for a stranger title, ``"genre: <Genre>"`` for a genre not allowed.
    A "title" that is a genre word ("... shares Drama, Fantasy with ...": the catalog has a
    film called Fantasy) is judged as the genre it names, not as a title."""
    allowed = {match_key(t) for t in allowed_titles(ev)} - {""}
    strangers = {key for key, _ in spotter.spot(text)} - allowed - _GENRE_WORD_KEYS
    strangers = {s for s in strangers if not any(s in a for a in allowed)}  # the guard's rule
    problems = [f"title: {s}" for s in sorted(strangers)]
    genres_ok = {genre_key(g) for g in (*ev.item.genres, *ev.shared_genres)}
    named = genres_named(blank_titles(text, allowed_titles(ev)))
    problems += [f"genre: {g}" for g in sorted(named) if genre_key(g) not in genres_ok]
    return problems


class Explainer:
    def __init__(self, llm, tool: CandidateTool, spotter: TitleSpotter) -> None:
        """``spotter``: the catalog's titles (the resolver's, so they are indexed once)."""
        self.llm, self.tool, self.spotter = llm, tool, spotter
        self.system = read_prompt("explain.txt")
        self.user = read_prompt("explain_user.txt")
        self.fallback = read_prompt("explain_fallback.txt").strip()  # an item on a list shown ("… is here because")
        self.fallback_unlisted = read_prompt("explain_fallback_unlisted.txt").strip()  # asked about before any list

    # -- facts --------------------------------------------------------------------------

    def evidence(self, item: CatalogItem, *, user_id: str | None, liked: Sequence[CatalogItem],
                 source: str = "graph", similar_users: bool = True) -> Evidence:
        rec = self.tool.recommender
        ev = Evidence(item, source=source)
        gid = self.tool.graph_id(item)
        liked_graph = [g for g in map(self.tool.graph_id, liked) if g]
        person: str | list[str] | None = user_id if user_id and not liked_graph else (
            (rec.history(user_id) if user_id else []) + liked_graph or None)
        if gid is not None and person:
            scores = rec.explain_scores(person, gid, k=3)
            for e in scores["evidence"]:
                near = self.tool.catalog_item(e["item_id"])
                if near is not None and e["contribution"] > 0:
                    ev.nearest.append({"title": near.title, "item_id": near.item_id, "share": round(e["share"], 3)})
            if similar_users:
                ev.similar_users = self._similar_users(person, gid)
        own = liked or (self.tool.history(user_id) if user_id else [])
        their = {genre_key(g): g for i in own for g in i.genres}
        ev.shared_genres = [g for g in item.genres if genre_key(g) in their]
        return ev

    def _similar_users(self, person: str | list[str], gid: str) -> tuple[int, int] | None:
        rec = self.tool.recommender
        if rec.bridged_[rec.item_index(gid)]:
            return None  # a cold item: nobody has it yet
        nearest = [rec.user_index(u) for u, _ in rec.similar_users(person, SIMILAR_USERS)]
        column = rec.train_[:, rec.item_index(gid)].toarray().ravel()
        return int((column[nearest] > 0).sum()), SIMILAR_USERS

    # -- words --------------------------------------------------------------------------

    def plain(self, ev: Evidence) -> str:
        """The fallback: a sentence built from the evidence alone."""
        reasons = []
        if ev.nearest:
            reasons.append("it is close to " + " and ".join(e["title"] for e in ev.nearest[:2]) + ", which you liked")
        if ev.shared_genres:
            reasons.append("it shares " + ", ".join(ev.shared_genres[:3]) + " with your favourites")
        if ev.similar_users and ev.similar_users[0]:
            reasons.append(f"{ev.similar_users[0]} of the {ev.similar_users[1]} people with the most similar taste "
                           "watched it")
        if not reasons:
            reasons.append("its description is close to what you asked for" if ev.source != "graph"
                           else "people with tastes like yours rate it highly")
        template = self.fallback if ev.listed else self.fallback_unlisted
        return template.format(title=ev.item.title, reasons="; ".join(reasons))

    def guard(self, text: str, ev: Evidence) -> str:
        """Why the text is unacceptable ("" when it is fine)."""
        if not text.strip():
            return "empty"
        allowed = {match_key(ev.item.title)} | {match_key(a) for a in ev.item.aliases}
        if not any(key and key in match_key(text) for key in allowed):
            return "does not name the item"
        problems = unfaithful(text, ev, self.spotter)
        titles = [p.split(": ", 1)[1] for p in problems if p.startswith("title: ")]
        genres = [p.split(": ", 1)[1] for p in problems if p.startswith("genre: ")]
        if titles:
            return "names titles not in the evidence: " + ", ".join(titles)
        if genres:
            return "names genres not in the evidence: " + ", ".join(genres)
        return ""

    def prompt(self, ev: Evidence, query: str = "") -> list[dict]:
        """The chat messages of an explanation request (also what instruction tuning trains on)."""
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format(title=ev.item.title,
                                                             facts="\n".join(f"- {f}" for f in ev.facts()),
                                                             query=query[:300])}]

    def explain(self, ev: Evidence, query: str = "") -> tuple[str, bool, str]:
        """(text, written by the LLM?, why the LLM's text was not used)."""
        text, _, problem = self.explain_raw(ev, query)
        return text, not problem, problem

    def explain_raw(self, ev: Evidence, query: str = "") -> tuple[str, str, str]:
        """(the text shown, the LLM's text before the guard ("" when it did not answer), why the LLM's
        text was not used ("" when it was)) — the raw text is what evaluations measure the guard on."""
        messages = as_messages(self.prompt(ev, query))
        try:
            text = stream_sentences(self.llm, messages, 3, max_tokens=90)
        except LLMUnavailable as exc:
            return self.plain(ev), "", f"the LLM did not answer ({exc})"
        problem = self.guard(text, ev)
        if problem:
            log.info("explanation rejected (%s): %r", problem, text[:200])
            return self.plain(ev), text, problem
        return text, text, ""


__all__ = ["Evidence", "Explainer", "GENRE_LEXICON", "allowed_titles", "blank_titles", "genres_named",
           "unfaithful"]
