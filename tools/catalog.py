"""One catalog of items across domains: warm ml-100k movies, cold ml-latest-small movies
that ml-100k lacks, and Book-Crossing books — deduplicated, each with a text document.

INTERFACE (fixed; the store, title resolution and the bridge bench code against it):

- ``CatalogItem``: one item, see its fields.
- ``item_document(item)``: the text that is embedded for an item.
- ``build_catalog(home=None, min_book_ratings=5, progress=True) -> Catalog``.
- ``load_catalog(home=None, progress=True) -> Catalog``: cached build (under
  ``<data home>/items/catalog.jsonl``, written atomically), rebuilt if missing/corrupt.
- ``Catalog``: ``items`` (list), ``by_id`` (dict), ``links`` (dedup report), ``stats``.

Also: ``items_from_csv(path)`` / ``items_from_json(path)`` / ``items_from_file(path)`` (a
user's items file as cold items; JSON is the ReDial ``id2info.json`` shape or a list),
``save_catalog``, ``display_title`` (MovieLens "Godfather, The" -> "The Godfather"),
``link_movies`` (the ml-100k <-> ml-latest-small matcher, usable on any two items frames),
``link_items`` / ``merge_item`` (a user's movies linked to the catalogue's by the same rules,
a linked one enriching the catalogue item) and ``source_ids`` / ``source_index`` (an item's
ids in a source such as ``"redial"``, and the reverse map).

Movie dedup favours precision: a false link merges two different films, a missed link
only leaves a duplicate. Rules, tried in order on what is still unlinked on both sides
(one ml-latest-small movie per ml-100k movie, except that ml-100k's own duplicate entries
all link to the same film); years never differ by more than one:

- ``exact``: same normalised title (accents, case, punctuation, a leading article,
  ``&``/``and`` and number words ignored), same year.
- ``exact_year1``: the same, years one apart.
- ``alternate``: years at most one apart and a title or parenthesised alternate of one
  side ("a.k.a. The Professional", "Postino, Il", "Ai qing wan sui"; spaces ignored, >= 5
  letters) equals one of the other's; or, same year only, a title equals the other with a
  possessive name dropped ("Robert A. Heinlein's The Puppet Masters" = "Puppet Masters, The").
- ``subtitle``: same year, one title is one or more whole ``:`` / `` - `` segments of the
  other ("Star Wars" in "Star Wars: Episode IV - A New Hope", "Empire Strikes Back" in
  "Star Wars: Episode V - The Empire Strikes Back"); the shorter side has >= 2 words or
  >= 8 letters.
- ``fuzzy``: same year, rapidfuzz ratio >= 90 on the normalised titles and the same numbers
  on both sides (sequels), except one number on one side followed by more words
  ("Star Trek: The Wrath of Khan" = "Star Trek II: The Wrath of Khan").

A rule links only unambiguous pairs: when a title has two equally good candidates (or a
film two titles) it is left alone (``ambiguous`` in :func:`link_movies`). A link is
reported as ``rule`` (``+duplicate`` for the second entry of a film ml-100k lists twice).

Books: Book-Crossing ISBNs with explicit ratings (> 0) are grouped into works by base
title and author (see :func:`_book_items`); a work needs ``min_book_ratings`` explicit
ratings over its editions.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsys.io import atomic_open

log = logging.getLogger(__name__)

CATALOG_FORMAT = "chatrec-catalog"
CATALOG_VERSION = 2  # 2: final dedup rules; caches written by interim builds are rebuilt
CATALOG_FILE = "catalog.jsonl"


@dataclass(frozen=True)
class CatalogItem:
    item_id: str  # namespaced and stable: "ml-100k:50", "ml-latest-small:2571", "book-crossing:0440234743"
    domain: str  # "movie" | "book" | anything a user's items CSV says
    title: str  # display title, articles in front: "The Godfather"
    year: int | None = None
    genres: tuple[str, ...] = ()
    author: str | None = None  # books
    publisher: str | None = None  # books
    description: str | None = None
    warm: bool = False  # has interactions in the graph recommender's dataset
    graph_item_id: str | None = None  # the item's id in the graph model's dataset (ml-100k), None if cold
    aliases: tuple[str, ...] = ()  # other titles the item is known by (e.g. from a linked source)
    sources: dict[str, str] = field(default_factory=dict)  # {"ml-100k": "50", "ml-latest-small": "260"}
    n_ratings: int = 0
    editions: tuple[str, ...] = ()  # books: the other ISBNs merged into this item (item_id holds the main one)

    def __post_init__(self) -> None:
        # JSON gives lists; keep the sequence fields tuples so items stay hashable and comparable
        for name in ("genres", "aliases", "editions"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value or ()))
        if self.year is not None and not isinstance(self.year, int):
            object.__setattr__(self, "year", int(self.year))

    @property
    def title_year(self) -> str:
        """``"Fargo (1996)"``, or the title alone when the year is unknown."""
        return self.title + (f" ({self.year})" if self.year else "")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, row: dict) -> CatalogItem:
        return cls(**row)


# --------------------------------------------------------------------------- titles

# Articles MovieLens moves behind the title ("Godfather, The", "Postino, Il", "Enfer, L'").
# Only a whole trailing segment after the last comma counts, so "Honey, I Shrunk the Kids"
# and "I, Robot" are left alone.
_ARTICLES = ("The", "A", "An", "Le", "La", "Les", "L'", "Il", "Lo", "I", "Gli", "El", "Los", "Las", "Un",
             "Une", "Una", "Der", "Die", "Das", "Den", "Det", "De", "En", "Et", "Ett", "Het", "Ein", "Eine",
             "O", "Os", "Da")
_ART = "|".join(re.escape(a) for a in _ARTICLES)
_TRAILING_ARTICLE = re.compile(rf"^(?P<body>.*\S)\s*,\s+(?P<art>{_ART})$")
# "Power of Nightmares, The: The Rise of the Politics of Fear"
_ARTICLE_BEFORE_SUBTITLE = re.compile(r"^(?P<body>[^,:]*\S),\s+(?P<art>The|A|An)(?P<rest>:\s.*)$")
_TRAILING_GROUP = re.compile(r"\s*\(((?:[^()]|\([^()]*\))*)\)\s*$")
_AKA = re.compile(r"^\s*(?:a\.k\.a\.?|aka)\s+", re.IGNORECASE)


def split_title(title: str) -> tuple[str, list[str]]:
    """``"Seven (a.k.a. Se7en)"`` -> ``("Seven", ["a.k.a. Se7en"])``: the main title and its
    trailing parenthesised parts, in order. A title that is only parentheses stays whole."""
    main, groups = title.strip(), []
    while True:
        m = _TRAILING_GROUP.search(main)
        if not m or not main[: m.start()].strip():
            break
        groups.insert(0, m.group(1).strip())
        main = main[: m.start()].rstrip()
    return main, groups


def _front_article(segment: str) -> str:
    m = _ARTICLE_BEFORE_SUBTITLE.match(segment)
    if m:
        return f"{m['art']} {m['body']}{m['rest']}"
    m = _TRAILING_ARTICLE.match(segment)
    if m:
        art = m["art"]
        return f"{art}{'' if art.endswith(chr(39)) else ' '}{m['body']}"
    return segment


def display_title(title: str) -> str:
    """MovieLens-style ``"Horseman on the Roof, The (Hussard sur le toit, Le)"`` ->
    ``"The Horseman on the Roof (Le Hussard sur le toit)"``; other titles unchanged."""
    main, groups = split_title(title)
    return " ".join([_front_article(main)] + [f"({_front_article(g)})" for g in groups])


_LEADING_ARTICLE = re.compile(r"^(?:the|a|an|le|la|les|l'|il|lo|gli|el|los|las|un|une|una|der|die|das|den|det|"
                              r"de|en|het|ein|eine|o|os)(?:\s+|(?<=')\s*)")


_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split()) if n}


def _ascii_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def title_key(text: str) -> str:
    """Matching key: accents folded, lowercase, ``&`` -> ``and``, a leading article dropped,
    punctuation gone (``"The Godfather"`` and ``"Godfather, The"`` -> ``"godfather"``)."""
    s = _ascii_fold(_front_article(text.strip())).lower().replace("&", " and ")
    s = re.sub(r"[\u2018\u2019`´]", "'", s)
    s = _LEADING_ARTICLE.sub("", s, count=1)
    s = re.sub(r"(?<=\w)'(?=\w)", "", s)  # "antonia's" -> "antonias"
    return " ".join(_NUMBER_WORDS.get(w, w) for w in re.sub(r"[^0-9a-z]+", " ", s).split())


def title_forms(title: str, domain: str = "movie") -> list[str]:
    """The title without its trailing parentheses, then, for a film, each of them with "a.k.a."
    taken off: how people name it ("Seven (Se7en)" → "Seven", "Se7en"; "Spirited Away (Sen to
    Chihiro no kamikakushi)" → "Spirited Away", ...). A book's parentheses hold edition notes
    ("(Oprah's Book Club)"), not other titles."""
    main, groups = split_title(title)
    return [main] if domain == "book" else [main, *(_AKA.sub("", g) for g in groups)]


def _variants(title: str) -> tuple[str, list[str]]:
    """Key of the main title and keys of the alternates (:func:`title_forms`)."""
    main, *alternates = title_forms(title)
    return title_key(main), [k for k in map(title_key, alternates) if k]


_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}


def _numbers(key: str) -> frozenset[int]:
    """The numbers a title key mentions (digits, number words, roman numerals): sequels differ here."""
    out = set()
    for tok in key.split():
        if tok.isdigit():
            out.add(int(tok))
        elif tok in _ROMAN and tok != "i":  # "i" is mostly the pronoun
            out.add(_ROMAN[tok])
    return frozenset(out)


def _same_numbers(a: str, b: str) -> bool:
    """Sequels differ in their numbers: ``"police academy"`` vs ``"police academy 2"`` do not
    match. One exception: a single number on one side only that is followed by more words
    (``"star trek wrath of khan"`` vs ``"star trek ii wrath of khan"``)."""
    na, nb = _numbers(a), _numbers(b)
    if na == nb:
        return True
    if na and nb or len(na | nb) != 1:
        return False
    last = (a if na else b).split()[-1]
    return _numbers(last) != na | nb


# --------------------------------------------------------------------------- movie linking


@dataclass
class _Movie:
    item_id: str
    title: str
    year: int | None
    key: str  # the main title's key
    names: set[str]  # keys of the main title and its alternates, spaces removed
    possessive: str | None  # "Robert A. Heinlein's The Puppet Masters" -> "puppetmasters"
    segs: set[str]  # keys of every run of the main title's ":" / " - " segments


# "Robert A. Heinlein's The Puppet Masters", "Cheech and Chong's Up in Smoke": a name of 2+ words
_POSSESSIVE = re.compile(r"^(?P<who>[^\s:']+(?:\s+[^\s:']+){1,3})['\u2019]s\s+(?P<rest>.+)$")


def _movies(frame: pd.DataFrame) -> list[_Movie]:
    out = []
    for item_id, title, year in zip(frame["item_id"], frame["title"], frame["year"]):
        if not isinstance(title, str) or not title.strip():
            continue
        key, alts = _variants(title)
        main = _front_article(split_title(title)[0])
        parts = re.split(r"\s*:\s+|\s+-+\s+|:\s*$", main)
        segs = {title_key(" ".join(parts[i:j])) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}
        m = _POSSESSIVE.match(main)
        poss = title_key(m["rest"]) if m else ""
        yr = None if pd.isna(year) else int(year)
        out.append(_Movie(str(item_id), title, yr, key, {k.replace(" ", "") for k in (key, *alts)},
                          poss.replace(" ", "") if _substantial(poss) else None, segs - {"", key}))
    return out


def _contained(short: str, long: _Movie) -> bool:
    """``short`` (a key) is one or more whole ``:`` / ``-`` segments of ``long``'s title."""
    return bool(short) and short in long.segs


