"""Scripted dialogue evaluation (agent/evals/dialogues.py, `chatrec eval-dialogues`).

The normalisers and every check run on hand-made replies (no agent); the validator runs on bad
files through the real CLI; the shipped dialogues must all validate; and one end-to-end run
drives the real agent (tests/agents.py: LightGCN trained here, a real catalog slice, the
shipped SmolLM2 with the tuned router) through the same runner the CLI uses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.evals import dialogues as de
from agent.cli import app

DIALOGUES = Path(__file__).parent.parent / "evaluation" / "dialogues"
runner = CliRunner()


def item(title: str, year: int | None = 1995, genres=("Comedy",), domain: str = "movie", item_id: str | None = None) -> dict:
    return {"item_id": item_id or f"id:{title}", "title": title, "year": year, "genres": list(genres), "domain": domain}


def outcome(reply: str = "", items=(), intent: str = "recommend") -> dict:
    return {"say": "", "intent": intent, "reply": reply, "items": list(items)}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- normalisers


@pytest.mark.parametrize("a, b", [
    ("Fish Called Wanda, A (1988)", "A Fish Called Wanda"),
    ("Lion King, The", "the lion king"),
    ("Lion King, The (1994)", "The Lion King"),
    ("American in Paris, An", "An American in Paris"),
    ("Toy Story (1995)", "TOY STORY"),
    ("Adventures of Priscilla, Queen of the Desert, The", "The Adventures of Priscilla Queen of the Desert"),
    ("Monty Python's Life of Brian", "monty pythons life of brian"),
    ("2001: A Space Odyssey (1968)", "2001 a space odyssey"),
])
def test_titles_that_are_the_same_normalise_the_same(a: str, b: str) -> None:
    assert de.normalize_title(a) == de.normalize_title(b)


def test_title_normaliser_follows_its_rules_exactly() -> None:
    assert de.normalize_title("Fish Called Wanda, A (1988)") == "afishcalledwanda"
    assert de.normalize_title("Birdcage, The") == "thebirdcage"
    assert de.normalize_title("Star Wars: Episode IV - A New Hope") == "starwarsepisodeivanewhope"
    assert de.normalize_title("Se7en (1995)") == "se7en"
    assert de.normalize_title("Léon") == "léon"  # letters are letters, accented or not
    # only a trailing year and a trailing article are special; nothing else is dropped or rewritten
    assert de.normalize_title("1984") == "1984"
    assert de.normalize_title("The Firm") != de.normalize_title("Firm")  # unlike tools.resolve.match_key
    assert de.normalize_title("Toy Story 2") != de.normalize_title("Toy Story")
    assert de.normalize_title("Toy Story (1995) 2") == "toystory19952"  # the year only counts at the end
    assert de.normalize_title("Theme, The") == "thetheme" and de.normalize_title("Panorama") == "panorama"


@pytest.mark.parametrize("a, b", [("Children's", "children"), ("Children's", "CHILDREN"), ("Sci-Fi", "sci fi"),
                                  ("Sci-Fi", "SCIFI"), ("Film-Noir", "film noir"), ("Children’s", "children")])
def test_genres_compare_ignoring_case_possessive_and_punctuation(a: str, b: str) -> None:
    assert de.normalize_genre(a) == de.normalize_genre(b)


def test_different_genres_stay_different() -> None:
    assert de.normalize_genre("Children's") == "children" and de.normalize_genre("Sci-Fi") == "scifi"
    assert de.normalize_genre("Comedy") != de.normalize_genre("Drama")
    assert de.normalize_genre("Sci-Fi") != de.normalize_genre("Fi")


# ----------------------------------------------------------------------------- checks

FIVE = [item("Lion King, The", 1994, ["Animation", "Children's", "Musical"]),
        item("Beauty and the Beast", 1991, ["Animation", "Children's", "Musical"]),
        item("Babe", 1995, ["Children's", "Comedy", "Drama"]),
        item("Heat", 1995, ["Action", "Crime", "Thriller"]),
        item("Fargo", 1996, ["Crime", "Drama", "Thriller"])]


def test_intent_check() -> None:
    assert de.check_intent("recommend", "recommend").passed
    failed = de.check_intent("explain", "chitchat")
    assert not failed.passed and failed.name == "intent" and "explain" in failed.detail and "chitchat" in failed.detail


def test_count_and_min_count() -> None:
    assert de.check_count(5, FIVE).passed
    assert not de.check_count(4, FIVE).passed and not de.check_count(6, FIVE).passed
    assert de.check_count(0, []).passed and not de.check_count(0, FIVE[:1]).passed
    assert de.check_min_count(3, FIVE).passed and de.check_min_count(5, FIVE).passed
    failed = de.check_min_count(6, FIVE)
    assert not failed.passed and "5 items" in failed.detail


def test_exclude_titles_matches_after_normalising() -> None:
    assert de.check_exclude_titles(["Toy Story", "Aladdin"], FIVE).passed
    failed = de.check_exclude_titles(["The Lion King (1994)"], FIVE)
    assert not failed.passed and "Lion King, The" in failed.detail
    assert not de.check_exclude_titles(["fargo"], FIVE).passed
    assert de.check_exclude_titles(["Lion King"], FIVE).passed  # the article is part of the title
    assert de.check_exclude_titles(["Fargo"], []).passed


def test_include_any_titles() -> None:
    assert de.check_include_any_titles(["Toy Story", "Lion King, The"], FIVE).passed
    assert de.check_include_any_titles(["the lion king"], FIVE).passed
    failed = de.check_include_any_titles(["Toy Story", "Aladdin"], FIVE)
    assert not failed.passed and "Heat" in failed.detail
    assert not de.check_include_any_titles(["Fargo"], []).passed


def test_genres_any_share() -> None:
    # 3 of 5 have Animation or Children's: 0.6 passes the default share, not 0.8
    assert de.check_genres_any(["Animation", "Children's"], FIVE).passed
    assert de.check_genres_any(["animation", "CHILDREN"], FIVE, 0.6).passed
    failed = de.check_genres_any(["Animation", "Children's"], FIVE, 0.8)
    assert not failed.passed and "3/5" in failed.detail and "Heat" in failed.detail
    assert not de.check_genres_any(["Animation"], FIVE).passed  # 2/5
    assert de.check_genres_any(["Crime"], FIVE, 0.4).passed and not de.check_genres_any(["Crime"], FIVE, 1.0).passed
    books = [item("The Firm", 1991, [], "book")]
    assert not de.check_genres_any(["Thriller"], books).passed  # no genres is not a match
    assert not de.check_genres_any(["Comedy"], []).passed  # nothing to judge: the expectation wanted items


def test_genres_none() -> None:
    assert de.check_genres_none(["Horror"], FIVE).passed
    failed = de.check_genres_none(["horror", "thriller"], FIVE)
    assert not failed.passed and "Heat" in failed.detail and "Fargo" in failed.detail


def test_genres_all_needs_every_genre_on_the_share_of_items() -> None:
    # Crime and Thriller: Heat and Fargo (2/5); Children's and Musical: the two Disney films
    assert de.check_genres_all(["crime", "Thriller"], FIVE, 0.4).passed
    failed = de.check_genres_all(["Crime", "Thriller"], FIVE, 0.6)
    assert not failed.passed and "2/5" in failed.detail and "Babe" in failed.detail
    assert not de.check_genres_all(["Animation", "Comedy"], FIVE, 0.2).passed  # one of each is not both
    assert not de.check_genres_all(["Crime"], []).passed


def test_year_range_is_inclusive_and_needs_a_year() -> None:
    assert de.check_year_range([1991, 1996], FIVE).passed
    failed = de.check_year_range([1992, 1996], FIVE)
    assert not failed.passed and "Beauty and the Beast" in failed.detail
    assert not de.check_year_range([1990, 1995], FIVE).passed  # Fargo 1996
    assert not de.check_year_range([1900, 2100], [item("Untitled", None)]).passed
    assert not de.check_year_range([1990, 1999], []).passed


def test_domain() -> None:
    assert de.check_domain("movie", FIVE).passed
    mixed = FIVE + [item("The Firm", 1991, [], "book")]
    failed = de.check_domain("movie", mixed)
    assert not failed.passed and "The Firm" in failed.detail
    assert not de.check_domain("book", FIVE).passed
    assert not de.check_domain("book", []).passed


def test_no_repeats() -> None:
    assert de.check_no_repeats(FIVE[:2], [FIVE[2:], []]).passed
    failed = de.check_no_repeats(FIVE[:2], [[FIVE[1]]])
    assert not failed.passed and "Beauty and the Beast" in failed.detail


def test_mentions_item_names_the_item_at_that_position() -> None:
    assert de.check_mentions_item(2, "Beauty and the Beast (1991) is here because you liked Aladdin.", FIVE).passed
    assert de.check_mentions_item(1, "The Lion King shares Animation with what you loved.", FIVE).passed
    assert de.check_mentions_item(1, "Lion King is a family classic.", FIVE).passed  # without its article
    failed = de.check_mentions_item(2, "The Lion King shares Animation with Toy Story.", FIVE)
    assert not failed.passed and "Beauty and the Beast" in failed.detail
    assert not de.check_mentions_item(6, "Fargo", FIVE).passed  # no item 6
    assert not de.check_mentions_item(1, "Fargo", None).passed  # no earlier list


def test_mentions_any_and_not_empty() -> None:
    assert de.check_mentions_any(["couldn't find", "not in the catalog"], "I COULDN'T FIND that.").passed
    assert not de.check_mentions_any(["Fargo"], "Heat is good").passed
    assert not de.check_mentions_none(["couldn't find"], "I COULDN'T FIND that.").passed
    assert de.check_mentions_none(["Fargo", "did you mean"], "Heat is good").passed
    assert de.check_not_empty("Hello").passed
    assert not de.check_not_empty("  \n").passed


def test_run_checks_in_a_dialogue() -> None:
    expect = {"intent": "explain", "mentions_item": 2, "not_empty": True, "count": 1, "genres_any": ["Musical"]}
    said = outcome("Beauty and the Beast: like Aladdin, a musical.", [FIVE[1]], "explain")
    # the list pointed into is the most recent earlier turn that had items (the empty one is skipped)
    checks = de.run_checks(expect, said, [FIVE[2:], FIVE, []])
    assert [c.name for c in checks] == ["intent", "count", "genres_any", "mentions_item", "not_empty"]
    assert all(c.passed for c in checks), checks
    pointed_elsewhere = de.run_checks({"mentions_item": 2}, said, [FIVE, FIVE[2:]])
    assert not pointed_elsewhere[0].passed and "Heat" in pointed_elsewhere[0].detail
    # genres_min_share folds into genres_any; not_empty/no_repeats false ask for nothing
    checks = de.run_checks({"genres_any": ["Animation"], "genres_min_share": 0.4, "not_empty": False,
                            "no_repeats": False}, outcome("", FIVE), [])
    assert [(c.name, c.passed) for c in checks] == [("genres_any", True)]
    assert not de.run_checks({"genres_any": ["Animation"]}, outcome("", FIVE), [])[0].passed  # default 0.6
    assert de.run_checks({}, outcome("x", FIVE), []) == []


def test_summary_table_and_exit_code() -> None:
    def turn(intent, passed_flags, latency):
        return {"say": "x", "intent": intent, "reply": "r", "items": [], "latency_s": latency,
                "checks": [{"name": n, "passed": p, "detail": "d"} for n, p in passed_flags]}

    dialogues = [
        {"name": "good", "passed": True, "turns": [turn("recommend", [("intent", True), ("count", True)], 1.0),
                                                   turn("explain", [("intent", True)], 3.0)]},
        {"name": "bad", "passed": False, "turns": [turn("chitchat", [("intent", False), ("not_empty", True)], 2.0),
                                                   turn("recommend", [("year_range", False)], 4.0)]},
    ]
    s = de.summarize(dialogues)
    assert s == {"dialogues": 2, "dialogues_passed": 1, "checks": 6, "checks_passed": 4, "intent_accuracy": 0.6667,
                 "latency_p50_s": 2.5, "latency_p95_s": 3.85}
    report = {"summary": s, "dialogues": dialogues}
    assert de.exit_code(report) == 1
    table = de.format_table(report)
    assert "PASS" in table and "FAIL" in table and "3/3" in table and "1/3" in table
    assert "✗ year_range: d" in table and "✗ intent: d" in table and "4/6" in table
    assert de.summarize([{"name": "n", "passed": True, "turns": [turn("chitchat", [("count", True)], 1.0)]}])[
        "intent_accuracy"] is None
    assert de.exit_code({"summary": de.summarize(dialogues[:1])}) == 0


# ----------------------------------------------------------------------------- validation

GOOD = """\
name: fine
user: null
turns:
  - say: "hello"
    expect: {intent: chitchat}
