"""A learned order for a conversation graph's candidates.

A graph trained on a few hundred conversations ranks by a handful of co-mentions; what people in
those conversations went on to suggest also follows how often a film is talked about, whether
its words and genres are near the films the person named, and how recent it is. A logistic
regression over those signals and the products of every two (one row per candidate, "was it
suggested next?") re-orders the pool the sources gave. It is fitted on conversations by ``python -m bench.crs_folds
--save-ranker`` (each fold's candidates from a graph that never saw that fold) and used only for
conversation graphs (the dot-product fold-in): MovieLens graphs keep their own order.

Every signal is read from what the product already holds (the graph's training matrix, the item
store's vectors, the catalogue): no benchmark data at run time.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parent / "data" / "conversation_ranker.json"
RANKED_POOL = 300  # the pool's first places that are re-ordered; the rest keep the sources' order
# every product of two signals beside the signals themselves, strongly regularised: whether the
# pool's place counts depends on whether the person named a film, the words on the genres, and so
# on. Chosen on ReDial valid's cached five-fold pools, cross-fitted (R@10 / R@50): one degree
# 0.222 / 0.416; two, C = 0.003 0.226 / 0.420, 0.01 0.225 / 0.422, 0.03 0.225 / 0.421
DEGREE = 2
C = 0.01

FEATURES = (
    "rank_log", "rank_inverse", "score_share",  # where the sources put it
    "from_graph", "from_store", "from_cold",
    "mentions_log",  # how many of the graph's conversations name it
    "co_mentions_log", "co_mentions_norm",  # conversations naming it and a film the person liked
    "text_cos_liked", "text_cos_latest",  # its words beside the liked films' (their mean, the latest)
    "genre_share",  # of the liked films' genres, the share it has
    "year_decades", "year_gap_decades", "recent",  # (year − 2000) / 10; from the liked films' mean; ≥ 2010
    "nothing_liked", "liked_log",  # the person: they matter through the products below
    "asked_genre",  # has a genre they asked for
    "text_cos_request",  # its words beside the request's
    "rank_log_nothing_liked", "mentions_log_nothing_liked", "text_cos_request_nothing_liked",
)


class RankerFileError(ValueError):
    """A ranker file that cannot be read as one (names the file and the reason)."""


def expanded(Z: np.ndarray, degree: int) -> np.ndarray:
    """The standardised signals ``Z`` and, for degree 2, every product of two of them (squares too)."""
    if degree == 1:
        return Z
    i, j = np.triu_indices(Z.shape[1])
    return np.hstack([Z, Z[:, i] * Z[:, j]])


def _standardised(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0  # a signal constant in training carries nothing
    return mean, scale


@dataclass
class ConversationRanker:
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]  # one per column of expanded(): a ranking needs no intercept
    fitted_on: str = ""  # what it learned from, in words (the command, the lines)
    degree: int = 1  # files written before products were fitted hold the signals alone

    def score(self, X: np.ndarray) -> np.ndarray:
        """Higher first; ``X`` one row per candidate, columns in :data:`FEATURES` order."""
        Z = (X - np.asarray(self.mean)) / np.asarray(self.scale)
        return expanded(Z, self.degree) @ np.asarray(self.coef)

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, fitted_on: str = "", degree: int = DEGREE,
            C: float = C) -> ConversationRanker:
        from sklearn.linear_model import LogisticRegression

        mean, scale = _standardised(X)
        E = expanded((X - mean) / scale, degree)
        e_mean, e_scale = _standardised(E)  # the products standardised too, so that C weighs each alike
        model = LogisticRegression(max_iter=3000, C=C).fit((E - e_mean) / e_scale, y)
        # folded into one weight per column; the constant it leaves does not change an order
        coef = model.coef_[0] / e_scale
        return cls(list(FEATURES), mean.round(6).tolist(), scale.round(6).tolist(),
                   coef.round(8).tolist(), fitted_on, degree)

    def save(self, path: Path) -> Path:
        """Written to a temporary file, then renamed: never half a ranker on disk."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self), out, indent=1)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> ConversationRanker:
        try:
            data = json.loads(Path(path).read_text())
            ranker = cls(**{k: data[k] for k in ("features", "mean", "scale", "coef")},
                         fitted_on=str(data.get("fitted_on", "")), degree=int(data.get("degree", 1)))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RankerFileError(f"{path}: not a conversation ranker ({err})") from err
        if tuple(ranker.features) != FEATURES:
            raise RankerFileError(f"{path}: its features are not this version's ({len(ranker.features)} "
                                  f"named, {len(FEATURES)} expected): fit it again with bench.crs_folds --save-ranker")
        if ranker.degree not in (1, 2):
            raise RankerFileError(f"{path}: degree {ranker.degree}: 1 or 2 expected")
        columns = expanded(np.zeros((1, len(FEATURES))), ranker.degree).shape[1]
        if not len(ranker.mean) == len(ranker.scale) == len(FEATURES) or len(ranker.coef) != columns:
            raise RankerFileError(f"{path}: {len(FEATURES)} means and scales and {columns} weights expected")
        return ranker


