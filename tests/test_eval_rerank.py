"""Offline re-rank gain (agent/evals/rerank.py, `chatrec eval-rerank`).

Metrics against hand-computed lists; the paired bootstrap on constructed cases; the learned
re-ranker's fitting data checked against the real split (train and validation only); an
end-to-end run on the real ml-100k with a LightGCN trained here for 5 epochs, cross-checked
against an independent full-sort ranking and the agent's CandidateTool; fallbacks counted with
scripted chat models; and the command itself with the real SmolLM2 on 3 users.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.evals import learned as el, rerank as er, stats
from recsys import users as ru

runner = CliRunner()


# ----------------------------------------------------------------------------- metrics


def test_metrics_on_hand_computed_lists() -> None:
    ranked = [[1, 2, 3, 4, 5], [7, 8, 9, 10, 11], [3, 1, 2, 9, 8], [1, 2, 3, 4, 5]]
    truth = [{2, 5, 9}, {1}, {3}, {1, 2, 3, 4, 5, 6, 7}]
    m = er.topk_metrics(ranked, truth)
    # user 0: hits at places 2 and 5 of 3 relevant
    dcg0 = 1 / math.log2(3) + 1 / math.log2(6)
    idcg0 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["precision@5"][0] == pytest.approx(2 / 5)
    assert m["recall@5"][0] == pytest.approx(2 / 3)
    assert m["ndcg@5"][0] == pytest.approx(dcg0 / idcg0)
    # user 1: no hit
    assert (m["precision@5"][1], m["recall@5"][1], m["ndcg@5"][1]) == (0.0, 0.0, 0.0)
    # user 2: the only relevant item first
    assert (m["precision@5"][2], m["recall@5"][2]) == (pytest.approx(0.2), pytest.approx(1.0))
    assert m["ndcg@5"][2] == pytest.approx(1.0)
    # user 3: five hits out of seven relevant: the ideal list is five hits too
    assert (m["precision@5"][3], m["recall@5"][3], m["ndcg@5"][3]) == (1.0, pytest.approx(5 / 7), pytest.approx(1.0))


def test_metrics_order_matters_and_short_lists_count_misses() -> None:
    late = er.topk_metrics([[8, 9, 10, 11, 1]], [{1}])
    assert late["ndcg@5"][0] == pytest.approx(1 / math.log2(6)) and late["precision@5"][0] == pytest.approx(0.2)
    short = er.topk_metrics([[1, 2]], [{2, 3}])
    assert short["precision@5"][0] == pytest.approx(1 / 5) and short["recall@5"][0] == pytest.approx(1 / 2)
    assert short["ndcg@5"][0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    with pytest.raises(ValueError):
        er.topk_metrics([[1, 2, 3, 4, 5]], [set()])
    with pytest.raises(ValueError):
        er.topk_metrics([[1]], [{1}, {2}])


# ----------------------------------------------------------------------------- bootstrap


def test_paired_bootstrap_of_identical_methods_is_zero() -> None:
    values = np.random.default_rng(3).random(150)
    assert stats.paired_diff_ci(values, values.copy(), seed=0) == [0.0, 0.0]


def test_paired_bootstrap_of_a_method_better_on_every_user_is_above_zero() -> None:
    rng = np.random.default_rng(4)
    graph = rng.random(150)
    better = graph + rng.uniform(0.001, 0.05, size=150)
    low, high = stats.paired_diff_ci(better, graph, seed=0)
    assert 0 < low <= np.mean(better - graph) <= high
    # and the unpaired intervals overlap widely: only pairing shows the gain
    assert stats.bootstrap_ci(better, seed=0)[0] < stats.bootstrap_ci(graph, seed=0)[1]
    worse_low, worse_high = stats.paired_diff_ci(graph, better, seed=0)
    assert worse_high < 0 and worse_low == pytest.approx(-high) and worse_high == pytest.approx(-low)


def test_bootstrap_is_seeded_and_covers_the_mean() -> None:
    values = np.random.default_rng(5).normal(size=80)
    assert stats.bootstrap_ci(values, seed=7) == stats.bootstrap_ci(values, seed=7)
    assert stats.bootstrap_ci(values, seed=7) != stats.bootstrap_ci(values, seed=8)
    low, high = stats.bootstrap_ci(values, seed=7)
    assert low < values.mean() < high
    with pytest.raises(ValueError):
        stats.paired_diff_ci(values, values[:-1])


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def ev(trained, chatrec_home: Path):
    return er.load_eval_data(trained, chatrec_home)


def test_rebuilt_split_is_the_models_and_disjoint(ev, trained) -> None:
    assert (ev.train != trained.train_).nnz == 0
    for a, b in ((ev.train, ev.valid), (ev.train, ev.test), (ev.valid, ev.test)):
        assert a.multiply(b).nnz == 0
    assert ev.test.nnz > 0 and ev.valid.nnz > 0
    with pytest.raises(er.DataError):  # a model with bridged items is not the saved model
        er.load_eval_data(trained.with_items(["cold:1"], np.ones((1, trained.item_factors_.shape[1]))))


def test_learned_fitting_sees_only_train_and_validation(ev) -> None:
    assert "test" not in inspect.signature(el.learned_fit_data).parameters
    # built with the test split gone: identical, so nothing of the test split is read
    blind = dataclasses.replace(ev, test=None, parts=None)
    data = el.learned_fit_data(blind, ev.train, ev.valid)
    again = el.learned_fit_data(ev, ev.train, ev.valid)
    assert np.array_equal(data.X, again.X) and np.array_equal(data.y, again.y)
    n_items = ev.train.shape[1]
    keys = data.users * n_items + data.items

    def keyset(m):
        c = m.tocoo()
        return c.row.astype(np.int64) * n_items + c.col

    valid, test, train = keyset(ev.valid), keyset(ev.test), keyset(ev.train)
    assert data.y.sum() > 0
    assert np.array_equal(data.y == 1, np.isin(keys, valid))  # labels are exactly the validation items
    assert not np.isin(keys[data.y == 1], test).any()  # no test item is ever a positive
    assert not np.isin(keys, train).any()  # training items are never candidates
    assert set(np.unique(data.users)) == set(np.flatnonzero(np.diff(ev.valid.indptr) > 0))
    model = el.LearnedReranker().fit(data)
    assert model.fit_info["positives"] == int(data.y.sum()) and np.all(np.isfinite(model.coef_))


def test_learned_reranker_learns_a_planted_signal() -> None:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(300), 20)
    X = rng.normal(size=(len(users), 2))
    y = np.zeros(len(users))
    for u in range(300):  # in each list the item with the largest second feature is the relevant one
        rows = np.flatnonzero(users == u)
        y[rows[np.argmax(X[rows, 1])]] = 1
    for loss in ("listwise", "pointwise"):
        model = el.LearnedReranker(loss=loss).fit(el.FitData(X, y, users, np.zeros(len(users), dtype=int)))
        assert model.coef_[1] > 5 * abs(model.coef_[0])
        rows = np.flatnonzero(users == 7)
        assert model.order(X[rows], 1) == [int(np.argmax(X[rows, 1]))]


def test_candidates_are_the_agents_warm_candidates(ev, trained) -> None:
    from tools.candidates import CandidateTool, Constraint
    from tools.catalog import Catalog

    catalog = Catalog(ev.items)
    tool = CandidateTool(trained, catalog, store=None)  # 20 warm movies always found: the store is never asked
    for u in (0, 10, 500):
        items, scores = ru.graph_candidates(trained, u, ru.user_items(ev.valid, u))
        exclude = {ev.items[i].item_id for i in ru.user_items(ev.valid, u)}
        agent = tool.candidates(user_id=str(trained.user_ids[u]), liked=[], disliked=[], exclude=exclude,
                                constraint=Constraint(), k=20)
        assert [c.item.graph_item_id for c in agent] == [str(trained.item_ids[i]) for i in items]
        assert np.allclose([c.score for c in agent], scores, atol=1e-5)


def _independent_graph_top5(trained, ev, users):
    """Full-sort top-5 with training and validation items excluded, computed apart from the module."""
    scores = trained.user_factors_[users] @ trained.item_factors_.T
    seen = (ev.train + ev.valid)[users].toarray() > 0
    scores[seen] = -np.inf
    return [list(np.argsort(-row, kind="stable")[:5]) for row in scores]


def test_end_to_end_graph_and_learned(trained, ev, chatrec_home: Path) -> None:
    result = er.evaluate_rerank(trained, home=chatrec_home, users=25, seed=3, methods=("graph", "learned"),
                                n_boot=500, progress=False)
    assert set(result) >= {"graph", "learned", "meta", "verdict"} and "llm" not in result
    assert "pointwise_lists" not in result["meta"]  # no asks, no lists
    for method in ("graph", "learned"):
        row = result[method]
        for name in er.METRICS:
            low, high = row[f"{name}_ci95"]
            assert 0 <= low <= row[name] <= high <= 1
    assert "ndcg@5_diff_ci95" in result["learned"] and "ndcg@5_diff_ci95" not in result["graph"]
    low, high = result["learned"]["ndcg@5_diff_ci95"]
    assert low <= result["learned"]["ndcg@5_diff"] <= high
    assert result["learned"]["fit"]["split"] == "valid" and result["learned"]["fit"]["positives"] > 0

    ids = result["meta"]["user_ids"]
    assert len(ids) == 25 == result["meta"]["users"] and len(set(ids)) == 25
    users = np.array([trained.user_index(i) for i in ids])
    assert all(ev.test[u].nnz > 0 for u in users)
    top5 = _independent_graph_top5(trained, ev, users)
    expected = er.topk_metrics(top5, [set(ru.user_items(ev.test, u).tolist()) for u in users])
    for name in er.METRICS:
        assert result["graph"][name] == pytest.approx(float(expected[name].mean()), abs=1e-4)

    same = er.evaluate_rerank(trained, home=chatrec_home, users=25, seed=3, methods=("graph",), n_boot=500,
                              progress=False)
    other = er.evaluate_rerank(trained, home=chatrec_home, users=25, seed=4, methods=("graph",), n_boot=500,
                               progress=False)
    assert same["graph"] == result["graph"] and same["meta"]["user_ids"] == ids
    assert other["meta"]["user_ids"] != ids


class _Scripted:
    """A chat model that always answers the same text (the Reranker calls ``invoke``)."""

    def __init__(self, answer: str) -> None:
        self.answer, self.calls = answer, []

    def invoke(self, messages, **kwargs):
        self.calls.append(messages)
        return type("Answer", (), {"content": self.answer})()


def test_llm_fallbacks_are_counted_and_fall_back_to_the_graph_order(trained, chatrec_home: Path) -> None:
    broken = _Scripted("I think the second one")
    result = er.evaluate_rerank(trained, home=chatrec_home, llm=broken, users=6, seed=1, n_boot=200, progress=False)
    llm = result["llm"]
    assert len(broken.calls) == 6
    assert (llm["fallbacks"], llm["fallback_count"]) == (1.0, 6) and llm["fallback_reasons"]
    assert all(llm[n] == result["graph"][n] for n in er.METRICS)
    assert llm["ndcg@5_diff_ci95"] == [0.0, 0.0] and llm["same_top5_as_graph"] == 1.0
    assert "does not beat" in result["verdict"]["llm"]

    reverse = _Scripted(json.dumps({"order": [5, 4, 3, 2, 1]}))
    result = er.evaluate_rerank(trained, home=chatrec_home, llm=reverse, users=6, seed=1, n_boot=200, progress=False)
    assert result["llm"]["fallbacks"] == 0.0 and result["llm"]["answered_graph_order"] == 0.0
    # the same five items, reversed: precision and recall unchanged, NDCG can only drop
    assert result["llm"]["precision@5"] == result["graph"]["precision@5"]
    assert result["llm"]["recall@5"] == result["graph"]["recall@5"]
    assert result["llm"]["ndcg@5"] <= result["graph"]["ndcg@5"]
    prompt = reverse.calls[0][-1].content
    assert "They like: " in prompt and "nothing yet" not in prompt  # the user's history titles are passed


def test_pair_auc_counts_pairs_within_each_list() -> None:
    assert stats.pair_auc([[3, 2, 1]], [[True, False, False]]) == 1.0
    assert stats.pair_auc([[1, 2, 3]], [[True, False, False]]) == 0.0
    assert stats.pair_auc([[1, 1], [5, 0, 9]], [[True, False], [True, False, False]]) == pytest.approx((0.5 + 1) / 3)
    assert stats.pair_auc([[1, 2]], [[False, False]]) is None  # no list with both kinds


class _TitleOdds:
    """P("yes") from a hash of the candidate's title: a fixed, arbitrary score per film."""

    def __init__(self) -> None:
        self.asks = 0

    def answer_probabilities(self, messages, answers):
        import zlib

        self.asks += 1
        title = messages[-1].content.rsplit("enjoy ", 1)[1]
        p = (zlib.crc32(title.encode()) % 997 + 1) / 999
        return {"yes": p, "no": 1 - p}


