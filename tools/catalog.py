"""One catalog of items across domains: warm ml-100k movies, cold ml-latest-small movies
that ml-100k lacks, and Book-Crossing books — deduplicated, each with a text document.

INTERFACE (fixed; the store, title resolution and the bridge bench code against it):

- ``CatalogItem``: one item, see its fields.
- ``item_document(item)``: the text that is embedded for an item.
- ``build_catalog(home=None, min_book_ratings=5, progress=True) -> Catalog``.
- ``load_catalog(home=None, progress=True) -> Catalog``: cached build (under
  ``<data home>/items/catalog.jsonl``, written atomically), rebuilt if missing/corrupt.
- ``Catalog``: ``items`` (list), ``by_id`` (dict), ``links`` (dedup report), ``stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CatalogItem:
    item_id: str  # namespaced and stable: "ml-100k:50", "ml-latest-small:2571", "book-crossing:0440234743"
    domain: str  # "movie" | "book" | anything a user's items CSV says
    title: str  # display title, articles in front: "The Godfather"
    year: int | None = None
    genres: tuple[str, ...] = ()
    author: str | None = None  # books
    publisher: str | None = None  # books
    description: str | None = None
    warm: bool = False  # has interactions in the graph recommender's dataset
    graph_item_id: str | None = None  # the item's id in the graph model's dataset (ml-100k), None if cold
    aliases: tuple[str, ...] = ()  # other titles the item is known by (e.g. from a linked source)
    sources: dict[str, str] = field(default_factory=dict)  # {"ml-100k": "50", "ml-latest-small": "260"}
    n_ratings: int = 0
