"""Does the blend's weight on P(yes) settle when it is fitted on every user's validation list?

    CHATREC_HOME=<home> CHATREC_LLM_MODEL=<model.gguf> CHATREC_LLM_ADAPTER=none \
        python -m bench.blend_refit --run <home>/runs/rerank/<seed-0 run>.json --run <seed-1 run>.json

`chatrec eval-rerank --method blend` fits its two weights (graph score z, logit P(yes)) on the
validation lists of only 100 users, and two draws gave weights 27x apart (bench/RESULTS.md). This
asks the configured LLM P("yes") for the graph top-20 of up to ``--fit-users`` users' validation
lists (all users with a validation item by default; the test split is not read), refits the blend
on 100 users (the draw eval-rerank makes for the run's seed, so its recorded weights must come
back), on growing draws, and on all of them, and re-scores the saved runs' TEST lists with each
fit: those runs kept every user's candidates, P(yes) and graph scores, so the test lists are not
asked again. Scores are P@5 / R@5 / NDCG@5 and the paired bootstrap interval of the NDCG@5
difference from the graph order, exactly as eval-rerank computes them. With ``--all-test-users``
every user with a test item is scored too: an ask depends only on the person's history and the
candidate, so the validation-list asks cover most of each test list and only the rest is asked.
``--learned-features`` also fits, on all the fit users, a blend that has eval-rerank's learned
re-ranker's features (graph score and rank, popularity, genre overlap, year distance) besides
P(yes), and that re-ranker alone as its control; both are compared with the graph order and with
each other (paired 95% and 99% intervals). No extra asks: the features come from the graph and
the catalogue.

The asks (~20 per user, 6-7 s per user for a 1.5B model on 2 CPU cores) are kept in ``--cache``,
rewritten whole every few users, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from agent.config import Settings
from agent.evals.learned import (BLEND_FEATURES, FEATURES, FitData, LearnedReranker, blend_features,
                                 candidate_features, learned_fit_data)
from agent.evals.rerank import (blend_fit_data, load_eval_data, method_row, profile_titles, sample_fit_users,
                               topk_metrics)
from agent.evals.stats import paired_diff_ci
from agent.llm import make_chat_model
from agent.evals.runs import RUNS_DIR, model_name
from bench.common import emit
from recsys.io import write_json
from recsys.users import PROFILES, graph_candidates, user_items
from recsys.workflow import load_recommender
from tools.candidates import Candidate
from tools.rerank import PointwiseReranker

CACHE_VERSION = 1
SAVE_EVERY = 20  # users between cache rewrites
FIT_SIZES = (100, 200, 400)  # growing draws, besides the run's own and all users
WEIGHT_BOOT = 200  # resamples of the fit users for the interval of the P(yes) weight
LEARNED_BLEND_FEATURES = (*FEATURES, "p_yes_logit")  # --learned-features: the learned re-ranker's columns + P(yes)


def raw_weights(model: LearnedReranker) -> dict[str, float]:
    """The fitted weights per unit of each feature (the fit standardises its columns first), and
    their ratio: how many graph-score standard deviations one unit of P(yes)'s log-odds is worth."""
    w = model.coef_ / model.scale_
    return {"score_z": round(float(w[0]), 4), "p_yes_logit": round(float(w[1]), 4),
            "p_yes_per_score_z": round(float(w[1] / w[0]), 4) if w[0] else None}


def load_cache(path: Path, model: str, profile: str) -> dict[str, dict]:
    """The asks kept in ``path`` per dataset user id (validation lists: items, features, labels;
    the test-list file: item -> P(yes)); refused when another model or profile asked them."""
    if not path.exists():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        found = (payload["version"], payload["model"], payload["profile"])
        lists = payload["lists"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"error: the cache {path} is unreadable ({exc}); delete it to ask again")
    if found != (CACHE_VERSION, model, profile):
        raise SystemExit(f"error: the cache {path} holds asks of {found[1]!r} (profile {found[2]!r}, format "
                         f"{found[0]}), not {model!r} ({profile!r}); pass another --cache")
    return lists


def write_cache(path: Path, lists: dict[str, dict], model: str, profile: str) -> None:
    write_json(path, {"version": CACHE_VERSION, "model": model, "profile": profile, "lists": lists})


