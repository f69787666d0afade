"""The cold-start bridge (text vector -> graph vector) and cold items in the graph recommender."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.bridge import BridgeConfig, BridgeError, TextGraphBridge
from recsys.data import InteractionData
from recsys.metrics import mean_metrics, metrics_from_hits
from recsys.recommender import GraphRecommender, UnknownIdError
from recsys.split import compact, make_split
from recsys.train import TrainConfig, train_lightgcn


def _linear_data(n: int = 400, d_in: int = 24, d_out: int = 6, noise: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d_in))
    w, b = rng.normal(size=(d_in, d_out)), rng.normal(size=d_out)
    return x, x @ w + b + noise * rng.normal(size=(n, d_out)), w, b


# --- the bridge on its own ------------------------------------------------------------------
def test_ridge_recovers_a_known_linear_map():
    x, y, w, b = _linear_data()
    bridge = TextGraphBridge(BridgeConfig(alphas=(1e-3, 1.0, 100.0))).fit(x, y)
    assert bridge.alpha_ == 1e-3  # validation prefers the least shrinkage on near-noiseless data
    assert set(bridge.validation_) == {"0.001", "1", "100"}
    fresh = np.random.default_rng(1).normal(size=(50, x.shape[1]))
    pred = bridge.predict(fresh)
    assert pred.dtype == np.float32 and pred.shape == (50, y.shape[1])
    assert pred == pytest.approx(fresh @ w + b, abs=0.02)
    # heavy noise: validation picks a larger penalty than on clean data
    x2, y2, _, _ = _linear_data(n=60, noise=20.0, seed=2)
    assert TextGraphBridge(BridgeConfig(alphas=(1e-3, 1.0, 100.0, 1e4))).fit(x2, y2).alpha_ > 1e-3


@pytest.fixture
def one_thread():
    """Tiny full-batch nets spend their time syncing threads on a busy box: pin one, then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_mlp_is_seeded_and_learns_a_map(one_thread):
    x, y, _, _ = _linear_data(n=300, d_in=12, d_out=4)
    config = BridgeConfig(kind="mlp", hidden=32, max_epochs=100, patience=20, learning_rate=1e-2)
    one, two = TextGraphBridge(config).fit(x, y), TextGraphBridge(config).fit(x, y)
    assert np.array_equal(one.predict(x), two.predict(x)) and one.epochs_ == two.epochs_
    baseline = float(((y - y.mean(axis=0)) ** 2).mean())  # predicting the mean
    assert one.valid_mse_ < 0.1 * baseline


@pytest.mark.parametrize("kind", ["ridge", "mlp"])
def test_save_load_round_trip_is_atomic(tmp_path, kind, one_thread):
    x, y, _, _ = _linear_data(n=120, d_in=8, d_out=3)
    bridge = TextGraphBridge(BridgeConfig(kind=kind, hidden=16, max_epochs=50)).fit(x, y)
    path = bridge.save(tmp_path / "b" / "bridge.pt")
    assert [p.name for p in path.parent.iterdir()] == ["bridge.pt"]  # no temp file left
    loaded = TextGraphBridge.load(path)
    assert np.array_equal(loaded.predict(x), bridge.predict(x))
    assert loaded.config == bridge.config and loaded.alpha_ == bridge.alpha_ and loaded.epochs_ == bridge.epochs_
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(BridgeError, match="unreadable"):
        TextGraphBridge.load(path)


def test_bridge_rejects_bad_input():
    with pytest.raises(BridgeError, match="not fitted"):
        TextGraphBridge().predict(np.zeros((1, 3)))
    x, y, _, _ = _linear_data(n=50, d_in=5, d_out=2)
    with pytest.raises(BridgeError, match="pair up"):
        TextGraphBridge().fit(x, y[:-1])
    bridge = TextGraphBridge().fit(x, y)
    with pytest.raises(BridgeError, match="fitted on 5"):
        bridge.predict(np.zeros((2, 4)))
    with pytest.raises(BridgeError, match="NaN"):
        bridge.predict(np.full((1, 5), np.nan))


# --- cold items in the recommender ----------------------------------------------------------
def _toy_recommender() -> GraphRecommender:
    rng = np.random.default_rng(3)
    r = sp.random(20, 12, density=0.3, random_state=4, format="csr")
    r.data[:] = 1
    return GraphRecommender(rng.normal(size=(20, 8)), rng.normal(size=(12, 8)), r,
                            [f"u{i}" for i in range(20)], [f"i{i}" for i in range(12)], "toy",
                            layer0=rng.normal(size=(32, 8)))


