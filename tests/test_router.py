"""The router with the real shipped model: the tuned adapter routes, few-shot prompting works for
any other model, and the answer always fits the contract."""

from __future__ import annotations

import pytest

from agent.llm import LocalChatModel
from agent.router import INTENTS, SLOT_KEYS, Router, compact_answer, load_examples, parse_answer

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
