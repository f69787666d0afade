"""Instruction data for tuning the local model on our jobs (InstructRec): ``chatrec tune data``.

Made from the graph model's own ml-100k split (:func:`agent.evals.rerank.load_eval_data`) and
the catalog's item facts, after InstructRec's three facets:

- preference: *implicit* (titles they rated, best first) or *explicit* (what a person would
  say they like, from the genres of their training items);
- intention: none, *vague* (a mood or an occasion for the target's genre) or *specific* (the
  target's genre and decade);
- task form: ``pointwise`` (is this a fit? yes / no), ``pairwise`` (A or B?), ``rerank`` (the
  agent's own re-rank prompt over the graph's top-20, answered ``{"order": [...]}``), plus our
  ``router`` task (agent/data/router_train.jsonl, the tuned router's prompt) and ``explain``
  (the agent's explanation prompt over graph evidence, answered with a sentence that names only
  the evidence's titles and genres).

Where labels come from, and why no test interaction leaks in: a person's *history* is their
training items; *positives* are their validation items (the graph was not fitted on them, so
they are the kind of thing it must learn to put first); *negatives* and the other re-rank
candidates are items they never rated in any split, so a test interaction never appears, not
even as a wrong "no" (nor under the other id of a film ml-100k lists twice). The test split is
read only to leave it out. Templates live in
prompts/instruct_templates.toml.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from agent.config import TurnSettings
from prompts import read_instruct_templates
from recsys.io import atomic_open
from tools.vocabulary import GENRE_ADJECTIVE, GENRE_PLURAL

log = logging.getLogger(__name__)

TASKS = ("pointwise", "pairwise", "rerank", "explain", "router")
_TURN = TurnSettings()  # the agent's defaults: the instruction data asks what the agent asks
CANDIDATES, COUNT, PROFILE_TITLES = _TURN.candidates, _TURN.default_count, _TURN.profile_titles
# how pointwise asks are made: "facets" (InstructRec's preference / intention mix, half the "no"s
# from the graph's list, half never-rated items anywhere) or "graph-list" (the pointwise re-ranker's
# own situation: titles they rated, no request, a "yes" the graph ranked in its top-20, a "no" that
# is another of its picks)
POINTWISE_MODES = ("facets", "graph-list")
DATA_FILE = "tune/instructions.jsonl"


@dataclass
class Instruction:
    task: str
    messages: list[dict]  # chat messages, the last one the ask
    answer: str
    facets: dict = field(default_factory=dict)  # {"preference": ..., "intention": ...}
    template: str = ""  # which template phrased it ("pointwise.questions[2]", ...)
    user: str | None = None  # the dataset user it is made from (None for router rows)
    items: dict = field(default_factory=dict)  # role -> graph item ids: history, positive, negative, candidates
    # the same ask with BinLLM's collaborative codes of the person and the items (`tune data --codes`);
    # None for tasks without a collaborative field (router, explain) or data made without codes
    coded: list[dict] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def count_templates(t: dict | None = None) -> int:
    t = t or read_instruct_templates()
    return (len(t["explicit_preference"]) + len(t["implicit_preference"]) + len(t["specific_intention"])
            + sum(len(v) for v in t["vague_intention"].values()) + len(t["pointwise"]["questions"])
            + len(t["pairwise"]["questions"]) + len(t["explain"]["with_genres"]) + len(t["explain"]["without_genres"]))


def _row(m: sp.csr_matrix, u: int) -> np.ndarray:
    return m.indices[m.indptr[u]:m.indptr[u + 1]]


def _and(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def genre_words(genre: str, plural: bool = False) -> str:
    """How a person says a genre in a sentence: "sci-fi" (a kind of film), "sci-fi films" (plural);
    the word forms of tools/vocabulary.py, a genre it does not know in lower case."""
    if plural:
        return GENRE_PLURAL.get(genre, genre.lower() + " films")
    return GENRE_ADJECTIVE.get(genre, genre.lower())


class InstructionMaker:
    """Makes the instructions for one user at a time; ``rng`` picks facets, templates and negatives."""

    def __init__(self, ev, seed: int = 0, codes=None, pointwise: str = "facets") -> None:
        from tools.explain import Explainer
        from tools.rerank import Reranker

        self.ev, self.rec = ev, ev.recommender
        self.codes = codes  # agent.tuning.codes.CollabCodes, or None for the plain prompts
        if pointwise not in POINTWISE_MODES:
            raise ValueError(f"unknown pointwise mode {pointwise!r}: {', '.join(POINTWISE_MODES)}")
        self.pointwise = pointwise
        self.t = read_instruct_templates()
        self.rng = random.Random(seed)
        self.reranker = Reranker(llm=None)
        self.explainer = Explainer(llm=None, tool=None, spotter=None)  # only its prompt is used here
        self.rated = (ev.train + ev.valid + ev.test).tocsr()  # everything a person rated, any split
        # ml-100k lists some films twice under two ids ("Chasing Amy (1997)"): a twin of a test item
        # is the test item, as far as a prompt can tell
        twins: dict[str, list[int]] = {}
        for i in range(self.rec.n_items):
            twins.setdefault(self._describe(i), []).append(i)
        self.twins = [twins[self._describe(i)] for i in range(self.rec.n_items)]

    # -- facets ------------------------------------------------------------------------

    def _pick(self, options: Sequence[str], name: str) -> tuple[str, str]:
        n = self.rng.randrange(len(options))
        return options[n], f"{name}[{n}]"

    def implicit(self, history: list[int]) -> tuple[str, dict]:
        """The implicit preference: the titles they rated, best first (what the re-rankers show)."""
        return "implicit", {"titles": [self.ev.items[i].title for i in history[:PROFILE_TITLES]]}

    def preference(self, history: list[int]) -> tuple[str, dict]:
        """("implicit"|"explicit", fields): titles, or the sentence a person would say."""
        if self.rng.random() < 0.5:
            return self.implicit(history)
        counts = Counter(g for i in history for g in self.ev.items[i].genres if g != "unknown")
        top = [genre_words(g, plural=True) for g, _ in counts.most_common(2)] or ["all sorts of films"]
        text, name = self._pick(self.t["explicit_preference"], "explicit_preference")
        return "explicit", {"said": text.format(genres=_and(top)), "template": name}

    def intention(self, target: int) -> tuple[str, str, str]:
        """("none"|"vague"|"specific", the request, template name), from the target's facts."""
        item = self.ev.items[target]
        genres = [g for g in item.genres if g in self.t["vague_intention"]]
        kind = self.rng.choice(["none", "vague", "specific"]) if genres else "none"
        if kind == "vague":
            genre = self.rng.choice(genres)
            text, name = self._pick(self.t["vague_intention"][genre], f"vague_intention.{genre}")
            return kind, text, name
        if kind == "specific" and item.year:
            text, name = self._pick(self.t["specific_intention"], "specific_intention")
            return kind, text.format(genre=genre_words(self.rng.choice(genres)),
                                     decade=f"{item.year // 10 * 10}s", year=item.year), name
        return "none", "", ""

    def negative(self, user: int) -> int:
        """An item the person never rated, in any split (nor a twin of one)."""
        rated = self._with_twins(_row(self.rated, user))
        while True:
            i = self.rng.randrange(self.rec.n_items)
            if i not in rated:
                return i

    def _context(self, pref: tuple[str, dict], query: str) -> str:
        kind, fields = pref
        if kind == "implicit":
            text, _ = self._pick(self.t["implicit_preference"], "implicit_preference")
            lines = [text.format(titles="; ".join(fields["titles"][:6]))]
        else:
            lines = [f'They said: "{fields["said"]}"']
        if query:
            lines.append(f"They asked for: {query}")
        return "\n".join(lines)

    def _with_twins(self, items) -> set[int]:
        return {int(twin) for i in items for twin in self.twins[i]}

    def _ids(self, items) -> list[str]:
        return [str(self.rec.item_ids[i]) for i in items]

    def _describe(self, i: int) -> str:
        return self.ev.items[i].title_year

    def _both(self, system: str, context: str, ask, uid: str) -> tuple[list[dict], list[dict] | None]:
        """The plain messages, and with codes the same ask carrying BinLLM's collaborative field;
        ``ask(code)`` phrases the question, ``code(i)`` giving the text after an item's name."""
        from tools.rerank import ask_messages, code_header, code_tag

        plain = ask_messages(system, context, ask(lambda i: ""))
        if self.codes is None:
            return plain, None
        return plain, ask_messages(system + "\n" + self.codes.note, code_header(self.codes.user(uid)) + context,
                                   ask(lambda i: code_tag(self.codes.item(self.rec.item_ids[i]))))

    # -- tasks -------------------------------------------------------------------------

    def for_user(self, user: int, tasks: Sequence[str]) -> list[Instruction]:
        from recsys.users import graph_candidates, history_order

        in_test = self._with_twins(_row(self.ev.test, user))
        positives = np.array([i for i in _row(self.ev.valid, user) if i not in in_test], dtype=np.int64)
        history = history_order(self.ev.parts, self.rec, user, "rated")
        if not len(positives) or not history:
            return []
        uid, gid = str(self.rec.user_ids[user]), self._ids
        target = int(self.rng.choice(positives))
        candidates, _ = graph_candidates(self.rec, user, also_exclude=np.array(sorted(in_test), dtype=np.int64),
                                         k=CANDIDATES)
        in_list = [int(i) for i in candidates if i in set(positives.tolist())]
        others = [int(i) for i in candidates if int(i) not in in_list]  # the graph's own picks they never rated
        out = []
        if "pointwise" in tasks and self.pointwise == "graph-list":
            if in_list and others:
                pref = self.implicit(history)
                for label, item in (("yes", self.rng.choice(in_list)), ("no", self.rng.choice(others))):
                    out.append(self._pointwise(label, item, pref, "none", "", uid, history, "graph"))
        elif "pointwise" in tasks:
            # half the "no"s from the graph's own list: ranking its top-20 by "yes" is what they train for
            hard = bool(others) and self.rng.random() < 0.5
            for label, item in (("yes", target), ("no", self.rng.choice(others) if hard else self.negative(user))):
                pref = self.preference(history)  # (drawn before the intention: seeds give the data they gave)
                intent, query, _ = self.intention(target)  # the request comes from the wanted item
                out.append(self._pointwise(label, item, pref, intent, query, uid, history,
                                           "graph" if hard else "random"))
        if "pairwise" in tasks:
            hard = bool(others) and self.rng.random() < 0.5  # half from the graph's own list
            negative = self.rng.choice(others) if hard else self.negative(user)
            pref = self.preference(history)
            intent, query, _ = self.intention(target)
            first = self.rng.random() < 0.5
            a, b = (target, negative) if first else (negative, target)
            question, name = self._pick(self.t["pairwise"]["questions"], "pairwise.questions")
            messages, coded = self._both(self.t["pairwise"]["system"], self._context(pref, query),
                                         lambda code: question.format(a=self._describe(a) + code(a),
                                                                      b=self._describe(b) + code(b)), uid)
            out.append(Instruction("pairwise", messages, "A" if first else "B",
                                   {"preference": pref[0], "intention": intent, "negative": "graph" if hard else "random"},
                                   name, uid, {"history": gid(history[:PROFILE_TITLES]), "positive": gid([target]),
                                               "negative": gid([negative])}, coded))
        if "rerank" in tasks and in_list:
            from tools.candidates import Candidate

            pref = self.preference(history)
            intent, query, _ = self.intention(self.rng.choice(in_list))
            shown = [Candidate(self.ev.items[i], 0.0, "graph") for i in candidates]
            profile = pref[1]["titles"] if pref[0] == "implicit" else []
            dialogue = "" if pref[0] == "implicit" else f"Person: {pref[1]['said']}"
            messages = self.reranker.prompt(shown, COUNT, profile=profile, dialogue=dialogue, query=query)
            coded = None if self.codes is None else self.reranker.prompt(
                shown, COUNT, profile=profile, dialogue=dialogue, query=query,
                codes=self.codes.field(uid, self.rec.item_ids[candidates]))
            # the person's validation items first (in graph order), then the graph order
            ranks = [n for n, i in enumerate(candidates) if int(i) in in_list]
            ranks += [n for n in range(len(candidates)) if n not in ranks]
            answer = json.dumps({"order": [n + 1 for n in ranks[:COUNT]]})
            out.append(Instruction("rerank", messages, answer, {"preference": pref[0], "intention": intent},
                                   pref[1].get("template", "implicit"), uid,
                                   {"history": gid(history[:PROFILE_TITLES]), "positive": gid(in_list),
                                    "candidates": gid(candidates)}, coded))
        if "explain" in tasks:
            example = self.explanation(user, uid, target, history)
            if example is not None:
                out.append(example)
        return out

    def _pointwise(self, label: str, item: int, pref: tuple[str, dict], intent: str, query: str, uid: str,
                   history: list[int], negative: str) -> Instruction:
        """One yes / no ask about ``item``; ``negative`` says where a "no" came from (graph / random)."""
        question, name = self._pick(self.t["pointwise"]["questions"], "pointwise.questions")
        system = self.t["pointwise"]["system"].format(domain="movie")
        messages, coded = self._both(system, self._context(pref, query),
                                     lambda code: question.format(title=self._describe(item) + code(item)), uid)
        facets = {"preference": pref[0], "intention": intent}
        if label == "no":
            facets["negative"] = negative
        return Instruction("pointwise", messages, label, facets, name, uid,
                           {"history": self._ids(history[:PROFILE_TITLES]),
                            ("positive" if label == "yes" else "negative"): self._ids([item])}, coded)

    def explanation(self, user: int, uid: str, target: int, history: list[int]) -> Instruction | None:
        from tools.candidates import genre_key
        from tools.explain import Evidence

        item = self.ev.items[target]
        scores = self.rec.explain_scores(uid, str(self.rec.item_ids[target]), k=3)
        nearest = [{"title": self.ev.items[self.rec.item_index(e["item_id"])].title, "item_id": e["item_id"],
                    "share": round(e["share"], 3)} for e in scores["evidence"] if e["contribution"] > 0]
        if not nearest:
            return None
        theirs = {genre_key(g) for i in history for g in self.ev.items[i].genres}
        ev = Evidence(item, nearest=nearest, shared_genres=[g for g in item.genres if genre_key(g) in theirs])
        kind = "with_genres" if ev.shared_genres else "without_genres"
        text, name = self._pick(self.t["explain"][kind], f"explain.{kind}")
        answer = text.format(title=item.title, near=_and([e["title"] for e in nearest[:2]]),
                             genres=_and([genre_words(g) for g in ev.shared_genres[:2]]))
        return Instruction("explain", self.explainer.prompt(ev, f"Why {item.title}?"), answer,
                           {"preference": "implicit", "intention": "none"}, name, uid,
                           {"history": [e["item_id"] for e in nearest], "positive": [str(self.rec.item_ids[target])]})


