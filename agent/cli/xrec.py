"""``chatrec xrec train|explain``: XRec's collaborative adapter on XRec's Yelp data (agent/tuning/xrec.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli.common import echo_json, fail, load_settings

xrec_app = typer.Typer(help="XRec: a mixture-of-experts adapter that puts the graph's user and item vectors into "
                            "the frozen local LLM, fitted and tried on XRec's Yelp data.", no_args_is_help=True)

DataDir = Annotated[Optional[Path], typer.Option(help="the xrec-yelp folder (default ../shared/benchmarks/xrec-yelp)")]


@xrec_app.command("train")
def xrec_train(
    data_dir: DataDir = None,
    epochs: Annotated[int, typer.Option(min=1, help="passes over train.jsonl")] = 2,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (warm-up, then cosine)")] = 1e-2,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="stop the plan at this many steps")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: CHATREC_DEVICE)")] = None,
    fresh: Annotated[bool, typer.Option(help="start again instead of resuming the saved checkpoint")] = False,
    gated: Annotated[bool, typer.Option(help="zero-init tanh gates on the injection (not XRec's recipe; saved "
                                             "apart, in adapter-gated)")] = False,
    contrast: Annotated[float, typer.Option(min=0.0, help="weight of a margin against another line's vectors "
                                                          "(not XRec's recipe; saved apart, in adapter[-gated]-contrast; "
                                                          "0: off)")] = 0.0,
    margin: Annotated[float, typer.Option(min=0.0, help="that margin, in nats a target token")] = 0.1,
    centered: Annotated[bool, typer.Option(help="a learned vector per reserved token plus each line's own part of "
                                                "the adapters' output (not XRec's recipe; saved apart, in "
                                                "adapter[-gated][-contrast]-centered)")] = False,
    summaries: Annotated[bool, typer.Option(help="the user's and business's summaries in the prompt; "
                                                 "--no-summaries is XRec's ablation, the graph the only source "
                                                 "(saved apart, in adapter…-nosummaries)")] = True,
    lora: Annotated[int, typer.Option(min=0, help="rank of low-rank adapters on the model's projections, trained "
                                                  "with the MoE adapters and on only with the graph's vectors (not "
                                                  "XRec's recipe; saved apart, in adapter…-lora<rank>; 0: off)")] = 0,
    lora_lr: Annotated[float, typer.Option(help="their learning rate")] = 2e-4,
    pairs: Annotated[Optional[Path], typer.Option(help="train the agent's own adapter instead, on explanation "
                                                       "pairs from `python -m agent.tuning.explain_data` (the "
                                                       "graph the agent uses; for CHATREC_XREC_ADAPTER)")] = None,
) -> None:
    """Train LightGCN on total_trn.csv (once, cached) and the two adapters on train.jsonl (the LLM and
    the graph frozen; next-token loss on the reference), checkpointed in <data home>/models/xrec-yelp/adapter
    and resumed from there when stopped. With --pairs, the agent's adapter on its own graph instead."""
    from agent.evals.explain import XRecDataError, xrec_dir
    from agent.tuning.xrec import XRecConfig
    from agent.llm import local_model_source
    from agent.tuning.xrec_yelp import adapter_dir, train_adapters

    settings = load_settings()
    config = XRecConfig(base=str(local_model_source(settings)), epochs=epochs, lr=lr, batch_size=batch_size,
                        max_steps=max_steps, device=device or settings.device, threads=settings.threads, gated=gated,
                        contrast=contrast, margin=margin, centered=centered, summaries=summaries,
                        lora=lora, lora_lr=lora_lr)
    try:
        if pairs is not None:
            from agent.tuning.xrec_agent import train_on_pairs

            explainer, saved = train_on_pairs(settings, pairs, config, resume=not fresh)
        else:
            explainer, _ = train_adapters(settings.home, xrec_dir(data_dir), config, resume=not fresh)
            saved = adapter_dir(settings.home, gated, bool(contrast), centered, summaries, lora)
    except (XRecDataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    losses = explainer.config.losses
    typer.echo(f"adapters: {explainer.config.steps_done} steps, loss {losses[0] if losses else '?'} → "
               f"{losses[-1] if losses else '?'} (per checkpoint), saved in {saved}")
    if pairs is not None:
        typer.echo(f"use them in the agent's explanations: CHATREC_XREC_ADAPTER={saved}")


@xrec_app.command("explain")
def xrec_explain(
    user: Annotated[str, typer.Option(help="a Yelp user id (uid) of the benchmark")],
    item: Annotated[str, typer.Option(help="a Yelp business id (iid) of the benchmark")],
    data_dir: DataDir = None,
    compare: Annotated[bool, typer.Option(help="also show the prompt-only explainer and random vectors")] = False,
    gated: Annotated[bool, typer.Option(help="the gated adapters (`xrec train --gated`)")] = False,
    contrast: Annotated[bool, typer.Option(help="the adapters trained with --contrast")] = False,
    centered: Annotated[bool, typer.Option(help="the adapters trained with --centered")] = False,
    summaries: Annotated[bool, typer.Option(help="--no-summaries: the adapters trained without them")] = True,
    lora: Annotated[int, typer.Option(min=0, help="the adapters trained with --lora of this rank")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Why USER would enjoy ITEM, written by the local LLM with the adapters fed the graph's vectors
    (the summaries in the prompt come from the benchmark's lines for that user and business)."""
    from agent.evals.explain import XRecDataError, xrec_dir
    from agent.tuning.xrec import load_explainer, read_config
    from agent.tuning.xrec_yelp import adapter_data_stamp, adapter_dir, find_pair, generate, yelp_graph

    settings = load_settings()
    try:
        directory = xrec_dir(data_dir)
        row = find_pair(directory, user, item)
        saved = adapter_dir(settings.home, gated, contrast, centered, summaries, lora)
        config = read_config(saved)
        graph = yelp_graph(settings.home, directory, progress=False, threads=settings.threads)
        if config.data != adapter_data_stamp(directory, graph):
            fail(f"the adapters in {saved} were fitted on other data or another graph's vectors; "
                 f"`chatrec xrec train` fits them on these")
        explainer = load_explainer(Path(config.base), config, saved)
    except (XRecDataError, FileNotFoundError, KeyError, ValueError) as exc:
        fail(exc.args[0] if isinstance(exc, KeyError) else str(exc))
    if not (graph.recommender.has_user(str(row["uid"])) and graph.recommender.has_item(str(row["iid"]))):
        fail(f"the graph has no vector for user {user} or business {item} (not in total_trn.csv)")
    systems = ("adapter", "prompt", "random") if compare else ("adapter",)
    texts = {s: generate(explainer, [row], graph, s, progress=False)[0] for s in systems}
    if json_out:
        echo_json({"user": user, "item": item, "title": row["title"], **texts})
        return
    for system, text in texts.items():
        typer.echo(f"{system}: {text}" if compare else text)
