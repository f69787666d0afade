"""The common in-memory form every dataset is loaded into.

Internal ids are dense ``0..n-1`` indices; the external ids (as the source
writes them, always strings) live in ``user_ids`` / ``item_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp


ITEM_META_COLUMNS = ("item_id", "title", "year", "genres", "domain")


class DataError(ValueError):
    """A data file or dataset that cannot be used; the message says which and why."""


@dataclass
class InteractionData:
    """Interactions plus item (and, where the source has it, user) metadata.

    ``items_meta`` has one row per internal item index (row ``i`` describes item
    ``i``) with columns ``item_id, title, year, genres, domain`` (+ optional
    ``description``); ``genres`` is a tuple of strings, ``year`` an ``Int64``
    (nullable). ``users_meta`` likewise has one row per internal user index,
    or is ``None``.
    """

    name: str
    user_ids: np.ndarray  # external user id (str) of internal user u
    item_ids: np.ndarray  # external item id (str) of internal item i
    users: np.ndarray  # int64, internal user index of each interaction
    items: np.ndarray  # int64, internal item index of each interaction
    ratings: np.ndarray | None = None  # float32 per interaction, None for implicit data
    timestamps: np.ndarray | None = None  # int64 per interaction
    items_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    users_meta: pd.DataFrame | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.users)

    def matrix(self, values: np.ndarray | None = None) -> sp.csr_matrix:
        """Sparse ``n_users x n_items`` matrix; ones unless ``values`` are given."""
        data = np.ones(self.n_interactions, dtype=np.float32) if values is None else values
        return sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))

    def user_index(self) -> dict[str, int]:
        return {uid: u for u, uid in enumerate(self.user_ids)}

    def item_index(self) -> dict[str, int]:
        return {iid: i for i, iid in enumerate(self.item_ids)}

    def subset(self, mask: np.ndarray) -> InteractionData:
        """The same users and items, only the interactions where ``mask`` is true."""
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return InteractionData(
            name=self.name, user_ids=self.user_ids, item_ids=self.item_ids,
            users=self.users[mask], items=self.items[mask], ratings=pick(self.ratings),
            timestamps=pick(self.timestamps), items_meta=self.items_meta, users_meta=self.users_meta,
        )

    def items_best_first(self) -> dict[str, list[str]]:
        """Each user's items (external ids), best first (:func:`best_first`)."""
        order = np.argsort(self.users, kind="stable")  # by user, rows' own order within each
        users, items = self.users[order], self.items[order]
        ratings = None if self.ratings is None else self.ratings[order]
        stamps = None if self.timestamps is None else self.timestamps[order]
        starts = np.searchsorted(users, np.arange(self.n_users + 1))
        out = {}
        for u in range(self.n_users):
            a, b = starts[u], starts[u + 1]
            mine = best_first(None if ratings is None else ratings[a:b], None if stamps is None else stamps[a:b], b - a)
            out[str(self.user_ids[u])] = [str(self.item_ids[i]) for i in items[a:b][mine]]
        return out

    def summary(self) -> dict:
        density = self.n_interactions / max(1, self.n_users * self.n_items)
        return {"name": self.name, "users": self.n_users, "items": self.n_items,
                "interactions": self.n_interactions, "density": round(density, 6)}


def best_first(ratings: np.ndarray | None, timestamps: np.ndarray | None, n: int) -> np.ndarray:
    """The order of a person's ``n`` interactions to show them by: highest rating first, the most
    recent first among equal ratings, the rows' own order after that. The LLM's re-rank asks were
    measured and tuned with it (``recsys.users.history_order``), and the agent serves it."""
    ratings = np.zeros(n) if ratings is None else ratings
    timestamps = np.zeros(n) if timestamps is None else timestamps
    return np.lexsort((-timestamps, -ratings))  # the last key is the first; lexsort is stable
