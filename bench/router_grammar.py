"""The tuned router's answer free first (grammar only when it does not fit) against every answer
under the JSON grammar: seconds per call and whether the answers agree, paired per turn.

    python -m bench.router_grammar [--set public heldout redial] [--limit N]

Each labelled turn (bench/router_accuracy.py's sets) is routed both ways back to back, the order
alternating from turn to turn, on the default local model with the shipped adapter; the ratio of
the two times per turn is robust to the machine's noise. Reports p50 / p95 seconds per way, the
median per-turn ratio (free-first / always), how often the free answer had to be asked again under
the grammar, and the turns whose routes differ. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from agent.config import Settings
from agent.llm import make_chat_model
from agent.router import make_router
from bench.common import emit
from bench.router_accuracy import BenchmarkMissing, load_set


class CountingLog(logging.Handler):
    """Counts the router's "asking again with the grammar" notes."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.asked_again = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "asking again with the grammar" in record.getMessage():
            self.asked_again += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", nargs="+", choices=["public", "heldout", "redial"], dest="sets",
                        default=["public", "heldout", "redial"])
    parser.add_argument("--limit", type=int, help="only the first N rows of each set")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    counter = CountingLog()
    logging.getLogger("agent.router").addHandler(counter)
    logging.getLogger("agent.router").setLevel(logging.INFO)

    settings = Settings()
    router = make_router(settings, make_chat_model(settings))
    if router.mode != "tuned":
        raise SystemExit("the default local model with the shipped router adapter is needed (router mode tuned)")
    router.route("hello")  # the model loads on its first call
    rows = []
    for name in args.sets:
        try:
            rows += load_set(name)[: args.limit] if args.limit else load_set(name)
        except BenchmarkMissing as exc:
            print(f"skipping the {name} set: {exc}")
    seconds: dict[str, list[float]] = {"fallback": [], "always": []}
    differ = []
    for n, row in enumerate(rows):
        routes = {}
        for way in (("fallback", "always") if n % 2 == 0 else ("always", "fallback")):
            router.grammar = way
            started = time.perf_counter()
            routes[way] = router.route(row["utterance"], row.get("context", []))
            seconds[way].append(time.perf_counter() - started)
        if routes["fallback"].to_dict() != routes["always"].to_dict():
            differ.append({"utterance": row["utterance"], "free_first": routes["fallback"].to_dict(),
                           "always": routes["always"].to_dict()})
        if (n + 1) % 50 == 0:
            print(f"  {n + 1}/{len(rows)}")
    ratio = np.asarray(seconds["fallback"]) / np.asarray(seconds["always"])
    figures = {"turns": len(rows), "asked_again": counter.asked_again, "routes_differ": len(differ),
               "ratio_median": round(float(np.median(ratio)), 3)}
    for way, values in seconds.items():
        figures[f"{way}_p50_s"] = round(float(np.percentile(values, 50)), 3)
        figures[f"{way}_p95_s"] = round(float(np.percentile(values, 95)), 3)
        figures[f"{way}_mean_s"] = round(float(np.mean(values)), 3)
    for d in differ[:10]:
        print(f"differs: {d['utterance']!r}\n  free first {d['free_first']}\n  always     {d['always']}")
    print(f"{len(rows)} turns: free first p50 {figures['fallback_p50_s']} s, p95 {figures['fallback_p95_s']} s; "
          f"always under the grammar p50 {figures['always_p50_s']} s, p95 {figures['always_p95_s']} s; "
          f"median ratio {figures['ratio_median']}; asked again {counter.asked_again}; routes differ {len(differ)}")
    emit(figures)


if __name__ == "__main__":
    main()
