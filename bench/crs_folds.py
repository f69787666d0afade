"""Which graph the ReDial systems should use, measured on the valid split without leaking it.

    python -m bench.crs_folds [--redial DIR] [--systems graph agent] [--limit N] [--folds 2]

A graph that learns from conversations (``chatrec data movie-graph --conversations``) must not
be scored on the conversations it learned from. The valid dialogues are split into folds by
dialogue (a hash of the id); for each fold a dataset of ml-latest-small's ratings plus the
*other* folds' conversations is built and trained, and that fold's lines are ranked with it.
In the same run, on the same lines: the graph over ml-100k, over ml-latest-small alone, and
popularity. Ends with one JSON line of the figures (R@1/10/50 per system, the paired R@10
differences). For the held-back test split, the graph learns from every valid conversation
(`bench/RESULTS.md` has the commands).

The agent's learned order of a conversation graph's candidates (`tools.conversation_ranker`) is
fitted here: with ``--ranker crossfit`` (the default) each fold's lines are first ranked without
it, and each fold is then measured with a ranker fitted on the *other* folds' lines only;
``--save-ranker PATH`` also fits one on every line (what ships as
tools/data/conversation_ranker.json). ``--ranker shipped`` measures the shipped one, which has
seen every valid line: not a figure to report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path

from agent.config import Settings
from agent.evals import crs
from agent.evals.crs_systems import make_system
from bench.common import emit

DEFAULT_REDIAL = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "redial"


def fold_of(dialog_id: str, folds: int) -> int:
    return int(hashlib.md5(str(dialog_id).encode()).hexdigest(), 16) % folds


class FoldedSystem:
    """Ranks each line with the system built without that line's fold."""

    def __init__(self, name: str, by_fold: dict[int, object], folds: int) -> None:
        self.name, self.by_fold, self.folds = name, by_fold, folds

    def rank(self, line: crs.CrsLine, k: int = crs.K) -> list[str]:
        return self.by_fold[fold_of(line.dialog_id, self.folds)].rank(line, k)

    @property
    def seconds_by_step(self) -> dict[str, float] | None:
        steps = [getattr(s, "seconds_by_step", None) for s in self.by_fold.values()]
        return {k: sum(s[k] for s in steps) for k in steps[0]} if steps[0] else None


class _PoolOrder:
    """A ranker that keeps the pool's order and keeps what it was asked to order: each
    ``CandidateTool.candidates`` call's first places (MovieLens-only films too, and each looser
    constraint's call) and their features, the rows the product re-orders."""

    def __init__(self, tool) -> None:
        self.asked: list[tuple[list[str], object]] = []
        features = tool.ranking_features

        def kept(pool, *args):
            X = features(pool, *args)
            self.asked.append(([c.item.item_id for c in pool], X))
            return X

        tool.ranking_features = kept  # on this instance only: the fold's own tool

    def score(self, X):
        import numpy as np

        return -np.arange(len(X), dtype=float)


def _ranker_rows(system, lines: list[crs.CrsLine]):
    """Each line ranked by the agent system in the pool's order, and the features and labels of
    every pool its candidate calls re-order."""
    from tqdm import tqdm

    names, recorder = system.names, _PoolOrder(system.agent.tool)
    system.agent.tool.ranker = recorder
    X, y = [], []
    for line in tqdm(lines, desc="pools for the ranker", unit="line"):
        recorder.asked.clear()
        system.rank(line)
        labels = {names.item_of[r].item_id for r in line.rec if r in names.item_of}
        for item_ids, features in recorder.asked:
            X.append(features)
            y.extend(item_id in labels for item_id in item_ids)
    del system.agent.tool.ranking_features  # the class's again
    return X, y


def _fit_rankers(by_fold: dict[int, object], lines: list[crs.CrsLine], folds: int, save: Path | None) -> dict[int, object]:
    """One ranker per fold, fitted on the other folds' lines (and one on all, saved to ``save``)."""
    import numpy as np

    from tools.conversation_ranker import ConversationRanker

    rows = {}
    for fold, system in by_fold.items():
        X, y = _ranker_rows(system, [line for line in lines if fold_of(line.dialog_id, folds) == fold])
        rows[fold] = (np.vstack(X), np.asarray(y, dtype=int))
    rankers = {}
    for fold in by_fold:
        X = np.vstack([rows[f][0] for f in rows if f != fold])
        y = np.concatenate([rows[f][1] for f in rows if f != fold])
        rankers[fold] = ConversationRanker.fit(X, y, fitted_on=f"ReDial valid, folds other than {fold} of {folds}")
    if save:
        X, y = np.vstack([r[0] for r in rows.values()]), np.concatenate([r[1] for r in rows.values()])
        ConversationRanker.fit(X, y, fitted_on=f"ReDial valid, every line ({len(lines)}) of {folds} folds, each "
                                               f"fold's pools from a graph without it: python -m bench.crs_folds "
                                               f"--folds {folds} --save-ranker").save(save)
        print(f"ranker fitted on every line saved to {save}")
    return rankers


