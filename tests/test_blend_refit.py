"""bench.blend_refit's own parts: the ask cache refuses another model's asks and says what to do,
and the refit finds a planted P(yes) signal with a weight interval that excludes zero (and one
that straddles zero when P(yes) is noise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.blend_refit import CACHE_VERSION, fit_blend, load_cache, raw_weights, weight_interval


def _lists(p_yes_signal: float, users: int = 60, seed: int = 0) -> dict[str, dict]:
    """Lists of 20 with one validation item each; the graph score z and (by ``p_yes_signal``) the
    log-odds of P(yes) both lean towards it."""
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(users):
        y = np.zeros(20, dtype=int)
        y[rng.integers(20)] = 1
        score_z = rng.normal(size=20) + 0.8 * y
        logit = rng.normal(size=20) + p_yes_signal * y
        out[str(u)] = {"items": [str(i) for i in range(20)], "x": np.c_[score_z, logit].tolist(), "y": y.tolist()}
    return out


def test_refit_finds_a_planted_p_yes_signal_and_not_a_missing_one() -> None:
    planted, noise = _lists(1.5), _lists(0.0)
    planted_w, noise_w = raw_weights(fit_blend(planted, list(planted))), raw_weights(fit_blend(noise, list(noise)))
    assert planted_w["score_z"] > 0 and planted_w["p_yes_logit"] > 0
    assert planted_w["p_yes_per_score_z"] == pytest.approx(planted_w["p_yes_logit"] / planted_w["score_z"], abs=1e-3)
    low, high = weight_interval(planted, list(planted))
    assert 0 < low < planted_w["p_yes_per_score_z"] < high
    low, high = weight_interval(noise, list(noise))
    assert low < noise_w["p_yes_per_score_z"] < high and low < 0 < high


def test_the_cache_refuses_another_models_asks_and_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    assert load_cache(path, "qwen.gguf", "rated") == {}  # nothing asked yet
    path.write_text(json.dumps({"version": CACHE_VERSION, "model": "qwen.gguf", "profile": "rated",
                                "lists": {"7": {"items": [], "x": [], "y": []}}}), encoding="utf-8")
    assert set(load_cache(path, "qwen.gguf", "rated")) == {"7"}
    with pytest.raises(SystemExit, match="holds asks of 'qwen.gguf'.*pass another --cache"):
        load_cache(path, "SmolLM2", "rated")
    path.write_text('{"version": 1, "model": "qwen', encoding="utf-8")  # cut off mid-write by hand
    with pytest.raises(SystemExit, match="unreadable.*delete it"):
        load_cache(path, "qwen.gguf", "rated")
