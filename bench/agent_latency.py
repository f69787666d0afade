"""Per-turn latency and memory of the running agent on the default local model.

    python -m bench.agent_latency [--rounds 2]

Plays short scripted dialogues (greetings, asks, follow-ups, "why" questions) through
``Agent.respond`` with the default settings, groups turns by the intent the agent answered
with, and reports p50 / p95 seconds per step (router, candidates, rerank, reply) and in total,
plus the process's resident memory (RSS) after the run. Targets (issue 4): recommend p95 <= 3 s,
chit-chat p95 <= 1.5 s on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
import uuid
from collections import defaultdict

import numpy as np

from agent.agent import Agent
from agent.config import Settings
from bench.common import emit

DIALOGUES = [
    ["hi!", "I loved Toy Story and Aladdin. What should I watch next?", "why the second one?", "thanks!"],
    ["hello, what can you do?", "some good sci-fi movies from the 80s please", "more like the first one",
     "why that one?"],
    ["I really liked Fargo and Pulp Fiction", "not the third one, something lighter", "why the first one?"],
    ["any good books for someone who loved The Godfather?", "why the first one?", "cool, thank you"],
    ["three romantic comedies from the 90s", "any decade is fine", "how are you today?"],
    ["I'm in the mood for a scary movie", "what about something like Alien?", "explain number 4",
     "great, bye"],
]


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="times to play every dialogue (new sessions)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    agent = Agent.from_settings(Settings(), progress=False)
    agent.respond(f"warm-{uuid.uuid4().hex[:6]}", "hello")  # models load on first use
    load_seconds = time.perf_counter() - started
    steps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    fallbacks = defaultdict(int)
    for _ in range(args.rounds):
        for dialogue in DIALOGUES:
            session = f"bench-{uuid.uuid4().hex[:8]}"
            for text in dialogue:
                reply = agent.respond(session, text)
                for step, seconds in reply.timings.items():
                    steps[reply.intent][step].append(seconds)
                for note in reply.notes:
                    fallbacks[note.split(":")[0]] += 1
                print(f"[{reply.intent:<9} {reply.timings['total']:5.2f}s] {text!r}")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures: dict = {"load_seconds": round(load_seconds, 1), "peak_rss_mib": round(rss_mib, 1)}
    for intent, by_step in sorted(steps.items()):
        print(f"{intent}: {len(by_step['total'])} turns")
        for step, values in by_step.items():
            print(f"  {step:<10} p50 {percentile(values, 50):6.3f}s  p95 {percentile(values, 95):6.3f}s")
            figures[f"{intent}_{step}_p50"] = percentile(values, 50)
            figures[f"{intent}_{step}_p95"] = percentile(values, 95)
        figures[f"{intent}_turns"] = len(by_step["total"])
    figures["fallbacks"] = dict(fallbacks)
    print(f"peak RSS {rss_mib:.0f} MiB; agent ready in {load_seconds:.1f}s")
    emit(figures)


if __name__ == "__main__":
    main()
