"""The learned order of a conversation graph's candidates (tools/conversation_ranker.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tools.conversation_ranker import (FEATURES, ConversationRanker, RankerFileError, candidate_features,
                                       load_ranker)


def _column(name: str) -> int:
    return FEATURES.index(name)


def test_features_read_the_pool_place_the_co_mentions_and_the_liked_films_words() -> None:
    x, y = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    X = candidate_features(
        pool=[("a", 2.0, "graph"), ("b", 1.0, "store")], liked=["l1", "l2"],
        vectors={"a": x, "b": y, "l1": x, "l2": y}, mentions={"a": 4.0}, co_mentions={"a": (2.0, 0.5)},
        years={"a": 2015, "b": 1990, "l1": 2000, "l2": 2010}, genres={"a": frozenset({"comedy"}), "l1": frozenset({"comedy"}),
                                                                       "l2": frozenset({"drama"})},
        asked=frozenset({"comedy"}), request=y)
    a, b = X
    assert X.shape == (2, len(FEATURES))
    assert a[_column("rank_log")] == 0 and b[_column("rank_log")] == pytest.approx(math.log(2))
    assert a[_column("score_share")] == 1 and b[_column("score_share")] == 0.5
    assert a[_column("from_graph")] == 1 and b[_column("from_store")] == 1
    assert a[_column("mentions_log")] == pytest.approx(math.log(5)) and b[_column("mentions_log")] == 0
    assert a[_column("co_mentions_log")] == pytest.approx(math.log(3)) and a[_column("co_mentions_norm")] == 0.5
    assert a[_column("text_cos_latest")] == 0 and b[_column("text_cos_latest")] == 1  # the latest liked is l2
    assert a[_column("text_cos_liked")] == pytest.approx(b[_column("text_cos_liked")])  # the mean is between
    assert a[_column("genre_share")] == 0.5 and a[_column("asked_genre")] == 1 and b[_column("asked_genre")] == 0
    assert a[_column("year_gap_decades")] == pytest.approx(1.0) and a[_column("recent")] == 1
    assert b[_column("text_cos_request")] == 1 and a[_column("nothing_liked")] == 0
    assert not X[:, _column("rank_log_nothing_liked")].any()  # only for a person who liked nothing


def test_a_fitted_ranker_orders_by_what_predicted_the_labels_and_survives_a_save(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(FEATURES)))
    y = (X[:, _column("co_mentions_log")] > 0.8).astype(int)  # only the co-mentions say what was suggested
    ranker = ConversationRanker.fit(X, y, fitted_on="a toy", degree=1)
    assert np.argmax(np.abs(ranker.coef)) == _column("co_mentions_log")
    scores = ranker.score(X)
    assert scores[y == 1].mean() > scores[y == 0].mean()
    loaded = load_ranker(ranker.save(tmp_path / "ranker.json"))
    assert loaded.fitted_on == "a toy" and loaded.degree == 1 and np.allclose(loaded.score(X), scores)
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then renamed
    # a file written before products were fitted (no "degree") is read as the signals alone
    data = json.loads((tmp_path / "ranker.json").read_text())
    del data["degree"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert np.allclose(load_ranker(tmp_path / "old.json").score(X), scores)


def _share_of_labels_on_top(scores: np.ndarray, y: np.ndarray) -> float:
    return float(y[np.argsort(-scores)[:int(y.sum())]].mean())


def test_products_of_two_signals_learn_what_one_signal_means_only_beside_another(tmp_path) -> None:
    """The pool's place says more for a person who named nothing: a label here is a film high in the
    pool *and* of a person who named nothing, which no weighted sum of the two alone orders."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, len(FEATURES)))
    y = ((X[:, _column("rank_log")] < 0) == (X[:, _column("nothing_liked")] > 0)).astype(int)
    linear = ConversationRanker.fit(X, y, degree=1)
    products = ConversationRanker.fit(X, y, degree=2)
    assert len(products.coef) == len(FEATURES) + len(FEATURES) * (len(FEATURES) + 1) // 2
    assert _share_of_labels_on_top(products.score(X), y) > _share_of_labels_on_top(linear.score(X), y) + 0.2
    loaded = load_ranker(products.save(tmp_path / "products.json"))
    assert loaded.degree == 2 and np.allclose(loaded.score(X), products.score(X))


