"""Our LightGCN against RecBole 1.2.1's, side by side on the same ml-100k split, in one run.

    pip install -e ".[bench]" && python bench/vs_recbole.py [--epochs 300] [--threads 1]

RecBole runs in its own venv (bench/recbole_env.sh makes it; RecBole 1.2.1 needs
numpy<2 and SciPy<1.12) through bench/recbole_runner.py, on the split we write out
as RecBole benchmark files, so both sides train and test on identical interactions
and both evaluate full-sort with train+valid items masked.

Three trainings:
  recbole  RecBole's LightGCN: dim 64, 3 layers, lr 0.002, reg 1e-4, batch 4096,
           epoch budget 300, early stopping 10 on valid NDCG@20.
  ours     our LightGCN as `chatrec train` runs it (TrainConfig defaults): batch 8192, lr 0.01,
           the LightGCN paper's squared L2 at 1e-3 (chosen on validation) — our own schedule.
  matched  our LightGCN with RecBole's hyper-parameters and RecBole's regulariser formula
           (reg_form="recbole": EmbLoss's unsquared norms; the same λ in the paper's squared
           form is a much stronger penalty, so only this is "the same regularisation").
For our runs, test NDCG@20 is tracked after every validation with the clock paused,
to find when we first reach RecBole's final test NDCG@20. Training time includes the
per-epoch validation on both sides (RecBole's fit loop does the same).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from bench.common import emit, line_plot
from recsys import datasets
from recsys.io import write_json
from recsys.metrics import evaluate_ranking
from recsys.split import Split, SplitConfig, make_split
from recsys.train import TrainConfig, TrainResult, evaluate_test, scorer, train_lightgcn

HERE = Path(__file__).resolve().parent
RECBOLE_PY = HERE / ".recbole-venv" / "bin" / "python"
SHARED = dict(dim=64, n_layers=3, learning_rate=0.002, reg_weight=1e-4, batch_size=4096, patience=10,
              valid_metric="ndcg@20", seed=2020)


def write_split(split: Split, folder: Path) -> dict[str, Path]:
    paths = {}
    for part in ("train", "valid", "test"):
        data = getattr(split, part)
        paths[part] = folder / f"{part}.tsv"
        with paths[part].open("w", newline="") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(["user_id", "item_id"])
            writer.writerows(zip(data.user_ids[data.users], data.item_ids[data.items]))
    return paths


def run_recbole(split_files: dict[str, Path], epochs: int, threads: int, workdir: Path) -> dict:
    subprocess.run(["bash", str(HERE / "recbole_env.sh")], check=True)
    config = {"embedding_size": SHARED["dim"], "n_layers": SHARED["n_layers"],
              "learning_rate": SHARED["learning_rate"], "reg_weight": SHARED["reg_weight"],
              "train_batch_size": SHARED["batch_size"], "epochs": epochs, "stopping_step": SHARED["patience"],
              "seed": SHARED["seed"], "eval_step": 1, "torch_threads": threads}
    config_path = workdir / "recbole_config.json"
    config_path.write_text(json.dumps(config))
    out = workdir / "recbole_result.json"
    started = time.perf_counter()
    subprocess.run([str(RECBOLE_PY), str(HERE / "recbole_runner.py"), "--train", str(split_files["train"]),
                    "--valid", str(split_files["valid"]), "--test", str(split_files["test"]),
                    "--config", str(config_path), "--out", str(out), "--workdir", str(workdir / "recbole")],
                   check=True)
    result = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - started
    return result


def run_ours(split: Split, config: TrainConfig) -> tuple[TrainResult, dict]:
    seen = (split.train_matrix() + split.valid_matrix()).tocsr()
    test = split.test_matrix()

    def track_test(epoch: int, seconds: float, model) -> dict:
        return {"test_ndcg@20": evaluate_ranking(scorer(model), test, seen, ks=(20,))["ndcg@20"]}

    result = train_lightgcn(split, config, progress=False, monitor=track_test)
    return result, evaluate_test(result.model, split)


def seconds_to_reach(curve: list[dict], target: float) -> float | None:
    return next((entry["train_s"] for entry in curve if entry["test_ndcg@20"] >= target), None)


def plot_curves(recbole: dict, runs: dict, path: Path) -> None:
    """Validation NDCG@20 against training seconds, all three runs on one picture."""
    labels = {"ours": "ours (defaults)", "matched": "ours (RecBole's hyper-parameters)"}
    series = {"RecBole 1.2.1": ([c[1] for c in recbole["curve"]], [c[2] for c in recbole["curve"]])}
    for name, run in runs.items():
        series[labels.get(name, name)] = ([c["train_s"] for c in run["curve"]],
                                          [c["valid_ndcg@20"] for c in run["curve"]])
    line_plot(series, path, "training seconds (incl. per-epoch validation), 1 thread", "validation NDCG@20",
              "LightGCN on ml-100k, same split", colors=["#888", "#d62728", "#1f77b4"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=300, help="epoch budget, both sides")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, both sides (2 threads on a busy 2-core box thrash)")
    parser.add_argument("--seed", type=int, default=2020, help="split seed")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "vs_recbole.json")
    parser.add_argument("--plot", type=Path, default=HERE / "vs_recbole.png", help="curve picture")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    split = make_split(datasets.load("ml-100k"), SplitConfig(seed=args.seed))
    print(f"ml-100k split: {split.train.n_interactions} / {split.valid.n_interactions} / "
          f"{split.test.n_interactions} interactions, {split.n_users} users, {split.n_items} items")
    with tempfile.TemporaryDirectory(prefix="vs-recbole-") as tmp:
        workdir = Path(tmp)
        recbole = run_recbole(write_split(split, workdir), args.epochs, args.threads, workdir)
    target = recbole["test"]["ndcg@20"]
    print(f"recbole: test NDCG@20 {target:.4f}, {recbole['train_s']:.1f} s training, {recbole['epochs']} epochs")

    runs = {}
    for name, config in (("ours", TrainConfig(epochs=args.epochs)),
                         ("matched", TrainConfig(**SHARED, reg_form="recbole", epochs=args.epochs))):
        result, test = run_ours(split, config)
        reach = seconds_to_reach(result.curve, target)
        runs[name] = {"config": config.model_dump(), "test": test, "train_s": result.train_seconds,
                      "epochs": result.epochs_run, "best_epoch": result.best_epoch,
                      "sec_per_epoch": sum(result.epoch_seconds) / len(result.epoch_seconds),
                      "reach_recbole_s": reach, "curve": result.curve}
        print(f"{name}: test NDCG@20 {test['ndcg@20']:.4f}, {result.train_seconds:.1f} s training, "
              f"{result.epochs_run} epochs; reached RecBole's NDCG@20 after "
              f"{'never' if reach is None else f'{reach:.1f} s'}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"recbole": recbole, **runs})
    plot_curves(recbole, runs, args.plot)
    reach = runs["ours"]["reach_recbole_s"]
    ratio = None if reach is None else reach / recbole["train_s"]
    figures = {
        "dataset": "ml-100k", "threads": args.threads, "epoch_budget": args.epochs,
        "ours_recall@20": round(runs["ours"]["test"]["recall@20"], 4),
        "ours_ndcg@20": round(runs["ours"]["test"]["ndcg@20"], 4),
        "recbole_recall@20": round(recbole["test"]["recall@20"], 4),
        "recbole_ndcg@20": round(target, 4),
        "ours_train_s": round(runs["ours"]["train_s"], 1),
        "recbole_train_s": round(recbole["train_s"], 1),
        "ours_epochs": runs["ours"]["epochs"], "recbole_epochs": recbole["epochs"],
        "ours_sec_per_epoch": round(runs["ours"]["sec_per_epoch"], 3),
        "recbole_sec_per_epoch": round(recbole.get("train_epoch_s", recbole["train_s"]) / recbole["epochs"], 3),
        "matched_recall@20": round(runs["matched"]["test"]["recall@20"], 4),
        "matched_ndcg@20": round(runs["matched"]["test"]["ndcg@20"], 4),
        "matched_train_s": round(runs["matched"]["train_s"], 1),
        "matched_sec_per_epoch": round(runs["matched"]["sec_per_epoch"], 3),
        "ours_reach_s": runs["ours"]["reach_recbole_s"], "matched_reach_s": runs["matched"]["reach_recbole_s"],
        "time_to_recbole_ndcg_ratio": None if ratio is None else round(ratio, 4),
    }
    emit(figures)


if __name__ == "__main__":
    main()
