"""The statistics the evaluations report: bootstrap and Wilson intervals, and the pair AUC.

- :func:`bootstrap_means` / :func:`bootstrap_ci` / :func:`paired_diff_ci`: percentile bootstrap
  of a mean over users (``chatrec eval-rerank``, ``bench.blend_refit``; ``chatrec simulate``'s
  average turns);
- :func:`wilson_interval`: a binomial proportion's interval (``chatrec simulate``'s hit rate);
- :func:`pair_auc`: how often a relevant candidate outscores an irrelevant one of its list
  (P("yes") and graph scores in ``chatrec eval-rerank``, ``bench.tuning_sanity``).

Only NumPy; seeded, so the same seed gives the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def bootstrap_means(values: Sequence[float], n_boot: int = 2000, seed: int = 0, chunk: int = 500) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``values`` (with replacement), drawn ``chunk`` resamples at
    a time from ``numpy.random.default_rng(seed)`` (bounded memory for large user sets; the chunk
    size is part of the draw: the same seed and chunk give the same means)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("need a non-empty 1-d array of per-user values")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, len(values), size=(min(chunk, n_boot - start), len(values)))
        means[start:start + len(idx)] = values[idx].mean(axis=1)
    return means


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval of the mean, resampling users with replacement.

    The same ``seed`` draws the same resamples for arrays of the same length, so intervals of
    different methods on the same users (and of their differences) are paired.
    """
    means = bootstrap_means(values, n_boot, seed)
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return [float(low), float(high)]


def paired_diff_ci(method: Sequence[float], baseline: Sequence[float], n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> list[float]:
    """Interval of mean(method - baseline) over users resampled together (a paired bootstrap)."""
    method, baseline = np.asarray(method, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if method.shape != baseline.shape:
        raise ValueError(f"paired values need the same users: {method.shape} vs {baseline.shape}")
    return bootstrap_ci(method - baseline, n_boot, seed, level)


def wilson_interval(hits: int, n: int, z: float = 1.96) -> list[float]:
    """Wilson score interval of ``hits`` / ``n`` (95% with the default ``z``), rounded to 4 places;
    [0, 0] when ``n`` is 0."""
    if n == 0:
        return [0.0, 0.0]
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def pair_auc(scores: Sequence[Sequence[float]], relevant: Sequence[Sequence[bool]]) -> float | None:
    """How often a relevant candidate outscores an irrelevant one of the same list (ties count a
    half), pooled over every such pair of every list; None when no list has both kinds."""
    won = pairs = 0.0
    for s, r in zip(scores, relevant):
        s, r = np.asarray(s, dtype=np.float64), np.asarray(r, dtype=bool)
        hit, miss = s[r], s[~r]
        if len(hit) and len(miss):
            diff = hit[:, None] - miss[None, :]
            won += (diff > 0).sum() + 0.5 * (diff == 0).sum()
            pairs += diff.size
    return None if pairs == 0 else float(won / pairs)


__all__ = ["bootstrap_ci", "bootstrap_means", "pair_auc", "paired_diff_ci", "wilson_interval"]