"""


def run_cli(*args: str):
    return runner.invoke(app, ["eval-dialogues", *args])


@pytest.fixture
def no_agent(monkeypatch):
    """Bad files must be reported before the agent is built."""
    from agent.agent import Agent

    def refuse(*a, **k):
        raise AssertionError("the agent was built for a bad file")

    monkeypatch.setattr(Agent, "from_settings", classmethod(refuse))


def test_yaml_syntax_error_names_file_and_line(tmp_path, no_agent) -> None:
    bad = write(tmp_path, "syntax.yaml", "name: x\nturns:\n  - say: \"hi\"\n    expect: [intent: chitchat\n  - say: x\n")
    result = run_cli(str(bad))
    assert result.exit_code == 2, result.output
    assert f"{bad}:5: YAML syntax error" in result.output


def test_unclosed_quote_points_at_where_it_started(tmp_path, no_agent) -> None:
    bad = write(tmp_path, "quote.yaml", "name: x\nturns:\n  - say: \"hi\n    expect: {intent: chitchat}\n")
    result = run_cli(str(bad))
    assert result.exit_code == 2 and f"{bad}:" in result.output and "line 3" in result.output, result.output


def test_unknown_expect_key_names_its_line(tmp_path, no_agent) -> None:
    bad = write(tmp_path, "unknown.yaml", "name: x\nuser: null\nturns:\n  - say: hi\n    expect:\n"
                                          "      intent: chitchat\n      colour: red\n")
    result = run_cli(str(bad))
    assert result.exit_code == 2
    assert f"{bad}:7: unknown expect key 'colour'" in result.output


def test_missing_say_names_the_turn_line(tmp_path, no_agent) -> None:
    bad = write(tmp_path, "nosay.yaml", "name: x\nturns:\n  - say: hi\n  - expect:\n      intent: chitchat\n")
    result = run_cli(str(bad))
    assert result.exit_code == 2
    assert f"{bad}:4: turn 2 has no say" in result.output


@pytest.mark.parametrize("expect_line, message", [
    ("count: five", "expect.count must be a whole number"),
    ("count: true", "expect.count must be a whole number"),
    ("intent: chatter", "unknown intent 'chatter'"),
    ("intent: 3", "expect.intent must be a string"),
    ("year_range: [1999, 1990]", "expect.year_range [1999, 1990] is reversed"),
    ("year_range: 1990", "expect.year_range must be [first year, last year]"),
    ("exclude_titles: Fargo", "expect.exclude_titles must be a list of strings"),
    ("genres_any: []", "expect.genres_any must not be an empty list"),
    ("genres_min_share: 1.5", "expect.genres_min_share must be a number from 0 to 1"),
    ("domain: music", "expect.domain must be one of movie, book"),
    ("no_repeats: yes please", "expect.no_repeats must be true or false"),
    ("mentions_item: 0", "expect.mentions_item must be a position >= 1"),
])
def test_wrong_types_name_the_line_of_the_value(tmp_path, no_agent, expect_line: str, message: str) -> None:
    bad = write(tmp_path, "types.yaml", f"name: x\nuser: null\nturns:\n  - say: hi\n  - say: again\n    expect:\n"
                                        f"      not_empty: true\n      {expect_line}\n")
    result = run_cli(str(bad))
    assert result.exit_code == 2, result.output
    assert f"{bad}:8: {message}" in result.output, result.output


def test_other_bad_shapes(tmp_path) -> None:
    cases = {
        "user_int.yaml": ("name: x\nuser: 196\nturns:\n  - say: hi\n", 2, "user must be a dataset user id as a string"),
        "say_null.yaml": ("name: x\nturns:\n  - say:\n", 3, "say must be a string"),
        "no_turns.yaml": ("name: x\nuser: null\n", 1, "dialogue 'x' has no turns"),
        "empty_turns.yaml": ("name: x\nturns: []\n", 2, "turns must be a non-empty list"),
        "turn_str.yaml": ("name: x\nturns:\n  - hello\n", 3, "turn 1 must be a mapping"),
        "dialogue_key.yaml": ("name: x\nspeaker: bob\nturns:\n  - say: hi\n", 2, "unknown dialogue key 'speaker'"),
        "turn_key.yaml": ("name: x\nturns:\n  - say: hi\n    reply: hello\n", 4, "unknown turn key 'reply'"),
        "share_alone.yaml": ("name: x\nturns:\n  - say: hi\n    expect:\n      genres_min_share: 0.5\n", 5,
                             "expect.genres_min_share needs genres_any"),
        "first_item.yaml": ("name: x\nturns:\n  - say: why the first?\n    expect:\n      mentions_item: 1\n", 5,
                            "expect.mentions_item on the first turn"),
        "dup.yaml": ("name: x\nname: y\nturns:\n  - say: hi\n", 2, "YAML error: duplicate key 'name'"),
        "list.yaml": ("- say: hi\n", 1, "expected a dialogue mapping"),
        "empty.yaml": ("", 1, "the file is empty"),
        "many.yaml": ("dialogues:\n  - name: a\n    turns:\n      - say: hi\n  - name: b\n    turns:\n"
                      "      - say: hi\n        expect: {count: -1}\n", 8, "expect.count must be a whole number"),
    }
    for name, (text, line, message) in cases.items():
        path = write(tmp_path, name, text)
        with pytest.raises(de.DialogueFileError) as raised:
            de.load_file(path)
        assert f"{path}:{line}: {message}" in str(raised.value), (name, str(raised.value))


def test_all_files_are_validated_and_every_problem_reported_before_running(tmp_path, no_agent) -> None:
    good = write(tmp_path, "good.yaml", GOOD)
    bad1 = write(tmp_path, "bad1.yaml", GOOD.replace("intent: chitchat", "intent: chitchat, colour: red"))
    bad2 = write(tmp_path, "bad2.yaml", GOOD.replace('say: "hello"', "said: hello"))
    result = run_cli(str(good), str(bad1), str(bad2), str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert f"{bad1}:5: unknown expect key 'colour'" in result.output
    assert f"{bad2}:4: turn 1 has no say" in result.output and f"{bad2}:4: unknown turn key 'said'" in result.output
    assert f"{tmp_path / 'missing.yaml'}: cannot read it" in result.output
    assert str(good) + ":" not in result.output
    not_utf8 = tmp_path / "latin1.yaml"
    not_utf8.write_bytes("name: caf\xe9\nturns:\n  - say: hi\n".encode("latin-1"))
    with pytest.raises(de.DialogueFileError, match="not UTF-8"):
        de.load_file(not_utf8)


def test_one_dialogue_or_a_list(tmp_path) -> None:
    one = de.load_file(write(tmp_path, "one.yaml", GOOD))
    assert [(d.name, d.user, [t.say for t in d.turns]) for d in one] == [("fine", None, ["hello"])]
    assert one[0].turns[0].expect == {"intent": "chitchat"}
    many = de.load_file(write(tmp_path, "many.yaml", 'dialogues:\n  - user: "196"\n    turns:\n      - say: ""\n'
                                                     "  - name: second\n    turns:\n      - say: hi\n"))
    assert [(d.name, d.user) for d in many] == [("many#1", "196"), ("second", None)]
    assert many[0].turns[0].say == "" and many[0].turns[0].expect == {}


def test_unknown_user_is_reported_with_its_line_before_running(tmp_path) -> None:
    path = write(tmp_path, "user.yaml", 'name: x\nuser: "no-such-user"\nturns:\n  - say: hi\n')
    dialogues = de.load_file(path)
    with pytest.raises(de.DialogueFileError, match=rf"{path}:2: no user 'no-such-user' in the ml-100k data"):
        de.check_users(dialogues, lambda u: u == "196", "the ml-100k data")
    de.check_users(de.load_file(write(tmp_path, "ok.yaml", 'name: x\nuser: "196"\nturns:\n  - say: hi\n')),
                   lambda u: u == "196")


def test_shipped_dialogues_parse_validate_and_cover_the_cases() -> None:
    files = sorted(DIALOGUES.glob("*.yaml"))
    dialogues = de.load_dialogues(files)
    assert len(dialogues) >= 25
    names = [d.name for d in dialogues]
    assert len(names) == len(set(names)), "dialogue names must be unique"
    expects = [t.expect for d in dialogues for t in d.turns]
    assert {d.user for d in dialogues if d.user} and any(d.user is None for d in dialogues)  # warm and anonymous
    assert any(e.get("mentions_item") for e in expects)  # explanations of item k
    assert any(e.get("domain") == "book" for e in expects)  # cross-domain
    assert any("year_range" in e for e in expects) and any("genres_any" in e for e in expects)
    assert {e.get("intent") for e in expects} >= {"recommend", "explain", "chitchat"}
    assert any(t.say == "" for d in dialogues for t in d.turns)  # empty input
    assert any(e.get("no_repeats") for e in expects)  # "something else"


def test_help_lists_the_command() -> None:
    result = runner.invoke(app, ["eval-dialogues", "--help"])
    assert result.exit_code == 0 and "--json" in result.output and "--backend" in result.output


# ----------------------------------------------------------------------------- end to end, real agent


def test_runner_end_to_end_on_the_real_agent(agent_parts, tmp_path, monkeypatch) -> None:
    from agent.agent import Agent
    from tests.agents import build_agent

    agent = build_agent(agent_parts, tmp_path)
    fine = write(tmp_path, "fine.yaml", """\
