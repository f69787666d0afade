"""Fitting an :func:`agent.classifier.encoder_classifier`: the training loop the stance reader
(:mod:`agent.tuning.stance_data`) and the intent reader (:mod:`agent.tuning.intent_data`) share,
and typed-again copies of a text (the stance reader trains on them; ReDial's seekers type their
own slips into the intent reader's rows)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import numpy as np

from agent.classifier import encoder_classifier

EPOCHS, BATCH, LEARNING_RATE, SEED = 6, 16, 1e-3, 0
TYPO_SHARE = 0.25  # of the words of four letters or more in each typed-again copy
_LONG_WORD = re.compile(r"[A-Za-z]{4,}")


def with_typos(texts: list[str], seed: int = SEED) -> list[str]:
    """Each text typed again with slips — a letter dropped, two swapped, one doubled — in a
    quarter of its longer words: a word the encoder has not seen ("I really enoyed it") read as a
    dislike at P 0.99 before; the copies keep their label, so a slip says nothing of the answer."""
    rng = random.Random(seed)

    def slip(word: str) -> str:
        i, kind = rng.randrange(1, len(word) - 1), rng.choice("dsr")
        return (word[:i] + word[i + 1:] if kind == "d" else word[:i] + word[i + 1] + word[i] + word[i + 2:]
                if kind == "s" else word[:i] + word[i] + word[i:])

    return [_LONG_WORD.sub(lambda m: slip(m.group()) if rng.random() < TYPO_SHARE else m.group(), t) for t in texts]


def fit(texts: list[str], labels: list[int], classes: Sequence[str], max_tokens: int, epochs: int = EPOCHS,
        seed: int = SEED, progress: bool = True, desc: str = "classifier"):
    """A classifier over ``classes`` fitted to ``texts`` and ``labels`` (indices into ``classes``):
    cross-entropy with the classes weighted to equal size, AdamW, a short warm-up then straight
    down to zero, a fixed seed."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(seed)
    order = random.Random(seed)
    model = encoder_classifier(classes, max_tokens)
    counts = np.bincount(labels, minlength=len(classes))
    weight = torch.tensor(counts.sum() / (len(classes) * np.maximum(counts, 1)), dtype=torch.float32)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE,
                                  weight_decay=0.01)
    steps = epochs * -(-len(texts) // BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1, (s + 1) / 20) * max(0.0, 1 - s / steps))
    model.train()
    rows = list(range(len(texts)))
    with tqdm(total=steps, desc=desc, unit="step", disable=not progress) as bar:
        for _ in range(epochs):
            order.shuffle(rows)
            for i in range(0, len(rows), BATCH):
                batch = rows[i:i + BATCH]
                loss = torch.nn.functional.cross_entropy(model([texts[j] for j in batch]),
                                                         torch.tensor([labels[j] for j in batch]), weight=weight)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update()
    model.eval()
    return model