def test_pointwise_and_fused_rank_the_graphs_candidates_by_p_yes(trained, ev, chatrec_home: Path) -> None:
    from tools.rerank import fused_order

    odds = _TitleOdds()
    result = er.evaluate_rerank(trained, home=chatrec_home, llm=odds, users=8, seed=5, n_boot=200, progress=False,
                                methods=("graph", "pointwise", "fused"))
    assert odds.asks == 8 * er.CANDIDATES and "llm" not in result and "learned" not in result
    users = [trained.user_index(i) for i in result["meta"]["user_ids"]]
    expected = {"pointwise": [], "fused": []}
    hits, yes = [], []
    for u in users:  # the same lists, made here from the candidates and the odds
        items, _ = ru.graph_candidates(trained, u, ru.user_items(ev.valid, u))
        asks = [[type("M", (), {"content": f"enjoy {ev.items[i].title_year}? Answer yes or no."})()] for i in items]
        p = [odds.answer_probabilities(ask, ("yes", "no"))["yes"] for ask in asks]
        expected["pointwise"].append(items[np.argsort(-np.array(p), kind="stable")[:5]].tolist())
        expected["fused"].append(items[fused_order(p)[:5]].tolist())
        hits.append(np.isin(items, ru.user_items(ev.test, u)))
        yes.append(p)
    truth = [set(ru.user_items(ev.test, u).tolist()) for u in users]
    for method in ("pointwise", "fused"):
        metrics = er.topk_metrics(expected[method], truth)
        for name in er.METRICS:
            assert result[method][name] == pytest.approx(float(metrics[name].mean()), abs=1e-4)
        assert result[method]["p_yes_auc"] == pytest.approx(stats.pair_auc(yes, hits), abs=1e-4)
        assert 0 <= result[method]["graph_score_auc"] <= 1 and method in result["verdict"]
    assert "pointwise asks:" in er.format_table(result)
    kept = result["meta"]["pointwise_lists"]  # the raw lists, for measuring other fusions later
    assert kept["p_yes"] == [[round(x, 6) for x in ps] for ps in yes]
    assert kept["candidates"][0] == [str(trained.item_ids[i]) for i in
                                     ru.graph_candidates(trained, users[0], ru.user_items(ev.valid, users[0]))[0]]
    assert len(kept["graph_score"]) == len(users) and all(len(g) == er.CANDIDATES for g in kept["graph_score"])
    with pytest.raises(ValueError, match="need a chat model"):
        er.evaluate_rerank(trained, home=chatrec_home, users=2, methods=("graph", "fused"), progress=False)


