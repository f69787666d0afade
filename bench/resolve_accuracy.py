"""Title resolution on the public mention set (tests/data/mentions.csv), full catalog.

    python -m bench.resolve_accuracy [--mentions FILE ...] [--no-store]

Default: every tests/data/mentions*.csv — the development set the resolver was built
against (mentions.csv) and held-out sets written independently by someone who never saw
the resolver (mentions_holdout*.csv). Each row: a mention, the expected catalog item (empty = not in the catalog) and a kind
(typo, article, numeral, sequel, short, alias, book, book-author, cold, cross-domain,
nonexistent, ...). A mention counts as right when the resolved item is the expected one
or the same item under another source id (a linked movie, a merged book edition).
Reports top-1 accuracy on mentions that exist, the false-match rate on ones that do not
(targets: >= 95% and <= 5%), accuracy per kind, and resolve latency p50/p95.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.common import emit
from tools.catalog import CatalogItem
from tools.resolve import TitleResolver

HERE = Path(__file__).resolve().parent
MENTION_SETS = sorted((HERE.parent / "tests" / "data").glob("mentions*.csv"))


def read_mentions(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def is_expected(item: CatalogItem | None, expected: str) -> bool:
    """Right item: same id, or the expected source id is one of the item's linked sources."""
    if not expected:
        return item is None
    if item is None:
        return False
    if item.item_id == expected:
        return True
    source, _, native = expected.partition(":")
    linked = item.sources.get(source)
    return linked == native or (isinstance(linked, (list, tuple)) and native in linked)


def score_mentions(resolver: TitleResolver, rows: list[dict]) -> dict:
    per_kind: dict[str, list[bool]] = defaultdict(list)
    misses, seconds = [], []
    for row in rows:
        started = time.perf_counter()
        result = resolver.resolve(row["mention"])
        seconds.append(time.perf_counter() - started)
        ok = is_expected(result.item, row["expected"])
        per_kind[row["kind"]].append(ok)
        if not ok:
            misses.append((row, result))
    existing = [r for r in rows if r["expected"]]
    absent = [r for r in rows if not r["expected"]]
    missed_existing = sum(1 for row, _ in misses if row["expected"])
    false_matches = sum(1 for row, _ in misses if not row["expected"])
    ms = np.array(seconds) * 1000
    return {
        "mentions": len(rows), "existing": len(existing), "nonexistent": len(absent),
        "top1_accuracy": round(1 - missed_existing / max(1, len(existing)), 4),
        "false_match_rate": round(false_matches / max(1, len(absent)), 4),
        "per_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(per_kind.items())},
        "resolve_p50_ms": round(float(np.percentile(ms, 50)), 3),
        "resolve_p95_ms": round(float(np.percentile(ms, 95)), 3),
        "misses": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=Path, nargs="+", default=MENTION_SETS)
    parser.add_argument("--no-store", action="store_true", help="lexical only (no embedding search)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from tools.items import open_items

    catalog, store = open_items()
    resolver = TitleResolver(catalog, None if args.no_store else store)
    resolver.resolve("warm up")
    print(f"catalog {len(catalog)} items, embedding search {'off' if args.no_store else 'on'}")
    figures: dict = {"catalog_items": len(catalog), "store": not args.no_store}
    for path in args.mentions:
        result = score_mentions(resolver, read_mentions(path))
        misses = result.pop("misses")
        print(f"\n{path.name}: {result['mentions']} mentions ({result['existing']} in the catalog, "
              f"{result['nonexistent']} not)")
        print(f"  top-1 accuracy {result['top1_accuracy']:.3f}   false matches {result['false_match_rate']:.3f}   "
              f"resolve p50 {result['resolve_p50_ms']:.2f} ms  p95 {result['resolve_p95_ms']:.2f} ms")
        print("  per kind: " + ", ".join(f"{kind} {acc:.2f}" for kind, acc in result["per_kind"].items()))
        for row, res in misses:
            got = f"{res.item.item_id} {res.item.title!r}" if res.item else "nothing"
            print(f"  MISS {row['mention']!r}: expected {row['expected'] or 'nothing'}, got {got} "
                  f"(confidence {res.confidence:.2f}; next: {', '.join(c.item.title for c in res.candidates[:3])})")
        figures[path.stem] = result
    emit(figures)


if __name__ == "__main__":
    main()
