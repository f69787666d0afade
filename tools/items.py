"""The catalog and its store together: what the CLI, the agent and the benches open.

``open_items`` returns the catalog and a store that is ready to search (built on first
use, with progress). ``add_items`` puts a user's items (CSV or JSON) into both at run time,
linking the movies among them to the catalogue's own (an item that is already there is
enriched, not duplicated); they are kept in ``<data home>/items/added.jsonl`` (user data,
unlike the catalog cache, which can always be rebuilt from the datasets) and merged into the
catalog on every open.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

from recsys.io import data_home
from recsys.io import atomic_write_text
from tools.catalog import Catalog, CatalogItem, items_from_file, link_items, load_catalog, merge_item
from tools.item_store import ItemStore, store_path

log = logging.getLogger(__name__)


def added_path(home: Path | None = None) -> Path:
    return (Path(home) if home else data_home()) / "items" / "added.jsonl"


def load_added(home: Path | None = None) -> list[CatalogItem]:
    path = added_path(home)
    if not path.exists():
        return []
    return [CatalogItem.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]


def _save_added(items: list[CatalogItem], home: Path | None) -> None:
    text = "".join(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items)
    atomic_write_text(added_path(home), text)


def open_catalog(home: Path | None = None, progress: bool = True) -> Catalog:
    """The built catalogue with the items a user added."""
    catalog = load_catalog(home, progress=progress)
    added = load_added(home)
    if added:
        catalog.add(added)
    return catalog


def open_store(home: Path | None = None, url: str | None = None) -> ItemStore:
    return ItemStore(store_path(home), url=url)


def build_items(home: Path | None = None, url: str | None = None, progress: bool = True) -> tuple[Catalog, ItemStore, dict]:
    """Catalog (cached) → store (incremental). Re-running embeds only what is new or changed."""
    started = time.perf_counter()
    catalog = open_catalog(home, progress)
    store = open_store(home, url)
    report = store.build(catalog.items, progress=progress)
    report["total_seconds"] = round(time.perf_counter() - started, 2)
    return catalog, store, report


def open_items(home: Path | None = None, url: str | None = None, progress: bool = True) -> tuple[Catalog, ItemStore]:
    """Ready-to-search catalog and store; builds (or finishes building) the store when needed."""
    catalog = open_catalog(home, progress)
    return catalog, ready_store(catalog, home, url, progress)


def ready_store(catalog: Catalog, home: Path | None = None, url: str | None = None, progress: bool = True) -> ItemStore:
    """The item store holding every catalog item; builds (or finishes building) it when needed."""
    store = open_store(home, url)
    if not store.complete or store.count() < len(catalog):
        log.info("item store has %d of %d catalog items: building it", store.count(), len(catalog))
        store.build(catalog.items, progress=progress)
    return store


def _namespace(item_id: str) -> str:
    return item_id.split(":", 1)[0]


def add_items(path: Path | str, home: Path | None = None, url: str | None = None, source: str = "custom",
              progress: bool = False) -> dict:
    """Validate a user's items file (CSV or JSON, see :func:`tools.catalog.items_from_file`;
    all or nothing), link its movies to the catalogue's, then add them to store and catalog.

    Linking (:func:`tools.catalog.link_items`, precision first) runs against the catalogue's
    movies, except those of the file's own id namespaces (a source's items never link to each
    other). A linked entry adds no item: the catalogue item it is (``ml-100k:50``) is enriched
    instead (:func:`tools.catalog.merge_item`: ``sources[source]``, genres, aliases,
    description) and written to added.jsonl, which open_catalog lays over the built catalogue.
    Unlinked entries are added as cold items (``<source>:<id>``).

    The store is written first (upserts of changed documents only: a crash leaves at most
    searchable items that added.jsonl does not list yet; re-running the same file completes
    it); added.jsonl is rewritten atomically. Re-adding an id replaces that item, so adding the
    same file again changes nothing and embeds nothing."""
    started = time.perf_counter()
    items = items_from_file(path, source)  # raises DataError naming file/entry/problem; nothing written yet
    catalog = load_catalog(home, progress=False)
    built = dict(catalog.by_id)  # the catalogue as built, before any added item or enrichment
    previous = load_added(home)
    catalog.add(previous)
    own = {_namespace(it.item_id) for it in items}
    # the linker sees the built catalogue's version of an item (its titles are stable), not one
    # an earlier import enriched
    known = [built.get(it.item_id, it) for it in catalog.items
             if it.domain == "movie" and _namespace(it.item_id) not in own]
    ambiguous: list[dict] = []
    links = link_items(items, known, ambiguous)
    groups: dict[str, list[CatalogItem]] = {}
    for item in items:
        if item.item_id in links:
            groups.setdefault(links[item.item_id][0], []).append(item)
    merged = {kid: merge_item(catalog.get(kid), group, source) for kid, group in groups.items()}
    out: list[CatalogItem] = []
    for item in items:  # file order: each entry's new item, or the item it enriches (once)
        if item.item_id not in links:
            out.append(item)
        elif (kid := links[item.item_id][0]) in merged:
            out.append(merged.pop(kid))
    # an entry that an earlier import added as new but that links now (the catalogue changed)
    superseded = {it.item_id for it in items if it.item_id in links and it.item_id in catalog}
    if superseded:
        log.warning("%d item(s) added earlier are now linked to catalogue items and are dropped: %s",
                    len(superseded), sorted(superseded)[:10])

    store = ready_store(catalog, home, url, progress)
    if superseded:
        catalog = Catalog([it for it in catalog.items if it.item_id not in superseded])
        catalog.add(out)
        written = store.build(catalog.items, progress=progress)["embedded"]  # drops them from the store
    else:
        written = store.add(out, progress=progress)
        catalog.add(out)
    out_ids = {item.item_id for item in out}
    _save_added([i for i in previous if i.item_id not in out_ids | superseded] + out, home)

    unlinked = {a["new"] for a in ambiguous} - set(links)
    by_catalogue = Counter(_namespace(kid) for kid, _ in links.values())
    report = {
        "file": str(path), "source": source, "read": len(items),
        "added": sum(it.item_id not in links for it in items),
        "linked": len(links), "linked_to": dict(sorted(by_catalogue.items())),
        "linked_ml_100k": by_catalogue.get("ml-100k", 0), "linked_ml_latest_small": by_catalogue.get("ml-latest-small", 0),
        "enriched": len(groups), "links_by_rule": dict(sorted(Counter(r for _, r in links.values()).items())),
        "ambiguous": len(unlinked), "movies_without_year": sum(it.domain == "movie" and it.year is None for it in items),
        "superseded": len(superseded), "items": len(out), "embedded": written, "store_items": store.count(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("added %s: %d read, %d added as new, %d linked (%s; %d catalogue items enriched), %d left ambiguous, "
             "%d embedded", Path(path).name, report["read"], report["added"], report["linked"], report["linked_to"],
             report["enriched"], report["ambiguous"], written)
    for amb in ambiguous:
        if amb["new"] in unlinked:
            log.debug("link left ambiguous: %s", amb)
    return report


def add_items_csv(path: Path | str, home: Path | None = None, url: str | None = None) -> dict:
    """:func:`add_items` (kept for callers of the CSV-only name)."""
    return add_items(path, home, url)
