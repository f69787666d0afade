"""The item catalog: titles, the ml-100k <-> ml-latest-small movie linking, book editions,
a user's items CSV, the document text and the on-disk cache.

The linking tests use small hand-made frames of real MovieLens titles (as the loaders
store them); one test uses the real ml-100k and one (slow) builds the whole catalog.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataError, InteractionData
from tools import catalog as cat
from tools.catalog import Catalog, CatalogItem


# --------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("Godfather, The", "The Godfather"),
        ("Shawshank Redemption, The", "The Shawshank Redemption"),
        ("American Werewolf in London, An", "An American Werewolf in London"),
        ("Postino, Il", "Il Postino"),
        ("Enfer, L'", "L'Enfer"),
        ("Boot, Das", "Das Boot"),
        ("Misérables, Les", "Les Misérables"),
        ("Horseman on the Roof, The (Hussard sur le toit, Le)", "The Horseman on the Roof (Le Hussard sur le toit)"),
        ("Star Maker, The (Uomo delle stelle, L')", "The Star Maker (L'Uomo delle stelle)"),
        ("Karate Kid, Part II, The", "The Karate Kid, Part II"),
        ("Power of Nightmares, The: The Rise of the Politics of Fear",
         "The Power of Nightmares: The Rise of the Politics of Fear"),
        ("Die xue shuang xiong (Killer, The)", "Die xue shuang xiong (The Killer)"),
        # left alone: the comma is part of the title
        ("Honey, I Shrunk the Kids", "Honey, I Shrunk the Kids"),
        ("I, Robot", "I, Robot"),
        ("Paris, Texas", "Paris, Texas"),
        ("Murder, My Sweet", "Murder, My Sweet"),
        ("Star Wars: Episode IV - A New Hope", "Star Wars: Episode IV - A New Hope"),
        ("(500) Days of Summer", "(500) Days of Summer"),
    ],
)
def test_display_title_moves_articles_to_the_front(stored: str, shown: str) -> None:
    assert cat.display_title(stored) == shown


def test_title_key_ignores_articles_case_accents_punctuation() -> None:
    assert cat.title_key("Godfather, The") == cat.title_key("The Godfather") == "godfather"
    assert cat.title_key("Blood & Wine") == cat.title_key("Blood and Wine")
    assert cat.title_key("Misérables, Les") == cat.title_key("Les Miserables")
    assert cat.title_key("Twelve Monkeys") == cat.title_key("12 Monkeys")
    assert cat.split_title("Léon: The Professional (a.k.a. The Professional) (Léon)") == (
        "Léon: The Professional", ["a.k.a. The Professional", "Léon"])


# --------------------------------------------------------------------------- movie linking


def _frame(rows: list[tuple[str, str, int | None]]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [r[0] for r in rows], "title": [r[1] for r in rows],
                         "year": pd.array([r[2] for r in rows], dtype="Int64")})


# (ml-100k id, title, year) and (ml-latest-small id, title, year), real rows as the loaders
# store them; ids starting with "x" are made-up rows for cases the real data lacks.
ML100K = [
    ("50", "Star Wars", 1977),
    ("172", "Empire Strikes Back, The", 1980),
    ("127", "Godfather, The", 1972),
    ("64", "Shawshank Redemption, The", 1994),
    ("55", "Professional, The", 1994),  # Léon
    ("14", "Postino, Il", 1994),
    ("84", "Robert A. Heinlein's The Puppet Masters", 1994),
    ("228", "Star Trek: The Wrath of Khan", 1982),
    ("44", "Dolores Claiborne", 1994),  # ml-latest-small says 1995
    ("985", "Blood & Wine", 1997),  # ml-latest-small: "Blood and Wine (Blood & Wine)" 1996
    ("1536", "Aiqing wansui", 1994),
    ("6", "Shanghai Triad (Yao a yao yao dao waipo qiao)", 1995),
    ("912", "U.S. Marshalls", 1998),
    ("185", "Psycho", 1960),  # only the 1998 remake below
    ("990", "Anna Karenina", 1997),  # only the 2012 film there
    ("1250", "Best of the Best 3: No Turning Back", 1995),  # only part 2 there
    ("510", "Magnificent Seven, The", 1954),  # ml-100k's name for Seven Samurai
    ("1237", "Twisted", 1996),  # fuzzy 86 vs "Twister" (1996)
    ("61", "Three Colors: White", 1994),  # fuzzy 77 vs "Three Colors: Red" (1994)
    ("838", "In the Line of Duty 2", 1987),  # there as an a.k.a., but 1985: two years apart
    ("x1", "Police Academy", 1984),  # a sequel the same year must not link
    ("1039", "Hamlet", 1996),  # two candidates below, equally good
    ("246", "Chasing Amy", 1997),  # ml-100k lists it twice
    ("268", "Chasing Amy", 1997),
]
LATEST = [
    ("260", "Star Wars: Episode IV - A New Hope", 1977),
    ("1196", "Star Wars: Episode V - The Empire Strikes Back", 1980),
    ("858", "Godfather, The", 1972),
    ("318", "Shawshank Redemption, The", 1994),
    ("293", "Léon: The Professional (a.k.a. The Professional) (Léon)", 1994),
    ("58", "Postman, The (Postino, Il)", 1994),
    ("1726", "Postman, The", 1997),
    ("512", "Puppet Masters, The", 1994),
    ("x11", "Puppet Masters", 1995),  # a year off: only the same year counts for a dropped name
    ("x12", "The Puppet Master's Apprentice", 1994),
    ("1374", "Star Trek II: The Wrath of Khan", 1982),
    ("230", "Dolores Claiborne", 1995),
    ("1351", "Blood and Wine (Blood & Wine)", 1996),
    ("872", "Vive L'Amour (Ai qing wan sui)", 1994),
    ("30", "Shanghai Triad (Yao a yao yao dao waipo qiao)", 1995),
    ("1792", "U.S. Marshals", 1998),
    ("2389", "Psycho", 1998),
    ("97936", "Anna Karenina", 2012),
    ("4569", "Best of the Best 2", 1993),
    ("x13", "Best of the Best 3: No Turning Back", 1997),  # two years off
    ("25993", "Magnificent Obsession", 1954),
    ("736", "Twister", 1996),
    ("306", "Three Colors: Red (Trois couleurs: Rouge)", 1994),
    ("980", "Yes, Madam (a.k.a. Police Assassins) (a.k.a. In the Line of Duty 2) (Huang gu shi jie)", 1985),
    ("x14", "Police Academy 2", 1984),
    ("1411", "Hamlet", 1996),
    ("x15", "Hamlet", 1996),
    ("1639", "Chasing Amy", 1997),
]


@pytest.fixture(scope="module")
def links() -> dict[str, dict]:
    found = cat.link_movies(_frame(ML100K), _frame(LATEST))
    return {d["ml-100k"]: d for d in found}


@pytest.mark.parametrize(
    ("ml100k_id", "latest_id", "rule"),
    [
        ("50", "260", "subtitle"),
        ("172", "1196", "subtitle"),
        ("127", "858", "exact"),
        ("64", "318", "exact"),
        ("55", "293", "alternate"),
        ("14", "58", "alternate"),
        ("84", "512", "alternate"),
        ("228", "1374", "fuzzy"),
        ("44", "230", "exact_year1"),
        ("985", "1351", "exact_year1"),
        ("1536", "872", "alternate"),
        ("6", "30", "exact"),
        ("912", "1792", "fuzzy"),
        ("246", "1639", "exact"),
        ("268", "1639", "exact+duplicate"),
    ],
)
def test_hard_cases_link(links: dict[str, dict], ml100k_id: str, latest_id: str, rule: str) -> None:
    assert ml100k_id in links, f"{ml100k_id} not linked"
    assert (links[ml100k_id]["ml-latest-small"], links[ml100k_id]["rule"]) == (latest_id, rule)


@pytest.mark.parametrize("ml100k_id", ["185", "990", "1250", "510", "1237", "61", "838", "x1", "1039"])
def test_different_films_do_not_link(links: dict[str, dict], ml100k_id: str) -> None:
    assert ml100k_id not in links, links.get(ml100k_id)


def test_linking_is_one_to_one_and_reports_ties() -> None:
    ambiguous: list[dict] = []
    found = cat.link_movies(_frame(ML100K), _frame(LATEST), ambiguous=ambiguous)
    firsts = [d["ml-latest-small"] for d in found if not d["rule"].endswith("+duplicate")]
    assert len(firsts) == len(set(firsts))
    assert any(a["ml-100k"] == "1039" and set(a["ml-latest-small"]) == {"1411", "x15"} for a in ambiguous)
    # the Psycho of 1960 links once the 1960 film is there, not the 1998 remake
    again = cat.link_movies(_frame([("185", "Psycho", 1960)]),
                            _frame([("2389", "Psycho", 1998), ("1219", "Psycho", 1960)]))
    assert [(d["ml-latest-small"], d["rule"]) for d in again] == [("1219", "exact")]


def _movie_data(name: str, rows: list[tuple[str, str, int | None]], genres: list[tuple[str, ...]],
                ratings_per_item: list[int]) -> InteractionData:
    meta = _frame(rows).assign(genres=pd.Series(genres, dtype=object), domain="movie")
    items = np.repeat(np.arange(len(rows)), ratings_per_item).astype(np.int64)
    return InteractionData(name=name, user_ids=np.array(["u"], dtype=object),
                           item_ids=meta["item_id"].to_numpy(dtype=object), users=np.zeros(len(items), np.int64),
                           items=items, ratings=np.full(len(items), 4.0, np.float32), items_meta=meta)


def test_movie_items_fold_linked_titles_and_keep_the_rest_cold() -> None:
    ml100k = _movie_data("ml-100k", [("50", "Star Wars", 1977), ("127", "Godfather, The", 1972)],
                         [("Action", "Sci-Fi"), ("Crime", "Drama")], [3, 2])
    latest = _movie_data("ml-latest-small", [("260", "Star Wars: Episode IV - A New Hope", 1977),
                                             ("858", "Godfather, The", 1972), ("2571", "Matrix, The", 1999),
                                             ("9", "", None)],
                         [("Action", "Adventure", "Children"), ("Crime", "Drama"), ("Action",), ()], [1, 1, 4, 1])
    items, links, stats = cat._movie_items(ml100k, latest)
    by_id = {it.item_id: it for it in items}
    assert set(by_id) == {"ml-100k:50", "ml-100k:127", "ml-latest-small:2571"}  # untitled one skipped
    star = by_id["ml-100k:50"]
    assert star.warm and star.graph_item_id == "50" and star.n_ratings == 3
    assert star.sources == {"ml-100k": "50", "ml-latest-small": "260"}
    assert star.aliases == ("Star Wars: Episode IV - A New Hope",)
    assert star.genres == ("Action", "Sci-Fi", "Adventure", "Children's")
    godfather = by_id["ml-100k:127"]
    assert godfather.title == "The Godfather" and godfather.aliases == ()  # same title: no alias
    matrix = by_id["ml-latest-small:2571"]
    assert matrix.title == "The Matrix" and not matrix.warm and matrix.graph_item_id is None
    assert matrix.n_ratings == 4
    assert stats["warm_movies"] == 2 and stats["cold_movies"] == 1 and stats["movie_links"] == 2
    assert stats["links_by_rule"] == {"exact": 1, "subtitle": 1}
    assert stats["ml_latest_small_untitled_skipped"] == 1


def test_real_ml100k_warm_items(ml100k: InteractionData) -> None:
    items, links, stats = cat._movie_items(ml100k, None)
    catalog = Catalog(items)
    assert len(catalog) == 1682 and links == [] and all(it.warm for it in items)
    assert sum(it.n_ratings for it in items) == 100000
    assert catalog.by_graph_id("127").title == "The Godfather"
    assert catalog.by_graph_id(64).title == "The Shawshank Redemption"
    assert catalog.get("ml-100k:14").title == "Il Postino"
    assert not any(t.endswith((", The", ", A", ", An")) for t in (it.title for it in items))


# --------------------------------------------------------------------------- books


def _book_data(rows: list[tuple[str, str, str, list[float]]]) -> InteractionData:
    """(isbn, title, author, ratings); 0 = implicit."""
    meta = pd.DataFrame({
        "item_id": [r[0] for r in rows], "title": [r[1] for r in rows],
        "year": pd.array([2000 + k for k in range(len(rows))], dtype="Int64"),
        "genres": pd.Series([()] * len(rows), dtype=object), "domain": "book",
        "author": [r[2] for r in rows], "publisher": [f"Pub {k}" for k in range(len(rows))],
    })
    items = np.concatenate([np.full(len(r[3]), k) for k, r in enumerate(rows)]).astype(np.int64)
    ratings = np.concatenate([np.asarray(r[3], np.float32) for r in rows])
    return InteractionData(name="book-crossing", user_ids=np.array(["u"], dtype=object),
                           item_ids=meta["item_id"].to_numpy(dtype=object), users=np.zeros(len(items), np.int64),
                           items=items, ratings=ratings, items_meta=meta)


def test_book_editions_merge_and_the_threshold_counts_explicit_ratings() -> None:
    data = _book_data([
        ("0316666343", "The Lovely Bones: A Novel", "Alice Sebold", [9, 8, 10, 0, 0]),
        ("0316168815", "The Lovely Bones", "ALICE SEBOLD", [7, 8]),
        ("0142001740", "Lovely Bones (Large Print)", "Alice  Sebold", [6, 0]),
        ("0141301104", "The Witches (Puffin Novels)", "Roald Dahl", [8, 9, 7]),
        ("0140341536", "Witches , The", "Roald Dahl", [6, 5]),
        ("1000000001", "Beloved", "Toni Morrison", [9, 9, 9, 9, 9]),
        ("1000000002", "Beloved", "Someone Else", [5, 5, 5, 5, 5]),
        ("1591820000", "Love Hina (Book 1)", "Ken Akamatsu", [8] * 5),
        ("1591820001", "Love Hina (Book 2)", "Ken Akamatsu", [8] * 5),
        ("0000000001", "Only Implicit", "Nobody", [0] * 9),
        ("0000000002", "Too Few", "Nobody", [5, 5, 5, 5]),
    ])
    items, stats = cat._book_items(data, min_ratings=5, progress=False)
    by_id = {it.item_id: it for it in items}
    bones = by_id["book-crossing:0316666343"]  # the edition with most explicit ratings
    assert bones.title == "The Lovely Bones" and bones.author == "Alice Sebold" and bones.n_ratings == 6
    assert set(bones.editions) == {"0316168815", "0142001740"} and bones.domain == "book"
    assert bones.year == 2000 and bones.publisher == "Pub 0" and not bones.warm
    witches = by_id["book-crossing:0141301104"]
    assert witches.title == "The Witches" and witches.editions == ("0140341536",) and witches.n_ratings == 5
    assert {"book-crossing:1000000001", "book-crossing:1000000002"} <= set(by_id)  # different authors
    hina = [it for it in items if it.title.startswith("Love Hina")]
    assert sorted(it.title for it in hina) == ["Love Hina (Book 1)", "Love Hina (Book 2)"]  # volumes stay apart
    assert not any("Nobody" == it.author for it in items)
    assert stats["books"] == len(items) == 6
    assert stats["book_editions_merged"] == 3
    assert stats["book_isbns_at_threshold"] == 4  # per ISBN, before merging: Beloved x2, Love Hina x2


# --------------------------------------------------------------------------- a user's items CSV


def test_items_from_csv_ids_domains_and_cold(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,year,genres,domain,description\n"
                    "1,Dune,1965,Science Fiction|Classic,book,Desert planet politics\n"
                    "imdb:tt0133093,The Matrix,1999,Action,movie,\n"
                    "x7,Mystery Box,,,,\n", encoding="utf-8")
    items = cat.items_from_csv(path)
    assert [it.item_id for it in items] == ["custom:1", "imdb:tt0133093", "custom:x7"]
    assert [it.domain for it in items] == ["book", "movie", "item"]
    assert items[0].genres == ("Science Fiction", "Classic") and items[0].year == 1965
    assert items[0].description == "Desert planet politics" and items[1].description is None
    assert items[2].year is None and items[2].genres == ()
    assert all(not it.warm and it.graph_item_id is None for it in items)
    plain = tmp_path / "plain.csv"
    plain.write_text("item_id,title\na,Alpha\n", encoding="utf-8")
    assert [(it.item_id, it.domain) for it in cat.items_from_csv(plain)] == [("custom:a", "item")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("item_id,name\n1,Dune\n", "missing required column(s) title"),
        ("item_id,title,year\n1,Dune,1965\n2,Heat,nineteen\n", "line 3: year 'nineteen' is not an integer"),
        ("item_id,title\n1,Dune\n1,Heat\n", "line 3: duplicate item_id '1'"),
    ],
)
def test_items_from_csv_rejects_a_malformed_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "items.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        cat.items_from_csv(path)
    assert "items.csv" in str(err.value) and expected in str(err.value)


# --------------------------------------------------------------------------- document, Catalog


def test_item_document() -> None:
    movie = CatalogItem("ml-100k:127", "movie", "The Godfather", 1972, ("Crime", "Drama"), warm=True,
                        graph_item_id="127")
    assert cat.item_document(movie) == "The Godfather (1972). Movie. Genres: Crime, Drama."
    book = CatalogItem("book-crossing:0316666343", "book", "The Lovely Bones", 2002, author="Alice Sebold",
                       publisher="Little, Brown")
    assert cat.item_document(book) == "The Lovely Bones (2002). Book by Alice Sebold, published by Little, Brown."
    aka = CatalogItem("ml-100k:50", "movie", "Star Wars", 1977, ("Sci-Fi",),
                      aliases=("Star Wars: Episode IV - A New Hope",), description="  A farm boy\njoins a rebellion ")
    assert cat.item_document(aka) == ("Star Wars (1977). Movie. Genres: Sci-Fi. Also known as: Star Wars: Episode "
                                      "IV - A New Hope. A farm boy joins a rebellion.")
    assert cat.item_document(CatalogItem("custom:x", "item", "Mystery Box")) == "Mystery Box. Item."
    assert cat.item_document(CatalogItem("custom:y", "book", "Who Moved My Cheese?")) == "Who Moved My Cheese? Book."


def _small_catalog() -> Catalog:
    return Catalog([
        CatalogItem("ml-100k:50", "movie", "Star Wars", 1977, ("Action", "Sci-Fi"), warm=True, graph_item_id="50",
                    aliases=("Star Wars: Episode IV - A New Hope",),
                    sources={"ml-100k": "50", "ml-latest-small": "260"}, n_ratings=583),
        CatalogItem("ml-latest-small:2571", "movie", "The Matrix", 1999, ("Action",),
                    sources={"ml-latest-small": "2571"}),
        CatalogItem("book-crossing:0316666343", "book", "The Lovely Bones", 2002, author="Alice Sebold",
                    publisher="Little, Brown", sources={"book-crossing": "0316666343"}, n_ratings=707,
                    editions=("0316168815",)),
    ], links=[{"ml-100k": "50", "ml-latest-small": "260", "rule": "subtitle", "score": 100.0}],
        stats={"warm_movies": 1, "cold_movies": 1, "books": 1})


def test_catalog_lookup_and_add_replaces_by_id() -> None:
    catalog = _small_catalog()
    assert len(catalog) == 3 and "ml-100k:50" in catalog
    assert catalog.get("ml-100k:50").title == "Star Wars" and catalog.get("nope") is None
    assert catalog.by_graph_id("50") is catalog.get("ml-100k:50") and catalog.by_graph_id("2571") is None
    added = catalog.add([CatalogItem("custom:1", "item", "Box"), CatalogItem("ml-latest-small:2571", "movie",
                                                                             "The Matrix", 1999, ("Sci-Fi",))])
    assert added == ["custom:1", "ml-latest-small:2571"] and len(catalog) == 4
    assert catalog.get("ml-latest-small:2571").genres == ("Sci-Fi",)
    assert [it.item_id for it in catalog.items].count("ml-latest-small:2571") == 1
    assert catalog.items[1].genres == ("Sci-Fi",)  # replaced in place


# --------------------------------------------------------------------------- the cache


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    catalog = _small_catalog()
    path = cat.save_catalog(catalog, tmp_path / "items" / "catalog.jsonl")
    header = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert header["format"] == cat.CATALOG_FORMAT and header["version"] == cat.CATALOG_VERSION
    again = cat.read_catalog(path)
    assert again.items == catalog.items and again.links == catalog.links and again.stats == catalog.stats
    assert isinstance(again.get("book-crossing:0316666343").editions, tuple)
    assert not list(path.parent.glob(".*.part"))  # no temp file left behind


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> list[Path | None]:
    """build_catalog replaced by the small catalog; records each call's home."""
    calls: list[Path | None] = []

    def build(home=None, min_book_ratings=5, progress=True):
        calls.append(home)
        return _small_catalog()

    monkeypatch.setattr(cat, "build_catalog", build)
    return calls