def test_blend_features_are_the_lists_z_score_and_the_log_odds() -> None:
    X = el.blend_features([3.0, 1.0, 2.0], [0.5, 1.0, 0.0])
    assert X[:, 0] == pytest.approx([1.2247, -1.2247, 0.0], abs=1e-4)
    assert X[:, 1] == pytest.approx([0.0, math.log(9999), -math.log(9999)])  # a sure answer stays finite
    assert np.array_equal(el.blend_features([2.0, 2.0], [0.3, 0.6])[:, 0], [0.0, 0.0])


class _Oracle:
    """P("yes") 0.9 for the person's own validation and test films, 0.1 otherwise: the person is
    told apart by the history line of the ask. A strong, planted signal for the blend to find."""

    def __init__(self, ev, users) -> None:
        from tools.candidates import Candidate
        from tools.rerank import PointwiseReranker

        ask = PointwiseReranker(self)
        self.relevant, self.asks = {}, 0
        for u in users:
            context = ask.prompt(Candidate(ev.items[0], 0.0, "graph"),
                                 profile=er.profile_titles(ev, int(u), "rated"))[-1]["content"].rsplit("\n", 1)[0]
            mine = np.r_[ru.user_items(ev.valid, int(u)), ru.user_items(ev.test, int(u))]
            self.relevant[context] = {ev.items[i].title_year for i in mine}

    def answer_probabilities(self, messages, answers):
        self.asks += 1
        context, question = messages[-1].content.rsplit("\n", 1)
        return {"yes": 0.9, "no": 0.1} if any(t in question for t in self.relevant[context]) else {"yes": 0.1, "no": 0.9}


