"""The recommenders `chatrec eval-crs` measures on ReDial dialogues, besides popularity.

- ``agent``: the live agent's own pipeline reads the dialogue as a transcript
  (:meth:`agent.agent.Agent.read_turn`) — each seeker turn into the dialogue state (titles
  resolved and how each is spoken of, genres, years; through the router when
  ``TurnSettings.transcript_router`` is on), each recommender turn as films suggested — and
  ranks with the candidates a live turn would get before the LLM's re-rank (the re-rank picks
  5 of 20; the benchmark scores 50).
- ``graph``: the graph recommender folded in from every movie mentioned so far; no LLM.

Both name each film once in a ranking, though ReDial lists 67 of its films twice ("Jurassic Park",
"Jurassic Park (1993)"): :func:`_shown_name`.

``mentioned`` (both systems): ``"first"`` puts the films the dialogue already named, the latest
first, ahead of the ranking (``agent``: those its state holds as liked, the suggestions not turned
down among them; ``graph``: every one); ``"leave-out"`` ranks only films not named yet, as a chat
turn does. ReDial's recommenders often name such a film again ("Yes,
*The Babadook* is great!") and iEvaLM counts it, as the published systems, which rank every film,
are counted: on the valid split "first" gained R@10 0.141 → 0.192 (bench/RESULTS.md). A live
agent never offers a film the person just named; the choice is the benchmark's, not the agent's.

Both rank the catalogue's movies that carry a ReDial id (``sources["redial"]``, set when
`chatrec items add id2info.json --source redial` imported them) and answer with ReDial's names
("Title (Year)"). A dialogue's lines are prefixes of each other, so each system reads only the
turns it has not seen yet.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict

import numpy as np

from agent.config import Settings
from agent.evals.crs import MENTIONED, CrsLine, read_as_of
from agent.state import DialogueState
from tools.catalog import source_ids

log = logging.getLogger(__name__)

SOURCE = "redial"  # the source name the import gives ReDial's ids
POOL = 400  # candidates asked for before keeping the ReDial movies among them: 50 must remain
_YEAR_MENTION = re.compile(r"\((\d{4})\)")


def _named_first(named: list[str], ranked: list[str]) -> list[str]:
    """``named`` (item ids, the latest last) ahead of ``ranked``, latest first, each once."""
    again = list(dict.fromkeys(reversed(named)))
    return again + [i for i in ranked if i not in again]


def _shown_name(title: str, names: list[str]) -> str:
    """The one of ReDial's names for a film that a ranking gives: "Title (Year)", as ReDial's own
    autocomplete wrote mentions and as the labels mostly name such films (measured on the valid
    split: bench/RESULTS.md), the one that writes the catalogue's title where two carry a year
    ("The Descent (2005)", not "Descent (2005)"); else the first."""
    dated = [n for n in names if _YEAR_MENTION.search(n)] or names
    # compared as written: match_key drops "The"
    return next((n for n in dated if _YEAR_MENTION.sub("", n).strip().casefold() == title.casefold()), dated[0])


class ReDialNames:
    """ReDial's names ("Title (Year)") ↔ catalog items, and the names written in a turn."""

    def __init__(self, catalog, id2info: dict[str, dict]) -> None:
        self.item_of: dict[str, object] = {}
        self.name_of: dict[str, list[str]] = {}  # ReDial lists some films twice ("Jurassic Park", "… (1993)")
        for item in catalog:
            for rid in source_ids(item, SOURCE):  # one film ReDial lists twice carries both ids
                if rid in id2info:
                    name = id2info[rid]["name"]
                    self.item_of.setdefault(name, item)
                    if name not in self.name_of.setdefault(item.item_id, []):
                        self.name_of[item.item_id].append(name)
        if len(self.item_of) < 0.5 * len(id2info):
            raise ValueError(f"only {len(self.item_of)} of the {len(id2info)} ReDial movies are in the catalogue: "
                             f"import them first with `chatrec items add ID2INFO --source {SOURCE}`")
        # a ranking names each film once: two names of one film would take two of the 50 places
        self._shown: dict[str, str] = {item_id: _shown_name(catalog.get(item_id).title, names)
                                       for item_id, names in self.name_of.items()}
        self._by_year: dict[str, list[str]] = defaultdict(list)
        for name in self.item_of:
            if m := _YEAR_MENTION.search(name):
                self._by_year[m.group(1)].append(name)
        for names in self._by_year.values():
            names.sort(key=len, reverse=True)  # the longest name ending at a year wins

    def ranked(self, item_ids) -> list[str]:
        """ReDial's name of each catalogue item, in order; a film ReDial lists twice ("Jurassic Park",
        "Jurassic Park (1993)") once, by :func:`_shown_name`."""
        return [self._shown[item_id] for item_id in item_ids if item_id in self._shown]

    def mentions(self, text: str) -> list[str]:
        """The names written in ``text``, in order (ReDial writes every mention as "Title (Year)")."""
        found = []
        for m in _YEAR_MENTION.finditer(text):
            head = text[:m.end()]
            # the longest name ending here that starts a word ("Split (2017)" is not "It (2017)")
            name = next((n for n in self._by_year.get(m.group(1), ())
                         if head.endswith(n) and not head[:-len(n)][-1:].isalnum()), None)
            if name and name not in found:
                found.append(name)
        return found


