"""Metrics, propagation, fold-in, training and the recommender surface."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.data import InteractionData
from recsys.lightgcn import LightGCN, normalized_adjacency, propagate, to_torch_csr
from recsys.metrics import evaluate_ranking, mean_metrics, metrics_from_hits
from recsys.recommender import GraphRecommender, UnknownIdError
from recsys.split import SplitConfig, make_split, random_split
from recsys.train import NegativeSampler, TrainConfig, evaluate_test, train_lightgcn
from recsys.workflow import most_popular_metrics


# --- metrics --------------------------------------------------------------------------------
def test_metrics_match_hand_computed_values():
    # user 0: relevant {A, C}, ranking A B C D E -> hits 1 0 1 0 0
    # user 1: relevant {X},    ranking . . X . . -> hits 0 0 1 0 0
    hits = np.array([[1, 0, 1, 0, 0], [0, 0, 1, 0, 0]], dtype=bool)
    per_user = metrics_from_hits(hits, np.array([2, 1]), ks=(2, 5))
    lg = np.log2
    assert per_user["recall@5"] == pytest.approx([1.0, 1.0])
    assert per_user["precision@5"] == pytest.approx([0.4, 0.2])
    assert per_user["hit@2"] == pytest.approx([1.0, 0.0])
    assert per_user["mrr@5"] == pytest.approx([1.0, 1 / 3])
    assert per_user["mrr@2"] == pytest.approx([1.0, 0.0])
    assert per_user["recall@2"] == pytest.approx([0.5, 0.0])
    assert per_user["ndcg@5"] == pytest.approx([(1 + 1 / lg(4)) / (1 + 1 / lg(3)), (1 / lg(4)) / 1.0])
    assert per_user["ndcg@2"] == pytest.approx([1 / (1 + 1 / lg(3)), 0.0])
    assert mean_metrics(per_user)["precision@5"] == pytest.approx(0.3)


def test_full_sort_evaluation_masks_excluded_items_and_skips_users_without_truth():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
                           [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                           [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    truth = sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]))
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]))
    result = evaluate_ranking(lambda users: scores[users], truth, exclude, ks=(1, 5), per_user=True)
    assert len(result["hit@1"]) == 2  # user 2 has no ground truth
    # user 0: items 0 and 1 masked, so item 2 ranks first; user 1: item 0 ranks last (6th)
    assert result["hit@1"].tolist() == [1.0, 0.0]
    assert result["hit@5"].tolist() == [1.0, 0.0]


# --- propagation ----------------------------------------------------------------------------
def _tiny_graph() -> sp.csr_matrix:
    return sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float32))


def test_propagation_equals_dense_computation():
    r = _tiny_graph()
    n_u, n_i = r.shape
    dense = np.zeros((n_u + n_i, n_u + n_i))
    dense[:n_u, n_u:] = r.toarray()
    dense[n_u:, :n_u] = r.toarray().T
    d = dense.sum(1)
    a_hat = dense / np.sqrt(np.outer(d, d))
    e0 = np.random.default_rng(0).normal(size=(n_u + n_i, 4))
    expected = (e0 + a_hat @ e0 + a_hat @ a_hat @ e0 + a_hat @ a_hat @ a_hat @ e0) / 4
    assert normalized_adjacency(r).toarray() == pytest.approx(a_hat, abs=1e-6)

    x = torch.tensor(e0, dtype=torch.float32, requires_grad=True)
    out = propagate(to_torch_csr(normalized_adjacency(r)), x, n_layers=3)
    assert out.detach().numpy() == pytest.approx(expected, abs=1e-5)
    # The custom backward (Â symmetric) must equal the dense gradient.
    weights = torch.tensor(np.random.default_rng(1).normal(size=out.shape), dtype=torch.float32)
    (out * weights).sum().backward()
    m = (np.eye(len(a_hat)) + a_hat + a_hat @ a_hat + a_hat @ a_hat @ a_hat) / 4
    assert x.grad.numpy() == pytest.approx(m.T @ weights.numpy(), abs=1e-5)


def test_l2_terms_follow_the_paper_and_recboles_formulas():
    model = LightGCN(3, 4, dim=2, n_layers=1)
    model.set_graph(_tiny_graph())
    users, pos, neg = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([0, 0])
    e = model.embedding.detach().numpy()
    u, p, n = e[[0, 2]], e[3 + np.array([1, 3])], e[3 + np.array([0, 0])]
    _, paper = model.bpr_loss(users, pos, neg, reg_weight=0.5)
    assert paper.item() == pytest.approx(0.5 * ((u**2).sum() + (p**2).sum() + (n**2).sum()) / (2 * 2), rel=1e-5)
    _, recbole = model.bpr_loss(users, pos, neg, reg_weight=0.5, reg_form="recbole")
    frobenius = np.linalg.norm(u) + np.linalg.norm(p) + np.linalg.norm(n)
    assert recbole.item() == pytest.approx(0.5 * frobenius / 2, rel=1e-5)
    with pytest.raises(ValueError, match="reg_form"):
        model.bpr_loss(users, pos, neg, reg_weight=0.5, reg_form="l1")


def test_negative_sampler_never_returns_training_positives():
    rng = np.random.default_rng(0)
    train = sp.random(50, 30, density=0.5, random_state=1, format="csr")
    sampler = NegativeSampler(train, rng)
    users = np.repeat(np.arange(50), 40)
    negatives = sampler.sample(users)
    assert not np.any(np.asarray(train[users, negatives]).ravel())


# --- the recommender surface ----------------------------------------------------------------
def _toy_recommender() -> GraphRecommender:
    rng = np.random.default_rng(3)
    r = sp.random(20, 12, density=0.3, random_state=4, format="csr")
    r.data[:] = 1
    return GraphRecommender(rng.normal(size=(20, 8)), rng.normal(size=(12, 8)), r,
                            [f"u{i}" for i in range(20)], [f"i{i}" for i in range(12)], "toy")


def test_fold_in_equals_one_lightgcn_propagation_step_for_a_new_user_node():
    rec = _toy_recommender()
    liked = ["i1", "i4", "i7"]
    augmented = sp.vstack([rec.train_, sp.csr_matrix(([1.0] * 3, ([0] * 3, [1, 4, 7])), shape=(1, 12))]).tocsr()
    a_hat = normalized_adjacency(augmented)
    stacked = np.vstack([rec.user_factors_, np.zeros((1, 8)), rec.item_factors_])
    expected = a_hat[rec.n_users].toarray().ravel() @ stacked  # the new user's row
    assert rec.fold_in(liked) == pytest.approx(expected, abs=1e-5)


def test_recommend_excludes_seen_honours_allowed_and_rejects_unknown_ids():
    rec = _toy_recommender()
    seen = set(rec.history("u0"))
    top = rec.recommend("u0", k=5)
    assert len(top) == min(5, 12 - len(seen)) and not seen & {i for i, _ in top}
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    assert {i for i, _ in rec.recommend("u0", k=5, allowed=["i2", "i3"])} <= {"i2", "i3"}
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        rec.recommend("nobody")
    with pytest.raises(UnknownIdError, match="unknown item id 'zz'"):
        rec.recommend_from_items(["zz"])


def test_recommend_from_items_leaves_out_liked_and_disliked_and_pushes_disliked_down():
    rec = _toy_recommender()
    neighbour = rec.similar_items("i5", k=1)[0][0]
    plain = dict(rec.recommend_from_items(["i0"], k=12))
    pushed = dict(rec.recommend_from_items(["i0"], disliked=["i5"], k=12))
    assert "i0" not in plain and "i5" not in pushed and "i0" not in pushed
    # the disliked item's nearest neighbour loses score relative to the average item
    rel = lambda d, i: d[i] - np.mean(list(d.values()))  # noqa: E731
    assert rel(pushed, neighbour) < rel(plain, neighbour)


def test_recommend_similar_ranks_by_cosine_so_long_vectors_do_not_win():
    rec = _toy_recommender()
    # make i11 "popular": a long vector in a direction unlike i0's
    rec.item_factors_[11] = -rec.item_factors_[0] * 0.2 + rng_vector(8) * 50
    rec = GraphRecommender(rec.user_factors_, rec.item_factors_, rec.train_, rec.user_ids, rec.item_ids, "toy")
    ranked = rec.recommend_similar(["i0"], k=11)
    unit = rec.item_factors_ / np.linalg.norm(rec.item_factors_, axis=1, keepdims=True)
    expected = [f"i{j}" for j in np.argsort(-(unit @ unit[0])) if j != 0][:11]
    assert [i for i, _ in ranked] == expected and "i0" not in dict(ranked)
    assert {i for i, _ in rec.recommend_similar(["i0"], k=5, allowed=["i2", "i3"])} <= {"i2", "i3"}
    assert "i5" not in dict(rec.recommend_similar(["i0"], disliked=["i5"], k=11))


def rng_vector(n: int) -> np.ndarray:
    return np.random.default_rng(9).normal(size=n)


def test_explain_scores_decomposes_a_chat_users_score():
    rec = _toy_recommender()
    liked = ["i1", "i2", "i3"]
    result = rec.explain_scores(liked, "i9", k=3)
    assert sum(e["contribution"] for e in result["evidence"]) == pytest.approx(result["score"], rel=1e-5)
    assert {e["item_id"] for e in result["evidence"]} == set(liked)
    contributions = [e["contribution"] for e in result["evidence"]]
    assert contributions == sorted(contributions, reverse=True)


def test_checkpoint_round_trip_is_atomic_and_corruption_is_reported(tmp_path):
    rec = _toy_recommender()
    path = rec.save(tmp_path / "m" / "lightgcn.pt")
    assert [p.name for p in path.parent.iterdir()] == ["lightgcn.pt"]  # no temp files left
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others, not mkstemp's private 0600
    loaded = GraphRecommender.load(path)
    assert loaded.recommend("u3", k=4) == rec.recommend("u3", k=4)
    assert loaded.split == rec.split and loaded.dataset == "toy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="unreadable.*chatrec train"):
        GraphRecommender.load(path)
    with pytest.raises(FileNotFoundError, match="chatrec train"):
        GraphRecommender.load(tmp_path / "missing.pt")


# --- splits ----------------------------------------------------------------------------------
def _toy_data(n_users=30, n_items=40, per_user=12, seed=0) -> InteractionData:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    return InteractionData("toy", np.array([str(u) for u in range(n_users)]),
                           np.array([str(i) for i in range(n_items)]), users, items,
                           ratings=rng.integers(1, 6, len(users)).astype(np.float32),
                           timestamps=rng.integers(0, 10_000, len(users)))


def test_random_split_is_disjoint_per_user_by_ratio_and_seeded():
    data = _toy_data()
    split = random_split(data, seed=1)
    total = split.train_matrix() + split.valid_matrix() + split.test_matrix()
    assert total.max() == 1 and total.sum() == data.n_interactions  # disjoint, complete
    assert np.all(np.diff(split.test_matrix().indptr) == 1)  # 12 * 0.1 -> 1 test item each
    assert np.all(np.diff(split.train_matrix().indptr) == 10)
    again = random_split(data, seed=1)
    assert (again.test_matrix() != split.test_matrix()).nnz == 0
    assert (random_split(data, seed=2).test_matrix() != split.test_matrix()).nnz > 0


def test_rating_threshold_and_leave_last_out():
    data = _toy_data()
    thresholded = make_split(data, SplitConfig(min_rating=3))
    kept = thresholded.train.n_interactions + thresholded.valid.n_interactions + thresholded.test.n_interactions
    assert kept == int((data.ratings >= 3).sum())
    last = make_split(data, SplitConfig(kind="last"))
    for u in range(data.n_users):
        mine = data.users == u
        latest = data.items[mine][np.argmax(data.timestamps[mine])]
        assert last.test_matrix()[u, latest] == 1


# --- training on real data -------------------------------------------------------------------
@pytest.mark.model  # trains LightGCN
def test_short_training_on_ml100k_beats_most_popular_and_is_deterministic(ml100k):
    split = make_split(ml100k)
    config = TrainConfig(epochs=12, patience=12)
    result = train_lightgcn(split, config, progress=False)
    ours = evaluate_test(result.model, split)
    popular = most_popular_metrics(split)
    assert ours["ndcg@20"] > popular["ndcg@20"] * 1.1, (ours["ndcg@20"], popular["ndcg@20"])
    assert result.curve and result.curve[-1]["epoch"] == 12

    again = train_lightgcn(split, TrainConfig(epochs=2, patience=5), progress=False)
    twice = train_lightgcn(split, TrainConfig(epochs=2, patience=5), progress=False)
    assert torch.equal(again.model.embedding, twice.model.embedding)


def test_evaluation_on_a_catalogue_smaller_than_k_pads_with_misses():
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    truth = sp.csr_matrix(np.array([[0, 0, 1]]))
    result = evaluate_ranking(lambda users: scores[users], truth, sp.csr_matrix((1, 3)), ks=(1, 5))
    assert result["hit@1"] == 0.0 and result["hit@5"] == 1.0
    assert result["precision@5"] == pytest.approx(1 / 5) and result["mrr@5"] == pytest.approx(1 / 3)


def test_refit_trains_on_every_interaction_and_its_model_is_not_tested_on_what_it_saw(tmp_path):
    from recsys.data import DataError
    from recsys.datasets import add_custom
    from recsys.split import refit_split
    from recsys.workflow import evaluate_recommender, train_dataset

    data = _toy_data(n_users=30, n_items=40, per_user=3)  # conversation-sized users: 1 of 3 kept by a split
    whole = refit_split(data)
    assert whole.train.n_interactions == data.n_interactions and whole.valid.n_interactions == 0
    result = train_lightgcn(whole, TrainConfig(epochs=3, patience=1), progress=False)
    assert (result.best_epoch, result.epochs_run, result.curve) == (3, 3, [])  # nothing to stop on: all epochs

    (tmp_path / "i.csv").write_text("user_id,item_id\n" + "".join(
        f"{u},{i}\n" for u, i in zip(data.user_ids[data.users], data.item_ids[data.items])))
    (tmp_path / "m.csv").write_text("item_id,title\n" + "".join(f"{i},Film {i}\n" for i in data.item_ids))
    add_custom("talk", tmp_path / "i.csv", tmp_path / "m.csv", tmp_path)
    held, _ = train_dataset("talk", TrainConfig(epochs=4, patience=2), out_dir=tmp_path / "held", home=tmp_path,
                            progress=False)
    refit, metrics = train_dataset("talk", TrainConfig(epochs=4, patience=2), out_dir=tmp_path / "refit",
                                   home=tmp_path, progress=False, refit=True)
    assert held.train_.nnz < data.n_interactions // 2  # what a split leaves users of three films
    assert refit.train_.nnz == data.n_interactions
    assert metrics["refit"]["epochs"] == metrics["best_epoch"] and "test" in metrics
    assert 0.0 <= evaluate_recommender(held, tmp_path)["recall@20"] <= 1.0  # the held-out model is evaluated
    with pytest.raises(DataError, match="--refit"):
        evaluate_recommender(refit, tmp_path)
