"""Explanation quality: ``chatrec eval-explain``.

Two measurements, each usable alone (``--part faithfulness|xrec|tune|all``):

1. **Faithfulness** (ml-100k). For ``N`` test users of the graph model's split (a fixed-seed
   sample), the agent's recommend path gives the top-5 candidates; for each item the agent's
   evidence and explanation are made exactly as its explain flow makes them (query "Why
   <title>?", as the "why?" button asks). An explanation is *faithful* when

   - every catalog title it names (:class:`tools.resolve.TitleSpotter` over the whole catalog,
     the rule of ``Explainer.guard``) is the item itself, one of its aliases, or one of the
     evidence's nearest titles (a spotted title inside an allowed one — "Alien" in "Aliens" —
     is allowed, as in the guard), and
   - every genre it names (:data:`tools.explain.GENRE_LEXICON`) is one of the item's genres or
     the evidence's shared genres. Allowed titles are blanked out before genres are looked for,
     so "Star Wars" does not name the War genre (nor "The Clone Wars" of "Star Wars: The Clone Wars").

   This is :func:`tools.explain.unfaithful`, the guard's own rule. Measured on the LLM's text
   before the guard and on what the agent shows (after the guard, which puts a sentence built
   from the evidence in place of a rejected text — so "after" falls short of 100% only where
   that sentence itself is unfaithful).

2. **XRec-yelp** (``../shared/benchmarks/xrec-yelp``, measurement only). For each line of
   ``eval.jsonl`` the configured LLM explains why the user would enjoy the business from
   ``user_summary`` and ``item_summary`` (prompts/xrec_*.txt, variants in
   prompts/xrec_variants.toml), optionally with facts from a LightGCN trained on
   ``total_trn.csv`` with this project's trainer (validated on ``total_val.csv``). Ours and
   XRec's ``xrec_prediction`` are scored against ``reference`` on the same lines with:

   - MiniLM cosine: all-MiniLM-L6-v2 (tools.embeddings) cosine of the two texts, mean over lines;
   - ROUGE-L: F1 of the longest common subsequence over lower-cased ``[a-z0-9]+`` word tokens
     (rouge-score's default tokenisation, no stemming), mean over lines;
   - BLEU-4: corpus-level (clipped n-gram counts summed over all lines, n = 1..4, uniform
     weights, brevity penalty from the summed lengths, one reference per line) with
     Chen & Cherry's smoothing 1 (NLTK ``method1``): an n-gram order with no match counts
     ``0.1`` matches instead of 0; same tokens as ROUGE-L; reported in 0..1;
   - unique ratio: distinct explanations (after collapsing whitespace) / all explanations.

   Prompt variants are compared on ``train.jsonl`` only (``--part tune``); eval.jsonl is never
   used to choose anything.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from prompts import read_prompt
from tools.chat import as_messages, first_sentences
from tools.explain import unfaithful
from tools.explain_check import names_any

log = logging.getLogger(__name__)

DEFAULT_USERS, DEFAULT_SEED, TOP_K = 50, 0, 5
# ../shared/benchmarks/xrec-yelp next to the repository
DEFAULT_XREC_DIR = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "xrec-yelp"
# chosen on train.jsonl with `--part tune` (bench/RESULTS.md, "Explanation quality")
DEFAULT_VARIANT = "lead_title"
SIMILAR_USERS = 50
XREC_FILES = ("eval.jsonl", "train.jsonl", "total_trn.csv", "total_val.csv")


class XRecDataError(FileNotFoundError):
    """The XRec-yelp benchmark directory or one of its files is missing or malformed."""


# ---------------------------------------------------------------------------------- metrics

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens: runs of ``[a-z0-9]`` (rouge-score's default tokeniser)."""
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1 (beta = 1) of one hypothesis against one reference."""
    hyp, ref = tokens(hypothesis), tokens(reference)
    lcs = lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _ngrams(toks: Sequence[str], n: int) -> Counter:
    return Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


BLEU_EPSILON = 0.1  # Chen & Cherry (2014) smoothing 1, as NLTK's SmoothingFunction().method1


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-``max_n`` (one reference per hypothesis), in 0..1; see the module docstring."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hypothesis, reference in zip(hypotheses, references):
        hyp, ref = tokens(hypothesis), tokens(reference)
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
        for n in range(1, max_n + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(count, r[gram]) for gram, count in h.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if hyp_len == 0:
        return 0.0
    log_precision = 0.0
    for m, t in zip(matches, totals):
        if t == 0:  # no n-grams of this order at all (every hypothesis shorter than n)
            return 0.0
        log_precision += math.log((m if m > 0 else BLEU_EPSILON) / t) / max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


def unique_ratio(texts: Sequence[str]) -> float:
    """Distinct texts (whitespace collapsed) / all texts; 0 for none."""
    if not texts:
        return 0.0
    return len({" ".join(t.split()) for t in texts}) / len(texts)


def minilm_cosines(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per line, the cosine of the two texts' all-MiniLM-L6-v2 embeddings (unit vectors)."""
    from tools.embeddings import embed

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hyp, ref = embed(list(hypotheses)), embed(list(references))
    return np.einsum("ij,ij->i", hyp, ref)


