"""bench.blend_refit's own parts: the ask cache refuses another model's asks and says what to do,
and the refit finds a planted P(yes) signal with a weight interval that excludes zero (and one
that straddles zero when P(yes) is noise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.blend_refit import CACHE_VERSION, fit_blend, load_cache, raw_weights, weight_interval


def _lists(p_yes_signal: float, users: int = 60, seed: int = 0) -> dict[str, dict]:
    """Lists of 20 with one validation item each; the graph score z and (by ``p_yes_signal``) the
    log-odds of P(yes) both lean towards it."""
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(users):
        y = np.zeros(20, dtype=int)
        y[rng.integers(20)] = 1
        score_z = rng.normal(size=20) + 0.8 * y
        logit = rng.normal(size=20) + p_yes_signal * y
        out[str(u)] = {"items": [str(i) for i in range(20)], "x": np.c_[score_z, logit].tolist(), "y": y.tolist()}
    return out


def test_refit_finds_a_planted_p_yes_signal_and_not_a_missing_one() -> None:
    planted, noise = _lists(1.5), _lists(0.0)
    planted_w, noise_w = raw_weights(fit_blend(planted, list(planted))), raw_weights(fit_blend(noise, list(noise)))
    assert planted_w["score_z"] > 0 and planted_w["p_yes_logit"] > 0
    assert planted_w["p_yes_per_score_z"] == pytest.approx(planted_w["p_yes_logit"] / planted_w["score_z"], abs=1e-3)
    low, high = weight_interval(planted, list(planted))
    assert 0 < low < planted_w["p_yes_per_score_z"] < high
    low, high = weight_interval(noise, list(noise))
    assert low < noise_w["p_yes_per_score_z"] < high and low < 0 < high


def test_the_cache_refuses_another_models_asks_and_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    assert load_cache(path, "qwen.gguf", "rated") == {}  # nothing asked yet
    path.write_text(json.dumps({"version": CACHE_VERSION, "model": "qwen.gguf", "profile": "rated",
                                "lists": {"7": {"items": [], "x": [], "y": []}}}), encoding="utf-8")
    assert set(load_cache(path, "qwen.gguf", "rated")) == {"7"}
    with pytest.raises(SystemExit, match="holds asks of 'qwen.gguf'.*pass another --cache"):
        load_cache(path, "SmolLM2", "rated")
    path.write_text('{"version": 1, "model": "qwen', encoding="utf-8")  # cut off mid-write by hand
    with pytest.raises(SystemExit, match="unreadable.*delete it"):
        load_cache(path, "qwen.gguf", "rated")


def test_test_lists_score_a_blend_against_the_graph_order() -> None:
    """Two users whose one test item the graph ranks 6th; P(yes) points at it. A blend that trusts
    P(yes) lifts it into the top-5 (NDCG@5 up, top-5 changed), one that ignores it keeps the graph's."""
    from types import SimpleNamespace

    import scipy.sparse as sp

    from agent.evals.learned import BLEND_FEATURES, LearnedReranker
    from bench.blend_refit import EvalLists

    test = sp.csr_matrix((np.ones(2), ([0, 1], [5, 15])), shape=(2, 40))
    candidates = [np.arange(20), np.arange(10, 30)]
    scores = [list(np.linspace(2.0, 1.0, 20))] * 2
    p_yes = [[0.2] * 5 + [0.9] + [0.2] * 14] * 2
    lists = EvalLists("two users", SimpleNamespace(test=test), [0, 1], candidates, scores, p_yes, seed=0)
    assert lists.graph["ndcg@5"].tolist() == [0.0, 0.0]

    def blend(p_yes_weight: float) -> LearnedReranker:
        model = LearnedReranker(names=BLEND_FEATURES)
        model.mean_, model.scale_, model.coef_ = np.zeros(2), np.ones(2), np.array([1.0, p_yes_weight])
        return model

    trusting, ignoring = lists.score(blend(2.0)), lists.score(blend(0.0))
    assert trusting["ndcg@5"] == 1.0 and trusting["ndcg@5_diff"] == 1.0 and trusting["same_top5_as_graph"] == 0.0
    assert ignoring["ndcg@5"] == 0.0 and ignoring["same_top5_as_graph"] == 1.0