def sft_examples(rows: Sequence[dict]):
    """Labelled router rows → tuning examples with exactly the prompt the tuned router is served."""
    from agent.router import Router, compact_answer
    from agent.tuning.lora import SftExample

    router = Router(llm=None, mode="tuned")
    return [SftExample(router.chat(r["utterance"], r["context"]), compact_answer(r["intent"], r["slots"]))
            for r in rows]


def router_instructions() -> list[Instruction]:
    from agent.router import load_examples

    rows = load_examples()
    return [Instruction("router", e.messages, e.answer, {"intent": r["intent"]}, "router_train.jsonl")
            for r, e in zip(rows, sft_examples(rows))]


def make_instructions(ev, users: int, seed: int = 0, tasks: Sequence[str] = TASKS,
                      progress: bool = True, codes=None, exclude_users: Collection[str] = (),
                      pointwise: str = "facets") -> list[Instruction]:
    """Instructions from ``users`` training users (a fixed-seed sample of those with validation
    items) for the chosen tasks, plus every router row when ``router`` is among them.
    ``codes`` (agent.tuning.codes.CollabCodes): also phrase each pointwise, pairwise and re-rank
    ask with BinLLM's codes (``Instruction.coded``); the plain rows are the same either way.
    ``exclude_users``: dataset user ids never sampled (people a model was tuned on, to hold out).
    ``pointwise``: how the pointwise asks are made (:data:`POINTWISE_MODES`)."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    from recsys.users import sample_users

    left_out = set(exclude_users)
    chosen = sample_users(ev.valid, users, seed,
                          exclude=[u for u, uid in enumerate(ev.recommender.user_ids) if str(uid) in left_out])
    maker = InstructionMaker(ev, seed, codes, pointwise)
    out: list[Instruction] = []
    for user in tqdm(chosen, desc="instructions", unit="user", disable=not progress):
        out += maker.for_user(int(user), tasks)
    if "router" in tasks:
        out += router_instructions()
    return out


def summarize(instructions: Sequence[Instruction]) -> dict:
    return {"instructions": len(instructions), "users": len({i.user for i in instructions if i.user}),
            "by_task": dict(Counter(i.task for i in instructions)),
            "by_facet": {k: dict(Counter(i.facets.get(k) for i in instructions if k in i.facets))
                         for k in ("preference", "intention")},
            "templates": count_templates()}


def write_instructions(path: Path, instructions: Sequence[Instruction]) -> Path:
    """JSON lines, one instruction each; temp file, then rename."""
    with atomic_open(path) as f:
        for ins in instructions:
            f.write(json.dumps(ins.to_dict(), ensure_ascii=False) + "\n")
    return path


def read_instructions(path: Path) -> list[Instruction]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(Instruction(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}, line {n}: not an instruction ({exc})") from exc
    return out


__all__ = ["DATA_FILE", "Instruction", "InstructionMaker", "POINTWISE_MODES", "TASKS", "count_templates",
           "genre_words", "make_instructions", "read_instructions", "router_instructions", "sft_examples",
           "summarize", "write_instructions"]