def score_texts(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """The four metrics of a set of explanations against their references (same lines, same order)."""
    cosines = minilm_cosines(hypotheses, references)
    rouges = [rouge_l(h, r) for h, r in zip(hypotheses, references)]
    return {"minilm_cosine": round(float(np.mean(cosines)), 4) if len(cosines) else 0.0,
            "rouge_l": round(float(np.mean(rouges)), 4) if rouges else 0.0,
            "bleu4": round(corpus_bleu(hypotheses, references), 4),
            "unique_ratio": round(unique_ratio(hypotheses), 4),
            "mean_words": round(float(np.mean([len(tokens(h)) for h in hypotheses])), 1) if hypotheses else 0.0}


# ------------------------------------------------------------------------------ faithfulness

def sample_test_users(recommender, n: int, seed: int, home: Path | None = None) -> list[str]:
    """``n`` users with test interactions in the model's own split, a fixed-seed sample (file order)."""
    from recsys.users import sample_sorted
    from recsys.workflow import model_split

    _, parts = model_split(recommender, home)
    users = [str(u) for u in parts.test.user_ids[np.unique(parts.test.users)] if recommender.has_user(str(u))]
    return [users[i] for i in sample_sorted(len(users), n, seed)]


def faithfulness(agent, users: Sequence[str], k: int = TOP_K, progress: bool = True) -> dict:
    """Explain each of ``users``' top-``k`` candidates as the agent does; check before and after the
    guard (titles and genres, :func:`tools.explain.unfaithful`) and sentence by sentence
    (:mod:`tools.explain_check`, the product's own check)."""
    from tools.candidates import Constraint

    records = []
    started = time.perf_counter()
    bar = tqdm(total=len(users) * k, desc="faithfulness", unit="expl", disable=not progress)
    for user in users:
        candidates = agent.tool.candidates(user_id=user, liked=[], disliked=[], exclude=set(),
                                           constraint=Constraint(), k=k)
        for cand in candidates:
            ev = agent.explainer.evidence(cand.item, user_id=user, liked=[], source=cand.source)
            t = time.perf_counter()
            made = agent.explainer.explanation(ev, f"Why {cand.item.title}?")
            seconds = time.perf_counter() - t
            shown, raw = made.text, made.raw
            records.append({"user": user, "item_id": cand.item.item_id, "title": cand.item.title,
                            "source": cand.source, "evidence": ev.to_dict(), "genres": list(cand.item.genres),
                            "raw": raw, "shown": shown, "guard": made.problem if made.how == "fallback" else "",
                            "raw_problems": unfaithful(raw, ev, agent.explainer.spotter),
                            "shown_problems": unfaithful(shown, ev, agent.explainer.spotter),
                            "how": made.how, "dropped": made.dropped, "seconds": round(seconds, 3),
                            "raw_sentences": agent.explainer.check(raw, ev).to_dict()["sentences"] if raw else [],
                            "shown_sentences": agent.explainer.check(shown, ev).to_dict()["sentences"],
                            "names_theirs": names_any(shown, [e["title"] for e in ev.nearest]),
                            "has_theirs": bool(ev.nearest)})
            bar.update()
    bar.close()
    return summarize_faithfulness(records, time.perf_counter() - started)


def sentence_figures(records: list[dict]) -> dict:
    """The sentence-level figures (issue 29): shown sentences supported, repetition, explanations
    naming one of the person's items, LLM-written vs the evidence sentence, distinct texts, time."""
    n = len(records)
    shown = [s for r in records for s in r.get("shown_sentences", [])]
    raw = [s for r in records for s in r.get("raw_sentences", [])]

    def repeated(sentence: dict) -> bool:
        return any(p.startswith("repeat:") for p in sentence["problems"])

    def share(count: int, of: int) -> float:
        return round(count / of, 4) if of else 0.0

    kinds = Counter(p.split(":")[0] for s in raw for p in s["problems"])
    how = Counter(r.get("how", "fallback") for r in records)
    with_theirs = [r for r in records if r.get("has_theirs")]
    seconds = sorted(r["seconds"] for r in records if r.get("seconds") is not None)
    return {
        "shown_sentences": len(shown),
        "shown_supported": share(sum(s["supported"] for s in shown), len(shown)),
        "shown_repetition_rate": share(sum(repeated(s) for s in shown), len(shown)),
        "raw_sentences": len(raw),
        "raw_supported": share(sum(s["supported"] for s in raw), len(raw)),
        "raw_repetition_rate": share(sum(repeated(s) for s in raw), len(raw)),
        "raw_unsupported_by_kind": dict(kinds.most_common()),
        "names_their_item": share(sum(bool(r.get("names_theirs")) for r in records), n),
        "names_their_item_when_known": share(sum(bool(r.get("names_theirs")) for r in with_theirs), len(with_theirs)),
        "with_their_items": len(with_theirs),
        "written_by": dict(how),
        "llm_written": share(how["llm"] + how["llm+evidence"], n),
        "llm_only": share(how["llm"], n),
        "unique_ratio_shown": round(unique_ratio([r["shown"] for r in records]), 4),
        "seconds_p50": round(float(np.percentile(seconds, 50)), 3) if seconds else None,
        "seconds_p95": round(float(np.percentile(seconds, 95)), 3) if seconds else None,
    }


def summarize_faithfulness(records: list[dict], seconds: float | None = None) -> dict:
    n = len(records)

    def share(count: int) -> dict:
        return {"count": count, "share": round(count / n, 4) if n else 0.0}

    raw_bad = [r for r in records if r["raw_problems"]]
    kinds = Counter(p.split(":")[0] for r in raw_bad for p in set(x.split(":")[0] for x in r["raw_problems"]))
    reasons = Counter(r["guard"].split(":")[0] for r in records if r["guard"])
    return {
        "explanations": n,
        "users": len({r["user"] for r in records}),
        "before_guard": share(n - len(raw_bad)) | {"unfaithful_by_kind": dict(kinds)},
        "after_guard": share(sum(not r["shown_problems"] for r in records)),
        "replaced": share(sum(bool(r["guard"]) for r in records)) | {"reasons": dict(reasons)},
        "replaced_but_faithful": sum(bool(r["guard"]) and not r["raw_problems"] for r in records),
        "kept_but_unfaithful": sum(not r["guard"] and bool(r["raw_problems"]) for r in records),
        "empty_llm_text": sum(not r["raw"].strip() for r in records),
        "sources": dict(Counter(r["source"] for r in records)),
        "seconds": round(seconds, 1) if seconds is not None else None,
        "sentences": sentence_figures(records),
        "records": records,
    }


# -------------------------------------------------------------------------------- XRec-yelp

def xrec_dir(path: Path | str | None = None) -> Path:
    """The benchmark directory, checked: a clear error when it or a file in it is missing."""
    directory = Path(path) if path else DEFAULT_XREC_DIR
    if not directory.is_dir():
        raise XRecDataError(f"no XRec-yelp benchmark directory at {directory} (pass --xrec-dir; the data is "
                            "described in ../shared/benchmarks/README.md and is never part of the project)")
    missing = [f for f in ("eval.jsonl", "total_trn.csv", "total_val.csv") if not (directory / f).is_file()]
    if missing:
        raise XRecDataError(f"{directory} lacks {', '.join(missing)}")
    return directory


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise XRecDataError(f"{path}, line {n}: not JSON ({exc})") from exc
    return rows


def sample_lines(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    """All rows, or a fixed-seed sample of ``limit`` of them in file order."""
    if not limit or limit >= len(rows):
        return rows
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
    return [rows[i] for i in pick]


@dataclass
class XRecGraph:
    """LightGCN trained on the benchmark's user–business pairs, and the facts it gives a line."""

    recommender: object  # recsys.recommender.GraphRecommender
    facts: dict
    key: str = ""  # the training files and recipe (its cache name): adapters fitted on its vectors remember it

    def evidence(self, uid, iid) -> dict | None:
        rec = self.recommender
        if not (rec.has_user(str(uid)) and rec.has_item(str(iid))):
            return None
        u, i = rec.user_index(str(uid)), rec.item_index(str(iid))
        nearest = [rec.user_index(v) for v, _ in rec.similar_users(str(uid), SIMILAR_USERS)]
        column = rec.train_[:, i].toarray().ravel()
        scores = rec.item_factors_ @ rec.user_factors_[u]
        rank = int((scores > scores[i]).sum()) + 1
        return {"similar_users_visited": int((column[nearest] > 0).sum()), "similar_users": SIMILAR_USERS,
                "rank": rank, "top_percent": max(1, math.ceil(100 * rank / rec.n_items)),
                "visited_in_train": bool(rec.train_[u, i] > 0)}


def _read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as exc:
        raise XRecDataError(f"{path}: cannot read ({exc})") from exc
    if list(frame.columns[:2]) != ["user", "item"]:
        raise XRecDataError(f"{path}: expected a user,item header, got {','.join(map(str, frame.columns))}")
    return frame["user"].to_numpy(dtype=object), frame["item"].to_numpy(dtype=object)


def _graph_key(directory: Path, epochs: int, eval_every: int, seed: int) -> str:
    import hashlib

    parts = [str(directory.resolve()), str(epochs), str(eval_every), str(seed)]
    for name in ("total_trn.csv", "total_val.csv", "total_tst.csv"):
        path = directory / name
        if path.is_file():
            stat = path.stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


# A ceiling, not a plan: early stopping on the validation split ends training. Ten epochs (the first
# setting) stopped LightGCN on Yelp's 315k pairs while it was still improving (validation NDCG@20 0.049;
# 0.065 at 60 epochs), and its vectors then told a linear probe less about a business (bench/RESULTS.md).
GRAPH_EPOCHS = 300


def train_graph(directory: Path, epochs: int = GRAPH_EPOCHS, eval_every: int = 5, seed: int = 2020,
                progress: bool = True, threads: int | None = None, cache_dir: Path | None = None,
                retrain: bool = False) -> XRecGraph:
    """LightGCN (this project's trainer and defaults) on ``total_trn.csv``, validated on ``total_val.csv``
    (early stopping on NDCG@20), test metrics on ``total_tst.csv`` when present.

    ``cache_dir``: keep the trained model there (named by the files, epochs and seed) and load it
    the next time instead of training again (``retrain``: train and replace it); a loaded model's
    facts are those of the run that trained it."""
    import pandas as pd
    import torch

    from recsys.data import InteractionData
    from recsys.recommender import GraphRecommender
    from recsys.split import Split
    from recsys.train import TrainConfig, evaluate_test, train_lightgcn

    key = _graph_key(directory, epochs, eval_every, seed)
    cached = cache_dir / f"lightgcn-{key}.pt" if cache_dir else None
    if cached is not None and cached.is_file() and not retrain:
        recommender = GraphRecommender.load(cached)
        log.info("loaded the XRec-yelp graph trained earlier from %s", cached)
        return XRecGraph(recommender, recommender.metrics | {"cached": str(cached)}, key)
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    parts = {"train": _read_pairs(directory / "total_trn.csv"), "valid": _read_pairs(directory / "total_val.csv")}
    if (directory / "total_tst.csv").is_file():
        parts["test"] = _read_pairs(directory / "total_tst.csv")
    user_ids = pd.unique(np.concatenate([u for u, _ in parts.values()]))
    item_ids = pd.unique(np.concatenate([i for _, i in parts.values()]))
    u_index, i_index = pd.Index(user_ids), pd.Index(item_ids)
    frames = {}
    for name, (users, items) in parts.items():
        frames[name] = InteractionData(name="xrec-yelp", user_ids=user_ids, item_ids=item_ids,
                                       users=u_index.get_indexer(users).astype(np.int64),
                                       items=i_index.get_indexer(items).astype(np.int64))
    empty = frames["valid"].subset(np.zeros(frames["valid"].n_interactions, dtype=bool))
    split = Split(frames["train"], frames["valid"], frames.get("test", empty))
    load_seconds = time.perf_counter() - started
    config = TrainConfig(epochs=epochs, eval_every=eval_every, patience=2, seed=seed)
    result = train_lightgcn(split, config, progress=progress)
    facts = {"data": "total_trn.csv (train), total_val.csv (validation)"
                     + (", total_tst.csv (test)" if "test" in frames else ""),
             "users": int(len(user_ids)), "items": int(len(item_ids)),
             "train_pairs": int(frames["train"].n_interactions), "config": config.model_dump(),
             "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
             "train_seconds": round(result.train_seconds, 3), "load_seconds": round(load_seconds, 2),
             "valid_ndcg@20": round(result.best_valid.get("ndcg@20", 0.0), 4),
             "valid_recall@20": round(result.best_valid.get("recall@20", 0.0), 4)}
    if "test" in frames:
        test = evaluate_test(result.model, split)
        facts |= {"test_recall@20": round(test["recall@20"], 4), "test_ndcg@20": round(test["ndcg@20"], 4)}
    facts["total_seconds"] = round(time.perf_counter() - started, 1)
    recommender = GraphRecommender.from_model(result.model, split.train_matrix(), [str(u) for u in user_ids],
                                              [str(i) for i in item_ids], "xrec-yelp", config, facts)
    if cached is not None:
        recommender.save(cached)
    return XRecGraph(recommender, facts, key)


@dataclass(frozen=True)
class Variant:
    """A prompt variant: ``<instruction>[+shot<train line>][+graph]`` (instructions in
    prompts/xrec_variants.toml; a shot is a worked example from train.jsonl, 0-based line)."""

    instruction: str
    shot: int | None = None
    graph: bool = False

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, *extras = text.strip().split("+")
        known = tomllib.loads(read_prompt("xrec_variants.toml"))
        if name not in known:
            raise ValueError(f"unknown prompt variant {name!r}: one of {', '.join(known)} "
                             "(then optionally +shot<N> and +graph)")
        shot, graph = None, False
        for extra in extras:
            if extra == "graph":
                graph = True
            elif re.fullmatch(r"shot\d+", extra):
                shot = int(extra[4:])
            else:
                raise ValueError(f"unknown prompt variant part {extra!r} in {text!r} (+shot<N>, +graph)")
        return cls(name, shot, graph)

    def __str__(self) -> str:
        return self.instruction + (f"+shot{self.shot}" if self.shot is not None else "") + \
            ("+graph" if self.graph else "")


def graph_sentence(facts: dict | None, title: str) -> str:
    if not facts:
        return ""
    return (f"Visit graph: {facts['similar_users_visited']} of the {facts['similar_users']} users whose visits are "
            f"most like this user's have been to {title}; it ranks in the top {facts['top_percent']}% of "
            f"businesses for this user.\n")


class XRecExplainer:
    """One explanation per benchmark line with the configured LLM."""

    def __init__(self, llm, variant: Variant, examples: Sequence[dict] = (), max_tokens: int = 80) -> None:
        """``examples``: train.jsonl rows (a ``+shot<N>`` variant takes its example from them)."""
        self.llm, self.variant, self.max_tokens = llm, variant, max_tokens
        self.system = read_prompt("xrec_explain.txt").strip()
        self.user = read_prompt("xrec_explain_user.txt")
        self.instruction = tomllib.loads(read_prompt("xrec_variants.toml"))[variant.instruction]["instruction"]
        self.shot = None
        if variant.shot is not None:
            if variant.shot >= len(examples):
                raise ValueError(f"variant {variant}: train.jsonl has no line {variant.shot}")
            self.shot = examples[variant.shot]

    def messages(self, row: dict, graph: dict | None = None) -> list[dict]:
        def ask(r: dict, g: dict | None) -> str:
            return self.user.format(user_summary=r["user_summary"].strip(), item_summary=r["item_summary"].strip(),
                                    title=r["title"], graph=graph_sentence(g, r["title"]) if self.variant.graph else "",
                                    instruction=self.instruction.format(title=r["title"])).strip()

        out = [{"role": "system", "content": self.system}]
        if self.shot is not None:  # a worked example (its graph facts are not shown: they would be made up)
            out += [{"role": "user", "content": ask(self.shot, None)},
                    {"role": "assistant", "content": self.shot["reference"].strip()}]
        return out + [{"role": "user", "content": ask(row, graph)}]

    def explain(self, row: dict, graph: dict | None = None) -> str:
        answer = self.llm.invoke(as_messages(self.messages(row, graph)), max_tokens=self.max_tokens).content
        return first_sentences(" ".join(answer.split()), 2)


def generate(explainer: XRecExplainer, rows: Sequence[dict], graph: XRecGraph | None = None,
             progress: bool = True, desc: str = "xrec") -> tuple[list[str], list[dict | None], float]:
    """Our explanation of each row (and the graph facts it was given), and the seconds it took."""
    texts, facts = [], []
    started = time.perf_counter()
    for row in tqdm(rows, desc=desc, unit="line", disable=not progress):
        g = graph.evidence(row["uid"], row["iid"]) if graph is not None else None
        texts.append(explainer.explain(row, g))
        facts.append(g)
    return texts, facts, time.perf_counter() - started


def xrec_benchmark(llm, directory: Path, *, limit: int | None = None, seed: int = DEFAULT_SEED,
                   variant: str = DEFAULT_VARIANT, graph: XRecGraph | None = None, progress: bool = True) -> dict:
    """Ours and XRec's explanations on eval.jsonl (all lines, or a fixed-seed sample of ``limit``)."""
    v = Variant.parse(variant)
    examples = read_jsonl(directory / "train.jsonl") if v.shot is not None else []
    rows = sample_lines(read_jsonl(directory / "eval.jsonl"), limit, seed)
    needed = ("uid", "iid", "title", "user_summary", "item_summary", "reference", "xrec_prediction")
    for row in rows:
        missing = [k for k in needed if k not in row]
        if missing:
            raise XRecDataError(f"{directory / 'eval.jsonl'}: a line lacks {', '.join(missing)}")
    if v.graph and graph is None:
        raise ValueError(f"variant {v} needs the graph (do not pass --no-graph)")
    explainer = XRecExplainer(llm, v, examples)
    ours, facts, seconds = generate(explainer, rows, graph if v.graph else None, progress)
    references = [r["reference"] for r in rows]
    total = _count(directory)
    result = {"lines": len(rows), "of_lines": total, "sample_seed": seed if len(rows) < total else None,
              "variant": str(v), "ours": score_texts(ours, references),
              "xrec": score_texts([r["xrec_prediction"] for r in rows], references),
              "seconds": round(seconds, 1), "seconds_per_line": round(seconds / max(1, len(rows)), 2),
              "empty": sum(not t.strip() for t in ours),
              "examples": [{"uid": r["uid"], "iid": r["iid"], "ours": t, "graph": f}
                           for r, t, f in zip(rows, ours, facts)]}
    if graph is not None:
        seen = [graph.evidence(r["uid"], r["iid"]) for r in rows]
        result["lines_in_graph_train"] = sum(bool(s and s["visited_in_train"]) for s in seen)
    return result


def _count(directory: Path) -> int:
    with open(directory / "eval.jsonl", encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def tune_candidates(train_rows: Sequence[dict], sample: set[int], n_shots: int = 2) -> list[int]:
    """Worked-example candidates for few-shot variants: the first train lines outside the tuning
    sample whose reference has the dominant opening and a typical length (25–40 words)."""
    picks = []
    for n, row in enumerate(train_rows):
        ref = row["reference"].strip()
        if n not in sample and ref.startswith("The user would enjoy the business for its") and \
                25 <= len(ref.split()) <= 40:
            picks.append(n)
            if len(picks) == n_shots:
                break
    return picks


def tune(llm, directory: Path, *, n: int = 50, seed: int = DEFAULT_SEED, graph: XRecGraph | None = None,
         progress: bool = True) -> dict:
    """Score the prompt variants on a fixed-seed sample of ``n`` train.jsonl lines (never eval.jsonl):
    each instruction, then the best instruction with one of two worked examples from train.jsonl
    (:func:`tune_candidates`), then the best of those with the graph facts (when a graph is given).
    Best = highest mean MiniLM cosine to the reference (harder to game with a stock opening than
    ROUGE-L or BLEU)."""
    train_rows = read_jsonl(directory / "train.jsonl")
    pick = np.sort(np.random.default_rng(seed).choice(len(train_rows), min(n, len(train_rows)), replace=False))
    rows = [train_rows[i] for i in pick]
    references = [r["reference"] for r in rows]
    scores: dict[str, dict] = {}

    def run(name: str) -> None:
        v = Variant.parse(name)
        texts, _, seconds = generate(XRecExplainer(llm, v, train_rows), rows, graph if v.graph else None, progress,
                                     desc=f"tune {name}")
        scores[name] = score_texts(texts, references) | {"seconds": round(seconds, 1)}

    def best_so_far() -> str:
        return max(scores, key=lambda k: scores[k]["minilm_cosine"])

    for name in tomllib.loads(read_prompt("xrec_variants.toml")):  # the instructions
        run(name)
    instruction = best_so_far()
    for shot in tune_candidates(train_rows, set(pick.tolist())):  # then a worked example with the best one
        run(f"{instruction}+shot{shot}")
    best = best_so_far()
    if graph is not None:
        run(best + "+graph")
        if scores[best + "+graph"]["minilm_cosine"] > scores[best]["minilm_cosine"]:
            best += "+graph"
    return {"train_lines": len(rows), "seed": seed, "criterion": "mean MiniLM cosine to the reference",
            "variants": scores, "best": best}


# ------------------------------------------------------------------------------------ report

def format_table(result: dict) -> str:
    lines = []
    f = result.get("faithfulness")
    if f:
        n = f["explanations"]
        lines += [f"Faithfulness (ml-100k): {f['users']} test users, top-{TOP_K} each, {n} explanations",
                  f"  {'':28}{'count':>10}{'share':>9}"]
        for label, key in (("faithful before guard (LLM)", "before_guard"), ("faithful after guard (shown)",
                                                                              "after_guard"),
                           ("guard replaced the text", "replaced")):
            lines.append(f"  {label:28}{f[key]['count']:>6}/{n:<3}{100 * f[key]['share']:>8.1f}%")
        kinds = f["before_guard"].get("unfaithful_by_kind") or {}
        if kinds:
            lines.append("  unfaithful before guard, by kind: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
        if f["replaced"].get("reasons"):
            lines.append("  guard reasons: " + ", ".join(f"{k} {v}" for k, v in f["replaced"]["reasons"].items()))
        s = f.get("sentences")
        if s:
            lines += [f"  Sentences (tools/explain_check.py): {s['shown_sentences']} shown, "
                      f"{100 * s['shown_supported']:.1f}% supported, {100 * s['shown_repetition_rate']:.1f}% repeated; "
                      f"the LLM's {s['raw_sentences']}: {100 * s['raw_supported']:.1f}% supported, "
                      f"{100 * s['raw_repetition_rate']:.1f}% repeated",
                      f"  names one of the person's items: {100 * s['names_their_item']:.1f}% "
                      f"({100 * s['names_their_item_when_known']:.1f}% of the {s['with_their_items']} with such "
                      f"evidence)",
                      "  written by: " + ", ".join(f"{k} {v}" for k, v in s["written_by"].items())
                      + f" (LLM-written {100 * s['llm_written']:.1f}%); distinct texts {s['unique_ratio_shown']:.3f}; "
                      f"seconds per explanation p50 {s['seconds_p50']} / p95 {s['seconds_p95']}"]
            if s["raw_unsupported_by_kind"]:
                lines.append("  the LLM's unsupported claims, by kind: "
                             + ", ".join(f"{k} {v}" for k, v in s["raw_unsupported_by_kind"].items()))
        lines.append("")
    x = result.get("xrec_yelp")
    if x:
        lines += [f"XRec-yelp: {x['lines']} of {x['of_lines']} eval lines; ours: {x.get('model', 'LLM')}, "
                  f"prompt {x['variant']}; XRec: its own xrec_prediction",
                  f"  {'metric':16}{'ours':>10}{'XRec':>10}"]
        for key, label in (("minilm_cosine", "MiniLM cosine"), ("rouge_l", "ROUGE-L F1"), ("bleu4", "BLEU-4"),
                           ("unique_ratio", "unique ratio"), ("mean_words", "mean words")):
            lines.append(f"  {label:16}{x['ours'][key]:>10.4g}{x['xrec'][key]:>10.4g}")
        g = x.get("graph")
        if g:
            lines.append(f"  graph: LightGCN on {g['train_pairs']:,} pairs ({g['users']:,} users, {g['items']:,} "
                         f"businesses), {g['epochs_run']} epochs in {g['train_seconds']} s "
                         f"(valid NDCG@20 {g['valid_ndcg@20']})")
        lines.append("")
    t = result.get("tune")
    if t:
        lines += [f"Prompt variants on {t['train_lines']} train.jsonl lines (criterion: {t['criterion']})",
                  f"  {'variant':30}{'cosine':>8}{'ROUGE-L':>9}{'BLEU-4':>8}{'unique':>8}"]
        for name, s in t["variants"].items():
            lines.append(f"  {name:30}{s['minilm_cosine']:>8.4f}{s['rouge_l']:>9.4f}{s['bleu4']:>8.4f}"
                         f"{s['unique_ratio']:>8.3f}" + ("   <- best" if name == t["best"] else ""))
    return "\n".join(lines).rstrip()


def run(settings, *, part: str = "all", users: int = DEFAULT_USERS, seed: int = DEFAULT_SEED,
        limit: int | None = None, xrec_path: Path | None = None, variant: str = DEFAULT_VARIANT,
        use_graph: bool = True, graph_epochs: int | None = None, tune_lines: int = 50, retrain_graph: bool = False,
        progress: bool = True,
        build_agent: Callable | None = None, echo: Callable[[str], None] = print) -> dict:
    """Everything ``chatrec eval-explain`` does but printing: returns the result dict."""
    from agent.evals.runs import model_name

    result: dict = {}
    if part in ("faithfulness", "all"):
        from agent.agent import Agent

        agent = build_agent() if build_agent else Agent.from_settings(settings, progress=progress)
        chosen = sample_test_users(agent.tool.recommender, users, seed, settings.home)
        result["faithfulness"] = faithfulness(agent, chosen, progress=progress) | {"seed": seed}
        del agent
    if part in ("xrec", "tune", "all"):
        from agent.llm import make_chat_model

        directory = xrec_dir(xrec_path)
        llm = make_chat_model(settings)
        graph = None  # trained whenever allowed: its facts are reported; a "+graph" variant also prompts with them
        if use_graph:
            graph = train_graph(directory, epochs=graph_epochs or GRAPH_EPOCHS, progress=progress, threads=settings.threads,
                                cache_dir=Path(settings.home) / "models" / "xrec-yelp", retrain=retrain_graph)
        if part == "tune":
            result["tune"] = tune(llm, directory, n=tune_lines, seed=seed, graph=graph, progress=progress)
            if graph is not None:
                result["tune"]["graph"] = graph.facts
        else:
            x = xrec_benchmark(llm, directory, limit=limit, seed=seed, variant=variant, graph=graph,
                               progress=progress)
            x["model"] = model_name(settings)
            if graph is not None:
                x["graph"] = graph.facts
            result["xrec_yelp"] = x
    if not result:
        raise ValueError(f"unknown part {part!r}: faithfulness, xrec, tune or all")
    return result


__all__ = ["Variant", "XRecDataError", "XRecExplainer", "corpus_bleu", "faithfulness",
           "format_table", "lcs_length", "minilm_cosines", "rouge_l", "run", "score_texts", "sentence_figures",
           "tokens", "train_graph", "tune", "unique_ratio", "xrec_benchmark", "xrec_dir"]
