"""Films and the books they were made from: the catalogue's film ↔ source-book table.

Built from the catalogue itself (MovieLens films, Book-Crossing works), never typed by hand.
A film and a book pair up when

- their work titles are the same (:func:`tools.catalog.title_key` of the film's main title and
  of the book's base title, or of the book title before a generic subtitle such as ": A Novel
  of ..."), and
- the book is older than the film (the earliest year of the author's editions of that title in
  Book-Crossing, when the dataset is at hand; the catalogue work's year otherwise) — rule
  ``older`` — or the film's title credits the book's author ("Mary Shelley's Frankenstein",
  "Bram Stoker's Dracula": the possessive name's surname is the author's) — rule ``credited``.

Precision first: a pair is left out, with the reason counted in ``stats["left_out"]``, when

- the title is short (fewer than 4 letters) or only numbers;
- catalogue works by two or more authors carry that title (``several_authors``);
- in all of Book-Crossing, books by other authors with that title hold more than
  :data:`OTHER_AUTHORS_SHARE` of the title's ratings and editions (``title_shared``: "Heat",
  "Crash" and other common words);
- the book is not older than the film and the film does not credit its author
  (``book_not_older``: novelisations, tie-in editions); or its year is unknown (``no_year``);
- the film's description lists its writers ("Written by …", from an import such as ReDial's)
  and the book's author is not among them (``not_credited``); when it is, the pair is
  ``credited`` whatever the years;
- the title is short (fewer than :data:`SURE_WORDS` words: "Bolt", "Running Scared") or a
  common phrase (one word that :data:`GENERIC_TITLES` or more catalogue titles contain, any
  title that :data:`VERY_GENERIC_TITLES` or more contain: "In America"), and nothing else says
  the film is this book's: no Book-Crossing edition sold as its tie-in or published the year
  the film came out (or the next), and no other pair of the same author that is sure (credited,
  with a tie-in, or a longer title) — Stephen King's "Carrie" stays, "Dolores Claiborne" is
  surely his (``short_title_unsure``, ``generic_title``).

Remakes share a source: every film of the title that passes pairs with the same book.

The table is cached in ``<data home>/items/adaptations.json`` (written to a temp file and
renamed), with a signature of the catalogue it was built from; a cache from another catalogue
or format is rebuilt. ``chatrec items adaptations`` builds it, shows it and samples it for a
hand check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recsys.io import write_json
from tools.catalog import (Catalog, CatalogItem, _ascii_fold, _front_article, book_base_title, split_title,
                           title_key)

log = logging.getLogger(__name__)

FORMAT = "chatrec-adaptations"
VERSION = 1
FILE = "adaptations.json"
MIN_LETTERS = 4  # "It", "Ran": too short to say which work a title is
OTHER_AUTHORS_SHARE = 0.2  # other authors' books of the same title may hold at most this share of it
GENERIC_TITLES = 7  # a one-word title this many catalogue titles contain is a common word
VERY_GENERIC_TITLES = 15  # any title this many contain
SURE_WORDS = 3  # a title of this many words that is no common phrase names one work
_TIE_IN = re.compile(r"\b(?:movie|film|motion picture)[ -]tie[ -]?in\b|\bmotion picture\b|\bmovie edition\b",
                     re.IGNORECASE)
_WRITTEN_BY = re.compile(r"Written by ([^.]+)\.")

# "Mary Shelley's Frankenstein", "William Shakespeare's Romeo and Juliet": 2-4 capitalised name words, then 's
_CREDIT = re.compile(r"^(?P<who>[A-Z][^\s:']*(?:\s+[A-Z][^\s:']*){1,3})['\u2019]s\s+(?P<rest>.+)$")
# ": A Novel of Politics", ": A Novel", ": Stories": subtitles that say what kind of book it is
_GENERIC_SUB = re.compile(r"^(?:a|an|the)?\s*(?:novel|memoir|true story|romance|thriller|mystery|story|tale)\b",
                          re.IGNORECASE)


@dataclass(frozen=True)
class Adaptation:
    film_id: str
    book_id: str
    rule: str  # "older" | "credited"
    film_title: str
    film_year: int | None
    book_title: str
    book_author: str | None
    book_year: int | None  # the earliest known edition's year

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        year = f" ({self.book_year})" if self.book_year else ""
        by = f" by {self.book_author}" if self.book_author else ""
        return f"{self.film_title} ({self.film_year}) <- {self.book_title}{by}{year}  [{self.rule}]"


@dataclass
class AdaptationTable:
    pairs: list[Adaptation] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_film: dict[str, Adaptation] = {}
        self._by_book: dict[str, list[Adaptation]] = defaultdict(list)
        for pair in self.pairs:
            self._by_film[pair.film_id] = pair
            self._by_book[pair.book_id].append(pair)

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self):
        return iter(self.pairs)

    def book_of(self, film_id: str) -> Adaptation | None:
        """The pair whose film this is (its source book), or None."""
        return self._by_film.get(film_id)

    def films_of(self, book_id: str) -> list[Adaptation]:
        """The pairs whose source book this is (remakes: several films)."""
        return list(self._by_book.get(book_id, ()))

    def sample(self, n: int, seed: int = 0) -> list[Adaptation]:
        rng = random.Random(seed)
        return rng.sample(self.pairs, min(n, len(self.pairs)))


# ------------------------------------------------------------------------------------ keys


def author_key(author: str | None) -> str:
    """``"Crichton, Michael"`` and ``"MICHAEL CRICHTON"`` -> ``"crichton michael"``: the name's
    words, accents folded, initials' dots gone, sorted (Book-Crossing writes both orders)."""
    if not author:
        return ""
    words = re.sub(r"[^0-9a-z]+", " ", _ascii_fold(author).lower().replace(".", " ")).split()
    return " ".join(sorted(w for w in words if len(w) > 1))  # initials differ between editions


