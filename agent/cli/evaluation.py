"""``chatrec simulate``, ``eval-dialogues``, ``eval-explain``, ``eval-rerank``, ``eval-crs``, ``report``: measurements and their report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli.common import BackendOption, echo_json, fail, load_settings


def simulate(
    users: Annotated[int, typer.Option(min=1, help="how many ml-100k test users to simulate")] = 200,
    seed: Annotated[int, typer.Option(help="picks the users and their targets; the same seed, the same run")] = 0,
    simulator: Annotated[str, typer.Option(help="template (deterministic, no LLM) or llm (the configured backend "
                                                "writes the person's words)")] = "template",
    systems: Annotated[Optional[list[str]], typer.Option("--system", help="only these (repeatable): agent, "
                                                                          "agent_no_rerank, graph_only")] = None,
    backend: BackendOption = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write summary + transcripts as JSON here")] = None,
) -> None:
    """Simulated users (iEvaLM / InteRecAgent protocol): each holds out one test item, opens vaguely,
    rejects wrong lists and reveals one more fact per turn, never saying the title; 5 turns at most.
    Reports Hit@1..5 turns and average turns (a miss counts 6) with 95% intervals for the agent, the
    agent without re-rank, and the graph recommender alone, on the same users."""
    from agent.agent import Agent
    from agent.llm import LLMUnavailable
    from agent.evals.runs import run_meta, save_run
    from agent.evals.simulate import SYSTEMS, LLMSimulator, Simulation, TemplateSimulator, agent_systems, sample_users
    from recsys.io import write_json

    if simulator not in ("template", "llm"):
        fail(f"--simulator must be template or llm, not {simulator!r}")
    names = systems or list(SYSTEMS)
    if unknown := [n for n in names if n not in SYSTEMS]:
        fail(f"unknown --system {', '.join(unknown)}: choose from {', '.join(SYSTEMS)}")
    settings = load_settings(backend)
    try:
        agent = Agent.from_settings(settings)
    except (LLMUnavailable, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    sim = LLMSimulator(agent.llm, seed) if simulator == "llm" else TemplateSimulator(seed)
    people = sample_users(agent.tool, settings.home, users, seed)
    with tempfile.TemporaryDirectory(prefix="chatrec-sim-") as session_dir:
        result = Simulation(people, sim, agent_systems(agent, Path(session_dir), names)).run(progress=True)
    meta = run_meta(settings, dataset=agent.tool.recommender.dataset, seed=seed, users=len(people),
                    simulator=simulator, systems=names)
    saved = save_run("simulate", result, meta, settings.home)
    if json_out is not None:
        write_json(json_out, result)
    summary = result["summary"]
    typer.echo(f"{len(people)} simulated users, {simulator} simulator, seed {seed}")
    typer.echo(f"{'system':<17} {'hit rate':>8} {'95% CI':>15} {'avg turns':>9}  Hit@1..5 turns")
    for name in names:
        s = summary[name]
        ci = f"[{s['hit_rate_ci95'][0]:.3f}, {s['hit_rate_ci95'][1]:.3f}]"
        typer.echo(f"{name:<17} {s['hit_rate']:>8.3f} {ci:>15} {s['avg_turns']:>9.2f}  "
                   + " ".join(f"{h:.3f}" for h in s["hit_at"]))
    typer.echo(f"saved {saved}" + (f"; JSON in {json_out}" if json_out else ""))


def eval_dialogues(
    files: Annotated[list[Path], typer.Argument(help="YAML dialogue files (one dialogue, or several under dialogues:)")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the full report as JSON to this file")] = None,
    backend: BackendOption = None,
) -> None:
    """Run scripted dialogues against the agent and check every turn (format: agent/evals/dialogues.py,
    examples: evaluation/dialogues/). All files are validated first; exit 0 when every check
    passes, 1 when one fails, 2 on a bad file (the message names the file and line)."""
    from agent.evals.dialogues import DialogueFileError, evaluate, load_dialogues

    try:
        load_dialogues(files)  # before the agent loads: a typo costs no minute of start-up
    except DialogueFileError as exc:
        fail(f"bad dialogue file\n{exc}")
    settings = load_settings(backend)

    def build():
        from agent.agent import Agent
        from agent.llm import LLMUnavailable

        typer.echo("loading the agent…", err=True)
        try:
            return Agent.from_settings(settings)
        except (LLMUnavailable, FileNotFoundError, ValueError) as exc:
            fail(str(exc))

    try:
        code, report = evaluate(build, files, json_out, echo=typer.echo,
                                progress=lambda line: typer.echo(line, err=True))
    except DialogueFileError as exc:
        fail(f"bad dialogue file\n{exc}")
    from agent.evals.runs import run_meta, save_run

    folders = sorted({str(f.parent) for f in files})
    shown = " ".join(map(str, files)) if len(files) <= 3 else f"<{len(files)} files in {', '.join(folders)}>"
    command = f"chatrec eval-dialogues {shown}" + (f" --json {json_out}" if json_out else "") + (
        f" --backend {backend}" if backend else "")
    saved = save_run("dialogues", report, run_meta(settings, dataset=settings.dataset, seed=None, command=command,
                                                   files=[str(f) for f in files]), settings.home)
    typer.echo(f"saved {saved}" + (f"; report: {json_out}" if json_out is not None else ""))
    raise typer.Exit(code)


def eval_explain(
    users: Annotated[int, typer.Option(min=1, help="faithfulness: ml-100k test users (top-5 explained each)")] = 50,
    seed: Annotated[int, typer.Option(help="seed of the user sample and of the --limit line sample")] = 0,
    limit: Annotated[Optional[int], typer.Option(min=1, help="XRec-yelp: a fixed-seed sample of this many eval "
                                                            "lines (default: all)")] = None,
    part: Annotated[str, typer.Option(help="faithfulness, xrec, all, or tune (compare the prompt variants on "
                                           "train.jsonl)")] = "all",
    xrec_dir: Annotated[Optional[Path], typer.Option(help="the XRec-yelp benchmark directory (default: "
                                                          "../shared/benchmarks/xrec-yelp next to the repo)")] = None,
    variant: Annotated[Optional[str], typer.Option(help="XRec-yelp prompt: <instruction>[+shot<N>][+graph] "
                                                        "(prompts/xrec_variants.toml; default: the tuned one)")] = None,
    graph: Annotated[bool, typer.Option("--graph/--no-graph", help="XRec-yelp: train LightGCN on total_trn.csv "
                                                                    "(a +graph prompt uses its facts)")] = True,
    graph_epochs: Annotated[Optional[int], typer.Option(min=1, help="XRec-yelp: LightGCN epochs at most (default "
                                                                    "300; early stopping on total_val.csv ends it)")] = None,
    retrain_graph: Annotated[bool, typer.Option(help="XRec-yelp: train the graph again even when the data "
                                                     "home holds one trained on the same files")] = False,
    tune_lines: Annotated[int, typer.Option(min=1, help="--part tune: train.jsonl lines per variant")] = 50,
    backend: BackendOption = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the result as JSON to this file")] = None,
) -> None:
    """Explanation quality: faithfulness of the agent's explanations on ml-100k (before and after
    the guard) and XRec-yelp explanations scored against the references next to XRec's own
    (MiniLM cosine, ROUGE-L, BLEU-4, unique ratio). Saved as a run of kind "explain"."""
    from agent.evals import explain as ee
    from agent.llm import LLMUnavailable
    from recsys.io import atomic_write_text
    from agent.evals.runs import run_meta, save_run

    if part not in ("faithfulness", "xrec", "all", "tune"):
        fail(f"unknown --part {part!r}: faithfulness, xrec, all or tune")
    variant = variant or ee.DEFAULT_VARIANT
    try:
        ee.Variant.parse(variant)
        if part != "faithfulness":
            ee.xrec_dir(xrec_dir)  # before minutes of work: a missing directory fails at once
    except (ValueError, ee.XRecDataError) as exc:
        fail(str(exc))
    settings = load_settings(backend)
    try:
        result = ee.run(settings, part=part, users=users, seed=seed, limit=limit, xrec_path=xrec_dir,
                        variant=variant, use_graph=graph, graph_epochs=graph_epochs, tune_lines=tune_lines,
                        retrain_graph=retrain_graph)
    except (LLMUnavailable, ee.XRecDataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(ee.format_table(result))
    path = save_run("explain", result, run_meta(settings, dataset={"faithfulness": "ml-100k", "xrec": "xrec-yelp", "tune": "xrec-yelp train.jsonl"}.get(part, "ml-100k + xrec-yelp"), seed=seed, part=part,
                                                users=users, limit=limit, variant=variant, graph=graph),
                    settings.home)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_out, json.dumps(result, ensure_ascii=False, indent=1))
        typer.echo(f"result: {json_out}")
    typer.echo(f"saved: {path}")


def eval_rerank(
    users: Annotated[int, typer.Option(min=1, help="test users to sample (among those with a test item)")] = 200,
    seed: Annotated[int, typer.Option(help="seed for the user sample and the bootstrap")] = 0,
    backend: Annotated[Optional[str], typer.Option(help="local (default) or openai: the LLM that re-ranks")] = None,
    profile: Annotated[str, typer.Option(help="history order in the re-rank prompt: 'rated' (highest rating, "
                                              "then most recent first; what the agent serves) or 'agent' (the "
                                              "training-matrix order the agent served before)")] = "rated",
    bootstrap: Annotated[int, typer.Option(min=100, help="bootstrap resamples")] = 2000,
    codes: Annotated[bool, typer.Option(help="give the LLM BinLLM's collaborative codes of the person and the "
                                             "candidates (for an adapter from `tune train --codes`)")] = False,
    methods: Annotated[Optional[list[str]], typer.Option(
        "--method", help="re-rankers to measure besides the graph order (repeatable): llm (the whole order asked "
                         "for), pointwise (sorted by the LLM's P(yes) per candidate, InstructRec), fused (that rank "
                         "averaged with the graph rank), blend (graph score and P(yes) weighted by a model "
                         "fitted on validation lists), learned; default: llm and learned")] = None,
    fit_users: Annotated[int, typer.Option(min=1, help="users whose validation lists are asked (20 asks each) to fit "
                                                       "the blend's weights")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as one JSON object")] = False,
) -> None:
    """Offline re-rank gain, the Chat-Rec protocol: on ml-100k test users, the top-5 of LightGCN's
    top-20 by the graph order, the LLM re-ranker and a learned re-ranker (fitted on the validation
    split); P@5, R@5, NDCG@5 with 95% bootstrap intervals and paired differences from the graph
    order. Saved as a 'rerank' run in the data home (agent/evals/rerank.py)."""
    from agent.evals.rerank import DEFAULT_METHODS, METHODS, evaluate_rerank, format_table
    from recsys.users import PROFILES
    from agent.llm import LLMUnavailable, make_chat_model
    from agent.evals.runs import model_name, run_meta, save_run
    from recsys.data import DataError
    from recsys.workflow import load_recommender

    if profile not in PROFILES:
        fail(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if unknown := [m for m in methods or () if m not in METHODS]:
        fail(f"unknown --method {', '.join(unknown)}: choose from {', '.join(m for m in METHODS if m != 'graph')}")
    chosen = ["graph", *dict.fromkeys(m for m in methods if m != "graph")] if methods else list(DEFAULT_METHODS)
    settings = load_settings(backend)
    try:
        recommender = load_recommender("ml-100k", None, settings.home)
        llm = make_chat_model(settings)
        collab = None
        if codes:
            from agent.tuning.codes import load_codes

            collab = load_codes(recommender, settings.home)
        result = evaluate_rerank(recommender, home=settings.home, llm=llm, users=users, seed=seed, profile=profile,
                                 n_boot=bootstrap, codes=collab, methods=chosen, fit_users=fit_users,
                                 llm_info={"backend": settings.llm_backend, "model": model_name(settings),
                                           "codes": codes})
    except (LLMUnavailable, DataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    path = save_run("rerank", result, run_meta(settings, dataset="ml-100k", seed=seed, users=users, codes=codes,
                                                methods=chosen, fit_users=fit_users),
                    settings.home)
    typer.echo(f"saved {path}", err=True)
    if as_json:
        echo_json(result)
    else:
        typer.echo(format_table(result))


def eval_crs(
    file: Annotated[Path, typer.Argument(help="iEvaLM's processed ReDial file, one recommending turn per line "
                                              "(../shared/benchmarks/redial/valid_data_processed.jsonl)")],
    items: Annotated[Path, typer.Option("--items", help="the catalogue: id2info.json (id -> {name \"Title (Year)\", "
                                                        "genre, plot, ...})")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the result (summary + each line's "
                                                                    "top 50 per system) as JSON here")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="measure the first N lines only (default: all; "
                                                            "popularity still counts the whole file)")] = None,
    systems: Annotated[Optional[list[str]], typer.Option("--system", help="only these (repeatable): agent, graph, "
                                                                          "popularity; default: all three")] = None,
    graph_dataset: Annotated[Optional[str], typer.Option(
        help="the ratings the graph recommender is trained on: ml-100k (to 1998), ml-latest-small (to 2016) or "
             "a `chatrec data movie-graph` dataset; trained on first use (default: settings, ml-100k)")] = None,
    mentioned: Annotated[str, typer.Option(
        help="films the dialogue already named (agent: those it reads as liked; graph: every one): 'first' ranks "
             "them ahead, the latest first, as ReDial's recommenders often name them again and iEvaLM counts it; "
             "'leave-out' ranks only new films, as a chat turn does")] = "first",
    backend: BackendOption = None,
) -> None:
    """Conversational recommendation on real dialogues (ReDial, iEvaLM's "original" protocol): for
    each recommender turn every system ranks the catalogue given the dialogue so far, scored against
    the movies the human recommender named. Recall@1/10/50, NDCG@10, MRR@10 per iEvaLM's RecMetric
    (each label counted on its own), recall@10 with a 95% bootstrap interval over dialogues, and
    paired differences between systems. The whole file is checked first: a bad line stops the run
    with its file, line and reason. Saved as a run of kind "crs" (`chatrec report` shows it)."""
    from agent.evals import crs
    from agent.evals.runs import run_meta, save_run
    from agent.llm import LLMUnavailable
    from recsys.data import DataError
    from recsys.io import write_json

    names = list(dict.fromkeys(systems)) if systems else list(crs.SYSTEMS)
    if unknown := [n for n in names if n not in crs.SYSTEMS]:
        fail(f"unknown --system {', '.join(unknown)}: choose from {', '.join(crs.SYSTEMS)}")
    if mentioned not in crs.MENTIONED:
        fail(f"unknown --mentioned {mentioned!r}: choose from {', '.join(crs.MENTIONED)}")
    try:
        all_lines = crs.read_crs_file(file)
        id2info = crs.read_id2info(items)
    except DataError as exc:
        fail(str(exc))
    lines = all_lines[:limit] if limit else all_lines
    settings = load_settings(backend)
    graph_dataset = graph_dataset or settings.graph_dataset
    try:
        built = crs.make_systems(names, lines=all_lines, id2info=id2info, settings=settings,
                                 graph_dataset=graph_dataset, mentioned=mentioned)
        result = crs.evaluate(lines, built, id2info, progress=True)
        result["summary"]["mentioned"] = mentioned
    except (LLMUnavailable, DataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    meta = run_meta(settings, dataset=f"ReDial {file.name}", seed=crs.SEED, file=str(file), items=str(items),
                    limit=limit, systems=names, graph_dataset=graph_dataset, mentioned=mentioned,
                    read_as_of=crs.read_as_of(settings.turn.this_year, id2info))
    saved = save_run("crs", result, meta, settings.home)
    if json_out is not None:
        write_json(json_out, result)
    typer.echo(crs.format_table(result))
    typer.echo(f"saved {saved}" + (f"; JSON in {json_out}" if json_out else ""))


def report(
    out: Annotated[Optional[Path], typer.Option(help="folder for report.md, report.html and the PNG figures "
                                                     "(default: <data home>/report)")] = None,
) -> None:
    """A report of the latest measurement runs in the data home (simulate, eval-rerank,
    eval-dialogues, eval-explain, eval-crs): hit curve by turn, re-rank table, router confusion
    matrix, latency per step, explanation metrics next to XRec's, recall on ReDial dialogues. Each section says the command, model,
    backend, dataset, seed, date and machine of its run; a missing run says which command makes it."""
    from agent.evals.report import build_report

    settings = load_settings()
    folder = out or settings.home / "report"
    try:
        made = build_report(settings.home, folder)
    except OSError as exc:
        fail(f"could not write the report to {folder}: {exc}")
    missing = [k for k, v in made["runs"].items() if v is None]
    typer.echo(f"report: {folder / 'report.html'} and {folder / 'report.md'} ({len(made['figures'])} figures)")
    if missing:
        typer.echo(f"no run yet for: {', '.join(missing)} (the report says which command makes each)")
