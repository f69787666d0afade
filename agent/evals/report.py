"""``chatrec report``: the latest measurement runs as one page people can read.

Reads the newest saved run of each kind from ``<home>/runs/`` (:mod:`agent.evals.runs`) and writes
``report.md`` and ``report.html`` (the same sections) with PNG figures beside them:

- simulated users (``chatrec simulate``): hit rate by turn per system, and the summary table;
- offline re-rank (``chatrec eval-rerank``): P@5 / R@5 / NDCG@5 per method with intervals;
- router and latency (``chatrec eval-dialogues``): the intent confusion matrix and histograms of
  seconds per agent step (router, candidates, rerank, reply, total);
- explanations (``chatrec eval-explain``): faithfulness before / after the guard, and ours
  next to XRec's own explanations on XRec-yelp;
- real dialogues (``chatrec eval-crs``): Recall@1/10/50, NDCG@10, MRR@10 per system on ReDial,
  recall@10 with intervals, and the paired differences;
- books for movie lovers (``python -m bench.cross_domain``): the held-out film's source book,
  Hit@10 / MRR@10 with intervals per system, genre share, candidate seconds.

Every section opens with the line that says where its figures come from: command, model,
backend, dataset, seed, date and machine. A kind with no run yet says which command makes one.
Files are written to temp names and renamed, so a report is never half-written.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.evals.runs import latest_run
from recsys.io import atomic_path, atomic_write_text
from tools.vocabulary import INTENTS

STEPS = ("router", "candidates", "rerank", "reply", "total")
MAKE = {"simulate": "chatrec simulate --users 200 --seed 0",
        "rerank": "chatrec eval-rerank --users 200 --seed 0 --json",
        "dialogues": "chatrec eval-dialogues evaluation/dialogues/*.yaml",
        "explain": "chatrec eval-explain --part all",
        "crs": "chatrec eval-crs ../shared/benchmarks/redial/valid_data_processed.jsonl "
               "--items ../shared/benchmarks/redial/id2info.json",
        "cross_domain": "python -m bench.cross_domain --seed 0"}


@dataclass
class Section:
    title: str
    source: str = ""  # where the figures come from (the run's meta), or how to make them
    figures: list[str] = field(default_factory=list)  # PNG file names beside the report
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)  # (header, rows)
    notes: list[str] = field(default_factory=list)


def provenance(run: dict) -> str:
    m = run["meta"]
    seed = "—" if m.get("seed") is None else m["seed"]
    return (f"`{m.get('command', '?')}` · model {m.get('model', '?')} · backend {m.get('backend', '?')} · "
            f"dataset {m.get('dataset', '?')} · seed {seed} · {m.get('date', '?')} · {m.get('machine', '?')}")


def _missing(kind: str, title: str) -> Section:
    return Section(title, notes=[f"No run yet: `{MAKE[kind]}` makes one."])


def _ci(pair) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]" if pair else "—"


def _save(fig, path: Path, run: dict) -> None:
    """The figure with its provenance under it (a PNG is often seen without the page around it)."""
    import textwrap

    m = run["meta"]
    stamp = (f"{m.get('command', '?')}\nmodel {m.get('model', '?')}, backend {m.get('backend', '?')}, dataset "
             f"{m.get('dataset', '?')}, seed {'—' if m.get('seed') is None else m['seed']}, {m.get('date', '?')}, {m.get('machine', '?')}")
    width = max(60, int(fig.get_figwidth() * 15))
    below = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()  # under the tick labels
    fig.text(0, below - 0.03, "\n".join(textwrap.fill(line, width) for line in stamp.splitlines()),
             fontsize=6.5, color="#555", va="top", ha="left", transform=fig.transFigure)
    with atomic_path(path) as tmp:  # its name ends in .part: say it is a PNG
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


# ---------------------------------------------------------------------------------- sections

def simulate_section(run: dict | None, out: Path, plt) -> Section:
    title = "Simulated users"
    if run is None:
        return _missing("simulate", title)
    summary = run["result"]["summary"]
    systems = [s for s in ("agent", "agent_no_rerank", "graph_only") if s in summary]
    sec = Section(title, provenance(run))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for n, name in enumerate(systems):
        hits = summary[name]["hit_at"]
        ax.plot(range(1, len(hits) + 1), hits, marker="o", label=name)
        low, high = summary[name]["hit_rate_ci95"]
        offset = (n - (len(systems) - 1) / 2) * 0.08  # side by side, not on top of each other
        ax.errorbar([len(hits) + offset], [summary[name]["hit_rate"]], yerr=[[summary[name]["hit_rate"] - low],
                                                                    [high - summary[name]["hit_rate"]]],
                    capsize=4, color=ax.lines[-1].get_color())
    ax.set(xlabel="turn", ylabel="share of users with the target shown", ylim=(0, 1.02),
           title=f"Hit by turn, {summary['users']} users, {summary.get('simulator', '?')} simulator")
    ax.set_xticks(range(1, 6))
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, out / "simulate_hits.png", run)
    plt.close(fig)
    sec.figures.append("simulate_hits.png")
    header = ["system", "hit rate", "95% CI", "avg turns (miss = 6)", "95% CI", "Hit@1..5 turns"]
    rows = [[name, f"{s['hit_rate']:.3f}", _ci(s["hit_rate_ci95"]), f"{s['avg_turns']:.2f}",
             _ci(s.get("avg_turns_ci95")), " ".join(f"{h:.3f}" for h in s["hit_at"])]
            for name, s in ((n, summary[n]) for n in systems)]
    sec.tables.append((header, rows))
    return sec


def rerank_section(run: dict | None, out: Path, plt) -> Section:
    title = "Offline re-rank (Chat-Rec protocol)"
    if run is None:
        return _missing("rerank", title)
    result = run["result"]
    methods = [m for m, v in result.items() if isinstance(v, dict) and "ndcg@5" in v]
    sec = Section(title, provenance(run))
    header = ["method", "P@5", "R@5", "NDCG@5", "NDCG@5 95% CI", "NDCG@5 − graph, 95% CI"]
    rows = [[m, f"{v['precision@5']:.4f}", f"{v['recall@5']:.4f}", f"{v['ndcg@5']:.4f}",
             _ci(v.get("ndcg@5_ci95")), _ci(v.get("ndcg@5_diff_ci95")) if m != "graph" else "—"]
            for m, v in ((m, result[m]) for m in methods)]
    sec.tables.append((header, rows))
    fig, ax = plt.subplots(figsize=(5, 3))
    values = [result[m]["ndcg@5"] for m in methods]
    errors = [[v - result[m].get("ndcg@5_ci95", [v, v])[0] for m, v in zip(methods, values)],
              [result[m].get("ndcg@5_ci95", [v, v])[1] - v for m, v in zip(methods, values)]]
    ax.bar(methods, values, yerr=errors, capsize=5, color=["#888"] + ["#4477aa"] * (len(methods) - 1))
    ax.set(ylabel="NDCG@5", title="Top-5 from the graph's top-20")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, out / "rerank_ndcg.png", run)
    plt.close(fig)
    sec.figures.append("rerank_ndcg.png")
    sec.notes += list(result.get("verdict", {}).values())
    return sec


def router_section(run: dict | None, out: Path, plt) -> Section:
    title = "Router (scripted dialogues)"
    if run is None:
        return _missing("dialogues", title)
    turns = [t for d in run["result"]["dialogues"] for t in d["turns"] if "expected_intent" in t]
    sec = Section(title, provenance(run))
    summary = run["result"]["summary"]
    sec.notes.append(f"{summary['dialogues_passed']}/{summary['dialogues']} dialogues passed, "
                     f"{summary['checks_passed']}/{summary['checks']} checks.")
    if not turns:
        sec.notes.append("This run has no expected intents per turn (made before they were recorded).")
        return sec
    got_labels = [t["intent"] or "error" for t in turns]
    labels = [i for i in INTENTS if i in got_labels or any(t["expected_intent"] == i for t in turns)]
    labels += sorted(set(got_labels) - set(labels))
    counts = Counter((t["expected_intent"], g) for t, g in zip(turns, got_labels))
    matrix = [[counts[(e, g)] for g in labels] for e in labels]
    right = sum(counts[(i, i)] for i in labels)
    sec.notes.append(f"Intent accuracy on the {len(turns)} turns that expect one: {right / len(turns):.1%}.")
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="router said", ylabel="expected", title="Intent confusion matrix")
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > top / 2 else "black")
    _save(fig, out / "router_confusion.png", run)
    plt.close(fig)
    sec.figures.append("router_confusion.png")
    sec.tables.append((["expected \\ said", *labels], [[e, *map(str, row)] for e, row in zip(labels, matrix)]))
    return sec


def latency_section(run: dict | None, out: Path, plt) -> Section:
    title = "Latency per step (scripted dialogues)"
    if run is None:
        return _missing("dialogues", title)
    sec = Section(title, provenance(run))
    turns = [t for d in run["result"]["dialogues"] for t in d["turns"]]
    steps = {s: [t["timings"][s] for t in turns if s in t.get("timings", {})] for s in STEPS}
    steps = {s: v for s, v in steps.items() if v}
    if not steps:
        sec.notes.append("This run has no per-step timings (made before they were recorded).")
        return sec
    fig, axes = plt.subplots(1, len(steps), figsize=(2.6 * len(steps), 2.8), squeeze=False)
    for ax, (step, values) in zip(axes[0], steps.items()):
        ax.hist(values, bins=20, color="#4477aa")
        ax.set(title=step, xlabel="seconds")
    axes[0][0].set_ylabel("turns")
    fig.tight_layout()
    _save(fig, out / "latency_steps.png", run)
    plt.close(fig)
    sec.figures.append("latency_steps.png")
    sec.tables.append((["step", "turns", "p50 s", "p95 s", "max s"],  # percentiles as in the dialogue summary
                       [[s, str(len(v)), *(f"{np.percentile(v, q):.3f}" for q in (50, 95)), f"{max(v):.3f}"]
                        for s, v in steps.items()]))
    return sec


def explain_sections(faith: dict | None, xrec: dict | None, out: Path, plt) -> list[Section]:
    sections = []
    if faith is None:
        sections.append(_missing("explain", "Explanation faithfulness"))
    else:
        f = faith["result"]["faithfulness"]
        sec = Section("Explanation faithfulness", provenance(faith))
        sec.tables.append((["", "faithful", "share"],
                           [["before the guard (the LLM's text)", f"{f['before_guard']['count']}/{f['explanations']}",
                             f"{f['before_guard']['share']:.1%}"],
                            ["after the guard (what people see)", f"{f['after_guard']['count']}/{f['explanations']}",
                             f"{f['after_guard']['share']:.1%}"]]))
        reasons = ", ".join(f"{k} {v}" for k, v in f["replaced"].get("reasons", {}).items()) or "none"
        sec.notes.append(f"{f['replaced']['count']} texts replaced by the evidence sentence ({reasons}); "
                         f"unfaithful before the guard by kind: "
                         + (", ".join(f"{k} {v}" for k, v in f["before_guard"].get("unfaithful_by_kind", {}).items())
                            or "none") + ".")
        if s := f.get("sentences"):  # sentence by sentence (issue 29): runs before it lack this part
            sec.tables.append((["shown explanations, sentence by sentence", "share"],
                               [["sentences backed by the evidence", f"{s['shown_supported']:.1%}"],
                                ["sentences repeated", f"{s['shown_repetition_rate']:.1%}"],
                                ["explanations naming one of the person's items", f"{s['names_their_item']:.1%}"],
                                ["written by the LLM (not the evidence sentence)", f"{s['llm_written']:.1%}"]]))
            sec.notes.append("written by: " + (", ".join(f"{k} {v}" for k, v in s["written_by"].items()) or "none")
                             + f"; seconds per explanation p95 {s['seconds_p95']}.")
        sections.append(sec)
    if xrec is None:
        sections.append(_missing("explain", "Explanations on XRec-yelp"))
        return sections
    x = xrec["result"]["xrec_yelp"]
    sec = Section("Explanations on XRec-yelp, ours next to XRec's", provenance(xrec))
    metrics = [("minilm_cosine", "MiniLM cosine"), ("rouge_l", "ROUGE-L"), ("bleu4", "BLEU-4"),
               ("unique_ratio", "unique ratio")]
    sec.tables.append((["metric", "ours", "XRec"], [[name, f"{x['ours'][k]:.4f}", f"{x['xrec'][k]:.4f}"]
                                                    for k, name in metrics]))
    fig, ax = plt.subplots(figsize=(6, 3))
    positions = range(len(metrics))
    ax.bar([p - 0.2 for p in positions], [x["ours"][k] for k, _ in metrics], 0.4, label=f"ours ({x.get('model', '?')})")
    ax.bar([p + 0.2 for p in positions], [x["xrec"][k] for k, _ in metrics], 0.4, label="XRec", color="#999")
    ax.set_xticks(list(positions), [n for _, n in metrics])
    ax.set(ylim=(0, 1.3), title=f"{x['lines']} eval lines")
    ax.legend(loc="upper left", ncol=2, fontsize=8)
    _save(fig, out / "xrec_metrics.png", xrec)
    plt.close(fig)
    sec.figures.append("xrec_metrics.png")
    sections.append(sec)
    return sections


def crs_section(run: dict | None, out: Path, plt) -> Section:
    title = "Real dialogues (ReDial, iEvaLM protocol)"
    if run is None:
        return _missing("crs", title)
    summary = run["result"]["summary"]
    systems = list(summary["systems"])
    sec = Section(title, provenance(run))
    header = ["system", "R@1", "R@10", "R@10 95% CI", "R@50", "NDCG@10", "MRR@10", "s/line"]
    rows = [[name, f"{s['recall@1']:.3f}", f"{s['recall@10']:.3f}", _ci(s.get("recall@10_ci95")),
             f"{s['recall@50']:.3f}", f"{s['ndcg@10']:.3f}", f"{s['mrr@10']:.3f}",
             f"{s['seconds_per_line']:.3f}" if "seconds_per_line" in s else "—"]
            for name, s in ((n, summary["systems"][n]) for n in systems)]
    sec.tables.append((header, rows))
    if summary.get("paired"):
        sec.tables.append((["recall@10 difference", "", "95% CI (paired, dialogues resampled)"],
                           [[pair, f"{p['recall@10_diff']:+.3f}", _ci(p.get("recall@10_diff_ci95"))]
                            for pair, p in summary["paired"].items()]))
    fig, ax = plt.subplots(figsize=(5, 3))
    values = [summary["systems"][n]["recall@10"] for n in systems]
    cis = [summary["systems"][n].get("recall@10_ci95") or [v, v] for n, v in zip(systems, values)]
    ax.bar(systems, values, yerr=[[v - c[0] for v, c in zip(values, cis)], [c[1] - v for v, c in zip(values, cis)]],
           capsize=5, color=["#888" if n == "popularity" else "#4477aa" for n in systems])
    ax.set(ylabel="Recall@10", title=f"{summary['lines']} turns, {summary['labels']} labels")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, out / "crs_recall10.png", run)
    plt.close(fig)
    sec.figures.append("crs_recall10.png")
    sec.notes.append(f"Labels the catalogue holds (coverage): {summary['coverage']:.1%}. Each label of a turn "
                     "counts on its own (iEvaLM's RecMetric); intervals resample dialogues.")
    mentioned = summary.get("mentioned", "leave-out")  # runs made before --mentioned left them out
    sec.notes.append("Films the dialogue already named: " + (
        "ranked first, the latest first (--mentioned first; the chat agent never offers them)."
        if mentioned == "first" else "left out, as the chat agent does (--mentioned leave-out)."))
    return sec


CROSS_DOMAIN_SYSTEMS = {"chat_words": "agent reading the request in words", "chat": "agent, chat user naming films",
                        "dataset": "agent, dataset user",
                        "popular": "popular books", "request_text": "request text alone (before issue 27)",
                        "liked_text": "liked films' descriptions"}


def cross_domain_section(run: dict | None, out: Path, plt) -> Section:
    title = "Books for movie lovers (cross-domain)"
    if run is None:
        return _missing("cross_domain", title)
    result = run["result"]
    systems = [s for s in CROSS_DOMAIN_SYSTEMS if s in result.get("systems", {})]
    sec = Section(title, provenance(run))
    precision = result.get("pair_precision")
    sec.notes.append(
        f"{result['pairs']} film ↔ source-book pairs ({result.get('pairs_ml100k', '?')} of them ml-100k films); "
        f"hand-checked precision {'—' if precision is None else f'{precision:.2f}'} on {result.get('pairs_checked', 0)} "
        f"pairs. {result['users']} ml-100k users with at least {result.get('min_adapted', '?')} liked adapted films, "
        f"one held out (a film the model never saw for them); the target is its source book.")
    header = ["system", "Hit@10", "95% CI", "MRR@10", "95% CI", "genre share@10", "candidate s p95"]
    rows = []
    for name in systems:
        r = result["systems"][name]
        share = r.get("genre_share@10")
        rows.append([CROSS_DOMAIN_SYSTEMS[name], f"{r['hit@10']:.3f}", _ci(r.get("hit@10_ci95")), f"{r['mrr@10']:.3f}",
                     _ci(r.get("mrr@10_ci95")), "—" if share is None else f"{share:.2f}",
                     f"{r['seconds_p95']:.3f}" if "seconds_p95" in r else "—"])
    sec.tables.append((header, rows))
    fig, ax = plt.subplots(figsize=(6, 3))
    values = [result["systems"][n]["hit@10"] for n in systems]
    cis = [result["systems"][n].get("hit@10_ci95") or [v, v] for n, v in zip(systems, values)]
    ax.bar(systems, values, yerr=[[v - c[0] for v, c in zip(values, cis)], [c[1] - v for v, c in zip(values, cis)]],
           capsize=5, color=["#4477aa" if n in ("chat_words", "chat", "dataset") else "#888" for n in systems])
    ax.set(ylabel="source-book Hit@10", title=f"{result['users']} users, held-out adapted film")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, out / "cross_domain_hit10.png", run)
    plt.close(fig)
    sec.figures.append("cross_domain_hit10.png")
    sec.notes.append("Genre share: of the top-10 books whose genres are known (those made into a film), the share "
                     "sharing one of the person's three main film genres.")
    return sec


# --------------------------------------------------------------------------------- rendering

def to_markdown(sections: list[Section], heading: str) -> str:
    lines = [f"# {heading}", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        if sec.source:
            lines += [f"From {sec.source}", ""]
        for fig in sec.figures:
            lines += [f"![{sec.title}]({fig})", ""]
        for header, rows in sec.tables:
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
        lines += [*sec.notes, ""] if sec.notes else []
    return "\n".join(lines)


def _inline(text: str) -> str:
    """HTML-escaped, with `code` spans."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(sections: list[Section], heading: str) -> str:
    body = [f"<h1>{html.escape(heading)}</h1>"]
    for sec in sections:
        body.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.source:
            body.append(f'<p class="source">From {_inline(sec.source)}</p>')
        body += [f'<img src="{html.escape(f)}" alt="{html.escape(sec.title)}">' for f in sec.figures]
        for header, rows in sec.tables:
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                        + "</table>")
        body += [f"<p>{_inline(n)}</p>" for n in sec.notes]
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
             "table{border-collapse:collapse;margin:.8rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem}"
             "th{background:#f3f3f3}.source{color:#555;font-size:.9rem}img{max-width:100%;display:block}")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>'
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def build_report(home: Path, out: Path) -> dict:
    """Write report.md, report.html and the figures into ``out``; returns what it used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    runs = {"simulate": latest_run("simulate", home), "rerank": latest_run("rerank", home),
            "dialogues": latest_run("dialogues", home),
            "faithfulness": latest_run("explain", home, having="faithfulness"),
            "xrec": latest_run("explain", home, having="xrec_yelp"), "crs": latest_run("crs", home),
            "cross_domain": latest_run("cross_domain", home)}
    sections = [simulate_section(runs["simulate"], out, plt), rerank_section(runs["rerank"], out, plt),
                router_section(runs["dialogues"], out, plt), latency_section(runs["dialogues"], out, plt),
                *explain_sections(runs["faithfulness"], runs["xrec"], out, plt), crs_section(runs["crs"], out, plt),
                cross_domain_section(runs["cross_domain"], out, plt)]
    heading = "chatrec measurements"
    atomic_write_text(out / "report.md", to_markdown(sections, heading))
    atomic_write_text(out / "report.html", to_html(sections, heading))
    return {"out": str(out), "runs": {k: (v["path"] if v else None) for k, v in runs.items()},
            "figures": [f for s in sections for f in s.figures]}


__all__ = ["Section", "build_report", "provenance", "to_html", "to_markdown"]
