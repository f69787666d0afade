"""The XRec adapter on XRec's own Yelp data: prompts, graph vectors, training and generation.

The prompt is the prompt-only explainer's (``chatrec eval-explain --part xrec``, variant
``lead_title``: the user and business summaries, then "Answer in one sentence that starts with …"),
with ``<USER_EMBED>`` before the user's summary and ``<ITEM_EMBED>`` before the business's; the
graph is this project's LightGCN on ``total_trn.csv`` (dim 64, as XRec). So the three systems the
benchmark compares differ only in what the reserved positions carry:

- ``prompt``: no reserved tokens, the plain prompt (our prompt-only explainer, same base model and
  decoding);
- ``adapter``: the adapted vectors of the line's own user and business;
- ``random``: the adapted vectors of a random other user and business (the ablation: if scores do
  not drop, the adapter is not using the graph).

Without summaries (``XRecConfig.summaries`` False, XRec's own ablation) all three prompts keep the
business's name and leave both summaries out: the graph is then the only source of who the user is
and what the business offers, so an adapter that carries anything must beat the plain prompt there.

Two more when asked (``--guide``): ``guided`` decodes the plain prompt steered by the difference the
line's own vectors make to the adapted model against the graph's mean user and business
(:meth:`agent.tuning.xrec.GraphExplainer.generate_guided`), and ``guided-random`` the same with the
random ablation's vectors.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from agent.evals.explain import (
    DEFAULT_VARIANT,
    Variant,
    XRecExplainer,
    XRecGraph,
    read_jsonl,
    train_graph,
)
from agent.tuning.xrec import ITEM_TOKEN, USER_TOKEN, GraphExplainer, XRecConfig
from tools.chat import first_sentences

log = logging.getLogger(__name__)

SYSTEMS = ("adapter", "prompt", "random")
GUIDED = ("guided", "guided-random")
XREC_HOME = Path("models") / "xrec-yelp"  # under the data home: the graph, the adapters, the generations


def adapter_dir(home: Path, gated: bool = False, contrast: bool = False, centered: bool = False,
                summaries: bool = True, lora: int = 0) -> Path:
    """Where the adapters trained on Yelp live (the gated, contrastive, centered, summary-less and
    low-rank-tuned variants beside XRec's own recipe)."""
    return Path(home) / XREC_HOME / ("adapter" + ("-gated" if gated else "") + ("-contrast" if contrast else "")
                                     + ("-centered" if centered else "") + ("" if summaries else "-nosummaries")
                                     + (f"-lora{lora}" if lora else ""))


def yelp_graph(home: Path, directory: Path, progress: bool = True, threads: int | None = None) -> XRecGraph:
    """The LightGCN ``eval-explain`` trains on total_trn.csv, from the same cache."""
    return train_graph(directory, progress=progress, threads=threads, cache_dir=Path(home) / XREC_HOME)


class YelpPrompts:
    """The prompt-only explainer's messages for a line, with or without the reserved tokens."""

    def __init__(self, explainer: GraphExplainer) -> None:
        self.explainer = explainer
        self.messages = XRecExplainer(None, Variant.parse(DEFAULT_VARIANT)).messages
        self.summaries = explainer.config.summaries

    def __call__(self, row: dict, with_tokens: bool) -> str:
        if not self.summaries:
            row = row | {"user_summary": "", "item_summary": ""}
        if with_tokens:
            row = row | {"user_summary": f"{USER_TOKEN} {row['user_summary'].strip()}",
                         "item_summary": f"{ITEM_TOKEN} {row['item_summary'].strip()}"}
        return self.explainer.prompt_text(self.messages(row), with_tokens=with_tokens)


def graph_vectors(rows: Sequence[dict], graph: XRecGraph, system: str = "adapter",
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The (users, items) LightGCN vectors of each line: its own, or for ``random`` another user's
    and another business's, drawn with ``seed`` and the line's pair (the same draw for a line in a
    sample and in the whole file). A user or business the graph lacks gets zeros."""
    rec = graph.recommender
    users = np.zeros((len(rows), rec.user_factors_.shape[1]), dtype=np.float32)
    items = np.zeros((len(rows), rec.item_factors_.shape[1]), dtype=np.float32)
    for n, row in enumerate(rows):
        uid, iid = str(row["uid"]), str(row["iid"])
        u = rec.user_index(uid) if rec.has_user(uid) else None
        i = rec.item_index(iid) if rec.has_item(iid) else None
        if system == "random":
            rng = np.random.default_rng([seed, zlib.crc32(f"{uid}:{iid}".encode())])
            u = _other(rng, rec.n_users, u)
            i = _other(rng, rec.n_items, i)
        if u is not None:
            users[n] = rec.user_factors_[u]
        if i is not None:
            items[n] = rec.item_factors_[i]
    return users, items


def neutral_vectors(graph: XRecGraph) -> tuple[np.ndarray, np.ndarray]:
    """The graph's mean user and mean business: the line guided decoding contrasts each line with."""
    rec = graph.recommender
    return rec.user_factors_.mean(axis=0), rec.item_factors_.mean(axis=0)


def _other(rng, count: int, own: int | None) -> int:
    while True:
        pick = int(rng.integers(count))
        if pick != own:
            return pick


def training_examples(rows: Sequence[dict], graph: XRecGraph, prompts: YelpPrompts) -> list[dict]:
    users, items = graph_vectors(rows, graph)
    return [{"prompt": prompts(row, with_tokens=True), "target": row["reference"], "user": users[n], "item": items[n]}
            for n, row in enumerate(rows)]


def tidy(text: str) -> str:
    """What is shown and scored: at most two whole sentences, as the prompt-only explainer does."""
    return first_sentences(" ".join(text.split()), 2)


def generate(explainer: GraphExplainer, rows: Sequence[dict], graph: XRecGraph, system: str,
             cache: Path | None = None, batch_size: int = 8, seed: int = 0, progress: bool = True,
             weight: float = 1.0) -> list[str]:
    """Each line's explanation by ``system`` (see the module's doc; ``weight``: the guided systems'), in order.

    ``cache``: a JSON lines file of texts already made (keyed by the line's user and business);
    finished lines are read from it and new ones appended as each batch ends, so an interrupted run
    picks up where it stopped and a sample's lines count for a later run over all of them."""
    if system not in SYSTEMS + GUIDED:
        raise ValueError(f"unknown system {system!r}: one of {', '.join(SYSTEMS + GUIDED)}")
    known: dict[str, str] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                known[record["pair"]] = record["text"]
            except (ValueError, KeyError, TypeError):
                log.warning("%s: skipped an unreadable line (a run stopped mid-write)", cache)
    keys = [f"{row['uid']}:{row['iid']}" for row in rows]
    done = {n: known[k] for n, k in enumerate(keys) if k in known}
    prompts = YelpPrompts(explainer)
    users, items = graph_vectors(rows, graph, system.removeprefix("guided-"), seed)
    neutral = neutral_vectors(graph) if system in GUIDED else None
    todo = [n for n in range(len(rows)) if n not in done]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"xrec {system}", unit="line",
               disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        if system in GUIDED:
            texts = explainer.generate_guided([prompts(rows[n], False) for n in batch],
                                              [prompts(rows[n], True) for n in batch], users[batch], items[batch],
                                              *neutral, weight=weight)
        else:
            with_tokens = system != "prompt"
            texts = explainer.generate([prompts(rows[n], with_tokens) for n in batch],
                                       users[batch] if with_tokens else None, items[batch] if with_tokens else None)
        new = {n: tidy(t) for n, t in zip(batch, texts)}
        done |= new
        if cache is not None:
            with open(cache, "a", encoding="utf-8") as f:
                f.writelines(json.dumps({"pair": keys[n], "text": t}) + "\n" for n, t in new.items())
        bar.update(len(batch))
    bar.close()
    return [done[n] for n in range(len(rows))]


def train_adapters(home: Path, directory: Path, config: XRecConfig, resume: bool = True,
                   progress: bool = True) -> tuple[GraphExplainer, XRecGraph]:
    """The adapters fitted on train.jsonl (the reference after ``<EXPLAIN_POS>`` is the target),
    checkpointed in the data home and resumed from there; a finished run is loaded, not redone."""
    from agent.tuning.xrec import load_explainer, read_config

    graph = yelp_graph(home, directory, progress=progress, threads=config.threads)
    target = adapter_dir(home, config.gated, bool(config.contrast), config.centered, config.summaries, config.lora)
    config.data = adapter_data_stamp(directory, graph)
    saved = read_config(target) if resume and (target / "xrec.json").is_file() else None
    rows = read_jsonl(Path(directory) / "train.jsonl")
    if config.same_recipe(saved) and saved.steps_done >= _plan_steps(len(rows), config):
        return load_explainer(Path(config.base), saved, target), graph
    explainer = load_explainer(Path(config.base), config)
    examples = training_examples(rows, graph, YelpPrompts(explainer))
    explainer.train(examples, checkpoint_dir=target, resume=config.same_recipe(saved), progress=progress)
    return explainer, graph


def adapter_data_stamp(directory: Path, graph: XRecGraph) -> str:
    """What adapters fitted on Yelp remember of their data: the lines, and the graph whose vectors they
    learned to read (another graph's vectors, a retrained one's too, are not theirs to resume or serve)."""
    from agent.tuning.xrec import data_stamp

    return data_stamp(Path(directory) / "train.jsonl", Path(directory) / "total_trn.csv") + f";graph:{graph.key}"


def _plan_steps(rows: int, config: XRecConfig) -> int:
    steps = config.epochs * math.ceil(rows / config.batch_size)
    return min(steps, config.max_steps) if config.max_steps else steps


def find_pair(directory: Path, user: str, item: str) -> dict:
    """A line for ``user`` and ``item`` built from the benchmark's summaries (train.jsonl, then
    eval.jsonl): the user's summary from any line of theirs, the business's from any line of it."""
    user_row = item_row = None
    for name in ("train.jsonl", "eval.jsonl"):
        for row in read_jsonl(Path(directory) / name):
            if user_row is None and str(row["uid"]) == str(user):
                user_row = row
            if item_row is None and str(row["iid"]) == str(item):
                item_row = row
    if user_row is None or item_row is None:
        missing = [f"user {user}" if user_row is None else "", f"business {item}" if item_row is None else ""]
        raise KeyError(f"no summary for {' and '.join(m for m in missing if m)} in train.jsonl or eval.jsonl")
    return {"uid": user_row["uid"], "iid": item_row["iid"], "title": item_row["title"],
            "user_summary": user_row["user_summary"], "item_summary": item_row["item_summary"]}
