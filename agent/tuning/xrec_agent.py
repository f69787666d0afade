"""XRec's adapter in the agent's own explain flow (the graph the agent recommends from, ml-100k by default).

ml-100k has no reviews, so the targets are the explanation pairs ``python -m agent.tuning.explain_data``
builds from the evidence the explain flow gathers (every answer passes the product's sentence
check). The prompt is the agent's explanation prompt (``Explainer.prompt``) with one line added
that carries the two reserved tokens; the person's vector is the graph's fold-in of the items they
are known by (a dataset user's training items, or a chat user's liked films), the same way in
training and in serving, and the item's is its LightGCN vector.

Off by default: ``CHATREC_XREC_ADAPTER=<folder>`` (what ``chatrec xrec train --pairs`` saves) puts
it in the explain flow; the sentence check and the fallback stay on whatever writes the text.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent.tuning.xrec import ITEM_TOKEN, USER_TOKEN, GraphExplainer
from tools.chat import first_sentences

log = logging.getLogger(__name__)

GRAPH_LINE = "Graph vectors: the person {user}; {title} {item}."


def adapter_dir(home: Path, graph_dataset: str) -> Path:
    return Path(home) / "models" / graph_dataset / "xrec-adapter"


def with_graph_tokens(messages: Sequence[dict], title: str) -> list[dict]:
    """The explanation prompt with the reserved tokens on a line of their own after the facts."""
    out = [dict(m) for m in messages]
    last = max(n for n, m in enumerate(out) if m["role"] == "user")
    out[last]["content"] += "\n" + GRAPH_LINE.format(user=USER_TOKEN, title=title, item=ITEM_TOKEN)
    return out


def graph_vectors(recommender, person: str | list[str], graph_item: str) -> tuple[np.ndarray, np.ndarray]:
    """(the person's fold-in vector, the item's vector)."""
    history = recommender.history(person) if isinstance(person, str) else list(person)
    return recommender.fold_in(history), recommender.item_factors_[recommender.item_index(graph_item)]


class AdapterWriter:
    """Writes an explanation with the adapters fed the graph's vectors of the person and the item."""

    def __init__(self, explainer: GraphExplainer, recommender, max_new_tokens: int = 90) -> None:
        self.explainer, self.recommender, self.max_new_tokens = explainer, recommender, max_new_tokens

    def write(self, messages: Sequence[dict], ev) -> str | None:
        """The text (up to three sentences), or None when the graph lacks the person or the item
        (the explain flow then asks the configured LLM)."""
        if ev.person is None or ev.graph_item is None:
            return None
        user, item = graph_vectors(self.recommender, ev.person, ev.graph_item)
        prompt = self.explainer.prompt_text(with_graph_tokens(messages, ev.item.title))
        text = self.explainer.generate([prompt], user[None], item[None], max_new_tokens=self.max_new_tokens)[0]
        return first_sentences(" ".join(text.split()), 3)


def pair_examples(rows: Sequence[dict], tool, explainer: GraphExplainer) -> tuple[list[dict], int]:
    """Training examples from explanation pairs (agent/tuning/explain_data.py rows), and how many
    rows were skipped because the graph lacks their user or item."""
    rec = tool.recommender
    examples, skipped = [], 0
    for row in rows:
        user, positive = row.get("user"), (row.get("items") or {}).get("positive") or []
        item = tool.catalog.get(positive[0]) if positive else None
        gid = tool.graph_id(item) if item is not None else None
        if not user or gid is None or not rec.has_user(str(user)):
            skipped += 1
            continue
        u, i = graph_vectors(rec, str(user), gid)
        prompt = explainer.prompt_text(with_graph_tokens(row["messages"], item.title))
        examples.append({"prompt": prompt, "target": row["answer"], "user": u, "item": i})
    return examples, skipped


def graph_fingerprint(recommender) -> str:
    """Which trained graph an adapter learned to read: a hash of its item vectors (a retrained
    graph's differ, even with the same data and shape)."""
    vectors = np.ascontiguousarray(recommender.item_factors_, dtype=np.float32)
    return "graph:" + hashlib.sha256(vectors.tobytes()).hexdigest()[:16]


def load_writer(path: Path, recommender, device: str | None = None) -> AdapterWriter:
    """The writer for CHATREC_XREC_ADAPTER: the base model named in the folder, with its adapters."""
    from agent.tuning.xrec import load_explainer, read_config

    config = read_config(path)
    if device:
        config.device = device
    if config.graph_dim != recommender.item_factors_.shape[1]:
        raise ValueError(f"the XRec adapter at {path} was trained on {config.graph_dim}-dimensional graph vectors; "
                         f"this graph has {recommender.item_factors_.shape[1]}")
    # adapters fitted before graphs were stamped carry no stamp and are taken as they are
    if ";graph:" in config.data and not config.data.endswith(graph_fingerprint(recommender)):
        raise ValueError(f"the XRec adapter at {path} was fitted on another graph's vectors (the graph was "
                         f"trained again since); `chatrec xrec train --pairs …` fits it on this one")
    return AdapterWriter(load_explainer(Path(config.base), config, path), recommender)


def train_on_pairs(settings, pairs: Path, config, resume: bool = True, progress: bool = True) -> tuple[GraphExplainer, Path]:
    """The agent's adapter fitted on explanation pairs, checkpointed (and resumed) in
    <data home>/models/<graph dataset>/xrec-adapter; returns it and the folder."""
    from agent.agent import Agent
    from agent.evals.explain import read_jsonl
    from agent.tuning.xrec import data_stamp, load_explainer, read_config

    agent = Agent.from_settings(settings, progress=progress)
    target = adapter_dir(settings.home, settings.graph_dataset)
    config.graph_dim = agent.tool.recommender.item_factors_.shape[1]
    config.data = data_stamp(Path(pairs)) + ";" + graph_fingerprint(agent.tool.recommender)
    saved = read_config(target) if resume and (target / "xrec.json").is_file() else None
    resume = config.same_recipe(saved)  # other pairs, model or settings: start again
    explainer = load_explainer(Path(config.base), config)
    examples, skipped = pair_examples(read_jsonl(Path(pairs)), agent.tool, explainer)
    if not examples:
        raise ValueError(f"{pairs}: no pair whose user and item the {settings.graph_dataset} graph holds "
                         "(make them with python -m agent.tuning.explain_data)")
    log.info("%d explanation pairs (%d skipped: the graph lacks their user or item)", len(examples), skipped)
    explainer.train(examples, checkpoint_dir=target, resume=resume, progress=progress)
    return explainer, target
