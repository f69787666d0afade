"""Across domains: books for a person known by films, films for a person known by books.

The request's own words ("any books?", "something to read") say *which domain*, not *what*
(:func:`content_text` keeps only the words that describe content, without the titles named);
what to offer comes from what the person likes, through bridges the catalogue knows:

- ``adapted``: the graph recommender ranks the films that have a source book
  (:mod:`tools.adaptations`) for this person — their own trained vector, or the films they
  named — and each film brings its book ("from the novel behind Jurassic Park");
- ``author``: other works by the author of a liked film's source book, or of a liked book
  ("same author as The Firm");
- ``readers``: Book-Crossing readers of a liked film's source book, or of a liked book, also
  rated these (item-item cosine over the works' readers, :class:`CoReaders`);

and, the other way, a liked book's film (and its author's and co-readers' books' films) as seeds
for the graph's "more like these". The store's text search stays the last of the sources: the
candidate tool (:mod:`tools.candidates`) fuses the lists by reciprocal rank.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tools.adaptations import AdaptationTable, author_key
from tools.catalog import Catalog, CatalogItem
from tools.resolve import match_key

log = logging.getLogger(__name__)

RRF_K = 20  # reciprocal-rank fusion: 1 / (RRF_K + rank)
BRIDGE_POOL = 200  # graph-ranked films looked at for their books

# Words that say which domain the person wants, or that only ask: no content of their own.
DOMAIN_WORDS = frozenset("""
book books novel novels novella read reads reading reader readers paperback paperbacks hardback author authors
writer writers literature literary story stories fiction nonfiction text texts title titles volume volumes
film films movie movies flick flicks watch watching watched cinema dvd dvds video videos screen series
""".split())
ASK_WORDS = frozenset("""
a an the and or but so of for to in on at by with from about as into than then there here
i i'm im i've ive i'd id me my mine we us our you your yours he she it its they them their this that these those
is are was were be been being am do does did have has had can could would should will shall may might must
any some something anything everything nothing someone somebody anyone anybody who whom what what's whats which whatever
recommend recommends recommended recommendation recommendations suggest suggests suggestion suggestions
please give show find tell offer pick picks want wanted wants need looking look like likes liked love loves
loved enjoy enjoys enjoyed fan fans into also too else other others more another next new good great nice
best favourite favorite similar same kind sort lot lots few couple maybe perhaps really very just now well
thanks thank hi hello hey ok okay yes no not don't dont how why when where get got let let's lets try
person people guy one ones
know knew idea ideas help helps interested interest doing think thinking thought wondering wonder asking ask
trying seeking mood pretty if all see sure mostly especially preferably type types kinds genre genres category
sounds cool yeah yea yep oh lol haha plz pls ur u check hear heard say said thing things stuff watchable
seen saw nah nope surprise random
""".split())  # the second block: words of conversation around a request (ReDial seekers' turns were full of them)
_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")
# a word no English text uses much and one typo away from a word above or a genre's ("recomend
# som funy movis" searched the store for "So Fine" and "Funny Farm"): that word, misspelt
TYPO_ZIPF = 3.5  # wordfreq's scale: "som" 3.2, "recomend" 2.1, "movis" 0; "live" 5.5, "heist" 3.4


@lru_cache(maxsize=1)
def _genre_words() -> frozenset[str]:
    from tools.vocabulary import GENRES

    return frozenset(w for g in GENRES for phrase in (*g.named, g.plural, g.adjective) for w in phrase.split())


@lru_cache(maxsize=1 << 14)
def misspelt_plain_word(word: str) -> bool:
    """Whether ``word`` is a typo of an asking, domain or genre word: rare in English and one
    edit (a letter added, dropped, changed, or two swapped) from one of them."""
    if len(word) < 3 or word in ASK_WORDS or word in DOMAIN_WORDS or word in _genre_words():
        return False
    from wordfreq import zipf_frequency

    if zipf_frequency(word, "en") >= TYPO_ZIPF:
        return False
    return any(_one_edit(word, known) for known in (*ASK_WORDS, *DOMAIN_WORDS, *_genre_words(), "funny", "scary")
               if len(known) >= 3 and abs(len(known) - len(word)) <= 1)


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one insertion, deletion, substitution or swap of neighbours."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


# what the words rule out is no word to search for: a sentence vector has no "not" ("not too
# gory" found Gomorrah, Go and Gorky Park); "nothing but", "not only", "no matter" rule nothing out
_NEGATED = re.compile(r"\b(?:not|no|nothing|without|never|nor|less|(?:is|are|was|do|does|did)n'?t)\b"
                      r"(?!\s+(?:but|only|just|matter)\b)[^,.;:!?]*?(?=[,.;:!?]|\b(?:but|and|with|though)\b|$)", re.I)

# who the person watches or reads with says who, not what: "my wife and i are into period dramas"
# listed Husbands and Wives, The Wife and My Wife is an Actress ("a wife who …" is still the story)
_COMPANION = re.compile(r"\b(?:my|our|me and my|with my)\s+(?:wife|husband|hubby|partner|spouse|girlfriend|boyfriend|"
                        r"gf|bf|fianc[eé]e?|roommates?|flatmates?|mom|mum|dad|mother|father|parents|sister|brother|"
                        r"siblings|son|daughter|friends?|buddies|bestie)\b", re.I)

# a place in the list just shown says which one, not what to look for ("seen the first one,
# anything lighter?" listed The First Time, First Blood and Loaded Weapon 1)
_LIST_PLACE = re.compile(r"\b(?:first|second|third|fourth|fifth|last|top|\d(?:st|nd|rd|th))\s+"
                         r"(?:one|ones|pick|picks|title|suggestion|recommendation|movie|film|book)s?\b|"
                         r"#\s*\d+|\bnumber\s+(?:\d+|one|two|three|four|five)\b", re.I)


def content_text(query: str, titles: Iterable[str] = ()) -> str:
    """The words of a request that say what to look for: ``query`` without the ``titles`` it
    names (whole, case-insensitively), the words that only name a domain ("books", "something to
    read"), the words that only ask, a place in the list shown ("the first one"), who they watch
    with ("my wife and I") and the words a negation rules out. ``"any books for someone who likes
    these?"`` -> ``""``; ``"a thriller set in space, something to read"`` -> ``"thriller set
    space"``; ``"a comedy, not too silly"`` -> ``"comedy"``."""
    text = query.lower()
    for title in sorted({t.lower().strip() for t in titles if t and len(t.strip()) >= 2}, key=len, reverse=True):
        text = re.sub(r"(?<!\w)" + re.escape(title) + r"(?!\w)", " ", text)
    text = _COMPANION.sub(" ", _LIST_PLACE.sub(" ", _NEGATED.sub(" ", text)))
    words = [w.replace("\u2019", "'") for w in _WORD.findall(text)]
    kept = [w for w in words if w not in DOMAIN_WORDS and w not in ASK_WORDS and not w.isdigit()
            and not misspelt_plain_word(w)]
    return " ".join(kept)


def fuse(lists: dict[str, list[tuple[str, float]]], weights: dict[str, float] | None = None
         ) -> list[tuple[str, float, str]]:
    """Reciprocal-rank fusion of ranked id lists: ``(id, fused score, the source that ranked it
    highest)``, best first (ties: the order the sources were given in)."""
    score: dict[str, float] = defaultdict(float)
    best: dict[str, tuple[float, str]] = {}
    for name, ranked in lists.items():
        w = (weights or {}).get(name, 1.0)
        for rank, (item_id, _) in enumerate(ranked):
            part = w / (RRF_K + rank + 1)
            score[item_id] += part
            if item_id not in best or part > best[item_id][0]:
                best[item_id] = (part, name)
    order = sorted(score, key=lambda i: -score[i])
    return [(i, score[i], best[i][1]) for i in order]


@dataclass(frozen=True)
class Via:
    """How a cross-domain candidate was reached: the bridge an explanation names."""
    kind: str  # "adapted" | "author" | "readers" | "film_of_book"
    through: str  # the liked (or graph-ranked) item's title the bridge starts from
    through_id: str
    detail: str = ""  # the author's name, for "author"

    def sentence(self, item: CatalogItem) -> str:
        if self.kind == "adapted":
            return f"{item.title} is the book behind the film {self.through}."
        if self.kind == "author":
            return f"{item.title} is by {self.detail}, who also wrote {self.through}."
        if self.kind == "readers":
            return f"Readers of {self.through} also rated {item.title}."
        if self.kind == "film_of_book":
            return f"{item.title} is close in the ratings graph to the film of {self.through}."
        return ""

    def reason(self) -> str:
        """The bridge as a reason in the evidence sentence ("… is here because <reason>")."""
        return {"adapted": f"it is the book behind the film {self.through}",
                "author": f"it is by {self.detail}, who also wrote {self.through}",
                "readers": f"readers of {self.through} also rated it",
                "film_of_book": f"it is close in the ratings graph to the film of {self.through}"}.get(self.kind, "")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "through": self.through, "through_id": self.through_id, "detail": self.detail}


