"""The graph recommender surface the agent calls (shaped after ``implicit``).

Works on the final (propagated) LightGCN embeddings, kept as NumPy arrays so
one top-20 call is a matrix-vector product and an ``argpartition``.
External ids (strings, as the dataset writes them) in and out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from recsys.io import atomic_path
from recsys.lightgcn import LightGCN
from recsys.split import SplitConfig
from recsys.train import TrainConfig, read_checkpoint

CHECKPOINT_VERSION = 1


class UnknownIdError(KeyError):
    """A user or item id the model does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; people should read it plain
        return str(self.args[0])


@dataclass
class Evidence:
    """One history item's share of a score: why the graph thinks the user fits the item."""

    item_id: str
    similarity: float  # cosine of the two items' final embeddings
    contribution: float  # this item's term in the score decomposition


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class GraphRecommender:
    """A trained LightGCN with its id maps and training interactions."""

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray, train: sp.csr_matrix,
                 user_ids: Sequence[str], item_ids: Sequence[str], dataset: str = "",
                 config: TrainConfig | None = None, layer0: np.ndarray | None = None,
                 metrics: dict | None = None, split: SplitConfig | None = None,
                 dislike_weight: float = 0.5, bridged: np.ndarray | None = None) -> None:
        self.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.train_ = sp.csr_matrix(train, dtype=np.float32)
        self.user_ids = np.asarray(user_ids, dtype=object)
        self.item_ids = np.asarray(item_ids, dtype=object)
        self.dataset = dataset
        self.config = config or TrainConfig()
        self.layer0_ = layer0  # layer-0 table, kept so a checkpoint can resume training
        self.metrics = metrics or {}
        self.split = split or SplitConfig()  # how train_ was cut from the dataset
        self.dislike_weight = dislike_weight
        # bridged_[i]: item i was added by with_items (a cold item: a bridged vector, no interactions)
        self.bridged_ = (np.zeros(len(self.item_ids), dtype=bool) if bridged is None
                         else np.asarray(bridged, dtype=bool).copy())
        if self.bridged_.shape != (len(self.item_ids),):
            raise ValueError(f"bridged mask has shape {self.bridged_.shape}, expected ({len(self.item_ids)},)")
        self._user_index = {uid: u for u, uid in enumerate(self.user_ids)}
        self._item_index = {iid: i for i, iid in enumerate(self.item_ids)}
        self.item_degree_ = np.asarray(self.train_.sum(axis=0)).ravel().astype(np.float32)
        norms = np.linalg.norm(self.item_factors_, axis=1)
        self._unit_items = self.item_factors_ / np.maximum(norms, 1e-12)[:, None]
        self._mean_user = self.user_factors_.mean(axis=0) if len(self.user_factors_) else None
        self._unit_users: np.ndarray | None = None  # made by the first similar_users call

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: LightGCN, train: sp.csr_matrix, user_ids: Sequence[str],
                   item_ids: Sequence[str], dataset: str = "", config: TrainConfig | None = None,
                   metrics: dict | None = None, split: SplitConfig | None = None) -> GraphRecommender:
        with torch.no_grad():
            users, items = model.propagated()
        return cls(users.cpu().numpy(), items.cpu().numpy(), train, user_ids, item_ids, dataset,
                   config, model.embedding.detach().cpu().numpy(), metrics, split)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, user_id: str) -> int:
        try:
            return self._user_index[str(user_id)]
        except KeyError:
            raise UnknownIdError(f"unknown user id {user_id!r} for dataset {self.dataset or '?'} "
                                 f"({self.n_users} users)") from None

    def item_index(self, item_id: str) -> int:
        try:
            return self._item_index[str(item_id)]
        except KeyError:
            raise UnknownIdError(f"unknown item id {item_id!r} for dataset {self.dataset or '?'}") from None

    def has_item(self, item_id: str) -> bool:
        return str(item_id) in self._item_index

    def has_user(self, user_id: str) -> bool:
        return str(user_id) in self._user_index

    def with_items(self, item_ids: Sequence[str], vectors: np.ndarray) -> GraphRecommender:
        """A new recommender that also ranks cold items, given their graph-space vectors.

        ``vectors`` (``len(item_ids) x dim``) stand in for the items' final LightGCN
        embeddings, typically ``TextGraphBridge.predict`` of their text. The items get no
        interactions (no one has them in their history, so they are never "seen" and
        never excluded as such) and are scored by the same inner product as warm items in
        ``recommend``, ``recommend_from_items``, ``similar_items`` and ``score``; they may
        also be liked in ``fold_in`` (degree 0 gives them a finite weight). ``bridged_``
        marks them. ``self`` is left unchanged.

        Raises ``ValueError`` for an id already in the model, repeated in ``item_ids`` or
        empty, and for vectors of the wrong shape or with non-finite values.
        """
        ids = [str(i) for i in item_ids]
        vectors = np.asarray(vectors, dtype=np.float32)
        dim = self.item_factors_.shape[1]
        if vectors.ndim != 2 or vectors.shape != (len(ids), dim):
            raise ValueError(f"{len(ids)} new items need a ({len(ids)}, {dim}) array of vectors, "
                             f"got shape {vectors.shape}")
        if not np.all(np.isfinite(vectors)):
            raise ValueError("the new items' vectors have NaN or infinite values")
        if any(not i.strip() for i in ids):
            raise ValueError("new item ids must be non-empty strings")
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            raise ValueError(f"duplicate new item ids: {', '.join(repeated[:10])}")
        known = [i for i in ids if i in self._item_index]
        if known:
            raise ValueError(f"item ids already in the model ({self.dataset or '?'}): {', '.join(known[:10])}"
                             f"{' ...' if len(known) > 10 else ''}")
        n_new = len(ids)
        train = sp.hstack([self.train_, sp.csr_matrix((self.n_users, n_new), dtype=np.float32)], format="csr")
        layer0 = None
        if self.layer0_ is not None:
            # An isolated node's final embedding is its layer-0 row / (K + 1): keep the table
            # consistent so the new items' vectors survive a propagation unchanged.
            layer0 = np.vstack([np.asarray(self.layer0_, dtype=np.float32),
                                vectors * (self.config.n_layers + 1)])
        return GraphRecommender(self.user_factors_, np.vstack([self.item_factors_, vectors]), train,
                                self.user_ids, [*map(str, self.item_ids), *ids], self.dataset, self.config,
                                layer0, self.metrics, self.split, self.dislike_weight,
                                np.concatenate([self.bridged_, np.ones(n_new, dtype=bool)]))

    # recommending -------------------------------------------------------------------------
    def _allowed_mask(self, allowed: Iterable[str] | np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        if isinstance(allowed, np.ndarray) and allowed.dtype == bool:
            return allowed
        mask = np.zeros(self.n_items, dtype=bool)
        mask[[self.item_index(i) for i in allowed]] = True
        return mask

    def _rank(self, scores: np.ndarray, k: int, exclude: Iterable[int],
              allowed: Iterable[str] | np.ndarray | None) -> list[tuple[str, float]]:
        scores = scores.astype(np.float32, copy=True)
        mask = self._allowed_mask(allowed)
        if mask is not None:
            scores[~mask] = -np.inf
        scores[list(exclude)] = -np.inf
        top = _top_k(scores, k)
        return [(self.item_ids[i], float(scores[i])) for i in top]

    def recommend(self, user_id: str, k: int = 20, exclude_seen: bool = True,
                  allowed: Iterable[str] | np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-``k`` ``(item_id, score)`` for a dataset user; ``allowed``: the only items that may be
        returned, as item ids or a boolean mask over the items (None: all)."""
        u = self.user_index(user_id)
        seen = self.train_.indices[self.train_.indptr[u]:self.train_.indptr[u + 1]] if exclude_seen else ()
        return self._rank(self.item_factors_ @ self.user_factors_[u], k, seen, allowed)

    def _fold_in_weights(self, items: np.ndarray) -> np.ndarray:
        """LightGCN's edge weight 1/sqrt(|N_u| |N_i|) for a new user linked to ``items``.

        The item's degree counts the new edge too, so items without training
        interactions (cold items) get a finite weight.
        """
        if len(items) == 0:
            return np.zeros(0, dtype=np.float32)
        return 1.0 / np.sqrt(len(items) * (self.item_degree_[items] + 1.0))

    def fold_in(self, liked: Sequence[str], disliked: Sequence[str] = ()) -> np.ndarray:
        """A user vector for someone outside the graph, by one propagation step.

        A new user node linked to its liked items gets, after one LightGCN step,
        ``sum_i e_i / sqrt(|N_u| |N_i|)``. Disliked items enter the same way with a
        negative weight (``dislike_weight``), pushing their neighbourhood down. With
        no liked items the average user stands in, so the result is still sensible.
        """
        like = np.array([self.item_index(i) for i in liked], dtype=np.int64)
        dislike = np.array([self.item_index(i) for i in disliked], dtype=np.int64)
        if len(like):
            vector = self._fold_in_weights(like) @ self.item_factors_[like]
        elif self._mean_user is not None:
            vector = self._mean_user.copy()
        else:
            vector = np.zeros(self.item_factors_.shape[1], dtype=np.float32)
        if len(dislike):
            push = self._fold_in_weights(dislike) @ self.item_factors_[dislike]
            scale = np.linalg.norm(vector) / max(float(np.linalg.norm(push)), 1e-12)
            vector = vector - self.dislike_weight * scale * push
        return vector.astype(np.float32)

    def recommend_from_items(self, liked: Sequence[str], disliked: Sequence[str] = (), k: int = 20,
                             allowed: Iterable[str] | np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-``k`` for a chat user described only by items they like (and dislike).

        Liked and disliked items themselves are never returned; ``allowed`` as in ``recommend``.
        """
        vector = self.fold_in(liked, disliked)
        exclude = [self.item_index(i) for i in (*liked, *disliked)]
        return self._rank(self.item_factors_ @ vector, k, exclude, allowed)

    def recommend_similar(self, liked: Sequence[str], disliked: Sequence[str] = (), k: int = 20,
                          allowed: Iterable[str] | np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-``k`` by cosine to the liked items' mean direction ("more like these"), minus the
        disliked ones'. Unlike the fold-in's dot product it does not favour the most popular
        items (long embeddings), which matters for a person known by two or three titles
        (bench/RESULTS.md, "Retrieval for chat users": simulated hit rate 0.33 → 0.44)."""
        like = [self.item_index(i) for i in liked]
        dislike = [self.item_index(i) for i in disliked]
        if not like:
            return self.recommend_from_items(liked, disliked, k, allowed)
        direction = self._unit_items[like].mean(axis=0)
        if dislike:
            direction = direction - self.dislike_weight * self._unit_items[dislike].mean(axis=0)
        return self._rank(self._unit_items @ direction, k, like + dislike, allowed)

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Items nearest by cosine of final embeddings (the item itself left out)."""
        i = self.item_index(item_id)
        return self._rank(self._unit_items @ self._unit_items[i], k, [i], None)

    def similar_users(self, user: str | Sequence[str], k: int = 10) -> list[tuple[str, float]]:
        """Dataset users nearest by cosine of final embeddings, ``(user_id, cosine)`` best first.

        ``user`` is a dataset user id (left out of the answer) or a list of liked item ids: a chat
        user, folded in as in ``recommend_from_items``.
        """
        if self._unit_users is None:
            norms = np.linalg.norm(self.user_factors_, axis=1)
            self._unit_users = self.user_factors_ / np.maximum(norms, 1e-12)[:, None]
        vector = self.user_vector(user)
        similarity = self._unit_users @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
        if isinstance(user, str):
            similarity[self.user_index(user)] = -np.inf
        return [(self.user_ids[u], float(similarity[u])) for u in _top_k(similarity, k)]

    def score(self, user: str | Sequence[str], item_id: str) -> float:
        return float(self.user_vector(user) @ self.item_factors_[self.item_index(item_id)])

    def user_vector(self, user: str | Sequence[str]) -> np.ndarray:
        """A dataset user's final embedding, or a chat user's fold-in from the item ids they liked."""
        if isinstance(user, str):
            return self.user_factors_[self.user_index(user)]
        return self.fold_in(list(user))

    def history(self, user_id: str) -> list[str]:
        u = self.user_index(user_id)
        return [self.item_ids[i] for i in self.train_.indices[self.train_.indptr[u]:self.train_.indptr[u + 1]]]

    def explain_scores(self, user: str | Sequence[str], item_id: str, k: int = 5) -> dict:
        """Evidence for ``score(user, item)``: the user's history items that drive it.

        ``user`` is a dataset user id or a list of liked item ids (a chat user).
        The score is decomposed as in fold-in, ``sum_h w_h (e_h . e_i)`` over the
        history ``h``; each item's ``contribution`` is its term, shares are of the
        positive total. For dataset users this is the one-step (first-layer) part of
        their score, which is what the history explains.
        """
        history = self.history(user) if isinstance(user, str) else [str(h) for h in user]
        target = self.item_index(item_id)
        idx = np.array([self.item_index(h) for h in history], dtype=np.int64)
        result = {"item_id": str(item_id), "score": self.score(user, item_id), "evidence": []}
        if len(idx) == 0:
            return result
        terms = self._fold_in_weights(idx) * (self.item_factors_[idx] @ self.item_factors_[target])
        similarity = self._unit_items[idx] @ self._unit_items[target]
        positive_total = float(terms[terms > 0].sum()) or 1.0
        order = np.argsort(-terms, kind="stable")[:k]
        result["evidence"] = [
            {"item_id": history[j], "similarity": float(similarity[j]), "contribution": float(terms[j]),
             "share": float(max(terms[j], 0.0) / positive_total)}
            for j in order
        ]
        return result

    # persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """One ``.pt`` file (tensors and plain lists only, so it loads with ``weights_only``)."""
        path = Path(path)
        train = self.train_.tocsr()
        payload = {
            "version": CHECKPOINT_VERSION,
            "dataset": self.dataset,
            "config": self.config.model_dump(),
            "split": json.dumps(self.split.model_dump()),
            "metrics": json.dumps(self.metrics),
            "user_ids": [str(u) for u in self.user_ids],
            "item_ids": [str(i) for i in self.item_ids],
            "user_factors": torch.from_numpy(self.user_factors_),
            "item_factors": torch.from_numpy(self.item_factors_),
            "layer0": None if self.layer0_ is None else torch.from_numpy(np.asarray(self.layer0_)),
            "train_indptr": torch.from_numpy(train.indptr.astype(np.int64)),
            "train_indices": torch.from_numpy(train.indices.astype(np.int64)),
            "bridged": torch.from_numpy(self.bridged_.copy()),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GraphRecommender:
        payload = read_checkpoint(Path(path), CHECKPOINT_VERSION, "model checkpoint", "run `chatrec train` again")
        n_users, n_items = len(payload["user_ids"]), len(payload["item_ids"])
        indptr, indices = payload["train_indptr"].numpy(), payload["train_indices"].numpy()
        train = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                              shape=(n_users, n_items))
        layer0, bridged = payload["layer0"], payload.get("bridged")  # older files have no bridged items
        return cls(payload["user_factors"].numpy(), payload["item_factors"].numpy(), train,
                   payload["user_ids"], payload["item_ids"], payload["dataset"],
                   TrainConfig(**payload["config"]),
                   None if layer0 is None else layer0.numpy(), json.loads(payload["metrics"]),
                   SplitConfig(**json.loads(payload["split"])),
                   bridged=None if bridged is None else bridged.numpy())