def _substantial(key: str) -> bool:
    return len(key.split()) >= 2 or len(key.replace(" ", "")) >= 8


def link_movies(a_frame: pd.DataFrame, b_frame: pd.DataFrame, fuzzy_threshold: float = 90.0,
                a_name: str = "ml-100k", b_name: str = "ml-latest-small",
                ambiguous: list[dict] | None = None) -> list[dict]:
    """Link the movies of items frame ``a`` (ml-100k) to those of ``b`` (ml-latest-small).

    Frames have ``item_id, title, year`` (MovieLens-style titles). Returns one dict per
    linked ``a`` item: ``{a_name: id, "title": ..., "year": ..., b_name: id, b_name+"_title":
    ..., b_name+"_year": ..., "rule": ..., "score": ...}``; see the module doc for the rules.
    ``ambiguous``, when given, receives the candidates a rule left alone because of a tie.
    """
    from rapidfuzz import fuzz

    a_movies, b_movies = _movies(a_frame), _movies(b_frame)
    # ml-100k lists some films twice under two ids: such a group links as one
    groups: dict[tuple, list[_Movie]] = defaultdict(list)
    for m in a_movies:
        groups[(m.key, m.year)].append(m)
    a_reps = [ms[0] for ms in groups.values()]
    linked_a: dict[str, tuple[_Movie, str, float]] = {}
    linked_b: set[str] = set()
    b_by_year: dict[int | None, list[_Movie]] = defaultdict(list)
    for m in b_movies:
        b_by_year[m.year].append(m)

    def near(year: int | None, spread: int) -> Iterator[_Movie]:
        if year is None:
            return
        for y in range(year - spread, year + spread + 1):
            yield from b_by_year.get(y, ())

    def accept(candidates: dict[str, list[tuple[float, _Movie]]], rule: str) -> None:
        """Greedy one-to-one on (score), skipping any a or b whose best is tied."""
        best_for_b: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for a_id, cands in candidates.items():
            for score, b in cands:
                best_for_b[b.item_id].append((score, a_id))
        for a_id, cands in sorted(candidates.items()):
            if not cands:
                continue
            cands = sorted(cands, key=lambda sb: -sb[0])
            top, b = cands[0]
            if a_id in linked_a or b.item_id in linked_b:
                continue
            margin = 2 if rule == "fuzzy" else 0
            rivals = sorted((s for s, _ in best_for_b[b.item_id]), reverse=True)
            if (len(cands) > 1 and cands[1][0] >= top - margin) or (len(rivals) > 1 and rivals[1] >= top - margin):
                # two equally good films for this title, or two titles for this film: leave it
                if ambiguous is not None:
                    ambiguous.append({a_name: a_id, "rule": rule, b_name: [c.item_id for _, c in cands],
                                      "titles": [c.title for _, c in cands]})
                continue
            linked_a[a_id] = (b, rule, round(float(top), 1))
            linked_b.add(b.item_id)

    def open_a() -> list[_Movie]:
        return [m for m in a_reps if m.item_id not in linked_a]

    def open_b(year: int | None, spread: int) -> list[_Movie]:
        return [b for b in near(year, spread) if b.item_id not in linked_b]

    # exact, then years one apart
    for rule, spread in (("exact", 0), ("exact_year1", 1)):
        cands = {a.item_id: [(100.0, b) for b in open_b(a.year, spread) if b.key == a.key] for a in open_a()}
        accept(cands, rule)
    # alternates on either side (spaces ignored: "Aiqing wansui" = "Ai qing wan sui"), and a
    # possessive name dropped ("Jackie Chan's First Strike" = "First Strike") in the same year
    cands = {}
    for a in open_a():
        out = []
        for b in open_b(a.year, 1):
            shared = [k for k in a.names & b.names if len(k) >= 5]
            if shared:
                out.append((100.0 - abs(b.year - a.year), b))
            elif b.year == a.year and ((a.possessive and a.possessive in b.names)
                                       or (b.possessive and b.possessive in a.names)):
                out.append((100.0, b))
        cands[a.item_id] = out
    accept(cands, "alternate")
    # subtitle / episode: one title contained in the other, same year
    cands = {}
    for a in open_a():
        out = []
        for b in open_b(a.year, 0):
            if _substantial(a.key) and _contained(a.key, b):
                out.append((100.0 * len(a.key) / max(len(b.key), 1), b))
            elif _substantial(b.key) and _contained(b.key, a):
                out.append((100.0 * len(b.key) / max(len(a.key), 1), b))
        cands[a.item_id] = [(100.0, b) for _, b in out]  # any two candidates are a tie: skip
    accept(cands, "subtitle")
    # fuzzy, same year
    cands = {}
    for a in open_a():
        out = []
        for b in open_b(a.year, 0):
            if not _same_numbers(a.key, b.key):
                continue
            score = fuzz.ratio(a.key, b.key)
            if score >= fuzzy_threshold:
                out.append((score, b))
        cands[a.item_id] = out
    accept(cands, "fuzzy")

    links = []
    for key_group in groups.values():
        rep = key_group[0]
        if rep.item_id not in linked_a:
            continue
        b, rule, score = linked_a[rep.item_id]
        for m in key_group:
            links.append({a_name: m.item_id, "title": m.title, "year": m.year, b_name: b.item_id,
                          f"{b_name}_title": b.title, f"{b_name}_year": b.year,
                          "rule": rule if m is rep else f"{rule}+duplicate", "score": score})
    links.sort(key=lambda d: int(d[a_name]) if str(d[a_name]).isdigit() else str(d[a_name]))
    return links