def test_a_ranker_file_that_is_not_one_says_which_and_why(tmp_path) -> None:
    with pytest.raises(RankerFileError, match="no such"):
        load_ranker(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RankerFileError, match="bad.json"):
        load_ranker(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"features": ["rank_log"], "mean": [0], "scale": [1], "coef": [1]}))
    with pytest.raises(RankerFileError, match="fit it again"):
        load_ranker(other)
    short = tmp_path / "short.json"  # products named, their weights missing
    short.write_text(json.dumps({"features": list(FEATURES), "mean": [0] * len(FEATURES), "scale": [1] * len(FEATURES),
                                 "coef": [1] * len(FEATURES), "degree": 2}))
    with pytest.raises(RankerFileError, match="weights expected"):
        load_ranker(short)


def _toy_graph():
    """Five films A–E; A's fold-in ranks B, C, D, E; E shares three conversations with A."""
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.catalog import CatalogItem

    items = [CatalogItem(f"cat:{name}", "movie", f"Film {name}", 2000, ("Drama",), warm=True) for name in "ABCDE"]
    vectors = np.array([[1.0, 0.0], [3.0, 0.0], [2.5, 0.0], [2.0, 0.0], [1.5, 0.0]])
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 1], [1, 0, 1, 0, 1], [0, 0, 0, 1, 0], [1, 0, 0, 0, 1]],
                                   dtype=np.float32))
    rec = GraphRecommender(np.ones((4, 2)), vectors, train, ["u0", "u1", "u2", "u3"], [i.item_id for i in items], "toy")
    return items, rec


def test_a_conversation_graph_takes_the_learned_order_and_a_ratings_graph_does_not() -> None:
    """Fold-in of A ranks B, C, D, E; E shares three conversations with A, B and C one, D none. A
    ranker that reads only the co-mentions puts E first and keeps B before C (ties keep the pool's
    order); a MovieLens-style graph (cosine fold-in) ignores it."""
    from tools.candidates import CandidateTool, Constraint
    from tools.catalog import Catalog

    items, rec = _toy_graph()
    coef = [0.0] * len(FEATURES)
    coef[_column("co_mentions_log")] = 1.0
    ranker = ConversationRanker(list(FEATURES), [0.0] * len(FEATURES), [1.0] * len(FEATURES), coef)

    def order(fold_in: str, with_ranker: bool) -> list[str]:
        tool = CandidateTool(rec, Catalog(items), store=None, fold_in=fold_in, ranker=ranker if with_ranker else None)
        found = tool.candidates(user_id=None, liked=[items[0]], disliked=[], exclude=[], constraint=Constraint(), k=4)
        return [c.item.title[-1] for c in found]

    assert order("dot", True) == ["E", "B", "C", "D"]
    assert order("dot", False) != order("dot", True)
    assert order("cosine", True) == order("cosine", False)


def test_the_fit_reads_the_rows_the_product_reorders_in_the_pools_order() -> None:
    """bench.crs_folds fits on what CandidateTool.candidates hands its ranker, and ranks meanwhile
    as if there were none."""
    from bench.crs_folds import _PoolOrder
    from tools.candidates import CandidateTool, Constraint
    from tools.catalog import Catalog

    items, rec = _toy_graph()
    ask = dict(user_id=None, liked=[items[0]], disliked=[], exclude=[], constraint=Constraint(), k=4)
    plain = CandidateTool(rec, Catalog(items), store=None, fold_in="dot").candidates(**ask)
    tool = CandidateTool(rec, Catalog(items), store=None, fold_in="dot")
    tool.ranker = recorder = _PoolOrder(tool)
    found = tool.candidates(**ask)
    assert [c.item.item_id for c in found] == [c.item.item_id for c in plain]
    (item_ids, X), = recorder.asked
    assert item_ids == [c.item.item_id for c in found] and X.shape == (4, len(FEATURES))
