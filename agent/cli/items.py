"""``chatrec items build|add|search`` and ``resolve``: the item store and the titles people type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli.common import JsonFlag, echo_json, fail, load_settings, one_or_file


items_app = typer.Typer(help="The item store: every movie and book embedded in chromadb, searchable by meaning.",
                        no_args_is_help=True)


@items_app.command("build")
def items_build(as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Build the catalog (ml-100k + ml-latest-small + Book-Crossing, deduplicated) and embed it
    into the store. Incremental: re-running embeds only new or changed items."""
    from recsys.data import DataError
    from tools.item_store import StoreError
    from tools.items import build_items

    settings = load_settings()
    try:
        catalog, _, report = build_items(settings.home, settings.chroma_url)
    except (DataError, StoreError) as exc:
        fail(str(exc))
    report = {"catalog": catalog.stats, "store": report}
    if as_json:
        echo_json(report)
        return
    typer.echo(f"catalog: {json.dumps(catalog.stats)}")
    store = report["store"]
    typer.echo(f"store: {store['items']} items ({store['embedded']} embedded now, {store['removed']} removed) "
               f"in {store['total_seconds']:.1f} s")


@items_app.command("add")
def items_add(
    file: Annotated[Path, typer.Argument(help="the items file, by extension: .csv "
                                              "(item_id,title[,year][,genres][,domain][,description]) or .json "
                                              "({id: {name, year, genre, plot, director, writer, star, domain}} "
                                              "or a list of such objects with item_id)")],
    source: Annotated[str, typer.Option(help="the file's source name: ids become SOURCE:id and items record "
                                             "their id there (sources[SOURCE])")] = "custom",
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Add new items at run time from a CSV or JSON file: searchable at once, no retraining.
    The whole file is checked first; any bad row or entry rejects it (the error names it) and
    nothing is written. Movies that are already in the catalogue (same title and year, by the
    catalogue's precision-first link rules) are not duplicated: the catalogue item is enriched
    with the file's genres, titles and description instead. Adding the same file again
    changes nothing."""
    from recsys.data import DataError
    from tools.item_store import StoreError
    from tools.items import add_items

    settings = load_settings()
    try:
        report = add_items(file, settings.home, settings.chroma_url, source=source, progress=True)
    except (DataError, StoreError) as exc:
        fail(str(exc))
    if as_json:
        echo_json(report)
    else:
        linked = ", ".join(f"{n} to {name}" for name, n in report["linked_to"].items()) or "none"
        typer.echo(f"read {report['read']} items from {file}: {report['added']} added as new, {report['linked']} "
                   f"linked to catalogue items ({linked}), {report['ambiguous']} left ambiguous; "
                   f"{report['embedded']} embedded; the store now holds {report['store_items']}")


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

    settings = load_settings()
    if bool(text and text.strip()) == bool(like):
        fail("give either a search text or at least one --like item id")
    filters = {"domain": domain, "year_from": year_from, "year_to": year_to, "genres": genre or ()}
    try:
        _, store = open_items(settings.home, settings.chroma_url)
        hits = store.more_like(like, k, **filters) if like else store.search(text, k, **filters)
    except (DataError, StoreError, KeyError, ValueError) as exc:
        fail(str(exc).strip('"'))
    if as_json:
        echo_json([hit.to_dict() for hit in hits])
        return
    if not hits:
        typer.echo("no items match")
    for rank, hit in enumerate(hits, 1):
        year = f" ({hit.year})" if hit.year else ""
        extra = hit.author or ", ".join(hit.genres)
        cold = "" if hit.warm else "  [cold]"
        typer.echo(f"{rank:>2}. {hit.title}{year}  {hit.domain}  {extra}  [{hit.item_id}]  {hit.score:.3f}{cold}")


@items_app.command("adaptations")
def items_adaptations(
    rebuild: Annotated[bool, typer.Option(help="build the table again even when the cached one fits the catalogue")] = False,
    sample: Annotated[int, typer.Option(help="print this many random pairs, for a hand check")] = 0,
    seed: Annotated[int, typer.Option(help="the sample's seed")] = 0,
    embed: Annotated[bool, typer.Option(help="write the books' extra text (their films, their authors' adapted "
                                             "works) and embed the books whose text changed")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Films and the books they were made from, found in the catalogue (same work title, the book
    older than the film or its author credited; ambiguous titles left out), cached in the data
    home. Also builds Book-Crossing's co-readers and, unless --no-embed, gives the store's books
    what the catalogue knows about them (only the changed books are embedded again)."""
    from recsys.data import DataError
    from recsys.io import write_json
    from tools.adaptations import adaptations_path, load_adaptations
    from tools.cross_domain import document_extras, load_readers
    from tools.item_store import EXTRAS_FILE, StoreError
    from tools.items import open_catalog, open_store

    settings = load_settings()
    try:
        catalog = open_catalog(settings.home, progress=not as_json)
        table = load_adaptations(catalog, settings.home, rebuild=rebuild)
        readers = load_readers(catalog, settings.home, rebuild=rebuild)
        report = {"file": str(adaptations_path(settings.home)), **table.stats, "co_read_books": len(readers)}
        if embed:
            extras = document_extras(catalog, table)
            write_json(settings.home / "items" / EXTRAS_FILE, {"format": "chatrec-document-extras", "version": 1,
                                                              "extras": extras}, indent=None)
            store = open_store(settings.home, settings.chroma_url)
            changed = [catalog.get(i) for i in extras if catalog.get(i) is not None]
            report["books_with_extra_text"] = len(extras)
            report["embedded"] = store.add(changed, progress=not as_json) if store.complete else 0
            if not store.complete:
                report["note"] = "the item store is not built yet: `chatrec items build` embeds the extra text"
    except (DataError, StoreError, OSError) as exc:
        fail(str(exc))
    picked = table.sample(sample, seed) if sample else []
    if as_json:
        echo_json({**report, "sample": [p.to_json() for p in picked]} if sample else report)
        return
    left = ", ".join(f"{k} {v}" for k, v in report.get("left_out", {}).items()) or "none"
    typer.echo(f"{report['pairs']} film-book pairs ({report['films']} films, {report['books']} books; rules "
               f"{report['rules']}); left out: {left}; table in {report['file']}")
    typer.echo(f"co-readers for {report['co_read_books']} books"
               + (f"; {report['books_with_extra_text']} books with extra text, {report['embedded']} embedded now"
                  if embed else ""))
    if report.get("note"):
        typer.echo(report["note"])
    for n, pair in enumerate(picked, 1):
        typer.echo(f"{n:>3}. {pair.describe()}  [{pair.film_id} {pair.book_id}]")


def resolve(
    mention: Annotated[Optional[str], typer.Argument(help="what a person calls an item: \"godfather part 2\"")] = None,
    file: Annotated[Optional[Path], typer.Option(help="one mention per line; prints a JSON list in order")] = None,
    domain: Annotated[Optional[str], typer.Option(help="only items of this domain (movie, book)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Which catalog item a mention means, how sure that is, and the runners-up; nothing when
    the title is not in the catalog. JSON: {"mention", "item", "confidence", "candidates"}."""
    from recsys.data import DataError
    from tools.item_store import StoreError
    from tools.items import open_catalog, ready_store
    from tools.resolve import TitleResolver

    settings = load_settings()
    mentions = one_or_file(mention, file, "mention")
    try:
        catalog = open_catalog(settings.home)
        # the store (chromadb, the embedding model) opens only if a mention's lexical match is unclear
        resolver = TitleResolver(catalog, lambda: ready_store(catalog, settings.home, settings.chroma_url))
        results = [resolver.resolve(m, domain=domain) for m in mentions]
    except (DataError, StoreError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        rows = [r.to_dict() for r in results]
        echo_json(rows if file else rows[0])
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