def load_ranker(path: Path | None = None) -> ConversationRanker | None:
    """The ranker at ``path``, or the shipped one (None when none ships); a named file that is
    missing is an error, not silently no ranker."""
    if path:
        if not Path(path).exists():
            raise RankerFileError(f"{path}: no such conversation ranker file")
        return ConversationRanker.load(Path(path))
    return ConversationRanker.load(SHIPPED) if SHIPPED.exists() else None


def candidate_features(*, pool: Sequence[tuple[str, float, str]], liked: Sequence, vectors: dict[str, np.ndarray],
                       mentions: dict[str, float], co_mentions: dict[str, tuple[float, float]],
                       years: dict[str, int | None], genres: dict[str, frozenset[str]],
                       asked: frozenset[str], request: np.ndarray | None) -> np.ndarray:
    """One row per pool entry ``(item id, score, source)``, in :data:`FEATURES` order.

    ``liked``: the liked items' ids, the latest last; ``vectors``: unit text vectors by item id
    (pool and liked); ``mentions``: conversations naming each pool item; ``co_mentions``: for each
    pool item, (the conversations naming it and a liked film, summed over the liked films; the
    same with each film's count divided by √((its mentions + 1)(that film's + 1)));
    ``request``: the unit vector of the person's words, or None.
    """
    liked = [i for i in liked if i in vectors]
    nothing = not liked
    mean_liked = None
    if liked:
        mean_liked = np.mean([vectors[i] for i in liked], axis=0)
        mean_liked /= max(float(np.linalg.norm(mean_liked)), 1e-12)
    latest = vectors[liked[-1]] if liked else None
    liked_years = [y for i in liked if (y := years.get(i))]
    liked_genres: dict[str, int] = {}
    for i in liked:
        for g in genres.get(i, ()):
            liked_genres[g] = liked_genres.get(g, 0) + 1
    genre_total = max(sum(liked_genres.values()), 1)
    top = max((s for _, s, _ in pool), default=0.0) or 1.0
    rows = []
    for rank, (item_id, score, source) in enumerate(pool):
        vec = vectors.get(item_id)
        year = years.get(item_id) or 2000
        mentions_log = math.log1p(mentions.get(item_id, 0.0))
        request_cos = float(vec @ request) if vec is not None and request is not None else 0.0
        rank_log = math.log1p(rank)
        co_raw, co_norm = co_mentions.get(item_id, (0.0, 0.0))
        rows.append([
            rank_log, 1.0 / (rank + 1), score / top,
            source == "graph", source == "store", source == "cold",
            mentions_log, math.log1p(co_raw), co_norm,
            float(vec @ mean_liked) if vec is not None and mean_liked is not None else 0.0,
            float(vec @ latest) if vec is not None and latest is not None else 0.0,
            sum(liked_genres.get(g, 0) for g in genres.get(item_id, ())) / genre_total,
            (year - 2000) / 10, abs(year - float(np.mean(liked_years))) / 10 if liked_years else 0.0, year >= 2010,
            nothing, math.log1p(len(liked)),
            bool(asked & genres.get(item_id, frozenset())),
            request_cos,
            rank_log * nothing, mentions_log * nothing, request_cos * nothing,
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
