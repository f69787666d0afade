"""``chatrec tune data|train|router|explain`` (``tune-router`` too): instruction data and LoRA tuning of the local model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli.common import fail, load_settings


tune_app = typer.Typer(help="InstructRec: instruction data from ml-100k and LoRA tuning of the local model for "
                            "routing, re-ranking and explaining.", no_args_is_help=True)


@tune_app.command("data")
def tune_data(
    users: Annotated[int, typer.Option(min=1, help="training users to make instructions from (those with "
                                                   "validation items; a fixed-seed sample)")] = 400,
    seed: Annotated[int, typer.Option(help="picks users, facets, templates and negatives")] = 0,
    tasks: Annotated[Optional[list[str]], typer.Option("--task", help="only these (repeatable): pointwise, pairwise, "
                                                                      "rerank, explain, router")] = None,
    out: Annotated[Optional[Path], typer.Option(help="JSON lines file (default: <data home>/tune/instructions.jsonl)")] = None,
    codes: Annotated[bool, typer.Option(help="also phrase each pointwise, pairwise and re-rank ask with BinLLM's "
                                             "collaborative codes of the person and the items (field `coded`; "
                                             "`tune train --codes on|two-step` uses it)")] = False,
    pointwise: Annotated[str, typer.Option(help="how pointwise asks are made: facets (InstructRec's preference / "
                                                "intention mix; half the no's are the graph's own picks, half "
                                                "never-rated films) or graph-list (the re-ranker's own situation: "
                                                "titles they rated, no request, yes = a validation film the graph "
                                                "ranked in its top-20, no = another of its picks)")] = "facets",
) -> None:
    """Instruction data (InstructRec's facets: implicit / explicit preference, none / vague / specific
    intention; pointwise, pairwise and re-rank task forms, plus the router and explanations) from
    the ml-100k graph model's training and validation split; the test split never appears.
    Re-rank, router and explanation examples use the agent's own prompts."""
    from agent.evals.rerank import load_eval_data
    from agent.tuning.instruct import DATA_FILE, TASKS, make_instructions, summarize, write_instructions
    from recsys.data import DataError
    from recsys.workflow import load_recommender

    chosen = tasks or list(TASKS)
    if unknown := [t for t in chosen if t not in TASKS]:
        fail(f"unknown --task {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    settings = load_settings()
    path = out or settings.home / DATA_FILE
    try:
        recommender = load_recommender("ml-100k", None, settings.home)
        ev = load_eval_data(recommender, settings.home)
        collab = None
        if codes:
            from agent.tuning.codes import load_codes, validation_auc

            collab = load_codes(recommender, settings.home)
            typer.echo(f"BinLLM codes: a validation item's code is nearer the person's than a random item's "
                       f"{validation_auc(collab, recommender, ev.valid, seed):.3f} "
                       f"of the time (0.5 = no signal)", err=True)
        made = make_instructions(ev, users, seed, chosen, codes=collab, pointwise=pointwise)
    except (DataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    write_instructions(path, made)
    summary = summarize(made)
    typer.echo(f"{summary['instructions']} instructions from {summary['users']} users "
               f"({', '.join(f'{k} {v}' for k, v in summary['by_task'].items())}; {summary['templates']} templates) "
               f"written to {path}")


@tune_app.command("train")
def tune_train(
    data: Annotated[Optional[Path], typer.Option(help="instructions from `chatrec tune data` (default: "
                                                      "<data home>/tune/instructions.jsonl)")] = None,
    model: Annotated[Optional[Path], typer.Option(help="base model: a GGUF file or a transformers folder (T5 / "
                                                       "Flan-T5 or causal); default: the shipped SmolLM2-135M")] = None,
    tasks: Annotated[Optional[list[str]], typer.Option("--task", help="tune on these tasks only (repeatable)")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="cap the run at this many batches (a time box)")] = None,
    rank: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option(min=0.0)] = 5e-4,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    save_every: Annotated[int, typer.Option(min=1, help="batches between checkpoints")] = 25,
    resume: Annotated[bool, typer.Option(help="pick up from the checkpoint of an interrupted run with the same "
                                              "data and settings")] = True,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: CHATREC_DEVICE)")] = None,
    codes: Annotated[str, typer.Option(help="BinLLM codes in the prompts (data from `tune data --codes`): off; "
                                            "on (the prompts with codes); two-step (first off, then on, on the "
                                            "same adapter). With codes the adapter is saved as "
                                            "<model>.codes.lora.gguf, which the agent does not load by default")] = "off",
    precision: Annotated[str, typer.Option(help="fp32, or bf16: forward and backward under bfloat16 autocast "
                                                "(adapters stay fp32); faster on CPUs with AMX / AVX-512 BF16 "
                                                "and on GPUs")] = "fp32",
    seed: int = 0,
) -> None:
    """LoRA-tune the local model on instruction data (InstructRec), with a progress bar and
    checkpoints (Ctrl-C and run it again to resume). For a GGUF model (the shipped SmolLM2, or any
    llama / qwen2 GGUF) the adapter is exported for llama.cpp as <data home>/tune/<model>.lora.gguf;
    for a transformers folder it is
    saved as a peft folder <data home>/tune/<folder>-lora. The local backend uses it from then on
    (CHATREC_LLM_ADAPTER names another; delete the file to go back to the base model)."""
    from agent.tuning.instruct import DATA_FILE, TASKS, read_instructions
    from agent.llm import default_model_path
    from agent.tuning.lora import CODES_MODES, SftExample, TuneConfig, check_exportable, tune_adapter

    settings = load_settings()
    path = data or settings.home / DATA_FILE
    if not path.is_file():
        fail(f"no instruction data at {path}: run `chatrec tune data` first (or pass --data)")
    if unknown := [t for t in tasks or () if t not in TASKS]:
        fail(f"unknown --task {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    try:
        rows = [r for r in read_instructions(path) if not tasks or r.task in tasks]
        source = model or default_model_path()
    except (ValueError, OSError) as exc:
        fail(str(exc))
    if not rows:
        fail(f"{path} has no instructions for the tasks asked for")
    if codes not in CODES_MODES:
        fail(f"unknown --codes {codes!r}: off, on or two-step")
    if precision not in ("fp32", "bf16"):
        fail(f"unknown --precision {precision!r}: fp32 or bf16")
    try:
        check_exportable(Path(source))
    except (ValueError, OSError) as exc:
        fail(str(exc))
    if codes != "off" and not any(r.coded for r in rows):
        fail(f"{path} has no prompts with codes: make it with `chatrec tune data --codes`")
    plain = [SftExample(r.messages, r.answer) for r in rows]
    with_codes = [SftExample(r.coded or r.messages, r.answer) for r in rows]  # router / explain rows stay plain
    config = TuneConfig(rank=rank, alpha=2.0 * rank, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        threads=settings.threads, device=device or settings.device, save_every=save_every,
                        max_steps=max_steps, precision=precision)
    typer.echo(f"tuning {Path(source).name} on {len(rows)} instructions from {path} (codes: {codes}): {config}",
               err=True)
    started = time.perf_counter()

    def saved(out: Path) -> None:
        typer.echo(f"adapter: {out} ({time.perf_counter() - started:.0f} s)", err=True)

    try:
        out = tune_adapter(plain, Path(source), settings.home, config, coded=with_codes, codes=codes,
                           run_name=path.stem, resume=resume, on_saved=saved)
    except (ValueError, FileNotFoundError, OSError) as exc:
        fail(str(exc))
    typer.echo("the local backend uses it from now on" if codes == "off" else
               f"to measure it: CHATREC_LLM_ADAPTER={out} chatrec eval-rerank --codes")


@tune_app.command("router")
def tune_router(
    out: Annotated[Path, typer.Option(help="where to write the llama.cpp LoRA adapter")] = Path("agent/data/router_lora.gguf"),
    examples: Annotated[Optional[Path], typer.Option(help="labelled rows (JSONL); default: the shipped training pool")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 4,
    rank: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    intent_weight: Annotated[float, typer.Option(help="how much the intent label's tokens count against the rest "
                                                      "of the answer")] = 3.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    seed: int = 0,
) -> None:
    """LoRA-tune the default local model (SmolLM2-135M) to route turns, on CPU (about 30 min on 2 cores).

    Writes the adapter the local router loads by default; the shipped one was made by exactly this
    command with its defaults (bench/RESULTS.md has the accuracy)."""
    from agent.llm import default_model_path
    from agent.router import INTENT_TOKENS, load_examples
    from agent.tuning.instruct import sft_examples
    from agent.tuning.lora import TuneConfig, export_gguf_adapter, train_lora

    settings = load_settings()
    rows = load_examples(examples) if examples else load_examples()
    config = TuneConfig(rank=rank, alpha=2.0 * rank, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        threads=settings.threads, lead_tokens=INTENT_TOKENS, lead_weight=intent_weight)
    typer.echo(f"tuning on {len(rows)} labelled turns: {config}")
    _, model = train_lora(sft_examples(rows), default_model_path(), config)
    export_gguf_adapter(model, out, alpha=config.alpha)
    typer.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")


@tune_app.command("explain")
def tune_explain(
    pairs: Annotated[Optional[Path], typer.Option(help="evidence → explanation pairs (JSONL) from `python -m "
                                                       "agent.tuning.explain_data`; default: <data home>/tune/"
                                                       "explain_pairs.jsonl")] = None,
    out: Annotated[Path, typer.Option(help="where to write the llama.cpp LoRA adapter")] = Path("agent/data/explain_lora.gguf"),
    epochs: Annotated[int, typer.Option(min=1)] = 2,
    rank: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="cap the run at this many batches (a time box)")] = None,
    seed: int = 0,
) -> None:
    """LoRA-tune the default local model (SmolLM2-135M) to write explanations from the evidence, on CPU.

    Writes the adapter the explain flow loads by default with the default local model (the
    shipped one was made by this command with its defaults on the pairs named in
    bench/RESULTS.md); CHATREC_EXPLAIN_ADAPTER=off explains with the base model."""
    from agent.llm import default_model_path
    from agent.tuning.instruct import read_instructions
    from agent.tuning.lora import SftExample, TuneConfig, export_gguf_adapter, train_lora

    settings = load_settings()
    path = pairs or settings.home / "tune" / "explain_pairs.jsonl"
    if not path.is_file():
        fail(f"no explanation pairs at {path}: make them with `python -m agent.tuning.explain_data --out {path}`")
    try:
        rows = [r for r in read_instructions(path) if r.task == "explain"]
    except (ValueError, OSError) as exc:
        fail(str(exc))
    if not rows:
        fail(f"{path} has no explain rows")
    config = TuneConfig(rank=rank, alpha=2.0 * rank, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        threads=settings.threads, max_steps=max_steps)
    typer.echo(f"tuning on {len(rows)} explanation pairs from {path}: {config}")
    # checkpoints beside the pairs: Ctrl-C and run it again to resume
    _, model = train_lora([SftExample(r.messages, r.answer) for r in rows], default_model_path(), config,
                          checkpoint_dir=settings.home / "tune" / f"{path.stem}-explain-lora", resume=True)
    export_gguf_adapter(model, out, alpha=config.alpha)
    typer.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
