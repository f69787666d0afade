"""The cold-start bridge: an item's text embedding -> its LightGCN embedding.

RLMRec / CLLM4Rec's idea in its plainest form: items with interactions ("warm") have
both a text vector (a sentence embedding of title, year, genres, ...) and a graph vector
(their final propagated LightGCN embedding). A regression fitted on the warm items maps
the text of a new item, which has no interactions, into the graph's space, where the
graph recommender can score it against users like any other item
(``GraphRecommender.with_items``).

Two regressors, chosen by ``BridgeConfig.kind``:

``ridge`` (default)
    Closed-form multi-output ridge with an unpenalised intercept. ``alpha`` is chosen
    from ``alphas`` by the mean squared error on a seeded validation share of the warm
    items, then the map is refitted on all of them.
``mlp``
    One hidden layer (GELU, dropout), full-batch Adam on the squared error; the epoch
    count is chosen by early stopping on the same validation share, then the network is
    refitted on all warm items for that many epochs.

On ml-100k cold items the two rank equally well (bench/cold_start_bridge.py: NDCG@20
0.3605 ridge vs 0.3608 MLP over three hold-out seeds, ridge ahead on the development
seed that chose it), so ridge is the default: closed form, no training noise, ~50x
faster to fit. Everything is seeded and deterministic; NumPy arrays in and out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from recsys.io import atomic_path
from recsys.train import read_checkpoint

BRIDGE_VERSION = 1


class BridgeConfig(BaseModel):
    """How the bridge is fitted. Validation is always on warm items, never on cold ones."""

    kind: Literal["ridge", "mlp"] = "ridge"
    alphas: tuple[float, ...] = Field((0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
                                      description="ridge penalties tried (on the centred inputs)")
    valid_fraction: float = Field(0.15, gt=0, lt=1, description="share of warm items held out to choose "
                                  "alpha / the MLP's epoch count")
    seed: int = 0
    # MLP only
    hidden: int = Field(512, gt=0)
    dropout: float = Field(0.2, ge=0, lt=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0, description="AdamW decoupled weight decay")
    max_epochs: int = Field(2000, gt=0)
    patience: int = Field(100, ge=1, description="epochs without validation improvement before stopping")


class BridgeError(ValueError):
    """Inputs the bridge cannot use (shapes, non-finite values, not fitted)."""


def _as_matrix(name: str, values: np.ndarray, width: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise BridgeError(f"{name} must be a 2-d array (rows = items), got shape {array.shape}")
    if width is not None and array.shape[1] != width:
        raise BridgeError(f"{name} has {array.shape[1]} columns, the bridge was fitted on {width}")
    if not np.all(np.isfinite(array)):
        raise BridgeError(f"{name} has NaN or infinite values")
    return array


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W, x_mean, y_mean) minimising ||(x - x_mean) W - (y - y_mean)||^2 + alpha ||W||^2."""
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc
    gram[np.diag_indices_from(gram)] += alpha
    return np.linalg.solve(gram, xc.T @ yc), x_mean, y_mean


