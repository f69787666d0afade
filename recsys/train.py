"""Training LightGCN with BPR: vectorised negative sampling, early stopping, atomic checkpoints."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from recsys.lightgcn import LightGCN
from recsys.metrics import evaluate_ranking
from recsys.split import Split
from recsys.train_config import TrainConfig  # its home; imported from here too

log = logging.getLogger(__name__)


class NegativeSampler:
    """Uniform negatives that are not among the user's training positives, fully vectorised."""

    def __init__(self, train: sp.csr_matrix, rng: np.random.Generator, max_rounds: int = 50) -> None:
        coo = train.tocoo()
        self.n_items = train.shape[1]
        self.positive_keys = np.unique(coo.row.astype(np.int64) * self.n_items + coo.col)
        self.rng = rng
        self.max_rounds = max_rounds

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items
        where = np.searchsorted(self.positive_keys, keys)
        where[where == len(self.positive_keys)] = 0
        return self.positive_keys[where] == keys

    def sample(self, users: np.ndarray) -> np.ndarray:
        items = self.rng.integers(0, self.n_items, len(users))
        redo = np.flatnonzero(self._is_positive(users, items))
        # Each round re-draws only the collisions; users who liked (almost) every item
        # would never finish, so after max_rounds the rare leftovers are kept as they are.
        for _ in range(self.max_rounds):
            if len(redo) == 0:
                break
            items[redo] = self.rng.integers(0, self.n_items, len(redo))
            redo = redo[self._is_positive(users[redo], items[redo])]
        return items


@dataclass
class TrainResult:
    model: LightGCN
    best_epoch: int
    epochs_run: int
    best_valid: dict[str, float]
    train_seconds: float
    curve: list[dict] = field(default_factory=list)  # one entry per evaluation
    epoch_seconds: list[float] = field(default_factory=list)  # optimisation only, no validation


# Called after each validation with (epoch, training seconds so far, model); its time is
# not counted as training time (benchmarks use it to track test metrics over time).
Monitor = Callable[[int, float, LightGCN], dict | None]


def scorer(model: LightGCN) -> Callable[[torch.Tensor], torch.Tensor]:
    """Score function for ``evaluate_ranking``: propagates once, then inner products."""
    with torch.no_grad():
        users, items = model.propagated()
    users, items = users.cpu(), items.cpu()
    return lambda batch: users[batch] @ items.T


def train_lightgcn(split: Split, config: TrainConfig | None = None, progress: bool = True,
                   monitor: Monitor | None = None) -> TrainResult:
    """Train on ``split.train``, early-stop on ``split.valid``; returns the best model. With no
    validation interactions (:func:`refit_split`), it trains for ``config.epochs`` and returns
    the last epoch's model."""
    config = config or TrainConfig()
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.deterministic)
    try:
        return _train(split, config, progress, monitor)
    finally:
        torch.use_deterministic_algorithms(previous)


def _train(split: Split, config: TrainConfig, progress: bool, monitor: Monitor | None) -> TrainResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train = split.train_matrix()
    valid = split.valid_matrix()
    model = LightGCN(split.n_users, split.n_items, config.dim, config.n_layers, config.seed)
    model.to(config.device)
    model.set_graph(train)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    sampler = NegativeSampler(train, rng)
    coo = train.tocoo()
    pairs_u, pairs_i = coo.row.astype(np.int64), coo.col.astype(np.int64)
    n_batches = -(-len(pairs_u) // config.batch_size)

    best_score, best_epoch, best_state, best_valid = -np.inf, 0, None, {}
    curve: list[dict] = []
    stale, epoch, train_seconds = 0, 0, 0.0
    epoch_seconds: list[float] = []
    # disable=None: draw on a terminal only, so logs and CI output stay readable
    bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch", disable=None if progress else True)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        order = rng.permutation(len(pairs_u))
        users, pos = pairs_u[order], pairs_i[order]
        neg = sampler.sample(users)
        total = 0.0
        for b in range(n_batches):
            sl = slice(b * config.batch_size, (b + 1) * config.batch_size)
            u = torch.from_numpy(users[sl]).to(config.device)
            p = torch.from_numpy(pos[sl]).to(config.device)
            n = torch.from_numpy(neg[sl]).to(config.device)
            bpr, reg = model.bpr_loss(u, p, n, config.reg_weight, config.reg_form)
            loss = bpr + reg
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        epoch_seconds.append(time.perf_counter() - started)
        if not valid.nnz:  # a refit: nothing held out to stop on
            train_seconds += time.perf_counter() - started
            best_epoch = epoch
            bar.set_postfix(loss=f"{total / n_batches:.4f}")
        elif epoch % config.eval_every == 0 or epoch == config.epochs:
            model.eval()
            metrics = evaluate_ranking(scorer(model), valid, exclude=train)
            train_seconds += time.perf_counter() - started
            score = metrics[config.valid_metric]
            entry = {"epoch": epoch, "train_s": round(train_seconds, 3), "loss": total / n_batches,
                     f"valid_{config.valid_metric}": score}
            if monitor is not None:
                entry.update(monitor(epoch, train_seconds, model) or {})
            curve.append(entry)
            if score > best_score:
                best_score, best_epoch, best_valid, stale = score, epoch, metrics, 0
                best_state = copy.deepcopy(model.embedding.detach().cpu())
            else:
                stale += 1
            bar.set_postfix(loss=f"{total / n_batches:.4f}", **{config.valid_metric: f"{score:.4f}"},
                            best=best_epoch)
            if progress and bar.disable and len(curve) % 10 == 1:  # no terminal: a log line instead
                log.info("epoch %d: loss %.4f, valid %s %.4f (best epoch %d), %.1f s",
                         epoch, total / n_batches, config.valid_metric, score, best_epoch, train_seconds)
            if stale >= config.patience:
                log.info("early stop at epoch %d (best %d, %s %.4f)", epoch, best_epoch,
                         config.valid_metric, best_score)
                break
        else:
            train_seconds += time.perf_counter() - started
    bar.close()
    if best_state is not None:
        with torch.no_grad():
            model.embedding.copy_(best_state.to(config.device))
    model.eval()
    return TrainResult(model, best_epoch, epoch, best_valid, train_seconds, curve, epoch_seconds)


def evaluate_test(model: LightGCN, split: Split) -> dict[str, float]:
    """Full-sort test metrics, masking train and validation items (RecBole's protocol)."""
    seen = (split.train_matrix() + split.valid_matrix()).tocsr()
    return evaluate_ranking(scorer(model), split.test_matrix(), exclude=seen)


def read_checkpoint(path: Path, version: int, what: str, remedy: str,
                    error: type[Exception] = ValueError) -> dict:
    """A ``torch.save``d dict written through :func:`recsys.io.atomic_path`, checked: missing →
    FileNotFoundError, unreadable or another format → ``error`` saying what to do."""
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}: {remedy}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        found = payload["version"]
    except Exception as exc:  # a truncated or foreign file: say which and what to do
        raise error(f"{what} {path} is unreadable ({exc}); delete it and {remedy}") from exc
    if found != version:
        raise error(f"{what} {path} has format {found}, this version reads {version}: {remedy}")
    return payload