# --------------------------------------------------------------------------- books

_PAREN_TAIL = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)\s*$")
_GENERIC_SUBTITLE = re.compile(r"\s*:\s*(?:a novel|a memoir)\s*$", re.IGNORECASE)
_VOLUME = re.compile(r"(?:\b(?:book|vol|volume|no|number|part|v|bk)\.?\s*|#\s*|,\s*)(\d+)\b", re.IGNORECASE)


def _front_book_articles(title: str) -> str:
    """Book-Crossing sometimes writes "Two Princesses of Bamarre, The" or
    "A Suitable Boy : Novel, A": articles moved to the front of each ``:`` part."""
    return re.sub(r"\s*:\s*", ": ", ": ".join(_front_article(p.strip()) for p in re.split(r"\s+:\s*|:\s+", title)))


def book_base_title(title: str) -> str:
    """A book title without the trailing series/edition parentheses and a generic
    ": A Novel" subtitle, articles in front: ``"Beloved (Plume Contemporary Fiction)"`` ->
    ``"Beloved"``, ``"Witches , The"`` -> ``"The Witches"``."""
    base = title.strip()
    while True:
        stripped = _PAREN_TAIL.sub("", base)
        if stripped == base or not stripped.strip():
            break
        base = stripped
    base = _front_book_articles(base)
    return _GENERIC_SUBTITLE.sub("", base).strip() or title.strip()


def _book_key(title: str) -> str:
    """``"The Lion, the Witch, and the Wardrobe"`` -> ``"lion the witch and the wardrobe"``."""
    s = _ascii_fold(title).lower().replace("&", " and ")
    s = re.sub(r"(?<=\w)['\u2019](?=\w)", "", s)
    s = " ".join(re.sub(r"[^0-9a-z]+", " ", s).split())
    return re.sub(r"^(?:the|a|an) (?=\S)", "", s)


