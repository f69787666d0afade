"""The ReDial systems' reading of a dialogue, and the movie graph built from conversations.

Pure: ReDial names ↔ catalogue items and the names written in a turn; reading only the turns
not seen yet; conversations → users (the asker's dislikes left out) and the dataset written
through the bring-your-own path. The systems themselves run in ``bench/crs_folds.py`` and
``chatrec eval-crs`` (they load the whole agent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.evals.crs import CrsLine
from agent.evals.crs_systems import ReDialNames, _DialogueReader, _named_first, make_system
from recsys.data import DataError
from tools.catalog import Catalog, CatalogItem
from tools.movie_graph import build_movie_graph, conversation_users

IT = CatalogItem("redial:1", "movie", "It", 2017, ("Horror",), sources={"redial": "1"})
SPLIT = CatalogItem("redial:2", "movie", "Split", 2017, ("Thriller",), sources={"redial": "2"})
# a MovieLens film the import linked: its catalogue id stays, ReDial's id (listed twice there) is added
ALIEN = CatalogItem("ml-100k:183", "movie", "Alien", 1979, ("Horror", "Sci-Fi"), warm=True, graph_item_id="183",
                    sources={"ml-100k": "183", "redial": "3|4|7"})
GET_OUT = CatalogItem("redial:5", "movie", "Get Out", 2017, ("Horror",), sources={"redial": "5"})
OUT = CatalogItem("redial:6", "movie", "Out", 2017, (), sources={"redial": "6"})
# listed first without a year; listed twice with one, the catalogue's title in the second
JURASSIC = CatalogItem("redial:8", "movie", "Jurassic Park", 1993, (), sources={"redial": "8|9"})
DESCENT = CatalogItem("redial:10", "movie", "The Descent", 2005, (), sources={"redial": "10|11"})
NOT_REDIAL = CatalogItem("ml-100k:1", "movie", "Toy Story", 1995, warm=True, graph_item_id="1", sources={"ml-100k": "1"})
CATALOG = Catalog([IT, SPLIT, ALIEN, GET_OUT, OUT, JURASSIC, DESCENT, NOT_REDIAL])
ID2INFO = {"1": {"name": "It (2017)"}, "2": {"name": "Split (2017)"}, "3": {"name": "Alien (1979)"},
           "4": {"name": "Alien (1979)"}, "5": {"name": "Get Out (2017)"}, "6": {"name": "Out (2017)"},
           "7": {"name": "Alien"},  # ReDial lists some films again without a year
           "8": {"name": "Jurassic Park"}, "9": {"name": "Jurassic Park (1993)"},
           "10": {"name": "Descent (2005)"}, "11": {"name": "The Descent (2005)"}}


def test_names_map_both_ways_and_a_film_listed_twice_is_one_item() -> None:
    names = ReDialNames(CATALOG, ID2INFO)
    assert names.item_of["Alien (1979)"] is names.item_of["Alien"] is ALIEN
    assert names.name_of["ml-100k:183"] == ["Alien (1979)", "Alien"]
    assert names.item_of["It (2017)"] is IT and "ml-100k:1" not in names.name_of
    # a ranking names each film once (two names would take two of its places), "Title (Year)" as
    # ReDial writes mentions, the catalogue's own title where two names carry the year
    assert names.ranked(["redial:1", "ml-100k:183", "ml-100k:1", "redial:8", "redial:10"]) == [
        "It (2017)", "Alien (1979)", "Jurassic Park (1993)", "The Descent (2005)"]
    assert names.item_of["Jurassic Park"] is JURASSIC  # either name still reads as the film


def test_the_names_in_a_turn_are_whole_names_in_order() -> None:
    names = ReDialNames(CATALOG, ID2INFO)
    assert names.mentions("I loved Split (2017) and Alien (1979), also It (2017)") == [
        "Split (2017)", "Alien (1979)", "It (2017)"]
    assert names.mentions("Get Out (2017) twice: Get Out (2017)") == ["Get Out (2017)"]  # not "Out (2017)"
    assert names.mentions("Jaws (1975) is not in this catalogue; nor is a bare 2017") == []


def test_the_names_need_the_import_first() -> None:
    with pytest.raises(ValueError, match="chatrec items add ID2INFO --source redial"):
        ReDialNames(Catalog([NOT_REDIAL]), ID2INFO)


def test_films_named_before_go_first_latest_first_each_once() -> None:
    # named in the order the dialogue named them ("It", then "Alien", then "It" again)
    assert _named_first(["redial:1", "ml-100k:183", "redial:1"], ["redial:2", "ml-100k:183", "redial:5"]) == [
        "redial:1", "ml-100k:183", "redial:2", "redial:5"]
    assert _named_first([], ["redial:2", "redial:5"]) == ["redial:2", "redial:5"]


def test_an_unknown_way_with_named_films_is_refused_before_the_agent_loads() -> None:
    with pytest.raises(ValueError, match="first, leave-out"):
        make_system("agent", lines=[], id2info=ID2INFO, settings=None, mentioned="keep")


def _line(dialog: str, context: list[str]) -> CrsLine:
    return CrsLine(dialog, len(context), context, [], ["It (2017)"], "", 1)


def test_a_dialogue_is_read_once_turn_by_turn() -> None:
    reader = _DialogueReader()
    assert reader.new_turns(_line("d1", ["", "hi", "a horror film?"])) == (True, [(0, ""), (1, "hi"), (2, "a horror film?")])
    assert reader.new_turns(_line("d1", ["", "hi", "a horror film?", "It (2017)", "seen it"])) == (
        False, [(3, "It (2017)"), (4, "seen it")])
    assert reader.new_turns(_line("d2", ["hello"])) == (True, [(0, "hello")])
    # a context that does not continue the one read (a file out of order) starts over
    assert reader.new_turns(_line("d2", ["other"])) == (True, [(0, "other")])


def _conversations(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_conversations_become_users_without_the_askers_dislikes(tmp_path: Path) -> None:
    path = _conversations(tmp_path / "c.jsonl", [
        {"conversationId": 7, "movieMentions": {"1": "It (2017)", "2": "Split (2017)", "3": "Alien (1979)", "99": "X"},
         "initiatorQuestions": {"2": {"liked": 0}, "3": {"liked": 2}}},
        {"conversationId": 8, "movieMentions": {"1": "It (2017)"}, "initiatorQuestions": {}},  # one film: no pair
        {"conversationId": 9, "movieMentions": {"4": "Alien (1979)", "5": "Get Out (2017)"}, "initiatorQuestions": []},
    ])
    assert conversation_users(path, CATALOG) == {"redial-dialogue:7": ["redial:1", "ml-100k:183"],
                                                 "redial-dialogue:9": ["ml-100k:183", "redial:5"]}


def test_a_malformed_conversation_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"conversationId": 1, "movieMentions": {}}\n{"movieMentions": {}}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.jsonl:2: not a conversation in ReDial's format"):
        conversation_users(path, CATALOG)
    path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.jsonl:1"):
        conversation_users(path, CATALOG)


def test_the_movie_graph_dataset_is_written_with_catalogue_ids(tmp_path: Path) -> None:
    from recsys.datasets import load

    path = _conversations(tmp_path / "c.jsonl", [
        {"conversationId": 1, "movieMentions": {"1": "", "2": ""}, "initiatorQuestions": {}},
        {"conversationId": 2, "movieMentions": {"2": "", "5": "", "3": ""}, "initiatorQuestions": {}},
    ])
    report = build_movie_graph("talk", CATALOG, conversations=[path], home=tmp_path)
    assert report["conversations"] == 2 and report["users"] == 2 and report["interactions"] == 5
    data = load("talk", tmp_path)
    assert sorted(map(str, data.item_ids)) == ["ml-100k:183", "redial:1", "redial:2", "redial:5"]
    titles = dict(zip(data.items_meta["item_id"].astype(str), data.items_meta["title"]))
    assert titles["ml-100k:183"] == "Alien"
    with pytest.raises(DataError, match="nothing to build from"):
        build_movie_graph("empty", CATALOG, home=tmp_path)
