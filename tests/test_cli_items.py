"""``chatrec items build|add|search`` and ``chatrec resolve``, used as a person would, on a
small real catalog (the first rows of the ``catalog_slice`` fixture) written as the catalog
cache of a temporary data home, so the commands use it as is and fetch nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tools.catalog import Catalog, catalog_path, read_catalog, save_catalog
from tools.items import added_path

N_ITEMS = 30  # the slice's first rows: the titles the tests name, their sequels and namesakes
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, catalog_slice: Catalog) -> Iterator[tuple[Path, dict]]:
    """A data home with the catalog cache written and ``chatrec items build --json`` run once."""
    home = tmp_path_factory.mktemp("items-home")
    save_catalog(Catalog(catalog_slice.items[:N_ITEMS]), catalog_path(home))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATREC_HOME", str(home))
        mp.delenv("CHATREC_CHROMA_URL", raising=False)
        yield home, _json(run("items", "build", "--json"))


@pytest.fixture
def home(built: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the built home, for the tests that add items."""
    copy = tmp_path / "home"
    shutil.copytree(built[0], copy)
    monkeypatch.setenv("CHATREC_HOME", str(copy))
    return copy


@pytest.mark.parametrize("command", [["items"], ["items", "build"], ["items", "add"], ["items", "search"],
                                     ["resolve"]])
def test_every_items_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_build_reports_then_embeds_nothing_new(built: tuple[Path, dict], catalog_slice: Catalog) -> None:
    home, first = built
    assert (first["store"]["items"], first["store"]["embedded"], first["store"]["removed"]) == (N_ITEMS, N_ITEMS, 0)
    assert "catalog" in first
    again = _json(run("items", "build", "--json"))
    assert (again["store"]["items"], again["store"]["embedded"], again["store"]["removed"]) == (N_ITEMS, 0, 0)
    # the pre-written cache was used as is, not rebuilt from datasets
    assert read_catalog(catalog_path(home)).items == catalog_slice.items[:N_ITEMS]
    assert not (home / "datasets").exists()
    text = run("items", "build")
    assert text.exit_code == 0 and f"store: {N_ITEMS} items (0 embedded now, 0 removed)" in text.output


def test_search_prints_hits_as_json(built: tuple[Path, dict]) -> None:
    hits = _json(run("items", "search", "toys that come to life", "--domain", "movie", "--json"))
    assert 1 <= len(hits) <= 10
    for hit in hits:
        assert set(hit) == {"item_id", "title", "year", "domain", "genres", "author", "warm", "score"}
        assert hit["domain"] == "movie"
    assert hits[0]["title"].startswith("Toy Story")
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    filtered = _json(run("items", "search", "a scary film", "--year-from", "1980", "--year-to", "1999",
                         "--genre", "horror", "--k", "20", "--json"))
    assert {h["item_id"] for h in filtered} == {  # Psycho (1998), II, III and Parasite (1982)
        "ml-latest-small:2389", "ml-latest-small:2902", "ml-latest-small:2903", "ml-latest-small:2256"}

    books = _json(run("items", "search", "a legal thriller", "--domain", "book", "--k", "3", "--json"))
    assert all(h["domain"] == "book" and h["author"] for h in books)

    like = _json(run("items", "search", "--like", "ml-100k:1", "--k", "3", "--json"))
    assert len(like) == 3 and "ml-100k:1" not in {h["item_id"] for h in like}

    table = run("items", "search", "toys that come to life", "--k", "2")
    assert table.exit_code == 0 and table.output.startswith(" 1. Toy Story")


@pytest.mark.parametrize("args", [["items", "search"], ["items", "search", "  "],
                                  ["items", "search", "x", "--like", "ml-100k:1"]])
