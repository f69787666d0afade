"""Explanations (tools/explain.py) without a model: the guard on what an explanation may name,
and the plain explanation it falls back to."""

from __future__ import annotations

import pytest

from tests.items import BABE, DUNE, FARGO, GODFATHER, HEAT
from tools.explain import Evidence, Explainer
from tools.resolve import TitleSpotter


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    class _Tool:  # the guard needs only the catalog's titles
        recommender = None

    return Explainer(llm=None, tool=_Tool(), spotter=TitleSpotter([FARGO, HEAT, BABE, GODFATHER, DUNE]))


def test_the_guard_wants_the_item_named_and_no_stranger_titles(explainer: Explainer) -> None:
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"])
    assert explainer.guard("Fargo is a dark crime story, close to Heat, which you liked.", ev) == ""
    assert "does not name" in explainer.guard("A dark crime story, close to Heat.", ev)
    assert "godfather" in explainer.guard("Fargo is like The Godfather and Heat.", ev)
    assert explainer.guard("", ev) == "empty"
    plain = explainer.plain(ev)
    assert plain.startswith("Fargo") and "Heat" in plain and explainer.guard(plain, ev) == ""


def test_the_guard_rejects_genres_the_evidence_does_not_hold(explainer: Explainer) -> None:
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"])
    assert explainer.guard("Fargo is a crime thriller, like Heat.", ev) == ""  # the item's own genres
    assert explainer.guard("Fargo is a horror classic.", ev) == "names genres not in the evidence: Horror"
    assert explainer.guard("Fargo is a romantic comedy.", ev) == "names genres not in the evidence: Comedy, Romance"
    # both wrong: the title is reported (the first rule broken)
    assert explainer.guard("Fargo is a horror film like Heat.", Evidence(FARGO)) == "names titles not in the evidence: heat"