def test_known_p_yes_prefers_the_cache_over_a_runs_rounded_values() -> None:
    from types import SimpleNamespace

    from bench.blend_refit import known_p_yes

    run = SimpleNamespace(result={"meta": {"user_ids": ["7"], "pointwise_lists": {
        "candidates": [["a", "b"]], "p_yes": [[0.3, 0.4]]}}})
    cache = {"7": {"items": ["b", "c"], "x": [[0.0, 0.0], [1.0, np.log(0.25 / 0.75)]], "y": [0, 1]}}
    known = known_p_yes(cache, [run])["7"]
    assert known["a"] == 0.3 and known["b"] == pytest.approx(0.5) and known["c"] == pytest.approx(0.25)


def test_the_blend_with_learned_features_reads_the_learned_columns_and_compares_re_rankers() -> None:
    """Rows for the learned-feature blend are eval-rerank's learned features plus P(yes)'s log-odds;
    ``versus`` gives the paired NDCG@5 difference from the graph order or from another re-ranker."""
    from types import SimpleNamespace

    import scipy.sparse as sp

    from agent.evals.learned import BLEND_FEATURES, FEATURES, LearnedReranker
    from bench.blend_refit import LEARNED_BLEND_FEATURES, EvalLists

    n_items = 30
    test = sp.csr_matrix((np.ones(2), ([0, 1], [5, 15])), shape=(2, n_items))
    train = sp.csr_matrix((np.ones(2), ([0, 1], [25, 26])), shape=(2, n_items))
    popularity = np.arange(n_items, dtype=np.float64)
    ev = SimpleNamespace(test=test, train=train, popularity=popularity, genres=np.ones((n_items, 2), dtype=bool),
                         years=np.full(n_items, 1990.0))
    candidates = [np.arange(20), np.arange(10, 30)]
    scores = [list(np.linspace(2.0, 1.0, 20))] * 2
    p_yes = [[0.2] * 5 + [0.9] + [0.2] * 14] * 2
    lists = EvalLists("two users", ev, [0, 1], candidates, scores, p_yes, seed=0)

    def model(names: tuple[str, ...], coef: list[float]) -> LearnedReranker:
        m = LearnedReranker(names=names)
        m.mean_, m.scale_, m.coef_ = np.zeros(len(coef)), np.ones(len(coef)), np.array(coef)
        return m

    rows = lists.features_for(model(LEARNED_BLEND_FEATURES, [0.0] * 7))
    assert rows[0].shape == (20, 7)
    assert rows[0][:, 0].tolist() == scores[0]  # the raw graph score first, P(yes)'s log-odds last
    assert rows[0][5, -1] == pytest.approx(np.log(0.9 / 0.1)) and rows[0][0, -1] == pytest.approx(np.log(0.2 / 0.8))
    assert rows[1][:, 3].tolist() == pytest.approx(np.log1p(popularity[10:30]).tolist())  # log popularity
    assert lists.features_for(model(FEATURES, [0.0] * 6))[0].shape == (20, 6)

    trusting = model(LEARNED_BLEND_FEATURES, [1.0, 0, 0, 0, 0, 0, 2.0])  # P(yes) lifts the 6th into the top-5
    graph_like = model(BLEND_FEATURES, [1.0, 0.0])
    assert lists.versus(trusting)["ndcg@5_diff"] == 1.0
    assert lists.versus(trusting, graph_like)["ndcg@5_diff"] == 1.0
    assert lists.versus(graph_like)["ndcg@5_diff"] == 0.0 and lists.versus(graph_like)["ci99"] == [0.0, 0.0]
