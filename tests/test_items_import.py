"""Importing a user's items JSON (the ReDial ``id2info.json`` shape) through the normal add
path: validation (all or nothing), linking the movies to the catalogue's own (precision first:
a linked movie enriches the catalogue item, no duplicate), and idempotence.

The fixtures are tiny JSON files written here; the catalogue is the real ``catalog_slice``
(plus ml-100k's two "Chasing Amy" entries, one film under two ids) and the store a real one in a temp dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from recsys.data import DataError
from tools.catalog import (Catalog, CatalogItem, catalog_path, catalogue_genre, item_document, items_from_json,
                           link_items, load_catalog, merge_item, save_catalog, source_ids, source_index)
from tools.items import add_items, added_path, open_catalog, open_store

MODEL_FIXTURES = {"home"}  # tests using it are marked model (conftest): it builds a store

N_ITEMS = 30  # the slice's first rows: Godfather, Toy Story, Jurassic Park, Psycho ... and namesake books

ENTRIES = {
    # matches ml-100k:1 (warm)
    "100001": {"name": "Toy Story (1995)", "genre": ["animation", "comedy", "family"],
               "plot": "A cowboy doll is threatened by a new spaceman figure", "director": ["John Lasseter"],
               "writer": ["John Lasseter", "Pete Docter"], "star": ["Tom Hanks", "Tim Allen", "Don Rickles"],
               "imdb_id": "tt0114709"},
    # matches ml-latest-small:78499 (cold), MovieLens-style trailing article absent
    "100002": {"name": "Toy Story 3 (2010)", "genre": ["animation", "adventure"],
               "plot": "The toys are mistakenly delivered to a day-care center.", "director": ["Lee Unkrich"],
               "writer": [], "star": ["Tom Hanks"], "imdb_id": "tt0435761"},
    # "Godfather, The" style title: matches the film ml-100k:127, never the book of the same name
    "100003": {"name": "Godfather, The (1972)", "genre": ["crime", "drama"], "plot": "",
               "director": ["Francis Ford Coppola"], "writer": [], "star": [], "imdb_id": "tt0068646"},
    # not in the catalogue: a new cold item
    "100004": {"name": "Pari (1995)", "genre": ["drama", "sci-fi"],
               "plot": "Haunted by a book found in her dead brother's room, Pari wanders around.",
               "director": ["Dariush Mehrjui"], "writer": ["J.D. Salinger"], "star": ["Niki Karimi"],
               "imdb_id": "tt0114092"},
    # no year, but the one known film of its title and not dated otherwise in the file: ml-100k:82
    "100005": {"name": "Jurassic Park", "genre": ["adventure"], "plot": "Dinosaurs.", "director": [],
               "writer": [], "star": [], "imdb_id": "tt0107290"},
    # ml-100k lists Chasing Amy twice (246, 268): one film, linked to its most rated id (268)
    "100006": {"name": "Chasing Amy (1997)", "genre": ["comedy"], "plot": "", "director": ["Kevin Smith"],
               "writer": [], "star": [], "imdb_id": "tt0118842"},
    # two entries of one film (ReDial has such): both link to ml-latest-small:2389
    "100007": {"name": "Psycho (1998)", "genre": ["horror"], "plot": "A shot-for-shot remake.",
               "director": ["Gus Van Sant"], "writer": [], "star": ["Vince Vaughn"], "imdb_id": "tt0155975"},
    "100008": {"name": "Psycho (1998)", "genre": ["thriller"], "plot": "A shot-for-shot remake.",
               "director": ["Gus Van Sant"], "writer": [], "star": ["Vince Vaughn"], "imdb_id": "tt0155975"},
}


def _write(path: Path, value) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value, indent=1), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- reading (no store)


def test_items_from_json_reads_the_redial_shape(tmp_path: Path) -> None:
    items = items_from_json(_write(tmp_path / "id2info.json", ENTRIES), source="redial")
    by_id = {it.item_id: it for it in items}
    assert list(by_id) == [f"redial:{k}" for k in ENTRIES]
    toy = by_id["redial:100001"]
    assert (toy.title, toy.year, toy.domain, toy.warm, toy.sources) == ("Toy Story", 1995, "movie", False,
                                                                        {"redial": "100001"})
    assert toy.genres == ("Animation", "Comedy", "Family")
    assert toy.description == ("A cowboy doll is threatened by a new spaceman figure. Directed by John Lasseter. "
                               "Written by John Lasseter and Pete Docter. Starring Tom Hanks, Tim Allen and Don Rickles.")
    assert "Starring Tom Hanks" in item_document(toy)
    assert (by_id["redial:100003"].title, by_id["redial:100003"].year) == ("The Godfather", 1972)
    assert by_id["redial:100003"].description == "Directed by Francis Ford Coppola."
    assert (by_id["redial:100005"].title, by_id["redial:100005"].year) == ("Jurassic Park", None)
    assert by_id["redial:100004"].genres == ("Drama", "Sci-Fi")


def test_items_from_json_list_form_default_source_and_domain(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.json", [
        {"item_id": "a", "title": "Dune", "year": 1965, "genres": "Science Fiction|classic", "domain": "book",
         "author": "Frank Herbert"},
        {"id": 7, "title": "Mystery Box"},
        {"id": "imdb:tt0133093", "name": "Matrix, The (1999)", "cast": "Keanu Reeves"},
    ])
    items = items_from_json(path)
    assert [(it.item_id, it.domain, it.title, it.year) for it in items] == [
        ("custom:a", "book", "Dune", 1965), ("custom:7", "item", "Mystery Box", None),
        ("imdb:tt0133093", "movie", "The Matrix", 1999)]
    assert items[0].author == "Frank Herbert" and items[0].genres == ("Science Fiction", "Classic")
    assert items[1].sources == {"custom": "7"} and items[2].description == "Starring Keanu Reeves."


@pytest.mark.parametrize(("name", "expected"), [("sci-fi", "Sci-Fi"), ("film-noir", "Film-Noir"),
                                                ("children", "Children's"), ("talk-show", "Talk-Show"),
                                                ("reality-tv", "Reality-TV"), ("DRAMA", "Drama"),
                                                ("imax", "IMAX"), ("science fiction", "Science Fiction")])
def test_genres_are_spelled_as_the_catalogue_does(name: str, expected: str) -> None:
    assert catalogue_genre(name) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"1": {"name": "Heat (1995)"}, "2": {"name": "Up"', "line 1 column"),
        ("", "file is empty"),
        ('"just a string"', "expected a JSON object"),
        ("{}", "no items"),
        ('{"1": {"name": "Heat (1995)"}, "2": ["Up"]}', "entry '2': expected an object"),
        ('{"1": {"name": "Heat (1995)"}, "2": {"plot": "no name"}}', "entry '2': no title"),
        ('{"1": {"name": "  "}}', "entry '1': no title"),
        ('{"1": {"name": "Heat", "year": "1995"}}', "entry '1': year '1995' is not an integer"),
        ('{"1": {"name": "Heat (1995)", "year": 1996}}', "entry '1': year 1996 but the title says 1995"),
        ('{"1": {"name": "Heat (1295)"}}', "entry '1': year 1295 is out of range"),
        ('{"1": {"name": "Heat (1995)", "genre": ["crime", 3]}}', "entry '1': genre must be a list of strings"),
        ('{"1": {"name": "Heat (1995)", "plot": ["x"]}}', "entry '1': plot must be a string"),
        ('{"1": {"name": "Heat (1995)"}, "1": {"name": "Up (2009)"}}', "entry '1': duplicate item id"),
        ('{"1": {"name": "Heat (1995)", "name": "Up (2009)"}}', "entry '1': field 'name' given twice"),
        ('[{"id": "a", "title": "Heat"}, {"title": "Up"}]', "entry 2: no item id"),
        ('[{"id": "a", "title": "Heat"}, {"id": "a", "title": "Up"}]', "entry 2: duplicate item id 'a'"),
    ],
)
def test_a_malformed_json_file_is_refused_whole(tmp_path: Path, content: str, expected: str) -> None:
    path = _write(tmp_path / "bad_items.json", content)
    with pytest.raises(DataError) as err:
        items_from_json(path)
    assert "bad_items.json" in str(err.value) and expected in str(err.value)
    # through the add path: refused before anything is opened or written
    with pytest.raises(DataError, match="bad_items.json"):
        add_items(path, home=tmp_path / "home", source="redial")
    assert not (tmp_path / "home").exists()


def test_unknown_file_types_and_source_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown items file type '.xml'"):
        add_items(_write(tmp_path / "items.xml", "<items/>"), home=tmp_path / "home")
    with pytest.raises(DataError, match="not a usable source name"):
        items_from_json(_write(tmp_path / "ok.json", {"1": {"name": "Heat"}}), source="red dial")


# --------------------------------------------------------------------------- linking (no store)


def _movie(item_id: str, title: str, year: int | None, **kw) -> CatalogItem:
    return CatalogItem(item_id=item_id, domain="movie", title=title, year=year, **kw)


def test_link_items_is_precision_first() -> None:
    known = [_movie("ml-100k:50", "Star Wars", 1977, aliases=("Star Wars: Episode IV - A New Hope",)),
             _movie("ml-100k:246", "Chasing Amy", 1997), _movie("ml-latest-small:1639", "Chasing Amy", 1997),
             _movie("ml-latest-small:2389", "Psycho", 1998),
             CatalogItem(item_id="book-crossing:1", domain="book", title="Psycho", year=1998)]
    new = [_movie("r:1", "Star Wars: Episode IV - A New Hope", 1977), _movie("r:2", "Chasing Amy", 1997),
           _movie("r:3", "Psycho", 1998), _movie("r:4", "Psycho", 1998), _movie("r:5", "Psycho", None),
           _movie("r:6", "Psycho", 1960)]
    ambiguous: list[dict] = []
    links = link_items(new, known, ambiguous)
    assert links == {"r:1": ("ml-100k:50", "alternate"), "r:3": ("ml-latest-small:2389", "exact"),
                     "r:4": ("ml-latest-small:2389", "exact+duplicate")}
    assert {a["new"] for a in ambiguous} == {"r:2"}


def test_merge_item_enriches_and_is_idempotent() -> None:
    base = _movie("ml-100k:1", "Toy Story", 1995, genres=("Animation", "Children's"), warm=True, graph_item_id="1",
                  sources={"ml-100k": "1", "ml-latest-small": "1"}, n_ratings=452)
    imported = [_movie("redial:9", "Toy Story", 1995, genres=("Animation", "Family"), description="Toys. Directed by X.",
                       sources={"redial": "9"}),
                _movie("redial:12", "Toy Story: The Movie", 1995, genres=("Comedy",), sources={"redial": "12"})]
    once = merge_item(base, imported, "redial")
    assert (once.item_id, once.title, once.year, once.warm, once.graph_item_id, once.n_ratings) == (
        "ml-100k:1", "Toy Story", 1995, True, "1", 452)
    assert once.sources == {"ml-100k": "1", "ml-latest-small": "1", "redial": "9|12"}
    assert once.genres == ("Animation", "Children's", "Family", "Comedy")
    assert once.aliases == ("Toy Story: The Movie",) and once.description == "Toys. Directed by X."
    assert merge_item(once, imported, "redial") == once
    assert source_ids(once, "redial") == ("9", "12") and source_ids(base, "redial") == ()
    assert source_index([once, imported[0]], "redial") == {"9": "redial:9", "12": "ml-100k:1"}


# --------------------------------------------------------------------------- the add path (real store)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, catalog_slice: Catalog, chatrec_home: Path) -> Path:
    """A data home whose catalogue is the slice's first rows plus ml-100k's two Chasing Amy
    entries, with its store built (the template the tests copy)."""
    from tools.items import build_items

    full = load_catalog(chatrec_home, progress=False)
    home = tmp_path_factory.mktemp("import-home")
    save_catalog(Catalog(catalog_slice.items[:N_ITEMS] + [full.get("ml-100k:246"), full.get("ml-100k:268")]),
                 catalog_path(home))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CHATREC_CHROMA_URL", raising=False)
        build_items(home, progress=False)
    return home


@pytest.fixture
def home(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(built, copy)
    monkeypatch.setenv("CHATREC_HOME", str(copy))
    monkeypatch.delenv("CHATREC_CHROMA_URL", raising=False)
    yield copy


def test_import_links_movies_to_the_catalogue_and_adds_the_rest(home: Path, tmp_path: Path) -> None:
    before = open_catalog(home, progress=False)
    path = _write(tmp_path / "id2info.json", ENTRIES)
    report = add_items(path, home, source="redial")
    assert (report["read"], report["added"], report["linked"], report["ambiguous"]) == (8, 1, 7, 0)
    assert report["linked_to"] == {"ml-100k": 4, "ml-latest-small": 3}
    assert (report["linked_ml_100k"], report["linked_ml_latest_small"], report["enriched"]) == (4, 3, 6)
    assert report["movies_without_year"] == 1 and report["links_by_rule"]["title_only_unique"] == 1
    assert report["items"] == report["embedded"] == 7  # 6 enriched + 1 new
    assert report["store_items"] == N_ITEMS + 2 + 1

    catalog = open_catalog(home, progress=False)
    assert len(catalog) == len(before) + 1
    toy, old = catalog.get("ml-100k:1"), before.get("ml-100k:1")
    assert (toy.title, toy.year, toy.warm, toy.graph_item_id, toy.n_ratings) == (
        old.title, old.year, old.warm, old.graph_item_id, old.n_ratings)
    assert toy.sources == {**old.sources, "redial": "100001"}
    assert toy.description.startswith("A cowboy doll") and "Family" in toy.genres
    assert catalog.get("ml-100k:127").sources["redial"] == "100003"
    assert catalog.get("book-crossing:0451167716").sources.get("redial") is None  # the book stays alone
    assert catalog.get("ml-latest-small:78499").sources["redial"] == "100002"
    assert catalog.get("ml-latest-small:2389").sources["redial"] == "100007|100008"
    assert "redial:100001" not in catalog and "redial:100007" not in catalog  # no duplicates
    assert catalog.get("ml-100k:82").sources["redial"] == "100005"
    assert catalog.get("ml-100k:268").sources["redial"] == "100006" and "redial:100006" not in catalog
    assert catalog.get("ml-100k:246").sources.get("redial") is None
    new = catalog.get("redial:100004")
    assert new.sources == {"redial": "100004"} and not new.warm
    index = source_index(catalog, "redial")
    assert index == {"100001": "ml-100k:1", "100002": "ml-latest-small:78499", "100003": "ml-100k:127",
                     "100004": "redial:100004", "100005": "ml-100k:82", "100006": "ml-100k:268",
                     "100007": "ml-latest-small:2389", "100008": "ml-latest-small:2389"}

    store = open_store(home)
    assert store.count() == len(catalog)
    hits = store.search("a cowboy doll threatened by a spaceman figure", k=3, domain="movie")
    assert hits[0].item_id == "ml-100k:1"
    assert [json.loads(line)["item_id"] for line in added_path(home).read_text().splitlines()] == [
        "ml-100k:1", "ml-latest-small:78499", "ml-100k:127", "redial:100004", "ml-100k:82", "ml-100k:268",
        "ml-latest-small:2389"]


def test_reimport_is_idempotent(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "id2info.json", ENTRIES)
    first = add_items(path, home, source="redial")
    added = added_path(home).read_bytes()
    catalog = open_catalog(home, progress=False).items
    again = add_items(path, home, source="redial")
    assert added_path(home).read_bytes() == added
    assert open_catalog(home, progress=False).items == catalog
    assert again["embedded"] == 0 and again["store_items"] == first["store_items"] == open_store(home).count()
    drop = {"embedded", "seconds"}
    assert {k: v for k, v in again.items() if k not in drop} == {k: v for k, v in first.items() if k not in drop}


def test_a_bad_file_writes_nothing_to_a_built_home(home: Path, tmp_path: Path) -> None:
    add_items(_write(tmp_path / "id2info.json", ENTRIES), home, source="redial")
    added, count = added_path(home).read_bytes(), open_store(home).count()
    bad = dict(ENTRIES, **{"100009": {"name": "Up (2009)", "genre": "animation", "star": [1]}})
    with pytest.raises(DataError) as err:
        add_items(_write(tmp_path / "bad.json", bad), home, source="redial")
    assert "bad.json: entry '100009': star must be a list of strings" in str(err.value)
    assert added_path(home).read_bytes() == added and open_store(home).count() == count


def test_cli_adds_a_json_file_and_says_so(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "id2info.json", ENTRIES)
    runner = CliRunner()
    result = runner.invoke(app, ["items", "add", str(path), "--source", "redial", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["source"], report["added"], report["linked_to"]) == ("redial", 1,
                                                                        {"ml-100k": 4, "ml-latest-small": 3})
    text = runner.invoke(app, ["items", "add", str(path), "--source", "redial"], catch_exceptions=False)
    assert text.exit_code == 0
    assert "read 8 items" in text.output and "1 added as new, 7 linked" in text.output and "0 embedded" in text.output
    bad = runner.invoke(app, ["items", "add", str(_write(tmp_path / "bad.json", "[1, 2"))])
    assert bad.exit_code == 2 and "bad.json" in bad.output


def test_a_movie_without_a_year_links_only_to_the_one_known_movie_of_its_title() -> None:
    known = [_movie("ml-latest-small:1", "Zootopia", 2016), _movie("ml-100k:2", "Jurassic Park", 1993),
             _movie("ml-latest-small:3", "It", 1990), _movie("ml-100k:4", "Frozen", 2013),
             _movie("ml-100k:5", "Frozen", 2010)]
    new = [_movie("r:1", "Zootopia", None), _movie("r:2", "Jurassic Park", None), _movie("r:3", "Jurassic Park", 1993),
           _movie("r:4", "It", None), _movie("r:5", "It", 2017),  # the file dates "It" in another year: apart
           _movie("r:6", "Frozen", None), _movie("r:7", "Unknown Film", None)]
    links = link_items(new, known)
    assert links == {"r:1": ("ml-latest-small:1", "title_only_unique"), "r:2": ("ml-100k:2", "title_only_unique"),
                     "r:3": ("ml-100k:2", "exact")}


def test_a_film_a_source_lists_twice_takes_a_new_entry_of_its_title_at_its_most_rated_id() -> None:
    known = [_movie("ml-100k:500", "Fly Away Home", 1996, n_ratings=31), _movie("ml-100k:304", "Fly Away Home", 1996,
                                                                                n_ratings=149),
             _movie("ml-latest-small:9", "Fly Away Home", 1996, n_ratings=20)]
    new = [_movie("r:1", "Fly Away Home", 1996)]
    # one source's two ids are one film; two sources' entries are still a tie
    assert link_items(new, known[:2]) == {"r:1": ("ml-100k:304", "exact")}
    assert link_items(new, known) == {}


def test_a_movie_without_a_year_links_by_the_other_titles_a_known_one_writes_in_brackets() -> None:
    known = [_movie("ml-latest-small:1", "Spirited Away (Sen to Chihiro no kamikakushi)", 2001),
             _movie("ml-latest-small:2", "Seven (a.k.a. Se7en)", 1995)]
    new = [_movie("r:1", "Spirited Away", None), _movie("r:2", "Se7en", None), _movie("r:3", "Sen", None)]
    assert link_items(new, known) == {"r:1": ("ml-latest-small:1", "title_only_unique"),
                                      "r:2": ("ml-latest-small:2", "title_only_unique")}