def test_blend_is_fitted_on_validation_lists_and_finds_a_planted_signal(trained, ev, chatrec_home: Path) -> None:
    users, fit_users = 8, 12
    test_users = ru.sample_users(ev.test, users, 5)
    drawn = er.sample_fit_users(ev.valid, fit_users, 5)
    oracle = _Oracle(ev, np.union1d(test_users, drawn))
    result = er.evaluate_rerank(trained, home=chatrec_home, llm=oracle, users=users, seed=5, n_boot=200,
                                progress=False, methods=("graph", "blend"), fit_users=fit_users)
    assert oracle.asks == (fit_users + users) * er.CANDIDATES  # validation lists first, then the test lists
    fit = result["blend"]["fit"]
    assert fit["split"] == "valid" and fit["users"] == fit_users
    # test films are label 0 in the validation lists, so the oracle is not perfect there, only better than the graph
    assert fit["p_yes_auc"] > fit["graph_score_auc"]
    assert set(result["blend"]["coefficients"]) == set(el.BLEND_FEATURES)
    assert result["blend"]["coefficients"]["p_yes_logit"] > 0  # the planted signal is what it weighs
    assert result["blend"]["ndcg@5"] > result["graph"]["ndcg@5"]
    assert "blend weights" in er.format_table(result)


