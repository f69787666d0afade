"""The graph model's training hyper-parameters, apart from the training code so that reading
them (the CLI's option defaults) does not import torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TrainConfig(BaseModel):
    """Hyper-parameters. Defaults are our fast schedule for ml-100k-sized data on 2 cores:
    large batches with a higher learning rate propagate the graph far fewer times per
    epoch than RecBole's 4096 / 0.002 and converge in fewer epochs. The L2 weight is the
    LightGCN paper's (sum of squares / 2 per batch row); 1e-3 had the best validation
    NDCG@20 on ml-100k over 1e-4..3e-3 on two split seeds (bench/RESULTS.md)."""

    dim: int = Field(64, gt=0)
    n_layers: int = Field(3, ge=0)
    learning_rate: float = Field(0.01, gt=0)
    reg_weight: float = Field(1e-3, ge=0)
    reg_form: Literal["paper", "recbole"] = Field(
        "paper", description="L2 formula: the LightGCN paper's squared norms, or RecBole's unsquared EmbLoss")
    batch_size: int = Field(8192, gt=0)
    epochs: int = Field(300, gt=0)
    patience: int = Field(10, ge=1, description="evaluations without improvement before stopping")
    eval_every: int = Field(1, ge=1)
    valid_metric: str = "ndcg@20"
    seed: int = 2020
    device: str = "cpu"
    deterministic: bool = Field(True, description="bit-identical runs for a seed, any thread count "
                                "(the gather backward otherwise sums in thread order); no measurable cost on CPU")
