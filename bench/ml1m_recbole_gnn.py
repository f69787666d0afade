"""The RecBole-GNN protocol on ml-1m, with our LightGCN.

    python bench/ml1m_recbole_gnn.py [--batch-size 65536] [--lr 0.01] [--epochs 400] [--out bench/out/ml1m]

Protocol (RecBole-GNN's published LightGCN row): ratings >= 3, random 8:1:1 per user,
full-sort ranking, dim 64, 3 layers, early stopping on validation NDCG@10.
Published: Recall@10 0.1861, NDCG@10 0.2538 (lr 0.002, RecBole reg_weight 1e-4). The data,
split and evaluation are identical; the batch size, learning rate and L2 weight are ours
(larger batches: far fewer propagations per epoch; our L2 is the paper's squared form,
not RecBole's unsquared EmbLoss, so the numbers are not interchangeable).
Writes the curve to OUT/curve.json (and as a picture to --plot), the model to OUT/lightgcn.pt;
prints a JSON last line. `--plot-from OUT/curve.json` only redraws the picture.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from bench.common import emit, line_plot
from recsys import datasets
from recsys.io import write_json
from recsys.recommender import GraphRecommender
from recsys.split import SplitConfig, make_split
from recsys.train import TrainConfig, evaluate_test, train_lightgcn

PUBLISHED = {"recall@10": 0.1861, "ndcg@10": 0.2538, "mrr@10": 0.4388, "hit@10": 0.7330, "precision@10": 0.1863}


def plot_curve(run: dict, path: Path) -> None:
    """Validation NDCG@10 against training seconds."""
    curve, config = run["curve"], run["config"]
    label = f"batch {config['batch_size']}, lr {config['learning_rate']}, L2 {config['reg_weight']}"
    line_plot({label: ([c["train_s"] for c in curve], [c["valid_ndcg@10"] for c in curve])}, path,
              "training seconds (incl. validation every 2 epochs), 1 thread", "validation NDCG@10",
              "LightGCN on ml-1m (ratings >= 3), RecBole-GNN protocol")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=65536)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--reg", type=float, default=TrainConfig().reg_weight, help="L2 weight (ours: squared, per batch row)")
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (2 on a busy 2-core box thrash)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/ml1m"))
    parser.add_argument("--plot", type=Path, default=Path("bench/ml1m_curve.png"), help="curve picture")
    parser.add_argument("--plot-from", type=Path, metavar="CURVE_JSON", help="only redraw --plot from a curve.json")
    args = parser.parse_args()
    if args.plot_from:
        plot_curve(json.loads(args.plot_from.read_text()), args.plot)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    split_config = SplitConfig(min_rating=3, seed=2020)
    split = make_split(datasets.load("ml-1m"), split_config)
    config = TrainConfig(dim=64, n_layers=3, reg_weight=args.reg, learning_rate=args.lr, batch_size=args.batch_size,
                         epochs=args.epochs, patience=args.patience, eval_every=args.eval_every,
                         valid_metric="ndcg@10", device=args.device)
    print(f"ml-1m (ratings >= 3): {split.n_users} users, {split.n_items} items, "
          f"{split.train.n_interactions} train interactions")
    started = time.perf_counter()
    result = train_lightgcn(split, config, progress=True)
    wall = time.perf_counter() - started
    test = evaluate_test(result.model, split)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "curve.json", {"config": config.model_dump(), "curve": result.curve,
                                         "epoch_seconds": result.epoch_seconds, "test": test})
    GraphRecommender.from_model(result.model, split.train_matrix(), split.train.user_ids, split.train.item_ids,
                                "ml-1m", config, {"test": test}, split_config).save(args.out / "lightgcn.pt")
    plot_curve({"config": config.model_dump(), "curve": result.curve}, args.plot)
    for name, published in PUBLISHED.items():
        print(f"  {name:<13} ours {test[name]:.4f}   published {published:.4f}")
    sec_per_epoch = sum(result.epoch_seconds) / max(1, len(result.epoch_seconds))
    emit({"dataset": "ml-1m", "device": args.device, "threads": args.threads, "batch_size": args.batch_size, "lr": args.lr, "reg": args.reg,
          "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "wall_s": round(wall, 1),
          "train_s": round(result.train_seconds, 1), "sec_per_epoch": round(sec_per_epoch, 3),
          **{f"ours_{k}": round(v, 4) for k, v in test.items() if k.endswith("@10")},
          "published_recall@10": PUBLISHED["recall@10"], "published_ndcg@10": PUBLISHED["ndcg@10"]})


if __name__ == "__main__":
    main()