def _author_key(author: str) -> str:
    """``"J. K. Rowling"``, ``"J.K. Rowling"``, ``"J K ROWLING"`` -> ``"jkrowling"``."""
    return re.sub(r"[^0-9a-z]", "", _ascii_fold(author).lower())


def _book_items(data, min_ratings: int, progress: bool) -> tuple[list[CatalogItem], dict]:
    """Book-Crossing books with >= ``min_ratings`` explicit ratings, editions merged.

    Editions = same base title (series/edition parentheses and ": A Novel" dropped, articles
    in front) and same author (case, spaces and dots ignored). Where the parentheses of a
    group's members give different volume numbers ("Love Hina (Book 1)", "(Book 2)") the
    group is split by volume. The threshold applies to the merged work (sum over its
    editions); the edition with most explicit ratings (then the smallest ISBN) gives the id,
    title, year and publisher; the author is its spelling unless that is all capitals.
    The title is the base title (the full one, articles in front, for volume-split groups).
    """
    mask = data.ratings > 0 if data.ratings is not None else np.ones(len(data.items), dtype=bool)
    counts = np.bincount(data.items[mask], minlength=data.n_items)
    meta = data.items_meta.assign(n=counts)
    meta = meta[meta["n"] > 0].copy()
    meta["base"] = [book_base_title(t) for t in tqdm(meta["title"], desc="book titles", unit="book",
                                                      disable=not progress, mininterval=0.5)]
    meta["tkey"] = [_book_key(b) for b in meta["base"]]
    meta["akey"] = [_author_key(a) for a in meta["author"]]
    lone = ((meta["tkey"] == "") | (meta["akey"] == "")).to_numpy()  # never merged
    meta.loc[lone, "tkey"] = "\0" + meta.loc[lone, "item_id"]
    has_paren = [t.rstrip().endswith(")") for t in meta["title"]]
    meta["vol"] = [",".join(sorted(set(_VOLUME.findall(t[t.find("("):])))) if p else ""
                   for t, p in zip(meta["title"], has_paren)]
    numbered = meta[meta["vol"] != ""]
    nvols = numbered.groupby(["tkey", "akey"])["vol"].nunique()
    split = set(nvols.index[nvols.to_numpy() > 1])
    conflict = np.fromiter(((k, a) in split for k, a in zip(meta["tkey"], meta["akey"])), bool, len(meta))
    meta["vkey"] = np.where(conflict, meta["vol"], "")
    meta["gid"] = meta.groupby(["tkey", "akey", "vkey"], sort=False).ngroup()
    meta["total"] = meta.groupby("gid")["n"].transform("sum")
    meta = meta[meta["total"] >= min_ratings]
    meta = meta.sort_values(["gid", "n", "item_id"], ascending=[True, False, True], kind="stable")
    first = ~meta["gid"].duplicated()
    mains = meta[first.to_numpy()]
    rest = meta[~first.to_numpy()].groupby("gid", sort=False)["item_id"].agg(tuple)
    good_author = meta["author"].where([bool(a) and not (a.isupper() and len(a) > 3) for a in meta["author"]])
    author = good_author.groupby(meta["gid"]).first()  # skips NaN: the first acceptable spelling
    items = []
    for row in mains.itertuples(index=False):
        others = rest.get(row.gid, ())
        title = _front_book_articles(row.title) if row.vkey else row.base
        full = _front_book_articles(row.title)
        name = author.get(row.gid)
        name = name if isinstance(name, str) and name else (row.author or None)
        items.append(CatalogItem(
            item_id=f"book-crossing:{row.item_id}", domain="book", title=title,
            year=None if pd.isna(row.year) else int(row.year), author=name,
            publisher=row.publisher or None, warm=False, graph_item_id=None,
            aliases=(full,) if full != title else (), sources={"book-crossing": str(row.item_id)},
            n_ratings=int(row.total), editions=tuple(others),
        ))
    items.sort(key=lambda it: (-it.n_ratings, it.item_id))
    merged = sum(len(it.editions) for it in items)
    stats = {"books": len(items), "book_isbns_at_threshold": int((counts >= min_ratings).sum()),
             "book_editions_merged": merged, "books_with_several_editions": sum(bool(it.editions) for it in items),
             "book_isbns_with_explicit_ratings": int(len(lone)), "min_book_ratings": min_ratings}
    return items, stats


# --------------------------------------------------------------------------- movies


def _genres(values: Iterable[str]) -> tuple[str, ...]:
    # ml-latest-small says "Children" where ml-100k says "Children's"
    return tuple(dict.fromkeys("Children's" if g == "Children" else g for g in values))


def _rating_counts(data) -> np.ndarray:
    return np.bincount(data.items, minlength=data.n_items)


def _movie_items(ml100k, mls) -> tuple[list[CatalogItem], list[dict], dict]:
    """Warm ml-100k movies (with linked ml-latest-small titles folded in) and the cold
    ml-latest-small movies ml-100k lacks. ``mls`` may be None (ml-100k only)."""
    a_meta = ml100k.items_meta
    b_meta = mls.items_meta if mls is not None else a_meta.iloc[:0]
    ambiguous: list[dict] = []
    links = link_movies(a_meta, b_meta, ambiguous=ambiguous) if mls is not None else []
    link_of = {d["ml-100k"]: d for d in links}
    b_rows = {iid: i for i, iid in enumerate(b_meta["item_id"])}
    a_counts = _rating_counts(ml100k)
    items = []
    for i, row in enumerate(a_meta.itertuples(index=False)):
        iid = str(row.item_id)
        title = display_title(row.title)
        genres, aliases, sources = _genres(row.genres), (), {"ml-100k": iid}
        link = link_of.get(iid)
        if link is not None:
            b = b_meta.iloc[b_rows[link["ml-latest-small"]]]
            sources["ml-latest-small"] = link["ml-latest-small"]
            other = display_title(b["title"])
            if other.lower() != title.lower():
                aliases = (other,)
            genres = _genres([*genres, *b["genres"]])
        items.append(CatalogItem(
            item_id=f"ml-100k:{iid}", domain="movie", title=title,
            year=None if pd.isna(row.year) else int(row.year), genres=genres, warm=True, graph_item_id=iid,
            aliases=aliases, sources=sources, n_ratings=int(a_counts[i]),
        ))
    n_cold = skipped = 0
    if mls is not None:
        linked = {d["ml-latest-small"] for d in links}
        b_counts = _rating_counts(mls)
        for j, row in enumerate(b_meta.itertuples(index=False)):
            iid = str(row.item_id)
            if iid in linked:
                continue
            if not str(row.title).strip():
                skipped += 1
                continue
            items.append(CatalogItem(
                item_id=f"ml-latest-small:{iid}", domain="movie", title=display_title(row.title),
                year=None if pd.isna(row.year) else int(row.year), genres=_genres(row.genres), warm=False,
                sources={"ml-latest-small": iid}, n_ratings=int(b_counts[j]),
            ))
            n_cold += 1
    rules = Counter(d["rule"] for d in links)
    stats = {"warm_movies": len(a_meta), "cold_movies": n_cold, "movie_links": len(links),
             "links_by_rule": dict(sorted(rules.items())), "movie_links_left_ambiguous": len(ambiguous),
             "ml_latest_small_untitled_skipped": skipped}
    for amb in ambiguous:
        log.debug("movie link left ambiguous: %s", amb)
    return items, links, stats