def fill_cache(path: Path, lists: dict[str, dict], ev, pointwise: PointwiseReranker, users: np.ndarray,
               model: str, profile: str) -> None:
    """P(yes) on each user's validation list, asked only where the cache lacks it."""
    rec = ev.recommender
    todo = [int(u) for u in users if str(rec.user_ids[u]) not in lists]
    print(f"{len(users) - len(todo)} of {len(users)} fit users cached in {path}; asking {len(todo)}")
    bar = tqdm(total=len(todo), desc="validation lists", unit="user")
    for start in range(0, len(todo), SAVE_EVERY):
        chunk = todo[start:start + SAVE_EVERY]
        data = blend_fit_data(ev, pointwise, ev.valid, chunk, profile)
        for u in chunk:
            rows = data.users == u
            lists[str(rec.user_ids[u])] = {"items": [str(rec.item_ids[i]) for i in data.items[rows]],
                                            "x": np.round(data.X[rows], 6).tolist(),
                                            "y": data.y[rows].astype(int).tolist()}
        write_cache(path, lists, model, profile)
        bar.update(len(chunk))
    bar.close()


def fit_blend(lists: dict[str, dict], user_ids: list[str]) -> LearnedReranker:
    """eval-rerank's blend model, fitted on these users' cached validation lists."""
    rows = [lists[u] for u in user_ids]
    data = FitData(X=np.vstack([r["x"] for r in rows]), y=np.concatenate([r["y"] for r in rows]).astype(np.float64),
                   users=np.concatenate([np.full(len(r["y"]), n) for n, r in enumerate(rows)]),
                   items=np.zeros(sum(len(r["y"]) for r in rows), dtype=np.int64))
    return LearnedReranker(names=BLEND_FEATURES).fit(data)


def with_p_yes(learned_x: np.ndarray, blend_x) -> np.ndarray:
    """The learned re-ranker's columns of a list with the log-odds of P(yes) (from its blend rows,
    columns :data:`BLEND_FEATURES`) added: the columns :data:`LEARNED_BLEND_FEATURES`."""
    return np.column_stack([learned_x, np.asarray(blend_x)[:, BLEND_FEATURES.index("p_yes_logit")]])


def with_learned(ev, user: int, items: np.ndarray, scores, blend_x: np.ndarray) -> np.ndarray:
    """A list's rows for the blend that also has the learned re-ranker's features: those
    (eval-rerank's ``learned``, from the person's training items) and the log-odds of P(yes)."""
    return with_p_yes(candidate_features(ev, items, np.asarray(scores, dtype=np.float64),
                                         user_items(ev.train, user)), blend_x)


def fit_blend_with_learned(learned_data: FitData, lists: dict[str, dict], user_ids: list[str],
                           recommender) -> LearnedReranker:
    """The blend with the learned re-ranker's features: ``learned_fit_data``'s rows of these users
    (the same validation lists, which must be the cached ones) with the cached P(yes) log-odds added."""
    index = {str(u): n for n, u in enumerate(recommender.user_ids)}
    X, y, users = [], [], []
    for uid in user_ids:
        row = lists[uid]
        mine = learned_data.users == index[uid]
        if [str(recommender.item_ids[i]) for i in learned_data.items[mine]] != row["items"]:
            raise SystemExit(f"error: user {uid}'s validation list differs from the cached one: another graph "
                             "model; pass another --cache")
        X.append(with_p_yes(learned_data.X[mine], row["x"]))
        y.append(learned_data.y[mine])
        users.append(learned_data.users[mine])
    return LearnedReranker(names=LEARNED_BLEND_FEATURES).fit(
        FitData(np.vstack(X), np.concatenate(y), np.concatenate(users), np.zeros(sum(map(len, y)), dtype=np.int64)))


