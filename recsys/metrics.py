"""Top-K ranking metrics with RecBole's definitions, and full-sort evaluation.

For a user with ground-truth set T and a ranked list r_1..r_K (hit_j = r_j in T):
  Recall@K    = sum_j hit_j / |T|
  Precision@K = sum_j hit_j / K
  Hit@K       = 1 if any hit_j else 0
  MRR@K       = 1 / (first j with hit_j), 0 if none
  NDCG@K      = sum_j hit_j / log2(j + 1)  /  sum_{j <= min(|T|, K)} 1 / log2(j + 1)
Each is averaged over the users that have at least one ground-truth item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

METRICS = ("recall", "ndcg", "precision", "hit", "mrr")
DEFAULT_KS = (5, 10, 20)


def metrics_from_hits(hits: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user metric values from a boolean hit matrix.

    ``hits[u, j]`` says whether the item ranked ``j+1`` for user ``u`` is relevant;
    ``n_relevant[u]`` is ``|T_u|`` (must be > 0). Returns ``{"recall@5": array, ...}``.
    """
    hits = np.asarray(hits, dtype=np.float64)
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    if hits.shape[1] < max(ks):
        raise ValueError(f"need at least {max(ks)} ranked items, got {hits.shape[1]}")
    discount = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    cum_hits = np.cumsum(hits, axis=1)
    cum_dcg = np.cumsum(hits * discount, axis=1)
    cum_idcg = np.cumsum(discount)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        n_hit = cum_hits[:, k - 1]
        ideal = cum_idcg[np.minimum(n_relevant, k).astype(int) - 1]
        out[f"recall@{k}"] = n_hit / n_relevant
        out[f"ndcg@{k}"] = cum_dcg[:, k - 1] / ideal
        out[f"precision@{k}"] = n_hit / k
        out[f"hit@{k}"] = (n_hit > 0).astype(np.float64)
        out[f"mrr@{k}"] = np.where(first_hit <= k, 1.0 / first_hit, 0.0)
    return out


def mean_metrics(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(values.mean()) if len(values) else 0.0 for name, values in per_user.items()}


def full_sort_topk(
    score_users: Callable[[torch.Tensor], torch.Tensor],
    users: np.ndarray,
    exclude: sp.csr_matrix,
    k: int,
    batch_size: int = 1024,
) -> np.ndarray:
    """Top-``k`` item indices for each of ``users`` over all items minus ``exclude[u]``.

    ``score_users(user_index_tensor)`` returns a ``len(batch) x n_items`` score matrix.
    Catalogues smaller than ``k`` are padded with -1 (a slot that never hits).
    """
    out = np.full((len(users), k), -1, dtype=np.int64)
    k = min(k, exclude.shape[1])
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        with torch.no_grad():
            scores = score_users(torch.as_tensor(batch, dtype=torch.long)).clone()
        rows = exclude[batch]
        r, c = rows.nonzero()
        scores[torch.as_tensor(r, dtype=torch.long), torch.as_tensor(c, dtype=torch.long)] = -torch.inf
        out[start:start + len(batch), :k] = torch.topk(scores, k, dim=1).indices.numpy()
    return out


def evaluate_ranking(
    score_users: Callable[[torch.Tensor], torch.Tensor],
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    ks: Sequence[int] = DEFAULT_KS,
    per_user: bool = False,
) -> dict[str, float] | dict[str, np.ndarray]:
    """Full-sort evaluation: rank every item not in ``exclude`` and score against ``truth``.

    Users without ground truth are skipped (as RecBole does).
    """
    n_relevant = np.diff(truth.indptr)
    users = np.flatnonzero(n_relevant > 0)
    top = full_sort_topk(score_users, users, exclude, max(ks))
    # A hit is a (row, item) pair present in the truth: match them as integer keys.
    n_items = truth.shape[1]
    coo = truth[users].tocoo()
    truth_keys = coo.row.astype(np.int64) * n_items + coo.col
    top_keys = np.arange(len(users), dtype=np.int64)[:, None] * n_items + top
    hits = (top >= 0) & np.isin(top_keys, truth_keys)
    values = metrics_from_hits(hits, n_relevant[users], ks)
    return values if per_user else mean_metrics(values)
