"""Cold-start bridge on ml-100k: can a text -> graph map rank items nobody has rated yet?

    python -m bench.cold_start_bridge [--dev-seed 0] [--seeds 1 2 3] [--threads 1]

Protocol, for each hold-out seed:
  1. 10% of ml-100k's items (a seeded random choice) become "cold": ALL their
     interactions are removed before anything is trained.
  2. The remaining interactions are split 8:1:1 per user (recsys.split, the usual seed
     2020) and LightGCN is trained on them with the TrainConfig defaults (early stopping
     on the warm validation part).
  3. The bridge (recsys.bridge.TextGraphBridge) is fitted on the warm items that have
     training interactions: text vector -> final LightGCN item vector. Its own settings
     (ridge alpha, MLP epochs) are chosen on a held-out share of those warm items.
  4. Evaluation uses the cold items' interactions only. Every user with at least one
     interaction with a cold item ranks ONLY the cold items (the candidate set is the
     held-out items, no warm item competes); the ground truth is all of that user's
     interactions with them (every rating counts: they were all removed from training).
     Recall and NDCG at 10 and 20, RecBole's definitions (recsys.metrics).

Methods:
  bridge         GraphRecommender.with_items(cold ids, bridge.predict(cold texts)), then
                 recommend(user, allowed=the cold items): user final embedding . bridged vector.
                 Variants: ridge -> final vectors (the default), MLP -> final vectors,
                 ridge -> layer-0 vectors (an isolated node's final vector is layer 0 / (K+1)).
  bridge+text    z-scored bridge score + lambda * z-scored text score, per user.
  text           cosine of the mean of the user's training items' text vectors with the
                 cold item's text vector.
  genre-pop      most popular by genre: score(u, i) = sum over i's genres g of p_u(g) * pop(g);
                 p_u(g) is the share of u's training interactions whose item has genre g;
                 pop(g) is one of: the mean number of training interactions of a warm item
                 of genre g ("per-item"), g's share of all training interactions ("share"),
                 or 1 (taste only, "none").
  random         uniform scores, averaged over 5 seeds.
  (diagnostic)   the ridge bridge's vectors scored against the mean user vector: how much
                 of the bridge is text-predicted popularity rather than personalisation.

Choices are never made on the test interactions: the bridge variant, lambda and the
genre-pop variant are picked by NDCG@20 on a separate development hold-out seed
(--dev-seed), then all methods are reported on the test seeds (--seeds), mean and spread.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from bench.common import emit, machine
from recsys import datasets
from recsys.bridge import BridgeConfig, TextGraphBridge
from recsys.data import InteractionData
from recsys.io import atomic_write_text, write_json
from recsys.metrics import mean_metrics, metrics_from_hits
from recsys.recommender import GraphRecommender
from recsys.split import SplitConfig, compact, make_split
from recsys.train import TrainConfig, train_lightgcn
from tools.embeddings import embed

HERE = Path(__file__).resolve().parent
KS = (10, 20)
LAMBDAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
BRIDGE_VARIANTS = ("ridge", "mlp", "ridge-layer0")
GENRE_VARIANTS = ("per-item", "share", "none")
N_RANDOM = 5


# --- texts -----------------------------------------------------------------------------------
def item_texts(data: InteractionData) -> tuple[list[str], str]:
    """One text per item, as the item store builds it (tools.catalog.item_document) when that
    is importable, else "Title (year). Genres: a, b." — and which of the two was used."""
    meta = data.items_meta
    years = [None if pd.isna(y) else int(y) for y in meta["year"]]
    try:
        from tools.catalog import CatalogItem, display_title, item_document
    except ImportError:
        texts = []
        for title, year, genres in zip(meta["title"], years, meta["genres"]):
            head = f"{title} ({year})" if year else str(title)
            texts.append(f"{head}. Genres: {', '.join(genres)}." if genres else f"{head}.")
        return texts, "title (year) + genres (bench fallback)"
    texts = [item_document(CatalogItem(item_id=f"{data.name}:{iid}", domain="movie", title=display_title(title),
                                       year=year, genres=tuple(genres)))
             for iid, title, year, genres in zip(meta["item_id"], meta["title"], years, meta["genres"])]
    return texts, "tools.catalog.item_document (ml-100k fields only: title, year, domain, genres)"


# --- evaluation ------------------------------------------------------------------------------
def metrics_from_top(top: np.ndarray, truth: sp.csr_matrix) -> dict[str, float]:
    """``top[r]``: cold-item columns ranked for evaluated user r (best first); ``truth`` the same rows."""
    dense = truth.toarray().astype(bool)
    hits = np.take_along_axis(dense, top, axis=1)
    values = metrics_from_hits(hits, dense.sum(axis=1), KS)
    return {k: v for k, v in mean_metrics(values).items() if k.split("@")[0] in ("recall", "ndcg")}


def metrics_from_scores(scores: np.ndarray, truth: sp.csr_matrix) -> dict[str, float]:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :max(KS)]
    return metrics_from_top(top, truth)


def zscore(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean(axis=1, keepdims=True)) / (scores.std(axis=1, keepdims=True) + 1e-12)


def genre_matrix(data: InteractionData) -> np.ndarray:
    genres = sorted({g for gs in data.items_meta["genres"] for g in gs})
    column = {g: k for k, g in enumerate(genres)}
    m = np.zeros((data.n_items, len(genres)), dtype=np.float64)
    for i, gs in enumerate(data.items_meta["genres"]):
        for g in gs:
            m[i, column[g]] = 1.0
    return m


def genre_pop_scores(train: sp.csr_matrix, warm_genres: np.ndarray, cold_genres: np.ndarray,
                     variant: str) -> np.ndarray:
    counts = np.asarray((train @ warm_genres))  # users x genres: interactions per genre
    preference = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    if variant == "per-item":
        degree = np.asarray(train.sum(axis=0)).ravel()
        popularity = (degree @ warm_genres) / np.maximum(warm_genres.sum(axis=0), 1.0)
    elif variant == "share":
        popularity = counts.sum(axis=0) / counts.sum()
    else:
        popularity = np.ones(warm_genres.shape[1])
    return (preference * popularity) @ cold_genres.T


# --- one hold-out seed -----------------------------------------------------------------------
def run_seed(data: InteractionData, text: np.ndarray, genres: np.ndarray, seed: int, holdout: float,
             config: TrainConfig) -> dict:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(data.n_items, size=int(round(holdout * data.n_items)), replace=False))
    is_cold = np.isin(data.items, cold)
    warm = compact(data.subset(~is_cold))
    split = make_split(warm, SplitConfig())
    result = train_lightgcn(split, config, progress=False)
    train = split.train_matrix()
    rec = GraphRecommender.from_model(result.model, train, split.train.user_ids, split.train.item_ids,
                                      data.name, config)

    row_of = data.item_index()
    warm_rows = np.array([row_of[i] for i in warm.item_ids])
    fit = np.asarray(train.sum(axis=0)).ravel() > 0  # warm items with training interactions
    x_warm, x_cold = text[warm_rows], text[cold]
    cold_ids = [str(i) for i in data.item_ids[cold]]

    # ground truth: every interaction with a cold item, for users the model knows
    user_of = {uid: u for u, uid in enumerate(rec.user_ids)}
    cold_col = {c: j for j, c in enumerate(cold)}
    known = np.array([data.user_ids[u] in user_of for u in data.users[is_cold]])
    rows = np.array([user_of[data.user_ids[u]] for u in data.users[is_cold][known]], dtype=np.int64)
    cols = np.array([cold_col[i] for i in data.items[is_cold][known]], dtype=np.int64)
    truth_all = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(rec.n_users, len(cold)))
    truth_all.sum_duplicates()
    truth_all.data[:] = 1.0
    users = np.flatnonzero(np.diff(truth_all.indptr))
    truth = truth_all[users]

    methods: dict[str, dict] = {}
    bridges: dict[str, TextGraphBridge] = {}
    bridge_scores: dict[str, np.ndarray] = {}
    # the default bridge, end to end through the recommender surface
    bridges["ridge"] = TextGraphBridge(BridgeConfig(kind="ridge")).fit(x_warm[fit], rec.item_factors_[fit])
    with_cold = rec.with_items(cold_ids, bridges["ridge"].predict(x_cold))
    assert not with_cold.train_[:, with_cold.bridged_].nnz  # cold items are never "seen"
    column = {iid: j for j, iid in enumerate(cold_ids)}
    top = np.array([[column[i] for i, _ in with_cold.recommend(with_cold.user_ids[u], k=max(KS),
                                                                allowed=with_cold.bridged_)]
                    for u in users])
    methods["bridge:ridge"] = metrics_from_top(top, truth)
    bridge_scores["ridge"] = with_cold.user_factors_[users] @ with_cold.item_factors_[with_cold.bridged_].T
    # diagnostic: the same bridged vectors scored against the mean user vector, i.e. what the
    # bridge gets from text-predicted popularity alone, without personalisation
    mean_user = with_cold.user_factors_.mean(axis=0)
    methods["bridge:ridge:mean-user"] = metrics_from_scores(
        np.tile(mean_user @ with_cold.item_factors_[with_cold.bridged_].T, (len(users), 1)), truth)
    # the other variants, by matrix products on the same user vectors
    bridges["mlp"] = TextGraphBridge(BridgeConfig(kind="mlp")).fit(x_warm[fit], rec.item_factors_[fit])
    layer0_items = rec.layer0_[rec.n_users:]
    bridges["ridge-layer0"] = TextGraphBridge(BridgeConfig(kind="ridge")).fit(x_warm[fit], layer0_items[fit])
    n_layers = config.n_layers
    for name in ("mlp", "ridge-layer0"):
        vectors = bridges[name].predict(x_cold)
        if name == "ridge-layer0":
            vectors = vectors / (n_layers + 1)  # an isolated node's final embedding
        bridge_scores[name] = rec.user_factors_[users] @ vectors.T
        methods[f"bridge:{name}"] = metrics_from_scores(bridge_scores[name], truth)

    history = train[users]
    profile = np.asarray(history @ x_warm) / np.maximum(np.asarray(history.sum(axis=1)), 1.0)
    text_scores = profile @ x_cold.T
    methods["text"] = metrics_from_scores(text_scores, truth)
    for variant in BRIDGE_VARIANTS:
        for lam in LAMBDAS:
            methods[f"bridge+text:{variant}:{lam:g}"] = metrics_from_scores(
                zscore(bridge_scores[variant]) + lam * zscore(text_scores), truth)
    for variant in GENRE_VARIANTS:
        methods[f"genre-pop:{variant}"] = metrics_from_scores(
            genre_pop_scores(history, genres[warm_rows], genres[cold], variant), truth)
    randoms = [metrics_from_scores(np.random.default_rng(1000 * seed + r).random(truth.shape), truth)
               for r in range(N_RANDOM)]
    methods["random"] = {k: float(np.mean([m[k] for m in randoms])) for k in randoms[0]}

    return {
        "seed": seed, "cold_items": len(cold), "warm_items": int(warm.n_items),
        "bridge_fit_items": int(fit.sum()),
        "users_evaluated": int(len(users)), "cold_interactions": int(is_cold.sum()),
        "cold_interactions_of_unknown_users": int((~known).sum()),
        "warm_train_interactions": int(split.train.n_interactions),
        "lightgcn": {"best_epoch": result.best_epoch, "epochs": result.epochs_run,
                     "valid_ndcg@20": result.best_valid.get("ndcg@20"), "train_s": round(result.train_seconds, 1)},
        "bridges": {name: {"alpha": b.alpha_, "epochs": b.epochs_, "valid_mse": b.valid_mse_,
                           "validation": b.validation_} for name, b in bridges.items()},
        "methods": methods,
        "seconds": round(time.perf_counter() - started, 1),
    }


# --- selection on the development seed, summary on the test seeds ----------------------------
def choose(dev: dict) -> dict[str, str]:
    m = dev["methods"]
    best = lambda names: max(names, key=lambda n: (m[n]["ndcg@20"], n))  # noqa: E731
    bridge = best([f"bridge:{v}" for v in BRIDGE_VARIANTS])
    variant = bridge.split(":", 1)[1]
    return {"bridge": bridge,
            "bridge+text": best([f"bridge+text:{variant}:{lam:g}" for lam in LAMBDAS]),
            "text": "text",
            "genre-pop": best([f"genre-pop:{v}" for v in GENRE_VARIANTS]),
            "random": "random"}


def summarise(runs: list[dict], name: str) -> dict[str, dict[str, float]]:
    out = {}
    for metric in runs[0]["methods"][name]:
        values = np.array([r["methods"][name][metric] for r in runs])
        out[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                       "min": float(values.min()), "max": float(values.max())}
    return out


def markdown(rows: dict[str, str], runs: list[dict], dev: dict, info: dict) -> str:
    seeds = ", ".join(str(r["seed"]) for r in runs)
    lines = [f"# Cold-start bridge, ml-100k ({len(runs)} test hold-out seeds: {seeds}; dev seed {dev['seed']})", "",
             f"Candidate set: ONLY the held-out (cold) items, {runs[0]['cold_items']} per seed "
             f"({info['holdout']:.0%} of {info['n_items']:,}); ground truth: all their interactions. "
             f"Users evaluated per seed: {', '.join(str(r['users_evaluated']) for r in runs)}; "
             f"cold interactions: {', '.join(str(r['cold_interactions']) for r in runs)}.", "",
             f"Item text: {info['text_builder']}.", "",
             "mean ± sample std over the test seeds (min–max in the JSON).", "",
             "| method | Recall@10 | NDCG@10 | Recall@20 | NDCG@20 | dev-seed NDCG@20 |",
             "|---|---|---|---|---|---|"]
    for label, name in rows.items():
        s = summarise(runs, name)
        cell = lambda k: f"{s[k]['mean']:.4f} ± {s[k]['std']:.4f}"  # noqa: E731
        lines.append(f"| {label} | {cell('recall@10')} | {cell('ndcg@10')} | {cell('recall@20')} | "
                     f"{cell('ndcg@20')} | {dev['methods'][name]['ndcg@20']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="test hold-out seeds")
    parser.add_argument("--dev-seed", type=int, default=0,
                        help="hold-out seed whose results choose the bridge variant, lambda and genre-pop variant")
    parser.add_argument("--holdout", type=float, default=0.1, help="share of items held out as cold")
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs, help="LightGCN epoch budget")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "cold_start_bridge.json", help="full results")
    parser.add_argument("--readme", type=Path, default=Path("/tmp/bridge_readme.md"),
                        help="markdown table + the JSON line")
    args = parser.parse_args()
    if args.dev_seed in args.seeds:
        parser.error("the development seed must not be one of the test seeds")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    data = datasets.load("ml-100k")
    texts, text_builder = item_texts(data)
    t = time.perf_counter()
    text = embed(texts)
    embed_s = time.perf_counter() - t
    print(f"embedded {len(texts)} item texts in {embed_s:.1f} s; e.g. {texts[0]!r}")
    genres = genre_matrix(data)
    config = TrainConfig(epochs=args.epochs)

    dev = run_seed(data, text, genres, args.dev_seed, args.holdout, config)
    chosen = choose(dev)
    print(f"dev seed {args.dev_seed}: chose {chosen} "
          "(NDCG@20 " + ", ".join(f"{n} {dev['methods'][n]['ndcg@20']:.4f}" for n in chosen.values()) + ")")
    runs = []
    for seed in args.seeds:
        run = run_seed(data, text, genres, seed, args.holdout, config)
        runs.append(run)
        m = run["methods"]
        print(f"seed {seed}: {run['cold_items']} cold items, {run['users_evaluated']} users, "
              f"{run['cold_interactions']} interactions; NDCG@20 "
              + ", ".join(f"{k} {m[n]['ndcg@20']:.4f}" for k, n in chosen.items()) + f" ({run['seconds']} s)")

    rows = {f"bridge ({chosen['bridge'].split(':', 1)[1]}, chosen on dev)": chosen["bridge"]}
    rows |= {f"bridge: {v}": f"bridge:{v}" for v in BRIDGE_VARIANTS if f"bridge:{v}" != chosen["bridge"]}
    rows["bridge (ridge) scored for the mean user: no personalisation"] = "bridge:ridge:mean-user"
    rows[f"bridge + text (λ={chosen['bridge+text'].rsplit(':', 1)[1]}, chosen on dev)"] = chosen["bridge+text"]
    rows["text similarity to history"] = "text"
    rows[f"genre-pop ({chosen['genre-pop'].split(':', 1)[1]}, chosen on dev)"] = chosen["genre-pop"]
    rows[f"random (mean of {N_RANDOM})"] = "random"
    table = {label: summarise(runs, name) for label, name in rows.items()}

    bridge_ndcg = np.array([r["methods"][chosen["bridge"]]["ndcg@20"] for r in runs])
    text_ndcg = np.array([r["methods"]["text"]["ndcg@20"] for r in runs])
    relative = bridge_ndcg / text_ndcg - 1.0
    wall = time.perf_counter() - started
    info = {"holdout": args.holdout, "text_builder": text_builder, "n_items": data.n_items}
    figures = {
        "dataset": "ml-100k", "threads": args.threads, "holdout": args.holdout, "dev_seed": args.dev_seed,
        "seeds": args.seeds, "text": text_builder, "candidates": "cold items only",
        "cold_items": [r["cold_items"] for r in runs], "users_evaluated": [r["users_evaluated"] for r in runs],
        "cold_interactions": [r["cold_interactions"] for r in runs],
        "chosen": chosen, "ridge_alpha": [r["bridges"]["ridge"]["alpha"] for r in runs],
        "mlp_epochs": [r["bridges"]["mlp"]["epochs"] for r in runs],
        "bridge_ndcg@20": round(float(bridge_ndcg.mean()), 4),
        **{f"bridge_{v.replace('-', '_')}_ndcg@20": round(summarise(runs, f"bridge:{v}")["ndcg@20"]["mean"], 4)
           for v in BRIDGE_VARIANTS},
        "bridge+text_ndcg@20": round(summarise(runs, chosen["bridge+text"])["ndcg@20"]["mean"], 4),
        "text_ndcg@20": round(float(text_ndcg.mean()), 4),
        "genre_pop_ndcg@20": round(summarise(runs, chosen["genre-pop"])["ndcg@20"]["mean"], 4),
        "random_ndcg@20": round(summarise(runs, "random")["ndcg@20"]["mean"], 4),
        "bridge_recall@20": round(float(np.mean([r["methods"][chosen["bridge"]]["recall@20"] for r in runs])), 4),
        "text_recall@20": round(float(np.mean([r["methods"]["text"]["recall@20"] for r in runs])), 4),
        "bridge_vs_text_rel_ndcg@20": [round(float(v), 4) for v in relative],
        "bridge_vs_text_rel_ndcg@20_mean": round(float(relative.mean()), 4),
        "target_rel_ndcg@20": 0.2, "target_met": bool(relative.min() >= 0.2),
        "embed_s": round(embed_s, 1), "wall_s": round(wall, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"figures": figures, "chosen": chosen, "dev": dev, "runs": runs,
                          "table": table})
    text_md = markdown(rows, runs, dev, info)
    figures = {"date": dt.date.today().isoformat(), "machine": machine(), **figures}  # as emit() prints it
    text_md += (f"\nBridge vs text similarity, relative NDCG@20 per seed: "
                f"{', '.join(f'{v:+.1%}' for v in relative)} (mean {relative.mean():+.1%}; target +20%).\n"
                f"\n```json\n{json.dumps(figures)}\n```\n")
    atomic_write_text(args.readme, text_md)
    print(text_md)
    emit({k: v for k, v in figures.items() if k not in ("date", "machine")})



if __name__ == "__main__":
    main()
