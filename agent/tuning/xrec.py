"""XRec's collaborative adapter: the graph's user and item vectors put into a frozen local LLM.

XRec (Ma et al. 2024; ../shared/papers.md) conditions an explanation on collaborative signal
rather than on the words of a prompt. Two mixture-of-experts adapters map a user's and an item's
LightGCN vectors (64 dimensions) to the LLM's hidden size; the prompt carries three reserved tokens:

- ``<USER_EMBED>`` and ``<ITEM_EMBED>``: their input embeddings are replaced by the adapted
  vectors, and the same vectors are added to the query, key and value states at those two
  positions in every decoder layer during the prompt pass;
- ``<EXPLAIN_POS>``: where the explanation starts; the loss is next-token cross-entropy on the
  tokens after it.

The LLM and the graph stay frozen; only the adapters train (about 0.6 M parameters for SmolLM2-135M).

One departure from XRec, forced by the model: LLaMA-2-7B has as many key / value heads as query
heads, so XRec adds the hidden-size vector to all three states as is. SmolLM2 shares each key /
value head among a group of query heads (grouped-query attention: 9 query heads, 3 key / value
heads of 64 dimensions); the vector, read as 9 heads, is added to the queries as is and, averaged
over each group, to the group's key and value head. The injection hooks the projections' outputs,
so it lands before the rotary position encoding, as in XRec.

Served in transformers (CPU, or CUDA with ``device="cuda"``), not llama.cpp: llama.cpp takes input
embeddings but has no way to add vectors inside its attention layers.

``gated`` (off by default; XRec has no gates): each layer's injection and the input vectors are
scaled by tanh of a learned gate that starts at zero (LLaMA-Adapter's zero-init attention), and
the reserved tokens keep their own embedding under the adapted vector. Training then starts from
the model as it reads the prompt alone, and the gates open only as far as the vectors help: XRec's
ungated recipe on our 135M model learned the references' style and fell below the prompt-only
explainer (bench/RESULTS.md, issue 25).

``contrast`` (off by default; not in XRec): each step also scores the batch with every line given
another line's user and item vectors, and adds ``contrast`` × max(0, ``margin`` − (that loss − the
loss with the right vectors)). Style alone lowers both losses alike; only what depends on whose
vectors the adapter reads can open the margin. The gated adapter scored the same with a random
other user's and business's vectors as with the right ones (bench/RESULTS.md, issue 25).

``centered`` (off by default; not in XRec): what the adapters put in is a learned vector per reserved
token (the same for every line) plus the adapter's output for this line *less its output for the
mean line* (the training lines' mean user and item vectors). The part of the injection that is the
same for every line — the references' style, which the ungated and gated adapters learned — has a
place of its own, so only what depends on whose vectors they are can come through the adapters:
another line's vectors change exactly that part (the random ablation).

``lora`` (a rank; 0, off, by default; not in XRec, which keeps LLaMA-2-7B frozen): low-rank
adapters on every decoder layer's attention projections train with the MoE adapters, so the model itself can
learn to turn an injected vector into words. A frozen 135M model read the injected vectors only
weakly: without summaries, the adapter beat another line's vectors by a hair (bench/RESULTS.md,
issue 25). The low-rank adapters are on only in passes that carry the graph's vectors: a plain
prompt (the prompt-only explainer, guided decoding's plain side) reads the base model as before.

Guided decoding (:meth:`GraphExplainer.generate_guided`; not in XRec, no training of its own): the
plain prompt's model chooses each token, steered by how much more likely the adapted model finds
it with this line's vectors than with the graph's mean user and item. XRec's recipe on our model
depends on the graph (another line's vectors score lower) but falls below the plain prompt,
because most of what it learned is the references' style; the contrast with the mean line takes
the style out and keeps the line's own collaborative signal.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import pickle
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recsys.io import atomic_dir

log = logging.getLogger(__name__)

USER_TOKEN, ITEM_TOKEN, EXPLAIN_TOKEN = "<USER_EMBED>", "<ITEM_EMBED>", "<EXPLAIN_POS>"
SPECIAL_TOKENS = (USER_TOKEN, ITEM_TOKEN, EXPLAIN_TOKEN)
ADAPTER_FILE, CONFIG_FILE, STATE_FILE = "adapters.pt", "xrec.json", "train_state.pt"



class WhiteningExpert(nn.Module):
    """One expert: subtract a learned bias, then a bias-free linear map (XRec's parametric whitening)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(in_dim))
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        nn.init.normal_(self.linear.weight, mean=0.0, std=0.02)

    def forward(self, x):
        return self.linear(self.dropout(x) - self.bias)


class LowRank(nn.Module):
    """A frozen linear layer plus a trainable low-rank update (LoRA), applied only while ``on``.

    The update starts at zero (B = 0), so a fresh explainer is the base model."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base, self.scale, self.on = base, alpha / rank, False
        self.down = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.up = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = self.base(x)  # the injection's hooks sit on ``base``: the vectors go in before the update
        if not self.on:
            return out
        return out + (self.dropout(x).to(self.down.dtype) @ self.down.T @ self.up.T).to(out.dtype) * self.scale


# attention only: on the MLP's projections too, a training step of SmolLM2-135M on 2 CPU cores took
# ~1.3x as long again (batch 8, ~250 tokens), for a first try at whether the model can learn to read the vectors
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class MoEAdapter(nn.Module):
    """A softmax gate over ``experts`` whitening experts; learned gate noise only while training."""

    def __init__(self, in_dim: int, out_dim: int, experts: int = 8, dropout: float = 0.2,
                 noise_epsilon: float = 1e-2) -> None:
        super().__init__()
        self.experts = nn.ModuleList(WhiteningExpert(in_dim, out_dim, dropout) for _ in range(experts))
        self.gate = nn.Parameter(torch.zeros(in_dim, experts))
        self.noise = nn.Parameter(torch.zeros(in_dim, experts))
        self.noise_epsilon = noise_epsilon

    def gates(self, x):
        logits = x @ self.gate
        if self.training:
            scale = torch.nn.functional.softplus(x @ self.noise) + self.noise_epsilon
            logits = logits + torch.randn_like(logits) * scale
        return torch.softmax(logits, dim=-1)

    def forward(self, x):
        outputs = torch.stack([expert(x) for expert in self.experts], dim=-2)  # (B, experts, out)
        return (self.gates(x).unsqueeze(-1) * outputs).sum(dim=-2)


@dataclass
class XRecConfig:
    """What shapes and trains the adapters (saved beside them as xrec.json)."""

    base: str = ""  # the base model's GGUF file or transformers folder
    data: str = ""  # what it is trained on (file, size, time): a checkpoint of other data is not resumed
    graph_dim: int = 64
    experts: int = 8
    dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 1
    batch_size: int = 8
    seed: int = 0
    max_steps: int | None = None  # a time box: the plan ends there
    save_every: int = 25  # steps between checkpoints
    max_new_tokens: int = 60
    gated: bool = False  # zero-init tanh gates on the input vectors and each layer's injection (module docstring)
    contrast: float = 0.0  # weight of the margin against other lines' vectors (module docstring); 0: off
    margin: float = 0.1  # nats a target token: how much worse the loss must be with another line's vectors
    centered: bool = False  # a learned vector per reserved token + the adapter's output less the mean line's
    summaries: bool = True  # the user's and the item's summaries in the prompt (False: XRec's ablation, graph only)
    lora: int = 0  # rank of low-rank adapters on the model's projections, trained with the MoE adapters; 0: off
    lora_lr: float = 2e-4  # their learning rate (the MoE adapters keep ``lr``)
    device: str = "cpu"
    threads: int | None = None
    steps_done: int = 0
    losses: list[float] = field(default_factory=list)  # mean loss of each checkpoint interval

    RECIPE = ("base", "data", "graph_dim", "experts", "dropout", "lr", "weight_decay", "epochs", "batch_size",
              "seed", "max_steps", "gated", "contrast", "margin", "centered", "summaries", "lora", "lora_lr")

    def same_recipe(self, other: XRecConfig | None) -> bool:
        """Whether ``other`` (a saved checkpoint's config) was made the same way: only then is it resumed."""
        return other is not None and all(getattr(self, k) == getattr(other, k) for k in self.RECIPE)


class _Injection:
    """Forward hooks on every decoder layer's q / k / v projections that add the adapted vectors at
    the reserved positions; active only inside :meth:`active` (the prompt pass)."""

    def __init__(self, model) -> None:
        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.batch = self.positions = self.vectors = None  # (N,), (N,), (N, hidden) while active
        self.scales = None  # (layers,) per-layer multipliers of the vectors (the gated variant), or None
        for n, layer in enumerate(model.model.layers):
            attention = layer.self_attn
            attention.q_proj.register_forward_hook(self._hook(n, grouped=False))
            attention.k_proj.register_forward_hook(self._hook(n, grouped=True))
            attention.v_proj.register_forward_hook(self._hook(n, grouped=True))

    def _hook(self, layer: int, grouped: bool):
        def add(module, inputs, output):
            if self.vectors is None or output.shape[1] <= int(self.positions.max()):
                return output  # decode steps (one new token) and passes without vectors
            vectors = self.vectors.to(output.dtype)
            if self.scales is not None:
                vectors = vectors * self.scales[layer].to(output.dtype)
            if grouped:  # query heads h*g .. h*g+g-1 share key / value head h
                group = self.heads // self.kv_heads
                vectors = vectors.view(-1, self.kv_heads, group, self.head_dim).mean(dim=2).flatten(1)
            output = output.clone()
            output[self.batch, self.positions] = output[self.batch, self.positions] + vectors
            return output

        return add

    @contextmanager
    def active(self, batch, positions, vectors, scales=None) -> Iterator[None]:
        self.batch, self.positions, self.vectors, self.scales = batch, positions, vectors, scales
        try:
            yield
        finally:
            self.batch = self.positions = self.vectors = self.scales = None


class GraphExplainer:
    """The frozen LLM with the two adapters: prompts in, explanations out; trains and saves the adapters."""

    def __init__(self, tokenizer, model, config: XRecConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.tokenizer, self.model = tokenizer, model
        added = tokenizer.add_tokens(list(SPECIAL_TOKENS), special_tokens=True)
        if added:
            old_rows = model.get_input_embeddings().weight.shape[0]
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            with torch.no_grad():  # the mean embedding: the same on every load (transformers' default is drawn at random)
                weight = model.get_input_embeddings().weight
                weight[old_rows:] = weight[:old_rows].mean(dim=0)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.user_id, self.item_id, self.explain_id = (tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS)
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval().to(self.device)
        hidden = model.config.hidden_size
        torch.manual_seed(config.seed)
        self.user_adapter = MoEAdapter(config.graph_dim, hidden, config.experts, config.dropout).to(self.device)
        self.item_adapter = MoEAdapter(config.graph_dim, hidden, config.experts, config.dropout).to(self.device)
        for adapter in self.adapters():
            adapter.eval()  # no gate noise or dropout outside train()
        self.injection = _Injection(model)
        # gated: [input vectors, layer 0, layer 1, ...], tanh(0) = 0 at the start
        self.gates = nn.Parameter(torch.zeros(1 + len(model.model.layers), device=self.device)) if config.gated else None
        # centered: [user, item] vectors the same for every line, and the mean line's graph vectors
        self.styles = nn.Parameter(torch.zeros(2, hidden, device=self.device)) if config.centered else None
        self.centers = torch.zeros(2, config.graph_dim, device=self.device) if config.centered else None
        self.low_ranks: dict[str, LowRank] = {}  # "layers.3.self_attn.q_proj" → its LowRank (lora > 0)
        if config.lora:
            for n, layer in enumerate(model.model.layers):
                for name in LORA_TARGETS:
                    wrapped = LowRank(getattr(layer.self_attn, name), config.lora, 2.0 * config.lora)
                    setattr(layer.self_attn, name, wrapped)
                    self.low_ranks[f"layers.{n}.self_attn.{name}"] = wrapped

    # ------------------------------------------------------------------ building blocks

    def adapters(self):
        return [self.user_adapter, self.item_adapter]

    def parameters(self):
        return ([p for a in self.adapters() for p in a.parameters()] + ([self.gates] if self.gates is not None else [])
                + ([self.styles] if self.styles is not None else []) + self.low_rank_parameters())

    def low_rank_parameters(self) -> list:
        return [p for m in self.low_ranks.values() for p in (m.down, m.up)]

    @contextmanager
    def tuned(self, on: bool) -> Iterator[None]:
        """The low-rank adapters on (passes with the graph's vectors) or off (plain prompts)."""
        for m in self.low_ranks.values():
            m.on = on
        try:
            yield
        finally:
            for m in self.low_ranks.values():
                m.on = False

    def _adapt(self, which: int, vectors):
        """The ``which`` adapter (0 user, 1 item) on a batch of graph vectors; centered: the
        line's own part (less the mean line's) on top of the learned vector shared by all lines."""
        adapter = self.adapters()[which]
        if self.styles is None:
            return adapter(vectors)
        both = adapter(torch.cat([vectors, self.centers[which:which + 1]]))  # one pass: the same dropout mode
        return self.styles[which] + both[:-1] - both[-1:]

    def prompt_text(self, messages: Sequence[dict], with_tokens: bool = True) -> str:
        """The chat-templated prompt, ending with ``<EXPLAIN_POS>`` when the adapters are used."""
        text = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return text + (EXPLAIN_TOKEN if with_tokens else "")

    def _embed(self, input_ids, user_vectors, item_vectors):
        """Input embeddings with the adapted vectors at the reserved tokens, and what to inject."""
        embeds = self.model.get_input_embeddings()(input_ids)
        rows, cols, vectors = [], [], []
        for token, adapted in ((self.user_id, self._adapt(0, user_vectors) if user_vectors is not None else None),
                               (self.item_id, self._adapt(1, item_vectors) if item_vectors is not None else None)):
            if adapted is None:
                continue
            where = (input_ids == token).nonzero()
            if len(where) != len(input_ids) or where[:, 0].unique().numel() != len(input_ids):
                raise ValueError(f"each prompt needs exactly one {self.tokenizer.convert_ids_to_tokens(token)}")
            rows.append(where[:, 0])
            cols.append(where[:, 1])
            vectors.append(adapted[where[:, 0]].to(embeds.dtype))
        if not rows:
            return embeds, None
        batch, positions, vectors = torch.cat(rows), torch.cat(cols), torch.cat(vectors)
        embeds = embeds.clone()
        if self.gates is None:
            embeds[batch, positions] = vectors
            return embeds, (batch, positions, vectors)
        scales = torch.tanh(self.gates)  # the token's own embedding stays under the gated vector
        embeds[batch, positions] = embeds[batch, positions] + scales[0].to(embeds.dtype) * vectors
        return embeds, (batch, positions, vectors, scales[1:])

    def _vectors(self, array):
        if array is None:
            return None
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=self.device)

    # ------------------------------------------------------------------ training

    def loss(self, prompts: Sequence[str], targets: Sequence[str], user_vectors, item_vectors):
        """Mean next-token loss on the target tokens (those after ``<EXPLAIN_POS>``)."""
        tok = self.tokenizer
        ids, labels = [], []
        for prompt, target in zip(prompts, targets):
            p = tok(prompt, add_special_tokens=False)["input_ids"]
            t = tok(target.strip() + tok.eos_token, add_special_tokens=False)["input_ids"]
            ids.append(p + t)
            labels.append([-100] * len(p) + t)
        width = max(map(len, ids))
        pad = tok.pad_token_id
        input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in ids], device=self.device)
        label_ids = torch.tensor([row + [-100] * (width - len(row)) for row in labels], device=self.device)
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids], device=self.device)
        embeds, inject = self._embed(input_ids, self._vectors(user_vectors), self._vectors(item_vectors))
        with self.injection.active(*inject) if inject else _nothing(), self.tuned(inject is not None):
            hidden = self.model.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        # logits only where a label is: the vocabulary projection is a fifth of the model's work
        shifted = label_ids[:, 1:]
        keep = shifted != -100
        logits = self.model.lm_head(hidden[:, :-1][keep])
        return torch.nn.functional.cross_entropy(logits.float(), shifted[keep])

    def train(self, examples: Sequence[dict], checkpoint_dir: Path | None = None, resume: bool = True,
              progress: bool = True, on_step: Callable[[int, float], None] | None = None) -> list[float]:
        """Fit the adapters on ``examples`` (``prompt``, ``target``, ``user``, ``item`` vectors).

        The batch plan is fixed by the seed, so a run resumed from ``checkpoint_dir`` sees the batches
        a straight run would. Returns the loss of every step run here."""
        from tqdm.auto import tqdm

        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        order = []
        rng = random.Random(cfg.seed)
        for _ in range(cfg.epochs):
            epoch = list(range(len(examples)))
            rng.shuffle(epoch)
            order += [epoch[i:i + cfg.batch_size] for i in range(0, len(epoch), cfg.batch_size)]
        if cfg.max_steps:
            order = order[:cfg.max_steps]
        if self.centers is not None and not cfg.steps_done:  # the mean line, fixed before the first step
            self.centers = torch.as_tensor(np.stack([np.mean([e["user"] for e in examples], axis=0),
                                                     np.mean([e["item"] for e in examples], axis=0)]),
                                           dtype=torch.float32, device=self.device)
        low_rank = self.low_rank_parameters()  # their own learning rate: the MoE adapters' 0.01 would wreck the model
        tuned_ids = {id(p) for p in low_rank}
        groups = [{"params": [p for p in self.parameters() if id(p) not in tuned_ids], "lr": cfg.lr}]
        if low_rank:
            groups.append({"params": low_rank, "lr": cfg.lora_lr})
        optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / 10) * 0.5 * (1 + math.cos(math.pi * min(s, len(order)) / len(order))))
        start = 0
        if checkpoint_dir is not None and resume and (Path(checkpoint_dir) / STATE_FILE).is_file():
            start = self._load_state(Path(checkpoint_dir), optimizer, schedule)
            log.info("resuming XRec adapter training at step %d of %d", start, len(order))
        for module in self.adapters() + list(self.low_ranks.values()):
            module.train()
        losses, window = [], []
        bar = tqdm(total=len(order), initial=start, desc="xrec adapters", unit="step", disable=not progress)
        for step in range(start, len(order)):
            batch = [examples[i] for i in order[step]]
            prompts, targets = [e["prompt"] for e in batch], [e["target"] for e in batch]
            users, items = np.stack([e["user"] for e in batch]), np.stack([e["item"] for e in batch])
            loss = self.loss(prompts, targets, users, items)
            if cfg.contrast and len(batch) > 1:  # each line with the next line's vectors
                others = self.loss(prompts, targets, np.roll(users, 1, axis=0), np.roll(items, 1, axis=0))
                loss = loss + cfg.contrast * torch.relu(cfg.margin - (others - loss))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            value = loss.item()
            losses.append(value)
            window.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            if on_step:
                on_step(step + 1, value)
            done = step + 1
            if checkpoint_dir is not None and (done % cfg.save_every == 0 or done == len(order)):
                cfg.steps_done = done
                cfg.losses.append(round(float(np.mean(window)), 4))
                window = []
                self.save(Path(checkpoint_dir), optimizer, schedule)
        bar.close()
        for module in self.adapters() + list(self.low_ranks.values()):
            module.eval()
        return losses

    # ------------------------------------------------------------------ generation

    def generate(self, prompts: Sequence[str], user_vectors=None, item_vectors=None,
                 max_new_tokens: int | None = None, until_eos: bool = True) -> list[str]:
        """Greedy continuations of ``prompts`` (one batch, left-padded); with vectors, the adapters'
        output goes in at the reserved tokens; without, the prompts are plain (no reserved tokens).
        ``until_eos=False`` runs all ``max_new_tokens`` steps (a latency measure of a fixed length)."""
        with torch.no_grad():
            decoder = _Decoder(self, prompts, user_vectors, item_vectors)
            return self._greedy(len(prompts), lambda: decoder.logits, decoder.step, max_new_tokens, until_eos)

    def generate_guided(self, plain_prompts: Sequence[str], prompts: Sequence[str], user_vectors, item_vectors,
                        neutral_user, neutral_item, weight: float = 1.0, max_new_tokens: int | None = None,
                        until_eos: bool = True) -> list[str]:
        """Greedy continuations of the plain prompts (the prompt-only explainer) steered by what the
        adapters' output depends on whose vectors they read: each token is chosen on
        log p_plain + ``weight`` × (log p_adapters(this line) − log p_adapters(the neutral line)).

        The neutral line (``neutral_user``, ``neutral_item``: one graph vector each, the graph's mean
        user and item) carries what the adapters put in for every line alike — the references'
        style, which the trained adapters learned and which cost MiniLM against the plain prompt
        (bench/RESULTS.md, issue 25) — so only the line's own collaborative signal moves the text
        (classifier-free guidance, read as a contrast between two conditionings)."""
        count = len(prompts)
        if len(plain_prompts) != count:
            raise ValueError("one plain prompt for each prompt")
        users = np.concatenate([np.asarray(user_vectors, dtype=np.float32),
                                np.repeat(np.asarray(neutral_user, dtype=np.float32)[None], count, axis=0)])
        items = np.concatenate([np.asarray(item_vectors, dtype=np.float32),
                                np.repeat(np.asarray(neutral_item, dtype=np.float32)[None], count, axis=0)])
        with torch.no_grad():
            plain = _Decoder(self, plain_prompts)
            graph = _Decoder(self, list(prompts) * 2, users, items)

            def logits():
                both = torch.log_softmax(graph.logits.float(), dim=-1)
                return torch.log_softmax(plain.logits.float(), dim=-1) + weight * (both[:count] - both[count:])

            def step(tokens):
                plain.step(tokens)
                graph.step(torch.cat([tokens, tokens]))

            return self._greedy(count, logits, step, max_new_tokens, until_eos)

    def _greedy(self, count: int, logits: Callable, step: Callable, max_new_tokens: int | None,
                until_eos: bool) -> list[str]:
        """Greedy decoding over ``count`` rows: ``logits()`` scores the next token, ``step(tokens)``
        feeds the chosen ones back; the reserved tokens (and, with ``until_eos=False``, the end)
        are never chosen."""
        tok = self.tokenizer
        banned = torch.tensor([self.user_id, self.item_id, self.explain_id]
                              + ([] if until_eos else [tok.eos_token_id]), device=self.device)
        out = [[] for _ in range(count)]
        done = torch.zeros(count, dtype=torch.bool, device=self.device)
        for _ in range(max_new_tokens or self.config.max_new_tokens):
            scores = logits().clone()
            scores[:, banned] = -float("inf")
            nxt = scores.argmax(-1)
            for row in (~done).nonzero().flatten().tolist():
                if int(nxt[row]) == tok.eos_token_id:
                    done[row] = True
                else:
                    out[row].append(int(nxt[row]))
            if bool(done.all()):
                break
            step(nxt)
        return [tok.decode(row, skip_special_tokens=True).strip() for row in out]

    # ------------------------------------------------------------------ saving

    def save(self, directory: Path, optimizer=None, schedule=None) -> None:
        """Adapters and config (and, mid-training, the optimizer and schedule), swapped in whole."""
        with atomic_dir(directory) as tmp:
            torch.save({"user": self.user_adapter.state_dict(), "item": self.item_adapter.state_dict()}
                       | ({"gates": self.gates.detach().cpu()} if self.gates is not None else {})
                       | ({"styles": self.styles.detach().cpu(), "centers": self.centers.cpu()}
                          if self.styles is not None else {})
                       | ({"lora": {name: {"down": m.down.detach().cpu(), "up": m.up.detach().cpu()}
                                    for name, m in self.low_ranks.items()}} if self.low_ranks else {}),
                       tmp / ADAPTER_FILE)
            (tmp / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))
            if optimizer is not None:
                torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                            "step": self.config.steps_done,
                            "rng": torch.get_rng_state()}, tmp / STATE_FILE)

    def _load_state(self, directory: Path, optimizer, schedule) -> int:
        self.load_adapters(directory)
        state = torch.load(directory / STATE_FILE, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        return int(state["step"])

    def load_adapters(self, directory: Path) -> None:
        path = Path(directory) / ADAPTER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no XRec adapters at {path} (`chatrec xrec train` makes them)")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.user_adapter.load_state_dict(state["user"])
            self.item_adapter.load_state_dict(state["item"])
            if (self.gates is None) != ("gates" not in state):
                raise KeyError("gates: the adapter was trained " + ("with" if "gates" in state else "without") +
                               " gates and is loaded " + ("without" if self.gates is None else "with") + " them")
            if self.gates is not None:
                with torch.no_grad():
                    self.gates.copy_(state["gates"].to(self.device))
            if (self.styles is None) != ("styles" not in state):
                raise KeyError("centered: the adapter was trained " + ("centered" if "styles" in state else "plain")
                               + " and is loaded " + ("plain" if self.styles is None else "centered"))
            if self.styles is not None:
                with torch.no_grad():
                    self.styles.copy_(state["styles"].to(self.device))
                self.centers = state["centers"].to(self.device)
            if bool(self.low_ranks) != ("lora" in state):
                raise KeyError("lora: the adapter was trained " + ("with" if "lora" in state else "without")
                               + " low-rank adapters and is loaded " + ("with" if self.low_ranks else "without") + " them")
            if self.low_ranks:
                if set(state["lora"]) != set(self.low_ranks):
                    raise KeyError("lora: the saved low-rank adapters sit on other layers")
                with torch.no_grad():
                    for name, m in self.low_ranks.items():
                        m.down.copy_(state["lora"][name]["down"].to(self.device))
                        m.up.copy_(state["lora"][name]["up"].to(self.device))
        except (RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as exc:  # damaged, or another model's shape
            raise ValueError(f"{path} is not a readable XRec adapter for this model ({exc})") from exc
        saved = json.loads((Path(directory) / CONFIG_FILE).read_text())
        self.config.steps_done, self.config.losses = saved.get("steps_done", 0), saved.get("losses", [])


def data_stamp(*paths: Path) -> str:
    """The training files as a checkpoint remembers them: name, size and modification time."""
    return ";".join(f"{Path(p).resolve()}:{Path(p).stat().st_size}:{Path(p).stat().st_mtime_ns}" for p in paths)


def read_config(directory: Path) -> XRecConfig:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no XRec adapter at {directory} (`chatrec xrec train` makes one)")
    known = XRecConfig.__dataclass_fields__
    return XRecConfig(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})


def load_explainer(base: Path, config: XRecConfig, adapters: Path | None = None) -> GraphExplainer:
    """The base model (de-quantised GGUF or transformers folder) with fresh or saved adapters."""
    from agent.llm import load_base

    started = time.perf_counter()
    tokenizer, model = load_base(Path(base))
    explainer = GraphExplainer(tokenizer, model, config)
    if adapters is not None:
        explainer.load_adapters(adapters)
    log.info("XRec explainer ready in %.1f s (%s)", time.perf_counter() - started, Path(base).name)
    return explainer


class _Decoder:
    """One left-padded batch through the model with its key / value cache: the prompt pass (the
    adapters' vectors in at the reserved tokens when given), then one token at a time;
    ``logits`` is always the next token's."""

    def __init__(self, explainer: GraphExplainer, prompts: Sequence[str], user_vectors=None,
                 item_vectors=None) -> None:
        self.explainer = explainer
        tok, device = explainer.tokenizer, explainer.device
        ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        width = max(map(len, ids))
        input_ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in ids], device=device)
        self.mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids], device=device)
        for module in explainer.adapters() + list(explainer.low_ranks.values()):
            module.eval()
        embeds, inject = explainer._embed(input_ids, explainer._vectors(user_vectors), explainer._vectors(item_vectors))
        self.positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.tuned = inject is not None  # the low-rank adapters (if any) read only what carries the graph
        with explainer.injection.active(*inject) if inject else _nothing(), explainer.tuned(self.tuned):
            result = explainer.model.model(inputs_embeds=embeds, attention_mask=self.mask,
                                           position_ids=self.positions, use_cache=True)
        self.cache = _cache_of(result)
        self.logits = explainer.model.lm_head(result.last_hidden_state[:, -1])

    def step(self, tokens) -> None:
        model = self.explainer.model
        self.mask = torch.cat([self.mask, torch.ones(len(self.mask), 1, dtype=self.mask.dtype,
                                                     device=self.mask.device)], dim=1)
        self.positions = self.positions[:, -1:] + 1
        with self.explainer.tuned(self.tuned):
            result = model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=self.positions,
                           use_cache=True, **{_cache_argument(model): self.cache})
        self.cache, self.logits = _cache_of(result), result.logits[:, -1]


def _cache_argument(model) -> str:
    """transformers 5 renamed the key / value cache argument ``past_key_values`` → ``cache`` (the old name warns)."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _cache_of(result):
    return getattr(result, "cache", None) or result.past_key_values


@contextmanager
def _nothing() -> Iterator[None]:
    yield
