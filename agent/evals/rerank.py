"""Offline re-rank gain, the Chat-Rec protocol (``chatrec eval-rerank``).

For sampled ml-100k test users: LightGCN's top-20 unseen items are the candidates, and a top-5
is taken from them in several ways —

- ``graph``: the graph's own order (what the agent shows with ``rerank = "graph"``);
- ``llm``: the configured LLM re-ranks them (``tools.rerank.Reranker``, exactly the agent's call;
  an unusable answer falls back to the graph order and is counted as a fallback);
- ``pointwise``: InstructRec's way — the LLM is asked of each candidate "would they enjoy it? yes
  or no" and the candidates are sorted by P("yes") (``tools.rerank.PointwiseReranker``);
  ``fused``: by the mean of that rank and the graph rank (the same asks, scored once);
  ``blend``: by a weighted sum of the graph score's z-score in its list and the log-odds of
  P("yes"), the two weights fitted on VALIDATION lists of other asks (``fit_users`` users, the
  same listwise model as ``learned``): the fusion with its weight chosen by data, not fixed;
- ``learned``: a logistic regression over cheap features (graph score, its z-score in the list,
  rank, item popularity, genre overlap with the user's history, year distance) fitted on the
  VALIDATION split — candidates excluding the training items, label = a validation item
  (the model, its features and the blend's: ``agent.evals.learned``).

Precision@5, Recall@5 and NDCG@5 (RecBole's definitions, ``recsys.metrics``) against each user's
test items, with 95% bootstrap intervals over users, and for each method other than ``graph``
the paired bootstrap interval of its per-user difference from the graph order
(``agent.evals.stats``). With a pointwise method, ``meta.pointwise_lists`` keeps every user's
candidates, P(yes) and graph scores, so another way of combining the two can be measured without
asking the LLM again.

The split is the one the saved model was trained on (re-made from the split config stored in
the model, checked against the model's training matrix). Candidates come from the saved
recommender directly — ``GraphRecommender.recommend`` with the training items left out (as in
``CandidateTool``) and also the user's validation items (known interactions, never test
items; ``recsys.workflow.evaluate_recommender`` leaves them out the same way). The agent's
``CandidateTool`` runs on the model with bridged cold movies and keeps 3 of its 20 places for
them; cold movies have no interactions so they can never be test hits, and here they are not
offered: the candidates are the graph's warm top-20, which is what the tool's warm part returns.

Learned re-ranker and test data: the fitting data is built from the training and validation
matrices only (the test matrix is never passed in). A user's test items may be among the
fitting candidates as label-0 rows, as any item the user has not interacted with yet; dropping
them would choose the fitting data with test knowledge.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from agent.config import TurnSettings
from agent.evals.learned import (BLEND_FEATURES, CANDIDATES, FEATURES, FitData, LearnedReranker, blend_features,
                                 candidate_features, learned_fit_data)
from agent.evals.stats import bootstrap_ci, pair_auc, paired_diff_ci
from recsys.data import DataError, InteractionData
from recsys.metrics import metrics_from_hits
from recsys.recommender import GraphRecommender
from recsys.split import Split
from recsys.users import PROFILES, graph_candidates, history_order, sample_users, user_items, users_with_items
from recsys.workflow import model_split
from tools.candidates import Candidate
from tools.catalog import Catalog, CatalogItem, catalog_path, display_title, read_catalog
from tools.rerank import PointwiseReranker, Reranker, fused_order

log = logging.getLogger(__name__)

K = 5  # the list the person sees
# CANDIDATES (learned.py): what the graph hands the re-ranker, as in the agent
PROFILE_TITLES = TurnSettings().profile_titles  # history titles passed to the re-ranker, as the agent does (the prompt shows 6)
METRICS = ("precision@5", "recall@5", "ndcg@5")
METHODS = ("graph", "llm", "pointwise", "fused", "blend", "learned")
DEFAULT_METHODS = ("graph", "llm", "learned")
POINTWISE = ("pointwise", "fused", "blend")  # all from one set of yes / no asks on the test lists
FIT_USERS = 100  # validation lists asked to fit the blend's two weights


# ----------------------------------------------------------------------------- metrics


def topk_metrics(ranked: Sequence[Sequence[int]], truth: Sequence[set[int] | frozenset[int]],
                 k: int = K) -> dict[str, np.ndarray]:
    """Per-user Precision@k, Recall@k and NDCG@k of ranked item lists against truth sets.

    RecBole's definitions (``recsys.metrics``): Precision = hits / k, Recall = hits / |T|,
    NDCG = DCG / ideal DCG of min(|T|, k) hits. A list shorter than ``k`` counts its missing
    places as misses; every truth set must be non-empty.
    """
    if len(ranked) != len(truth):
        raise ValueError(f"{len(ranked)} ranked lists but {len(truth)} truth sets")
    if any(len(t) == 0 for t in truth):
        raise ValueError("every user needs at least one relevant item")
    hits = np.zeros((len(ranked), k), dtype=bool)
    for u, (items, relevant) in enumerate(zip(ranked, truth)):
        for j, item in enumerate(list(items)[:k]):
            hits[u, j] = item in relevant
    values = metrics_from_hits(hits, np.array([len(t) for t in truth]), ks=(k,))
    return {name: values[name] for name in (f"precision@{k}", f"recall@{k}", f"ndcg@{k}")}


# ----------------------------------------------------------------------------- the data


@dataclass
class EvalData:
    """The saved model's split, rebuilt, plus what the features and prompts need."""

    recommender: GraphRecommender
    parts: Split
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    items: list[CatalogItem]  # graph item index -> catalog item (titles the agent shows)
    genres: np.ndarray  # n_items x n_genres, bool
    years: np.ndarray  # float, NaN where unknown
    popularity: np.ndarray  # training interactions per item
    catalog_source: str = ""