def test_cold_items_are_ranked_with_warm_ones_and_never_seen(tmp_path):
    rec = _toy_recommender()
    user = rec.user_factors_[rec.user_index("u0")]
    vectors = np.stack([3 * user, -3 * user])  # one the user must love, one they must not
    cold = rec.with_items(["c-love", "c-hate"], vectors)
    assert rec.n_items == 12 and cold.n_items == 14  # the original is untouched
    assert cold.bridged_.tolist() == [False] * 12 + [True, True]
    assert cold.train_[:, 12:].nnz == 0 and cold.item_degree_[12:].tolist() == [0, 0]
    for u in cold.user_ids:  # never in anyone's history, so never excluded as seen
        assert not {"c-love", "c-hate"} & set(cold.history(u))
    full = cold.recommend("u0", k=14)
    assert full[0][0] == "c-love" and full[-1][0] == "c-hate"
    assert full[0][1] == pytest.approx(3 * float(user @ user), rel=1e-5)
    assert [i for i, _ in cold.recommend("u0", k=2, allowed=cold.bridged_)] == ["c-love", "c-hate"]
    assert "c-love" in {i for i, _ in cold.recommend_from_items(["i1", "i2"], k=14)}
    assert cold.fold_in(["c-love"]) == pytest.approx(vectors[0], rel=1e-5)  # degree 0 + the new edge
    assert cold.layer0_.shape == (20 + 14, 8)
    assert cold.layer0_[-2:] == pytest.approx(vectors * (cold.config.n_layers + 1))
    loaded = GraphRecommender.load(cold.save(tmp_path / "m.pt"))
    assert loaded.bridged_.tolist() == cold.bridged_.tolist()
    assert loaded.recommend("u5", k=5) == cold.recommend("u5", k=5)


def test_with_items_rejects_duplicate_known_and_malformed_items():
    rec = _toy_recommender()
    v = np.zeros((2, 8))
    with pytest.raises(ValueError, match="duplicate new item ids: c1"):
        rec.with_items(["c1", "c1"], v)
    with pytest.raises(ValueError, match="already in the model.*i3"):
        rec.with_items(["c1", "i3"], v)
    with pytest.raises(ValueError, match=r"\(2, 8\) array"):
        rec.with_items(["c1", "c2"], np.zeros((2, 7)))
    with pytest.raises(ValueError, match="NaN"):
        rec.with_items(["c1", "c2"], np.full((2, 8), np.nan))
    with pytest.raises(ValueError, match="non-empty"):
        rec.with_items(["c1", " "], v)
    cold = rec.with_items(["c1", "c2"], v)
    with pytest.raises(ValueError, match="already in the model.*c1"):
        cold.with_items(["c1"], v[:1])
    with pytest.raises(UnknownIdError, match="unknown item id 'c3'"):
        cold.recommend("u0", allowed=["c3"])


# --- real data: bridged cold items beat random ----------------------------------------------
def _features(data: InteractionData) -> np.ndarray:
    """Cheap stand-in text vectors (no sentence model in unit tests): genres and decade, one-hot."""
    genres = sorted({g for gs in data.items_meta["genres"] for g in gs})
    decades = np.nan_to_num(data.items_meta["year"].to_numpy(dtype=float, na_value=np.nan), nan=1900) // 10
    out = np.zeros((data.n_items, len(genres) + 12))
    for i, gs in enumerate(data.items_meta["genres"]):
        out[i, [genres.index(g) for g in gs]] = 1.0
    out[np.arange(data.n_items), len(genres) + np.clip(decades.astype(int) - 189, 0, 11)] = 1.0
    return out


@pytest.mark.model  # trains LightGCN
def test_bridge_ranks_held_out_ml100k_items_better_than_random(ml100k):
    data = ml100k
    cold = np.sort(np.random.default_rng(7).choice(data.n_items, size=data.n_items // 10, replace=False))
    is_cold = np.isin(data.items, cold)
    warm = compact(data.subset(~is_cold))
    split = make_split(warm)
    result = train_lightgcn(split, TrainConfig(epochs=4, patience=4), progress=False)
    train = split.train_matrix()
    rec = GraphRecommender.from_model(result.model, train, split.train.user_ids, split.train.item_ids, "ml-100k")
    x = _features(data)
    rows = np.array([data.item_index()[i] for i in warm.item_ids])
    fit = np.asarray(train.sum(axis=0)).ravel() > 0
    bridge = TextGraphBridge().fit(x[rows][fit], rec.item_factors_[fit])
    cold_ids = [str(i) for i in data.item_ids[cold]]
    with_cold = rec.with_items(cold_ids, bridge.predict(x[cold]))

    # ground truth: every interaction with a cold item; candidates: the cold items only
    truth: dict[str, set[str]] = {}
    for u, i in zip(data.users[is_cold], data.items[is_cold]):
        truth.setdefault(str(data.user_ids[u]), set()).add(str(data.item_ids[i]))
    known = set(with_cold.user_ids)
    users = [u for u in truth if u in known]
    assert len(users) > 500

    def ndcg(ranked: list[list[str]]) -> float:
        hits = np.array([[i in truth[u] for i in r] for u, r in zip(users, ranked)])
        return mean_metrics(metrics_from_hits(hits, np.array([len(truth[u]) for u in users]), ks=(20,)))["ndcg@20"]

    bridged = ndcg([[i for i, _ in with_cold.recommend(u, k=20, allowed=with_cold.bridged_)] for u in users])
    rng = np.random.default_rng(0)
    chance = np.mean([ndcg([list(rng.permutation(cold_ids)[:20]) for _ in users]) for _ in range(3)])
    print(f"held-out ml-100k items: bridge NDCG@20 {bridged:.4f}, random {chance:.4f}")
    assert bridged > 1.5 * chance, (bridged, chance)