def _surname(name: str) -> str:
    words = re.sub(r"[^0-9a-z]+", " ", _ascii_fold(name).lower()).split()
    return words[-1] if words else ""


def book_keys(title: str) -> set[str]:
    """The work-title keys of a book title: the base title's, and the part before a generic
    subtitle (``"Primary Colors: A Novel of Politics"`` -> also ``"primary colors"``)."""
    base = book_base_title(title)
    keys = {title_key(base)}
    head, sep, sub = base.partition(": ")
    if sep and _GENERIC_SUB.match(sub.strip()):
        keys.add(title_key(head))
    return {k for k in keys if k}


def film_title_parts(title: str) -> tuple[str, str | None, str | None]:
    """(key of the film's main title, the credited name, key of the title after the credit):
    ``"Mary Shelley's Frankenstein"`` -> ``("mary shelleys frankenstein", "Mary Shelley", "frankenstein")``."""
    main = _front_article(split_title(title)[0])
    m = _CREDIT.match(main)
    if not m:
        return title_key(main), None, None
    return title_key(main), m["who"], title_key(m["rest"])


def _substantial(key: str) -> bool:
    letters = key.replace(" ", "")
    return len(letters) >= MIN_LETTERS and not letters.isdigit()


# ----------------------------------------------------------------------------------- build


@dataclass
class _Editions:
    """Everything Book-Crossing knows about one title key: weight per author, earliest year per author."""
    weight: Counter = field(default_factory=Counter)
    earliest: dict = field(default_factory=dict)
    years: dict = field(default_factory=lambda: defaultdict(set))  # author -> the years of their editions
    tie_in: set = field(default_factory=set)  # authors with an edition titled as a film tie-in


def editions_index(books: Iterable[tuple[str, str | None, int | None, int]], wanted: set[str] | None = None
                   ) -> dict[str, _Editions]:
    """Book-Crossing's books (title, author, year, interactions) by title key: for each key, each
    author's weight (interactions + 1 per edition) and earliest year. ``wanted``: only these keys."""
    out: dict[str, _Editions] = {}
    for title, author, year, n in books:
        if not isinstance(title, str) or not title.strip():
            continue
        for key in book_keys(title):
            if wanted is not None and key not in wanted:
                continue
            ed = out.setdefault(key, _Editions())
            who = author_key(author if isinstance(author, str) else None)
            ed.weight[who] += int(n) + 1
            if year is not None and (who not in ed.earliest or year < ed.earliest[who]):
                ed.earliest[who] = int(year)
            if year is not None:
                ed.years[who].add(int(year))
            if _TIE_IN.search(title):
                ed.tie_in.add(who)
    return out


def _phrase_counts(items: Sequence[CatalogItem], keys: set[str]) -> Counter:
    """How many items' title keys contain each of ``keys`` as a whole-word phrase."""
    by_token: dict[str, list[int]] = defaultdict(list)
    tokens = []
    for n, item in enumerate(items):
        toks = title_key(split_title(item.title)[0]).split()
        tokens.append(toks)
        for tok in set(toks):
            by_token[tok].append(n)
    out: Counter = Counter()
    for key in keys:
        words = key.split()
        if not words:
            continue
        for n in by_token.get(words[0], ()):
            toks = tokens[n]
            if any(toks[i:i + len(words)] == words for i in range(len(toks) - len(words) + 1)):
                out[key] += 1
    return out


