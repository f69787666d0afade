"""LightGCN (He et al., 2020) as XRec specifies it, trained with BPR.

Propagation: E^(l+1) = Â E^(l) with Â = D^-1/2 A D^-1/2 over the bipartite
user-item graph; the final embedding is the mean of layers 0..K; the score
is the inner product; the loss is BPR plus L2 on the batch's layer-0 rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def normalized_adjacency(interactions: sp.spmatrix) -> sp.csr_matrix:
    """Â = D^-1/2 [[0, R], [R^T, 0]] D^-1/2 for a binary ``n_users x n_items`` matrix R.

    Rows of isolated nodes stay zero (their degree is 0).
    """
    r = sp.csr_matrix(interactions, dtype=np.float32)
    r.sum_duplicates()
    r.data[:] = 1.0
    adj = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    np.power(degree, -0.5, out=inv_sqrt, where=degree > 0)
    d = sp.diags(inv_sqrt.astype(np.float32))
    return (d @ adj @ d).tocsr().astype(np.float32)


def to_torch_csr(matrix: sp.csr_matrix, device: str | torch.device = "cpu") -> torch.Tensor:
    matrix = matrix.tocsr()
    with warnings.catch_warnings():  # "CSR support is in beta": known, and the fastest CPU kernel
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)),
            size=matrix.shape, device=device, check_invariants=False,
        )


class _SymmetricSpMM(torch.autograd.Function):
    """y = Â x for a symmetric sparse Â; the backward is Â g with the same kernel.

    Autograd's own backward for CSR transposes the matrix on every call, which
    is several times slower than the forward; symmetry makes that unnecessary.
    """

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adj, grad)


def propagate(adj: torch.Tensor, embeddings: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Mean of layers 0..K of LightGCN propagation."""
    total = embeddings
    layer = embeddings
    for _ in range(n_layers):
        layer = _SymmetricSpMM.apply(adj, layer)
        total = total + layer
    return total / (n_layers + 1)


class LightGCN(nn.Module):
    """Layer-0 embeddings for users then items in one table; propagation on demand."""

    def __init__(self, n_users: int, n_items: int, dim: int = 64, n_layers: int = 3,
                 seed: int = 2020) -> None:
        super().__init__()
        self.n_users, self.n_items, self.dim, self.n_layers = n_users, n_items, dim, n_layers
        generator = torch.Generator().manual_seed(seed)
        # Xavier-uniform over the whole table, as the reference implementation does.
        bound = float(np.sqrt(6.0 / (n_users + n_items + dim)))
        weight = (torch.rand(n_users + n_items, dim, generator=generator) * 2 - 1) * bound
        self.embedding = nn.Parameter(weight)
        self.adj: torch.Tensor | None = None

    def set_graph(self, interactions: sp.spmatrix) -> None:
        """Build Â from the training interactions (``n_users x n_items``)."""
        if interactions.shape != (self.n_users, self.n_items):
            raise ValueError(f"graph shape {interactions.shape} does not match model "
                             f"({self.n_users} users, {self.n_items} items)")
        self.adj = to_torch_csr(normalized_adjacency(interactions), self.embedding.device)

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (user, item) embeddings."""
        if self.adj is None:
            raise RuntimeError("LightGCN has no graph: call set_graph(train_matrix) first")
        final = propagate(self.adj, self.embedding, self.n_layers)
        return final[: self.n_users], final[self.n_users:]

    def bpr_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                 reg_weight: float, reg_form: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
        """(BPR loss, L2 term) for a batch of (user, positive, negative) triples.

        ``reg_form="paper"``: the LightGCN paper's λ·Σ‖e⁰‖²/2 per batch row.
        ``reg_form="recbole"``: RecBole's EmbLoss as its LightGCN uses it (require_pow=False):
        λ·(‖U⁰‖_F + ‖P⁰‖_F + ‖N⁰‖_F)/B, unsquared norms of the batch matrices — a much
        weaker per-row penalty for the same λ; there only to compare like with like."""
        user_final, item_final = self.propagated()
        u, p, n = user_final[users], item_final[pos], item_final[neg]
        margin = (u * p).sum(1) - (u * n).sum(1)
        bpr = torch.nn.functional.softplus(-margin).mean()  # = -log sigmoid(margin)
        ego = self.embedding
        batch = (ego[users], ego[self.n_users + pos], ego[self.n_users + neg])
        if reg_form == "paper":
            l2 = sum(e.pow(2).sum() for e in batch) / (2 * len(users))
        elif reg_form == "recbole":
            l2 = sum(torch.linalg.norm(e) for e in batch) / len(users)
        else:
            raise ValueError(f"reg_form must be 'paper' or 'recbole', not {reg_form!r}")
        return bpr, reg_weight * l2