def test_search_needs_text_or_like(built: tuple[Path, dict], args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2 and "give either a search text or at least one --like" in result.output


def test_search_like_an_unknown_id_fails_cleanly(built: tuple[Path, dict]) -> None:
    result = run("items", "search", "--like", "no-such:1")
    assert result.exit_code == 2 and "no-such:1" in result.output


def test_added_items_are_searchable_and_resolvable_at_once(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("item_id,title,year,genres,domain,description\n"
                    "kiki,Kiki's Delivery Service,1989,Animation|Fantasy,movie,"
                    "A young witch moves to a seaside town and starts a flying delivery service.\n"
                    "zebra,Zebra Crossing Blues,2021,Drama|Music,movie,A jazz trumpeter's last tour of Lagos.\n",
                    encoding="utf-8")
    report = _json(run("items", "add", str(good), "--json"))
    assert (report["items"], report["embedded"], report["store_items"]) == (2, 2, N_ITEMS + 2)

    hits = _json(run("items", "search", "a young witch delivering parcels on her broom", "--domain", "movie",
                     "--json"))
    assert hits[0]["item_id"] == "custom:kiki" and hits[0]["warm"] is False and hits[0]["year"] == 1989
    assert [json.loads(line)["item_id"] for line in added_path(home).read_text().splitlines()] == [
        "custom:kiki", "custom:zebra"]
    resolved = _json(run("resolve", "kikis delivery service", "--json"))
    assert resolved["item"]["item_id"] == "custom:kiki"

    # a later command (a new catalog and store) still has them, and a rebuild keeps them
    rebuilt = _json(run("items", "build", "--json"))
    assert (rebuilt["store"]["items"], rebuilt["store"]["embedded"], rebuilt["store"]["removed"]) == (N_ITEMS + 2, 0, 0)

    again = _json(run("items", "add", str(good), "--json"))  # the same file again: nothing new
    assert (again["embedded"], again["store_items"]) == (0, N_ITEMS + 2)
    assert len(added_path(home).read_text().splitlines()) == 2


def test_a_bad_items_file_is_refused_whole(home: Path, tmp_path: Path) -> None:
    before = _json(run("items", "build", "--json"))["store"]["items"]
    added_before = added_path(home).read_bytes() if added_path(home).exists() else None
    bad = tmp_path / "bad_items.csv"
    bad.write_text("item_id,title,year,genres,domain\n"
                   "zebra,Zebra Crossing Blues,2021,Drama|Music,movie\n"
                   "broken,Broken Year,nineteen,,movie\n", encoding="utf-8")
    result = run("items", "add", str(bad))
    assert result.exit_code == 2
    assert "bad_items.csv" in result.output and "line 3" in result.output and "nineteen" in result.output
    hits = _json(run("items", "search", "Zebra Crossing Blues", "--k", "50", "--json"))
    assert not {h["item_id"] for h in hits} & {"custom:zebra", "custom:broken"}
    assert _json(run("items", "build", "--json"))["store"]["items"] == before
    assert (added_path(home).read_bytes() if added_path(home).exists() else None) == added_before

    missing = run("items", "add", str(tmp_path / "no_such.csv"))
    assert missing.exit_code == 2 and "no_such.csv" in missing.output


def test_resolve_prints_the_contract(built: tuple[Path, dict]) -> None:
    out = _json(run("resolve", "godfather part 2", "--json"))
    assert set(out) == {"mention", "item", "confidence", "candidates"}
    assert out["mention"] == "godfather part 2" and out["confidence"] > 0.9
    assert out["item"] == {"item_id": "ml-100k:187", "title": "The Godfather: Part II", "year": 1974,
                           "domain": "movie", "genres": ["Action", "Crime", "Drama"]}
    assert isinstance(out["candidates"], list)

    nothing = _json(run("resolve", "toy story 4", "--json"))
    assert nothing["item"] is None and nothing["confidence"] == 0.0

    book = _json(run("resolve", "jurassic park", "--domain", "book", "--json"))
    assert book["item"]["item_id"] == "book-crossing:0345370775" and book["item"]["author"] == "Michael Crichton"

    text = run("resolve", "12 monkeys")
    assert text.exit_code == 0 and "Twelve Monkeys (1995) [ml-100k:7] movie" in text.output


def test_resolve_a_file_of_mentions_in_order(built: tuple[Path, dict], tmp_path: Path) -> None:
    mentions = tmp_path / "mentions.txt"
    mentions.write_text("toy story 3\n\nforest gump\nzzqx blorf\nthe firm by grisham\ntwelve monkeys\n", encoding="utf-8")
    rows = _json(run("resolve", "--file", str(mentions), "--json"))
    assert [r["mention"] for r in rows] == ["toy story 3", "forest gump", "zzqx blorf", "the firm by grisham", "twelve monkeys"]
    assert [r["item"]["item_id"] if r["item"] else None for r in rows] == [
        "ml-latest-small:78499", "ml-100k:69", None, "book-crossing:044021145X", "ml-100k:7"]
    assert all(set(r) == {"mention", "item", "confidence", "candidates"} for r in rows)


@pytest.mark.parametrize("args", [["resolve"], ["resolve", "  "], ["resolve", "x", "--file", "m.txt"]])
def test_resolve_needs_one_mention_or_a_file(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2 and "give one non-empty mention, or --file" in result.output


def test_resolve_an_unreadable_file(built: tuple[Path, dict], tmp_path: Path) -> None:
    result = run("resolve", "--file", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2 and "cannot read" in result.output and "nope.txt" in result.output
