#!/usr/bin/env python
"""Run RecBole 1.2.1 LightGCN on a split we provide (peer baseline).

Runs INSIDE bench/.recbole-venv (see bench/recbole_env.sh); it must not import
the project package.  Example:

    bench/.recbole-venv/bin/python bench/recbole_runner.py \
        --train train.tsv --valid valid.tsv --test test.tsv \
        --config cfg.json --out result.json --workdir /tmp/rb_work

Input TSVs have header ``user_id<TAB>item_id``; ids are opaque strings.
The runner writes RecBole "benchmark" atomic files
``<workdir>/data/<name>/<name>.{train,valid,test}.inter`` and runs LightGCN
with ``benchmark_filename: [train, valid, test]``.  In that mode RecBole
skips all data filtering (``Dataset._data_processing`` only calls
``_data_filtering`` when ``benchmark_filename`` is None) and ignores
``eval_args.split``: the three files *are* the split.  Ids are factorized over
the union of the three files, so every user/item in any file exists in the
model; nothing is dropped.  The runner verifies that after loading.

Timing (all ``time.perf_counter`` wall seconds):
  train_s        whole ``trainer.fit`` call = per-epoch training + per-epoch
                 validation + early-stopping bookkeeping + checkpoint saves.
  train_epoch_s  sum of ``_train_epoch`` (forward/backward/optimizer steps incl.
                 negative sampling by the train dataloader).
  valid_s        sum of ``_valid_epoch`` (full-sort validation inside fit).
  ckpt_s         sum of ``_save_checkpoint`` (torch.save on each improvement).
  test_s         final ``trainer.evaluate(test, load_best_model=True)``
                 (incl. reloading the best checkpoint); NOT part of train_s.
  load_s         building dataset + dataloaders + model; NOT part of train_s.
Threads: pass ``torch_threads`` in the config (and use the same count on our
side).  On this 2-core box with other processes running, torch's default of 2
intra-op threads made an ml-100k epoch ~6-10x slower (OpenMP threads waiting on
descheduled peers) than ``torch_threads: 1``; results are bit-identical.

Harness-only config keys: ``torch_threads``, ``dataset_name`` (default
"bench"; not "ml-100k"), ``keep_checkpoint`` (default false: the best-model
.pth is deleted after the test evaluation).  Every other key is handed to
RecBole's Config (e.g. ``eval_batch_size``, ``learner``, ``device``/``use_gpu``).

RecBole's own log line "epoch N training [time: X s ...]" is just the
``_train_epoch`` time of that epoch; "evaluating [time: Y s]" is
``_valid_epoch`` + early_stopping of that epoch.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import sys
import time
import warnings

# RecBole's checkpoint reload calls torch.load without weights_only=False; torch>=2.6
# defaults to weights_only=True, which fails on the pickled config inside.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

# pandas' default NA strings: ids equal to one of these would silently become NaN
# -> [PAD] inside RecBole's read_csv, so we refuse them.
_PANDAS_NA = {
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
    "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
    "nan", "null",
}

# keys consumed by this harness (not passed to RecBole)
_HARNESS_KEYS = {"dataset_name", "torch_threads", "keep_checkpoint"}

_DEFAULTS = {
    # model / training (overridable from --config)
    "embedding_size": 64,
    "n_layers": 3,
    "reg_weight": 1e-4,
    "learning_rate": 0.002,
    "train_batch_size": 4096,
    "epochs": 300,
    "stopping_step": 10,
    "seed": 2020,
    "eval_step": 1,
    "eval_batch_size": 4096,
    "learner": "adam",
    "weight_decay": 0.0,
    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1,
                              "alpha": 1.0, "dynamic": False, "candidate_num": 0},
    "reproducibility": True,
    "shuffle": True,
    # evaluation
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]},  # ignored with benchmark_filename
                  "order": "RO", "group_by": "user", "mode": "full"},
    "metrics": ["Recall", "NDCG", "Precision", "Hit", "MRR"],
    "topk": [5, 10, 20],
    "valid_metric": "NDCG@20",
    "valid_metric_bigger": True,
    "metric_decimal_place": 8,
    "repeatable": False,
}

_FORCED = {
    # data layout: our split, no filtering, only user/item columns
    "benchmark_filename": ["train", "valid", "test"],
    "load_col": {"inter": ["user_id", "item_id"]},
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "RATING_FIELD": None,
    "TIME_FIELD": None,
    "rm_dup_inter": None,
    "val_interval": None,
    "filter_inter_by_user_or_item": False,
    "user_inter_num_interval": None,
    "item_inter_num_interval": None,
    "show_progress": False,
    "save_dataset": False,
    "save_dataloaders": False,
    "log_wandb": False,
    "worker": 0,
    "state": "INFO",
}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_split(path: str) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rd = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rd)
        if [h.strip() for h in header[:2]] != ["user_id", "item_id"]:
            raise SystemExit(f"{path}: header must be 'user_id\\titem_id', got {header!r}")
        rows = []
        for i, r in enumerate(rd, start=2):
            if not r:
                continue
            if len(r) < 2:
                raise SystemExit(f"{path}:{i}: expected 2 columns, got {r!r}")
            u, it = r[0], r[1]
            for tok in (u, it):
                if tok in _PANDAS_NA or tok != tok.strip():
                    raise SystemExit(
                        f"{path}:{i}: id {tok!r} would be mangled by RecBole's pandas "
                        "reader (NA-like or surrounding whitespace)")
            rows.append((u, it))
    return rows


def write_atomic(path: str, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\n")
        for u, it in rows:
            f.write(f"{u}\t{it}\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--config", required=True, help="JSON file with hyper-parameters")
    ap.add_argument("--out", required=True, help="result JSON path")
    ap.add_argument("--workdir", required=True, help="scratch dir (data, log, checkpoint)")
    args = ap.parse_args(argv)

    paths = {k: os.path.abspath(getattr(args, k)) for k in ("train", "valid", "test")}
    out_path = os.path.abspath(args.out)
    workdir = os.path.abspath(args.workdir)
    with open(args.config, encoding="utf-8") as f:
        user_cfg = json.load(f)

    name = user_cfg.get("dataset_name", "bench")
    if name == "ml-100k":  # would pull in RecBole's ml-100k.yaml presets
        raise SystemExit("dataset_name 'ml-100k' is reserved by RecBole; pick another")
    threads = user_cfg.get("torch_threads")
    keep_ckpt = bool(user_cfg.get("keep_checkpoint", False))

    # ---- write atomic benchmark files ---------------------------------------
    data_root = os.path.join(workdir, "data")
    ds_dir = os.path.join(data_root, name)
    os.makedirs(ds_dir, exist_ok=True)
    splits = {}
    for k in ("train", "valid", "test"):
        rows = read_split(paths[k])
        splits[k] = rows
        write_atomic(os.path.join(ds_dir, f"{name}.{k}.inter"), rows)
    dup_within = {k: len(v) - len(set(v)) for k, v in splits.items()}
    tr, va, te = (set(splits[k]) for k in ("train", "valid", "test"))
    overlap = {"train&valid": len(tr & va), "train&test": len(tr & te),
               "valid&test": len(va & te)}

    # ---- RecBole ------------------------------------------------------------
    os.chdir(workdir)  # RecBole writes ./log, ./log_tensorboard relative to cwd
    logging.captureWarnings(True)
    warnings.simplefilter("default")

    import numpy as np
    import torch
    if threads:
        torch.set_num_threads(int(threads))
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    cfg = dict(_DEFAULTS)
    cfg.update({k: v for k, v in user_cfg.items() if k not in _HARNESS_KEYS})
    cfg.update(_FORCED)
    cfg["data_path"] = data_root
    cfg["checkpoint_dir"] = os.path.join(workdir, "saved")
    ea = dict(_DEFAULTS["eval_args"])
    ea.update(cfg.get("eval_args") or {})
    if ea.get("mode") != "full":
        _err(f"warning: eval_args.mode={ea.get('mode')!r} (not full-sort)")
    cfg["eval_args"] = ea

    t0 = time.perf_counter()
    # Config() also parses sys.argv ("--key=value" would become a RecBole
    # setting and anything else is echoed to stdout), so hide our CLI from it.
    saved_argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        config = Config(model="LightGCN", dataset=name, config_dict=cfg)
    finally:
        sys.argv = saved_argv
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    root = logging.getLogger()
    log_file = None
    for h in list(root.handlers):
        if isinstance(h, logging.FileHandler):
            log_file = os.path.abspath(h.baseFilename)
        else:  # drop RecBole's colour stream handler: keep stdout/stderr quiet
            root.removeHandler(h)
    logger = logging.getLogger()
    logger.info(sys.argv)
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    # ---- verify RecBole kept exactly our users/items/interactions -----------
    uid_f, iid_f = dataset.uid_field, dataset.iid_field
    ext_users = {u for rows in splits.values() for u, _ in rows}
    ext_items = {i for rows in splits.values() for _, i in rows}
    rb_users = set(dataset.field2id_token[uid_f][1:].tolist())
    rb_items = set(dataset.field2id_token[iid_f][1:].tolist())
    checks = {
        "users_match": rb_users == ext_users,
        "items_match": rb_items == ext_items,
        "n_inter_match": {
            k: int(len(d._dataset.inter_feat)) == len(splits[k])
            for k, d in (("train", train_data), ("valid", valid_data), ("test", test_data))
        },
        # users that the full-sort eval loaders actually score
        "eval_users": {"valid": int(len(valid_data.uid_list)),
                       "test": int(len(test_data.uid_list))},
        "eval_users_expected": {"valid": len({u for u, _ in splits["valid"]}),
                                "test": len({u for u, _ in splits["test"]})},
        "duplicate_rows_within_split": dup_within,
        "pairs_shared_between_splits": overlap,
    }
    # round-trip the interactions back to external ids
    for k, d in (("train", train_data), ("valid", valid_data), ("test", test_data)):
        inter = d._dataset.inter_feat
        uu = dataset.field2id_token[uid_f][inter[uid_f].numpy()]
        ii = dataset.field2id_token[iid_f][inter[iid_f].numpy()]
        checks.setdefault("pairs_match", {})[k] = (
            sorted(zip(uu.tolist(), ii.tolist())) == sorted(splits[k]))
    ok = (checks["users_match"] and checks["items_match"]
          and all(checks["n_inter_match"].values()) and all(checks["pairs_match"].values())
          and checks["eval_users"] == checks["eval_users_expected"])
    if not ok:
        _err(f"[recbole_runner] WARNING: split not preserved: {json.dumps(checks)}")
    logger.info(f"split checks: {checks}")

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = LightGCN(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = Trainer(config, model)
    load_s = time.perf_counter() - t0

    # ---- instrument the fit loop ------------------------------------------
    acc = {"train_epoch_s": 0.0, "valid_s": 0.0, "ckpt_s": 0.0}
    state = {"fit_t0": None, "epoch": -1, "last_valid": None, "loss": None,
             "train_only": 0.0}
    curve, curve_detail = [], []
    orig_train_epoch, orig_valid_epoch = trainer._train_epoch, trainer._valid_epoch
    orig_save = trainer._save_checkpoint

    def train_epoch(train_data_, epoch_idx, *a, **kw):
        t = time.perf_counter()
        loss = orig_train_epoch(train_data_, epoch_idx, *a, **kw)
        dt = time.perf_counter() - t
        acc["train_epoch_s"] += dt
        state["train_only"] += dt
        state["epoch"] = epoch_idx
        state["loss"] = float(sum(loss)) if isinstance(loss, tuple) else float(loss)
        state["epoch_train_s"] = dt
        return loss

    def valid_epoch(valid_data_, *a, **kw):
        t = time.perf_counter()
        res = orig_valid_epoch(valid_data_, *a, **kw)
        dt = time.perf_counter() - t
        acc["valid_s"] += dt
        state["last_valid"] = res[1]
        state["epoch_valid_s"] = dt
        return res

    def save_ckpt(*a, **kw):
        t = time.perf_counter()
        r = orig_save(*a, **kw)
        acc["ckpt_s"] += time.perf_counter() - t
        return r

    trainer._train_epoch, trainer._valid_epoch = train_epoch, valid_epoch
    trainer._save_checkpoint = save_ckpt
    best = {"epoch": None}

    def callback(epoch_idx, valid_score):
        el = time.perf_counter() - state["fit_t0"]
        vr = state["last_valid"] or {}
        nd = float(vr.get("ndcg@20", float("nan")))
        improved = trainer.cur_step == 0  # early_stopping reset => new best (ties count)
        if improved:
            best["epoch"] = epoch_idx
        curve.append([epoch_idx, round(el, 4), nd])
        curve_detail.append({
            "epoch": epoch_idx, "fit_s": round(el, 4),
            "train_only_s": round(state["train_only"], 4),
            "epoch_train_s": round(state.get("epoch_train_s", 0.0), 4),
            "epoch_valid_s": round(state.get("epoch_valid_s", 0.0), 4),
            "loss": state["loss"], "valid_score": float(valid_score),
            "ndcg@20": nd, "recall@20": float(vr.get("recall@20", float("nan"))),
            "best": improved,
            "loadavg1": os.getloadavg()[0],
        })
        _err(f"[recbole] ep {epoch_idx:3d} loss {state['loss']:.4f} "
             f"ndcg@20 {nd:.4f}{' *' if improved else '  '} "
             f"train {state.get('epoch_train_s', 0):.2f}s valid "
             f"{state.get('epoch_valid_s', 0):.2f}s fit {el:.1f}s")

    _err(f"[recbole_runner] recbole {recbole.__version__} torch {torch.__version__} "
         f"device {config['device']} threads {torch.get_num_threads()}; "
         f"users {dataset.user_num - 1} items {dataset.item_num - 1} "
         f"inter {[len(v) for v in splits.values()]}; log {log_file}")

    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1):
        _err(f"[recbole_runner] WARNING: load average {load_before[0]:.1f} > "
             f"{os.cpu_count()} cores: timings will be inflated")
    cpu0 = time.process_time()
    state["fit_t0"] = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=True, show_progress=False, callback_fn=callback)
    train_s = time.perf_counter() - state["fit_t0"]
    train_cpu_s = time.process_time() - cpu0
    load_after = os.getloadavg()

    t = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    test_s = time.perf_counter() - t
    logger.info(f"best valid: {best_valid_result}")
    logger.info(f"test result: {test_result}")

    epochs_run = state["epoch"] + 1
    n_train_epochs = epochs_run - trainer.start_epoch
    result = {
        "test": {k: float(v) for k, v in test_result.items()},
        "best_valid": {k: float(v) for k, v in (best_valid_result or {}).items()},
        "best_valid_score": float(best_valid_score),
        "valid_metric": config["valid_metric"].lower(),
        "train_s": train_s,
        "valid_s": acc["valid_s"],
        "train_epoch_s": acc["train_epoch_s"],
        "ckpt_s": acc["ckpt_s"],
        "train_s_per_epoch": acc["train_epoch_s"] / max(n_train_epochs, 1),
        "valid_s_per_eval": acc["valid_s"] / max(len(curve), 1),
        "train_cpu_s": train_cpu_s,
        "test_s": test_s,
        "load_s": load_s,
        "epochs": epochs_run,
        "best_epoch": best["epoch"],
        "epoch_index_base": 0,
        "stopped_early": epochs_run < config["epochs"],
        "curve": curve,
        "curve_detail": curve_detail,
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "n_inter": {k: len(v) for k, v in splits.items()},
        "split_checks": checks,
        "split_preserved": bool(ok),
        "test_mask": "train+valid items of the user are excluded from test ranking "
                     "(minus the user's own test positives); valid ranking excludes train",
        "recbole_version": recbole.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "device": str(config["device"]),
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        # 1-min load average before/after fit: >> torch_threads means timings are
        # contaminated by other processes on the box
        "loadavg_before_fit": load_before[0],
        "loadavg_after_fit": load_after[0],
        "config": {k: (v if isinstance(v, (int, float, str, bool, list, dict, type(None)))
                       else str(v))
                   for k, v in cfg.items()},
        "log_file": log_file,
    }
    if not keep_ckpt:
        try:
            os.remove(trainer.saved_model_file)
        except OSError:
            pass
    else:
        result["checkpoint"] = trainer.saved_model_file
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, out_path)
    _err(f"[recbole_runner] done: epochs {epochs_run} best {best['epoch']} "
         f"train_s {train_s:.1f} (train {acc['train_epoch_s']:.1f} valid {acc['valid_s']:.1f} "
         f"ckpt {acc['ckpt_s']:.1f}) test ndcg@20 {result['test'].get('ndcg@20')} "
         f"recall@20 {result['test'].get('recall@20')} -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