class CoReaders:
    """Book-Crossing's "readers of this book also rated": each catalogue work's nearest works by
    cosine over the users who rated any of its editions (explicit or implicit)."""

    def __init__(self, neighbours: dict[str, list[tuple[str, float]]]) -> None:
        self.neighbours = neighbours

    def __len__(self) -> int:
        return len(self.neighbours)

    def of(self, book_id: str) -> list[tuple[str, float]]:
        return self.neighbours.get(book_id, [])

    def around(self, book_ids: Sequence[str], k: int) -> list[tuple[str, float, str]]:
        """Works co-read with any of ``book_ids`` (summed cosine), best first, with the seed that
        gave each its largest share; the seeds themselves left out."""
        total: dict[str, float] = defaultdict(float)
        best: dict[str, tuple[float, str]] = {}
        for seed in book_ids:
            for other, cos in self.of(seed):
                total[other] += cos
                if other not in best or cos > best[other][0]:
                    best[other] = (cos, seed)
        seeds = set(book_ids)
        order = [b for b in sorted(total, key=lambda b: -total[b]) if b not in seeds]
        return [(b, total[b], best[b][1]) for b in order[:k]]

    @classmethod
    def build(cls, catalog: Catalog | Iterable[CatalogItem], ratings_users: np.ndarray, ratings_isbns: Sequence[str],
              k: int = 20, min_common: int = 2) -> "CoReaders":
        """From Book-Crossing's (user index, ISBN) pairs: every edition of a work counts for it."""
        import scipy.sparse as sp

        items = catalog.items if isinstance(catalog, Catalog) else list(catalog)
        books = [it for it in items if it.domain == "book" and it.sources.get("book-crossing")]
        work_of: dict[str, int] = {}
        for n, book in enumerate(books):
            for isbn in (book.sources["book-crossing"], *book.editions):
                work_of.setdefault(isbn, n)
        cols = np.fromiter((work_of.get(i, -1) for i in ratings_isbns), dtype=np.int64, count=len(ratings_isbns))
        keep = cols >= 0
        rows = np.asarray(ratings_users)[keep]
        cols = cols[keep]
        if not len(cols):
            return cls({})
        matrix = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)),
                               shape=(int(rows.max()) + 1, len(books)))
        matrix.data[:] = 1.0  # a reader counts once per work, whatever the editions
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        co = (matrix.T @ matrix).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        neighbours: dict[str, list[tuple[str, float]]] = {}
        for n in range(len(books)):
            start, end = co.indptr[n], co.indptr[n + 1]
            idx, common = co.indices[start:end], co.data[start:end]
            ok = common >= min_common
            idx, common = idx[ok], common[ok]
            if not len(idx):
                continue
            cos = common / np.sqrt(counts[n] * counts[idx])
            top = np.argsort(-cos, kind="stable")[:k]
            neighbours[books[n].item_id] = [(books[int(i)].item_id, round(float(c), 4)) for i, c in zip(idx[top], cos[top])]
        return cls(neighbours)

    def save(self, path: Path | str) -> Path:
        from recsys.io import write_json

        return write_json(path, {"format": "chatrec-coreaders", "version": 1, "neighbours": self.neighbours},
                          indent=None)

    @classmethod
    def read(cls, path: Path | str) -> "CoReaders | None":
        import json

        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != "chatrec-coreaders" or data.get("version") != 1:
                return None
            return cls({k: [(b, float(c)) for b, c in v] for k, v in data["neighbours"].items()})
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None


