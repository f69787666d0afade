"""Conversational recommendation on real dialogues: ReDial in iEvaLM's processed format (``chatrec eval-crs``).

The file (``valid_data_processed.jsonl``, see ``../shared/benchmarks/README.md`` "redial/") holds
one JSON object per recommender turn that recommends something: ``dialog_id``, ``turn_id``,
``context`` (the turns so far; index 0, 2, 4, … the seeker, 1, 3, … the recommender; movie
mentions written "Title (Year)"), ``entity`` (the movies and genres mentioned so far, one per
mention), ``rec`` (the movies the turn recommends: the labels) and ``resp`` (its words). Every
system ranks the catalogue (``id2info.json``: id → {"name": "Title (Year)", …}) given the context,
and the ranking is scored against ``rec``.

The metric (:func:`score_ranking`) is iEvaLM-CRS's ``RecMetric`` (``src/model/metric.py`` of
RUCAIBox/iEvaLM-CRS, read in the txy77/iEvaLM-CRS copy, with ``script/Rec_eval.py`` that calls
it): every label of ``rec`` is scored on its own (a label twice in ``rec`` counts twice), and the
figures are sums over all labels of the file divided by the number of labels (a micro-average,
not a mean of per-line means):

- Recall@k: 1 when the label is among the first k, else 0;
- NDCG@k: ``1 / log2(rank + 2)`` with the 0-based rank of the label, when it is among the first
  k, else 0 (one relevant item per label, so no ideal-DCG division: the ideal DCG is 1);
- MRR@k: ``1 / (rank + 1)`` when the label is among the first k, else 0.

Two choices of ours: the ranking is de-duplicated first, keeping each name's first place (iEvaLM
looks a label up with ``list.index``, which also takes the first place, but a repeated name
would still push the ones after it down), and cut to 50; and a label whose name is not in the
catalogue stays in the count as a miss (iEvaLM's ``Rec_eval.py`` drops labels missing from its
``entity2id``). ``coverage`` says how many labels the catalogue can rank at all: every label of
the valid file (3,595 of 3,595), so on valid both choices give the same figures.

Intervals: ``recall@10_ci95`` is a 95% percentile bootstrap that resamples dialogues (the lines
of one dialogue share a seeker and a context, so they are not independent), recomputing the
label-weighted ratio on each resample; ``paired`` gives each pair of systems' recall@10
difference on the same resampled dialogues. Both use :mod:`agent.evals.stats`' draws.

Systems (:class:`CrsSystem`) get the lines in file order: a dialogue's lines come one after
another, each context extending the previous one (:func:`read_crs_file` checks this), so a
system may keep per-dialogue state keyed by ``dialog_id`` and read only the new turns.
``popularity`` lives here (:class:`PopularitySystem`); ``graph`` and ``agent`` come from
``agent.evals.crs_systems.make_system``, imported only when asked for (:func:`make_systems`).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from recsys.data import DataError

_NAME_YEAR = re.compile(r"\((1[89]\d\d|20\d\d)\)\s*$")  # "Heat (1995)"

K = 50  # how many names a system returns per line (Recall@50 needs 50)
CUTOFFS = (1, 10, 50)
SYSTEMS = ("agent", "graph", "popularity")  # what --system takes; all three by default
# what agent and graph do with the films the dialogue already named (agent.evals.crs_systems)
MENTIONED = ("first", "leave-out")
METRICS = ("recall@1", "recall@10", "recall@50", "ndcg@10", "mrr@10")
N_BOOT = 2000
SEED = 0


# ------------------------------------------------------------------------------------ reading

@dataclass
class CrsLine:
    """One recommender turn of a dialogue: the context before it and the movies it recommends."""

    dialog_id: str
    turn_id: int
    context: list[str]
    entity: list[str]
    rec: list[str]
    resp: str
    line_no: int  # 1-based line of the file, for messages


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def read_crs_file(path: Path | str) -> list[CrsLine]:
    """Every line of an iEvaLM processed ReDial file, checked before anything runs.

    Raises :class:`recsys.data.DataError` naming the file, the line and the reason for: a file that
    cannot be read, a line that is not a JSON object, a missing field or one of the wrong type
    (``dialog_id`` str, ``turn_id`` int, ``context`` / ``entity`` / ``rec`` lists of str,
    ``resp`` str), an empty ``rec`` or an empty label, a dialogue whose lines are not one after
    another, or a context that does not extend the previous line's of its dialogue (systems rely
    on both). Blank lines are skipped; other fields (iEvaLM's ``template``) are ignored.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    lines: list[CrsLine] = []
    finished: set[str] = set()  # dialogues whose lines are over
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue

        def bad(reason: str) -> DataError:
            return DataError(f"{path}:{number}: {reason}")

        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise bad(f"not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise bad(f"a JSON object expected, not {type(obj).__name__}")
        for key in ("dialog_id", "turn_id", "context", "entity", "rec", "resp"):
            if key not in obj:
                raise bad(f"missing field {key!r}")
        if not isinstance(obj["dialog_id"], str) or not obj["dialog_id"]:
            raise bad(f"dialog_id must be a non-empty string, not {obj['dialog_id']!r}")
        if not isinstance(obj["turn_id"], int) or isinstance(obj["turn_id"], bool):
            raise bad(f"turn_id must be an integer, not {obj['turn_id']!r}")
        for key in ("context", "entity", "rec"):
            if not _str_list(obj[key]):
                raise bad(f"{key} must be a list of strings")
        if not isinstance(obj["resp"], str):
            raise bad("resp must be a string")
        if not obj["context"]:
            raise bad("context is empty")
        if not obj["rec"]:
            raise bad("rec is empty: a line needs at least one label")
        if any(not label.strip() for label in obj["rec"]):
            raise bad("rec holds an empty label")
        line = CrsLine(obj["dialog_id"], obj["turn_id"], list(obj["context"]), list(obj["entity"]),
                       list(obj["rec"]), obj["resp"], number)
        prev = lines[-1] if lines else None
        if prev is not None and prev.dialog_id == line.dialog_id:
            if line.context[:len(prev.context)] != prev.context or len(line.context) <= len(prev.context):
                raise bad(f"the context of dialogue {line.dialog_id} does not extend its previous line's "
                          f"(line {prev.line_no})")
        else:
            if line.dialog_id in finished:
                raise bad(f"dialogue {line.dialog_id} comes back after other dialogues: a dialogue's lines "
                          "must be one after another")
            if prev is not None:
                finished.add(prev.dialog_id)
        lines.append(line)
    if not lines:
        raise DataError(f"{path}: no lines")
    return lines


def read_id2info(path: Path | str) -> dict[str, dict]:
    """The catalogue: ``id2info.json``, a JSON object id → {"name": "Title (Year)", …}; each value
    must be an object with a non-empty string ``name``. :class:`DataError` otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: a non-empty JSON object id -> {{name, ...}} expected")
    for key, info in data.items():
        if not isinstance(info, dict):
            raise DataError(f"{path}: item {key!r} is not an object")
        if not isinstance(info.get("name"), str) or not info["name"].strip():
            raise DataError(f"{path}: item {key!r} has no string 'name'")
    return data


def catalogue_names(id2info: Mapping[str, dict]) -> list[str]:
    """The catalogue's names, each once, in id2info's order (a few names belong to two ids)."""
    return list(dict.fromkeys(info["name"] for info in id2info.values()))


def catalogue_year(id2info: Mapping[str, dict]) -> int | None:
    """The newest film's year in the catalogue ("Title (Year)" names), None when no name has one:
    about when its dialogues were written, so the year their relative words ("recent") count from."""
    years = [int(m.group(1)) for info in id2info.values() if (m := _NAME_YEAR.search(info["name"]))]
    return max(years, default=None)


def read_as_of(this_year: int | None, id2info: Mapping[str, dict]) -> int | None:
    """The year a dialogue's relative words are read as of: ``TurnSettings.this_year`` when set,
    else the catalogue's newest film ("anything recent?" in a 2018 conversation meant the ten years
    before 2018, not before today)."""
    return this_year or catalogue_year(id2info)


# ------------------------------------------------------------------------------------ systems

@runtime_checkable
class CrsSystem(Protocol):
    """A conversational recommender under test: ranks catalogue names "Title (Year)" for a line.

    :func:`evaluate` calls :meth:`rank` once per line, in file order (a dialogue's lines one after
    another, each context extending the previous), so a system may keep per-dialogue state keyed
    by ``line.dialog_id`` and read only the turns it has not seen. It must not look at
    ``line.rec`` or ``line.resp`` (the answer)."""

    name: str

    def rank(self, line: CrsLine, k: int = K) -> list[str]:
        """Up to ``k`` catalogue names, best first."""
        ...


class PopularitySystem:
    """The most mentioned movies of the file's dialogues, the same list for everyone.

    Counted: for every line, each catalogue name in its ``entity`` (iEvaLM's linked mentions of
    the context, one per mention) and in its ``rec``; contexts grow line by line, so a mention
    early in a dialogue is counted once per later line of it. Ties keep the order of first
    mention in the file. On the whole valid file this gives R@1 / R@10 / R@50 = 0.011 / 0.064 /
    0.181 against the README's 0.009 / 0.063 / 0.181, which counting each raw message's ``item``
    list of ``valid_data.jsonl`` once reproduces exactly (that file has the turns after a
    dialogue's last recommendation, which the processed lines lack); the R@1 difference is the top
    movie (It (2017) here, Jumanji (2017) there): 6 labels of 3,595. It excludes nothing, not even
    movies already mentioned in the context, and it sees the labels of the file it is measured on:
    a floor for "same for everyone", not a fair competitor.
    """

    name = "popularity"

    def __init__(self, lines: Iterable[CrsLine], catalogue_names: Iterable[str]) -> None:
        names = set(catalogue_names)
        counts: Counter[str] = Counter()
        for line in lines:
            counts.update(m for m in (*line.entity, *line.rec) if m in names)
        self.counts = counts
        self.ranking = [name for name, _ in counts.most_common()]  # most_common keeps first-seen order on ties

    def rank(self, line: CrsLine, k: int = K) -> list[str]:
        return self.ranking[:k]


def make_systems(names: Sequence[str], *, lines: list[CrsLine], id2info: dict[str, dict],
                 settings=None, graph_dataset: str = "ml-100k", mentioned: str = "first") -> dict[str, CrsSystem]:
    """Build the named systems, in the order given.

    ``popularity`` is built here from ``lines`` (every line of the file: ``--limit`` only picks
    which lines are measured); ``agent`` and ``graph`` come from
    :func:`agent.evals.crs_systems.make_system` (imported only when asked for: it loads the
    agent), over a graph trained on ``graph_dataset``, doing ``mentioned`` (one of :data:`MENTIONED`)
    with the films the dialogue named. Raises :class:`ValueError` for an unknown name.
    """
    if unknown := [n for n in names if n not in SYSTEMS]:
        raise ValueError(f"unknown system {', '.join(unknown)}: choose from {', '.join(SYSTEMS)}")
    systems: dict[str, CrsSystem] = {}
    for name in dict.fromkeys(names):
        if name == "popularity":
            systems[name] = PopularitySystem(lines, catalogue_names(id2info))
            continue
        from agent.evals.crs_systems import make_system

        systems[name] = make_system(name, lines=lines, id2info=id2info, settings=settings,
                                    graph_dataset=graph_dataset, mentioned=mentioned)
    return systems


# ------------------------------------------------------------------------------------ metric

def dedupe(ranked: Iterable[str], k: int = K) -> list[str]:
    """The first ``k`` distinct names, each at its first place."""
    return list(dict.fromkeys(ranked))[:k]


def score_ranking(ranked: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """One line's figures, iEvaLM's ``RecMetric`` (see the module docstring): ``labels`` = how many
    labels (repeats counted), and for each of :data:`METRICS` the SUM over the labels (divide by
    ``labels`` for the line's mean; the file's figure is the sum of sums over the sum of labels).
    The ranking is de-duplicated (first place kept) and cut to 50 first."""
    ranked = dedupe(ranked)
    place = {name: i for i, name in enumerate(ranked)}
    out = {"labels": len(labels), **{m: 0.0 for m in METRICS}}
    for label in labels:
        rank = place.get(label)
        if rank is None:
            continue
        for k in CUTOFFS:
            out[f"recall@{k}"] += rank < k
        if rank < 10:
            out["ndcg@10"] += 1 / math.log2(rank + 2)
            out["mrr@10"] += 1 / (rank + 1)
    return out


def _ratio_ci(hits: np.ndarray, labels: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED) -> list[float]:
    """95% bootstrap interval of sum(hits) / sum(labels) over resampled dialogues: the same seed
    and length draw the same dialogues in :func:`stats.bootstrap_means`, so the ratio of the two
    means is the ratio on each resample."""
    from agent.evals.stats import bootstrap_means

    ratios = bootstrap_means(hits, n_boot, seed) / bootstrap_means(labels, n_boot, seed)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return [round(float(low), 4), round(float(high), 4)]


# ------------------------------------------------------------------------------------ the run

def evaluate(lines: Sequence[CrsLine], systems: Mapping[str, CrsSystem], id2info: Mapping[str, dict],
             progress: bool = True, n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """Every system ranks every line (in file order); the result is the ``eval-crs`` JSON:
    ``{"summary": {lines, labels, coverage, seconds_per_line, systems: {name: {recall@1, recall@10,
    recall@50, ndcg@10, mrr@10, recall@10_ci95, seconds_per_line}}, dialogues, paired, examples},
    "lines": [{dialog_id, turn_id, rec, ranked: {name: top-50 names}}]}``.

    ``seconds_per_line``: the wall time of all systems' ``rank`` calls over the lines (per system
    inside its figures). ``paired["A - B"]``: recall@10 of A minus B with a paired bootstrap 95%
    interval (same resampled dialogues), for each pair in the order given. ``examples``: up to 5
    lines where ``agent`` (or the first system) has a label in its top 10 and 5 where it has none,
    each from a different dialogue, with the last 3 turns, its top 5 and the labels.
    """
    from tqdm import tqdm

    names = list(systems)
    if not names:
        raise ValueError("no system to evaluate")
    catalogue = {info["name"] for info in id2info.values()}
    seconds = dict.fromkeys(names, 0.0)
    scores: dict[str, list[dict]] = {n: [] for n in names}
    out_lines = []
    for line in tqdm(lines, desc="eval-crs", unit="line", disable=not progress):
        ranked = {}
        for name, system in systems.items():
            start = time.perf_counter()
            got = system.rank(line, K)
            seconds[name] += time.perf_counter() - start
            if not isinstance(got, (list, tuple)) or not all(isinstance(g, str) for g in got):
                raise TypeError(f"system {name!r} must return a list of names, got {type(got).__name__}")
            ranked[name] = dedupe(got)
            scores[name].append(score_ranking(ranked[name], line.rec))
        out_lines.append({"dialog_id": line.dialog_id, "turn_id": line.turn_id, "rec": list(line.rec),
                          "ranked": ranked})

    n_lines = len(lines)
    n_labels = sum(len(line.rec) for line in lines)
    covered = sum(label in catalogue for line in lines for label in line.rec)
    # per-dialogue sums: the bootstrap's unit
    dialogues = list(dict.fromkeys(line.dialog_id for line in lines))
    index = {d: i for i, d in enumerate(dialogues)}
    labels_by_d = np.zeros(len(dialogues))
    hits10 = {n: np.zeros(len(dialogues)) for n in names}
    for i, line in enumerate(lines):
        d = index[line.dialog_id]
        labels_by_d[d] += len(line.rec)
        for n in names:
            hits10[n][d] += scores[n][i]["recall@10"]

    figures = {}
    for n in names:
        figures[n] = {m: round(sum(s[m] for s in scores[n]) / n_labels, 4) for m in METRICS}
        figures[n]["recall@10_ci95"] = _ratio_ci(hits10[n], labels_by_d, n_boot, seed)
        figures[n]["seconds_per_line"] = round(seconds[n] / n_lines, 4)
        if steps := getattr(systems[n], "seconds_by_step", None):  # a system that says where its time goes
            figures[n]["seconds_per_line_by_step"] = {k: round(v / n_lines, 4) for k, v in steps.items()}
    paired = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = hits10[a] - hits10[b]
            paired[f"{a} - {b}"] = {"a": a, "b": b,
                                    "recall@10_diff": round(float(diff.sum() / labels_by_d.sum()), 4),
                                    "recall@10_diff_ci95": _ratio_ci(diff, labels_by_d, n_boot, seed)}
    summary = {"lines": n_lines, "labels": n_labels, "coverage": round(covered / n_labels, 4),
               "seconds_per_line": round(sum(seconds.values()) / n_lines, 4), "systems": figures,
               "dialogues": len(dialogues), "paired": paired,
               "examples": examples(lines, out_lines, "agent" if "agent" in names else names[0]),
               "protocol": "iEvaLM RecMetric: each label scored on its own, sums over labels / labels; "
                           "ranking de-duplicated, top 50; recall@10_ci95 resamples dialogues "
                           f"({n_boot} resamples, seed {seed})"}
    return {"summary": summary, "lines": out_lines}


def examples(lines: Sequence[CrsLine], out_lines: Sequence[dict], system: str, per_kind: int = 5) -> list[dict]:
    """Up to ``per_kind`` hits@10 and as many misses of ``system``, each from its own dialogue, in
    file order: the last 3 turns of the context, the system's top 5 and the labels."""
    chosen: dict[bool, list[dict]] = defaultdict(list)
    used: set[str] = set()
    for line, out in zip(lines, out_lines):
        top = out["ranked"][system]
        hit = any(label in top[:10] for label in line.rec)
        if line.dialog_id in used or len(chosen[hit]) >= per_kind:
            continue
        used.add(line.dialog_id)
        chosen[hit].append({"dialog_id": line.dialog_id, "turn_id": line.turn_id, "system": system, "hit@10": hit,
                            "context": line.context[-3:], "top5": top[:5], "labels": list(line.rec)})
        if len(chosen[True]) >= per_kind and len(chosen[False]) >= per_kind:
            break
    return chosen[True] + chosen[False]


def format_table(result: dict) -> str:
    """The console table: one row per system, then the paired differences."""
    s = result["summary"]
    rows = [f"{s['lines']} lines ({s.get('dialogues', '?')} dialogues), {s['labels']} labels, "
            f"coverage {s['coverage']:.3f} (labels the catalogue holds)",
            f"{'system':<12} {'R@1':>6} {'R@10':>6} {'R@50':>6} {'NDCG@10':>7} {'MRR@10':>6} "
            f"{'R@10 95% CI':>16} {'s/line':>7}"]
    for name, f in s["systems"].items():
        ci = f"[{f['recall@10_ci95'][0]:.3f}, {f['recall@10_ci95'][1]:.3f}]"
        rows.append(f"{name:<12} {f['recall@1']:>6.3f} {f['recall@10']:>6.3f} {f['recall@50']:>6.3f} "
                    f"{f['ndcg@10']:>7.3f} {f['mrr@10']:>6.3f} {ci:>16} {f.get('seconds_per_line', 0):>7.3f}")
    for pair, p in s.get("paired", {}).items():
        low, high = p["recall@10_diff_ci95"]
        verdict = "ahead" if low > 0 else "behind" if high < 0 else "no clear difference"
        rows.append(f"R@10 {pair}: {p['recall@10_diff']:+.3f} [{low:+.3f}, {high:+.3f}] ({verdict})")
    return "\n".join(rows)


__all__ = ["CrsLine", "CrsSystem", "PopularitySystem", "SYSTEMS", "catalogue_names", "catalogue_year", "read_as_of",
           "dedupe", "evaluate", "examples", "format_table", "make_systems", "read_crs_file", "read_id2info",
           "score_ranking"]
