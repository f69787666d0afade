"""BinLLM text-like codes for collaborative embeddings.

BinLLM (Zhang et al., "Text-like Encoding of Collaborative Information in
Large Language Models for Recommendation") turns a collaborative model's
embeddings into bit strings an LLM can read as plain text:

    h = sign(sigma(W e + b))        (one fully connected layer, then sign)

with the same ``W, b`` for users and items, trained on the interaction labels
by minimising ``l(t, h_u^T h_i)``; the sign gets a straight-through estimator
("the gradient of the output is used directly as the gradient of the sign's
input").  Read literally ``sign(sigma(.))`` is always +1, so the sign is taken
around sigmoid's midpoint: ``h = sign(sigma(z) - 1/2)``, i.e. bit = ``z >= 0``.
Training scores use ``h`` in {-1, +1}; the text uses {0, 1} (``+1 -> 1``).

Here the collaborative model (our LightGCN) is already trained and frozen; only
the projection is fitted.  Loss: binary cross-entropy on
``logit = a * (h_u . h_i) / n_bits + c`` (``a > 0`` and ``c`` learned scalars),
one uniformly sampled negative item per observed positive.  For +-1 codes
``h_u . h_i = n_bits - 2 * hamming(h_u, h_i)``, so ranking by the score is
ranking by (negative) Hamming distance.

Text forms: ``binary_code`` gives ``"01011011..."``; ``dot_decimal`` packs
each 8 bits (most significant first) into 0-255 and joins with dots, like an
IPv4 address (``"91.200"``).  ``dot_decimal`` refuses a length that is not a
multiple of 8 (ValueError) rather than padding silently; pick ``n_bits`` as a
multiple of 8 when the dotted form is wanted.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import torch

__all__ = ["BinaryCoder", "binary_code", "dot_decimal", "to_bits", "ste_sign"]


# ---------------------------------------------------------------- text forms


def to_bits(bits_or_vector: Any) -> np.ndarray:
    """A bit vector (or a 2-D batch of them) as uint8 {0, 1}.

    Accepts booleans, {0, 1} or {-1, +1} numbers (numpy, torch or lists).
    Anything else -- real-valued embeddings, a mix of -1 and 0, NaN -- is a
    ValueError: binarising raw embeddings is ``BinaryCoder``'s job.
    """
    if isinstance(bits_or_vector, torch.Tensor):
        bits_or_vector = bits_or_vector.detach().cpu().numpy()
    a = np.asarray(bits_or_vector)
    if a.ndim not in (1, 2) or a.shape[-1] == 0:
        raise ValueError(f"expected a non-empty 1-D bit vector or a 2-D batch, got shape {a.shape}")
    if a.dtype == bool:
        return a.astype(np.uint8)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"bits must be boolean or numeric, got dtype {a.dtype}")
    has_neg = bool((a == -1).any())
    has_zero = bool((a == 0).any())
    ok = (a == 1) | (a == -1) | (a == 0)
    if not ok.all() or (has_neg and has_zero):
        raise ValueError("bits must be all in {0, 1} or all in {-1, +1} (or boolean)")
    return (a == 1).astype(np.uint8)


def binary_code(bits_or_vector: Any) -> str | list[str]:
    """``"0101..."`` for a bit vector; a list of strings for a 2-D batch."""
    bits = to_bits(bits_or_vector)
    chars = (bits + ord("0")).astype(np.uint8)
    if bits.ndim == 1:
        return chars.tobytes().decode("ascii")
    return [row.tobytes().decode("ascii") for row in chars]


def dot_decimal(bits_or_vector: Any) -> str | list[str]:
    """Every 8 bits (MSB first) as a number 0-255, dot-joined: ``"91.200.3.17"``.

    The length must be a multiple of 8, else ValueError (no silent padding).
    A 2-D batch gives a list of strings.
    """
    bits = to_bits(bits_or_vector)
    n = bits.shape[-1]
    if n % 8:
        raise ValueError(f"dot_decimal needs a multiple of 8 bits, got {n}")
    packed = np.packbits(bits, axis=-1)  # big-endian bit order: first bit is the MSB
    if bits.ndim == 1:
        return ".".join(map(str, packed.tolist()))
    return [".".join(map(str, row)) for row in packed.tolist()]


# ---------------------------------------------------------------- training


class _SignSTE(torch.autograd.Function):
    """Forward: +1 where x >= 0 else -1.  Backward: identity (straight-through)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def ste_sign(x: torch.Tensor) -> torch.Tensor:
    return _SignSTE.apply(x)


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x), dtype=torch.float32)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has non-finite values")
    return t