class Bridges:
    """The catalogue's cross-domain links for one catalogue: adaptations, authors, co-readers."""

    def __init__(self, catalog: Catalog, adaptations: AdaptationTable, readers: CoReaders | None = None) -> None:
        self.catalog, self.adaptations, self.readers = catalog, adaptations, readers or CoReaders({})
        self.works_of_author: dict[str, list[CatalogItem]] = defaultdict(list)
        for item in catalog:
            if item.domain == "book" and item.author:
                self.works_of_author[author_key(item.author)].append(item)
        for works in self.works_of_author.values():
            works.sort(key=lambda b: (-b.n_ratings, b.item_id))

    # -- film lovers' books ----------------------------------------------------------------

    def source_books(self, films: Iterable[CatalogItem]) -> list[CatalogItem]:
        out = []
        for film in films:
            pair = self.adaptations.book_of(film.item_id)
            if pair is not None and (book := self.catalog.get(pair.book_id)) is not None:
                out.append(book)
        return out

    def books_of_films(self, ranked_films: Sequence[tuple[str, float]], k: int) -> tuple[list[tuple[str, float]], dict]:
        """Graph-ranked film ids (catalogue ids) → their source books, in the films' order."""
        out: list[tuple[str, float]] = []
        via: dict[str, Via] = {}
        for film_id, score in ranked_films:
            pair = self.adaptations.book_of(film_id)
            if pair is None or pair.book_id in via:
                continue
            via[pair.book_id] = Via("adapted", pair.film_title, film_id)
            out.append((pair.book_id, float(score)))
            if len(out) >= k:
                break
        return out, via

    def same_author(self, seeds: Sequence[CatalogItem], k: int) -> tuple[list[tuple[str, float]], dict]:
        """Other works of the seeds' authors, the most read first, seeds in their order (round robin)."""
        per_seed = []
        for seed in seeds:
            works = [w for w in self.works_of_author.get(author_key(seed.author), []) if w.item_id != seed.item_id]
            per_seed.append((seed, works))
        out: list[tuple[str, float]] = []
        via: dict[str, Via] = {}
        seen = {s.item_id for s in seeds}
        for depth in range(max((len(w) for _, w in per_seed), default=0)):
            for seed, works in per_seed:
                if depth < len(works) and (w := works[depth]).item_id not in seen:
                    seen.add(w.item_id)
                    via[w.item_id] = Via("author", seed.title, seed.item_id, seed.author or "")
                    out.append((w.item_id, 1.0 / (depth + 1)))
        return out[:k], via

    def co_read(self, seeds: Sequence[CatalogItem], k: int) -> tuple[list[tuple[str, float]], dict]:
        titles = {s.item_id: s.title for s in seeds}
        got = self.readers.around([s.item_id for s in seeds], k)
        return [(b, s) for b, s, _ in got], {b: Via("readers", titles[seed], seed) for b, _, seed in got}

    def bridge_to(self, item: CatalogItem, liked: Sequence[CatalogItem]) -> Via | None:
        """The bridge from the person's ``liked`` items of the other domain to ``item``, for an
        explanation asked after the list (the candidate's own ``via`` is gone by then): the same
        author as one of theirs first, then the film the book became, then co-readers."""
        if item.domain != "book":
            return None
        known = self.source_books(i for i in liked if i.domain == "movie") + [i for i in liked if i.domain == "book"]
        by_author = self.same_author(known, 10_000)[1]  # every other work of their authors
        if item.item_id in by_author:
            return by_author[item.item_id]
        if films := self.adaptations.films_of(item.item_id):
            return Via("adapted", films[0].film_title, films[0].film_id)
        return self.co_read(known, 200)[1].get(item.item_id) if known else None

    # -- readers' films ----------------------------------------------------------------------

    def films_of_books(self, books: Iterable[CatalogItem]) -> list[CatalogItem]:
        out = []
        for book in books:
            for pair in self.adaptations.films_of(book.item_id):
                if (film := self.catalog.get(pair.film_id)) is not None:
                    out.append(film)
        return out