name: animation
user: null
turns:
  - say: "I loved Toy Story and Aladdin. What should I watch next?"
    expect:
      intent: recommend
      min_count: 1
      exclude_titles: ["Toy Story", "Aladdin"]
  - say: ""
    expect:
      count: 0
      not_empty: true
  - say: "why the first one?"
    expect:
      mentions_item: 1
""")
    impossible = write(tmp_path, "impossible.yaml", """\
dialogues:
  - name: impossible
    user: "196"
    turns:
      - say: "Recommend me three comedies"
        expect:
          year_range: [1800, 1801]
          include_any_titles: ["Zorblax Returns"]
          count: 11
  - name: anonymous-empty
    user: null
    turns:
      - say: ""
        expect:
          intent: chitchat
          not_empty: true
""")
    out = tmp_path / "report" / "dlg.json"
    shown: list[str] = []
    progress: list[str] = []
    code, report = de.evaluate(agent, [fine, impossible], out, echo=shown.append, progress=progress.append)
    assert code == 1  # the impossible expectations fail
    assert json.loads(out.read_text(encoding="utf-8")) == report

    assert set(report) == {"summary", "dialogues"}
    s = report["summary"]
    assert set(s) == {"dialogues", "dialogues_passed", "checks", "checks_passed", "intent_accuracy",
                      "latency_p50_s", "latency_p95_s"}
    assert s["dialogues"] == 3 and s["checks"] == 11 and s["checks_passed"] <= 8
    assert 0 < s["latency_p50_s"] <= s["latency_p95_s"]
    assert s["intent_accuracy"] is not None and 0 <= s["intent_accuracy"] <= 1
    assert [d["name"] for d in report["dialogues"]] == ["animation", "impossible", "anonymous-empty"]
    for d in report["dialogues"]:
        assert {"name", "passed", "turns"} <= set(d)
        for turn in d["turns"]:
            contract = {"say", "intent", "reply", "items", "checks", "latency_s"}
            assert contract <= set(turn) <= contract | {"timings", "expected_intent"}  # optional extras
            assert turn["latency_s"] >= 0 and turn["intent"] in de.INTENTS
            for it in turn["items"]:
                assert set(it) == {"item_id", "title", "year", "genres", "domain"} and it["title"]
            for c in turn["checks"]:
                assert set(c) == {"name", "passed", "detail"} and isinstance(c["passed"], bool) and c["detail"]

    animation, bad, empty = report["dialogues"]
    first = animation["turns"][0]
    assert first["intent"] == "recommend" and first["items"], first  # what the real agent did, not a stub
    assert [c["name"] for c in first["checks"]] == ["intent", "min_count", "exclude_titles"]
    # for chatrec report: the expected intent where the file gives one, the agent's seconds per step
    assert first["expected_intent"] == "recommend" and "expected_intent" not in animation["turns"][2]
    assert {"router", "candidates", "reply", "total"} <= set(first["timings"])
    assert 0 < first["timings"]["total"] <= first["latency_s"]
    # the empty message gets the agent's fixed answer and no items
    assert animation["turns"][1]["items"] == [] and all(c["passed"] for c in animation["turns"][1]["checks"])
    # the explanation's check points into the first turn's list (the empty turn had none)
    mentions = animation["turns"][2]["checks"][0]
    assert mentions["name"] == "mentions_item" and first["items"][0]["title"] in mentions["detail"]
    assert not bad["passed"]
    failed = {c["name"] for c in bad["turns"][0]["checks"] if not c["passed"]}
    assert failed == {"year_range", "include_any_titles", "count"}
    assert empty["passed"] and empty["turns"][0]["intent"] == "chitchat"

    # each dialogue in its own fresh session, as its user
    sessions = [d["session_id"] for d in report["dialogues"]]
    assert len(set(sessions)) == 3
    assert agent.sessions.get(sessions[1]).user_id == "196" and agent.sessions.get(sessions[0]).user_id is None
    assert len(agent.sessions.get(sessions[0]).turns) == 4  # the empty turn is answered, not stored

    table = "\n".join(shown)
    assert "FAIL" in table and "impossible" in table and "✗ year_range" in table and "dialogues passed" in table
    assert len(progress) == 5 and progress[0].startswith("[1/3] animation: turn 1/3")

    # the typer command, on the same agent: exit 1 and the report file
    monkeypatch.setattr(Agent, "from_settings", classmethod(lambda cls, *a, **k: agent))
    cli_out = tmp_path / "cli.json"
    result = runner.invoke(app, ["eval-dialogues", str(impossible), "--json", str(cli_out)])
    assert result.exit_code == 1, result.output
    cli_report = json.loads(cli_out.read_text(encoding="utf-8"))
    assert cli_report["summary"]["dialogues"] == 2 and cli_report["summary"]["dialogues_passed"] == 1
    assert re.search(r"^FAIL +impossible +0/3", result.output, re.M) and re.search(r"^PASS +anonymous-empty",
                                                                                   result.output, re.M)
    # and exit 0 when everything passes
    result = runner.invoke(app, ["eval-dialogues", str(write(tmp_path, "ok.yaml", 'name: ok\nturns:\n  - say: ""\n'
                                                                                     "    expect: {not_empty: true}\n"))])
    assert result.exit_code == 0, result.output