def test_load_catalog_builds_once_then_reads_the_cache(tmp_path: Path, fake_build: list) -> None:
    first = cat.load_catalog(tmp_path, progress=False)
    assert fake_build == [tmp_path] and (tmp_path / "items" / "catalog.jsonl").is_file()
    second = cat.load_catalog(tmp_path, progress=False)
    assert fake_build == [tmp_path] and second.items == first.items


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated mid-line
        lambda text: "",  # empty
        lambda text: text.replace(f'"version": {cat.CATALOG_VERSION}', '"version": 0', 1),  # an older format
        lambda text: "\n".join(text.splitlines()[:-1]) + "\n",  # an item line lost
        lambda text: text.replace('"title"', '"titel"'),  # items that no longer fit the dataclass
    ],
    ids=["truncated", "empty", "old-version", "line-lost", "bad-item"],
)
def test_unusable_cache_is_rebuilt_with_a_warning(tmp_path: Path, fake_build: list, damage,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = cat.save_catalog(_small_catalog(), tmp_path / "items" / "catalog.jsonl")
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="tools.catalog"):
        catalog = cat.load_catalog(tmp_path, progress=False)
    assert fake_build == [tmp_path] and len(catalog) == 3
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert cat.read_catalog(path).items == catalog.items  # the rebuilt cache is good again