def weight_interval(lists: dict[str, dict], user_ids: list[str], seed: int = 0) -> list[float]:
    """95% interval of p_yes_per_score_z, refitting on fit users resampled with replacement."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(WEIGHT_BOOT):
        drawn = rng.choice(len(user_ids), len(user_ids), replace=True)
        rows = {str(n): lists[user_ids[i]] for n, i in enumerate(drawn)}
        ratios.append(raw_weights(fit_blend(rows, list(rows)))["p_yes_per_score_z"])
    low, high = np.quantile(ratios, [0.025, 0.975])
    return [round(float(low), 4), round(float(high), 4)]


class EvalLists:
    """Test users' candidate lists (graph top-20 without training and validation items, graph
    order), their P(yes) and graph scores, and their test items: what a blend is scored on."""

    def __init__(self, name: str, ev, users: list[int], candidates: list[np.ndarray], scores: list, p_yes: list,
                 seed: int):
        self.name, self.seed, self.candidates = name, seed, candidates
        self.ev, self.users, self.scores = ev, users, scores
        self.features = [blend_features(s, p) for s, p in zip(scores, p_yes)]
        self.truth = [set(user_items(ev.test, u).tolist()) for u in users]
        self.graph = topk_metrics([c[:5].tolist() for c in candidates], self.truth)

    @classmethod
    def from_run(cls, path: Path, ev) -> EvalLists:
        """A saved eval-rerank run's lists, checked against the graph model here."""
        payload = json.loads(path.read_text(encoding="utf-8"))
        meta, result = payload["meta"], payload["result"]
        lists = result["meta"].get("pointwise_lists")
        if lists is None:
            raise SystemExit(f"error: {path} has no pointwise_lists (run eval-rerank with --method pointwise)")
        rec = ev.recommender
        user_index = {str(u): n for n, u in enumerate(rec.user_ids)}
        item_index = {str(i): n for n, i in enumerate(rec.item_ids)}
        seed = int(result["meta"]["seed"])
        run = cls(f"seed {seed}", ev, [user_index[u] for u in result["meta"]["user_ids"]],
                  [np.array([item_index[i] for i in c]) for c in lists["candidates"]], lists["graph_score"],
                  lists["p_yes"], seed)
        run.path, run.meta, run.result = path, meta, result
        if round(float(run.graph["ndcg@5"].mean()), 4) != result["graph"]["ndcg@5"]:
            raise SystemExit(f"error: {path}'s graph order scores {run.graph['ndcg@5'].mean():.4f} here, "
                             f"{result['graph']['ndcg@5']} when it ran: another graph model or split")
        return run

    def features_for(self, model: LearnedReranker) -> list[np.ndarray]:
        """Each list's rows in the columns ``model`` was fitted on."""
        names = tuple(model.names)
        if names == BLEND_FEATURES:
            return self.features
        rows = [with_learned(self.ev, u, c, s, x)
                for u, c, s, x in zip(self.users, self.candidates, self.scores, self.features)]
        if names == LEARNED_BLEND_FEATURES:
            return rows
        if names == FEATURES:  # the learned re-ranker alone
            return [r[:, :-1] for r in rows]
        raise ValueError(f"no rows for the columns {names}")

    def ranked(self, model: LearnedReranker) -> list[list[int]]:
        return [c[model.order(x, 5)].tolist() for c, x in zip(self.candidates, self.features_for(model))]

    def score(self, blend: LearnedReranker) -> dict:
        """The blend's line, computed as eval-rerank computes its own (``method_row``)."""
        row = method_row(self.ranked(blend), [c[:5].tolist() for c in self.candidates], self.truth, 2000, self.seed)
        return {"users": len(self.candidates), "graph_ndcg@5": round(float(self.graph["ndcg@5"].mean()), 4), **row}

    def versus(self, model: LearnedReranker, baseline: LearnedReranker | None = None) -> dict:
        """Mean NDCG@5 difference of ``model`` from ``baseline`` (another re-ranker; None: the graph
        order) on the same users, with paired bootstrap 95% and 99% intervals."""
        ndcg = topk_metrics(self.ranked(model), self.truth)["ndcg@5"]
        base = self.graph["ndcg@5"] if baseline is None else topk_metrics(self.ranked(baseline), self.truth)["ndcg@5"]
        return {"ndcg@5_diff": round(float((ndcg - base).mean()), 4),
                **{f"ci{level}": [round(x, 4) for x in paired_diff_ci(ndcg, base, 2000, self.seed, level / 100)]
                   for level in (95, 99)}}