def _check_disjoint(named: dict[str, sp.csr_matrix]) -> None:
    names = list(named)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            shared = named[names[a]].multiply(named[names[b]]).nnz
            if shared:
                raise DataError(f"the {names[a]} and {names[b]} splits share {shared} user-item pairs")


def dataset_items(data: InteractionData) -> dict[str, CatalogItem]:
    """Catalog items for a dataset's movies from its own metadata (what the catalog makes of
    warm ml-100k movies, less titles and genres linked from ml-latest-small)."""
    out = {}
    for row in data.items_meta.itertuples(index=False):
        year = getattr(row, "year", None)
        out[str(row.item_id)] = CatalogItem(
            item_id=f"{data.name}:{row.item_id}", domain="movie", title=display_title(str(row.title)),
            year=None if year is None or pd.isna(year) else int(year),
            genres=tuple(row.genres or ()), warm=True, graph_item_id=str(row.item_id))
    return out


def load_eval_data(recommender: GraphRecommender, home: Path | None = None, catalog: Catalog | None = None) -> EvalData:
    """Rebuild the saved model's train / valid / test split and check it is the model's.

    ``catalog``: where titles come from (default: the cached catalog in the data home, else the
    dataset's own metadata)."""
    if recommender.bridged_.any():
        raise DataError("evaluate the saved model itself, without bridged cold items")
    data, parts = model_split(recommender, home)
    train, valid, test = parts.train_matrix(), parts.valid_matrix(), parts.test_matrix()
    if (train != sp.csr_matrix(recommender.train_)).nnz:
        raise DataError(f"the rebuilt {recommender.dataset} training split is not the one the model was trained on "
                        f"(split {recommender.split.model_dump()})")
    _check_disjoint({"train": train, "valid": valid, "test": test})
    by_id = dataset_items(data)
    source = f"{recommender.dataset} metadata"
    if catalog is None and catalog_path(home).exists():
        try:
            catalog = read_catalog(catalog_path(home))
        except (OSError, ValueError) as exc:
            log.warning("catalog cache unreadable (%s): titles from the dataset", exc)
    if catalog is not None:
        source = "catalog"
        for gid in list(by_id):
            item = catalog.by_graph_id(gid)
            if item is not None:
                by_id[gid] = item
    items = [by_id[str(gid)] for gid in recommender.item_ids]
    vocab = sorted({g for genres in data.items_meta["genres"] for g in (genres or ())})
    col = {g: n for n, g in enumerate(vocab)}
    genres = np.zeros((recommender.n_items, len(vocab)), dtype=bool)
    years = np.full(recommender.n_items, np.nan)
    for row in data.items_meta.itertuples(index=False):
        i = recommender.item_index(str(row.item_id))
        for g in row.genres or ():
            genres[i, col[g]] = True
        try:
            years[i] = float(row.year)
        except (TypeError, ValueError):
            pass
    popularity = np.asarray(train.sum(axis=0)).ravel()
    return EvalData(recommender, parts, train, valid, test, items, genres, years, popularity, source)