def test_a_binary_cache_file_is_rebuilt(tmp_path: Path, fake_build: list) -> None:
    path = tmp_path / "items" / "catalog.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert len(cat.load_catalog(tmp_path, progress=False)) == 3 and fake_build == [tmp_path]


# --------------------------------------------------------------------------- the real thing


@pytest.mark.slow
def test_real_catalog(chatrec_home: Path) -> None:
    catalog = cat.build_catalog(chatrec_home, progress=False)
    s = catalog.stats
    assert s["warm_movies"] == 1682 and 7000 < s["cold_movies"] < 8000 and 12000 < s["books"] < 14000
    assert s["links_by_rule"]["exact"] > 1300
    star = catalog.by_graph_id("50")
    assert star.sources["ml-latest-small"] == "260" and star.title == "Star Wars"
    assert catalog.get("ml-latest-small:260") is None  # folded into the warm item
    assert catalog.get("ml-latest-small:2571").title == "The Matrix"
    assert catalog.by_graph_id("127").title == "The Godfather"
    assert len({it.item_id for it in catalog.items}) == len(catalog)
    linked = [d["ml-latest-small"] for d in catalog.links if not d["rule"].endswith("+duplicate")]
    assert len(linked) == len(set(linked))
    assert all(abs(d["year"] - d["ml-latest-small_year"]) <= 1 for d in catalog.links)
