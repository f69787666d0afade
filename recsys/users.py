"""Dataset users of a graph model: drawing them for an evaluation, what the graph offers one, their history.

Shared by the evaluations (``agent.evals``) and the instruction data (``agent.tuning``), so the
same seed draws the same people everywhere:

- :func:`sample_users`: a fixed-seed sample of the users with items in one split (``chatrec
  eval-rerank``'s test users, the blend's validation users, ``chatrec tune data``'s users);
  :func:`users_with_items` is who is eligible (``chatrec simulate`` walks a seeded permutation of
  them, since it skips people it cannot simulate);
- :func:`graph_candidates`: a dataset user's top-``k`` from the graph, as item indices and scores;
- :func:`history_order`: their training items in the order a re-rank prompt lists them.

Users and items are internal indices (rows and columns of the model's matrices).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import scipy.sparse as sp

from recsys.data import best_first
from recsys.recommender import GraphRecommender
from recsys.split import Split

PROFILES = ("rated", "agent")  # orders of a user's history, see history_order


def users_with_items(m: sp.csr_matrix) -> np.ndarray:
    """Rows of a user x item matrix (a split) with at least one item, ascending."""
    return np.flatnonzero(np.diff(m.indptr) > 0)


def sample_sorted(population: int | np.ndarray, n: int, seed: int | Collection[int]) -> np.ndarray:
    """``n`` of ``population`` (an array, or ``range(population)`` for an int) without replacement,
    sorted; all of it when it has no more than ``n``. ``numpy.random.default_rng(seed).choice``: a
    seed (or seed sequence such as ``[seed, 1]``, for a stream apart from ``seed``'s) gives the same
    draw every time."""
    size = population if isinstance(population, (int, np.integer)) else len(population)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(population, size=min(n, size), replace=False))


def sample_users(m: sp.csr_matrix, n: int, seed: int | Collection[int], exclude: Collection[int] = ()) -> np.ndarray:
    """``n`` users (internal indices, sorted) among those with at least one item in ``m`` and not in
    ``exclude`` (internal indices); all of them when there are no more than ``n``."""
    eligible = users_with_items(m)
    if len(exclude):
        eligible = eligible[~np.isin(eligible, np.asarray(list(exclude), dtype=np.int64))]
    return sample_sorted(eligible, n, seed)


def user_items(m: sp.csr_matrix, u: int) -> np.ndarray:
    """Item indices of user ``u``'s row in a user x item matrix."""
    return m.indices[m.indptr[u]:m.indptr[u + 1]]


def graph_candidates(recommender: GraphRecommender, user: int, also_exclude: np.ndarray,
                     k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The graph's top-``k`` for a dataset user (internal index): item indices and scores, best first.
    Training items are left out by ``recommend``; ``also_exclude`` (item indices) too."""
    allowed = np.ones(recommender.n_items, dtype=bool)
    allowed[also_exclude] = False
    ranked = recommender.recommend(recommender.user_ids[user], k, allowed=allowed)
    return (np.array([recommender.item_index(i) for i, _ in ranked], dtype=np.int64),
            np.array([s for _, s in ranked], dtype=np.float64))


def history_order(parts: Split, recommender: GraphRecommender, user: int, profile: str = "rated") -> list[int]:
    """A user's training items for the re-rank prompt, best first.

    ``rated``: highest rating first, the most recent first among equal ratings
    (``recsys.data.best_first``; ``CandidateTool.history`` serves the agent the same order).
    ``agent``: the model's training-matrix order, which the agent passed before it served ``rated``."""
    if profile == "agent":
        return [int(i) for i in user_items(recommender.train_, user)]
    if profile != "rated":
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    train = parts.train
    mine = np.flatnonzero(train.users == user)
    order = best_first(None if train.ratings is None else train.ratings[mine],
                       None if train.timestamps is None else train.timestamps[mine], len(mine))
    return [int(i) for i in train.items[mine][order]]


__all__ = ["PROFILES", "graph_candidates", "history_order", "sample_sorted", "sample_users",
           "user_items", "users_with_items"]