# ----------------------------------------------------------------------------- blend: graph + P(yes)


def sample_fit_users(valid: sp.csr_matrix, n: int, seed: int) -> np.ndarray:
    """``n`` users (sorted) among those with validation items, drawn apart from the test sample's
    stream (they may overlap with the test users: their validation lists are other lists)."""
    return sample_users(valid, n, [seed, 1])


def blend_fit_data(ev: EvalData, pointwise: PointwiseReranker, valid: sp.csr_matrix, users: Sequence[int],
                   profile: str = "rated", codes=None, progress: bool = False) -> FitData:
    """Validation lists for the blend: each user's graph top-20 without the training items
    (``recommend`` leaves them out), P("yes") asked of each candidate as at test time, label = a
    validation item. Like :func:`learned_fit_data` the test split is not read."""
    recommender = ev.recommender
    X, y, us, its = [], [], [], []
    for u in tqdm(users, desc="blend fit users", unit="user", file=sys.stderr, disable=not progress):
        items, scores = graph_candidates(recommender, int(u), np.empty(0, dtype=np.int64), CANDIDATES)
        result = pointwise.rerank([Candidate(ev.items[i], float(s), "graph") for i, s in zip(items, scores)],
                                  len(items), profile=profile_titles(ev, int(u), profile),
                                  codes=None if codes is None else codes.field(recommender.user_ids[u],
                                                                               recommender.item_ids[items]))
        if not result.used_llm:
            raise DataError(f"pointwise ranking needs answer probabilities: {result.note}")
        X.append(blend_features(scores, result.p_yes))
        y.append(np.isin(items, user_items(valid, int(u))).astype(np.float64))
        us.append(np.full(len(items), u))
        its.append(items)
    return FitData(np.vstack(X), np.concatenate(y), np.concatenate(us), np.concatenate(its))


def profile_titles(ev: EvalData, user: int, profile: str) -> list[str]:
    """The history titles a re-rank prompt gets, as the agent passes them."""
    return [ev.items[i].title for i in history_order(ev.parts, ev.recommender, user, profile)[:PROFILE_TITLES]]


# ----------------------------------------------------------------------------- the evaluation


def method_row(ranked: Sequence[Sequence[int]], graph: Sequence[Sequence[int]] | None,
               truth: Sequence[set[int] | frozenset[int]], n_boot: int, seed: int) -> dict:
    """One re-ranker's line of the result: P@5 / R@5 / NDCG@5 with bootstrap intervals and, given
    the graph's top-5 lists of the same users, the paired differences from them and how often the
    top-5 is the graph's own."""
    per_user = topk_metrics(ranked, truth)
    row = {name: round(float(per_user[name].mean()), 4) for name in METRICS}
    for name in METRICS:
        row[f"{name}_ci95"] = [round(x, 4) for x in bootstrap_ci(per_user[name], n_boot, seed)]
    if graph is not None:
        baseline = topk_metrics(graph, truth)
        for name in METRICS:
            row[f"{name}_diff"] = round(float((per_user[name] - baseline[name]).mean()), 4)
            row[f"{name}_diff_ci95"] = [round(x, 4) for x in paired_diff_ci(per_user[name], baseline[name],
                                                                               n_boot, seed)]
        row["same_top5_as_graph"] = round(float(np.mean([list(a) == list(b) for a, b in zip(ranked, graph)])), 4)
    return row


