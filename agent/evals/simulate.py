"""Simulated users (the iEvaLM / InteRecAgent protocol): does the agent find what a person wants?

Each sampled ml-100k test user holds out one of their test items as the *target*. The simulated
user knows their history and the target's facts (genres, year, the titles they liked that are
nearest the target in meaning — the item store's embeddings, not the graph under test) but never says the target's title. They open vaguely, then on
every miss reject the list and reveal one more fact; after 5 turns they give up. A hit is the
target's title among the items shown (titles compared with the scripted-dialogue normaliser).
Hit@k turns and average turns (a miss counts 6) are reported with 95% intervals.

Systems compared on the same users and the same simulator: the full agent, the agent without
the LLM re-rank, and the graph recommender alone (top-5 of the fold-in from the titles the
simulated user has named so far).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.evals.dialogues import normalize_title
from agent.evals.stats import bootstrap_means, wilson_interval
from tools.catalog import CatalogItem

log = logging.getLogger(__name__)

MAX_TURNS = 5
MISS_TURNS = MAX_TURNS + 1  # a miss counts as one more turn than allowed
LIST_SIZE = 5
SYSTEMS = ("agent", "agent_no_rerank", "graph_only")


@dataclass
class SimUser:
    user_id: str
    target: CatalogItem
    liked: list[CatalogItem]  # their items nearest the target in meaning (item store), nearest first

    def facts(self) -> dict:
        return {"genres": list(self.target.genres), "year": self.target.year,
                "liked": [spoken_title(i.title) for i in self.liked]}


def spoken_title(title: str) -> str:
    """How a person writes a catalog title: "Lion King, The" → "The Lion King"."""
    for article in ("The", "A", "An"):
        if title.endswith(f", {article}"):
            return f"{article} {title[: -len(article) - 2]}"
    return title


def _with_article(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _genre_words(genres: Sequence[str]) -> list[str]:
    return [g.lower() for g in genres if g and g.lower() != "unknown"]


# -- sampling -------------------------------------------------------------------------------------


def sample_users(tool, home: Path | None, n: int, seed: int) -> list[SimUser]:
    """``n`` test users of the graph model's dataset, each with one held-out test item as the
    target (a fixed seed gives the same users and targets). The split is the one the model was
    trained with, re-created from its seed, so the target was never seen in training."""
    from recsys.users import users_with_items
    from recsys.workflow import model_split

    rec = tool.recommender
    _, parts = model_split(rec, home, progress=False)
    warm_ids = list(parts.train.item_ids)
    test = parts.test_matrix()
    rng = np.random.default_rng(seed)
    order = rng.permutation(users_with_items(test))  # the whole order: people who cannot be simulated are skipped
    users: list[SimUser] = []
    for u in order:
        if len(users) == n:
            break
        user_id = str(parts.train.user_ids[u])
        targets = [tool.catalog_item(warm_ids[j]) for j in test.indices[test.indptr[u]:test.indptr[u + 1]]]
        targets = [t for t in targets if t is not None]
        if not targets:
            continue
        target = targets[int(rng.integers(len(targets)))]
        history = tool.history(user_id)
        key = normalize_title(target.title)
        # a liked title that contains the target's ("Star Trek: First Contact" for "Contact") would say it
        history = [i for i in history if key not in normalize_title(i.title)]
        if not history:
            continue
        # "similar titles they liked": nearest in meaning (the item store's text embeddings), not in
        # the graph under test — chosen by the graph's own geometry they would favour it
        vectors = tool.store.vectors([i.item_id for i in history])
        closeness = vectors @ tool.store.vectors([target.item_id])[0]
        liked = [history[j] for j in np.argsort(-closeness, kind="stable")[:3]]
        if liked:
            users.append(SimUser(user_id, target, liked))
    if len(users) < n:
        log.warning("only %d test users could be simulated (asked for %d)", len(users), n)
    return users


# -- the simulated person -------------------------------------------------------------------------


class TemplateSimulator:
    """Deterministic, no LLM: one more fact per turn, phrasing picked by a seeded generator per user."""

    name = "template"
    REJECT = ("No, not those.", "None of those, sorry.", "Not quite what I want.", "Hmm, not those ones.")
    ANSWER = ("Let me say more.", "Sure:", "Well,")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _rng(self, user: SimUser, turn: int) -> random.Random:
        return random.Random(f"{self.seed}:{user.user_id}:{turn}")

    def utterance(self, user: SimUser, turn: int, last_items: Sequence[dict] | None) -> str:
        """The person's words at ``turn`` (1-based), given the list the agent showed last (None: the
        agent asked something and showed no list)."""
        rng = self._rng(user, turn)
        genres = _genre_words(user.target.genres) or ["good"]
        liked = [spoken_title(i.title) for i in user.liked]
        decade = f"{user.target.year // 10 * 10}s" if user.target.year else None
        if turn == 1:
            ask = rng.choice(("Can you recommend {a} movie?", "Any {g} movies you'd suggest?",
                              "I'm in the mood for {a} film. Ideas?")).format(g=genres[0], a=_with_article(genres[0]))
            return f"I liked {liked[0]}. {ask}"
        lead = rng.choice(self.ANSWER if not last_items else self.REJECT)
        steps = {
            2: f"I also enjoyed {liked[1]}, something more like that?" if len(liked) > 1
            else f"I'd like something {' and '.join(genres[:2])}.",
            3: f"I'd like {_with_article(' and '.join(genres[:2]))} film" + (f" from the {decade}." if decade else "."),
            4: f"Maybe something like {liked[2]}?" if len(liked) > 2 else f"It should be {', '.join(genres)}.",
            5: f"Think {', '.join(genres)}" + (f", around {user.target.year}." if user.target.year else "."),
        }
        return f"{lead} {steps[min(turn, MAX_TURNS)]}"

    def fallbacks(self) -> int:
        return 0


class LLMSimulator(TemplateSimulator):
    """The person's words written by an LLM from the facts and the dialogue so far. A message that
    names the target (or comes back empty) is replaced by the template's words for that turn,
    and counted."""

    name = "llm"

    def __init__(self, llm, seed: int = 0) -> None:
        from prompts import read_prompt

        super().__init__(seed)
        self.llm, self.system, self.replaced = llm, read_prompt("simulator.txt"), 0

    def utterance(self, user: SimUser, turn: int, last_items: Sequence[dict] | None) -> str:
        from tools.chat import LLMUnavailable, as_messages, first_sentences

        facts = user.facts()
        shown = ", ".join(spoken_title(i["title"]) for i in last_items or []) or "(nothing: it asked a question)"
        prompt = (f"Facts about what you want: genres {', '.join(facts['genres'])}; from {facts['year']}; "
                  f"you liked {', '.join(facts['liked'])}.\nTurn {turn} of {MAX_TURNS}. "
                  + ("Open with a vague request that names one movie you liked." if turn == 1 else
                     f"The recommender just showed: {shown}. None is what you want: say so and tell it one "
                     "more thing about what you want."))
        try:
            words = first_sentences(self.llm.invoke(as_messages([{"role": "system", "content": self.system},
                                                                  {"role": "user", "content": prompt}]),
                                                     max_tokens=50).content, 2).strip()
        except LLMUnavailable as exc:
            log.warning("simulator LLM did not answer (%s): template words instead", exc)
            words = ""
        if not words or normalize_title(user.target.title) in normalize_title(words):
            self.replaced += 1
            words = super().utterance(user, turn, last_items)
        return words

    def fallbacks(self) -> int:
        return self.replaced


# -- the systems under test -----------------------------------------------------------------------

Respond = Callable[[str, str], tuple[str, list[dict]]]  # (dialogue id, words) → (reply text, items)


def agent_system(agent) -> Respond:
    def respond(dialogue_id: str, text: str) -> tuple[str, list[dict]]:
        reply = agent.respond(dialogue_id, text)
        return reply.text, [{"item_id": i.item_id, "title": i.title} for i in reply.items]
    return respond


def graph_system(tool, spotter) -> Respond:
    """The graph recommender alone: top-5 of the fold-in from every title the person has named so
    far, nothing shown twice. Without a title it shows nothing."""
    named: dict[str, list[str]] = {}
    shown: dict[str, set[str]] = {}

    def respond(dialogue_id: str, text: str) -> tuple[str, list[dict]]:
        liked = named.setdefault(dialogue_id, [])
        seen = shown.setdefault(dialogue_id, set())
        for _, item in spotter.spot(text):
            gid = tool.graph_id(item)
            if gid and gid not in liked:
                liked.append(gid)
        if not liked:
            return "Which movies do you like?", []
        ranked = tool.recommender.recommend_from_items(liked, k=LIST_SIZE + len(seen) + 10)
        items = [i for i in (tool.catalog_item(g) for g, _ in ranked) if i is not None and i.item_id not in seen]
        items = items[:LIST_SIZE]
        seen.update(i.item_id for i in items)
        return "\n".join(i.title for i in items), [{"item_id": i.item_id, "title": i.title} for i in items]
    return respond


# -- running and scoring --------------------------------------------------------------------------


def simulate_one(user: SimUser, simulator: TemplateSimulator, respond: Respond, dialogue_id: str) -> dict:
    target_key = normalize_title(user.target.title)
    turns, last_items, hit_turn = [], None, None
    for turn in range(1, MAX_TURNS + 1):
        words = simulator.utterance(user, turn, last_items)
        reply, items = respond(dialogue_id, words)
        hit = any(normalize_title(i["title"]) == target_key for i in items)
        turns.append({"user": words, "agent": reply, "items": [i["title"] for i in items], "hit": hit})
        if hit:
            hit_turn = turn
            break
        last_items = items or None
    return {"user_id": user.user_id, "target": {"item_id": user.target.item_id, "title": user.target.title},
            "facts": user.facts(), "hit_turn": hit_turn, "turns": turns}


def score(hit_turns: Sequence[int | None], seed: int = 0, resamples: int = 2000) -> dict:
    """Hit rate (within 5 turns) with a Wilson interval, Hit@1..5 turns, average turns (a miss
    counts 6) with a bootstrap interval."""
    n = len(hit_turns)
    turns = np.array([t if t is not None else MISS_TURNS for t in hit_turns], dtype=float)
    hits = int(sum(t is not None for t in hit_turns))
    means = bootstrap_means(turns, resamples, seed, chunk=resamples) if n else np.zeros(1)
    return {"hit_rate": round(hits / n, 4) if n else 0.0, "hit_rate_ci95": wilson_interval(hits, n),
            "hit_at": [round(float((turns <= k).mean()), 4) if n else 0.0 for k in range(1, MAX_TURNS + 1)],
            "avg_turns": round(float(turns.mean()), 4) if n else float(MISS_TURNS),
            "avg_turns_ci95": [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)],
            "hits": hits}


@dataclass
class Simulation:
    users: list[SimUser]
    simulator: TemplateSimulator
    systems: dict[str, Respond]
    dialogues: list[dict] = field(default_factory=list)

    def run(self, progress: bool = False) -> dict:
        from tqdm import tqdm

        hit_turns: dict[str, list] = {name: [] for name in self.systems}
        for name, respond in self.systems.items():
            for k, user in enumerate(tqdm(self.users, desc=name, unit="user", disable=not progress)):
                record = simulate_one(user, self.simulator, respond, f"sim-{name}-{k}-{user.user_id}")
                hit_turns[name].append(record["hit_turn"])
                self.dialogues.append({"system": name, **record})
        summary: dict = {"users": len(self.users), "simulator": self.simulator.name}
        summary |= {name: score(turns) for name, turns in hit_turns.items()}
        if self.simulator.fallbacks():
            summary["simulator_template_fallbacks"] = self.simulator.fallbacks()
        return {"summary": summary, "dialogues": self.dialogues}


def agent_systems(agent, session_dir: Path, names: Sequence[str] = SYSTEMS) -> dict[str, Respond]:
    """The systems to compare, sharing the agent's parts; their sessions go to ``session_dir``
    (the caller's temporary folder), not the person's session store."""
    from agent.agent import Agent
    from agent.state import SessionStore

    sessions = SessionStore(Path(session_dir) / "sessions.sqlite3")
    parts = dict(router=agent.router, llm=agent.llm, tool=agent.tool, resolver=agent.resolver, sessions=sessions,
                 turn=agent.turn)
    makers = {"agent": lambda: agent_system(Agent(**parts, rerank="llm")),
              "agent_no_rerank": lambda: agent_system(Agent(**parts, rerank="graph")),
              "graph_only": lambda: graph_system(agent.tool, agent.resolver.spotter)}
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}: choose from {', '.join(SYSTEMS)}")
    return {n: makers[n]() for n in names}


__all__ = ["LLMSimulator", "SYSTEMS", "SimUser", "Simulation", "TemplateSimulator", "agent_system",
           "agent_systems", "graph_system", "sample_users", "score", "simulate_one", "spoken_title"]
