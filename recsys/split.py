"""Train / validation / test splits.

``random_split`` follows RecBole's RS protocol (shuffle each user's
interactions, cut by ratio, with RecBole's rounding so small users still get
a test item); ``leave_last_out`` holds out each user's latest interactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

from recsys.data import DataError, InteractionData


@dataclass
class Split:
    """Three disjoint interaction sets over the same users and items."""

    train: InteractionData
    valid: InteractionData
    test: InteractionData

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def train_matrix(self) -> sp.csr_matrix:
        return _binary(self.train.matrix())

    def valid_matrix(self) -> sp.csr_matrix:
        return _binary(self.valid.matrix())

    def test_matrix(self) -> sp.csr_matrix:
        return _binary(self.test.matrix())


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def filter_by_rating(data: InteractionData, min_rating: float) -> InteractionData:
    """Keep interactions rated ``>= min_rating`` (RecBole's ``val_interval``)."""
    if data.ratings is None:
        raise DataError(f"{data.name}: a rating threshold was asked for, but this dataset has no ratings")
    return data.subset(data.ratings >= min_rating)


def compact(data: InteractionData) -> InteractionData:
    """Drop users and items that have no interactions left (and re-index densely)."""
    used_u, users = np.unique(data.users, return_inverse=True)
    used_i, items = np.unique(data.items, return_inverse=True)
    items_meta = data.items_meta.iloc[used_i].reset_index(drop=True) if len(data.items_meta) else data.items_meta
    users_meta = None if data.users_meta is None else data.users_meta.iloc[used_u].reset_index(drop=True)
    return InteractionData(
        name=data.name, user_ids=data.user_ids[used_u], item_ids=data.item_ids[used_i],
        users=users.astype(np.int64), items=items.astype(np.int64), ratings=data.ratings,
        timestamps=data.timestamps, items_meta=items_meta, users_meta=users_meta,
    )


def _ratio_counts(total: int, ratios: tuple[float, ...]) -> list[int]:
    """How many of a user's ``total`` interactions go to each part.

    RecBole's rule: floor each non-train share, give train the rest, then move
    one interaction from train to any part whose share was in (0, 1) so users
    with few interactions still appear in validation and test.
    """
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for k in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-k] * total < 1:
            counts[-k] += 1
            counts[0] -= 1
    return counts


def random_split(
    data: InteractionData,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 2020,
    min_rating: float | None = None,
) -> Split:
    """Random per-user split by ratio (RecBole ``RS`` with ``RO`` ordering)."""
    if min_rating is not None:
        data = compact(filter_by_rating(data, min_rating))
    if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) < 0:
        raise DataError(f"split ratios must be three non-negative numbers summing to 1, got {ratios}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(data.n_interactions)
    # Stable sort by user keeps the random order within each user.
    order = order[np.argsort(data.users[order], kind="stable")]
    part = np.empty(data.n_interactions, dtype=np.int8)
    starts = np.searchsorted(data.users[order], np.arange(data.n_users + 1))
    for u in range(data.n_users):
        lo, hi = starts[u], starts[u + 1]
        if hi == lo:
            continue
        n_train, n_valid, _ = _ratio_counts(hi - lo, ratios)
        idx = order[lo:hi]
        part[idx[:n_train]] = 0
        part[idx[n_train:n_train + n_valid]] = 1
        part[idx[n_train + n_valid:]] = 2
    return Split(data.subset(part == 0), data.subset(part == 1), data.subset(part == 2))


def leave_last_out(data: InteractionData, n_valid: int = 1, n_test: int = 1,
                   min_rating: float | None = None) -> Split:
    """Each user's latest ``n_test`` interactions are test, the ``n_valid`` before them validation.

    Users with too few interactions keep everything in train.
    """
    if min_rating is not None:
        data = compact(filter_by_rating(data, min_rating))
    if data.timestamps is None:
        raise DataError(f"{data.name}: leave-last-out needs timestamps, and this dataset has none")
    # Sort by user, then time; ties broken by original order for determinism.
    order = np.lexsort((np.arange(data.n_interactions), data.timestamps, data.users))
    starts = np.searchsorted(data.users[order], np.arange(data.n_users + 1))
    part = np.zeros(data.n_interactions, dtype=np.int8)
    for u in range(data.n_users):
        lo, hi = starts[u], starts[u + 1]
        if hi - lo < n_valid + n_test + 1:
            continue
        idx = order[lo:hi]
        part[idx[hi - lo - n_test:]] = 2
        part[idx[hi - lo - n_test - n_valid:hi - lo - n_test]] = 1
    return Split(data.subset(part == 0), data.subset(part == 1), data.subset(part == 2))


class SplitConfig(BaseModel):
    """How a dataset is split; stored with a trained model so evaluation re-creates it exactly."""

    kind: Literal["random", "last"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 2020
    min_rating: float | None = None


def refit_split(data: InteractionData) -> Split:
    """Every interaction in train, nothing held out: training again on all of them once early
    stopping on a split has chosen the epochs (``chatrec train --refit``)."""
    nothing = data.subset(np.zeros(data.n_interactions, dtype=bool))
    return Split(data, nothing, nothing)


def make_split(data: InteractionData, config: SplitConfig | None = None) -> Split:
    config = config or SplitConfig()
    if config.kind == "last":
        return leave_last_out(data, min_rating=config.min_rating)
    return random_split(data, config.ratios, config.seed, config.min_rating)