def _verdict(name: str, diff_ci: list[float], mean_diff: float, same_top5: float) -> str:
    low, high = diff_ci
    label = {"llm": "The LLM re-rank", "learned": "The learned re-ranker", "pointwise": "Ranking by the LLM's P(yes)",
             "fused": "P(yes) rank fused with the graph rank",
             "blend": "The graph score blended with P(yes) (weights fitted on validation)"}.get(name, name)
    interval = f"NDCG@5 difference {mean_diff:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}]"
    if same_top5 == 1.0:
        return f"{label} does not beat the graph order: it gave the graph's top-5 for every user ({interval})."
    if low > 0:
        return f"{label} beats the graph order ({interval})."
    if high < 0:
        return f"{label} does worse than the graph order ({interval})."
    return f"{label} does not beat the graph order: no significant difference ({interval}, contains 0)."


def evaluate_rerank(recommender: GraphRecommender, *, home: Path | None = None, llm=None, users: int = 200,
                    seed: int = 0, methods: Sequence[str] = DEFAULT_METHODS, profile: str = "rated",
                    n_boot: int = 2000, catalog: Catalog | None = None, progress: bool = True,
                    llm_info: dict | None = None, codes=None, fit_users: int = FIT_USERS) -> dict:
    """The Chat-Rec re-rank evaluation on ``users`` sampled test users; see the module docstring.

    ``llm``: a chat model for the ``llm``, ``pointwise``, ``fused`` and ``blend`` methods
    (``agent.llm.make_chat_model``); ``codes`` (agent.tuning.codes.CollabCodes): put BinLLM's codes
    of the person and the candidates in its prompts; ``fit_users``: how many users' validation
    lists are asked to fit ``blend``. Returns one entry per method, e.g.
    ``{"graph": {...}, "llm": {...}, "learned": {...}, "meta": {...}, "verdict": {...}}``."""
    started = time.perf_counter()
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "graph" not in methods:
        raise ValueError(f"methods must include 'graph' and come from {METHODS}, got {list(methods)}")
    if llm is None and (needs := [m for m in methods if m == "llm" or m in POINTWISE]):
        raise ValueError(f"the {', '.join(needs)} method(s) need a chat model")
    ev = load_eval_data(recommender, home, catalog)
    if not len(users_with_items(ev.test)):
        raise DataError("no user has a test item")
    sample = sample_users(ev.test, users, seed)
    truth = [frozenset(user_items(ev.test, u).tolist()) for u in sample]

    learned = None
    if "learned" in methods:
        t = time.perf_counter()
        fit_data = learned_fit_data(ev, ev.train, ev.valid)  # train + valid only
        learned = LearnedReranker().fit(fit_data)
        learned.fit_info["seconds"] = round(time.perf_counter() - t, 2)
        # transparency, read after fitting: test pairs among the fitting rows were label 0 (not yet seen)
        n_items = ev.test.shape[1]
        test_keys = ev.test.tocoo().row.astype(np.int64) * n_items + ev.test.tocoo().col
        learned.fit_info["rows_that_are_test_pairs"] = int(np.isin(fit_data.users * n_items + fit_data.items,
                                                                   test_keys).sum())

    reranker = Reranker(llm) if "llm" in methods else None
    pointwise = PointwiseReranker(llm) if any(m in POINTWISE for m in methods) else None
    blend = None
    if "blend" in methods:
        t = time.perf_counter()
        fit_users_drawn = sample_fit_users(ev.valid, fit_users, seed)
        blend_data = blend_fit_data(ev, pointwise, ev.valid, fit_users_drawn, profile, codes, progress)  # no test
        blend = LearnedReranker(names=BLEND_FEATURES).fit(blend_data)
        blend.fit_info.update({"seconds": round(time.perf_counter() - t, 2),
                               "p_yes_auc": pair_auc(*_lists(blend_data, 1)),
                               "graph_score_auc": pair_auc(*_lists(blend_data, 0))})
    ranked: dict[str, list[list[int]]] = {m: [] for m in methods}
    fallbacks: Counter = Counter()
    answered_graph_order = 0
    llm_seconds = pointwise_seconds = 0.0
    p_yes_lists, graph_scores, test_hits = [], [], []  # per user, over the 20 candidates, for pair_auc
    candidate_ids = []  # per user, the 20 candidates' dataset ids (kept with P(yes) for later analysis)
    for u in tqdm(sample, desc="rerank users", unit="user", file=sys.stderr, disable=not progress):
        items, scores = graph_candidates(recommender, int(u), user_items(ev.valid, u), CANDIDATES)
        ranked["graph"].append(items[:K].tolist())
        if learned is not None:
            X = candidate_features(ev, items, scores, user_items(ev.train, u))
            ranked["learned"].append(items[learned.order(X, K)].tolist())
        candidates = [Candidate(ev.items[i], float(s), "graph") for i, s in zip(items, scores)]
        titles = profile_titles(ev, int(u), profile)
        field = None if codes is None else codes.field(recommender.user_ids[u], recommender.item_ids[items])
        if pointwise is not None:
            t = time.perf_counter()
            result = pointwise.rerank(candidates, len(candidates), profile=titles, codes=field)
            pointwise_seconds += time.perf_counter() - t
            if not result.used_llm:
                raise DataError(f"pointwise ranking needs answer probabilities: {result.note}")
            p_yes_lists.append(result.p_yes)
            graph_scores.append(scores)
            candidate_ids.append([str(recommender.item_ids[i]) for i in items])
            test_hits.append(np.isin(items, user_items(ev.test, u)))  # read only to score the lists
            for m, order in (("pointwise", result.order), ("fused", fused_order(result.p_yes))):
                if m in methods:
                    ranked[m].append(items[order[:K]].tolist())
            if blend is not None:
                ranked["blend"].append(items[blend.order(blend_features(scores, result.p_yes), K)].tolist())
        if reranker is not None:
            t = time.perf_counter()
            result = reranker.rerank(candidates, K, profile=titles, query="", codes=field)
            llm_seconds += time.perf_counter() - t
            if not result.used_llm:
                fallbacks[result.note.split(" (")[0]] += 1
            answered_graph_order += result.used_llm and result.order == list(range(K))
            ranked["llm"].append(items[result.order].tolist())

    out: dict = {m: method_row(ranked[m], None if m == "graph" else ranked["graph"], truth, n_boot, seed)
                 for m in methods}
    if "llm" in methods:
        n_fallback = sum(fallbacks.values())
        out["llm"].update({"fallbacks": round(n_fallback / len(sample), 4), "fallback_count": n_fallback,
                           "fallback_reasons": dict(fallbacks),
                           "answered_graph_order": round(answered_graph_order / len(sample), 4),
                           "seconds_per_user": round(llm_seconds / len(sample), 3), **(llm_info or {})})
    if pointwise is not None:
        auc = {"p_yes_auc": pair_auc(p_yes_lists, test_hits), "graph_score_auc": pair_auc(graph_scores, test_hits)}
        info = {**{k: None if v is None else round(v, 4) for k, v in auc.items()},
                "mean_p_yes": round(float(np.mean([np.mean(p) for p in p_yes_lists])), 4),
                "seconds_per_user": round(pointwise_seconds / len(sample), 3), **(llm_info or {})}
        for m in POINTWISE:
            if m in methods:
                out[m].update(info)
    if learned is not None:
        out["learned"].update({"features": list(FEATURES), "coefficients": learned.coefficients(),
                               "fit": {"split": "valid", **learned.fit_info}})
    if blend is not None:
        out["blend"].update({"features": list(BLEND_FEATURES), "coefficients": blend.coefficients(),
                             "fit": {"split": "valid", **{k: round(v, 4) if isinstance(v, float) else v
                                                          for k, v in blend.fit_info.items()}}})
    out["verdict"] = {m: _verdict(m, out[m]["ndcg@5_diff_ci95"], out[m]["ndcg@5_diff"], out[m]["same_top5_as_graph"])
                      for m in methods if m != "graph"}
    out["meta"] = {"dataset": recommender.dataset, "users": int(len(sample)), "seed": seed, "k": K,
                   "candidates": CANDIDATES, "bootstrap": n_boot, "profile": profile,
                   "split": recommender.split.model_dump(), "titles_from": ev.catalog_source,
                   "test_users_available": int((np.diff(ev.test.indptr) > 0).sum()),
                   "candidate_source": "GraphRecommender.recommend, training and validation items left out",
                   "wall_seconds": round(time.perf_counter() - started, 1),
                   "user_ids": [str(recommender.user_ids[u]) for u in sample]}
    if pointwise is not None:
        # the raw lists, in user_ids' order and each in the graph's order, so another way of combining
        # P(yes) with the graph can be measured later without asking the LLM again; 6 places, since
        # 4 moved near-ties when such lists were re-scored (bench.blend_refit)
        out["meta"]["pointwise_lists"] = {
            "candidates": candidate_ids, "p_yes": [[round(float(p), 6) for p in ps] for ps in p_yes_lists],
            "graph_score": [[round(float(x), 6) for x in xs] for xs in graph_scores]}
    return out