# ------------------------------------------------------------------------------ building


READERS_FILE = "book_readers.json"


def readers_path(home: Path | str | None = None) -> Path:
    from recsys.io import data_home

    return (Path(home) if home is not None else data_home()) / "items" / READERS_FILE


def load_readers(catalog: Catalog, home: Path | str | None = None, rebuild: bool = False) -> CoReaders:
    """Co-readers for ``catalog``'s books: cached in ``<home>/items/book_readers.json`` (with the
    catalogue's signature), built from Book-Crossing's ratings when missing or stale; empty when
    the dataset is not fetched."""
    import json

    from recsys import datasets
    from tools.adaptations import catalog_signature

    signature = catalog_signature(catalog.items)
    path = readers_path(home)
    if not rebuild and path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if (data.get("format"), data.get("version"), data.get("catalog")) == ("chatrec-coreaders", 1, signature) \
                    and isinstance(data.get("neighbours"), dict):
                return CoReaders(data["neighbours"])  # [[book id, cosine], ...] lists, read as they are
        except (OSError, ValueError, AttributeError):
            log.warning("co-readers cache %s unreadable: rebuilding it", path)
    home_path = Path(home) if home is not None else None
    if not datasets.is_fetched(datasets.get_spec("book-crossing"), home_path):
        log.warning("Book-Crossing is not fetched: no co-reader signal")
        return CoReaders({})
    data = datasets.load("book-crossing", home_path, progress=False)
    readers = CoReaders.build(catalog, data.users, data.item_ids[data.items])
    from recsys.io import write_json

    try:
        write_json(path, {"format": "chatrec-coreaders", "version": 1, "catalog": signature,
                          "neighbours": readers.neighbours}, indent=None)
    except OSError as exc:
        log.warning("could not cache co-readers in %s: %s", path, exc)
    return readers


