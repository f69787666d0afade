"""Dataset users (recsys/users.py) and ``GraphRecommender.similar_users``.

The samplers are pinned to NumPy's documented calls (the same seed gives eval-rerank, the blend's
fit, tune data and eval-explain the people it gave them before); similar users are checked on
a hand-made model and against a brute-force cosine on the LightGCN trained on ml-100k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommender import GraphRecommender, UnknownIdError
from recsys.users import graph_candidates, sample_sorted, sample_users, user_items, users_with_items


def _split(n_users: int = 40, n_items: int = 15, seed: int = 0) -> sp.csr_matrix:
    m = sp.random(n_users, n_items, density=0.08, random_state=seed, format="csr")
    m.data[:] = 1
    return m


# ----------------------------------------------------------------------------- sampling


def test_sample_users_draws_sorted_users_with_items_as_numpy_documents() -> None:
    m = _split()
    eligible = users_with_items(m)
    assert eligible.tolist() == [u for u in range(m.shape[0]) if m[u].nnz] and len(eligible) < m.shape[0]
    drawn = sample_users(m, 6, 3)
    assert len(set(drawn.tolist())) == 6 and set(drawn) <= set(eligible) and (np.diff(drawn) > 0).all()
    assert np.array_equal(drawn, np.sort(np.random.default_rng(3).choice(eligible, size=6, replace=False)))
    assert np.array_equal(sample_users(m, 6, 3), drawn)  # seeded
    assert len({tuple(sample_users(m, 6, s)) for s in range(5)}) > 1
    # a seed sequence is another stream (the blend's fit users: [seed, 1])
    assert np.array_equal(sample_users(m, 6, [3, 1]),
                          np.sort(np.random.default_rng([3, 1]).choice(eligible, size=6, replace=False)))
    assert np.array_equal(sample_users(m, 1000, 0), eligible)  # asking for more than there are: all


def test_sample_users_leaves_out_excluded_users_and_sample_sorted_takes_a_count() -> None:
    m = _split()
    eligible = users_with_items(m)
    kept = eligible[1::2]
    assert np.array_equal(sample_users(m, 1000, 0, exclude=eligible[::2]), kept)
    assert np.array_equal(sample_users(m, 4, 7, exclude=eligible[::2]),
                          np.sort(np.random.default_rng(7).choice(kept, size=4, replace=False)))
    assert np.array_equal(sample_sorted(10, 4, 2), np.sort(np.random.default_rng(2).choice(10, 4, replace=False)))
    assert np.array_equal(sample_sorted(10, 4, 2), sample_sorted(np.arange(10), 4, 2))
    assert sample_sorted(3, 10, 0).tolist() == [0, 1, 2]


# ----------------------------------------------------------------------------- the graph's view of a user


def _toy() -> GraphRecommender:
    # users in 2-d: u1 points almost where u0 does (but is longer), u4 at 45 degrees, u2 at 90, u3 nearly opposite
    users = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [-1.0, 0.2], [1.0, 1.0]])
    items = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]])
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]))
    return GraphRecommender(users, items, train, [f"u{i}" for i in range(5)], [f"i{j}" for j in range(4)], "toy")


def test_similar_users_of_a_dataset_user_on_a_hand_made_model() -> None:
    rec = _toy()
    ranked = rec.similar_users("u0", k=3)
    assert [u for u, _ in ranked] == ["u1", "u4", "u2"]  # by angle, not by length; u0 itself left out
    assert [s for _, s in ranked] == pytest.approx([2 / np.hypot(2, 0.1), np.sqrt(0.5), 0.0], abs=1e-6)
    assert [u for u, _ in rec.similar_users("u0", k=10)] == ["u1", "u4", "u2", "u3"]  # all the others
    with pytest.raises(UnknownIdError):
        rec.similar_users("nobody")


def test_similar_users_of_a_chat_user_folds_in_their_liked_items() -> None:
    rec = _toy()
    vector = rec.fold_in(["i1"])  # along i1 = (0, 1): u2 first, nobody left out
    ranked = rec.similar_users(["i1"], k=5)
    unit = rec.user_factors_ / np.linalg.norm(rec.user_factors_, axis=1, keepdims=True)
    expected = unit @ (vector / np.linalg.norm(vector))
    assert [u for u, _ in ranked] == [f"u{j}" for j in np.argsort(-expected, kind="stable")]
    assert [s for _, s in ranked] == pytest.approx(np.sort(expected)[::-1].tolist(), abs=1e-6)
    assert ranked[0][0] == "u2"


def test_graph_candidates_leave_out_training_and_extra_items() -> None:
    rec = _toy()
    items, scores = graph_candidates(rec, 1, np.array([1]), k=4)  # u1 trained on i0, i2; i1 left out too
    assert items.tolist() == [3] and user_items(rec.train_, 1).tolist() == [0, 2]
    assert scores.tolist() == pytest.approx([float(rec.item_factors_[3] @ rec.user_factors_[1])])
    items, scores = graph_candidates(rec, 4, np.empty(0, dtype=np.int64))
    assert [rec.item_ids[i] for i in items] == [i for i, _ in rec.recommend("u4", 20)]
    assert (np.diff(scores) <= 0).all()


def test_similar_users_on_the_trained_model_match_a_brute_force(trained) -> None:
    unit = trained.user_factors_.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    for u in (0, 17, 500, trained.n_users - 1):
        uid = str(trained.user_ids[u])
        ranked = trained.similar_users(uid, 50)
        ids, scores = [v for v, _ in ranked], np.array([s for _, s in ranked])
        assert len(ids) == 50 and uid not in ids and (np.diff(scores) <= 0).all()
        cosine = unit @ unit[u]
        cosine[u] = -np.inf
        expected = np.argsort(-cosine, kind="stable")[:50]
        assert set(ids) == {str(trained.user_ids[j]) for j in expected}
        assert scores == pytest.approx(cosine[[trained.user_index(v) for v in ids]], abs=1e-5)
    liked = trained.history(str(trained.user_ids[3]))[:4]  # a chat user who liked four of user 3's films
    vector = trained.fold_in(liked).astype(np.float64)
    cosine = unit @ (vector / np.linalg.norm(vector))
    ranked = trained.similar_users(liked, 20)
    assert {v for v, _ in ranked} == {str(trained.user_ids[j]) for j in np.argsort(-cosine)[:20]}
    assert [s for _, s in ranked] == pytest.approx(np.sort(cosine)[::-1][:20].tolist(), abs=1e-5)
