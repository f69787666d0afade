"""Hand-made catalog items the pure tests share (re-rank, candidates, title spotting,
explanations): no catalog build, no model."""

from __future__ import annotations

from tools.catalog import CatalogItem

FARGO = CatalogItem("ml-100k:100", "movie", "Fargo", 1996, ("Crime", "Drama", "Thriller"), warm=True, graph_item_id="100")
HEAT = CatalogItem("ml-100k:X", "movie", "Heat", 1995, ("Action", "Crime", "Thriller"), warm=True)
BABE = CatalogItem("ml-100k:8", "movie", "Babe", 1995, ("Children's", "Comedy", "Drama"), warm=True)
GODFATHER = CatalogItem("ml-100k:127", "movie", "The Godfather", 1972, ("Action", "Crime", "Drama"), warm=True)
DUNE = CatalogItem("book-crossing:1", "book", "Dune", 1965, author="Frank Herbert")
