"""The linear probe of bench.xrec_probe: it finds a signal that is there and none that is not."""

from __future__ import annotations

import numpy as np

from bench.xrec_probe import ALPHAS, _cosines, _predict, fit_probe


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_probe_reads_a_linear_signal_and_falls_back_to_the_mean_without_one() -> None:
    rng = np.random.default_rng(0)
    x, x_new = rng.normal(size=(400, 16)), rng.normal(size=(200, 16))
    mixing = rng.normal(size=(16, 8))
    y, y_new = _unit(x @ mixing + 0.5), _unit(x_new @ mixing + 0.5)
    probe, _ = fit_probe(x, y)
    mean = np.repeat(y.mean(0, keepdims=True), len(y_new), axis=0)
    assert _cosines(_predict(probe, x_new), y_new).mean() > _cosines(mean, y_new).mean() + 0.2
    noise = _unit(rng.normal(size=(400, 8)) + 2.0)  # targets that have nothing to do with x
    probe, alpha = fit_probe(x, noise)
    assert alpha >= ALPHAS[-2]  # as much shrinkage toward the mean as was tried, or nearly
