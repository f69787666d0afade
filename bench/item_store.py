"""Item store performance on the full catalog: build, incremental add, query latency, disk.

    python -m bench.item_store [--queries 300] [--keep DIR]

Builds a fresh store in a temp dir from the cached catalog (`chatrec items build` makes
it) leaving 100 items out, then adds those 100 (the run-time `items add` path), re-runs
the build (nothing to embed: the incremental cost), and times search and title
resolution over the full catalog. Resolution target: p95 under 50 ms. The 1-minute load
average is printed with the figures: on a shared 2-core box it explains slow runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import emit
from tools.catalog import load_catalog
from tools.item_store import ItemStore
from tools.resolve import TitleResolver

QUERIES = ["a funny animated film for children", "space opera with rebels and an empire", "a courtroom thriller",
           "romantic comedy in new york", "a novel about a family secret in the south", "mafia crime family",
           "scary haunted hotel", "detective mystery in victorian london", "feel-good sports drama",
           "a fantasy quest with dragons", "war film about soldiers", "coming of age story"]


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 95)), 3)


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300, help="search and resolve calls each")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the embedding model")
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir, removed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    rng = random.Random(0)

    catalog = load_catalog(progress=False)
    items = list(catalog.items)
    late = set(rng.sample(range(len(items)), 100))
    first = [item for n, item in enumerate(items) if n not in late]
    added = [items[n] for n in sorted(late)]

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        path = args.keep or Path(tmp) / "chroma"
        store = ItemStore(path, url="")
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        store.build(first, progress=True)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        store.add(added)
        add_s = time.perf_counter() - started
        started = time.perf_counter()
        rebuild = store.build(items, progress=False)
        rebuild_s = time.perf_counter() - started

        search_s = []
        for n in range(args.queries):
            text = QUERIES[n % len(QUERIES)]
            filters = [{}, {"domain": "book"}, {"domain": "movie", "year_from": 2000}][n % 3]
            t = time.perf_counter()
            store.search(text, k=10, **filters)
            search_s.append(time.perf_counter() - t)

        resolver = TitleResolver(catalog, store)
        titles = [items[rng.randrange(len(items))].title for _ in range(args.queries)]
        resolve_s = []
        for title in titles:
            t = time.perf_counter()
            resolver.resolve(title.lower())
            resolve_s.append(time.perf_counter() - t)
        lexical = TitleResolver(catalog, None)
        lexical_s = []
        for title in titles:
            t = time.perf_counter()
            lexical.resolve(title.lower())
            lexical_s.append(time.perf_counter() - t)
        size = disk_bytes(path)
        load_after = os.getloadavg()[0]

    search_p50, search_p95 = percentiles(search_s)
    resolve_p50, resolve_p95 = percentiles(resolve_s)
    lexical_p50, lexical_p95 = percentiles(lexical_s)
    print(f"catalog {len(items)} items; build of {len(first)}: {build_s:.1f} s ({len(first) / build_s:.0f} items/s)")
    print(f"add 100 items: {add_s:.2f} s; re-build with nothing new: {rebuild_s:.2f} s "
          f"(embedded {rebuild['embedded']})")
    print(f"search p50 {search_p50} ms p95 {search_p95} ms; resolve p50 {resolve_p50} ms p95 {resolve_p95} ms "
          f"(lexical only: p50 {lexical_p50} p95 {lexical_p95}); store on disk {size / 2**20:.1f} MiB")
    emit({"catalog_items": len(items), "threads": args.threads, "build_items": len(first),
          "build_s": round(build_s, 1), "build_items_per_s": round(len(first) / build_s, 1),
          "add_100_s": round(add_s, 3), "rebuild_nothing_new_s": round(rebuild_s, 2),
          "rebuild_embedded": rebuild["embedded"], "search_p50_ms": search_p50, "search_p95_ms": search_p95,
          "resolve_p50_ms": resolve_p50, "resolve_p95_ms": resolve_p95, "resolve_lexical_p50_ms": lexical_p50,
          "resolve_lexical_p95_ms": lexical_p95, "store_mib": round(size / 2**20, 1),
          "load_avg_before": round(load_before, 2), "load_avg_after": round(load_after, 2)})


if __name__ == "__main__":
    main()
