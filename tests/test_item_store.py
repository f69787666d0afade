"""The item store over real chromadb (in temp dirs) and the real all-MiniLM-L6-v2 embeddings.

The items are copies of real catalog rows (warm ml-100k movies, cold ml-latest-small
movies, Book-Crossing books), few enough that embedding them takes a second or two.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from servers import DroppingEndpoint, free_port, wait_for_port
from tools.catalog import CatalogItem, item_document
from tools.embeddings import embed
from tools.item_store import ItemStore, StoreError, where_clause

MODEL_FIXTURES = {"store", "small"}  # tests using them are marked model (conftest): they build a store

REPO = Path(__file__).resolve().parents[1]


def _movie(item_id: str, title: str, year: int, genres: list[str], warm: bool, n: int, **kw) -> CatalogItem:
    return CatalogItem(item_id=item_id, domain="movie", title=title, year=year, genres=tuple(genres), warm=warm,
                       graph_item_id=item_id.split(":")[1] if warm else None, n_ratings=n, **kw)


def _book(item_id: str, title: str, year: int, author: str, publisher: str, n: int) -> CatalogItem:
    return CatalogItem(item_id=item_id, domain="book", title=title, year=year, author=author, publisher=publisher,
                       n_ratings=n)


ITEMS = [
    _movie("ml-100k:1", "Toy Story", 1995, ["Animation", "Children's", "Comedy", "Adventure", "Fantasy"], True, 452),
    _movie("ml-100k:7", "Twelve Monkeys", 1995, ["Drama", "Sci-Fi", "Mystery", "Thriller"], True, 392,
           aliases=("Twelve Monkeys (a.k.a. 12 Monkeys)",)),
    _movie("ml-100k:28", "Apollo 13", 1995, ["Action", "Drama", "Thriller", "Adventure", "IMAX"], True, 276),
    _movie("ml-100k:50", "Star Wars", 1977, ["Action", "Adventure", "Romance", "Sci-Fi", "War"], True, 583),
    _movie("ml-100k:71", "The Lion King", 1994, ["Animation", "Children's", "Musical", "Adventure", "Drama"], True, 220),
    _movie("ml-100k:77", "The Firm", 1993, ["Drama", "Thriller"], True, 151),
    _movie("ml-100k:82", "Jurassic Park", 1993, ["Action", "Adventure", "Sci-Fi", "Thriller"], True, 261),
    _movie("ml-100k:88", "Sleepless in Seattle", 1993, ["Comedy", "Romance", "Drama"], True, 213),
    _movie("ml-100k:98", "The Silence of the Lambs", 1991, ["Drama", "Thriller", "Crime", "Horror"], True, 390),
    _movie("ml-100k:100", "Fargo", 1996, ["Crime", "Drama", "Thriller", "Comedy"], True, 508),
    _movie("ml-100k:127", "The Godfather", 1972, ["Action", "Crime", "Drama"], True, 413),
    _movie("ml-100k:168", "Monty Python and the Holy Grail", 1974, ["Comedy", "Adventure", "Fantasy"], True, 316),
    _movie("ml-100k:183", "Alien", 1979, ["Action", "Horror", "Sci-Fi", "Thriller"], True, 291),
    _movie("ml-100k:185", "Psycho", 1960, ["Horror", "Romance", "Thriller", "Crime"], True, 239),
    _movie("ml-100k:318", "Schindler's List", 1993, ["Drama", "War"], True, 298),
    _movie("ml-100k:483", "Casablanca", 1942, ["Drama", "Romance", "War"], True, 243),
    _movie("ml-latest-small:2389", "Psycho", 1998, ["Crime", "Horror", "Thriller"], False, 13),
    _movie("ml-latest-small:5087", "Get Out Your Handkerchiefs (Préparez vos mouchoirs)", 1978,
           ["Comedy", "Drama", "Romance"], False, 1),
    _movie("ml-latest-small:6377", "Finding Nemo", 2003, ["Adventure", "Animation", "Children's", "Comedy"], False, 122),
    _movie("ml-latest-small:58559", "The Dark Knight", 2008, ["Action", "Crime", "Drama", "IMAX"], False, 121),
    _movie("ml-latest-small:60069", "WALL·E", 2008, ["Adventure", "Animation", "Children's", "Romance", "Sci-Fi"],
           False, 76),
    _movie("ml-latest-small:68954", "Up", 2009, ["Adventure", "Animation", "Children's", "Drama"], False, 61),
    _movie("ml-latest-small:78499", "Toy Story 3", 2010,
           ["Adventure", "Animation", "Children's", "Comedy", "Fantasy", "IMAX"], False, 42),
    _movie("ml-latest-small:79132", "Inception", 2010,
           ["Action", "Crime", "Drama", "Mystery", "Sci-Fi", "Thriller", "IMAX"], False, 111),
    _book("book-crossing:0385504209", "The Da Vinci Code", 2003, "Dan Brown", "Doubleday", 499),
    _book("book-crossing:059035342X", "Harry Potter and the Sorcerer's Stone", 1999, "J. K. Rowling", "Scholastic", 499),
    _book("book-crossing:014028009X", "Bridget Jones's Diary", 1999, "Helen Fielding", "Penguin Books", 380),
    _book("book-crossing:0553213105", "Pride and Prejudice", 1981, "Jane Austen", "Bantam", 253),
    _book("book-crossing:044021145X", "The Firm", 1992, "John Grisham", "Bantam Dell Publishing Group", 224),
    _book("book-crossing:0440214041", "The Pelican Brief", 1993, "John Grisham", "Dell", 214),
    _book("book-crossing:0345370775", "Jurassic Park", 1999, "Michael Crichton", "Ballantine Books", 209),
    _book("book-crossing:0395177111", "The Hobbit", 1973, "J. R. R. Tolkien", "Houghton Mifflin", 87),
    # no year: year filters must leave it out, not fail on it
    CatalogItem(item_id="book-crossing:0812519329", domain="book", title="Psycho", author="Robert Bloch",
                publisher="Tor Books", n_ratings=5),
]
BY_ID = {item.item_id: item for item in ITEMS}
SMALL = [BY_ID[i] for i in ("ml-100k:1", "ml-100k:127", "ml-100k:50", "ml-latest-small:6377",
                            "book-crossing:0553213105", "book-crossing:044021145X")]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ItemStore:
    """One store over ITEMS for the read-only tests."""
    s = ItemStore(tmp_path_factory.mktemp("store") / "chroma")
    report = s.build(ITEMS, progress=False)
    assert report["embedded"] == report["items"] == len(ITEMS) and report["removed"] == 0
    return s


@pytest.fixture
def small(tmp_path: Path) -> ItemStore:
    """A fresh store over six items, for the tests that change it."""
    s = ItemStore(tmp_path / "chroma")
    s.build(SMALL, progress=False)
    return s


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize(("query", "domain", "expected"), [
    ("mafia family crime saga", None, "ml-100k:127"),
    ("space opera with jedi", None, "ml-100k:50"),
    ("astronauts stranded on a moon mission", None, "ml-100k:28"),
    ("novel by Jane Austen", None, "book-crossing:0553213105"),
    ("dinosaur theme park novel", "book", "book-crossing:0345370775"),
])
def test_search_finds_the_item_by_meaning(store: ItemStore, query: str, domain: str | None, expected: str) -> None:
    hits = store.search(query, k=3, domain=domain)
    assert hits[0].item_id == expected, [(h.title, h.score) for h in hits]
    assert hits[0].score > hits[1].score


def test_search_hits_carry_the_item_and_a_cosine_score(store: ItemStore) -> None:
    hits = store.search("toys that come to life", k=5)
    assert {h.item_id for h in hits[:2]} == {"ml-100k:1", "ml-latest-small:78499"}  # both Toy Storys
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = hits[0]
    item = BY_ID[top.item_id]
    assert (top.title, top.domain, top.year, top.genres, top.warm) == (
        item.title, item.domain, item.year, item.genres, item.warm)
    # the score is the cosine similarity of the query and the item's document
    query_vec, doc_vec = embed(["toys that come to life", item_document(item)])
    assert top.score == pytest.approx(float(query_vec @ doc_vec), abs=1e-4)
    assert set(top.to_dict()) == {"item_id", "title", "year", "domain", "genres", "author", "warm", "score"}
    book = store.search("novel by Jane Austen", k=1)[0]
    assert book.author == "Jane Austen" and book.genres == ()


def _matches(item: CatalogItem, domain=None, year_from=None, year_to=None, genres=(), warm=None) -> bool:
    return ((domain is None or item.domain == domain)
            and (year_from is None or (item.year is not None and item.year >= year_from))
            and (year_to is None or (item.year is not None and item.year <= year_to))
            and all(g.lower() in {x.lower() for x in item.genres} for g in genres)
            and (warm is None or item.warm == warm))


@pytest.mark.parametrize("filters", [
    {"domain": "book"},
    {"domain": "movie", "warm": False},
    {"warm": True},
    {"year_from": 1990, "year_to": 1999},
    {"year_to": 1979},
    {"genres": ["sci-fi"]},  # case does not matter
    {"genres": ["ANIMATION", "comedy"]},  # every listed genre
    {"domain": "movie", "year_from": 1993, "year_to": 1995, "genres": ["Drama"], "warm": True},
])
def test_filters_hold_for_every_hit_and_miss_nothing(store: ItemStore, filters: dict) -> None:
    hits = store.search("a story", k=len(ITEMS), **filters)
    expected = {item.item_id for item in ITEMS if _matches(item, **filters)}
    assert expected, "the filter should match something"
    assert {h.item_id for h in hits} == expected
    assert all(_matches(BY_ID[h.item_id], **filters) for h in hits)


def test_where_clause() -> None:
    assert where_clause() is None
    assert where_clause(domain="book") == {"domain": "book"}
    assert where_clause(genres=["Sci-Fi"], warm=False) == {
        "$and": [{"genre_keys": {"$contains": "sci-fi"}}, {"warm": False}]}
    assert where_clause(genres=["Children's"]) == {  # or IMDb's name for the kind
        "$or": [{"genre_keys": {"$contains": "children's"}}, {"genre_keys": {"$contains": "family"}}]}


def test_more_like_leaves_out_the_given_items_and_stays_close(store: ItemStore) -> None:
    liked = ["ml-100k:1", "ml-latest-small:78499"]  # Toy Story, Toy Story 3
    hits = store.more_like(liked, k=5)
    assert len(hits) == 5 and not {h.item_id for h in hits} & set(liked)
    assert all(h.domain == "movie" and "Animation" in h.genres for h in hits[:3]), [h.title for h in hits]
    # a Grisham novel: the other Grisham novel first
    firm = store.more_like(["book-crossing:044021145X"], k=3)
    assert firm[0].item_id == "book-crossing:0440214041" and "book-crossing:044021145X" not in {h.item_id for h in firm}
    assert all(h.domain == "book" for h in store.more_like(["book-crossing:044021145X"], k=3, domain="book"))
    with pytest.raises(KeyError, match="no-such:1"):
        store.more_like(["no-such:1"])
    with pytest.raises(ValueError):
        store.more_like([])


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_search_text_is_refused(store: ItemStore, text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        store.search(text)


# --------------------------------------------------------------------------- building and adding


def test_build_is_idempotent_and_incremental(small: ItemStore) -> None:
    assert small.complete and small.count() == len(SMALL)
    again = small.build(SMALL, progress=False)
    assert (again["embedded"], again["removed"], again["items"]) == (0, 0, len(SMALL))

    changed = list(SMALL)
    changed[1] = dataclasses.replace(SMALL[1], description="A mafia patriarch hands his empire to his son.")
    report = small.build(changed, progress=False)
    assert (report["embedded"], report["removed"]) == (1, 0)
    assert small.search("organised crime dynasty, a son takes over", k=1)[0].item_id == "ml-100k:127"

    fewer = changed[:-1]  # drop The Firm (book)
    report = small.build(fewer, progress=False)
    assert (report["embedded"], report["removed"], report["items"]) == (0, 1, len(SMALL) - 1)
    assert small.count() == len(SMALL) - 1
    with pytest.raises(KeyError):
        small.vectors([SMALL[-1].item_id])
    assert SMALL[-1].item_id not in {h.item_id for h in small.search("legal thriller", k=10)}
    # a fresh instance on the same path sees the same finished store
    reopened = ItemStore(small.path)
    assert reopened.complete and reopened.count() == len(SMALL) - 1
    assert reopened.build(fewer, progress=False)["embedded"] == 0


def test_add_is_searchable_at_once_without_a_rebuild(small: ItemStore) -> None:
    new = CatalogItem(item_id="custom:kiki", domain="movie", title="Kiki's Delivery Service", year=1989,
                      genres=("Animation", "Fantasy"),
                      description="A young witch moves to a seaside town and starts a flying delivery service.")
    assert small.add([new]) == 1
    assert small.count() == len(SMALL) + 1
    assert small.search("a young witch delivering parcels on her broom", k=1)[0].item_id == "custom:kiki"
    other = ItemStore(small.path)  # another instance (another replica, a later command)
    assert other.complete and other.count() == len(SMALL) + 1
    hit = other.search("a young witch delivering parcels on her broom", k=1, genres=["fantasy"])[0]
    assert (hit.item_id, hit.year, hit.warm) == ("custom:kiki", 1989, False)
    assert small.add([new]) == 0  # the same item again: nothing to embed


class _InterruptedItems(list):
    """The catalog's items, but the process is interrupted (Ctrl-C) while embedding item ``at``."""

    def __init__(self, items, at: int) -> None:
        super().__init__(items)
        self.at = at

    def __getitem__(self, index):
        if isinstance(index, int) and index >= self.at:
            raise KeyboardInterrupt
        return super().__getitem__(index)