class BinaryCoder:
    """Learned sign projection from collaborative embeddings to ``n_bits`` bits.

    ``shared=True`` (the BinLLM note: one ``W, b`` for users and items) or
    ``shared=False`` for separate user / item layers.  Inputs are divided by a
    single scalar (the RMS of all training embeddings, stored in the state) so
    the learning rate does not depend on the embedding scale.
    """

    def __init__(self, n_bits: int = 32, seed: int = 0, shared: bool = True):
        if int(n_bits) <= 0:
            raise ValueError("n_bits must be positive")
        self.n_bits = int(n_bits)
        self.seed = int(seed)
        self.shared = bool(shared)
        self.params: dict[str, torch.Tensor] | None = None
        self.input_scale = 1.0
        self.history: list[float] = []

    # -- parameters

    def _init_params(self, d_user: int, d_item: int) -> None:
        g = torch.Generator().manual_seed(self.seed)

        def layer(d: int) -> tuple[torch.Tensor, torch.Tensor]:
            w = torch.randn(self.n_bits, d, generator=g) / math.sqrt(d)
            return w, torch.zeros(self.n_bits)

        p: dict[str, torch.Tensor] = {}
        p["W_user"], p["b_user"] = layer(d_user)
        if not self.shared:
            p["W_item"], p["b_item"] = layer(d_item)
        p["log_a"] = torch.tensor(math.log(5.0))
        p["c"] = torch.tensor(0.0)
        self.params = p

    def _layer(self, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.params is None:
            raise RuntimeError("BinaryCoder is not fitted (call fit, or from_state_dict)")
        key = "user" if (self.shared or side == "user") else "item"
        return self.params[f"W_{key}"], self.params[f"b_{key}"]

    def _signs(self, emb: torch.Tensor, side: str) -> torch.Tensor:
        """+-1 codes with the STE in the graph: sign(sigmoid(W e + b) - 1/2)."""
        w, b = self._layer(side)
        z = (emb / self.input_scale) @ w.T + b
        return ste_sign(torch.sigmoid(z) - 0.5)

    # -- fitting

    def fit(
        self,
        user_emb: np.ndarray | torch.Tensor,
        item_emb: np.ndarray | torch.Tensor,
        users: np.ndarray,
        items: np.ndarray,
        epochs: int = 50,
        lr: float = 0.01,
        batch_size: int = 1024,
        progress: bool = False,
    ) -> "BinaryCoder":
        """Fit on observed positive ``(users[k], items[k])`` pairs.

        Each positive is paired with one item drawn uniformly (a false negative
        now and then is accepted, as in BPR-style sampling).  ``epochs=0``
        only initialises: the untrained, random-hyperplane coder.
        """
        U = _as_tensor(user_emb, "user_emb")
        V = _as_tensor(item_emb, "item_emb")
        if self.shared and U.shape[1] != V.shape[1]:
            raise ValueError(f"shared projection needs equal dims, got {U.shape[1]} and {V.shape[1]}")
        u = torch.as_tensor(np.asarray(users), dtype=torch.long).reshape(-1)
        i = torch.as_tensor(np.asarray(items), dtype=torch.long).reshape(-1)
        if u.numel() == 0 or u.shape != i.shape:
            raise ValueError("users and items must be non-empty and of equal length")
        if u.min() < 0 or u.max() >= U.shape[0] or i.min() < 0 or i.max() >= V.shape[0]:
            raise ValueError("user or item index out of range")
        if epochs < 0 or batch_size <= 0 or lr <= 0:
            raise ValueError("epochs >= 0, batch_size > 0 and lr > 0 are required")

        rms = torch.cat([U.reshape(-1), V.reshape(-1)]).pow(2).mean().sqrt().item()
        self.input_scale = rms if rms > 0 else 1.0
        self._init_params(U.shape[1], V.shape[1])
        assert self.params is not None
        for t in self.params.values():
            t.requires_grad_(True)
        opt = torch.optim.Adam(list(self.params.values()), lr=lr)
        g = torch.Generator().manual_seed(self.seed + 1)
        n, n_items = u.numel(), V.shape[0]
        self.history = []
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=g)
            neg_all = torch.randint(0, n_items, (n,), generator=g)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                bu, bp, bn = u[idx], i[idx], neg_all[start : start + batch_size]
                hu = self._signs(U[bu], "user")
                hp = self._signs(V[bp], "item")
                hn = self._signs(V[bn], "item")
                a, c = self.params["log_a"].exp(), self.params["c"]
                pos = a * (hu * hp).sum(1) / self.n_bits + c
                neg = a * (hu * hn).sum(1) / self.n_bits + c
                loss = torch.nn.functional.softplus(-pos).mean() + torch.nn.functional.softplus(neg).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * idx.numel()
            self.history.append(total / n)
            if progress:
                print(f"binary codes epoch {epoch + 1}/{epochs}: loss {self.history[-1]:.4f}", file=sys.stderr)
        for t in self.params.values():
            t.requires_grad_(False)
        return self

    # -- encoding

    def _encode(self, emb: Any, side: str) -> np.ndarray:
        e = torch.as_tensor(np.asarray(emb.detach().cpu() if isinstance(emb, torch.Tensor) else emb), dtype=torch.float32)
        one = e.ndim == 1
        e = e.reshape(1, -1) if one else e
        w, _ = self._layer(side)
        if e.ndim != 2 or e.shape[1] != w.shape[1]:
            raise ValueError(f"{side} embeddings must have {w.shape[1]} columns, got shape {tuple(e.shape)}")
        with torch.no_grad():
            bits = (self._signs(e, side) > 0).numpy().astype(np.uint8)
        return bits[0] if one else bits

    def encode_users(self, emb: Any) -> np.ndarray:
        """uint8 {0, 1} bits, shape (n, n_bits) (or (n_bits,) for one 1-D embedding)."""
        return self._encode(emb, "user")

    def encode_items(self, emb: Any) -> np.ndarray:
        return self._encode(emb, "item")

    def user_code(self, emb: Any, dotted: bool = False) -> str | list[str]:
        bits = self.encode_users(emb)
        return dot_decimal(bits) if dotted else binary_code(bits)

    def item_code(self, emb: Any, dotted: bool = False) -> str | list[str]:
        bits = self.encode_items(emb)
        return dot_decimal(bits) if dotted else binary_code(bits)

    @staticmethod
    def score(user_bits: np.ndarray, item_bits: np.ndarray) -> np.ndarray:
        """``h_u . h_i`` in +-1 space (= n_bits - 2 * Hamming) for all pairs: (n_u, n_i)."""
        su = 2 * np.atleast_2d(user_bits).astype(np.int32) - 1
        si = 2 * np.atleast_2d(item_bits).astype(np.int32) - 1
        return su @ si.T

    # -- persistence

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain numbers only, so ``torch.load(weights_only=True)`` reads it."""
        if self.params is None:
            raise RuntimeError("BinaryCoder is not fitted")
        return {
            "n_bits": self.n_bits,
            "seed": self.seed,
            "shared": self.shared,
            "input_scale": float(self.input_scale),
            "params": {k: v.detach().clone() for k, v in self.params.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "BinaryCoder":
        coder = cls(n_bits=state["n_bits"], seed=state["seed"], shared=state["shared"])
        coder.input_scale = float(state["input_scale"])
        coder.params = {k: torch.as_tensor(v, dtype=torch.float32).clone() for k, v in state["params"].items()}
        return coder