_AGENTS: dict[tuple[str, str], object] = {}


def _agent(settings: Settings, graph_dataset: str):
    """The agent (its tool, resolver, router, LLM), loaded once for both systems."""
    from agent.agent import Agent

    key = (str(settings.home), graph_dataset, settings.turn.this_year)
    if key not in _AGENTS:
        _AGENTS[key] = Agent.from_settings(settings, progress=True, graph_dataset=graph_dataset)
    return _AGENTS[key]


class _DialogueReader:
    """Per-dialogue state for a system that reads only the turns it has not seen yet."""

    def __init__(self) -> None:
        self.dialog_id: str | None = None
        self.seen: list[str] = []

    def new_turns(self, line: CrsLine) -> tuple[bool, list[tuple[int, str]]]:
        """(whether this is a new dialogue, [(turn index, text)] not read before)."""
        fresh = line.dialog_id != self.dialog_id or line.context[:len(self.seen)] != self.seen
        if fresh:
            self.dialog_id, self.seen = line.dialog_id, []
        turns = list(enumerate(line.context))[len(self.seen):]
        self.seen = list(line.context)
        return fresh, turns


class GraphSystem:
    """Every movie mentioned so far (by either speaker) folded into the graph as one user."""

    name = "graph"

    def __init__(self, agent, names: ReDialNames, mentioned: str = "first") -> None:
        self.tool, self.names, self.mentioned = agent.tool, names, mentioned
        rec = self.tool.recommender
        self._allowed = np.array([(item := self.tool.catalog_item(g)) is not None and item.item_id in names.name_of
                                  for g in rec.item_ids])
        self._reader = _DialogueReader()
        self._mentioned: list[str] = []

    def rank(self, line: CrsLine, k: int = 50) -> list[str]:
        fresh, turns = self._reader.new_turns(line)
        if fresh:
            self._mentioned = []
        for _, text in turns:
            for name in self.names.mentions(text):
                gid = self.tool.graph_id(self.names.item_of[name])
                if gid is not None and gid not in self._mentioned:
                    self._mentioned.append(gid)
        ranked = self.tool.recommender.recommend_from_items(self._mentioned, k=k, allowed=self._allowed)
        ranked = [self.tool.catalog_item(g).item_id for g, _ in ranked]
        if self.mentioned == "first":
            ranked = _named_first([self.tool.catalog_item(g).item_id for g in self._mentioned], ranked)
        return self.names.ranked(ranked)[:k]


class AgentSystem:
    """The live agent's reading of the dialogue and its candidates (before the LLM re-rank)."""

    name = "agent"

    def __init__(self, agent, names: ReDialNames, mentioned: str = "first") -> None:
        self.agent, self.names, self.mentioned = agent, names, mentioned
        self._reader = _DialogueReader()
        self.state = None
        self.seconds_by_step = {"reading": 0.0, "candidates": 0.0}  # where the time goes

    def rank(self, line: CrsLine, k: int = 50) -> list[str]:
        fresh, turns = self._reader.new_turns(line)
        if fresh:
            self.state = DialogueState(session_id=f"redial-{line.dialog_id}")
        started = time.perf_counter()
        for index, text in turns:
            if index % 2 == 0:  # the seeker (ReDial's contexts start with the seeker, perhaps empty)
                if text.strip():
                    self.agent.read_turn(self.state, text)
            else:  # suggested: left out later, and liked until the seeker says otherwise (read_turn)
                suggested = [self.names.item_of[n].item_id for n in self.names.mentions(text)]
                self.agent.read_turn(self.state, text, role="assistant", items=suggested)
        read = time.perf_counter()
        query = next((t for t in reversed(line.context[::2]) if t.strip()), "")
        candidates, _ = self.agent.candidates(self.state, query, POOL, complete=True)  # a ranking, not a list
        self.seconds_by_step["reading"] += read - started
        self.seconds_by_step["candidates"] += time.perf_counter() - read
        ranked = [c.item.item_id for c in candidates]
        if self.mentioned == "first":  # the seeker's liked films and the suggestions not turned down
            ranked = _named_first([i for i in self.state.liked if i in self.names.name_of], ranked)
        return self.names.ranked(ranked)[:k]


def make_system(name: str, *, lines: list[CrsLine], id2info: dict[str, dict], settings: Settings,
                graph_dataset: str = "ml-100k", mentioned: str = "first"):
    """``agent`` or ``graph``, over the catalogue and models of ``settings.home``; ``mentioned``: one
    of :data:`MENTIONED`."""
    if mentioned not in MENTIONED:
        raise ValueError(f"mentioned must be one of {', '.join(MENTIONED)}, not {mentioned!r}")
    if (year := read_as_of(settings.turn.this_year, id2info)) != settings.turn.this_year:
        settings = settings.model_copy(update={"turn": settings.turn.model_copy(update={"this_year": year})})
    agent = _agent(settings, graph_dataset)
    names = ReDialNames(agent.catalog, id2info)  # a pass over the catalogue: cheap next to the agent
    if name == "graph":
        return GraphSystem(agent, names, mentioned)
    if name == "agent":
        return AgentSystem(agent, names, mentioned)
    raise ValueError(f"unknown system {name!r}: agent, graph or popularity")