def test_blend_fitting_reads_no_test_item(trained, ev) -> None:
    from tools.rerank import PointwiseReranker

    assert "test" not in inspect.signature(er.blend_fit_data).parameters
    users = er.sample_fit_users(ev.valid, 6, 0)
    blind = dataclasses.replace(ev, test=None)
    data = er.blend_fit_data(blind, PointwiseReranker(_TitleOdds()), ev.valid, users)
    again = er.blend_fit_data(ev, PointwiseReranker(_TitleOdds()), ev.valid, users)
    assert np.array_equal(data.X, again.X) and np.array_equal(data.y, again.y)
    for u in users:
        rows = data.users == u
        assert np.array_equal(data.y[rows] == 1, np.isin(data.items[rows], ru.user_items(ev.valid, u)))
        assert not np.isin(data.items[rows], ru.user_items(ev.train, u)).any()
    assert len(data.y) == 6 * er.CANDIDATES


def test_blend_with_a_constant_p_yes_keeps_the_graph_order(trained, chatrec_home: Path) -> None:
    class Flat:
        def answer_probabilities(self, messages, answers):
            return {"yes": 0.3, "no": 0.7}

    result = er.evaluate_rerank(trained, home=chatrec_home, llm=Flat(), users=5, seed=1, n_boot=200,
                                progress=False, methods=("graph", "blend"), fit_users=5)
    assert result["blend"]["same_top5_as_graph"] == 1.0 and result["blend"]["ndcg@5_diff"] == 0.0