def _write_other_folds(raw: Path, fold: int, folds: int, out: Path) -> None:
    with raw.open(encoding="utf-8") as f, out.open("w", encoding="utf-8") as w:
        for line in f:
            if line.strip() and fold_of(str(json.loads(line)["conversationId"]), folds) != fold:
                w.write(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redial", type=Path, default=DEFAULT_REDIAL, help="folder with ReDial's valid files")
    parser.add_argument("--systems", nargs="+", default=["graph"], choices=["graph", "agent"])
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--limit", type=int, help="the first N lines only")
    parser.add_argument("--json", type=Path, help="write the whole result (every line's rankings, examples) here")
    parser.add_argument("--ratings", default="ml-latest-small",
                        help="the MovieLens ratings mixed with the conversations ('none': conversations only)")
    parser.add_argument("--seed", type=int, help="the fold graphs' training seed (TrainConfig.seed when not given): "
                                                 "how much of a difference is retraining variance")
    parser.add_argument("--no-refit", dest="refit", action="store_false",
                        help="keep the fold graphs as early stopping left them (trained on their split's train part "
                             "only) instead of training them again on every interaction (`chatrec train --refit`)")
    parser.add_argument("--mentioned", choices=crs.MENTIONED, default="first",
                        help="films the dialogue already named: ranked first (latest first) or left out "
                             "(agent.evals.crs_systems)")
    parser.add_argument("--ranker", choices=["crossfit", "shipped", "off"], default="crossfit",
                        help="the agent's learned order of a conversation graph's candidates: fitted on the other "
                             "folds' lines (crossfit), the shipped one (it has seen every valid line), or none")
    parser.add_argument("--save-ranker", type=Path, help="also fit the ranker on every line and save it here "
                                                         "(with --ranker crossfit)")
    parser.add_argument("--baselines", nargs="*", default=["ml-100k", "ml-latest-small"],
                        help="graph datasets the graph system is also measured on (no conversations)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from recsys import datasets
    from recsys.train_config import TrainConfig
    from recsys.workflow import train_dataset
    from tools.items import open_catalog
    from tools.movie_graph import build_movie_graph

    settings = Settings()
    all_lines = crs.read_crs_file(args.redial / "valid_data_processed.jsonl")
    lines = all_lines[:args.limit] if args.limit else all_lines
    id2info = crs.read_id2info(args.redial / "id2info.json")
    catalog = open_catalog(settings.home, progress=False)
    base = None if args.ratings == "none" else datasets.load(args.ratings, settings.home, progress=False)
    started = time.perf_counter()
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for fold in range(args.folds):
            name = f"redial-valid-fold{fold}-of{args.folds}-{args.ratings}"
            others = Path(tmp) / f"others{fold}.jsonl"
            _write_other_folds(args.redial / "valid_data.jsonl", fold, args.folds, others)
            build_movie_graph(name, catalog, base, [others], home=settings.home)
            config = TrainConfig(seed=args.seed) if args.seed is not None else None
            train_dataset(name, config, home=settings.home, progress=False, refit=args.refit)  # always: the dataset was just rewritten
            names.append(name)
    build_s = time.perf_counter() - started
    systems = {}
    if "agent" in args.systems and args.ranker != "shipped":
        by_fold = {fold: make_system("agent", lines=all_lines, id2info=id2info, settings=settings, graph_dataset=name,
                                     mentioned=args.mentioned) for fold, name in enumerate(names)}
        rankers = (_fit_rankers(by_fold, lines, args.folds, args.save_ranker) if args.ranker == "crossfit"
                   else dict.fromkeys(by_fold))
        for fold, system in by_fold.items():
            system.agent.tool.ranker = rankers[fold]
    for system in args.systems:
        systems[f"{system}+conversations"] = FoldedSystem(system, {
            fold: make_system(system, lines=all_lines, id2info=id2info, settings=settings, graph_dataset=name,
                              mentioned=args.mentioned)
            for fold, name in enumerate(names)}, args.folds)
    for dataset in args.baselines:  # the graph alone is cheap to run over other datasets
        systems[f"graph:{dataset}"] = make_system("graph", lines=all_lines, id2info=id2info, settings=settings,
                                                  graph_dataset=dataset, mentioned=args.mentioned)
    systems["popularity"] = crs.PopularitySystem(all_lines, crs.catalogue_names(id2info))
    result = crs.evaluate(lines, systems, id2info, progress=True)
    print(crs.format_table(result))
    if args.json:
        from recsys.io import write_json

        write_json(args.json, result)
    summary = result["summary"]
    emit({"bench": "crs_folds", "folds": args.folds, "ratings": args.ratings, "seed": args.seed, "refit": args.refit,
          "mentioned": args.mentioned, "ranker": args.ranker if "agent" in args.systems else None,
          "lines": summary["lines"], "labels": summary["labels"],
          "build_and_train_s": round(build_s, 1),
          "systems": {n: {k: v for k, v in f.items()} for n, f in summary["systems"].items()},
          "paired": {k: [v["recall@10_diff"], v["recall@10_diff_ci95"]] for k, v in summary["paired"].items()}})


if __name__ == "__main__":
    main()
