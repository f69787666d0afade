"""Explanations as a chat user sees them: name two films you loved, ask, then "why the first one?".

    python -m bench.explain_chat [--people 30] [--seed 0] [--show]

The two films of each person are two a real ReDial seeker mentioned and said they liked
(``initiatorQuestions``: liked 1, not suggested to them; ``../shared/benchmarks/redial/valid_data.jsonl``
or ``$CHATREC_REDIAL``), drawn with a fixed seed. Each person is a new session on the agent with
the default settings (the explanation adapter on when it ships): "I loved A and B. What should I
watch next?", then "why the first one?". Pairs the agent did not turn into a list are counted
and skipped. Per explanation, the product's own sentence check is run again on what was shown:

- LLM-written: the shown text is the LLM's (all or part), not the evidence sentence;
- shown sentences supported, repeated sentences;
- names one of the person's items (the films they named, or the graph's nearest of them);
- seconds of the explain turn (p50 / p95) and two explanations' wording alike (the share of
  explanation pairs whose texts, items and titles blanked, are the same).

``--show`` prints every explanation with its verdicts (what a person reads). The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import re
import uuid
from urllib.parse import unquote

import numpy as np

from agent.agent import Agent
from agent.config import Settings
from bench.common import emit
from bench.router_accuracy import REDIAL_DATA, _bare_title, read_jsonl
from tools.explain import names_any


def liked_pairs(data, people: int, seed: int) -> list[tuple[str, str]]:
    """Two films one seeker mentioned and liked, per dialogue that has them; a seeded sample."""
    pairs = []
    for dialog in read_jsonl(data):
        names, asked = dialog.get("movieMentions") or {}, dialog.get("initiatorQuestions") or {}
        liked = [unquote(_bare_title(names[m])) for m, q in asked.items()  # "Why Him%3F" as typed: "Why Him?"
                 if isinstance(q, dict) and q.get("liked") == 1 and q.get("suggested") == 0 and names.get(m)]
        if len(liked) >= 2:
            pairs.append((liked[0], liked[1]))
    rng = random.Random(seed)
    rng.shuffle(pairs)
    return pairs[: people * 3]  # room for the pairs the agent cannot list


def blanked(text: str, titles: list[str]) -> str:
    for title in sorted(titles, key=len, reverse=True):
        text = re.sub(re.escape(title), "#", text, flags=re.IGNORECASE)
    return " ".join(text.lower().split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=30, help="chat users to play (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="print every explanation and its verdicts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = os.environ.get("CHATREC_REDIAL") or REDIAL_DATA
    agent = Agent.from_settings(Settings(), progress=False)
    captured: list = []
    write = agent.explainer.explanation

    def recorded(ev, query=""):  # what the explain flow made, with its evidence
        made = write(ev, query)
        captured.append((ev, made))
        return made

    agent.explainer.explanation = recorded
    rows, skipped = [], 0
    for first, second in liked_pairs(data, args.people, args.seed):
        if len(rows) == args.people:
            break
        session = f"explain-chat-{uuid.uuid4().hex[:8]}"
        listed = agent.respond(session, f"I loved {first} and {second}. What should I watch next?")
        if listed.intent != "recommend" or not listed.items:
            skipped += 1
            continue
        captured.clear()
        why = agent.respond(session, "why the first one?")
        if why.intent != "explain" or not captured:
            rows.append({"pair": (first, second), "shown": why.text, "intent": why.intent, "seconds": why.timings["total"]})
            continue
        ev, made = captured[-1]
        check = agent.explainer.check(made.text, ev)
        liked = [agent.catalog.get(i) for i in agent.sessions.get(session).liked]
        theirs = [i.title for i in liked if i] + [e["title"] for e in ev.nearest]
        rows.append({"pair": (first, second), "item": ev.item.title, "shown": made.text, "raw": made.raw,
                     "how": made.how, "intent": "explain", "seconds": why.timings["total"],
                     "sentences": len(check.sentences), "supported": sum(s.supported for s in check.sentences),
                     "repeats": sum(any(p.startswith("repeat") for p in s.problems) for s in check.sentences),
                     "names_theirs": names_any(made.text, theirs),
                     "unsupported": [f"{s.sentence} [{', '.join(s.problems)}]" for s in check.sentences if not s.supported],
                     "blanked": blanked(made.text, [ev.item.title, *theirs])})
    explained = [r for r in rows if r["intent"] == "explain" and "how" in r]
    sentences = sum(r["sentences"] for r in explained)
    same = [a["blanked"] == b["blanked"] for a, b in itertools.combinations(explained, 2)]
    seconds = [r["seconds"] for r in rows]
    figures = {"people": len(rows), "skipped_no_list": skipped, "explained": len(explained),
               "not_explain_intent": len(rows) - len(explained),
               "llm_written": round(sum(r["how"] != "fallback" for r in explained) / max(1, len(explained)), 3),
               "shown_sentences": sentences,
               "supported": round(sum(r["supported"] for r in explained) / max(1, sentences), 3),
               "repeated_sentences": sum(r["repeats"] for r in explained),
               "names_theirs": round(sum(r["names_theirs"] for r in explained) / max(1, len(explained)), 3),
               "same_wording_pairs": round(float(np.mean(same)), 3) if same else None,
               "explain_p50_s": round(float(np.percentile(seconds, 50)), 3) if seconds else None,
               "explain_p95_s": round(float(np.percentile(seconds, 95)), 3) if seconds else None,
               "explain_adapter": str(agent.explainer.llm.lora_path) if getattr(agent.explainer.llm, "lora_path", None) else None}
    for r in rows:
        if args.show:
            print(f"\n[{r.get('how', r['intent'])}] loved {r['pair'][0]} + {r['pair'][1]} → {r.get('item', '?')}")
            print(f"  shown: {r['shown']}")
            if r.get("how") == "fallback":
                print(f"  LLM wrote: {r['raw']!r}")
            for sentence in r.get("unsupported", []):
                print(f"  NOT SUPPORTED: {sentence}")
    print(f"\n{figures['explained']} explanations for {figures['people']} chat users ({skipped} pairs gave no list): "
          f"LLM-written {figures['llm_written']:.0%}, sentences supported {figures['supported']:.0%}, "
          f"repeats {figures['repeated_sentences']}, name their items {figures['names_theirs']:.0%}, "
          f"p95 {figures['explain_p95_s']} s")
    emit(figures)


if __name__ == "__main__":
    main()