@pytest.mark.model  # builds a store
def test_an_interrupted_build_is_refused_until_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.item_store as item_store

    monkeypatch.setattr(item_store, "BATCH", 4)
    items = ITEMS[:12]
    s = ItemStore(tmp_path / "chroma")
    with pytest.raises(KeyboardInterrupt):
        s.build(_InterruptedItems(items, at=4), progress=False)  # the first batch of 4 is written
    assert s.count() == 4 and not s.complete
    for store in (s, ItemStore(tmp_path / "chroma")):  # this process, and a later one
        with pytest.raises(StoreError, match="chatrec items build"):
            store.search("crime")
        with pytest.raises(StoreError, match="unfinished"):
            store.more_like(["ml-100k:1"])
        with pytest.raises(StoreError, match="chatrec items build"):
            store.add([items[0]])
    report = ItemStore(tmp_path / "chroma").build(items, progress=False)
    assert (report["embedded"], report["items"]) == (8, 12)  # resumed: only what was missing
    assert s.complete and s.search("mafia family crime saga", k=1)[0].item_id == "ml-100k:127"


def test_a_store_of_another_format_is_rebuilt_with_a_warning(small: ItemStore, caplog) -> None:
    small._collection.modify(metadata={**small._expected_metadata(), "chatrec_format": 0, "complete": True})
    with caplog.at_level(logging.WARNING, logger="tools.item_store"):
        reopened = ItemStore(small.path)
    assert reopened.count() == 0 and not reopened.complete
    assert any("chatrec_format" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    with pytest.raises(StoreError):
        reopened.search("crime")
    assert reopened.build(SMALL, progress=False)["embedded"] == len(SMALL)
    assert reopened.search("mafia family crime saga", k=1)[0].item_id == "ml-100k:127"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tools.item_store"):
        assert ItemStore(small.path).count() == len(SMALL)  # now current: opened as is
    assert not caplog.records


def test_a_damaged_store_is_moved_aside_and_rebuilt(small: ItemStore, caplog) -> None:
    path = small.path
    sqlite = path / "chroma.sqlite3"
    sqlite.write_bytes(b"this is not a database " * 4096)
    with caplog.at_level(logging.WARNING, logger="tools.item_store"):
        fresh = ItemStore(path)
    aside = [p for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.damaged-")]
    assert len(aside) == 1 and fresh.repaired_from == aside[0]
    assert (aside[0] / "chroma.sqlite3").read_bytes().startswith(b"this is not a database")
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "damaged" in message and str(aside[0]) in message and "chatrec items build" in message
    assert fresh.count() == 0 and not fresh.complete
    assert fresh.build(SMALL, progress=False)["embedded"] == len(SMALL)
    assert fresh.search("mafia family crime saga", k=1)[0].item_id == "ml-100k:127"
    assert ItemStore(path).count() == len(SMALL)  # and it stays usable


_READER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tools.item_store import ItemStore

    path, stop = sys.argv[1], Path(sys.argv[2])
    store = ItemStore(path)
    store.search("warm up", k=1)
    print("ready", flush=True)
    searches, deadline = 0, time.time() + 30
    while not stop.exists() and time.time() < deadline:
        hits = store.search("a young witch delivering parcels on her broom", k=3)
        assert len(hits) == 3, hits
        searches += 1
    top = store.search("a young witch delivering parcels on her broom", k=1)[0].item_id
    print(searches, store.count(), top, flush=True)
""")


def test_readers_keep_working_while_items_are_added(small: ItemStore, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(small.path), str(stop)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        added, started = 0, time.time()
        while time.time() - started < 2.0 or added < 3:
            small.add([CatalogItem(item_id=f"custom:new-{added}", domain="movie", title=f"Night Train {added}",
                                   year=2000 + added, genres=("Drama",))])
            added += 1
        small.add([CatalogItem(item_id="custom:kiki", domain="movie", title="Kiki's Delivery Service", year=1989,
                               description="A young witch starts a flying delivery service in a seaside town.")])
        stop.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err[-3000:]
    searches, count, top = out.split()
    assert int(searches) > 0
    # the reader, opened before the adds, sees them without reopening or rebuilding
    assert int(count) == len(SMALL) + added + 1 and top == "custom:kiki"


# --------------------------------------------------------------------------- a shared server


def test_reads_do_not_reopen_the_store(store: ItemStore, caplog) -> None:
    """Only our writes move the generation. chroma itself touches chroma.sqlite3 on reads of a
    large store (seen on the full catalog: a reopen, ~100 ms, on every search), so touching the
    file here must not count as another process's write."""
    store.search("toys", k=2)
    caplog.set_level(logging.DEBUG, logger="tools.item_store")
    for n in range(3):
        os.utime(store.path / "chroma.sqlite3", ns=(n * 10**9, n * 10**9))
        store.search("a courtroom drama", k=2)
        store.more_like(["ml-100k:1"], k=2)
    assert "reopening" not in caplog.text


def test_an_unreachable_server_fails_fast_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    with pytest.raises(StoreError, match="cannot reach the Chroma server") as err:
        ItemStore(tmp_path / "unused", url=url)
    assert url in str(err.value) and "CHATREC_CHROMA_URL" in str(err.value)
    assert not (tmp_path / "unused").exists()  # nothing local was created instead
    # fast: the first failed contact is the answer, no retries (a server that drops every connection counts them)
    with DroppingEndpoint() as dead:
        with pytest.raises(StoreError, match="cannot reach the Chroma server"):
            ItemStore(tmp_path / "unused", url=dead.url)
    assert len(dead.attempts) == 1


def test_vectors_are_unit_length_in_the_order_asked(store: ItemStore) -> None:
    ids = ["book-crossing:0395177111", "ml-100k:1"]
    vectors = store.vectors(ids)
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(vectors, embed([item_document(BY_ID[i]) for i in ids]), atol=1e-4)


@pytest.mark.model  # builds a store
def test_a_shared_chroma_server_serves_several_replicas(tmp_path: Path) -> None:
    """CHATREC_CHROMA_URL: a real `chroma run` server on 127.0.0.1; what one replica builds and
    adds, another finds."""
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        pytest.skip("the chroma server CLI is not installed in this environment")
    port = free_port()
    server = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    try:
        wait_for_port(port, server, "chroma server", seconds=30)
        url = f"http://127.0.0.1:{port}"
        first = ItemStore(url=url)
        assert first.path is None
        first.build(SMALL, progress=False)
        second = ItemStore(url=url)
        assert second.complete and second.count() == len(SMALL)
        new = CatalogItem(item_id="custom:kiki", domain="movie", title="Kiki's Delivery Service", year=1989,
                          genres=("Animation", "Fantasy"))
        first.add([new])
        assert second.search("a young witch delivers parcels on her broom", k=1)[0].item_id == "custom:kiki"
    finally:
        server.terminate()
        server.wait(timeout=10)