def document_extras(catalog: Catalog, table: AdaptationTable) -> dict[str, str]:
    """Extra text for the store's book documents (Book-Crossing gives only title, author, year):
    an adapted book gets its films, their genres and descriptions; another book by the same author
    gets the adapted works it shares an author with and their films' genres. Only these books'
    documents change, so only they are embedded again."""
    extras: dict[str, str] = {}
    films_of: dict[str, list[CatalogItem]] = defaultdict(list)
    for pair in table:
        if (film := catalog.get(pair.film_id)) is not None:
            films_of[pair.book_id].append(film)
    by_author: dict[str, list[str]] = defaultdict(list)
    for book_id in films_of:
        book = catalog.get(book_id)
        if book is not None and book.author:
            by_author[author_key(book.author)].append(book_id)
    for book_id, films in films_of.items():
        genres = list(dict.fromkeys(g for f in films for g in f.genres))
        named = "; ".join(f.title_year for f in films[:3])
        text = f"Made into the film {named}." + (f" Genres: {', '.join(genres)}." if genres else "")
        desc = next((f.description for f in films if f.description), None)
        if desc:
            text += " " + " ".join(desc.split())[:300]
        extras[book_id] = text
    for item in catalog:
        if item.domain != "book" or item.item_id in films_of or not item.author:
            continue
        adapted = [b for b in by_author.get(author_key(item.author), []) if b != item.item_id]
        if not adapted:
            continue
        parts = []
        genres = []
        for book_id in adapted[:3]:
            book = catalog.get(book_id)
            parts.append(f"{book.title} (the film {films_of[book_id][0].title})")
            genres += [g for f in films_of[book_id] for g in f.genres]
        text = f"By the author of {'; '.join(parts)}."
        if genres:
            text += f" Their films' genres: {', '.join(dict.fromkeys(genres))}."
        extras[item.item_id] = text
    return extras


def titles_of(items: Iterable[CatalogItem]) -> list[str]:
    return [t for item in items for t in (item.title, *item.aliases)]


def known_story_keys(items: Iterable[CatalogItem]) -> set[str]:
    return {match_key(t) for t in titles_of(items)}


__all__ = ["ASK_WORDS", "Bridges", "CoReaders", "DOMAIN_WORDS", "Via", "content_text", "document_extras", "fuse",
           "known_story_keys", "load_readers", "readers_path", "titles_of"]