def test_history_orders(ev, trained) -> None:
    u = 0
    rated = ru.history_order(ev.parts, trained, u, "rated")
    agent = ru.history_order(ev.parts, trained, u, "agent")
    assert sorted(rated) == sorted(agent) == sorted(ru.user_items(ev.train, u).tolist())
    train = ev.parts.train
    rating = {int(i): float(r) for i, r in zip(train.items[train.users == u], train.ratings[train.users == u])}
    assert [rating[i] for i in rated] == sorted(rating.values(), reverse=True)
    with pytest.raises(ValueError):
        ru.history_order(ev.parts, trained, u, "random")


def test_the_agents_tool_serves_the_history_in_the_measured_order(ev, trained, chatrec_home: Path) -> None:
    """What the agent puts in its re-rank prompts is what eval-rerank and tune data used."""
    from recsys.datasets import load
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog

    best_first = load("ml-100k", chatrec_home, progress=False).items_best_first()
    tool = CandidateTool(trained, Catalog(ev.items), store=None, best_first=best_first)
    for u in (0, 10, 500):
        served = [item.graph_item_id for item in tool.history(str(trained.user_ids[u]))]
        assert served == [str(trained.item_ids[i]) for i in ru.history_order(ev.parts, trained, u, "rated")]
    unordered = CandidateTool(trained, Catalog(ev.items), store=None)  # without the dataset: the matrix order
    assert [i.graph_item_id for i in unordered.history(str(trained.user_ids[0]))] == [
        str(trained.item_ids[i]) for i in ru.history_order(ev.parts, trained, 0, "agent")]


def test_command_with_the_real_local_model(trained, chatrec_home: Path) -> None:
    from agent.cli import app
    from agent.evals.runs import latest_run

    out = runner.invoke(app, ["eval-rerank", "--users", "3", "--seed", "0", "--bootstrap", "200", "--json"],
                        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) >= {"graph", "llm", "learned"}
    assert set(result["graph"]) >= {"precision@5", "recall@5", "ndcg@5"}
    for method in ("llm", "learned"):
        assert set(result[method]) >= {"precision@5", "recall@5", "ndcg@5", "ndcg@5_diff_ci95"}
        assert len(result[method]["ndcg@5_diff_ci95"]) == 2
    llm = result["llm"]
    assert llm["backend"] == "local" and 0 <= llm["fallbacks"] <= 1
    assert llm["fallbacks"] == pytest.approx(llm["fallback_count"] / 3, abs=1e-4)
    saved = latest_run("rerank", chatrec_home)
    assert saved["result"]["meta"]["user_ids"] == result["meta"]["user_ids"] and saved["meta"]["users"] == 3
    assert saved["meta"]["dataset"] == "ml-100k" and saved["meta"]["seed"] == 0

    bad = runner.invoke(app, ["eval-rerank", "--profile", "random"])
    assert bad.exit_code == 2 and "--profile" in bad.output
    bad = runner.invoke(app, ["eval-rerank", "--method", "listwise"])
    assert bad.exit_code == 2 and "unknown --method listwise" in bad.output

    # InstructRec's pointwise ranking with the real model: probabilities from llama.cpp
    out = runner.invoke(app, ["eval-rerank", "--users", "2", "--bootstrap", "200", "--method", "pointwise",
                              "--method", "fused", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) == {"graph", "pointwise", "fused", "meta", "verdict"}
    assert 0 < result["pointwise"]["mean_p_yes"] < 1 and result["pointwise"]["seconds_per_user"] > 0
    assert latest_run("rerank", chatrec_home)["meta"]["methods"] == ["graph", "pointwise", "fused"]
