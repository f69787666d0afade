"""Training cost as data grows: seconds per epoch on ml-100k and ml-1m.

    python bench/epoch_scaling.py [--epochs 3] [--threads 1 2]

Same model (dim 64, 3 layers); reports optimisation time per epoch (no validation) and
seconds per million interactions, for each thread count, at our default batch size. Every
batch propagates the whole graph, so at a fixed batch size an epoch costs about
(interactions / batch) x edges: quadratic in the data. A last row measures ml-1m with the
batch grown in proportion to its interactions (as many batches per epoch as ml-100k),
the schedule bench/ml1m_recbole_gnn.py uses, where growth is about linear.
"""

from __future__ import annotations

import argparse

import torch

from bench.common import emit
from recsys import datasets
from recsys.split import SplitConfig, make_split
from recsys.train import TrainConfig, train_lightgcn

CASES = {"ml-100k": SplitConfig(), "ml-1m": SplitConfig(min_rating=3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    args = parser.parse_args()

    figures: dict = {"batch_size": args.batch_size}
    for name, split_config in CASES.items():
        split = make_split(datasets.load(name), split_config)
        n = split.train.n_interactions
        figures[f"{name}_train_interactions"] = n
        for threads in args.threads:
            torch.set_num_threads(threads)
            config = TrainConfig(epochs=args.epochs, eval_every=10_000, batch_size=args.batch_size)
            result = train_lightgcn(split, config, progress=False)
            per_epoch = min(result.epoch_seconds)  # least-disturbed epoch on a noisy machine
            figures[f"{name}_sec_per_epoch_t{threads}"] = round(per_epoch, 3)
            figures[f"{name}_sec_per_M_interactions_t{threads}"] = round(per_epoch / n * 1e6, 3)
            print(f"{name:<8} {n:>8} train interactions, {threads} thread(s): {per_epoch:.3f} s/epoch")
    t = args.threads[0]
    torch.set_num_threads(t)
    scaled_batch = round(args.batch_size * figures["ml-1m_train_interactions"] / figures["ml-100k_train_interactions"])
    config = TrainConfig(epochs=args.epochs, eval_every=10_000, batch_size=scaled_batch)
    per_epoch = min(train_lightgcn(split, config, progress=False).epoch_seconds)  # split: ml-1m, the last case
    figures["ml-1m_scaled_batch_size"] = scaled_batch
    figures[f"ml-1m_scaled_batch_sec_per_epoch_t{t}"] = round(per_epoch, 3)
    figures["ml1m_over_ml100k_scaled_batch_time_ratio"] = round(per_epoch / figures[f"ml-100k_sec_per_epoch_t{t}"], 2)
    print(f"ml-1m with batch {scaled_batch} (as many batches per epoch as ml-100k), {t} thread(s): "
          f"{per_epoch:.3f} s/epoch")
    figures["ml1m_over_ml100k_time_ratio"] = round(
        figures[f"ml-1m_sec_per_epoch_t{t}"] / figures[f"ml-100k_sec_per_epoch_t{t}"], 2)
    figures["ml1m_over_ml100k_interaction_ratio"] = round(
        figures["ml-1m_train_interactions"] / figures["ml-100k_train_interactions"], 2)
    emit(figures)


if __name__ == "__main__":
    main()
