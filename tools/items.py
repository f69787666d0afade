"""The catalog and its store together: what the CLI, the agent and the benches open.

``open_items`` returns the catalog and a store that is ready to search (built on first
use, with progress). ``add_items_csv`` puts a user's items into both at run time; they
are kept in ``<data home>/items/added.jsonl`` (user data, unlike the catalog cache, which
can always be rebuilt from the datasets) and merged into the catalog on every open.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from recsys.io import data_home
from recsys.io import atomic_write_text
from tools.catalog import Catalog, CatalogItem, items_from_csv, load_catalog
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


def add_items_csv(path: Path | str, home: Path | None = None, url: str | None = None) -> dict:
    """Validate a user's items CSV (all or nothing), then add the items to store and catalog.

    The store is written first (upserts: a crash leaves at most searchable items that
    added.jsonl does not list yet; re-running the same file completes it); added.jsonl is
    rewritten atomically. Re-adding an id replaces that item."""
    items = items_from_csv(path)  # raises DataError naming file/line/problem; nothing written yet
    catalog, store = open_items(home, url, progress=False)
    written = store.add(items)
    new_ids = {item.item_id for item in items}
    _save_added([i for i in load_added(home) if i.item_id not in new_ids] + list(items), home)
    catalog.add(items)
    report = {"file": str(path), "items": len(items), "embedded": written, "store_items": store.count()}
    log.info("added items: %s", report)
    return report
