"""The evaluations' statistics (agent/evals/stats.py) on known values: Wilson intervals, the pair
AUC against hand counts and the Mann–Whitney U, and the bootstrap's draws pinned to NumPy's calls
(so a seed keeps giving the intervals the saved runs report)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from agent.evals.stats import bootstrap_ci, bootstrap_means, pair_auc, paired_diff_ci, wilson_interval


def test_wilson_interval_of_known_proportions() -> None:
    assert wilson_interval(5, 10) == [0.2366, 0.7634]  # the textbook 95% interval of 5/10
    assert wilson_interval(0, 10) == [0.0, 0.2775]  # never below 0 ...
    assert wilson_interval(10, 10) == [0.7225, 1.0]  # ... nor above 1
    assert wilson_interval(0, 0) == [0.0, 0.0]
    low, high = wilson_interval(3, 10)
    assert [round(1 - high, 4), round(1 - low, 4)] == wilson_interval(7, 10)  # symmetric in hits / misses
    assert wilson_interval(50, 100)[1] - wilson_interval(50, 100)[0] < high - low  # narrower with more trials


def test_pair_auc_of_known_orderings() -> None:
    assert pair_auc([[3, 2, 1]], [[True, False, False]]) == 1.0  # the relevant item on top
    assert pair_auc([[1, 2, 3]], [[True, False, False]]) == 0.0  # at the bottom
    assert pair_auc([[2, 2]], [[True, False]]) == 0.5  # a tie counts a half
    assert pair_auc([[1, 2, 3, 4]], [[False, True, False, True]]) == 0.75  # 2>1, 4>1, 4>3; not 2>3
    # pooled over the pairs of every list, not averaged per list: 1 of 1 pair, then 0 of 2
    assert pair_auc([[5, 0], [0, 1, 2]], [[True, False], [True, False, False]]) == pytest.approx(1 / 3)
    assert pair_auc([[1, 2], [3]], [[False, False], [True]]) is None  # no list has both kinds


def test_pair_auc_of_one_list_is_the_mann_whitney_u() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 40).astype(float)  # many ties
    relevant = rng.random(40) < 0.3
    u = mannwhitneyu(scores[relevant], scores[~relevant]).statistic
    assert pair_auc([scores], [relevant]) == pytest.approx(u / (relevant.sum() * (~relevant).sum()))


def test_bootstrap_means_are_numpys_documented_draws() -> None:
    values = np.random.default_rng(1).random(37)
    # one draw of n_boot resamples ...
    rng = np.random.default_rng(4)
    whole = values[rng.integers(0, 37, size=(300, 37))].mean(axis=1)
    assert np.array_equal(bootstrap_means(values, 300, 4, chunk=300), whole)
    # ... or chunks of 500 (eval-rerank's intervals), each its own call on the same generator
    rng = np.random.default_rng(4)
    chunks = [values[rng.integers(0, 37, size=(n, 37))].mean(axis=1) for n in (500, 500, 200)]
    assert np.array_equal(bootstrap_means(values, 1200, 4), np.concatenate(chunks))
    low, high = np.quantile(np.concatenate(chunks), [0.025, 0.975])
    assert bootstrap_ci(values, 1200, 4) == pytest.approx([low, high], abs=1e-12)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_means([], 10)


def test_bootstrap_intervals_of_constants_and_nested_levels() -> None:
    assert bootstrap_ci([0.3] * 20, 500, 0) == pytest.approx([0.3, 0.3])
    values = np.random.default_rng(2).random(50)
    low95, high95 = bootstrap_ci(values, 1000, 3)
    low99, high99 = bootstrap_ci(values, 1000, 3, level=0.99)
    assert low99 <= low95 < values.mean() < high95 <= high99
    # paired: the difference of a method from itself is exactly zero, from itself + 0.1 exactly 0.1
    assert paired_diff_ci(values, values, 500, 0) == [0.0, 0.0]
    assert paired_diff_ci(values + 0.1, values, 500, 0) == pytest.approx([0.1, 0.1])
    with pytest.raises(ValueError, match="same users"):
        paired_diff_ci(values, values[:-1])
