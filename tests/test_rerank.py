"""The re-rankers (tools/rerank.py) without a model: the listwise order's validation and schema,
the pointwise re-ranker on a table of P("yes"), the fused order, the pointwise ask."""

from __future__ import annotations

import json

import pytest

from tests.items import BABE, FARGO, GODFATHER, HEAT
from tools.catalog import CatalogItem
from tools.rerank import order_schema, validate_order


@pytest.mark.parametrize(("answer", "expected"), [
    ('{"order": [3, 1, 2]}', [2, 0, 1]),
    ('{"order": [2, 4, 1, 3, 5, 6]}', [1, 3, 0]),  # longer than asked: the first `count`
])
def test_a_usable_order_is_taken(answer: str, expected: list[int]) -> None:
    order, problem = validate_order(answer, n_candidates=6, count=3)
    assert order == expected and problem == ""


@pytest.mark.parametrize(("answer", "reason"), [
    ('{"order": [1, 1, 2]}', "repeated"),
    ('{"order": [0, 2]}', "not a candidate"),
    ('{"order": [7]}', "not a candidate"),
    ('{"order": [true]}', "not a candidate"),
    ('{"order": []}', "empty"),
    ('{"ranking": [1]}', "JSON"),
    ('[1, 2', "JSON"),
])
def test_an_unusable_order_is_refused_with_the_reason(answer: str, reason: str) -> None:
    order, problem = validate_order(answer, n_candidates=6, count=3)
    assert order is None and reason in problem


def test_the_order_schema_names_only_candidates() -> None:
    schema = order_schema(4, 2)["properties"]["order"]
    assert schema["items"]["enum"] == [1, 2, 3, 4] and schema["maxItems"] == 2
    json.dumps(schema)


class _Odds:
    """Says P("yes") from a table by the title in the ask (the pointwise re-ranker's only call)."""

    def __init__(self, odds: dict[str, float], fail: bool = False) -> None:
        self.odds, self.fail, self.asks = odds, fail, []

    def answer_probabilities(self, messages, answers):
        from tools.chat import LLMUnavailable

        if self.fail:
            raise LLMUnavailable("the endpoint is down")
        self.asks.append(messages)
        p = next(v for title, v in self.odds.items() if f"enjoy {title} (" in messages[-1].content)
        return {"yes": p, "no": 1 - p}


def _cands(*items: CatalogItem) -> list:
    from tools.candidates import Candidate

    return [Candidate(item, 1.0 - n / 10, "graph") for n, item in enumerate(items)]


def test_fused_order_averages_the_two_ranks_and_keeps_the_scored_order_on_ties() -> None:
    from tools.rerank import fused_order

    assert fused_order([0.1, 0.2, 0.3]) == [0, 1, 2]  # ranks (0,2) (1,1) (2,0): all tie, scored order kept
    assert fused_order([0.1, 0.9, 0.5, 0.2]) == [1, 0, 2, 3]
    assert fused_order([0.9, 0.8, 0.7, 0.6]) == [0, 1, 2, 3]


def test_the_pointwise_reranker_sorts_by_p_yes_and_falls_back_when_the_llm_is_down() -> None:
    from tools.rerank import PointwiseReranker

    candidates = _cands(FARGO, HEAT, BABE, GODFATHER)
    odds = _Odds({"Fargo": 0.2, "Heat": 0.6, "Babe": 0.1, "The Godfather": 0.9})
    result = PointwiseReranker(odds).rerank(candidates, 3, profile=["Alien", "Heat"], query="a crime film")
    assert result.used_llm and result.order == [3, 1, 0] and result.p_yes == [0.2, 0.6, 0.1, 0.9]
    assert len(odds.asks) == 4
    fused = PointwiseReranker(odds, fuse=True).rerank(candidates, 4)
    # rank sums (scored + yes): Fargo 0+2, Heat 1+1, Babe 2+3, Godfather 3+0; the Fargo-Heat tie keeps the scored order
    assert fused.order == [0, 1, 3, 2]
    down = PointwiseReranker(_Odds({}, fail=True)).rerank(candidates, 3)
    assert not down.used_llm and down.order == [0, 1, 2] and "did not answer" in down.note
    assert PointwiseReranker(odds).rerank(candidates[:1], 3).order == [0]


def test_the_pointwise_ask_is_the_one_tune_data_trains_on() -> None:
    """Same system line and question as `chatrec tune data`'s pointwise rows (its first templates)."""
    from prompts import read_instruct_templates
    from tools.rerank import PointwiseReranker

    t = read_instruct_templates()
    [cand] = _cands(FARGO)
    system, user = PointwiseReranker(llm=None).prompt(cand, profile=["Heat", "Babe"], query="crime")
    assert system["content"] == t["pointwise"]["system"].format(domain="movie")
    assert user["content"] == "\n".join([t["implicit_preference"][0].format(titles="Heat; Babe"),
                                         "They asked for: crime",
                                         t["pointwise"]["questions"][0].format(title="Fargo (1996)")])
    _, coded = PointwiseReranker(llm=None).prompt(cand, profile=["Heat"], codes=("note", "1.2.3.4", "5.6.7.8"))
    assert coded["content"].startswith("Their code: 1.2.3.4\n") and "Fargo (1996) [code 5.6.7.8]?" in coded["content"]