def _lists(data: FitData, column: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-user lists of one feature column and the labels, for :func:`pair_auc`."""
    starts = np.flatnonzero(np.r_[True, data.users[1:] != data.users[:-1]])
    return np.split(data.X[:, column], starts[1:]), np.split(data.y.astype(bool), starts[1:])


def format_table(result: dict) -> str:
    """A readable table of a result (methods as rows)."""
    methods = [m for m in METHODS if m in result]
    lines = [f"{'method':<9} " + "  ".join(f"{name:<24}" for name in METRICS) + "  NDCG@5 diff vs graph (95% CI)"]
    for m in methods:
        row = result[m]
        cells = [f"{row[n]:.4f} [{row[n + '_ci95'][0]:.4f}, {row[n + '_ci95'][1]:.4f}]" for n in METRICS]
        diff = "" if m == "graph" else (f"{row['ndcg@5_diff']:+.4f} [{row['ndcg@5_diff_ci95'][0]:+.4f}, "
                                        f"{row['ndcg@5_diff_ci95'][1]:+.4f}]")
        lines.append(f"{m:<9} " + "  ".join(f"{c:<24}" for c in cells) + "  " + diff)
    meta = result.get("meta", {})
    lines.append(f"{meta.get('users')} test users (seed {meta.get('seed')}), top-{meta.get('k')} of the graph's "
                 f"top-{meta.get('candidates')}, {meta.get('wall_seconds')} s")
    if "llm" in result:
        llm = result["llm"]
        lines.append(f"llm: fallbacks {llm['fallbacks']:.1%} ({llm['fallback_count']}), answered the graph order "
                     f"{llm['answered_graph_order']:.1%}, same top-5 as graph {llm['same_top5_as_graph']:.1%}, "
                     f"{llm['seconds_per_user']:.2f} s per user")
    for m in POINTWISE:
        if m in result:
            row = result[m]
            lines.append(f"pointwise asks: a test item's P(yes) above another candidate's in {row['p_yes_auc']} of "
                         f"pairs (graph score: {row['graph_score_auc']}), mean P(yes) {row['mean_p_yes']}, "
                         f"{row['seconds_per_user']:.2f} s per user")
            break
    if "blend" in result:
        fit = result["blend"]["fit"]
        lines.append(f"blend weights {result['blend']['coefficients']} fitted on {fit['users']} validation lists "
                     f"({fit['lists_with_a_positive']} with a validation item; there P(yes)'s AUC {fit['p_yes_auc']}, "
                     f"the graph score's {fit['graph_score_auc']})")
    lines += list(result.get("verdict", {}).values())
    return "\n".join(lines)


# PROFILES (recsys.users) is re-exported: `chatrec eval-rerank --profile` takes its choices from here
__all__ = ["DEFAULT_METHODS", "EvalData", "METHODS", "PROFILES", "blend_fit_data", "evaluate_rerank", "format_table",
           "load_eval_data", "method_row", "profile_titles", "sample_fit_users", "topk_metrics"]