def _writers(film: CatalogItem) -> list[str] | None:
    """The film's writers when its description lists them (an import's credits), else None."""
    m = _WRITTEN_BY.search(film.description or "")
    if not m:
        return None
    return [w.strip() for w in re.split(r",\s*|\s+and\s+", m.group(1)) if w.strip()]


def build_adaptations(items: Iterable[CatalogItem], editions: dict[str, _Editions] | None = None
                      ) -> AdaptationTable:
    """The film ↔ source-book pairs among ``items`` (see the module's rules). ``editions``
    (:func:`editions_index` over all of Book-Crossing) adds the earliest edition years and the
    check for other authors' books of the same title; without it, the catalogue works alone say."""
    started = time.perf_counter()
    items = list(items)
    books_by_key: dict[str, list[CatalogItem]] = defaultdict(list)
    for item in items:
        if item.domain == "book":
            for key in book_keys(item.title):
                books_by_key[key].append(item)
    left_out: Counter = Counter()
    found_pairs: list[tuple[Adaptation, str]] = []  # (pair, its title key)
    matched_films = 0
    for film in items:
        if film.domain != "movie" or film.year is None:
            continue
        key, who, rest = film_title_parts(film.title)
        tries: list[tuple[str, str]] = [(key, "older")]
        if who and rest:
            tries.insert(0, (rest, "credited"))
        found = None
        for k, rule in tries:
            books = books_by_key.get(k, [])
            if rule == "credited":  # the credited name must be the book's author
                books = [b for b in books if b.author and _surname(b.author) == _surname(who)]
            if books:
                found = (k, rule, books)
                break
        if found is None:
            continue
        matched_films += 1
        k, rule, books = found
        if not _substantial(k):
            left_out["short_title"] += 1
            continue
        authors = {author_key(b.author) for b in books}
        if len(authors) > 1:
            left_out["several_authors"] += 1
            continue
        book = max(books, key=lambda b: (b.n_ratings, b.item_id))  # one author's volumes: the most read
        who_key = author_key(book.author)
        writers = _writers(film)
        if writers is not None and book.author:
            if not any(_surname(w) == _surname(book.author) for w in writers):
                left_out["not_credited"] += 1
                continue
            rule = "credited"
        year = book.year
        ed = editions.get(k) if editions is not None else None
        if ed is not None and ed.weight:
            total = sum(ed.weight.values())
            if rule != "credited" and (total - ed.weight.get(who_key, 0)) / total > OTHER_AUTHORS_SHARE:
                left_out["title_shared"] += 1
                continue
            if ed.earliest.get(who_key) is not None:
                year = min(year, ed.earliest[who_key]) if year is not None else ed.earliest[who_key]
        if rule == "older":
            if year is None:
                left_out["no_year"] += 1
                continue
            if year >= film.year:
                left_out["book_not_older"] += 1
                continue
        # an edition sold as the film's tie-in, or published the year the film came out or the next
        tie_in = ed is not None and (who_key in ed.tie_in
                                     or any(film.year <= y <= film.year + 1 for y in ed.years.get(who_key, ())))
        found_pairs.append((Adaptation(film.item_id, book.item_id, rule, film.title, film.year, book.title,
                                       book.author, year), k, tie_in))
    # short and common titles: kept only with a tie-in edition, or for an author whose adaptation is
    # certain elsewhere (a credit, or a longer title that is no common phrase)
    counts = _phrase_counts(items, {k for _, k, _ in found_pairs})

    def generic(key: str) -> bool:
        n = counts.get(key, 0)
        return n >= VERY_GENERIC_TITLES or (len(key.split()) == 1 and n >= GENERIC_TITLES)

    def sure(pair: Adaptation, key: str, tie_in: bool) -> bool:
        return pair.rule == "credited" or tie_in or (len(key.split()) >= SURE_WORDS and not generic(key))

    sure_authors = {author_key(p.book_author) for p, k, t in found_pairs if sure(p, k, t)}
    pairs = []
    for pair, key, tie_in in found_pairs:
        if sure(pair, key, tie_in) or author_key(pair.book_author) in sure_authors:
            pairs.append(pair)
        else:
            left_out["generic_title" if generic(key) else "short_title_unsure"] += 1
    pairs.sort(key=lambda p: (p.film_id.split(":")[0], _id_order(p.film_id)))
    stats = {"pairs": len(pairs), "films": len({p.film_id for p in pairs}), "books": len({p.book_id for p in pairs}),
             "films_with_a_title_match": matched_films, "left_out": dict(sorted(left_out.items())),
             "rules": dict(sorted(Counter(p.rule for p in pairs).items())),
             "warm_films": sum(p.film_id.startswith("ml-100k:") for p in pairs),
             "book_crossing_editions": editions is not None,
             "seconds": round(time.perf_counter() - started, 2)}
    return AdaptationTable(pairs, stats)


