"""Top-20 latency of the graph recommender: a known user and a fold-in user, over all items.

    python bench/latency.py [--dataset ml-1m] [--calls 1000]

Uses the dataset's trained model if there is one, else trains a short one (latency
does not depend on quality). Target: p50 and p99 under 2 ms on ml-1m sized catalogues.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import emit
from recsys.split import SplitConfig
from recsys.train import TrainConfig
from recsys.workflow import MODEL_FILE, load_recommender, model_dir, train_dataset


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="a lightgcn.pt (default: the dataset's in the data home)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.model or (model_dir(args.dataset) / MODEL_FILE).exists():
        rec = load_recommender(args.dataset, args.model)
    else:
        split = SplitConfig(min_rating=3) if args.dataset == "ml-1m" else SplitConfig()
        rec, _ = train_dataset(args.dataset, TrainConfig(epochs=2), split, progress=False)
    rng = np.random.default_rng(args.seed)
    users = rng.choice(rec.user_ids, args.calls)
    liked = [list(rng.choice(rec.item_ids, rng.integers(1, 6), replace=False)) for _ in range(args.calls)]
    for u in users[:20]:  # warm caches
        rec.recommend(u, 20)

    known, fold_in = [], []
    for u in users:
        t = time.perf_counter()
        rec.recommend(u, 20)
        known.append(time.perf_counter() - t)
    for items in liked:
        t = time.perf_counter()
        rec.recommend_from_items(items, k=20)
        fold_in.append(time.perf_counter() - t)
    k, f = percentiles(known), percentiles(fold_in)
    print(f"{args.dataset}: {rec.n_users} users x {rec.n_items} items, {args.calls} calls each")
    print(f"  known user top-20:   p50 {k['p50_ms']:.3f} ms  p99 {k['p99_ms']:.3f} ms")
    print(f"  fold-in user top-20: p50 {f['p50_ms']:.3f} ms  p99 {f['p99_ms']:.3f} ms")
    emit({"dataset": args.dataset, "n_items": rec.n_items, "calls": args.calls, "threads": args.threads,
          "known_p50_ms": k["p50_ms"], "known_p99_ms": k["p99_ms"],
          "foldin_p50_ms": f["p50_ms"], "foldin_p99_ms": f["p99_ms"]})


if __name__ == "__main__":
    main()