class _MLP(torch.nn.Module):
    def __init__(self, n_in: int, n_hidden: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(n_in, n_hidden), torch.nn.GELU(),
                                       torch.nn.Dropout(dropout), torch.nn.Linear(n_hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TextGraphBridge:
    """Fit on warm items (text vector -> graph vector), predict graph vectors for new items."""

    def __init__(self, config: BridgeConfig | None = None) -> None:
        self.config = config or BridgeConfig()
        self.alpha_: float | None = None  # ridge: the chosen penalty
        self.epochs_: int | None = None  # mlp: the chosen epoch count
        self.validation_: dict[str, float] = {}  # validation MSE per candidate (alpha or "epochs")
        self.valid_mse_: float | None = None  # the chosen candidate's validation MSE
        self.n_fitted_: int = 0
        self._in_dim: int | None = None
        self._out_dim: int | None = None
        # ridge parameters
        self._weights: np.ndarray | None = None
        self._x_mean: np.ndarray | None = None
        self._y_mean: np.ndarray | None = None
        # mlp parameters (target standardisation + network)
        self._mlp: _MLP | None = None
        self._y_scale: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self._in_dim is not None

    # fitting -------------------------------------------------------------------------------
    def _validation_split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        n_valid = int(round(self.config.valid_fraction * n))
        if n_valid < 1 or n - n_valid < 2:
            raise BridgeError(f"{n} warm items are too few to hold out {self.config.valid_fraction:.0%} "
                              "for validation")
        order = np.random.default_rng(self.config.seed).permutation(n)
        return np.sort(order[n_valid:]), np.sort(order[:n_valid])

    def fit(self, text_vectors: np.ndarray, graph_vectors: np.ndarray) -> TextGraphBridge:
        """Fit on warm items: row ``i`` of both arrays describes the same item."""
        x = _as_matrix("text_vectors", text_vectors)
        y = _as_matrix("graph_vectors", graph_vectors)
        if len(x) != len(y):
            raise BridgeError(f"{len(x)} text vectors but {len(y)} graph vectors: rows must pair up")
        train, valid = self._validation_split(len(x))
        if self.config.kind == "ridge":
            self._fit_ridge(x, y, train, valid)
        else:
            self._fit_mlp(x, y, train, valid)
        self._in_dim, self._out_dim, self.n_fitted_ = x.shape[1], y.shape[1], len(x)
        return self

    def _fit_ridge(self, x: np.ndarray, y: np.ndarray, train: np.ndarray, valid: np.ndarray) -> None:
        if not self.config.alphas or min(self.config.alphas) < 0:
            raise BridgeError(f"alphas must be non-negative and at least one, got {self.config.alphas}")
        self.validation_ = {}
        for alpha in self.config.alphas:
            w, xm, ym = _ridge(x[train], y[train], alpha)
            self.validation_[f"{alpha:g}"] = float((((x[valid] - xm) @ w + ym - y[valid]) ** 2).mean())
        best = min(self.config.alphas, key=lambda a: (self.validation_[f"{a:g}"], a))
        self.alpha_, self.valid_mse_ = float(best), self.validation_[f"{best:g}"]
        self._weights, self._x_mean, self._y_mean = _ridge(x, y, best)

    def _train_mlp(self, x: np.ndarray, y: np.ndarray, epochs: int,
                   valid: tuple[np.ndarray, np.ndarray] | None) -> tuple[_MLP, int, float]:
        """Full-batch training; with ``valid``, stop early and return the best epoch's net."""
        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            net = _MLP(x.shape[1], cfg.hidden, y.shape[1], cfg.dropout)
            optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
            xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
            if valid is not None:
                xv, yv = (torch.as_tensor(a, dtype=torch.float32) for a in valid)
            best, best_epoch, best_state = np.inf, 0, None
            for epoch in range(1, epochs + 1):
                net.train()
                loss = torch.nn.functional.mse_loss(net(xt), yt)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if valid is None:
                    continue
                net.eval()
                with torch.no_grad():
                    mse = float(torch.nn.functional.mse_loss(net(xv), yv))
                if mse < best:
                    best, best_epoch = mse, epoch
                    best_state = {k: v.clone() for k, v in net.state_dict().items()}
                elif epoch - best_epoch >= cfg.patience:
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
        net.eval()
        return net, best_epoch or epochs, float(best)

    def _fit_mlp(self, x: np.ndarray, y: np.ndarray, train: np.ndarray, valid: np.ndarray) -> None:
        # Standardise the targets per dimension so every output dimension weighs the same
        # in the loss (ridge is invariant to this; the MLP is not).
        self._y_mean, self._y_scale = y.mean(axis=0), y.std(axis=0) + 1e-8
        ys = (y - self._y_mean) / self._y_scale
        net, epochs, _ = self._train_mlp(x[train], ys[train], self.config.max_epochs, (x[valid], ys[valid]))
        self.epochs_ = epochs
        with torch.no_grad():  # validation MSE in the targets' own units, comparable with ridge's
            pred = net(torch.as_tensor(x[valid], dtype=torch.float32)).double().numpy()
        self.valid_mse_ = float(((pred * self._y_scale + self._y_mean - y[valid]) ** 2).mean())
        self.validation_ = {"epochs": float(epochs), "mse": self.valid_mse_}
        self._mlp, _, _ = self._train_mlp(x, ys, epochs, None)

    # predicting ----------------------------------------------------------------------------
    def predict(self, text_vectors: np.ndarray) -> np.ndarray:
        """Graph vectors (float32, one row per input row) for items known only by their text."""
        if not self.fitted:
            raise BridgeError("the bridge is not fitted: call fit(text_vectors, graph_vectors) first")
        x = _as_matrix("text_vectors", text_vectors, self._in_dim)
        if self.config.kind == "ridge":
            out = (x - self._x_mean) @ self._weights + self._y_mean
        else:
            with torch.no_grad():
                out = self._mlp(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
            out = out * self._y_scale + self._y_mean
        return out.astype(np.float32)

    # persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """One ``.pt`` file (tensors and plain values, loadable with ``weights_only``), atomically."""
        if not self.fitted:
            raise BridgeError("the bridge is not fitted: nothing to save")
        path = Path(path)
        arrays = {"y_mean": self._y_mean}
        if self.config.kind == "ridge":
            arrays |= {"weights": self._weights, "x_mean": self._x_mean}
        else:
            arrays |= {"y_scale": self._y_scale}
        payload = {
            "version": BRIDGE_VERSION,
            "config": json.dumps(self.config.model_dump()),
            "meta": json.dumps({"in_dim": self._in_dim, "out_dim": self._out_dim, "alpha": self.alpha_,
                                "epochs": self.epochs_, "validation": self.validation_,
                                "valid_mse": self.valid_mse_, "n_fitted": self.n_fitted_}),
            "arrays": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
            "mlp": None if self._mlp is None else self._mlp.state_dict(),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TextGraphBridge:
        payload = read_checkpoint(Path(path), BRIDGE_VERSION, "bridge file", "fit the bridge again", BridgeError)
        bridge = cls(BridgeConfig(**json.loads(payload["config"])))
        meta = json.loads(payload["meta"])
        arrays = {k: v.numpy() for k, v in payload["arrays"].items()}
        bridge._in_dim, bridge._out_dim = meta["in_dim"], meta["out_dim"]
        bridge.alpha_, bridge.epochs_ = meta["alpha"], meta["epochs"]
        bridge.validation_, bridge.valid_mse_ = meta["validation"], meta["valid_mse"]
        bridge.n_fitted_ = meta["n_fitted"]
        bridge._y_mean = arrays["y_mean"]
        if bridge.config.kind == "ridge":
            bridge._weights, bridge._x_mean = arrays["weights"], arrays["x_mean"]
        else:
            bridge._y_scale = arrays["y_scale"]
            bridge._mlp = _MLP(meta["in_dim"], bridge.config.hidden, meta["out_dim"], bridge.config.dropout)
            bridge._mlp.load_state_dict(payload["mlp"])
            bridge._mlp.eval()
        return bridge
