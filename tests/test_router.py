"""The router prototype with the real shipped model: the answer always fits the contract."""

from __future__ import annotations

import pytest

from agent.llm import LocalChatModel
from agent.router import INTENTS, SLOT_KEYS, Router, load_examples


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(LocalChatModel(n_threads=1), shots=3)


def test_training_examples_are_complete() -> None:
    examples = load_examples()
    assert len(examples) >= 400
    assert all(e["intent"] in INTENTS and set(SLOT_KEYS) <= set(e["slots"]) for e in examples)


def test_few_shot_examples_are_the_nearest_by_meaning(router: Router) -> None:
    shots = router.nearest("why did you pick the second one for me?")
    assert len(shots) == 3 and shots[-1]["intent"] == "explain"


def test_a_route_fits_the_contract(router: Router) -> None:
    context = [{"role": "user", "text": "something like Heat"},
               {"role": "assistant", "text": "Try these:", "items": ["Ronin", "Casino", "Thief"]}]
    route = router.route("any more like the first one, but from the 90s?", context)
    assert route.intent in INTENTS and set(route.slots) == set(SLOT_KEYS)
    assert router.route("   ").intent == "chitchat"


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
