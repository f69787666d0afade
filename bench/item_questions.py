"""Questions about a film, and chit-chat that tempts a model to invent: what the agent answers.

    python -m bench.item_questions [--half dev|held|all] [--show]

Each message of ``evaluation/item_questions/item_questions.jsonl`` (written before the agent
answered item questions; its README) goes to a new session of the agent with the settings of the
environment: run it with a home whose catalogue holds the credits (``CHATREC_HOME`` with ReDial's
movies imported, ``chatrec items import-redial``), or the answers can only be "I don't know".
Per message:

- ``chitchat``: the turn is chit-chat with no list shown (a question is never a request);
- ``titled``: the route's ``titles`` slot holds the film asked about;
- ``answered``: for a fact the catalogue holds (director, cast, writer, year, genre, plot), the
  reply states it: a surname of a credited person, the year, a genre, three words of the plot;
- ``dont_know``: the reply says it does not know (right for ``other`` and ``unknown`` questions);
- invented facts, checked here apart from the agent's own guard: a person's name (two capitalised
  words) that no film of that title credits and the message does not contain, a year no film of
  that title has, and (by the product's faithfulness check, :class:`tools.fact_guard.FactGuard`)
  a sentence about the film whose content words the film's facts do not hold (the product's check,
  tools.fact_guard, on what was shown: it counts the guard's misses).

The last line is one JSON object with the figures of each half.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
import uuid
from pathlib import Path

import numpy as np

from agent.agent import Agent
from agent.config import Settings
from bench.common import emit
from tools.explain_check import sentences
from tools.item_facts import ROLES, credits_by_role
from tools.resolve import match_key

SET = Path(__file__).resolve().parent.parent / "evaluation" / "item_questions" / "item_questions.jsonl"
FACT_KINDS = ("director", "cast", "writer", "year", "genre", "plot")
_NAME = re.compile(r"\b([A-Z][a-z'’.-]+(?:\s+(?:[A-Z]\.\s*)?[A-Z][a-z'’-]+)+)\b")
_YEAR = re.compile(r"\b(1[89]\d\d|20[0-3]\d)\b")
_DONT_KNOW = re.compile(r"\b(?:don'?t|do not|doesn'?t|does not)\s+(?:know|have|hold|say)\b|\bnot sure\b|\bno idea\b|"
                        r"\bcan'?t (?:tell|say)\b|\bnot in (?:my|the) catalog", re.I)


def same_titled(agent: Agent, title: str):
    key = match_key(title)
    return [i for i in agent.catalog.items if i.domain == "movie" and match_key(i.title) == key]


def people_of(items, kind: str) -> list[str]:
    return [name for item in items for name in credits_by_role(item.description).get(kind, [])]


def answered(reply: str, kind: str, items) -> bool | None:
    """Whether the reply states the fact asked; None where no film of that title holds it."""
    low = reply.lower()
    if kind in ROLES:
        names = people_of(items, kind)
        return any(n.split()[-1].lower() in low for n in names) if names else None
    if kind == "year":
        years = {i.year for i in items if i.year}
        return any(str(y) in reply for y in years) if years else None
    if kind == "genre":
        genres = {g.lower() for i in items for g in i.genres}
        return any(g.rstrip("s") in low for g in genres) if genres else None
    if kind == "plot":
        plots = [re.split(r"\s*Directed by ", i.description or "")[0] for i in items]
        words = {w.lower() for p in plots for w in re.findall(r"[A-Za-z]{5,}", p)}
        return len(words & set(re.findall(r"[a-z]{5,}", low))) >= 3 if any(plots) else None
    return None


def invented(reply: str, message: str, items, agent: Agent) -> list[str]:
    """Names and years the reply states that no film of the title (nor any film it names) holds."""
    named = [item for _, item in agent.resolver.spotter.spot(reply)]
    known = [*items, *named]
    text = " ".join([message, *(i.description or "" for i in known), *(i.title for i in known)])
    out = []
    for name in _NAME.findall(reply):
        parts = [p for p in re.findall(r"[A-Za-z'’-]+", name) if p not in ("The", "A", "An", "I")]
        if parts and not all(p.lower() in text.lower() for p in parts) and not agent.resolver.spotter.spot(name):
            out.append(f"name {name}")
    years = {i.year for i in known if i.year} | {int(y) for y in _YEAR.findall(message)}
    out += [f"year {y}" for y in _YEAR.findall(reply) if int(y) not in years]
    return out


def unsupported_sentences(reply: str, message: str, items, agent: Agent) -> list[str]:
    """Sentences the product's fact check (tools.fact_guard, on the explanation's claim checker)
    finds stating what the catalogue does not hold: of the shown reply, so 0 unless the guard
    itself is bypassed; the independent count is :func:`invented`."""
    if reply in (agent.chitchat_fallback, *agent.replies.values()):  # the agent's own fixed words
        return []
    return [f"{sentence} {problems}" for sentence in sentences(reply)
            if (problems := agent.fact_guard.problems(sentence, message, items[:1]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--half", choices=["dev", "held", "all"], default="all")
    parser.add_argument("--show", action="store_true", help="print every question with the agent's answer")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if args.half == "all" or r["half"] == args.half][: args.limit]
    settings = Settings()
    agent = Agent.from_settings(settings, progress=False)
    results = []
    for row in rows:
        t = time.perf_counter()
        reply = agent.respond(f"bench-{uuid.uuid4().hex[:8]}", row["text"])
        seconds = time.perf_counter() - t
        items = same_titled(agent, row["title"]) if row["title"] else []
        titles = [match_key(str(m)) for m in reply.slots.get("titles") or []]
        result = {**row, "reply": reply.text, "intent": reply.intent, "listed": len(reply.items), "seconds": seconds,
                  "chitchat": reply.intent == "chitchat" and not reply.items,
                  "titled": (match_key(row["title"]) in titles) if row["title"] else None,
                  "answered": answered(reply.text, row["asks"], items) if row["asks"] in FACT_KINDS else None,
                  "dont_know": bool(_DONT_KNOW.search(reply.text)),
                  "invented": invented(reply.text, row["text"], items, agent),
                  "unsupported": unsupported_sentences(reply.text, row["text"], items, agent)}
        results.append(result)
        if args.show:
            marks = [k for k in ("chitchat", "titled", "answered", "dont_know") if result[k]]
            print(f"[{row['half']} {row['asks']}] {row['text']}\n  -> ({reply.intent}, {len(reply.items)} listed) "
                  f"{reply.text}\n  {' '.join(marks)}  invented={result['invented']} unsupported={result['unsupported']}")
    figures = {"set": str(SET.relative_to(SET.parent.parent.parent)), "home": str(settings.home)}
    for half in ("dev", "held"):
        part = [r for r in results if r["half"] == half]
        if not part:
            continue
        facts = [r for r in part if r["answered"] is not None]
        no_fact = [r for r in part if r["asks"] in ("other", "unknown")]
        seconds = [r["seconds"] for r in part]
        figures[half] = {
            "messages": len(part),
            "chitchat": round(np.mean([r["chitchat"] for r in part]), 3),
            "titled": round(np.mean([r["titled"] for r in part if r["titled"] is not None] or [0]), 3),
            "answered": round(np.mean([r["answered"] for r in facts]), 3) if facts else None,
            "answerable": len(facts),
            "dont_know_when_unknowable": round(np.mean([r["dont_know"] for r in no_fact]), 3) if no_fact else None,
            "invented_names_years": sum(len(r["invented"]) for r in part),
            "unsupported_sentences": sum(len(r["unsupported"]) for r in part),
            "replies_with_an_invention": sum(bool(r["invented"] or r["unsupported"]) for r in part),
            "seconds_p50": round(float(np.percentile(seconds, 50)), 2),
            "seconds_p95": round(float(np.percentile(seconds, 95)), 2),
        }
        f = figures[half]
        print(f"{half}: {f['messages']} messages, chit-chat {f['chitchat']:.3f}, titled {f['titled']:.3f}, "
              f"answered {f['answered']} of {f['answerable']} answerable, don't-know on unknowable "
              f"{f['dont_know_when_unknowable']}, replies with an invented fact {f['replies_with_an_invention']} "
              f"({f['invented_names_years']} names/years, {f['unsupported_sentences']} unsupported sentences), "
              f"p50 {f['seconds_p50']} s, p95 {f['seconds_p95']} s")
    emit(figures)


if __name__ == "__main__":
    main()
