"""Explanations, evidence first (XRec-style grounding for a small model).

1. ``evidence``: the person's items nearest the recommended one in graph space
   (``explain_scores``), the genres they share with it, how many of the most similar users in
   the graph have it, and how it reached the list (graph, cold-start bridge, text similarity).
2. The LLM puts those facts into 1–3 sentences (prompts/explain.txt).
3. The sentence-level check (:mod:`tools.explain_check`): each sentence's claims — titles,
   genres, names, figures, reactions ("funny", "scary"), acclaim, audiences, and every other
   content word — must be carried by the evidence; a repeated sentence or phrase fails. Failing
   sentences are dropped. What is left must name the item (``guard``); when nothing is left, a
   plain sentence built from the evidence is used instead. When what is left names none of the
   person's own items, one evidence sentence saying which of theirs it is close to is added.
4. The person's words: reasons they gave for liking something ("the twist", "the music") that
   the item's catalogue facts can carry (its genres, its description) go into the evidence
   (:func:`their_reasons`), so the prompt and the plain sentence can tie to them.
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
from tools.cross_domain import Via
from tools.explain_check import ClaimChecker, TextCheck, names_any, stem, words_of
from tools.resolve import TitleSpotter, match_key
from tools.vocabulary import GENRE_ADJECTIVE, GENRE_LEXICON

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
    # what the person said they liked that the item's catalogue facts carry:
    # [{"said": "the twist", "fact": "Thriller", "how": "genre"|"description"}] (:func:`their_reasons`)
    their_words: list[dict] = field(default_factory=list)
    # a cross-domain pick's bridge (tools.cross_domain.Via): "Jurassic Park is the book behind the film …"
    bridge: Via | None = None
    # who and what the graph scored (a dataset user id or the liked graph ids; the item's graph id):
    # what a writer fed the graph's vectors (XRec's adapter) needs; None where the graph lacks either
    person: str | list[str] | None = None
    graph_item: str | None = None

    def facts(self) -> list[str]:
        out = [self.bridge.sentence(self.item)] if self.bridge else []
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
        for w in self.their_words:
            out.append(f"They said they liked {w['said']}; {_tie(w)}.")
        return out

    def to_dict(self) -> dict:
        out = {"nearest": self.nearest, "shared_genres": self.shared_genres,
               "similar_users": list(self.similar_users) if self.similar_users else None, "source": self.source}
        if self.their_words:
            out["their_words"] = self.their_words
        if self.bridge:
            out["bridge"] = self.bridge.to_dict() | {"sentence": self.bridge.sentence(self.item)}
        return out


def _mentions(text: str, said: str) -> bool:
    """Whether ``text`` takes up what they said: a word of it ("the twist": twist, twists) up to its stem."""
    wanted = {stem(w) for w in words_of(said) if w.lower() not in ("the", "a", "an")}
    return bool(wanted & {stem(w) for w in words_of(text)})


def _tie(word: dict) -> str:
    """How the item carries what they said: "it is a thriller too", "its description mentions music"."""
    if word.get("how") == "genre":
        return f"it is {_a(GENRE_ADJECTIVE.get(word['fact'], word['fact'].lower()))} film too"
    return f"its description mentions {word['fact']}"


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


# ---------------------------------------------------------------------- the person's words

# What people say they liked about a film, and the genres that carry it. Reactions ("funny",
# "the twist") come from tools.explain_check.REACTIONS; these are the things a film has.
ASPECTS: dict[str, tuple[str, ...]] = {
    "Musical": ("music", "musical", "songs", "song", "singing", "soundtrack", "score", "dancing", "dance", "numbers"),
    "Sci-Fi": ("space", "aliens", "alien", "robots", "robot", "future", "futuristic", "spaceships", "time travel",
               "technology", "science"),
    "Action": ("action", "fights", "fight", "fighting", "chases", "chase", "car chases", "explosions", "stunts",
               "shootouts"),
    "Adventure": ("adventure", "quest", "journey", "treasure", "exploring"),
    "Romance": ("romance", "love story", "the love", "chemistry", "relationship"),
    "War": ("battles", "battle", "soldiers", "war scenes", "combat"),
    "Western": ("cowboys", "cowboy", "gunfights", "the west", "frontier"),
    "Mystery": ("mystery", "detective", "whodunit", "puzzle", "clues", "investigation"),
    "Crime": ("heist", "heists", "gangsters", "gangster", "mob", "mafia", "crime", "criminals", "cops"),
    "Fantasy": ("magic", "dragons", "wizards", "fairy tale", "myth"),
    "Animation": ("animation", "cartoon", "drawings", "animated"),
    "Children's": ("kids", "family", "children"),
    "Horror": ("monsters", "monster", "gore", "ghosts", "ghost", "killer"),
    "Documentary": ("real story", "true story", "facts", "history"),
    "Drama": ("drama",),
}
# "loved it for the twist", "because of the music", "the songs were great", "I liked the characters"
_REASON = re.compile(
    r"\b(?:for|because of|due to|thanks to|liked|loved|enjoyed|like|love|enjoy|adored|the way)\s+"
    r"(?:(?:it|that|this|them|both)\s+)?(?:(?:for|because of)\s+)?(?:all\s+)?(?:the|its|their)\s+"
    r"((?:[a-z][a-z'-]*\s+){0,2}?[a-z][a-z'-]*)(?=\s*(?:[.,;!?]|$|\s+(?:and|but|in|of|was|were|is|are|so|too)\b))",
    re.IGNORECASE)


# what a reason is not: thanks, the conversation, the film itself ("thanks for the help", "the first one")
_NOT_REASONS = frozenset("help suggestion suggestions recommendation recommendations idea ideas one ones "
                         "movie movies film films show shows chat talk time info information advice list first second "
                         "third last other same rest best most".split())


def their_reasons(texts: Sequence[str], item: CatalogItem) -> list[dict]:
    """What the person said they liked (``texts``: their messages) that ``item``'s catalogue facts
    carry: a reaction or an aspect whose genre the item has, or a word of its description.
    ``[{"said": "the twist", "fact": "Thriller", "how": "genre"}]``, at most two, in the order said.
    A phrase in capitals is a title, not a reason; thanks and talk about the films themselves
    ("thanks for the help", "the first one") are not reasons either."""
    from tools.explain_check import ACCLAIM, FRAMING, REACTIONS

    genres = {genre_key(g): g for g in item.genres}
    described = {stem(w) for w in words_of(item.description or "") if len(w) > 3 and not w[0].isupper()}
    cues = sorted([*((g, c) for _, (cs, gs) in REACTIONS.items() for g in gs for c in cs),
                   *((g, c) for g, cs in ASPECTS.items() for c in cs)], key=lambda gc: -len(gc[1].split()))
    out: list[dict] = []
    for text in texts:
        for m in _REASON.finditer(text or ""):
            phrase = " ".join(m.group(1).split())
            words = phrase.lower().split()
            if (any(w[0].isupper() and w != "I" for w in phrase.split()) or any(w in _NOT_REASONS for w in words)
                    or re.search(r"\bthank", text[max(0, m.start() - 12):m.end()], re.I)):
                continue
            said = "the " + phrase.lower()
            if any(o["said"] == said for o in out):
                continue
            fact = how = ""
            for genre, cue in cues:  # the longest cue first: "love story" before "story"
                if genre_key(genre) in genres and (cue == phrase.lower() or (" " not in cue and cue in words)
                                                   or (" " in cue and f" {cue} " in f" {phrase.lower()} ")):
                    fact, how = genres[genre_key(genre)], "genre"
                    break
            if not fact:
                hit = next((w for w in words if len(w) > 3 and w not in FRAMING and w not in ACCLAIM
                            and stem(w) in described), "")
                if hit:
                    fact, how = hit, "description"
            if fact:
                out.append({"said": said, "fact": fact, "how": how})
    return out[:2]


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
    return [ev.item.title, *ev.item.aliases, *(e["title"] for e in ev.nearest), *([ev.bridge.through] if ev.bridge else [])]


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


@dataclass
class Explanation:
    """One explanation as made: what is shown, the LLM's text, and how one became the other."""

    text: str  # what is shown
    raw: str = ""  # the LLM's text ("" when it did not answer)
    how: str = "fallback"  # llm | llm+evidence (an evidence sentence added) | fallback
    problem: str = ""  # why (part of) the LLM's text was not shown ("" when all of it was)
    check: TextCheck | None = None  # the sentence check of the LLM's text
    dropped: list[str] = field(default_factory=list)  # the LLM's sentences that were dropped, with why

    @property
    def by_llm(self) -> bool:
        return self.how != "fallback"