def _id_order(item_id: str):
    local = item_id.split(":", 1)[-1]
    return (0, int(local), "") if local.isdigit() else (1, 0, local)


# ----------------------------------------------------------------------------- the cache


def adaptations_path(home: Path | str | None = None) -> Path:
    from recsys.io import data_home

    return (Path(home) if home is not None else data_home()) / "items" / FILE


def catalog_signature(items: Iterable[CatalogItem]) -> str:
    """A hash of what the table depends on: each film's and book's id, title, year and author."""
    h = hashlib.sha1()
    for item in items:
        if item.domain in ("movie", "book"):
            h.update(f"{item.item_id}\t{item.title}\t{item.year}\t{item.author}\n".encode("utf-8"))
    return h.hexdigest()[:16]


def save_adaptations(table: AdaptationTable, path: Path | str, signature: str) -> Path:
    return write_json(path, {"format": FORMAT, "version": VERSION, "catalog": signature, "stats": table.stats,
                             "pairs": [p.to_json() for p in table.pairs]}, indent=None)


def read_adaptations(path: Path | str, signature: str | None = None) -> AdaptationTable | None:
    """The cached table, or None when it is missing, unreadable, of another format or catalogue."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            return None
        if signature is not None and data.get("catalog") != signature:
            return None
        return AdaptationTable([Adaptation(**p) for p in data["pairs"]], data.get("stats") or {})
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def book_crossing_editions(home: Path | str | None, wanted: set[str]) -> dict[str, _Editions] | None:
    """:func:`editions_index` over every Book-Crossing ISBN, when the dataset is fetched (the
    catalogue was built from it); None otherwise."""
    import numpy as np
    import pandas as pd

    from recsys import datasets

    home = Path(home) if home is not None else None
    try:
        spec = datasets.get_spec("book-crossing")
        if not datasets.is_fetched(spec, home):
            return None
        data = datasets.load("book-crossing", home, progress=False)
    except Exception as exc:  # the table is still built from the catalogue alone
        log.warning("Book-Crossing editions unavailable (%s: %s): the table uses the catalogue's works alone",
                    type(exc).__name__, exc)
        return None
    counts = np.bincount(data.items, minlength=data.n_items)
    meta = data.items_meta
    years = [None if pd.isna(y) else int(y) for y in meta["year"]]
    return editions_index(zip(meta["title"], meta["author"], years, counts), wanted)


def load_adaptations(catalog: Catalog | Sequence[CatalogItem], home: Path | str | None = None,
                     rebuild: bool = False) -> AdaptationTable:
    """The table for ``catalog``: from the cache when it was built from this catalogue, else
    built (with Book-Crossing's editions when fetched) and cached atomically."""
    items = list(catalog.items if isinstance(catalog, Catalog) else catalog)
    signature = catalog_signature(items)
    path = adaptations_path(home)
    if not rebuild and (table := read_adaptations(path, signature)) is not None:
        return table
    wanted = set()
    for item in items:
        if item.domain == "movie":
            key, _, rest = film_title_parts(item.title)
            wanted |= {key, rest} - {None}
    table = build_adaptations(items, book_crossing_editions(home, wanted))
    try:
        save_adaptations(table, path, signature)
    except OSError as exc:  # a read-only data home still gets the table, just not cached
        log.warning("could not cache the adaptations table in %s: %s", path, exc)
    log.info("adaptations: %d film-book pairs (%s)", len(table), table.stats)
    return table


__all__ = ["Adaptation", "AdaptationTable", "adaptations_path", "author_key", "book_keys", "build_adaptations",
           "catalog_signature", "editions_index", "film_title_parts", "load_adaptations", "read_adaptations",
           "save_adaptations"]
