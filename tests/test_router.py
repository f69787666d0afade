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
    shots = router.nearest("why did you pick the second one for me?", [])
    assert len(shots) == 3 and shots[-1]["intent"] == "explain"


def test_a_route_fits_the_contract(router: Router) -> None:
    context = [{"role": "user", "text": "something like Heat"},
               {"role": "assistant", "text": "Try these:", "items": ["Ronin", "Casino", "Thief"]}]
    route = router.route("any more like the first one, but from the 90s?", context)
    assert route.intent in INTENTS and set(route.slots) == set(SLOT_KEYS)
    assert router.route("   ").intent == "chitchat"