class Explainer:
    def __init__(self, llm, tool: CandidateTool, spotter: TitleSpotter, similar=None) -> None:
        """``spotter``: the catalog's titles (the resolver's, so they are indexed once).
        ``similar``: paraphrase support for the sentence check — ``None`` (the default: a content
        word must be in the evidence, up to its stem), ``"minilm"`` (the shipped MiniLM,
        :func:`tools.explain_check.minilm_similar`) or a function. Off by default: on 138 LLM
        sentences of two eval-explain runs it supported no claim the stems did not, and each call
        embeds words (1.2 s a call with the machine's cores busy; bench/RESULTS.md, issue 29)."""
        if similar == "minilm":
            from tools.explain_check import minilm_similar as similar
        self.llm, self.tool, self.spotter = llm, tool, spotter
        # writes the LLM's text from the graph's vectors too (agent/tuning/xrec_agent.py, CHATREC_XREC_ADAPTER);
        # None: the configured LLM from the prompt alone
        self.writer = None
        self.checker = ClaimChecker(spotter, similar)
        self.system = read_prompt("explain.txt")
        self.user = read_prompt("explain_user.txt")
        self.fallback = read_prompt("explain_fallback.txt").strip()  # an item on a list shown ("… is here because")
        self.fallback_unlisted = read_prompt("explain_fallback_unlisted.txt").strip()  # asked about before any list
        self.theirs = read_prompt("explain_theirs.txt").strip()  # added when the LLM names none of their items

    # -- facts --------------------------------------------------------------------------

    def evidence(self, item: CatalogItem, *, user_id: str | None, liked: Sequence[CatalogItem],
                 source: str = "graph", similar_users: bool = True, said: Sequence[str] = (),
                 via: Via | None = None) -> Evidence:
        """``said``: the person's own messages, for the reasons they gave (:func:`their_reasons`);
        ``via``: the bridge a cross-domain candidate came by (looked up again when not given)."""
        rec = self.tool.recommender
        ev = Evidence(item, source=source, bridge=via or self._bridge(item, liked))
        gid = self.tool.graph_id(item)
        liked_graph = [g for g in map(self.tool.graph_id, liked) if g]
        person: str | list[str] | None = user_id if user_id and not liked_graph else (
            (rec.history(user_id) if user_id else []) + liked_graph or None)
        if gid is not None and person:
            ev.person, ev.graph_item = person, gid
            scores = rec.explain_scores(person, gid, k=3)
            for e in scores["evidence"]:
                near = self.tool.catalog_item(e["item_id"])
                # ml-100k lists a few films twice under two ids: one title is named once
                if near is not None and e["contribution"] > 0 and near.title not in {n["title"] for n in ev.nearest}:
                    ev.nearest.append({"title": near.title, "item_id": near.item_id, "share": round(e["share"], 3)})
            if similar_users:
                ev.similar_users = self._similar_users(person, gid)
        own = liked or (self.tool.history(user_id) if user_id else [])
        their = {genre_key(g): g for i in own for g in i.genres}
        ev.shared_genres = [g for g in item.genres if genre_key(g) in their]
        ev.their_words = their_reasons(said, item)
        return ev

    def _bridge(self, item: CatalogItem, liked: Sequence[CatalogItem]) -> Via | None:
        """A book for a film lover: the bridge from their films (none within one domain)."""
        if not liked or all(i.domain == item.domain for i in liked):
            return None
        bridges = getattr(self.tool, "bridges", None)
        return bridges.bridge_to(item, liked) if bridges is not None else None

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
        reasons = [ev.bridge.reason()] if ev.bridge else []
        if ev.nearest:
            reasons.append("it is close to " + " and ".join(e["title"] for e in ev.nearest[:2]) + ", which you liked")
        for w in ev.their_words[:1]:
            reasons.append(f"you said you liked {w['said']}, and {_tie(w)}")
        tied = {genre_key(w["fact"]) for w in ev.their_words[:1] if w.get("how") == "genre"}
        shared = [g for g in ev.shared_genres if genre_key(g) not in tied]  # a genre is named once
        if shared:
            reasons.append("it shares " + ", ".join(shared[:3]) + " with your favourites")
        if ev.similar_users and ev.similar_users[0]:
            reasons.append(f"{ev.similar_users[0]} of the {ev.similar_users[1]} people with the most similar taste "
                           "watched it")
        if not reasons:
            reasons.append("its description is close to what you asked for" if ev.source != "graph"
                           else "people with tastes like yours rate it highly")
        template = self.fallback if ev.listed else self.fallback_unlisted
        return template.format(title=ev.item.title, reasons="; ".join(reasons))

    def statements(self, ev: Evidence) -> list[str]:
        """The sentences built from the evidence alone (their words count as evidence in the check)."""
        return [self.plain(ev)]

    def check(self, text: str, ev: Evidence) -> TextCheck:
        """Each sentence of ``text`` with its claims and whether the evidence carries them."""
        return self.checker.check(text, ev, self.statements(ev))

    def guard(self, text: str, ev: Evidence) -> str:
        """Why the text is unacceptable as a whole ("" when it is fine): empty, not naming the item,
        or a sentence the evidence does not carry (the first problem of each failing sentence)."""
        if not text.strip():
            return "empty"
        allowed = {match_key(ev.item.title)} | {match_key(a) for a in ev.item.aliases}
        if not any(key and key in match_key(text) for key in allowed):
            return "does not name the item"
        failing = [s for s in self.check(text, ev).sentences if not s.supported]
        if failing:
            return "unsupported: " + "; ".join(s.problems[0] for s in failing)
        return ""

    def prompt(self, ev: Evidence, query: str = "") -> list[dict]:
        """The chat messages of an explanation request (also what instruction tuning trains on)."""
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format(title=ev.item.title,
                                                             facts="\n".join(f"- {f}" for f in ev.facts()),
                                                             query=query[:300])}]

    def explain(self, ev: Evidence, query: str = "") -> tuple[str, bool, str]:
        """(text, written by the LLM (all or part of it)?, why the LLM's text was not all used)."""
        e = self.explanation(ev, query)
        return e.text, e.by_llm, e.problem

    def explain_raw(self, ev: Evidence, query: str = "") -> tuple[str, str, str]:
        """(the text shown, the LLM's text before the check ("" when it did not answer), why the LLM's
        text was not all used ("" when it was)) — the raw text is what evaluations measure the check on."""
        e = self.explanation(ev, query)
        return e.text, e.raw, e.problem

    def explanation(self, ev: Evidence, query: str = "") -> Explanation:
        """The LLM's sentences the evidence carries; the evidence sentence when none is left."""
        try:
            raw = self.writer.write(self.prompt(ev, query), ev) if self.writer is not None else None
            if raw is None:  # no writer, or the graph lacks the person or the item
                raw = stream_sentences(self.llm, as_messages(self.prompt(ev, query)), 3, max_tokens=90)
        except LLMUnavailable as exc:
            return Explanation(self.plain(ev), problem=f"the LLM did not answer ({exc})")
        return self.compose(raw, ev)

    def compose(self, raw: str, ev: Evidence) -> Explanation:
        """What is shown for the LLM's text ``raw``: its supported sentences, if they name the item
        (plus one evidence sentence when they name none of the person's items), else ``plain``."""
        if not raw.strip():
            return Explanation(self.plain(ev), raw, problem="empty")
        check = self.check(raw, ev)
        dropped = [f"{s.sentence} [{', '.join(s.problems)}]" for s in check.sentences if not s.supported]
        kept = check.kept_text
        why_dropped = "; ".join(s.problems[0] for s in check.sentences if not s.supported)
        if not kept:
            problem = "no sentence the evidence supports: " + why_dropped
        elif not names_any(kept, [ev.item.title, *ev.item.aliases]):
            problem = "does not name the item" + (f" (dropped: {why_dropped})" if why_dropped else "")
        else:
            problem = ""
        if problem:
            log.info("explanation replaced (%s): %r", problem, raw[:200])
            return Explanation(self.plain(ev), raw, "fallback", problem, check, dropped)
        how = "llm"
        if ev.nearest and not names_any(kept, [e["title"] for e in ev.nearest]):
            kept += " " + self.theirs.format(title=ev.item.title,
                                             near=" and ".join(e["title"] for e in ev.nearest[:2]))
            how = "llm+evidence"
        said = ev.their_words[0] if ev.their_words else None
        if said and not _mentions(kept, said["said"]):  # what they said they liked, when the item carries it
            kept += f" You said you liked {said['said']}, and {_tie(said)}."
            how = "llm+evidence"
        problem = ("dropped unsupported: " + why_dropped) if why_dropped else ""
        return Explanation(kept, raw, how, problem, check, dropped)


__all__ = ["ASPECTS", "Evidence", "Explainer", "Explanation", "GENRE_LEXICON", "their_reasons", "allowed_titles",
           "blank_titles", "genres_named",
           "unfaithful"]