def known_p_yes(lists: dict[str, dict], runs: list[EvalLists]) -> dict[str, dict[str, float]]:
    """P(yes) already asked, per user and item. An ask depends on the person's history and the
    candidate only, not on the rest of the list, so a validation-list ask serves a test list too."""
    known: dict[str, dict[str, float]] = {}
    for run in runs:  # rounded to 4 places when saved; the cache's 6 places win below
        for u, cands, ps in zip(run.result["meta"]["user_ids"], run.result["meta"]["pointwise_lists"]["candidates"],
                                run.result["meta"]["pointwise_lists"]["p_yes"]):
            known.setdefault(u, {}).update(zip(cands, ps))
    for u, row in lists.items():
        known.setdefault(u, {}).update((i, float(1 / (1 + np.exp(-x[1])))) for i, x in zip(row["items"], row["x"]))
    return known


def all_test_lists(ev, pointwise: PointwiseReranker, known: dict[str, dict[str, float]], path: Path, model: str,
                   profile: str, users: np.ndarray | None = None) -> EvalLists:
    """The lists of ``users`` (default: every user with a test item), asking only the candidates
    no earlier ask covered (kept in ``path``)."""
    rec = ev.recommender
    asked = load_cache(path, model, profile)
    if users is None:
        users = np.flatnonzero(np.diff(ev.test.indptr) > 0)
    candidates, scores, p_yes = [], [], []
    for n, u in enumerate(tqdm(users, desc="test lists", unit="user"), start=1):
        items, s = graph_candidates(rec, int(u), user_items(ev.valid, u))
        uid, ids = str(rec.user_ids[u]), [str(rec.item_ids[i]) for i in items]
        have = {**known.get(uid, {}), **asked.get(uid, {})}
        if missing := [j for j, i in enumerate(ids) if i not in have]:
            titles = profile_titles(ev, int(u), profile)
            for j in missing:
                candidate = Candidate(ev.items[items[j]], float(s[j]), "graph")
                asked.setdefault(uid, {})[ids[j]] = have[ids[j]] = pointwise.p_yes(candidate, profile=titles)
        if n % SAVE_EVERY == 0:
            write_cache(path, asked, model, profile)
        candidates.append(items)
        scores.append(s)
        p_yes.append([have[i] for i in ids])
    write_cache(path, asked, model, profile)
    return EvalLists(f"{len(users)} test users", ev, users.tolist(), candidates, scores, p_yes, 0)


