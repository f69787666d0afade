"""BinLLM's collaborative field for prompts: every user and item of the graph model as a
dot-decimal code (``"91.200.3.17"``), so a plain-text LLM sees collaborative signal.

The codes come from :class:`recsys.binary_codes.BinaryCoder` fitted on the saved LightGCN's
embeddings and its training interactions only (never validation or test). They are fitted once
per model and kept in ``<data home>/tune/binary_codes.pt`` (temp file, then rename); a file made
for another model (other users or items) is fitted again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prompts import read_prompt
from recsys.binary_codes import BinaryCoder, dot_decimal
from recsys.io import atomic_path

log = logging.getLogger(__name__)

CODES_FILE = "tune/binary_codes.pt"
N_BITS = 32  # four dot-separated numbers, like an IPv4 address (BinLLM's compressed form)
EPOCHS = 30


@dataclass
class CollabCodes:
    users: dict[str, str]  # dataset user id -> "a.b.c.d"
    items: dict[str, str]  # dataset item id -> "a.b.c.d"
    note: str  # one sentence for a system prompt: what the codes are

    def user(self, user_id: str) -> str:
        return self.users[str(user_id)]

    def item(self, item_id: str) -> str:
        return self.items[str(item_id)]

    def field(self, user_id: str, item_ids) -> tuple[str, str, list[str]]:
        """The re-rank prompt's ``codes`` (tools.rerank.Codes) for one person and their candidates."""
        return self.note, self.user(user_id), [self.item(i) for i in item_ids]


def _fingerprint(recommender) -> dict:
    return {"users": int(recommender.n_users), "items": int(recommender.n_items),
            "interactions": int(recommender.train_.nnz), "dataset": str(recommender.dataset)}


def fit_coder(recommender, n_bits: int = N_BITS, seed: int = 0, epochs: int = EPOCHS) -> BinaryCoder:
    """The sign projection of BinLLM, fitted on the graph's embeddings and training pairs."""
    pairs = recommender.train_.tocoo()
    return BinaryCoder(n_bits=n_bits, seed=seed).fit(recommender.user_factors_, recommender.item_factors_,
                                                     pairs.row, pairs.col, epochs=epochs)


def load_codes(recommender, home: Path) -> CollabCodes:
    """The model's codes, fitted (seed 0) and saved on first use (a few seconds on ml-100k)."""
    import torch

    path = Path(home) / CODES_FILE
    state = None
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            state = saved["coder"] if saved.get("model") == _fingerprint(recommender) else None
            if state is None:
                log.info("%s was made for another model; fitting the codes again", path)
        except Exception as exc:  # noqa: BLE001 - a damaged file is refitted, never trusted
            log.warning("could not read %s (%s); fitting the codes again", path, exc)
    if state is None:
        coder = fit_coder(recommender)
        with atomic_path(path) as tmp:
            torch.save({"coder": coder.state_dict(), "model": _fingerprint(recommender)}, tmp)
        log.info("BinLLM codes fitted (%d bits) and saved to %s", coder.n_bits, path)
    else:
        coder = BinaryCoder.from_state_dict(state)
    users = dot_decimal(coder.encode_users(recommender.user_factors_))
    items = dot_decimal(coder.encode_items(recommender.item_factors_))
    return CollabCodes(users=dict(zip(map(str, recommender.user_ids), users)),
                       items=dict(zip(map(str, recommender.item_ids), items)),
                       note=read_prompt("codes_note.txt").strip())


def hamming_auc(codes: CollabCodes, recommender, pairs: np.ndarray, seed: int = 0) -> float:
    """How often a held-out (user, item) pair's codes are closer than a random item's: 0.5 = no signal."""
    rng = np.random.default_rng(seed)

    def bits(code: str) -> np.ndarray:
        return np.unpackbits(np.array([int(x) for x in code.split(".")], dtype=np.uint8))

    wins = 0.0
    for u, i in pairs:
        j = int(rng.integers(recommender.n_items))
        hu = bits(codes.user(recommender.user_ids[u]))
        d_pos = int((hu != bits(codes.item(recommender.item_ids[i]))).sum())
        d_neg = int((hu != bits(codes.item(recommender.item_ids[j]))).sum())
        wins += 1.0 if d_pos < d_neg else 0.5 if d_pos == d_neg else 0.0
    return wins / max(1, len(pairs))


def validation_auc(codes: CollabCodes, recommender, valid, seed: int = 0, pairs: int = 2000) -> float:
    """:func:`hamming_auc` on a seeded sample of at most ``pairs`` (user, item) pairs of ``valid``
    (a sparse matrix over the graph's users and items, e.g. the validation split)."""
    valid = valid.tocoo()
    pick = np.random.default_rng(seed).choice(valid.nnz, min(pairs, valid.nnz), replace=False)
    return hamming_auc(codes, recommender, np.c_[valid.row[pick], valid.col[pick]], seed)


__all__ = ["CODES_FILE", "CollabCodes", "fit_coder", "hamming_auc", "load_codes", "validation_auc"]
