"""Candidates for one recommend turn: the graph recommender plus the item store.

- A dataset user gets LightGCN's ranking; a chat user is folded in from the items they like.
- Cold movies (no ratings yet) come through the text→graph bridge; their vectors are shrunk
  estimates that rarely reach a mixed top-20, so a few places are kept for the best of them.
- Books (and any domain the graph does not hold) come from the item store: nearest in meaning
  to what the person likes and to what they asked for.

Everything the person has seen, liked, rejected or was already shown is left out, and the
constraints (genres: any of them, the films of all first when asked as one kind; years; domain)
hold for every candidate.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import cached_property, lru_cache
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from recsys.recommender import GraphRecommender
from tools.catalog import Catalog, CatalogItem
from tools.cold_start import graph_key
from tools.conversation_ranker import RANKED_POOL, ConversationRanker, candidate_features
from tools.cross_domain import Bridges, Via, content_text, fuse, titles_of
from tools.item_facts import ItemFacts
from tools.item_store import ItemStore, where_clause
from tools.resolve import match_key
from tools.vocabulary import GENRE_WORDS, genre_key

log = logging.getLogger(__name__)

PROFILE_ITEMS = 30  # a dataset user's items that make their text profile for other domains
RESCORE_POOL = 100  # fold-in candidates re-scored with shared genres
SCREEN_FORMATS = {"imax"}  # genre_key("IMAX"): "genres" that say nothing about what a film is like
ADMITTED_MASKS = 32  # constraints whose graph masks are kept (_admitted)
GENRE_FETCH = 40  # × k store hits read again when the genres asked leave fewer than k of 4 × k,
GENRE_FETCH_MOST = 400  # and at most this many (ReDial's k = 50 made it 2,000 a line: 0.2 → 0.3 s)
GENRE_WEIGHT = 1.0  # shared genres (cosine, 0..1) next to the graph score (scaled to 0..1)
# films sharing a director or a lead with the liked ones, fused by rank with the graph's pool at
# this weight (chosen on one half of ReDial valid's lines: R@10 0.121 -> 0.135; the other half
# 0.133 -> 0.146; 0.3 and 0.7 below 0.5 on both)
PEOPLE_WEIGHT = 0.5
LEADS = 3  # the first names of a film's cast that count as its leads
# films nearest in meaning (the store's text vectors) to the liked ones, fused by rank with a
# conversation graph's candidates at this weight: such a graph has seen few films together, and a
# third of ReDial's labels are films no other conversation names. Chosen on one half of ReDial
# valid's lines (R@10 / R@50 0.132 / 0.248 -> 0.136 / 0.268; 0.2: 0.135 / 0.250, 0.7: 0.137 / 0.265);
# the other half 0.143 / 0.269 -> 0.145 / 0.281
TEXT_NEIGHBOUR_WEIGHT = 0.5
TEXT_NEIGHBOUR_FETCH = 300
# the films a conversation graph's people named most, fused by rank with its candidates at this
# weight: a fold-in of two or three films ranks by their few co-mentions, and ReDial's recommenders
# suggest the films everyone talks about. Chosen on one half of ReDial valid's lines (cached pools,
# R@10 / R@50 0.186 / 0.333 -> 0.194 / 0.354; 0.3: 0.194 / 0.349, 0.5: 0.194 / 0.351, 1.0: 0.191 /
# 0.334); the other half 0.199 / 0.355 -> 0.209 / 0.375
MOST_NAMED_WEIGHT = 0.4
# the store's sources, fused by reciprocal rank (tools/cross_domain.py): the cross-domain bridges
# first, then text similarity to what they like ("text") and to the content words they asked with;
# "graph": the graph's most liked films of the genres asked, when nothing is named; "credited": the
# most rated films of the people asked for ("anything with Tom Hanks"), which the graph may not hold
SOURCE_WEIGHTS = {"adapted": 1.0, "adapted_new": 0.25, "film_of_book": 1.0, "author": 0.25, "readers": 0.25,
                  "text": 0.25, "request": 1.0, "popular": 0.5, "graph": 0.5, "credited": 1.0}


@dataclass
class Constraint:
    genres: Sequence[str] = ()
    year_from: int | None = None
    year_to: int | None = None
    domain: str | None = None
    without: Sequence[str] = ()  # genres ruled out ("I hate horror"): never relaxed
    people: Sequence[str] = ()  # names ("Tom Hanks"): an item must credit one of them ...
    credited: frozenset[str] = frozenset()  # ... by the catalogue: the ids of the items that do
    together: Sequence[str] = ()  # genres asked as one kind ("a romantic comedy"): films of all of them first

    def says_what(self) -> bool:
        """Whether it narrows what to recommend: "a movie" names only the default domain."""
        return bool(self.genres or self.year_from or self.year_to or self.without or self.people
                    or self.domain not in (None, "movie"))

    def admits(self, item: CatalogItem) -> bool:
        if self.domain and item.domain != self.domain:
            return False
        if self.people and item.item_id not in self.credited:
            return False
        if self.without and any(genre_key(g) in self.without_keys for g in item.genres):
            return False
        if (self.year_from is not None or self.year_to is not None) and item.year is None:
            return False
        if self.year_from is not None and item.year < self.year_from:
            return False
        if self.year_to is not None and item.year > self.year_to:
            return False
        if self.genres:
            if not item.genres:  # books carry no genres: the query text asks for them instead; a film of
                return item.domain != "movie"  # no known genre is not known to be one asked for
            if not any(genre_key(g) in self.genre_keys for g in item.genres):
                return False
        return True

    def of_the_kind(self, item: CatalogItem) -> bool:
        """Whether the item is of every genre asked as one kind (``together``)."""
        keys = {genre_key(g) for g in item.genres}
        return all(genre_key(g) in keys for g in self.together)

    @cached_property
    def genre_keys(self) -> frozenset[str]:  # admits() runs for every graph item on every turn
        return frozenset(genre_key(g) for g in self.genres)

    @cached_property
    def without_keys(self) -> frozenset[str]:
        return frozenset(genre_key(g) for g in self.without)

    def relaxations(self) -> list[tuple[str, "Constraint"]]:
        """Looser versions, most specific drop first: what to offer when nothing matches. The
        people asked for go last: "Tom Hanks in the fifties" means Tom Hanks more than the years."""
        out = []
        if self.year_from is not None or self.year_to is not None:
            out.append(("year", replace(self, year_from=None, year_to=None)))
        if self.genres:
            out.append(("genres", replace(self, genres=())))
        if len(out) == 2:
            out.append(("year and genres", replace(self, genres=(), year_from=None, year_to=None)))
        if self.people:
            loosest = out[-1] if out else ("", self)
            dropped = " and ".join(p for p in (loosest[0], " and ".join(self.people)) if p)
            out.append((dropped, replace(loosest[1], people=(), credited=frozenset())))
        return out


@dataclass
class Candidate:
    item: CatalogItem
    score: float
    source: str  # "graph" | "cold" (bridged graph vector) | "store" (text similarity, cross-domain bridges)
    via: Via | None = None  # a cross-domain pick: the bridge that reached it (tools/cross_domain.py)


# words of a chatty request that say when or how, not what to look for ("any good comedies lately?",
# "a good movie for a rainy sunday": Sunday Bloody Sunday, Rain Man, Any Given Sunday); the words
# that only ask or converse are already out (tools.cross_domain.ASK_WORDS)
_CHAT_FILLER = frozenset("lately recently recent today tonight tomorrow weekend weekends fun rainy snowy lazy cozy "
                         "morning afternoon evening night nights monday tuesday wednesday thursday friday saturday "
                         "sunday".split())
_GENRE_WORD = re.compile(r"\b(?:" + "|".join(GENRE_WORDS.values()) + r")\b", re.I)
# and the words that say when it came out, which the year constraint already holds: "a good comedy
# from the 90s" is a request for comedies (the graph's favourites of the decade), not a text search
# for "90s" (it listed Metropolitan, My Boyfriend's Back, Terminal USA)
_YEAR_WORD = re.compile(r"(?:1[89]|20)?\d0['’]?s|(?:1[89]|20)\d\d|(?:twent|thirt|fort|fift|sixt|sevent|eight|ninet)ies|"
                        r"decades?|older|old|newer|newest|latest|modern|oldies|vintage|early|mid|late|pre|post|"
                        r"onwards?|since|before|after|until", re.I)


def describes_more(query: str, titles: Iterable[str] = ()) -> bool:
    """Whether a request says what to look for beyond genres: "a thriller set in space" does,
    "hi, any good comedies?" does not (:func:`tools.cross_domain.content_text`, less the words
    that name a genre)."""
    return any(w not in _CHAT_FILLER and not _YEAR_WORD.fullmatch(w)
               for w in content_text(_GENRE_WORD.sub(" ", query), titles).split())


@lru_cache(maxsize=64)
def _request_vector(text: str) -> np.ndarray:
    """The unit vector of a request's words (a ranking past the constraints asks again with the same
    words for each looser constraint: embedded once)."""
    from tools.embeddings import embed

    vector = embed([text])[0].astype(np.float64)
    vector /= max(float(np.linalg.norm(vector)), 1e-12)
    vector.flags.writeable = False  # shared by the cache
    return vector


def _one_per_film(candidates: list[Candidate]) -> list[Candidate]:
    """The first of candidates sharing a title when one of them has no year: an imported catalogue's
    year-less "Ghost" may be the "Ghost (1990)" it could not be linked to, and a list showing
    "Ghost" twice reads as broken. Two years are two films, both kept."""
    years: dict[str, set] = {}
    kept = []
    for cand in candidates:
        key, year = match_key(cand.item.title), cand.item.year
        seen = years.setdefault(key, set())
        if seen and (year is None or None in seen):
            continue
        seen.add(year)
        kept.append(cand)
    return kept


class CandidateTool:
    """``candidates(...)`` → up to ``k`` scored, filtered catalog items."""

    def __init__(self, recommender: GraphRecommender, catalog: Catalog, store: ItemStore,
                 cold_places: int = 3, best_first: dict[str, list[str]] | None = None, fold_in: str = "cosine",
                 ranker: ConversationRanker | None = None) -> None:
        """``fold_in``: how a chat user is matched from the items they named (TurnSettings.fold_in);
        ``ranker``: the learned order for a conversation graph's candidates (used only with the dot
        product, which a conversation graph gets)."""
        if fold_in not in ("cosine", "dot"):
            raise ValueError(f"fold_in must be 'cosine' or 'dot', not {fold_in!r}")
        self.recommender, self.catalog, self.store = recommender, catalog, store
        self.cold_places, self.fold_in = cold_places, fold_in
        # each dataset user's rated items best first (InteractionData.items_best_first): the order
        # the LLM's re-rank asks were tuned with; without it, the training matrix's order
        self.best_first = best_first or {}
        # graph id → catalog item (warm items by their id in the graph's dataset, bridged ones by catalog id)
        self._catalog_of_graph: dict[str, CatalogItem] = {}
        self._admitted_masks: dict[tuple, np.ndarray] = {}  # see _admitted
        self._masks_lock = threading.Lock()
        self._people_cache: dict[str, frozenset[str]] = {}  # see _people_of
        self.ranker = ranker
        self._unit_vectors: dict[str, np.ndarray] = {}  # see ranking_features: the store's, normalised
        for item in catalog:
            if (gid := graph_key(item, recommender)) is not None:
                self._catalog_of_graph.setdefault(gid, item)

    def graph_id(self, item: CatalogItem) -> str | None:
        """The item's id in the graph model, or None when the graph does not hold it."""
        return graph_key(item, self.recommender)

    def catalog_item(self, graph_id: str) -> CatalogItem | None:
        return self._catalog_of_graph.get(graph_id)

    def history(self, user_id: str) -> list[CatalogItem]:
        """The items the graph was trained on for this dataset user, best first when known."""
        trained = self.recommender.history(user_id)
        if user_id in self.best_first:
            kept = set(trained)  # the dataset's order, without the held-out validation / test items
            trained = [i for i in self.best_first[user_id] if i in kept]
        return [i for i in map(self.catalog_item, trained) if i is not None]

    def candidates(self, *, user_id: str | None, liked: Sequence[CatalogItem], disliked: Sequence[CatalogItem],
                   exclude: Iterable[str], constraint: Constraint, query: str = "", k: int = 20) -> list[Candidate]:
        ranked = self._learned_order_applies(user_id, constraint)
        k_asked, k = k, (max(k, RANKED_POOL) if ranked else k)  # the learned order picks from a wider pool
        excluded = set(exclude) | {i.item_id for i in (*liked, *disliked)}
        # the book of a film they named (or the film of a book) is a story they know
        known_titles = {match_key(i.title) for i in (*liked, *disliked)}
        if user_id:  # what a dataset user rated is seen (the graph leaves it out itself; the store must too)
            excluded |= {i.item_id for i in self.history(user_id)}
        domain = constraint.domain or "movie"
        graph_liked = [g for g in map(self.graph_id, liked) if g]
        graph_disliked = [g for g in map(self.graph_id, disliked) if g]
        found: dict[str, Candidate] = {}
        named = titles_of((*liked, *disliked))  # not words of the request, liked or not
        known = bool(user_id or graph_liked)
        described = not known and describes_more(query, [*named, *constraint.people])  # a name says who, not what
        # nothing named and nothing described beyond genres ("any comedies?"): the graph's most
        # liked of those genres, not a text search that matches "comedy" in titles ("The Comedian")
        if domain == "movie" and not described:
            for cand in self._graph(user_id, graph_liked, graph_disliked, excluded, constraint, k):
                found.setdefault(cand.item.item_id, cand)
            if graph_liked and not user_id and self.fold_in == "dot" and self.store is not None:  # a conversation graph
                found = self._with_text_neighbours(found, liked, excluded, constraint, k)
            if not user_id and self.fold_in == "dot":
                found = self._with_most_named(found, excluded, constraint, k)
        # nothing named, genres and more ("thrillers based on a true story"): the text search first,
        # then the graph's most liked of those genres, fused at half weight (at equal weight a film
        # the graph likes led a described request; ReDial valid R@10, whole runs: 0.116 equal, 0.115 half)
        popular = (self._graph(None, [], [], excluded, constraint, k)
                   if domain == "movie" and described and constraint.genres else [])
        wanted = k - len(found)
        if wanted > 0 and self.store is not None:  # other domains, users without graph history, too-narrow constraints
            profile = list(liked) or (self.history(user_id)[:PROFILE_ITEMS] if user_id else [])
            for cand in self._store(profile, excluded | set(found), constraint, query, wanted, user_id=user_id,
                                    named=named, graph=popular):
                found.setdefault(cand.item.item_id, cand)
        fresh = [c for c in found.values() if match_key(c.item.title) not in known_titles]
        pool = _one_per_film(fresh)  # graph order first (its scores do not compare with text scores)
        if ranked and pool:
            head = pool[:RANKED_POOL]
            scores = self.ranker.score(self.ranking_features(head, liked, constraint, query))
            pool = [head[n] for n in np.argsort(-scores, kind="stable")] + pool[RANKED_POOL:]
        return pool[:k_asked]

    # -- the learned order ----------------------------------------------------------------

    def _learned_order_applies(self, user_id: str | None, constraint: Constraint) -> bool:
        """A conversation graph's chat user asking for films, with a ranker loaded."""
        return (self.ranker is not None and not user_id and self.fold_in == "dot"
                and (constraint.domain or "movie") == "movie")

    def ranking_features(self, pool: Sequence[Candidate], liked: Sequence[CatalogItem], constraint: Constraint,
                         query: str) -> np.ndarray:
        """:func:`tools.conversation_ranker.candidate_features` of ``pool`` for this person, from
        the graph's training conversations and the store's text vectors."""
        degree = self.recommender.item_degree_
        ids = [c.item.item_id for c in pool]
        liked_ids = [i.item_id for i in liked]
        known = [(i, p) for i in ids if (p := self._graph_place.get(i)) is not None]
        known_places = [p for _, p in known]
        liked_places = [p for i in liked_ids if (p := self._graph_place.get(i)) is not None]
        co_mentions: dict[str, tuple[float, float]] = {}
        if liked_places and known:
            by_film = self._conversations_by_film
            together = (by_film[:, known_places].T @ by_film[:, liked_places]).toarray()
            norm = np.sqrt(np.outer(degree[known_places] + 1.0, degree[liked_places] + 1.0))
            for (item_id, _), raw, normed in zip(known, together.sum(axis=1), (together / norm).sum(axis=1)):
                co_mentions[item_id] = (float(raw), float(normed))
        items = {i.item_id: i for i in (*(c.item for c in pool), *liked)}
        return candidate_features(
            pool=[(c.item.item_id, c.score, c.source) for c in pool], liked=liked_ids,
            vectors=self._vectors([*ids, *liked_ids]), mentions={i: float(degree[p]) for i, p in known},
            co_mentions=co_mentions, years={i: it.year for i, it in items.items()},
            genres={i: frozenset(genre_key(g) for g in it.genres or ()) for i, it in items.items()},
            asked=constraint.genre_keys, request=_request_vector(query) if query.strip() else None)

    @cached_property
    def _conversations_by_film(self):
        """The graph's training matrix by column: the ranker slices 300 films' columns a turn."""
        return self.recommender.train_.tocsc()

    def _vectors(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Unit text vectors of the items the store holds (kept: a pool asks for 300 each turn)."""
        if self.store is None:
            return {}
        wanted = [i for i in dict.fromkeys(item_ids) if i not in self._unit_vectors]
        try:
            found = dict(zip(wanted, self.store.vectors(wanted))) if wanted else {}
        except KeyError:  # an item the store does not hold: ask one by one, keep the ones it has
            found = {}
            for item_id in wanted:
                try:
                    found[item_id] = self.store.vectors([item_id])[0]
                except KeyError:
                    pass
        for item_id, vec in found.items():
            vec = np.asarray(vec, dtype=np.float32)  # at most the catalogue's: 25k × 384 floats, 38 MB
            self._unit_vectors[item_id] = vec / max(float(np.linalg.norm(vec)), 1e-12)
        return {i: self._unit_vectors[i] for i in item_ids if i in self._unit_vectors}

    # -- sources ------------------------------------------------------------------------

    def _allowed_mask(self, excluded: set[str], constraint: Constraint) -> np.ndarray:
        mask = self._admitted(constraint).copy()
        for item_id in excluded:
            if (place := self._graph_place.get(item_id)) is not None:
                mask[place] = False
        return mask

    @cached_property
    def _graph_place(self) -> dict[str, int]:
        """Catalog item id → its place in the graph's item order (one graph id per item: graph_key)."""
        return {item.item_id: n for n, gid in enumerate(self.recommender.item_ids)
                if (item := self._catalog_of_graph.get(gid)) is not None}

    def _admitted(self, constraint: Constraint, of_the_kind: bool = False) -> np.ndarray:
        """The graph's items the constraint admits (``of_the_kind``: and of every genre asked as one kind).
        A conversation graph bridges the whole catalogue (12k films): checking each item on every
        turn took 80 ms, and a dialogue keeps its constraint for many turns, so the last few masks
        are kept."""
        key = (tuple(constraint.genres), constraint.year_from, constraint.year_to, constraint.domain,
               tuple(constraint.without), tuple(constraint.people),
               tuple(constraint.together) if of_the_kind else None)
        with self._masks_lock:  # the server's sessions share one tool
            if (mask := self._admitted_masks.get(key)) is not None:
                return mask
        mask = np.zeros(self.recommender.n_items, dtype=bool)
        for n, gid in enumerate(self.recommender.item_ids):
            item = self._catalog_of_graph.get(gid)
            mask[n] = (item is not None and constraint.admits(item)
                       and (not of_the_kind or constraint.of_the_kind(item)))
        with self._masks_lock:
            if len(self._admitted_masks) >= ADMITTED_MASKS:
                self._admitted_masks.pop(next(iter(self._admitted_masks)))
            self._admitted_masks[key] = mask
        return mask

    def _graph(self, user_id: str | None, liked: list[str], disliked: list[str], excluded: set[str],
               constraint: Constraint, k: int) -> list[Candidate]:
        rec = self.recommender
        allowed = self._allowed_mask(excluded, constraint)
        cold = allowed & rec.bridged_
        warm = allowed & ~rec.bridged_
        if user_id and not liked and not disliked:  # the trained user vector
            def rank(mask, n):
                return rec.recommend(user_id, n, allowed=mask)
        else:  # a chat user ("more like these"), or a dataset user who added likes in chat (fold in)
            seeds = (rec.history(user_id) if user_id else []) + liked
            # a dataset user's history is folded in by dot product; a chat user by the setting: the
            # cosine leans less to popular items (MovieLens chat users), the dot product more (ReDial)
            nearest = rec.recommend_from_items if user_id or self.fold_in == "dot" else rec.recommend_similar
            # shared genres pull a pool back to what is like the liked items; for a chat user matched
            # by the dot product (a conversation graph) they lost: ReDial valid R@10 0.110 without, 0.102 with
            taste = {} if not user_id and self.fold_in == "dot" else self._genre_profile(liked)

            def rank(mask, n):
                pool = nearest(seeds, disliked, max(n, RESCORE_POOL), allowed=mask)
                return self._with_shared_people(self._with_shared_genres(pool, taste), liked)[:n]
        kind_first = len(constraint.together) > 1
        if kind_first:
            # genres asked as one kind: the films of all of them first ("a romantic comedy" listed Star
            # Wars, The English Patient, Titanic: romance or comedy), then those of one. Genres listed
            # ("I like horror and comedies") keep the graph's order: ReDial's recommenders answered
            # them with horror films and comedies, not horror comedies (valid R@10 −0.003 when all were first)
            every = self._admitted(constraint, of_the_kind=True)
            rank_any = rank

            def rank(mask, n):
                first = rank_any(mask & every, n)
                taken = {gid for gid, _ in first}
                return first + [p for p in rank_any(mask, n) if p[0] not in taken][:n - len(first)]
        n_cold = min(self.cold_places, k // 4) if cold.any() else 0
        ranked = [(gid, s, "graph") for gid, s in rank(warm, k - n_cold)]
        ranked += [(gid, s, "cold") for gid, s in rank(cold, n_cold)] if n_cold else []
        if kind_first:  # a cold film of the kind before a warm one of one genre
            ranked.sort(key=lambda r: not constraint.of_the_kind(self._catalog_of_graph[r[0]]))
        return [Candidate(self._catalog_of_graph[gid], float(s), source) for gid, s, source in ranked]

    @cached_property
    def _genre_weight(self) -> dict[str, float]:
        """Genre → how much sharing it says (inverse document frequency over the graph's items):
        The Lion King and Apollo 13 share Adventure and Drama, The Lion King and Toy Story Animation
        and Children's; the rarer genres are the likeness a person means."""
        items = list(self._catalog_of_graph.values())
        counts: dict[str, int] = {}
        for item in items:
            for g in {genre_key(g) for g in item.genres}:
                counts[g] = counts.get(g, 0) + 1
        # IMAX is how a film was shown, not what it is like (ml-latest-small lists it as a genre)
        return {g: float(np.log(len(items) / n)) for g, n in counts.items() if g not in SCREEN_FORMATS}

    def _genre_profile(self, liked: Sequence[str]) -> dict[str, float]:
        """Genre → share of the liked items (graph ids) that have it, times the genre's weight."""
        counts: dict[str, float] = {}
        items = [i for i in map(self._catalog_of_graph.get, liked) if i is not None]
        for item in items:
            for g in {genre_key(g) for g in item.genres}:
                counts[g] = counts.get(g, 0.0) + self._genre_weight.get(g, 0.0) / len(items)
        return counts

    def _with_shared_genres(self, pool: list[tuple[str, float]], taste: dict[str, float]) -> list[tuple[str, float]]:
        """A fold-in of a few liked items leans to the most popular films (Toy Story + Aladdin →
        Star Wars: the pool's scores differ by a few hundredths); genres shared with the liked
        items pull what is like them back up. Score = the graph score min-max scaled over the
        pool + GENRE_WEIGHT × the cosine between the item's genres and the liked genres, each genre
        weighted by how rare it is."""
        if not pool or not taste:
            return pool
        scores = [s for _, s in pool]
        low, span = min(scores), (max(scores) - min(scores)) or 1.0
        norm = float(np.sqrt(sum(w * w for w in taste.values())))

        def shared(gid: str) -> float:  # the cosine of the two genre vectors, each genre by its weight
            item = self._catalog_of_graph.get(gid)
            weights = {k: self._genre_weight.get(k, 0.0) for k in {genre_key(g) for g in item.genres}} if item else {}
            length = float(np.sqrt(sum(w * w for w in weights.values())))
            return sum(taste.get(g, 0.0) * w for g, w in weights.items()) / (length * norm) if length else 0.0

        rescored = [(gid, (s - low) / span + GENRE_WEIGHT * shared(gid)) for gid, s in pool]
        return sorted(rescored, key=lambda pair: -pair[1])

    def _people_of(self, gid: str) -> frozenset[str]:
        """The director(s) and leads the catalogue credits on a graph item (none without credits)."""
        if (found := self._people_cache.get(gid)) is None:
            item = self._catalog_of_graph.get(gid)
            credits = ItemFacts.of(item).credits if item is not None and item.description else {}
            found = frozenset(credits.get("director", []) + credits.get("cast", [])[:LEADS])
            self._people_cache[gid] = found
        return found

    def _with_shared_people(self, pool: list[tuple[str, float]], liked: Sequence[str]) -> list[tuple[str, float]]:
        """The pool with the films that share a director or a lead with the liked ones (graph ids)
        moved up: reciprocal-rank fusion of the pool's order with theirs (most people shared first,
        then the pool's order). A conversation graph has not seen most films together ("Face/Off"
        → "National Treasure"); who made them and who is in them has. Scores stay the graph's."""
        theirs = frozenset().union(*map(self._people_of, liked)) if liked else frozenset()
        if not pool or not theirs:
            return pool
        shared = [(gid, len(self._people_of(gid) & theirs)) for gid, _ in pool]
        shared = sorted(((gid, n) for gid, n in shared if n), key=lambda pair: -pair[1])  # stable: pool order on ties
        if not shared:
            return pool
        score = dict(pool)
        return [(gid, score[gid]) for gid, _, _ in fuse({"graph": pool, "people": shared},
                                                        {"graph": 1.0, "people": PEOPLE_WEIGHT})]

    @cached_property
    def bridges(self) -> Bridges | None:
        """The catalogue's cross-domain links (film ↔ source book, authors, Book-Crossing's
        co-readers), from the data home's caches (built there on first use); None when they
        cannot be had (the store's text search still answers)."""
        try:
            from tools.adaptations import load_adaptations
            from tools.cross_domain import load_readers

            return Bridges(self.catalog, load_adaptations(self.catalog), load_readers(self.catalog))
        except Exception as exc:  # a missing dataset or an unwritable home must not stop a turn
            log.warning("no cross-domain bridges (%s: %s): books and films are matched by text alone",
                        type(exc).__name__, exc)
            return None

    def _store(self, liked: Sequence[CatalogItem], excluded: set[str], constraint: Constraint, query: str,
               k: int, user_id: str | None = None, named: Sequence[str] = (),
               graph: Sequence[Candidate] = ()) -> list[Candidate]:
        """Items of the wanted domain from the store and the cross-domain bridges, fused by rank
        (with ``graph``'s candidates when given). The request's own words count only for what they
        describe (:func:`content_text`: not the titles ``named``, liked or not, not "books" or
        "something to read"); what the person likes says the rest."""
        found = self._store_hits(liked, excluded, constraint, query, k, 4 * k + len(excluded), user_id, named, graph)
        if len(found) < k and constraint.genres:
            # the store filters years and domain itself, genres only after the fusion: a narrow genre
            # left 2 of the 80 nearest ("newer sci-fi and fantasy, after 2010" listed two films)
            found = self._store_hits(liked, excluded, constraint, query, k,
                                     min(GENRE_FETCH * k, GENRE_FETCH_MOST) + len(excluded), user_id, named, graph)
        return found

    def _store_hits(self, liked: Sequence[CatalogItem], excluded: set[str], constraint: Constraint, query: str,
                    k: int, fetch: int, user_id: str | None, named: Sequence[str],
                    graph: Sequence[Candidate]) -> list[Candidate]:
        """:meth:`_store` reading ``fetch`` hits from each of its sources."""
        domain = constraint.domain or "movie"
        where = where_clause(domain, constraint.year_from, constraint.year_to)
        lists: dict[str, list[tuple[str, float]]] = {}
        if graph:
            lists["graph"] = [(c.item.item_id, c.score) for c in graph]
        via: dict[str, dict[str, Via]] = {}
        cross = any(i.domain != domain for i in liked) or (user_id is not None and domain != "movie")
        if cross and self.bridges is not None:  # only a cross-domain ask loads the bridges
            for name, (ranked, reached) in self._bridged(liked, domain, user_id, excluded, fetch).items():
                if ranked:
                    lists[name], via[name] = ranked, reached
        if liked:  # a profile in text space crosses domains: a movie lover's books
            lists["text"] = self._nearest_in_text(liked, where, fetch, excluded)
        if constraint.people:  # the films of the people asked for, most rated first: the graph may not hold them
            lists["credited"] = self._popular(domain, len(constraint.credited), among=constraint.credited)
        text = " ".join([content_text(query, [*titles_of(liked), *named]), *constraint.genres]).strip()
        if text:
            lists["request"] = [(h.item_id, h.score) for h in self.store.search(
                text, fetch, domain, constraint.year_from, constraint.year_to)]
        elif not lists:  # nothing known about them, nothing described: the most rated of the domain
            lists["popular"] = self._popular(domain, fetch)
        out: dict[str, Candidate] = {}
        for item_id, score, best in fuse(lists, SOURCE_WEIGHTS):
            item = self.catalog.get(item_id)
            if item is None or item.item_id in excluded or item.item_id in out or not constraint.admits(item):
                continue
            out[item.item_id] = Candidate(item, score, "graph" if best == "graph" else "store",
                                          via.get(best, {}).get(item_id))
            if len(out) >= k:
                break
        return list(out.values())

    def _nearest_in_text(self, liked: Sequence[CatalogItem], where: dict | None, n: int,
                         excluded: set[str]) -> list[tuple[str, float]]:
        """The store's items nearest to the mean of the liked items' text vectors: (id, cosine)."""
        profile = self.store.vectors([i.item_id for i in liked]).mean(axis=0)
        profile /= max(float(np.linalg.norm(profile)), 1e-12)
        return [(h.item_id, h.score) for h in self.store.search_vector(profile, n, where, exclude=excluded)]

    def _with_text_neighbours(self, found: dict[str, Candidate], liked: Sequence[CatalogItem], excluded: set[str],
                              constraint: Constraint, k: int) -> dict[str, Candidate]:
        """``found`` (the graph's candidates, best first) fused by rank with the films nearest in
        meaning to the liked ones (:data:`TEXT_NEIGHBOUR_WEIGHT`); the first ``k``."""
        where = where_clause("movie", constraint.year_from, constraint.year_to)
        near = [(item_id, score)
                for item_id, score in self._nearest_in_text(liked, where, TEXT_NEIGHBOUR_FETCH, excluded)
                if (item := self.catalog.get(item_id)) is not None and constraint.admits(item)]
        if not near:
            return found
        text_score = dict(near)
        out: dict[str, Candidate] = {}
        for item_id, _, _ in fuse({"graph": [(i, c.score) for i, c in found.items()], "text": near},
                                  {"graph": 1.0, "text": TEXT_NEIGHBOUR_WEIGHT}):
            out[item_id] = found.get(item_id) or Candidate(self.catalog.get(item_id), text_score[item_id], "store")
            if len(out) >= k:
                break
        return out

    def _with_most_named(self, found: dict[str, Candidate], excluded: set[str], constraint: Constraint,
                         k: int) -> dict[str, Candidate]:
        """``found`` fused by rank with the graph's films its people named most (the ones the
        constraints admit, none excluded; :data:`MOST_NAMED_WEIGHT`); the first ``k``."""
        rec = self.recommender
        places = np.flatnonzero(self._allowed_mask(excluded, constraint) & ~rec.bridged_)
        in_pool = {item_id: n for n, item_id in enumerate(found)}  # ties keep the pool's order
        pool_place = [in_pool.get(self._catalog_of_graph[rec.item_ids[p]].item_id, len(found)) for p in places]
        ranked = places[np.lexsort((pool_place, -rec.item_degree_[places]))][:max(k, 1)]
        most_named = [(self._catalog_of_graph[rec.item_ids[n]].item_id, float(rec.item_degree_[n])) for n in ranked]
        if not most_named:
            return found
        out: dict[str, Candidate] = {}
        for item_id, _, _ in fuse({"pool": [(i, c.score) for i, c in found.items()], "most named": most_named},
                                  {"pool": 1.0, "most named": MOST_NAMED_WEIGHT}):
            out[item_id] = found.get(item_id) or Candidate(self.catalog.get(item_id), 0.0, "graph")
            if len(out) >= k:
                break
        return out

    def _popular(self, domain: str, n: int, among: Iterable[str] | None = None) -> list[tuple[str, float]]:
        items = (i for i in map(self.catalog.get, among) if i) if among is not None else iter(self.catalog)
        ranked = sorted((i for i in items if i.domain == domain), key=lambda i: (-i.n_ratings, i.item_id))
        return [(i.item_id, float(i.n_ratings)) for i in ranked[:n]]

    def _bridged(self, liked: Sequence[CatalogItem], domain: str, user_id: str | None, excluded: set[str],
                 n: int) -> dict[str, tuple[list[tuple[str, float]], dict[str, Via]]]:
        """Ranked lists of ``domain`` items reached from the person's items of the other domain."""
        bridges, rec = self.bridges, self.recommender
        out: dict[str, tuple[list[tuple[str, float]], dict[str, Via]]] = {}
        films = [i for i in liked if i.domain == "movie"]
        books = [i for i in liked if i.domain == "book"]
        if domain == "book":
            # the graph ranks the films that have a source book; each brings its book
            adapted = {gid: pair.film_id for pair in bridges.adaptations
                       if (film := self.catalog.get(pair.film_id)) is not None
                       and (gid := self.graph_id(film)) is not None}
            mask = np.zeros(rec.n_items, dtype=bool)
            for gid in adapted:
                mask[rec.item_index(gid)] = True
            seeds = [g for g in map(self.graph_id, films) if g]

            def rank(allowed: np.ndarray) -> list[tuple[str, float]]:
                if user_id and rec.has_user(user_id):  # their trained vector; films named in chat folded in
                    history = rec.history(user_id)
                    named = [g for g in seeds if g not in set(history)]
                    return (rec.recommend_from_items(history + named, (), n, allowed=allowed) if named
                            else rec.recommend(user_id, n, allowed=allowed))
                return rec.recommend_similar(seeds, (), n, allowed=allowed) if seeds else []
            # films people rated first; new films (text-estimated graph vectors) in a list of their own
            for name, part in (("adapted", mask & ~rec.bridged_), ("adapted_new", mask & rec.bridged_)):
                if part.any():
                    out[name] = bridges.books_of_films([(adapted[g], s) for g, s in rank(part)], n)
            known = bridges.source_books(films) + books
            out["author"] = bridges.same_author(known, n)
            out["readers"] = bridges.co_read(known, n)
        elif domain == "movie" and books:
            # a reader's books → their films (and their co-read books' films) as the graph's seeds
            near = [self.catalog.get(b) for b, _ in bridges.co_read(books, 10)[0]]
            seed_films = bridges.films_of_books(books) + bridges.films_of_books([b for b in near if b])
            seeds = list(dict.fromkeys(g for g in map(self.graph_id, seed_films) if g))
            if seeds:
                through = {self.graph_id(f): f for f in seed_films}
                ranked = rec.recommend_similar(seeds, (), n)
                items = [(gid, s, self._catalog_of_graph.get(gid)) for gid, s in ranked]
                first = through[seeds[0]]
                out["film_of_book"] = ([(it.item_id, s) for _, s, it in items if it is not None],
                                       {it.item_id: Via("film_of_book", _book_title(first, bridges), first.item_id)
                                        for _, _, it in items if it is not None})
        return out


def _book_title(film: CatalogItem, bridges: Bridges) -> str:
    """The title of the book a film was made from (the film's own when the table has none)."""
    pairs = [p for p in bridges.adaptations if p.film_id == film.item_id]
    return pairs[0].book_title if pairs else film.title


__all__ = ["Candidate", "CandidateTool", "Constraint", "genre_key"]
