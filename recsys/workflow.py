"""Train, save and evaluate a dataset's graph recommender: what ``chatrec train`` and
``chatrec evaluate`` do, kept here so benchmarks and the agent reuse the same steps."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from recsys import datasets
from recsys.data import DataError
from recsys.io import data_home
from recsys.io import write_json
from recsys.metrics import evaluate_ranking
from recsys.recommender import GraphRecommender
from recsys.split import SplitConfig, make_split, refit_split
from recsys.train import TrainConfig, evaluate_test, train_lightgcn

log = logging.getLogger(__name__)

MODEL_FILE = "lightgcn.pt"
METRICS_FILE = "metrics.json"


def model_dir(dataset: str, home: Path | None = None) -> Path:
    return (home or data_home()) / "models" / dataset


def train_dataset(dataset: str = datasets.DEFAULT_DATASET, config: TrainConfig | None = None,
                  split: SplitConfig | None = None, out_dir: Path | None = None,
                  home: Path | None = None, progress: bool = True, refit: bool = False
                  ) -> tuple[GraphRecommender, dict]:
    """Load (fetching if needed), split, train with early stopping, test, and save atomically.

    Writes ``lightgcn.pt`` and ``metrics.json`` into ``out_dir`` (default: the data home's
    ``models/<dataset>/``). ``refit``: then train again on every interaction for the epochs early
    stopping chose, and save that model; metrics.json keeps the held-out run's figures (the
    refit model has seen the test part, so ``evaluate_recommender`` refuses it). For small
    datasets, a conversation graph above all: a user of three films keeps one for training.
    """
    config, split = config or TrainConfig(), split or SplitConfig()
    data = datasets.load(dataset, home)
    parts = make_split(data, split)
    log.info("%s: %d train / %d valid / %d test interactions", dataset,
             parts.train.n_interactions, parts.valid.n_interactions, parts.test.n_interactions)
    result = train_lightgcn(parts, config, progress=progress)
    metrics = {
        "dataset": dataset,
        "data": parts.train.summary() | {"interactions": data.n_interactions},
        "split": split.model_dump(),
        "config": config.model_dump(),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.train_seconds, 2),
        "best_valid": result.best_valid,
        "test": evaluate_test(result.model, parts),
        "curve": result.curve,
    }
    if refit:
        parts = refit_split(data)
        epochs = max(result.best_epoch, 1)
        log.info("%s: training again on all %d interactions for %d epochs", dataset, data.n_interactions, epochs)
        result = train_lightgcn(parts, config.model_copy(update={"epochs": epochs}), progress=progress)
        metrics |= {"refit": {"epochs": epochs, "interactions": data.n_interactions,
                              "train_seconds": round(result.train_seconds, 2)}}
    recommender = GraphRecommender.from_model(result.model, parts.train_matrix(), parts.train.user_ids,
                                              parts.train.item_ids, dataset, config, metrics, split)
    out_dir = out_dir or model_dir(dataset, home)
    recommender.save(out_dir / MODEL_FILE)
    write_json(out_dir / METRICS_FILE, metrics)
    log.info("saved %s and %s in %s", MODEL_FILE, METRICS_FILE, out_dir)
    return recommender, metrics


def load_recommender(dataset: str = datasets.DEFAULT_DATASET, model_path: Path | None = None,
                     home: Path | None = None) -> GraphRecommender:
    return GraphRecommender.load(model_path or model_dir(dataset, home) / MODEL_FILE)


def model_split(recommender: GraphRecommender, home: Path | None = None, progress: bool = True):
    """(the dataset, the split the saved model was trained on), re-created from the model's seed;
    DataError when the data no longer matches the model's ids. Bridged cold items, appended
    after the trained ones, are not the data's and are not compared."""
    if recommender.metrics.get("refit"):
        raise DataError(f"the {recommender.dataset} model was trained again on every interaction (--refit), its "
                        f"test part included: its held-out figures are the ones in metrics.json")
    data = datasets.load(recommender.dataset, home, progress=progress)
    parts = make_split(data, recommender.split)
    trained = len(parts.train.item_ids)
    if ([str(i) for i in parts.train.item_ids] != [str(i) for i in recommender.item_ids[:trained]]
            or recommender.bridged_[:trained].any() or not recommender.bridged_[trained:].all()
            or [str(u) for u in parts.train.user_ids] != [str(u) for u in recommender.user_ids]):
        raise DataError(f"the {recommender.dataset} data no longer matches the saved model's ids: retrain it")
    return data, parts


def evaluate_recommender(recommender: GraphRecommender, home: Path | None = None) -> dict[str, float]:
    """Test metrics of a saved model, on the split it was trained with (re-created from its seed)."""
    _, parts = model_split(recommender, home)
    users = torch.from_numpy(recommender.user_factors_)
    items = torch.from_numpy(recommender.item_factors_)
    seen = (parts.train_matrix() + parts.valid_matrix()).tocsr()
    return evaluate_ranking(lambda batch: users[batch] @ items.T, parts.test_matrix(), exclude=seen)


def most_popular_metrics(dataset_split) -> dict[str, float]:
    """Most-popular baseline on a split: every user gets the training-popularity order."""
    popularity = torch.from_numpy(np.asarray(dataset_split.train_matrix().sum(axis=0)).ravel().astype(np.float32))
    seen = (dataset_split.train_matrix() + dataset_split.valid_matrix()).tocsr()
    return evaluate_ranking(lambda batch: popularity.expand(len(batch), -1), dataset_split.test_matrix(), exclude=seen)