# --------------------------------------------------------------------------- the catalog


class Catalog:
    """The items, indexed by id and by ml-100k id, with the dedup report and counts."""

    def __init__(self, items: Iterable[CatalogItem] = (), links: list[dict] | None = None,
                 stats: dict | None = None) -> None:
        self.items: list[CatalogItem] = []
        self.by_id: dict[str, CatalogItem] = {}
        self._by_graph: dict[str, CatalogItem] = {}
        self.links: list[dict] = list(links or [])
        self.stats: dict = dict(stats or {})
        self.add(items)

    def add(self, items: Iterable[CatalogItem]) -> list[str]:
        """Add run-time items (e.g. a user's CSV); an item whose id is already here replaces it
        in place. Returns the ids added or replaced."""
        done = []
        positions = None
        for item in items:
            if not isinstance(item, CatalogItem):
                raise TypeError(f"expected CatalogItem, got {type(item).__name__}")
            old = self.by_id.get(item.item_id)
            if old is not None:
                if positions is None:
                    positions = {it.item_id: k for k, it in enumerate(self.items)}
                self.items[positions[item.item_id]] = item
                if old.graph_item_id is not None and self._by_graph.get(old.graph_item_id) is old:
                    del self._by_graph[old.graph_item_id]
            else:
                if positions is not None:
                    positions[item.item_id] = len(self.items)
                self.items.append(item)
            self.by_id[item.item_id] = item
            if item.graph_item_id is not None:
                self._by_graph.setdefault(item.graph_item_id, item)
            done.append(item.item_id)
        return done

    def get(self, item_id: str) -> CatalogItem | None:
        return self.by_id.get(item_id)

    def by_graph_id(self, graph_item_id: str | int) -> CatalogItem | None:
        """The item whose ml-100k id is ``graph_item_id`` ("50" or 50)."""
        return self._by_graph.get(str(graph_item_id))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[CatalogItem]:
        return iter(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.by_id

    def __repr__(self) -> str:
        return f"Catalog({len(self)} items)"


def build_catalog(home: Path | str | None = None, min_book_ratings: int = 5, progress: bool = True) -> Catalog:
    """ml-100k (warm) + ml-latest-small movies ml-100k lacks (cold) + Book-Crossing books with
    >= ``min_book_ratings`` explicit ratings (editions merged). Datasets are fetched if needed."""
    from recsys.datasets import load

    home = Path(home) if home is not None else None
    started = time.perf_counter()
    steps = ["load ml-100k", "load ml-latest-small", "link movies", "load book-crossing", "merge books"]
    with tqdm(total=len(steps), desc="catalog", unit="step", disable=not progress) as bar:
        def step(k: int) -> None:
            bar.set_postfix_str(steps[k])
            if k:
                bar.update(1)

        step(0)
        ml100k = load("ml-100k", home=home, progress=progress)
        step(1)
        mls = load("ml-latest-small", home=home, progress=progress)
        step(2)
        movies, links, movie_stats = _movie_items(ml100k, mls)
        step(3)
        bx = load("book-crossing", home=home, progress=progress)
        step(4)
        books, book_stats = _book_items(bx, min_book_ratings, progress=progress)
        bar.update(1)
    stats = {**movie_stats, **book_stats, "items": len(movies) + len(books),
             "build_seconds": round(time.perf_counter() - started, 2)}
    log.info("catalog built in %.1fs: %d warm movies, %d cold movies (%d linked: %s), %d books "
             "(%d editions merged)", stats["build_seconds"], stats["warm_movies"], stats["cold_movies"],
             stats["movie_links"], stats["links_by_rule"], stats["books"], stats["book_editions_merged"])
    return Catalog(movies + books, links=links, stats=stats)


# --------------------------------------------------------------------------- a user's items


def items_from_csv(path: Path | str, source: str = "custom") -> list[CatalogItem]:
    """A user's items CSV (``item_id,title[,year][,genres][,domain][,description]``) as cold
    items. Invalid files raise :class:`recsys.data.DataError` (file, line, problem) and
    nothing is returned. Ids become ``<source>:<item_id>`` (``custom:...``) unless they already
    contain ``:``; ``sources`` is ``{source: item_id}``."""
    from recsys.datasets import load_items_csv

    source = check_source(source)

    frame = load_items_csv(path)
    items = []
    for row in frame.to_dict("records"):
        iid = str(row["item_id"])
        desc = row.get("description")
        author = row.get("author")
        publisher = row.get("publisher")
        year = row.get("year")
        items.append(CatalogItem(
            item_id=iid if ":" in iid else f"{source}:{iid}", domain=str(row.get("domain") or "item"),
            title=str(row["title"]), year=None if year is None or pd.isna(year) else int(year),
            genres=tuple(row.get("genres") or ()), author=author or None, publisher=publisher or None,
            description=desc or None, warm=False, graph_item_id=None, sources={source: iid},
        ))
    log.info("%s: %d item(s)", Path(path).name, len(items))
    return items


_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_source(source: str) -> str:
    """A source name for item ids (``<source>:<id>``): letters, digits, ``.``, ``_``, ``-``."""
    from recsys.data import DataError

    if not isinstance(source, str) or not _SOURCE_NAME.match(source):
        raise DataError(f"{source!r} is not a usable source name (letters, digits, '.', '_', '-')")
    return source


# --------------------------------------------------------------------------- a user's items JSON

# "Pari (1995)": the year MovieLens and ReDial write after the title
_NAME_YEAR = re.compile(r"^(?P<title>.*?\S)\s*\((?P<year>\d{4})\)\s*$")
_TEXT_FIELDS = ("plot", "description", "author", "publisher", "domain")
_LIST_FIELDS = ("genre", "genres", "director", "writer", "star", "stars", "cast")
_CREDIT_FIELDS = ("director", "writer", "star", "stars", "cast")


@functools.lru_cache(maxsize=1)
def _catalogue_genres() -> dict[str, str]:
    """lower-case name → the catalogue's spelling (built once: an import reads thousands of genres)."""
    from tools.vocabulary import GENRES

    return {g.catalogue.lower(): g.catalogue for g in GENRES} | {"children": "Children's", "imax": "IMAX"}


def catalogue_genre(name: str) -> str:
    """A genre as the catalogue spells it: ``"sci-fi"`` -> ``"Sci-Fi"``, ``"children"`` ->
    ``"Children's"``, ``"film-noir"`` -> ``"Film-Noir"``; others title-cased per word and per
    hyphenated part (``"talk-show"`` -> ``"Talk-Show"``, ``"reality-tv"`` -> ``"Reality-TV"``)."""
    text = " ".join(name.split())
    known = _catalogue_genres()
    if text.lower() in known:
        return known[text.lower()]
    caps = {"tv": "TV", "imax": "IMAX"}
    return " ".join("-".join(caps.get(p.lower(), p[:1].upper() + p[1:].lower()) for p in word.split("-"))
                    for word in text.split(" "))


def _people(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def credits_text(director: Sequence[str] = (), writer: Sequence[str] = (), star: Sequence[str] = ()) -> str:
    """``"Directed by A. Written by B and C. Starring D, E and F."`` (empty parts left out)."""
    parts = [f"{label} {_people(names)}." for label, names in
             (("Directed by", director), ("Written by", writer), ("Starring", star)) if names]
    return " ".join(parts)


class _Pairs(list):
    """A JSON object as its (key, value) pairs, so duplicate keys can be reported."""


def _read_json(path: Path):
    from recsys.data import DataError

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path.name}: not UTF-8 (byte {e.start})") from e
    if not text.strip():
        raise DataError(f"{path.name}: file is empty (expected a JSON object of items or a list of items)")
    try:
        return json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as e:
        raise DataError(f"{path.name}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from e


def _strings(value, what: str) -> list[str]:
    """A list of non-empty strings from a list or a single string (``None`` -> ``[]``)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings, got {json.dumps(_plain(value), ensure_ascii=False)[:80]}")
    return [" ".join(v.split()) for v in value if v.strip()]


def _plain(value):
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _json_item(iid: str, entry: dict, source: str) -> CatalogItem:
    """One entry of an items JSON as a cold item; problems raise ValueError (the reason)."""
    name = entry.get("title", entry.get("name"))
    if not isinstance(name, str) or not name.strip():
        raise ValueError("no title (a non-empty \"name\" or \"title\" string)")
    name = " ".join(name.split())
    year = entry.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ValueError(f"year {year!r} is not an integer")
    m = _NAME_YEAR.match(name)
    if m:
        if year is not None and year != int(m["year"]):
            raise ValueError(f"year {year} but the title says {m['year']}")
        name, year = m["title"], int(m["year"])
    if year is not None and not 1800 <= year <= 2100:
        raise ValueError(f"year {year} is out of range (1800-2100)")
    for f in _TEXT_FIELDS:
        if entry.get(f) is not None and not isinstance(entry[f], str):
            raise ValueError(f"{f} must be a string, got {json.dumps(_plain(entry[f]), ensure_ascii=False)[:80]}")
    lists = {f: _strings(entry.get(f), f) for f in _LIST_FIELDS}
    # one string of genres is "|"-separated, as in an items CSV
    genres = tuple(dict.fromkeys(catalogue_genre(g) for gs in lists["genre"] + lists["genres"]
                                 for g in gs.split("|") if g.strip()))
    stars = lists["star"] + lists["stars"] + lists["cast"]
    plot = " ".join((entry.get("plot") or entry.get("description") or "").split())
    if plot and not plot.endswith((".", "!", "?")):
        plot += "."
    description = " ".join(p for p in (plot, credits_text(lists["director"], lists["writer"], stars)) if p)
    domain = (entry.get("domain") or "").strip() or ("movie" if any(entry.get(f) is not None for f in _CREDIT_FIELDS)
                                                     else "item")
    return CatalogItem(
        item_id=iid if ":" in iid else f"{source}:{iid}", domain=domain, title=display_title(name), year=year,
        genres=genres, author=(entry.get("author") or "").strip() or None,
        publisher=(entry.get("publisher") or "").strip() or None, description=description or None, warm=False,
        graph_item_id=None, sources={source: iid},
    )


def items_from_json(path: Path | str, source: str = "custom") -> list[CatalogItem]:
    """A user's items JSON as cold items: an object ``{id: entry, ...}`` (the ReDial
    ``id2info.json`` shape) or a list of entries that each carry ``"item_id"`` (or ``"id"``).

    An entry: ``"name"`` or ``"title"`` (required; a trailing ``" (1995)"`` is the year, and
    MovieLens-style ``"Matrix, The"`` becomes ``"The Matrix"``), and optionally ``"year"``,
    ``"genre"``/``"genres"`` (a list, or one ``|``-separated string; title-cased as the
    catalogue spells them: ``"sci-fi"`` -> ``"Sci-Fi"``), ``"plot"``/``"description"``, ``"director"``, ``"writer"``,
    ``"star"``/``"stars"``/``"cast"`` (lists of names, or one string), ``"author"``,
    ``"publisher"``, ``"domain"``. Other fields (``"imdb_id"``) are ignored. The description
    is the plot followed by ``"Directed by …. Written by …. Starring …."``. The domain is the
    entry's ``"domain"``, else ``"movie"`` when it has film credits (director/writer/stars),
    else ``"item"``. Ids become ``<source>:<id>`` unless they contain ``:``; ``sources`` is
    ``{source: id}``. Any problem raises :class:`recsys.data.DataError` naming the file, the
    entry and the reason, and nothing is returned."""
    from recsys.data import DataError

    path = Path(path)
    source = check_source(source)
    data = _read_json(path)
    entries: list[tuple[str, str, object]] = []  # (id, how an error names the entry, entry)
    if isinstance(data, _Pairs):
        seen: set[str] = set()
        for key, entry in data:
            if key in seen:
                raise DataError(f"{path.name}: entry {key!r}: duplicate item id")
            seen.add(key)
            entries.append((key, f"entry {key!r}", entry))
    elif isinstance(data, list):
        seen = {}
        for n, entry in enumerate(data, 1):
            raw = dict(entry).get("item_id", dict(entry).get("id")) if isinstance(entry, _Pairs) else None
            if isinstance(raw, bool) or not isinstance(raw, (str, int)):
                raise DataError(f"{path.name}: entry {n}: no item id (an \"item_id\" or \"id\" string or integer)")
            key = str(raw)
            if key in seen:
                raise DataError(f"{path.name}: entry {n}: duplicate item id {key!r} (first in entry {seen[key]})")
            seen[key] = n
            entries.append((key, f"entry {n} ({key!r})", entry))
    else:
        raise DataError(f"{path.name}: expected a JSON object {{id: item}} or a list of items, "
                        f"got {type(data).__name__}")
    if not entries:
        raise DataError(f"{path.name}: no items")
    items, ignored = [], Counter()
    for key, where, entry in entries:
        if not key.strip():
            raise DataError(f"{path.name}: {where}: empty item id")
        if not isinstance(entry, _Pairs):
            raise DataError(f"{path.name}: {where}: expected an object, got {type(entry).__name__}")
        fields = [k for k, _ in entry]
        dup = next((k for k, c in Counter(fields).items() if c > 1), None)
        if dup is not None:
            raise DataError(f"{path.name}: {where}: field {dup!r} given twice")
        try:
            items.append(_json_item(key.strip(), dict(entry), source))
        except ValueError as e:
            raise DataError(f"{path.name}: {where}: {e}") from None
        ignored.update(set(fields) - {"title", "name", "year", "item_id", "id", *_TEXT_FIELDS, *_LIST_FIELDS})
    if ignored:
        log.info("%s: ignored field(s) %s", path.name, ", ".join(sorted(ignored)))
    log.info("%s: %d item(s)", path.name, len(items))
    return items


ITEM_FILE_TYPES = {".csv": items_from_csv, ".json": items_from_json}


def items_from_file(path: Path | str, source: str = "custom") -> list[CatalogItem]:
    """A user's items file, by its extension: ``.csv`` (:func:`items_from_csv`) or ``.json``
    (:func:`items_from_json`)."""
    from recsys.data import DataError

    path = Path(path)
    reader = ITEM_FILE_TYPES.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path.name}: unknown items file type {path.suffix or '(none)'!r}; "
                        f"expected {' or '.join(ITEM_FILE_TYPES)}")
    return reader(path, source=source)


# --------------------------------------------------------------------------- linking added movies


def _link_title(item: CatalogItem) -> str:
    """The title the linker sees: the item's title with its other titles as parenthesised
    alternates (as MovieLens writes them), so "Star Wars" is also "Star Wars: Episode IV - A New Hope"."""
    alts = []
    for alias in item.aliases:
        main, groups = split_title(alias)
        alts += [t for t in (main, *groups) if t and "(" not in t and ")" not in t]
    alts = [a for a in dict.fromkeys(alts) if a.lower() != item.title.lower()]
    return item.title + "".join(f" ({a})" for a in alts)


def link_items(new: Sequence[CatalogItem], known: Iterable[CatalogItem],
               ambiguous: list[dict] | None = None) -> dict[str, tuple[str, str]]:
    """Which of the ``new`` movies are ``known`` movies already (e.g. catalogue movies):
    ``{new item_id: (known item_id, rule)}``, by :func:`link_movies`' rules (precision first:
    ties are left out and reported in ``ambiguous``).
    Several ``new`` entries of one film (same title and year) link to the same known item.
    Only ``domain == "movie"`` items take part; the known items' aliases count as alternates, and
    a film one source lists twice (same title and year) is its most rated entry.
    A movie without a year links only when its title is one known movie's and no entry of
    ``new`` dates that title in another year (ReDial lists "Zootopia" with no year: the known
    "Zootopia" (2016) is it; its "It" could be 1990 or 2017, so it stays apart)."""
    new = [it for it in new if it.domain == "movie"]
    known = _one_entry_per_title([it for it in known if it.domain == "movie" and it.year is not None])
    undated = [it for it in new if it.year is None]
    new = [it for it in new if it.year is not None]
    if not (new or undated) or not known:
        return {}
    links = _dated_links(new, known, ambiguous) if new else {}
    years_in_new: dict[str, set[int]] = defaultdict(set)
    for it in new:
        years_in_new[title_key(it.title)].add(it.year)
    known_by_title: dict[str, list[CatalogItem]] = defaultdict(list)
    for it in known:  # by each of its titles: "Spirited Away (Sen to Chihiro no kamikakushi)" is "Spirited Away"
        keys = set()
        for name in (it.title, *it.aliases):
            main, alternates = _variants(name)
            keys.update((main, *alternates))
        for key in keys - {""}:
            known_by_title[key].append(it)
    for it in undated:
        key = title_key(it.title)
        same = known_by_title.get(key, [])
        if len(same) == 1 and years_in_new[key] <= {same[0].year}:
            links[it.item_id] = (same[0].item_id, "title_only_unique")
    return links


def _one_entry_per_title(known: Sequence[CatalogItem]) -> list[CatalogItem]:
    """``known`` with a title and year its source lists twice kept once, as its most rated entry:
    a new entry of that title is that film, not a tie left unlinked. Mostly one film under two
    ids (ml-100k's "Fly Away Home" (1996) as 304 and 500, "Chasing Amy" as 246 and 268); where
    they are two films (ml-latest-small's "War of the Worlds" (2005): Spielberg's, rated 40
    times, and a namesake rated once) the most rated is the one people mean."""
    first: dict[tuple, CatalogItem] = {}
    for it in sorted(known, key=lambda it: -it.n_ratings):
        first.setdefault((it.item_id.split(":", 1)[0], title_key(it.title), it.year), it)
    kept = {id(it) for it in first.values()}
    return [it for it in known if id(it) in kept]


def _dated_links(new: Sequence[CatalogItem], known: Sequence[CatalogItem],
                 ambiguous: list[dict] | None) -> dict[str, tuple[str, str]]:
    """:func:`link_items` for movies that have a year (:func:`link_movies`' rules)."""
    a = pd.DataFrame({"item_id": [it.item_id for it in new], "title": [it.title for it in new],
                      "year": [it.year for it in new]})
    b = pd.DataFrame({"item_id": [it.item_id for it in known], "title": [_link_title(it) for it in known],
                      "year": [it.year for it in known]})
    found = link_movies(a, b, a_name="new", b_name="known", ambiguous=ambiguous)
    return {d["new"]: (d["known"], d["rule"]) for d in found}


def merge_item(item: CatalogItem, others: Sequence[CatalogItem], source: str) -> CatalogItem:
    """``item`` enriched with what ``others`` (entries of a source that are the same item)
    say: ``sources[source]`` = their ids (``|``-joined when several), their genres, titles (as
    aliases) and description (appended unless already there), author/publisher where ``item``
    has none. Id, title, year, warm, graph id and rating count stay. Idempotent: merging the
    same entries again changes nothing."""
    ids = [o.sources.get(source) or o.item_id for o in others]
    genres = _genres([*item.genres, *(g for o in others for g in o.genres)])
    seen = {item.title.lower(), *(a.lower() for a in item.aliases)}
    aliases = list(item.aliases)
    for o in others:
        if o.title.lower() not in seen:
            aliases.append(o.title)
            seen.add(o.title.lower())
    description = " ".join((item.description or "").split())
    extra = next((" ".join(o.description.split()) for o in others if o.description and o.description.strip()), "")
    if extra and extra not in description:
        description = f"{description} {extra}".strip()
    return dataclasses.replace(
        item, genres=genres, aliases=tuple(aliases), description=description or None,
        author=item.author or next((o.author for o in others if o.author), None),
        publisher=item.publisher or next((o.publisher for o in others if o.publisher), None),
        sources={**item.sources, source: "|".join(dict.fromkeys(ids))})


def source_ids(item: CatalogItem, source: str) -> tuple[str, ...]:
    """The ids ``item`` has in ``source`` (``()`` if none): ``sources`` holds one id, or several
    ``|``-joined when the source lists one film more than once."""
    value = item.sources.get(source)
    return tuple(value.split("|")) if value else ()


def source_index(catalog: Iterable[CatalogItem], source: str) -> dict[str, str]:
    """``{id in source: catalogue item_id}`` for every catalogue item that ``source`` lists
    (linked items such as ``"ml-100k:50"`` and the source's own ones such as ``"redial:123"``);
    the other way round is :func:`source_ids`."""
    return {sid: item.item_id for item in catalog for sid in source_ids(item, source)}


# --------------------------------------------------------------------------- the document


def item_document(item: CatalogItem) -> str:
    """The text embedded for ``item``: title (year), domain, genres or author/publisher,
    other titles and description. ``"The Godfather (1972). Movie. Genres: Crime, Drama."``"""
    head = item.title.strip() + (f" ({item.year})" if item.year else "")
    parts = [head if head.endswith((".", "!", "?")) else head + "."]
    kind = (item.domain or "item").strip().capitalize()
    if item.author and item.publisher:
        parts.append(f"{kind} by {item.author}, published by {item.publisher}.")
    elif item.author:
        parts.append(f"{kind} by {item.author}.")
    elif item.publisher:
        parts.append(f"{kind}, published by {item.publisher}.")
    else:
        parts.append(f"{kind}.")
    if item.genres:
        parts.append(f"Genres: {', '.join(item.genres)}.")
    aliases = [a for a in item.aliases if a and a != item.title]
    if aliases:
        parts.append(f"Also known as: {'; '.join(aliases)}.")
    if item.description and item.description.strip():
        desc = " ".join(item.description.split())
        parts.append(desc if desc.endswith((".", "!", "?")) else desc + ".")
    return " ".join(parts)


# --------------------------------------------------------------------------- the cache


def catalog_path(home: Path | str | None = None) -> Path:
    from recsys.io import data_home

    return (Path(home) if home is not None else data_home()) / "items" / CATALOG_FILE


def save_catalog(catalog: Catalog, path: Path | str) -> Path:
    """JSON lines: a header (format, version, counts, stats, links), then one item a line.
    Written to a temp file in the same directory and renamed, so readers never see half."""
    path = Path(path)
    header = {"format": CATALOG_FORMAT, "version": CATALOG_VERSION, "n_items": len(catalog),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "stats": catalog.stats, "links": catalog.links}
    with atomic_open(path) as f:
        f.write(json.dumps(header, ensure_ascii=False) + "\n")
        for item in catalog.items:
            f.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
    return path


class CatalogCacheError(ValueError):
    """A catalog cache file that cannot be used (corrupt, truncated, other format)."""


def read_catalog(path: Path | str) -> Catalog:
    """Read a file written by :func:`save_catalog`; any problem raises :class:`CatalogCacheError`."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            header = json.loads(f.readline())
            if not isinstance(header, dict) or header.get("format") != CATALOG_FORMAT:
                raise CatalogCacheError(f"{path}: not a {CATALOG_FORMAT} file")
            if header.get("version") != CATALOG_VERSION:
                raise CatalogCacheError(f"{path}: format version {header.get('version')!r}, "
                                        f"expected {CATALOG_VERSION}")
            items = [CatalogItem.from_json(json.loads(line)) for line in f if line.strip()]
    except CatalogCacheError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as e:
        raise CatalogCacheError(f"{path}: unreadable catalog: {e}") from e
    if len(items) != header.get("n_items"):
        raise CatalogCacheError(f"{path}: {len(items)} items, header says {header.get('n_items')} (truncated?)")
    return Catalog(items, links=header.get("links") or [], stats=header.get("stats") or {})


def load_catalog(home: Path | str | None = None, progress: bool = True) -> Catalog:
    """The catalog from ``<data home>/items/catalog.jsonl``; built (and cached) when that is
    missing, and rebuilt with a warning when it is corrupt or of another format version."""
    path = catalog_path(home)
    if path.exists():
        try:
            catalog = read_catalog(path)
            log.info("catalog: %d items from %s", len(catalog), path)
            return catalog
        except CatalogCacheError as e:
            log.warning("catalog cache unusable, rebuilding: %s", e)
    catalog = build_catalog(home, progress=progress)
    save_catalog(catalog, path)
    log.info("catalog: %d items cached in %s", len(catalog), path)
    return catalog


__all__ = [
    "Catalog", "CatalogCacheError", "CatalogItem", "build_catalog", "catalog_path", "catalogue_genre",
    "check_source", "credits_text", "display_title", "item_document", "items_from_csv", "items_from_file",
    "items_from_json", "link_items", "link_movies", "load_catalog", "merge_item", "read_catalog", "save_catalog",
    "source_ids", "source_index", "split_title", "title_forms", "title_key",
]
