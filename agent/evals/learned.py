"""The learned re-ranker and the blend of the graph score with P("yes") (``chatrec eval-rerank``'s
``learned`` and ``blend`` methods, ``bench.blend_refit``).

- ``learned``: a linear scorer over cheap features of each candidate (:data:`FEATURES`: graph
  score, its z-score in the list, rank, item popularity, genre overlap with the user's history,
  year distance), fitted on the VALIDATION split (:func:`learned_fit_data`: the graph's top-20
  without the training items, label = a validation item; the test split is not an argument);
- ``blend``: the same model over :data:`BLEND_FEATURES`, the graph score's z-score in its list and
  the log-odds of the LLM's P("yes") (:func:`blend_features`); its fitting rows are asked of the
  LLM on validation lists (``agent.evals.rerank.blend_fit_data``).

:class:`LearnedReranker` fits either (listwise softmax by default) and orders a list by its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from agent.config import TurnSettings
from recsys.users import graph_candidates, user_items, users_with_items

if TYPE_CHECKING:
    from agent.evals.rerank import EvalData

CANDIDATES = TurnSettings().candidates  # the graph's list a re-ranker orders, as in the agent and eval-rerank
FEATURES = ("score", "score_z", "log_rank", "log_popularity", "genre_overlap", "year_distance")
BLEND_FEATURES = ("score_z", "p_yes_logit")


def candidate_features(ev: EvalData, items: np.ndarray, scores: np.ndarray, history: np.ndarray) -> np.ndarray:
    """One row per candidate (in graph order), columns :data:`FEATURES`."""
    n = len(items)
    std = scores.std()
    score_z = (scores - scores.mean()) / std if std > 0 else np.zeros(n)
    log_rank = np.log2(np.arange(n) + 2.0)
    log_pop = np.log1p(ev.popularity[items])
    if len(history):
        share = ev.genres[history].mean(axis=0)  # share of the history with each genre
        g = ev.genres[items]
        overlap = (g * share).sum(axis=1) / np.maximum(g.sum(axis=1), 1)
        hist_years = ev.years[history]
        centre = np.nanmedian(hist_years) if np.isfinite(hist_years).any() else np.nan
    else:
        overlap, centre = np.zeros(n), np.nan
    distance = np.abs(ev.years[items] - centre) / 10.0
    distance = np.where(np.isfinite(distance), distance, 0.0)
    return np.column_stack([scores, score_z, log_rank, log_pop, overlap, distance])


@dataclass
class FitData:
    """What the learned re-ranker is fitted on: one row per (user, candidate)."""

    X: np.ndarray
    y: np.ndarray  # 1 = a validation item of the user
    users: np.ndarray  # internal user index per row
    items: np.ndarray  # internal item index per row


def learned_fit_data(ev: EvalData, train: sp.csr_matrix, valid: sp.csr_matrix, k: int = CANDIDATES) -> FitData:
    """Validation-time candidates for every user with validation items: the graph's top-``k``
    without the training items (``recommend`` leaves them out), labelled by the validation
    items. Only ``train`` and ``valid`` go in; the test split is not an argument."""
    X, y, us, its = [], [], [], []
    for u in users_with_items(valid):
        items, scores = graph_candidates(ev.recommender, int(u), np.empty(0, dtype=np.int64), k)
        X.append(candidate_features(ev, items, scores, user_items(train, u)))
        y.append(np.isin(items, user_items(valid, u)).astype(np.float64))
        us.append(np.full(len(items), u))
        its.append(items)
    return FitData(np.vstack(X), np.concatenate(y), np.concatenate(us), np.concatenate(its))


@dataclass
class LearnedReranker:
    """A linear scorer on standardised features; candidates are sorted by its score.

    ``loss="listwise"`` (default): a softmax over each user's candidate list (conditional logit),
    so only the order within a list is learned — what re-ranking needs. ``loss="pointwise"``:
    logistic regression over all rows, which also has to explain score levels across users; on
    the validation split it ranked worse than the graph order even in-sample, so it is kept
    only for comparison. L2 on the weights in both."""

    l2: float = 1.0
    loss: str = "listwise"
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    coef_: np.ndarray | None = None
    intercept_: float = 0.0
    fit_info: dict = field(default_factory=dict)
    names: tuple[str, ...] = FEATURES  # the feature columns, for reporting the weights

    def fit(self, data: FitData) -> LearnedReranker:
        X, y = np.asarray(data.X, dtype=np.float64), np.asarray(data.y, dtype=np.float64)
        if len(X) == 0 or y.min() == y.max():
            raise ValueError("the fitting data needs both positive and negative rows")
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        Z = (X - self.mean_) / self.scale_
        if self.loss == "listwise":
            theta, value, ok, groups = self._fit_listwise(Z, y, np.asarray(data.users))
            self.coef_, self.intercept_ = theta, 0.0
        elif self.loss == "pointwise":
            theta, value, ok = self._fit_pointwise(Z, y)
            self.coef_, self.intercept_, groups = theta[:-1], float(theta[-1]), None
        else:
            raise ValueError(f"loss must be 'listwise' or 'pointwise', not {self.loss!r}")
        self.fit_info = {"loss": self.loss, "rows": int(len(y)), "users": int(len(np.unique(data.users))),
                         "positives": int(y.sum()), "converged": ok, "objective": round(value, 5)}
        if groups is not None:
            self.fit_info["lists_with_a_positive"] = groups
        return self

    def _fit_pointwise(self, Z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, bool]:
        n = len(y)

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:-1], theta[-1]
            z = Z @ w + b
            value = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * self.l2 * (w @ w) / n  # stable log-loss
            p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
            return value, np.append(Z.T @ (p - y) / n + self.l2 * w / n, np.mean(p - y))

        out = minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B")
        return out.x, float(out.fun), bool(out.success)

    def _fit_listwise(self, Z: np.ndarray, y: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, float, bool, int]:
        # rows come grouped by user; keep the lists that have at least one positive
        order = np.argsort(users, kind="stable")
        Z, y, users = Z[order], y[order], users[order]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(users)]))
        n_pos = np.add.reduceat(y, starts)
        keep = n_pos[group] > 0
        Z, y, group = Z[keep], y[keep], group[keep]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(group)]))
        n_groups = len(starts)
        target = y / np.add.reduceat(y, starts)[group]  # each list's positives share its unit of weight

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = Z @ w
            top = np.maximum.reduceat(z, starts)
            e = np.exp(z - top[group])
            total = np.add.reduceat(e, starts)
            lse = top + np.log(total)
            value = (lse.sum() - target @ z) / n_groups + 0.5 * self.l2 * (w @ w) / n_groups
            dz = e / total[group] - target
            return value, Z.T @ dz / n_groups + self.l2 * w / n_groups

        out = minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B")
        return out.x, float(out.fun), bool(out.success), int(n_groups)

    def decision(self, X: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("fit the re-ranker first")
        return ((np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def order(self, X: np.ndarray, count: int = 5) -> list[int]:
        """The first ``count`` candidate positions (5: the list the person sees), best first; ties keep
        the graph order."""
        return [int(i) for i in np.argsort(-self.decision(X), kind="stable")[:count]]

    def coefficients(self) -> dict[str, float]:
        return {name: round(float(c), 4) for name, c in zip(self.names, self.coef_)}


def blend_features(scores: Sequence[float], p_yes: Sequence[float]) -> np.ndarray:
    """One row per candidate, columns :data:`BLEND_FEATURES`: the graph score's z-score in its list
    and the log-odds of the LLM's P("yes") (clipped at 1e-4 so a sure answer stays finite)."""
    s = np.asarray(scores, dtype=np.float64)
    std = s.std()
    score_z = (s - s.mean()) / std if std > 0 else np.zeros(len(s))
    p = np.clip(np.asarray(p_yes, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.column_stack([score_z, np.log(p / (1 - p))])


__all__ = ["BLEND_FEATURES", "FEATURES", "FitData", "LearnedReranker", "blend_features", "candidate_features",
           "learned_fit_data"]
