"""The router with the real shipped model: the tuned adapter routes, few-shot prompting works for
any other model, and the answer always fits the contract."""

from __future__ import annotations

import pytest

from agent.llm import LocalChatModel
from agent.router import (INTENTS, SLOT_KEYS, Router, compact_answer, load_examples, parse_answer, parse_salvaged,
                          parse_strict)

MODEL_FIXTURES = {"router", "tuned"}  # tests using them are marked model (conftest): they load the LLM


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(LocalChatModel(n_threads=1), shots=3)


def test_training_examples_are_complete() -> None:
    examples = load_examples()
    assert len(examples) >= 400
    assert all(e["intent"] in INTENTS and set(SLOT_KEYS) - {"clear"} <= set(e["slots"]) <= set(SLOT_KEYS)
               for e in examples)


def test_few_shot_examples_are_the_nearest_by_meaning(router: Router) -> None:
    shots = router.nearest("why did you pick the second one for me?")
    assert len(shots) == 3 and shots[-1]["intent"] == "explain"


def test_a_route_fits_the_contract(router: Router) -> None:
    context = [{"role": "user", "text": "something like Heat"},
               {"role": "assistant", "text": "Try these:", "items": ["Ronin", "Casino", "Thief"]}]
    route = router.route("any more like the first one, but from the 90s?", context)
    assert route.intent in INTENTS and set(route.slots) == set(SLOT_KEYS)
    assert router.route("   ").intent == "chitchat"


@pytest.mark.model  # the command loads the LLM
def test_route_command_prints_the_contract(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from agent.cli import app

    runner = CliRunner()
    one = runner.invoke(app, ["route", "hello there!", "--json"], catch_exceptions=False)
    assert one.exit_code == 0, one.output
    value = json.loads(one.stdout)
    assert value["intent"] in INTENTS and set(value["slots"]) == set(SLOT_KEYS)
    lines = tmp_path / "utterances.txt"
    lines.write_text("hi\nrecommend me a comedy\n\nwhy the first one?\n", encoding="utf-8")
    many = runner.invoke(app, ["route", "--file", str(lines), "--json"], catch_exceptions=False)
    assert many.exit_code == 0 and len(json.loads(many.stdout)) == 3  # blank lines skipped, order kept
    assert runner.invoke(app, ["route", "  "]).exit_code == 2


@pytest.fixture(scope="module")
def tuned() -> Router:
    from agent.router import make_router
    from agent.config import Settings

    router = make_router(Settings(), llm=None)
    assert router.mode == "tuned", "the default local model routes with the shipped adapter"
    return router


@pytest.mark.parametrize(("context", "utterance", "intent", "slots"), [
    ([], "good evening! how's it going?", "chitchat", {}),
    ([], "could you find me three sci-fi movies from the 70s", "recommend",
     {"genres": ["sci-fi"], "year_from": 1970, "year_to": 1979}),  # counts: see RESULTS §8 and asked_count
    ([{"role": "user", "text": "a heist film?"},
      {"role": "assistant", "text": "Try these:", "items": ["Ronin", "Heat", "Thief"]}],
     "what makes the third one a fit for me?", "explain", {"reference": 3}),
    ([{"role": "user", "text": "a heist film?"},
      {"role": "assistant", "text": "Try these:", "items": ["Ronin", "Heat", "Thief"]}],
     "seen Heat already, give me others", "recommend", {}),
])
def test_the_tuned_router_routes_and_fills_slots(tuned: Router, context, utterance, intent, slots) -> None:
    route = tuned.route(utterance, context)
    assert route.intent == intent
    for key, value in slots.items():
        assert route.slots[key] == value, (key, route.slots)


def test_the_compact_answer_round_trips() -> None:
    row = next(e for e in load_examples() if e["slots"].get("clear"))
    route = parse_answer(compact_answer(row["intent"], row["slots"]))
    assert route.intent == row["intent"]
    assert {k: v for k, v in route.slots.items() if v not in (None, [])} == \
        {k: v for k, v in row["slots"].items() if v not in (None, [])}
    assert parse_answer('{"intent": "explain", "slots": {"refer').intent == "explain"  # cut off: label kept


def test_a_free_answer_counts_only_when_it_fits_the_schema() -> None:
    for row in load_examples()[:200]:  # every training answer is one the grammar allows
        route = parse_strict(compact_answer(row["intent"], row["slots"]))
        assert route is not None and route.intent == row["intent"], row
        assert set(route.slots) == set(SLOT_KEYS)
    for content in ['{"intent":"recommend","slots":{"year_from":"1990"}}',  # a string where an int goes
                    '{"intent":"recommend","slots":{"genres":["sci fi"]}}',  # a genre not in the list
                    '{"intent":"recommend","slots":{"mood":"happy"}}',  # a slot that does not exist
                    '{"intent":"suggest","slots":{}}', '{"intent":"recommend"}',
                    '{"intent":"recommend","slots":{"count":true}}',  # a bool is not an integer
                    '{"intent":"explain","slots":{"refer', 'Sure! {"intent":"chitchat","slots":{}}']:
        assert parse_strict(content) is None, content


def test_a_made_up_list_value_is_dropped_and_the_rest_of_the_answer_kept() -> None:
    route = parse_salvaged('{"intent":"recommend","slots":{"genres":["sophomerousment","comedy"],"clear":["genres"]}}')
    assert route is not None and route.intent == "recommend"
    assert route.slots["genres"] == ["comedy"] and route.slots["clear"] == ["genres"]
    for content in ['{"intent":"recommend","slots":{"genres":["comedy"]}}',  # fits already: parse_strict's
                    '{"intent":"recommend","slots":{"genres":["x"],"year_from":"1990"}}',  # another misfit
                    '{"intent":"suggest","slots":{"genres":["x"]}}', '{"intent":"recommend","slots":{"genres":["x"',
                    '["recommend"]']:
        assert parse_salvaged(content) is None, content


@pytest.mark.model
@pytest.mark.parametrize("utterance", ["thanks, that's all", "why the second one?", "any 80s horror, not slashers",
                                       "I liked Heat but hated Ronin, more like Heat please"])
def test_the_free_answer_is_the_grammar_answer(tuned: Router, utterance) -> None:
    """The tuned adapter answers free first (faster); where that answer fits the schema it is the
    one the grammar would have given, since greedy decoding under the grammar picks the same tokens."""
    context = [{"role": "user", "text": "a heist film?"},
               {"role": "assistant", "text": "Try these:", "items": ["Ronin", "Heat", "Thief"]}]
    free = tuned.route(utterance, context)
    tuned.grammar = "always"
    try:
        constrained = tuned.route(utterance, context)
    finally:
        tuned.grammar = "fallback"
    assert free.to_dict() == constrained.to_dict()
