"""Cold items in the graph recommender: the text → graph bridge applied to the catalog.

The bridge (``recsys.bridge``) is fitted on the warm items — their text embeddings from
the item store against their LightGCN vectors — and maps every cold catalog item of the
graph's domain into the graph space, so ``recommend`` ranks new films alongside the ones
people rated (bench/cold_start_bridge.py measures how well). Cold items keep their
catalog ids ("ml-latest-small:2571"); warm ones keep the graph dataset's ids ("50").
"""

from __future__ import annotations

import logging
import time

import numpy as np

from recsys.bridge import TextGraphBridge
from recsys.recommender import GraphRecommender
from tools.catalog import Catalog, CatalogItem
from tools.item_store import ItemStore

log = logging.getLogger(__name__)

GRAPH_DATASET = "ml-100k"  # the catalog's warm items are this dataset's items (CatalogItem.graph_item_id)


def graph_key(item: CatalogItem, recommender: GraphRecommender) -> str | None:
    """The item's id in the graph model, None when the graph does not hold it: its id in the
    dataset the graph was trained on ("ml-100k:50" is "50" in ml-100k and, linked, "260" in
    ml-latest-small), or its catalogue id (a dataset built over the catalogue, a bridged item)."""
    dataset = recommender.dataset
    for key in (item.sources.get(dataset), item.graph_item_id if dataset == GRAPH_DATASET else None, item.item_id):
        if key is not None and recommender.has_item(key):
            return key
    return None


def with_cold_items(recommender: GraphRecommender, catalog: Catalog, store: ItemStore,
                    domains: tuple[str, ...] = ("movie",)) -> GraphRecommender:
    """A recommender that also scores the catalog's cold items of ``domains``: those the
    graph's dataset does not hold (for an ml-latest-small graph, ml-100k's films it lacks too)."""
    started = time.perf_counter()
    keys = {item.item_id: graph_key(item, recommender) for item in catalog}
    warm = [item for item in catalog if keys[item.item_id] is not None]
    cold = [item for item in catalog if keys[item.item_id] is None and item.domain in domains]
    if not warm:
        raise ValueError(f"no catalog item is in the {recommender.dataset} graph model: nothing to fit the bridge on")
    graph_vectors = recommender.item_factors_[[recommender.item_index(keys[i.item_id]) for i in warm]]
    bridge = TextGraphBridge().fit(store.vectors([i.item_id for i in warm]), graph_vectors)
    if not cold:
        return recommender
    vectors = bridge.predict(store.vectors([i.item_id for i in cold])).astype(np.float32)
    extended = recommender.with_items([i.item_id for i in cold], vectors)
    log.info("bridged %d cold items (%s) from %d warm ones in %.2fs", len(cold), ", ".join(domains), len(warm),
             time.perf_counter() - started)
    return extended