def print_runs(entry: dict) -> None:
    for label, s in entry["runs"].items():
        print(f"  {label}: P@5 {s['precision@5']:.3f} R@5 {s['recall@5']:.4f} NDCG@5 {s['ndcg@5']:.4f}, "
              f"vs graph {s['ndcg@5_diff']:+.4f} {s['ndcg@5_diff_ci95']}, same top-5 {s['same_top5_as_graph']:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, action="append", default=[],
                        help="a saved eval-rerank run with --method pointwise (repeatable): its fit is "
                        "reproduced and its test lists re-scored; none: give --all-test-users")
    parser.add_argument("--profile", choices=PROFILES, default="rated",
                        help="the history titles the asks show, when no --run says it")
    parser.add_argument("--fit-users", type=int, default=943, help="users whose validation lists are asked "
                        "(all with a validation item when this is at least their number)")
    parser.add_argument("--cache", type=Path, help="where the asks are kept (default: <home>/runs/blend-fit/"
                        "<model>-<profile>.json)")
    parser.add_argument("--all-test-users", action="store_true", help="also score every user with a test item "
                        "(P(yes) reused from the asks above where the candidate was already asked; the rest asked "
                        "and kept beside the cache, <cache>.test.json)")
    parser.add_argument("--learned-features", action="store_true", help="also fit, on all the fit users, the "
                        "blend with the learned re-ranker's features (popularity, genre overlap, year distance, "
                        "graph rank) besides P(yes), and that re-ranker alone (no LLM) as its control")
    args = parser.parse_args()
    if not args.run and not args.all_test_users:
        parser.error("nothing to score: give a --run, --all-test-users or both")
    logging.basicConfig(level=logging.WARNING)

    settings = Settings()
    ev = load_eval_data(load_recommender("ml-100k", None, settings.home), settings.home)
    model = model_name(settings)
    runs = [EvalLists.from_run(p, ev) for p in args.run]
    profile = runs[0].result["meta"]["profile"] if runs else args.profile
    for run in runs:
        if (run.meta["model"], run.result["meta"]["profile"], run.meta.get("codes")) != (model, profile, False):
            raise SystemExit(f"error: {run.path} asked {run.meta['model']!r} (profile "
                             f"{run.result['meta']['profile']!r}, codes {run.meta.get('codes')}); this asks "
                             f"{model!r} (profile {profile!r}, no codes): set CHATREC_LLM_MODEL / _ADAPTER to match")
    safe_model = re.sub(r"[^A-Za-z0-9.]+", "-", model)
    cache = args.cache or settings.home / RUNS_DIR / "blend-fit" / f"{safe_model}-{profile}.json"
    lists = load_cache(cache, model, profile)
    rec = ev.recommender
    all_users = sample_fit_users(ev.valid, args.fit_users, 0)

    def dataset_ids(users: np.ndarray) -> list[str]:
        return [str(rec.user_ids[u]) for u in users]

    fits: dict[str, list[str]] = {}
    for run in runs:
        n = int(run.meta.get("fit_users") or 100)
        if n <= args.fit_users:
            fits[f"as in the seed-{run.seed} run ({n} users)"] = dataset_ids(sample_fit_users(ev.valid, n, run.seed))
    for n in FIT_SIZES:
        if n < len(all_users):
            fits[f"{n} users (seed-0 draw)"] = dataset_ids(sample_fit_users(ev.valid, n, 0))
    everyone = dataset_ids(all_users)
    fits[f"all {len(everyone)} users"] = everyone
    index = {str(u): n for n, u in enumerate(rec.user_ids)}
    needed = np.array(sorted({index[u] for users in fits.values() for u in users}))
    pointwise = PointwiseReranker(make_chat_model(settings))
    fill_cache(cache, lists, ev, pointwise, needed, model, profile)
    scored = list(runs)
    if args.all_test_users:
        scored.append(all_test_lists(ev, pointwise, known_p_yes(lists, runs), cache.with_suffix(".test.json"),
                                     model, profile))

    figures: dict = {"model": model, "profile": profile, "fit_users": len(everyone), "cache": str(cache), "fits": {}}
    for name, users in fits.items():
        blend = fit_blend(lists, users)
        entry = {"coefficients": blend.coefficients(), "raw_weights": raw_weights(blend),
                 "lists_with_a_positive": blend.fit_info["lists_with_a_positive"],
                 "runs": {run.name: run.score(blend) for run in scored}}
        if users is everyone:
            entry["p_yes_per_score_z_ci95"] = weight_interval(lists, users)
        figures["fits"][name] = entry
        print(f"\nfit on {name}: weights {entry['coefficients']} (per unit: {entry['raw_weights']}), "
              f"{entry['lists_with_a_positive']} lists with a validation item")
        print_runs(entry)
    if args.learned_features:
        learned_data = learned_fit_data(ev, ev.train, ev.valid)  # eval-rerank's `learned`, fitted as it fits it
        learned = LearnedReranker().fit(learned_data)
        for name, reranker in ((f"learned re-ranker alone, all {learned.fit_info['users']} validation lists",
                                learned), (f"all {len(everyone)} users, with the learned re-ranker's features",
                                           fit_blend_with_learned(learned_data, lists, everyone, rec))):
            entry = {"coefficients": reranker.coefficients(), "lists_with_a_positive": reranker.fit_info.get(
                "lists_with_a_positive"), "runs": {run.name: run.score(reranker) for run in scored},
                     "vs graph order": {run.name: run.versus(reranker) for run in scored}}
            if reranker is not learned:
                entry["vs learned re-ranker alone"] = {run.name: run.versus(reranker, learned) for run in scored}
            figures["fits"][name] = entry
            print(f"\nfit {name}: weights {entry['coefficients']}")
            print_runs(entry)
            for versus in ("vs graph order", "vs learned re-ranker alone"):
                for label, d in entry.get(versus, {}).items():
                    print(f"  {versus}, {label}: NDCG@5 {d['ndcg@5_diff']:+.4f}, 95% {d['ci95']}, 99% {d['ci99']}")
    for run in scored:
        print(f"graph order, {run.name}: NDCG@5 {run.graph['ndcg@5'].mean():.4f}")
    emit(figures)


if __name__ == "__main__":
    main()
