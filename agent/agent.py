"""The Chat-Rec turn loop: route → (recommend | explain | chitchat) → reply, state saved each turn.

``Agent.respond(session_id, text)`` returns a :class:`Reply`; ``Agent.stream`` yields the reply
text in pieces and then the Reply, for the web page and Slack. The state of a session
(agent/state.py) is changed only when a turn completes and is saved in one transaction, so a
model that stops answering mid-turn leaves the session as it was.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz

from agent.config import CONVERSATION_SIZE, Settings, TurnSettings
from agent.llm import LLMUnavailable, make_chat_model, make_explain_model
from agent.reading import (ASKS_WHY, adds_to_what_was_asked, after_suggestions, asked_domain,
                           asks, carries_taste, described_taste, genre_tastes, genres_as_one_kind,
                           genres_in,
                           has_content, item_question, names_a_place_in_a_list, own_reply, place_only, reacts_only, readable,
                           referenced_position, sanitize_slots, says_goodbye, second_look, stance_on_it, thanks,
                           title_stances,
                           with_whole_titles, without_markup, written_as_person)
from agent.router import Route, Router, empty_slots, make_router
from agent.intent import IntentReader, load_intent_reader
from agent.stance import StanceReader, load_stance_reader
from agent.state import LAST, DialogueState, SessionStore, open_sessions
from prompts import read_prompt, read_replies
from tools.candidates import Candidate, CandidateTool, Constraint, describes_more, genre_key
from tools.catalog import Catalog, CatalogItem
from tools.chat import as_messages, keep_said, stream_sentences
from tools.explain import Explainer, blank_titles
from tools.explain_check import capitalised_names
from tools.fact_guard import FactGuard
from tools.item_facts import ItemFacts, spoken_list
from tools.rerank import PointwiseReranker, Reranker, RerankResult
from tools.resolve import TitleResolver, everyday_word, match_key
from tools.vocabulary import ROUTER_GENRE_PLURAL

log = logging.getLogger(__name__)


@dataclass
class ReplyItem:
    item_id: str
    title: str
    year: int | None
    genres: list[str]
    domain: str
    score: float
    source: str  # graph | cold | store
    author: str | None = None
    cold: bool = False
    why: dict = field(default_factory=dict)  # evidence: the person's items nearest to this one


@dataclass
class Reply:
    session_id: str
    intent: str
    text: str
    items: list[ReplyItem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step: router, candidates, rerank, reply
    slots: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was done differently and why (fallbacks, relaxed limits)

    def to_dict(self) -> dict:
        return asdict(self)


def _item_for_reply(c: Candidate, why: dict | None = None, asked: Sequence[str] = ()) -> ReplyItem:
    """``asked``: the genres the person asked for go first among the item's, which a list shows
    three of ("what about horror?" listed Aliens as "Action, Sci-Fi, Thriller": Horror was fourth)."""
    item = c.item
    keys = {genre_key(g) for g in asked}
    genres = sorted(item.genres, key=lambda g: genre_key(g) not in keys)  # stable: the rest keep their order
    return ReplyItem(item.item_id, item.title, item.year, genres, item.domain, round(c.score, 4), c.source,
                     item.author, c.source == "cold" or not item.warm, why or {})


class Agent:
    def __init__(self, *, router: Router, llm, tool: CandidateTool, resolver: TitleResolver,
                 sessions: SessionStore, rerank: str = "graph", turn: TurnSettings | None = None,
                 explain_llm=None, stance_reader: StanceReader | None = None,
                 intent_reader: IntentReader | None = None) -> None:
        """``rerank`` (see the setting): ``graph``, the scored order (graph / store) goes out as it
        is — the default; ``llm``, the LLM re-orders the top candidates (Chat-Rec); ``pointwise``,
        they are sorted by the LLM's P("yes") to "would they enjoy it?" (InstructRec); ``fused``,
        by the mean of that rank and the scored rank. ``turn``: the numbers of a turn (message
        length, counts, thresholds; :class:`agent.config.TurnSettings`, the defaults when None).
        ``explain_llm``: the model that writes explanations (default ``llm``; :func:`agent.llm.make_explain_model`).
        ``stance_reader``: the learned reader of how a title is spoken of (:mod:`agent.stance`);
        None, the word rules alone. ``intent_reader``: the learned reader of what a turn asks for
        (:mod:`agent.intent`), which settles recommend against chit-chat where it is sure; None, the
        router and the rules alone."""
        self.router, self.llm, self.tool, self.resolver, self.sessions = router, llm, tool, resolver, sessions
        self.turn = turn or TurnSettings()
        rerankers = {"graph": lambda: None, "llm": lambda: Reranker(llm),
                     "pointwise": lambda: PointwiseReranker(llm), "fused": lambda: PointwiseReranker(llm, fuse=True)}
        if rerank not in rerankers:
            raise ValueError(f"rerank must be one of {', '.join(rerankers)}, not {rerank!r}")
        self.catalog: Catalog = tool.catalog
        self.reranker = rerankers[rerank]()
        self.explainer = Explainer(explain_llm or llm, tool, resolver.spotter)
        self.fact_guard = FactGuard(self.catalog, resolver.spotter, self.explainer.checker)
        self.replies = read_replies()
        self.chitchat_system = read_prompt("chitchat.txt")
        self.chitchat_fallback = read_prompt("chitchat_fallback.txt").strip()
        self.stance_reader = stance_reader
        self.intent_reader = intent_reader

    @classmethod
    def from_settings(cls, settings: Settings | None = None, progress: bool = True,
                      graph_dataset: str | None = None) -> Agent:
        """Everything from the data home; what is missing is built on first use (with progress).
        ``graph_dataset`` (default ``settings.graph_dataset``, ml-100k): the ratings the graph
        recommender is trained on; the catalogue links ml-100k, ml-latest-small and the datasets
        `chatrec data movie-graph` builds."""
        from recsys.datasets import load as load_dataset
        from recsys.workflow import load_recommender, model_dir, train_dataset
        from tools.cold_start import with_cold_items
        from tools.conversation_ranker import load_ranker
        from tools.items import open_items

        settings = settings or Settings()
        sessions = open_sessions(settings)  # first: a database that is down fails before the models load
        graph_dataset = graph_dataset or settings.graph_dataset
        catalog, store = open_items(settings.home, settings.chroma_url, progress=progress)
        data = load_dataset(graph_dataset, settings.home, progress=progress)
        if (model_dir(graph_dataset, settings.home) / "lightgcn.pt").exists():
            recommender = load_recommender(graph_dataset, None, settings.home)
        else:
            log.info("no trained %s model yet: training one (about a minute)", graph_dataset)
            recommender, _ = train_dataset(graph_dataset, home=settings.home, progress=progress,
                                           refit=conversation_sized(data))  # see `chatrec train --refit`
        recommender = with_cold_items(recommender, catalog, store)
        store.search("a first query loads the search index", k=1)  # so the first turn is not seconds slower
        everyday_word("the")  # and loads the word frequencies the title spotter reads (0.2 s)
        llm = make_chat_model(settings)
        ranker = None if settings.conversation_ranker == "off" else load_ranker(settings.conversation_ranker)
        stance = None if settings.stance_reader == "off" else load_stance_reader(
            Path(settings.stance_reader) if settings.stance_reader else None)
        intent = None if settings.intent_reader == "off" else load_intent_reader(
            None if settings.intent_reader == "shipped" else Path(settings.intent_reader))
        tool = CandidateTool(recommender, catalog, store, best_first=data.items_best_first(),
                             fold_in=fold_in_for(data, settings.turn.fold_in), ranker=ranker)
        agent = cls(router=make_router(settings, llm), llm=llm, tool=tool,
                    resolver=TitleResolver(catalog, store), sessions=sessions,
                    rerank=settings.rerank, turn=settings.turn, explain_llm=make_explain_model(settings, llm),
                    stance_reader=stance, intent_reader=intent)
        agent.fact_guard.people  # every turn looks for names in it (a pass over 25k items: 0.5 s with ReDial's)
        if settings.xrec_adapter:
            from agent.tuning.xrec_agent import load_writer

            agent.explainer.writer = load_writer(settings.xrec_adapter, recommender)
        return agent

    # -- public API ---------------------------------------------------------------------

    def respond(self, session_id: str, text: str, user_id: str | None = None, route: Route | None = None) -> Reply:
        reply = None
        for part in self.stream(session_id, text, user_id, route):
            if isinstance(part, Reply):
                reply = part
        assert reply is not None
        return reply

    def stream(self, session_id: str, text: str, user_id: str | None = None,
               route: Route | None = None) -> Iterator[str | Reply]:
        """Pieces of the reply text as they are ready, then the complete :class:`Reply`.
        ``route`` skips the router when the caller already knows what is asked (a "why?" button)."""
        started = time.perf_counter()
        if user_id is not None and not self.tool.recommender.has_user(user_id):
            raise ValueError(f"no user {user_id!r} in the {self.tool.recommender.dataset} data")
        state = self.sessions.get_or_new(session_id, user_id)
        if not text or not text.strip():
            reply = Reply(session_id, "chitchat", self.replies["empty"])
            yield reply.text
            yield reply
            return
        notes = []
        if len(text) > self.turn.max_message_chars:
            text = text[:self.turn.max_message_chars]
            notes.append(self.replies["truncated"].format(limit=f"{self.turn.max_message_chars:,}"))
        words = without_markup(text)  # markup is text, never part of what is asked (nor a title)
        # only markup, or words the agent cannot read (a button's question is the agent's own words)
        if not words or (route is None and not readable(words)):
            reply = Reply(session_id, "chitchat", self._unreadable(words) if words else self.replies["empty"],
                          notes=["the agent cannot read the message"] if words else [])
            yield reply.text
            yield reply
            return
        timings: dict[str, float] = {}
        try:
            t = time.perf_counter()
            route = route or self._second_look(self.router.route(words, self._context(state)), words, state)
            # "who directed Fargo?" is chit-chat about Fargo (the second look), answered from its facts
            question = self._item_question(words, route, state) if route.intent == "chitchat" else None
            timings["router"] = time.perf_counter() - t
            if question is not None:
                reply = yield from self._answer_item(state, question, timings)
            elif route.intent == "chitchat" and _after_suggestions(state) and any(tastes := genre_tastes(words)):
                reply = yield from self._note_genres(state, *tastes, timings)
            elif route.intent == "chitchat" and _after_suggestions(state) and not asks(words) \
                    and (about := described_taste(words)):
                reply = yield from self._note_about(state, about, timings)
            elif route.intent == "chitchat" and _after_suggestions(state) and reacts_only(words):
                reply = yield from self._react(state, words, route, timings)
            else:
                flow = {"recommend": self._recommend, "explain": self._explain}.get(route.intent, self._chitchat)
                reply = yield from flow(state, words, route, timings)
        except LLMUnavailable as exc:  # nothing of this turn is kept: the session stays as it was
            log.warning("turn failed, LLM unavailable: %s", exc)
            reply = Reply(session_id, "chitchat", self.replies["llm_down"].format(reason=exc), notes=["llm_down"])
            yield reply.text
            yield reply
            return
        if notes:
            reply.text = f"{notes[0]}\n{reply.text}"
            reply.notes = notes + reply.notes
        reply.slots = route.slots
        state.add_turn("user", text, intent=route.intent)
        # only a recommendation becomes the list "the second one" points into
        shown = [i.item_id for i in reply.items] if reply.intent == "recommend" else []
        # what an explanation or an answer spoke of: "who directed it?" next asks about that one
        about = ([i.item_id for i in reply.items] if reply.intent == "explain"
                 else [question.item.item_id] if question is not None and question.item is not None else [])
        state.add_turn("assistant", reply.text, intent=reply.intent, items=shown, about=about)
        self.sessions.save(state)
        timings["total"] = time.perf_counter() - started
        reply.timings = {k: round(v, 4) for k, v in timings.items()}
        yield reply

    def feedback(self, session_id: str, item_id: str, liked: bool) -> DialogueState:
        """👍 / 👎 on an item (the UIs' buttons): the next recommend turn uses it."""
        if self.catalog.get(item_id) is None:
            raise KeyError(f"no item {item_id!r} in the catalog")
        state = self.sessions.get_or_new(session_id)
        (state.like if liked else state.dislike)(item_id)
        self.sessions.save(state)
        return state

    def why_request(self, session_id: str, item_id: str) -> tuple[str, Route]:
        """What a "why?" button on an item asks: the words to show as the person's turn and the
        route to pass to :meth:`stream` (the intent is known, so no router call)."""
        item = self.catalog.get(item_id)
        if item is None:
            raise KeyError(f"no item {item_id!r} in the catalog")
        state = self.sessions.get_or_new(session_id)
        shown = state.last_recommendations
        reference = shown.index(item_id) + 1 if item_id in shown else item.title
        return f"Why {item.title}?", Route("explain", {**empty_slots(), "reference": reference})

    def read_turn(self, state: DialogueState, text: str, role: str = "user", items: Sequence[str] = ()) -> Route | None:
        """Take one turn of a dialogue held elsewhere (a transcript) into ``state`` without
        answering it. A person's words go through the router and the state as in a live turn
        (the titles they name, likes, dislikes, constraints) when they name any of those
        (:func:`agent.reading.carries_taste`; "Hi there" is recorded as is), or through the state
        alone with ``TurnSettings.transcript_router`` off; the other speaker's turn
        (``role="assistant"``) records the catalog ``items`` it suggested, which later
        recommendations leave out as already shown and which count as liked until the person
        says otherwise (ReDial's seekers said they liked 78% of the films suggested to them and
        disliked 6%; on the first 300 lines of its valid split: the agent's R@10 0.074 -> 0.110).
        Returns the person's route."""
        if role != "user":
            state.add_turn(role, text, intent="recommend" if items else "chitchat", items=list(items))
            for item_id in items:  # what the conversation is about, until the person says otherwise
                if item_id not in state.disliked:
                    state.like(item_id)
            return None
        words = without_markup(text)
        if not words or not readable(words) or not (carries_taste(words, self.resolver.spotter) or stance_on_it(words)
                                                    or self.fact_guard.people.named_in(words)):
            state.add_turn("user", text, intent="chitchat")  # nothing the state keeps: no router call
            return None
        if not self.turn.transcript_router:  # the words alone: _apply_route reads what the state keeps
            intent = "explain" if ASKS_WHY.match(words) else "recommend"  # "why did you pick X?" names no taste
            self._apply_route(state, Route(intent, empty_slots()), words)
            state.add_turn("user", text, intent=intent)
            return None
        route = self._second_look(self.router.route(words, self._context(state)), words, state)
        named, _ = self._apply_route(state, route, words)
        if route.intent == "recommend":  # as in a live turn: the titles named are what to start from
            for item in named:
                if item.item_id not in state.disliked:
                    state.like(item.item_id)
        state.add_turn("user", text, intent=route.intent)
        return route

    def candidates(self, state: DialogueState, text: str, k: int,
                   complete: bool = False, mentions: Sequence[str] = ()) -> tuple[list[Candidate], str]:
        """Up to ``k`` candidates for the person in ``state`` (what they liked and disliked, the
        active constraints, nothing already shown), before the LLM's re-rank; when the
        constraints leave nothing, the first relaxation that finds some, and what it dropped.

        ``complete``: a ranking of the catalogue, not a list to show: the films the constraints
        admit first, then those of each looser version in turn until ``k`` ("films with Queen
        Latifah" admits a dozen; a benchmark that scores 50 places would leave 38 empty).
        ``mentions``: the titles the turn named as the words write them ("titanik"): not words to
        search for (the store's text search found Titan A.E. for it)."""
        constraint = self._constraint(state)
        shown = {i for turn in state.turns for i in turn.items}
        if state.constraints.about and not describes_more(text):  # "more please" after "I love movies about X"
            text = " ".join([text, *state.constraints.about])
        for start, end, _ in reversed(self.fact_guard.people.named_in(text)):  # "Robert Deniro" says who, not what
            text = text[:start] + " " + text[end:]
        text = blank_titles(text, mentions)
        ask = dict(user_id=state.user_id, liked=[i for i in map(self.catalog.get, state.liked) if i],
                   disliked=[i for i in map(self.catalog.get, state.disliked) if i], exclude=shown, query=text, k=k)
        candidates = self.tool.candidates(constraint=constraint, **ask)
        if complete:
            for _, looser in constraint.relaxations():
                if len(candidates) >= k:
                    break
                taken = {c.item.item_id for c in candidates}
                candidates += [c for c in self.tool.candidates(constraint=looser, **ask)
                               if c.item.item_id not in taken][:k - len(candidates)]
            return candidates, ""
        if not candidates and not constraint == Constraint():
            for dropped, looser in constraint.relaxations():
                candidates = self.tool.candidates(constraint=looser, **ask)
                if candidates:
                    return candidates, dropped
        return candidates, ""

    def _item_question(self, text: str, route: Route, state: DialogueState) -> ItemQuestion | None:
        """The item a question about one item asks about (:func:`agent.reading.item_question`):
        the title spotted, the place in the last list, a title the catalogue has by that exact name
        ("Up"), or for "it" the one item the last turn showed or spoke of (an explanation, an
        answer); None for "is it any good?" with nothing to point at (plain chit-chat)."""
        domain = state.constraints.domain or "movie"
        named = state.named_so_far()  # "what is Jumanji about?" after a list with Jumanji (2017): that one
        about = item_question(text, route.slots, self.resolver.spotter, asked_domain(text) or domain,
                              has_list=bool(state.last_recommendations), known=named)
        if about is None:
            person = next((n for n in [*(route.slots.get("titles") or []), *capitalised_names(text)]
                           if str(n) in self.fact_guard.people and str(n).lower() in text.lower()), None)
            # "who is Christopher Nolan?": what the catalogue credits them with
            return ItemQuestion(["person"], None, str(person), text) if person and asks(text) else None
        if about.item is not None:
            return ItemQuestion(about.asked, about.item, about.title, text)
        if about.position is not None:
            item = self.catalog.get(state.reference(about.position) or "")
            return ItemQuestion(about.asked, item, item.title if item else None, text)
        if about.title:
            item = self.resolver.spotter.item_of(about.title, domain, named)  # "Up": exactly that title
            if item is None and about.title in self.fact_guard.people:  # "any trivia about Steven Spielberg?"
                return ItemQuestion(["person"], None, about.title, text)
            return ItemQuestion(about.asked, item, item.title if item else about.title, text)
        last = state.turns[-1] if state.turns and state.turns[-1].role == "assistant" else None
        shown = (last.items or last.about) if last else []
        if len(shown) == 1:
            item = self.catalog.get(shown[0])
            return ItemQuestion(about.asked, item, item.title if item else None, text)
        return ItemQuestion(about.asked, None, None, text) if about.asked != ["other"] else None

    def _answer_item(self, state: DialogueState, question: ItemQuestion, timings: dict) -> Iterator[str]:
        """The catalogue's facts on the item asked about, or what is not known: no LLM, nothing invented."""
        t = time.perf_counter()
        if question.asked == ["person"]:
            text = self.fact_guard.people.answer(question.title or "")
        elif question.item is not None:
            text = ItemFacts.of(question.item).answer(question.asked, question.text)
        elif question.title:
            text = self.replies["unknown_item"].format(title=question.title)
        else:
            text = self.replies["no_item_yet"]
        timings["reply"] = time.perf_counter() - t
        yield text
        return Reply(state.session_id, "chitchat", text, notes=["answered from the catalogue's facts"])

    def _second_look(self, route: Route, text: str, state: DialogueState) -> Route:
        """The router's answer after :func:`agent.reading.second_look` (chit-chat that is not, a
        reaction to the suggestions just made that is no request), and a place named alone right
        after an explanation ("and the last one?") asks the same of that place."""
        answering = _after_suggestions(state)
        intent, slots = second_look(route.intent, route.slots, text, self.resolver.spotter, answering,
                                    self.fact_guard.people)
        if self.intent_reader is not None:
            intent = self.intent_reader.settle(intent, text, self._context(state, whole=True), answering,
                                                self.resolver.spotter)
        last = next((t for t in reversed(state.turns) if t.role == "assistant"), None)
        if last is not None and last.intent == "explain" and (place := place_only(text)) is not None:
            intent, slots = "explain", {**slots, "reference": place}
        return route if (intent, slots) == (route.intent, route.slots) else Route(intent, slots)

    # -- dialogue -----------------------------------------------------------------------

    def _title(self, item_id: str) -> str:
        item = self.catalog.get(item_id)
        return item.title if item else item_id

    def _context(self, state: DialogueState, whole: bool = False) -> list[dict]:
        """The last turns as the router reads them (``whole``: every turn, as the intent reader was
        trained: whether anything was suggested is the whole dialogue's). A reply that listed items
        is its opening line with the titles: the list's own lines (years, genres, marks) repeat the
        titles, cost the router ~70 prompt tokens a turn, and are not what it was tuned on ("Here
        are some picks: A, B and C" + items)."""
        return [{"role": t.role, "text": t.text.split("\n", 1)[0] if t.items else t.text,
                 "items": [self._title(i) for i in t.items]}
                for t in (state.turns if whole else state.turns[-self.turn.context_turns:])]

    def _recent_text(self, state: DialogueState) -> str:
        """The last turns' words, short (the re-rank prompt already lists the candidates)."""
        turns, chars = self.turn.dialogue_turns, self.turn.dialogue_chars
        return "\n".join(f"{t.role}: {t.text[:chars]}" for t in state.turns[-turns:])

    def _resolve(self, mention: str | int, state: DialogueState) -> CatalogItem | None:
        """A title, "#2" or 2 (a position in the last list) → a catalog item."""
        if (position := _position(mention)) is not None:
            item_id = state.reference(position)
            return self.catalog.get(item_id) if item_id else None
        mention = str(mention).strip()
        if not mention:
            return None
        last = [self.catalog.get(i) for i in state.last_recommendations]
        # WRatio alone let "Coco and Moana" be "The One and Only, Genuine, Original Family Band"
        # (85.5, on "and"): the words they share must make up one of the two as well
        key = match_key(mention)
        best = max(((min(fuzz.WRatio(key, title := match_key(i.title)), fuzz.token_set_ratio(key, title)), i)
                    for i in last if i), default=(0, None), key=lambda pair: pair[0])
        # a title written exactly is the film the words' spotter takes (one mention, one film: the
        # fuzzy resolver chose Twilight 1998 and the spotter 2008, and both were disliked)
        exact = self.resolver.spotter.item_of(mention, state.constraints.domain or "movie", state.named_so_far())
        if best[0] >= self.turn.mention_match:  # "that Fargo one" points into the list just shown
            # but not a near one in the list: after a list with The Alienist, "my favorites are
            # Aliens and The Thing" is Aliens (the list's own film of the title stays the list's)
            return best[1] if match_key(best[1].title) == key else exact or best[1]
        return exact or self.resolver.resolve(mention).item

    def _split_mention(self, mention: str, state: DialogueState) -> list[CatalogItem]:
        """The router sometimes joins titles ("Toy Story and Aladdin"): the titles inside it."""
        spotted = self.resolver.spotter.spot(mention)
        # the titles must make up most of the mention: "Flibbertigibbet Moon" is not "Moon"
        if spotted and sum(len(key) for key, _ in spotted) >= self.turn.title_share * len(match_key(mention)):
            return [item for _, item in spotted]
        parts = [p for p in re.split(r",|\band\b|&", mention) if p.strip()]
        found = [self._resolve(p, state) for p in parts] if len(parts) > 1 else []
        return [i for i in found if i] if found and all(found) else []

    def _apply_route(self, state: DialogueState, route: Route, text: str) -> tuple[list[CatalogItem], list[str]]:
        """Feedback and constraints from this turn go into the state; returns the titles it names and
        the ones not found. A title the message does not contain (nor the list it points into) is
        the model's invention and is dropped."""
        shown = [self._title(i) for i in state.last_recommendations]
        # year bounds the words state that cannot both hold come back as slots["conflicts"] (asked
        # about in _recommend), never as an empty range; the router's reversed pair is put in order
        # a shared title: the film, and the one the conversation named before ("Jumanji" after Jumanji (2017))
        spans = self.resolver.spotter.spans(text, state.constraints.domain or "movie", known=state.named_so_far())
        slots = sanitize_slots(route.slots, text, shown, self.turn, [(start, end) for start, end, *_ in spans],
                               [item for *_, item in spans])
        people = self.fact_guard.people.named_in(text)
        if people:  # "Tom Hanks" in the router's titles is a person, not a title to resolve ("Tom Jones?")
            slots = {**slots, **{key: [m for m in slots.get(key) or [] if not self._names_person(m)]
                                 for key in ("titles", "liked", "disliked")}}
        slots = with_whole_titles(slots, text, spans)  # "Monsters", "Inc." → "Monsters, Inc."
        route.slots = slots
        unknown, named = [], []
        disliked_now: set[str] = set()  # what the router read as disliked in this message
        written = list(spans)  # where each title is written, for the words to say how it is spoken of
        # titles are resolved in any domain: "loved The Godfather, any books?" means the film
        for key, mark in (("liked", state.like), ("disliked", state.dislike)):
            for mention in slots.get(key) or []:
                found = [item] if (item := self._resolve(mention, state)) else self._split_mention(str(mention), state)
                if not found and not _everyday_words(str(mention), text):
                    unknown.append(str(mention))
                for item in found:
                    mark(item.item_id)
                    if key == "disliked":
                        disliked_now.add(item.item_id)
                written += _written_unspotted(str(mention), found, text, written)
        for mention in slots.get("titles") or []:
            found = [item] if (item := self._resolve(mention, state)) else self._split_mention(str(mention), state)
            if not found and str(mention) not in unknown and not _everyday_words(str(mention), text):
                unknown.append(str(mention))
            named += [i for i in found if i not in named]
            written += _written_unspotted(str(mention), found, text, written)
        # titles written out in full count even when the router missed them; and the words, not the
        # router, say how each is spoken of, also one the spotter missed ("i realy liked the matix
        # but hated titanik": the router had Titanic liked)
        marked_now = set(state.liked) | set(state.disliked)
        for item in self._taste_in_words(state, text, sorted(written, key=lambda s: s[0]), route.intent,
                                         disliked_now, people):
            if item not in named and item.item_id not in marked_now:
                named.append(item)
        if route.intent == "recommend":
            # the people a request names, unless it names them against ("anything but Adam Sandler")
            wanted = [name for (*_, name), stance in zip(people, title_stances(text, [(a, b) for a, b, _ in people]))
                      if stance != "disliked"]
            # A request that says what to start from anew replaces what it replaces: genres asked for
            # replace the ones asked before ("what about horror?" after comedies is not "comedy or
            # horror"), titles to start from replace the genres ("something like Heat" after horror is
            # not horror like Heat), and either, naming nobody, moves on from the person asked for
            # ("any horror?" after Tom Hanks is not his horror films) — unless the words add to what
            # was asked ("with some romance too").
            start_from = [item for item in named if item.item_id not in state.disliked]
            anew = bool(slots.get("genres") or start_from) and not adds_to_what_was_asked(text)
            # and a kind of film told after a list ("I love movies about friendship") stays until a
            # request starts anew or describes what it wants itself
            clear = [*(slots.get("clear") or []), *(["genres"] if anew else []),
                     *(["people"] if anew and not wanted and state.constraints.people else []),
                     *(["about"] if state.constraints.about and (anew or describes_more(text)) else [])]
            state.update_constraints(slots.get("genres") or None, slots.get("year_from"), slots.get("year_to"),
                                     slots.get("domain"), clear=clear or None,
                                     without=slots.get("without") or None, people=wanted or None,
                                     together=genres_as_one_kind(text) or None)
        return named, unknown

    def _constraint(self, state: DialogueState) -> Constraint:
        """The state's constraints, the people asked for with the items the catalogue credits them on."""
        c = state.constraints
        credited = frozenset(self.fact_guard.people.items_of(c.people)) if c.people else frozenset()
        return Constraint(tuple(c.genres), c.year_from, c.year_to, c.domain, tuple(c.without), tuple(c.people),
                          credited, tuple(c.together))

    def _names_person(self, mention) -> bool:
        """Whether a slot's mention is, whole, a person the catalogue credits, and no title it has."""
        mention = str(mention).strip()
        found = self.fact_guard.people.named_in(mention)
        return bool(found) and found[0][:2] == (0, len(mention)) and self.resolver.spotter.item_of(mention) is None

    def _taste_in_words(self, state: DialogueState, text: str, spans: Sequence[tuple], intent: str,
                        disliked_now: set[str], people: Sequence[tuple[int, int, str]] = ()) -> list[CatalogItem]:
        """The titles ``text`` writes out, each marked liked or disliked in ``state`` by the words
        around it (:func:`agent.reading.title_stances`); "I loved that one!" right after the other
        speaker named one title marks that title, "I loved the first one" the first they named. The words decide over the router's slots
        (``disliked_now``): on ReDial seekers its liked slot found 0.31 of their likes and its
        disliked slot was right a third of the time ("I didn't care for A, but I loved B" came
        back with both disliked). An explanation request names what was shown, not a taste.
        ``spans``: the titles the spotter finds in ``text``; ``people``: the names the message writes
        (:meth:`tools.item_facts.People.named_in`)."""
        spans = [s for s in spans if not any(a <= s[0] and s[1] <= b for a, b, _ in people)]  # "Hanks" is no film
        if intent == "explain":
            return [item for *_, item in spans]
        places = [(start, end) for start, end, *_ in spans]
        stances = title_stances(text, places)
        if self.stance_reader is not None:  # words the rules do not know ("a let down", "I fell asleep")
            stances = self.stance_reader.revise(text, places, stances)
        for (*_, item), stance in zip(spans, stances):
            if stance == "disliked":
                state.dislike(item.item_id)
            elif stance == "liked" and (item.item_id in disliked_now or item.item_id not in state.disliked):
                state.like(item.item_id)  # an earlier dislike stands: naming it again is no change of mind
        last = state.turns[-1] if state.turns and state.turns[-1].role == "assistant" else None
        just_named = last.items if last else []
        place = referenced_position(text)  # "I loved the first one": the router may leave the place out
        # "I didn't like that one" right after an explanation or an answer: the item it spoke of
        spoken_of = just_named or (last.about if last else [])
        if place is not None and not just_named:  # "the second one was boring" a turn after the list
            meant = state.reference(place)
        else:
            place = len(just_named) if place == LAST else place
            meant = (just_named[place - 1] if place is not None and 1 <= place <= len(just_named)
                     else spoken_of[0] if place is None and len(spoken_of) == 1 else None)
        if not spans and meant and (stance := stance_on_it(text)):
            (state.like if stance == "liked" else state.dislike)(meant)
        return [item for *_, item in spans]

    # -- the three flows ----------------------------------------------------------------

    def _recommend(self, state: DialogueState, text: str, route: Route, timings: dict) -> Iterator[str]:
        t = time.perf_counter()
        named, unknown = self._apply_route(state, route, text)
        for item in named:  # "something like Heat": the named titles are what to start from
            if item.item_id not in state.disliked:
                state.like(item.item_id)
        if conflicts := route.slots.get("conflicts"):  # "before 1950 and after 2010": ask, keep the rest
            timings["candidates"] = time.perf_counter() - t
            return (yield from self._say(state, "recommend", self._conflicts(conflicts)))
        count = route.slots.get("count") or self.turn.default_count
        constraint = self._constraint(state)
        liked = [i for i in map(self.catalog.get, state.liked) if i]
        disliked = [i for i in map(self.catalog.get, state.disliked) if i]
        notes = []
        if unknown and not liked and not state.user_id:  # say so and ask; nothing to start from
            timings["candidates"] = time.perf_counter() - t
            return (yield from self._say(state, "recommend", self._unknown_titles(unknown, state, ask=True, text=text)))
        if not state.user_id and not liked and not constraint.says_what() and not has_content(text, route.slots):
            timings["candidates"] = time.perf_counter() - t
            return (yield from self._say(state, "recommend", self.replies["ask_taste"]))
        candidates, relaxed = self.candidates(state, text, self.turn.candidates, mentions=[
            str(m) for key in ("titles", "liked", "disliked") for m in route.slots.get(key) or []])
        timings["candidates"] = time.perf_counter() - t
        if not candidates:
            return (yield from self._say(state, "recommend", self.replies["nothing_matches"].format(
                constraint=_describe(constraint))))
        t = time.perf_counter()
        if self.reranker is not None:
            result = self.reranker.rerank(
                candidates, count,
                profile=[i.title for i in liked] or [i.title for i in self._history(state)[:self.turn.profile_titles]],
                disliked=[i.title for i in disliked], dialogue=self._recent_text(state), query=text,
                domain=constraint.domain or "movie")
            if not result.used_llm:
                notes.append(f"rerank fell back to the scored order: {result.note}")
        else:
            result = RerankResult(list(range(min(count, len(candidates)))), False, "re-rank off")
        timings["rerank"] = time.perf_counter() - t
        t = time.perf_counter()
        chosen = [candidates[i] for i in result.order]
        items = [_item_for_reply(cand, self._why(cand, state, liked), state.constraints.genres) for cand in chosen]
        domain = constraint.domain or "movie"
        counted = {"are": "is" if len(items) == 1 else "are", "items": _count_of(len(items), domain)}
        head = (self.replies["recommend_relaxed"].format(constraint=_describe(constraint), dropped=relaxed, **counted)
                if relaxed else self.replies["recommend"].format(**counted))
        if unknown:
            head = self._unknown_titles(unknown, state, text=text) + " " + head
        lines = [head] + [f"{n}. {_label(i)}" for n, i in enumerate(items, 1)]
        text_out = "\n".join(lines)
        for line in lines:
            yield line + "\n"
        timings["reply"] = time.perf_counter() - t
        return Reply(state.session_id, "recommend", text_out, items, notes=notes)

    def _explain(self, state: DialogueState, text: str, route: Route, timings: dict) -> Iterator[str]:
        t = time.perf_counter()
        named, unknown = self._apply_route(state, route, text)
        reference = route.slots.get("reference")
        target = self._resolve(reference, state) if reference not in (None, "") else None
        if target is None and _position(reference) is not None:  # a position in a list that is not there
            unknown = [*unknown, str(reference)]
        target = target or (named[0] if named else None)
        if target is None and not unknown and len(state.last_recommendations) == 1:
            target = self.catalog.get(state.last_recommendations[0])
        if target is None:
            timings["candidates"] = time.perf_counter() - t
            message = self._unknown_titles(unknown, state, ask=True) if unknown else self.replies["explain_which"]
            return (yield from self._say(state, "explain", message))
        liked = [i for i in map(self.catalog.get, state.liked) if i]
        in_graph = self.tool.graph_id(target) is not None
        source = ("graph" if target.warm else "cold") if in_graph else "store"  # books: the store
        said = [turn.text for turn in state.turns if turn.role == "user"] + [text]  # their reasons ("the twist")
        evidence = self.explainer.evidence(target, user_id=state.user_id, liked=liked, source=source, said=said)
        evidence.listed = any(target.item_id in turn.items for turn in state.turns)  # "is here" only if shown
        timings["candidates"] = time.perf_counter() - t
        t = time.perf_counter()
        made = self.explainer.explanation(evidence, text)
        timings["reply"] = time.perf_counter() - t
        yield made.text
        item = _item_for_reply(Candidate(target, 0.0, source), evidence.to_dict())
        notes = [f"explanation fallback: {made.problem}" if made.how == "fallback" else f"explanation: {made.problem}"
                 ] if made.problem else []
        return Reply(state.session_id, "explain", made.text, [item], notes=notes)

    def _react(self, state: DialogueState, text: str, route: Route, timings: dict) -> Iterator[str]:
        """A reaction to the suggestions just made ("I loved the first one", "seen Heat, too slow"):
        what it says of taste goes into the state as a request's would, and the reply says what was
        noted and how to get more. The small model, shown the message alone, answered "I loved the
        first one" with "I'm sorry for your loss". A reaction that notes nothing is chit-chat."""
        t = time.perf_counter()
        liked, disliked = set(state.liked), set(state.disliked)
        self._apply_route(state, route, text)  # the router's slots, the words around titles, "the first one"
        now_liked = [self._title(i) for i in state.liked if i not in liked]
        now_disliked = [self._title(i) for i in state.disliked if i not in disliked]
        if not (now_liked or now_disliked):
            if thanks(text) and not says_goodbye(text):  # the small model echoed "thanks for the suggestions!" back
                timings["reply"] = time.perf_counter() - t
                return (yield from self._say(state, "chitchat", self.replies["welcome"]))
            return (yield from self._chitchat(state, text, route, timings))
        said = [self.replies[key].format(titles=spoken_list(titles))
                for key, titles in (("noted_liked", now_liked), ("noted_disliked", now_disliked)) if titles]
        words = " ".join(said + [self.replies["noted_more"]])
        timings["reply"] = time.perf_counter() - t
        yield words
        return Reply(state.session_id, "chitchat", words, notes=["a reaction to the suggestions: taste noted"])

    def _note_genres(self, state: DialogueState, liked: list[str], ruled_out: list[str], timings: dict) -> Iterator[str]:
        """A taste for genres told after suggestions ("I like sci-fi too", "not into horror though"):
        kept for the next list, and said back. The small model answered them "I'm not equipped to
        recommend movies"; a new list now would undo the chit-chat the words are."""
        t = time.perf_counter()
        state.update_constraints(liked, without=ruled_out)
        said = [self.replies[key].format(genres=spoken_list([ROUTER_GENRE_PLURAL[g] for g in genres]))
                for key, genres in (("noted_genres", liked), ("noted_no_genres", ruled_out)) if genres]
        timings["reply"] = time.perf_counter() - t
        return (yield from self._noted(state, said, "a taste for genres: kept for the next list"))

    def _note_about(self, state: DialogueState, about: str, timings: dict) -> Iterator[str]:
        """A kind of film told after suggestions in words of its own ("I love movies about
        friendship"): what the next request looks for, unless it describes something itself; the
        small model answered "I'm so glad you enjoyed my movie recommendations"."""
        t = time.perf_counter()
        state.update_constraints(about=[about])
        timings["reply"] = time.perf_counter() - t
        return (yield from self._noted(state, [self.replies["noted_about"].format(about=about)],
                                       "a kind of film told: kept for the next list"))

    def _noted(self, state: DialogueState, said: list[str], note: str) -> Iterator[str]:
        """A taste told after a list, said back with the offer of more (chit-chat, no items)."""
        words = " ".join([*said, self.replies["noted_genres_more"]])
        yield words
        return Reply(state.session_id, "chitchat", words, notes=[note])

    def _chitchat(self, state: DialogueState, text: str, route: Route, timings: dict) -> Iterator[str]:
        t = time.perf_counter()
        if (own := own_reply(text)) is not None:  # the agent's own words, never the small model's
            timings["reply"] = time.perf_counter() - t
            return (yield from self._say(state, "chitchat", self.replies[own]))
        if not state.last_recommendations and names_a_place_in_a_list(text):
            # "I hated the second one" with no list: the small model made up what "the second one" is
            timings["reply"] = time.perf_counter() - t
            domain = "book" if state.constraints.domain == "book" else "film"
            return (yield from self._say(state, "chitchat", self.replies["no_list"].format(domain=domain)))
        # the message alone: shown earlier turns, the small default model repeats them
        messages = [{"role": "system", "content": self.chitchat_system}, {"role": "user", "content": text}]
        words = stream_sentences(self.llm, as_messages(messages), self.turn.chitchat_sentences,
                                 max_tokens=self.turn.chitchat_max_tokens)
        notes = []
        if not words or _leaks(words, self.chitchat_system):
            notes.append("chit-chat fallback: " + ("empty reply" if not words else "the reply repeated the instructions"))
            words = ""
        else:  # no person, year or plot the catalogue does not hold (issue 24: "Pulp Fiction, by Steven Spielberg")
            about = [item for *_, item in self.resolver.spotter.spans(text, state.constraints.domain or "movie")]
            guarded = self.fact_guard.keep(words, text, about)
            notes += [f"dropped an invented fact ({'; '.join(problems)}): {sentence}" for sentence, problems in guarded.dropped]
            words, unsaid = keep_said(guarded.text, text)  # "I'm sorry for any misunderstanding", the message said back
            notes += [f"dropped {why}: {sentence}" for sentence, why in unsaid]
        if len(words.split()) < 2 or (len(words.split()) < 4 and words[-1] not in ".!?"):  # nothing, or "Oh no"
            # after a list, a reaction to it ("I will check those out", "seen it") is what most
            # chit-chat is: say how to go on from the list, not what the agent is
            words = self.replies["after_list"] if state.last_recommendations else self.chitchat_fallback
        timings["reply"] = time.perf_counter() - t
        yield words
        return Reply(state.session_id, "chitchat", words, notes=notes)

    # -- helpers ------------------------------------------------------------------------

    def _say(self, state: DialogueState, intent: str, text: str) -> Iterator[str]:
        yield text
        return Reply(state.session_id, intent, text)

    def _unreadable(self, text: str) -> str:
        """A message in words the agent cannot read: say so, in English, and what it can do; a title
        or genre it does recognise among the words goes into the example of what to ask."""
        titles = list(dict.fromkeys(item.title for _, item in self.resolver.spotter.spot(text)))[:2]
        genres = genres_in(text)[0][:2]
        message = self.replies["unreadable"]
        if titles or genres:
            known = " and ".join(f'"{k}"' for k in titles + genres)
            example = " ".join(filter(None, ["three", " or ".join(genres), "movies",
                                             "like " + " and ".join(titles) if titles else ""]))
            message += self.replies["unreadable_known"].format(known=known, example=example)
        return message

    def _unknown_titles(self, unknown: Sequence[str], state: DialogueState, ask: bool = False, text: str = "") -> str:
        """What was not found, said plainly: titles quoted ("I couldn't find …", near matches offered),
        a position in a list that is not there in words ("I haven't shown a list yet") — an internal
        "#N" never reaches a person. ``ask``: end with a question about which title they meant.
        A name the message ``text`` writes as a person ("movies with Tom Hanks") that the catalogue
        credits with nothing is said to be that, not offered as "Did you mean Tom Jones?"."""
        people = [u for u in unknown if written_as_person(str(u), text)]
        unknown = [u for u in unknown if u not in people]
        titles = [u for u in unknown if _position(u) is None]
        parts = [self.replies["unknown_person_asked"].format(names=" or ".join(f'"{u}"' for u in people[:3]))
                 ] if people else []
        if titles:
            message = self.replies["unknown_titles"].format(titles=" or ".join(f'"{u}"' for u in titles[:3]))
            near = self.resolver.resolve(titles[0]).candidates
            if near:
                message += self.replies["did_you_mean"].format(options=" or ".join(c.item.title for c in near[:2]))
            parts.append(message)
        if len(titles) < len(unknown):  # the question it asks replaces ask_which
            shown = len(state.last_recommendations)
            domain = "book" if state.constraints.domain == "book" else "film"
            parts.append(self.replies["no_position"].format(count=f"{shown} item" + ("s" if shown != 1 else ""))
                         if shown else self.replies["no_list"].format(domain=domain))
        elif ask and titles:
            parts[-1] += self.replies["ask_which"]
        return " ".join(parts)

    def _conflicts(self, conflicts: dict) -> str:
        """One question about what this message asks for that cannot all hold."""
        parts = []
        if years := conflicts.get("years"):  # [from, to], both inclusive: "before {to + 1}", "after {from - 1}"
            parts.append(self.replies["years_conflict"].format(before=years[1] + 1, after=years[0] - 1))
        if genres := conflicts.get("genres"):
            parts.append(self.replies["genres_conflict"].format(genres=" and ".join(genres),
                                                                it="it" if len(genres) == 1 else "them"))
        return " ".join(parts)

    def _history(self, state: DialogueState) -> list[CatalogItem]:
        return self.tool.history(state.user_id) if state.user_id else []

    def _why(self, cand: Candidate, state: DialogueState, liked: list[CatalogItem]) -> dict:
        if cand.via is not None:  # a cross-domain pick: the bridge is the reason
            return {"source": cand.source, "bridge": cand.via.to_dict() | {"sentence": cand.via.sentence(cand.item)}}
        if cand.source == "store" or not (liked or state.user_id):
            return {"source": cand.source}
        ev = self.explainer.evidence(cand.item, user_id=state.user_id, liked=liked, source=cand.source,
                                     similar_users=False)  # per item on every list: the cheap facts only
        return {"source": cand.source, "nearest": [e["title"] for e in ev.nearest[:2]],
                "shared_genres": ev.shared_genres}


@dataclass
class ItemQuestion:
    asked: list[str]  # agent.reading.facts_asked's kinds (director, cast, writer, year, genre, plot, other), or
    # ["person"]: a question about a person the catalogue credits ("who is Jordan Peele?"), named in ``title``
    item: CatalogItem | None  # None: a title the catalogue lacks, or "it" with nothing to point at
    title: str | None  # the title as asked about (the item's, or the unknown one named)
    text: str  # the question ("is Tom Hanks in Toy Story?" names a person)


def fold_in_for(data, setting: str) -> str:
    """TurnSettings.fold_in for the graph learned from ``data`` (its ``users``: one index per
    interaction): "auto" is the dot product for conversations, which name a few films each and
    where it keeps popularity (ReDial), the cosine for ratings (MovieLens chat users)."""
    if setting != "auto":
        return setting
    return "dot" if conversation_sized(data) else "cosine"


def conversation_sized(data) -> bool:
    """Whether a dataset's people name a few items each (conversations), not hundreds (ratings)."""
    return bool(np.median(np.bincount(data.users)) < CONVERSATION_SIZE)


def _after_suggestions(state: DialogueState) -> bool:
    """Whether this turn answers the agent's suggestions (:func:`agent.reading.after_suggestions`)."""
    return after_suggestions([(t.role, t.items, t.text) for t in state.turns])




def _everyday_words(mention: str, text: str) -> bool:
    """Whether a "title" the catalogue does not know is everyday words the message types in lower
    case ("surprise me" → "surprise"): no title was named, so none is asked about ("Did you mean
    Conspiracy in Death?"). A title it does know ("i loved heat") is resolved before this."""
    words = mention.split()
    return bool(words) and mention == mention.lower() and mention in text and all(map(everyday_word, words))


def _position(mention) -> int | None:
    """A position in the last list ("#2", "2", 2), or None for a title (or nothing)."""
    if isinstance(mention, int):
        return mention
    key = str(mention).strip().lstrip("#") if mention is not None else ""
    return int(key) if key.isdigit() and len(key) <= 2 else None


def _label(item: ReplyItem) -> str:
    year = f" ({item.year})" if item.year else ""
    extra = f" by {item.author}" if item.author else (f" — {', '.join(item.genres[:3])}" if item.genres else "")
    return f"{item.title}{year}{extra}" + (" [new]" if item.cold and item.domain == "movie" else "")


def _count_of(n: int, noun: str) -> str:
    """"1 movie", "3 movies", "1 book": the number and the noun agree."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _describe(c: Constraint) -> str:
    parts = []
    if c.genres:
        parts.append(" or ".join(c.genres))
    if c.year_from is not None or c.year_to is not None:
        parts.append(f"{c.year_from or '…'}–{c.year_to or '…'}")
    if c.domain:
        parts.append(f"{c.domain}s")
    if c.without:
        parts.append("no " + " or ".join(c.without))
    if c.people:
        parts.append("with " + " or ".join(c.people))
    return ", ".join(parts) or "no limits"


def _written_unspotted(mention: str, found: Sequence[CatalogItem], text: str, spans: Sequence[tuple]) -> list[tuple]:
    """A span (start, end, key, item) for the one item a router mention resolved to, where the
    words write the mention ("titanik", lower case and misspelt: the spotter reads only titles
    written as titles) and no span covers it yet; else none."""
    if len(found) != 1 or any(item.item_id == found[0].item_id for *_, item in spans):
        return []
    at = re.search(r"(?<!\w)" + re.escape(mention) + r"(?!\w)", text, re.I)
    if at is None or any(a < at.end() and at.start() < b for a, b, *_ in spans):
        return []
    return [(at.start(), at.end(), match_key(mention), found[0])]


def _leaks(reply: str, instructions: str, window: int = 8) -> bool:
    """The reply repeats a run of ``window`` words from the instructions (a prompt-injection tell)."""
    said = " ".join(match_key(reply).split())
    words = match_key(instructions).split()
    return any(" ".join(words[i:i + window]) in said for i in range(max(1, len(words) - window + 1)))


__all__ = ["Agent", "Reply", "ReplyItem", "make_router"]
