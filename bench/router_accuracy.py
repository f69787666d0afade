"""Router accuracy on each labelled set, per backend, each set reported apart with its confusion matrix.

    python -m bench.router_accuracy [--set public heldout redial] [--reading] [--backend local|openai]
                                    [--mode auto|tuned|few-shot] [--shots 4] [--limit N] [--show-misses]

Sets (``--set``, default all three):

- ``public``: tests/data/router_set.jsonl (239 utterances, written by the hands that wrote the
  training rows).
- ``heldout``: tests/data/router_heldout.jsonl — families of paraphrases written apart from the
  training data, labels fixed before the router's answers were seen: explanation requests with and
  without a list in the context, questions about a movie, decades and relative years, a domain
  other than the titles named, typos, a like + a dislike + a request in one message.
- ``redial``: 330 real seekers' turns from ReDial's valid split, labelled by hand
  (evaluation/redial/seeker_labels.jsonl holds ids and labels; the words are joined from
  ``../shared/benchmarks/redial/valid_data.jsonl``, or ``$CHATREC_REDIAL``). Skipped with a
  message when the benchmark file is absent.
- ``redial-dev``: 200 seeker turns from 200 other valid dialogues (evaluation/redial/dev_labels.jsonl),
  labelled the same way, for developing the reading: read its misses (``--show-misses``), never
  ``redial``'s. Not in the default sets.
- ``redial-dev2``: 200 seeker turns from 200 more valid dialogues outside both sets
  (evaluation/redial/dev2_labels.jsonl), labelled the same way; measured untouched once, then
  read for development like ``redial-dev``. Not in the default sets.

Figures per set: intent accuracy overall and per intent, the confusion matrix (rows: the label,
columns: the router's answer), slot exact-match rates on the rows whose label is not empty, and
micro precision / recall of the titles, likes and dislikes (titles compared by their match key,
a fuzzy ratio of 85 or more; "#2" is the second item of the last list). ``--reading`` scores a
second time what the agent reads from the turn: the router's answer after the agent's second
look, the intent reader's word on request against chit-chat where it is on (:mod:`agent.intent`;
on by default, as in the product; ``--intent-reader off`` for the rules alone) and ``agent.reading.sanitize_slots``
(the title spotter needs the catalog of the data home). Seconds per call over all sets. The last
line is one JSON object. Target: >= 0.95 intent accuracy with the default local model on each set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT / "tests" / "data" / "router_set.jsonl"
HELDOUT = ROOT / "tests" / "data" / "router_heldout.jsonl"
REDIAL_LABELS = ROOT / "evaluation" / "redial" / "seeker_labels.jsonl"
REDIAL_DEV_LABELS = ROOT / "evaluation" / "redial" / "dev_labels.jsonl"
REDIAL_DEV2_LABELS = ROOT / "evaluation" / "redial" / "dev2_labels.jsonl"
REDIAL_DATA = ROOT.parent / "shared" / "benchmarks" / "redial" / "valid_data.jsonl"
INTENT_ORDER = ("recommend", "explain", "chitchat")
TITLE_MATCH = 85  # fuzzy ratio of two match keys for a title to count as the same
RECENT_SPAN = 15  # "recent" is right when year_from is within this many years of now (and no year_to)
OLDER_BEFORE = 1990  # "older" is right when year_to is at most this (and no year_from)


class BenchmarkMissing(RuntimeError):
    """The ReDial file is not on this machine."""


# -- the sets ----------------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


_MENTION = re.compile(r"@(\d+)")


def _bare_title(name: str) -> str:
    """ "The Shining  (1980)" → "The Shining": what a person types."""
    return " ".join(re.sub(r"\s*\(\d{4}\)\s*$", "", name).split())


def redial_turns(dialog: dict) -> list[dict]:
    """A ReDial dialogue as turns ``{"role", "text", "items"}``: consecutive messages of one speaker
    joined by a space, the seeker (``initiatorWorkerId``) as ``user``, mentions (``@123``) written
    as the movie's title without its year; ``items`` are the titles a turn mentions."""
    names = dialog.get("movieMentions") or {}
    groups: list[dict] = []
    for message in dialog["messages"]:
        role = "user" if message["senderWorkerId"] == dialog["initiatorWorkerId"] else "assistant"
        if groups and groups[-1]["role"] == role:
            groups[-1]["raw"].append(message["text"])
        else:
            groups.append({"role": role, "raw": [message["text"]]})
    turns = []
    for group in groups:
        raw = " ".join(group["raw"])
        text = _MENTION.sub(lambda m: _bare_title(names[m.group(1)]) if names.get(m.group(1)) else m.group(0), raw)
        items = [_bare_title(names[i]) for i in _MENTION.findall(raw) if names.get(i)]
        turns.append({"role": group["role"], "text": " ".join(text.split()), "items": items})
    return turns


def text_digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def redial_rows(labels: Path = REDIAL_LABELS, data: Path | None = None) -> list[dict]:
    """The labelled seeker turns joined with their words and the dialogue so far. Raises
    :class:`BenchmarkMissing` when the benchmark file is absent, ``ValueError`` when a label
    points at a turn that is not a seeker's or whose words changed."""
    data = Path(data or os.environ.get("CHATREC_REDIAL") or REDIAL_DATA)
    if not data.exists():
        raise BenchmarkMissing(f"ReDial valid split not found at {data} (set CHATREC_REDIAL to its path)")
    dialogs = {d["conversationId"]: d for d in read_jsonl(data)}
    rows = []
    for label in read_jsonl(labels):
        dialog = dialogs.get(label["dialog"])
        if dialog is None:
            raise ValueError(f"{labels.name}: dialogue {label['dialog']} is not in {data}")
        turns = redial_turns(dialog)
        k = label["turn"]
        if k >= len(turns) or turns[k]["role"] != "user":
            raise ValueError(f"{labels.name}: turn {k} of dialogue {label['dialog']} is not the seeker's")
        if text_digest(turns[k]["text"]) != label["sha1"]:
            raise ValueError(f"{labels.name}: the words of dialogue {label['dialog']} turn {k} changed")
        rows.append({"id": f"redial-{label['dialog']}-{k}", "context": turns[:k], "utterance": turns[k]["text"],
                     "intent": label["intent"], "slots": label.get("slots") or {}, "relative": label.get("relative"),
                     "ambiguous": label.get("ambiguous", False)})
    return rows


def load_set(name: str) -> list[dict]:
    if name == "redial":
        return redial_rows()
    if name == "redial-dev":
        return redial_rows(REDIAL_DEV_LABELS)
    if name == "redial-dev2":
        return redial_rows(REDIAL_DEV2_LABELS)
    return read_jsonl({"public": PUBLIC, "heldout": HELDOUT}[name])


# -- scoring -------------------------------------------------------------------------------------

def _norm(value):
    if isinstance(value, list):
        return sorted(str(v).lower() for v in value)
    return str(value).lower() if isinstance(value, str) else value


def last_list(context: Sequence[dict]) -> list[str]:
    """The items of the last assistant turn that showed some (what "the second one" points into)."""
    for turn in reversed(list(context)):
        if turn.get("role") == "assistant" and turn.get("items"):
            return list(turn["items"])
    return []


def _as_title(mention, shown: Sequence[str]) -> str | None:
    text = str(mention).strip()
    if text.lstrip("#").isdigit():
        n = int(text.lstrip("#"))
        return shown[n - 1] if 1 <= n <= len(shown) else None
    return text or None


def title_hits(gold: Sequence, predicted: Sequence, shown: Sequence[str] = ()) -> tuple[int, int, int]:
    """(matched, gold count, predicted count) of two title lists, each title once, "#N" read in ``shown``."""
    from rapidfuzz import fuzz

    from tools.resolve import match_key

    def keys(values):
        out = []
        for v in values or []:
            title = _as_title(v, shown)
            key = match_key(title) if title else ""
            if key and key not in out:
                out.append(key)
        return out

    g, p = keys(gold), keys(predicted)
    left, matched = list(g), 0
    for key in p:
        best = max(left, key=lambda k: fuzz.ratio(k, key), default=None)
        if best is not None and fuzz.ratio(best, key) >= TITLE_MATCH:
            left.remove(best)
            matched += 1
    return matched, len(g), len(p)


def years_right(row: dict, slots: dict, this_year: int) -> bool | None:
    """Whether the years read are right; None when the label states no years."""
    gold, relative = row["slots"], row.get("relative")
    start, end = slots.get("year_from"), slots.get("year_to")
    if relative == "recent":
        return isinstance(start, int) and start >= this_year - RECENT_SPAN and end is None
    if relative == "older":
        return isinstance(end, int) and end <= OLDER_BEFORE and start is None
    if gold.get("year_from") is None and gold.get("year_to") is None:
        return None
    return start == gold.get("year_from") and end == gold.get("year_to")


def score(rows: Sequence[dict], answers: Sequence[tuple[str, dict]], this_year: int | None = None) -> dict:
    """Intent accuracy, per intent, the confusion matrix and the slot figures of ``answers``
    (``(intent, slots)`` per row, in order)."""
    this_year = this_year or time.gmtime().tm_year
    confusion = {g: {p: 0 for p in INTENT_ORDER} for g in INTENT_ORDER}
    exact: dict[str, list[bool]] = defaultdict(list)
    pr = {k: [0, 0, 0] for k in ("titles", "liked", "disliked")}
    clear = []
    for row, (intent, slots) in zip(rows, answers, strict=True):
        confusion[row["intent"]][intent] += 1
        if not row.get("ambiguous"):
            clear.append(intent == row["intent"])
        gold, shown = row["slots"], last_list(row["context"])
        for key in ("titles", "liked", "disliked"):
            hits = title_hits(gold.get(key) or [], slots.get(key) or [], shown)
            pr[key] = [a + b for a, b in zip(pr[key], hits)]
        for key in ("genres", "domain", "count", "reference"):
            if gold.get(key) not in (None, [], ""):
                exact[key].append(_norm(slots.get(key)) == _norm(gold[key]))
        if (right := years_right(row, slots, this_year)) is not None:
            exact["years"].append(right)
        if gold.get("domain") == "movie" or (row["id"].startswith("redial-") and row["intent"] == "recommend"):
            exact["not_book"].append(slots.get("domain") != "book")
    n = len(rows)
    hits = sum(confusion[i][i] for i in INTENT_ORDER)
    out = {"rows": n, "intent_accuracy": round(hits / n, 4) if n else None}
    for intent in INTENT_ORDER:
        total = sum(confusion[intent].values())
        if total:
            out[f"{intent}_accuracy"] = round(confusion[intent][intent] / total, 4)
            out[f"{intent}_rows"] = total
    if len(clear) < n:
        out["unambiguous_accuracy"] = round(sum(clear) / len(clear), 4) if clear else None
        out["unambiguous_rows"] = len(clear)
    for key, (matched, gold_n, pred_n) in pr.items():
        out[f"{key}_recall"] = round(matched / gold_n, 3) if gold_n else None
        out[f"{key}_precision"] = round(matched / pred_n, 3) if pred_n else None
    for key, values in sorted(exact.items()):
        out[f"slot_{key}"] = round(sum(values) / len(values), 3)
        out[f"slot_{key}_rows"] = len(values)
    out["confusion"] = confusion
    return out


def print_set(name: str, figures: dict) -> None:
    print(f"\n== {name}: {figures['rows']} utterances, intent accuracy {figures['intent_accuracy']:.3f}")
    width = max(len(i) for i in INTENT_ORDER)
    corner = "label \\ answer"
    print(f"  {corner:<{width + 6}}" + "".join(f"{p:>11}" for p in INTENT_ORDER))
    for gold in INTENT_ORDER:
        counts = figures["confusion"][gold]
        if sum(counts.values()):
            print(f"  {gold:<{width + 6}}" + "".join(f"{counts[p]:>11}" for p in INTENT_ORDER))
    if "unambiguous_accuracy" in figures:
        print(f"  unambiguous rows: {figures['unambiguous_accuracy']} ({figures['unambiguous_rows']})")
    slots = {k: v for k, v in figures.items() if k.startswith(("slot_", "titles_", "liked_", "disliked_"))
             and not k.endswith("_rows") and v is not None}
    print("  " + ", ".join(f"{k} {v}" for k, v in slots.items()))


# -- running ------------------------------------------------------------------------------------

def agent_reading(route, text: str, context: Sequence[dict], spotter, turn=None, people=None,
                  intent_reader=None) -> tuple[str, dict]:
    """What the agent reads from a turn: the second look on the router's answer (``people``: the
    catalogue's credits), recommend against chit-chat settled by ``intent_reader`` where it is
    sure, then the slots checked against the words (:func:`agent.reading.sanitize_slots`) and
    titles cut at their commas made whole again (:func:`agent.reading.whole_titles`), as
    :meth:`agent.agent.Agent._apply_route` does."""
    from agent.reading import after_suggestions, sanitize_slots, second_look, with_whole_titles

    answers = after_suggestions([(t.get("role"), t.get("items") or [], t.get("text", "")) for t in context])
    intent, slots = second_look(route.intent, route.slots, text, spotter, answers, people)
    if intent_reader is not None:
        intent = intent_reader.settle(intent, text, context, answers, spotter)
    spans = spotter.spans(text, "movie")  # the words of a title ask nothing
    slots = sanitize_slots(slots, text, last_list(context), turn, [(start, end) for start, end, *_ in spans],
                           [item for *_, item in spans])
    domain = slots.get("domain") or "movie"
    return intent, with_whole_titles(slots, text, spans if domain == "movie" else spotter.spans(text, domain))


class SavedRoutes:
    """Answers a router gave before (``--save-routes``), looked up by row id (``--routes``)."""

    mode = "saved"

    def __init__(self, saved: dict[str, dict]) -> None:
        self.saved = saved

    def of(self, row: dict):
        from agent.router import Route

        if row["id"] not in self.saved:  # (the intent head is applied by the caller)
            raise SystemExit(f"no saved answer for {row['id']}: save the routes of the same sets first")
        answer = self.saved[row["id"]]
        return Route(answer["intent"], answer["slots"])


def main() -> None:
    import numpy as np

    from agent.config import Settings
    from agent.llm import make_chat_model
    from agent.router import make_router
    from bench.common import emit

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", nargs="+", choices=["public", "heldout", "redial", "redial-dev", "redial-dev2"],
                        dest="sets",
                        default=["public", "heldout", "redial"], help="which labelled sets (default: all)")
    parser.add_argument("--reading", action="store_true",
                        help="also score the agent's reading (second look + slot checks; loads the catalog)")
    parser.add_argument("--backend", choices=["local", "openai"], help="default: the configured one")
    parser.add_argument("--mode", choices=["auto", "tuned", "few-shot"], default="auto")
    parser.add_argument("--adapter", help="another router adapter file (tuned mode)")
    parser.add_argument("--shots", type=int, default=4, help="few-shot mode: examples per call")
    parser.add_argument("--limit", type=int, help="only the first N rows of each set")
    parser.add_argument("--head", choices=["off", "explain", "all"],
                        help="the intent head as Settings.router_head (default: the product's setting, explain)")
    parser.add_argument("--intent-reader", metavar="shipped|FILE|off",
                        help="with --reading: the intent reader (default: the product's setting, shipped)")
    parser.add_argument("--intent-sure", type=float, help="with --reading: the reader's sure, in place of its file's")
    parser.add_argument("--no-head", action="store_true", help="the LLM's intent alone: --head off")
    parser.add_argument("--grammar", choices=["fallback", "always"], default="fallback",
                        help="tuned mode: answer free and use the JSON grammar only when the answer does not fit "
                             "(fallback, the product's default), or every answer under the grammar")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--save-routes", metavar="FILE", help="write the router's answers (JSON lines) to FILE")
    parser.add_argument("--routes", metavar="FILE",
                        help="score answers saved by --save-routes instead of calling the router (no LLM)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    sets: dict[str, list[dict]] = {}
    for name in args.sets:
        try:
            rows = load_set(name)
        except BenchmarkMissing as exc:
            print(f"skipping the {name} set: {exc}")
            continue
        sets[name] = rows[: args.limit] if args.limit else rows
    if not sets:
        raise SystemExit("no labelled set to measure")

    settings = Settings(router_mode=args.mode, **({"llm_backend": args.backend} if args.backend else {}),
                        **({"router_adapter": args.adapter} if args.adapter else {}))
    saved: dict[str, dict] = {}
    if args.routes:
        saved = {r["id"]: r for r in read_jsonl(Path(args.routes))}
        router = SavedRoutes(saved)
    else:
        router = make_router(settings, make_chat_model(settings))
        router.shots, router.grammar = args.shots, args.grammar
    from agent.router import load_head

    from agent.router import EXPLAIN_ONLY

    which = "off" if args.no_head else (args.head or settings.router_head)
    head = None if which == "off" else load_head(only=EXPLAIN_ONLY if which == "explain" else None)
    if not saved:
        router.head = head  # the router applies it, timed with the LLM's call
    spotter = people = intent_reader = None
    if args.reading:
        from tools.catalog import load_catalog
        from tools.item_facts import People
        from tools.resolve import TitleSpotter

        items = load_catalog(settings.home, progress=False).items
        spotter, people = TitleSpotter(items), People(items)
        from agent.intent import load_intent_reader

        which_reader = args.intent_reader or settings.intent_reader
        intent_reader = None if which_reader == "off" else load_intent_reader(
            None if which_reader == "shipped" else Path(which_reader))
        if intent_reader is not None and args.intent_sure is not None:
            intent_reader.sure = args.intent_sure

    figures = {"backend": settings.llm_backend, "model": settings.llm_model or "SmolLM2-135M-Instruct Q4_1",
               "mode": router.mode, "adapter": args.adapter or ("shipped" if router.mode == "tuned" else None),
               "shots": args.shots if router.mode == "few-shot" else 0,
               "grammar": getattr(router, "grammar", None), "head": which, "head_sure": head.sure if head else None,
               "intent_reader_sure": intent_reader.sure if intent_reader else None,
               "sets": {}}
    seconds, dump = [], []
    for name, rows in sets.items():
        raw, read = [], []
        for row in rows:
            started = time.perf_counter()
            if saved:  # the LLM's answer from before; the head (if any) read now
                llm = router.of(row)
                route = head.combine(llm, head.probabilities(row["utterance"])) if head else llm
                seconds.append(saved[row["id"]]["seconds"])
            else:  # the router as the agent calls it: the head reads while the LLM answers
                route = router.route(row["utterance"], row["context"])
                llm = router.last_llm_route
                seconds.append(time.perf_counter() - started)
            dump.append({"id": row["id"], "intent": llm.intent, "slots": llm.slots, "seconds": round(seconds[-1], 4)})
            raw.append((route.intent, route.slots))
            if len(raw) % 50 == 0:
                print(f"  {name}: {len(raw)}/{len(rows)}", file=sys.stderr, flush=True)
            if spotter is not None:
                read.append(agent_reading(route, row["utterance"], row["context"], spotter, settings.turn, people,
                                          intent_reader))
            if args.show_misses and route.intent != row["intent"]:
                print(f"  MISS {row['id']} {row['utterance'][:120]!r}: {row['intent']} -> {route.intent}"
                      + (f" (reading: {read[-1][0]})" if read else ""))
        if args.save_routes:  # after each set: a long run stopped later keeps what it measured
            from recsys.io import atomic_write_text

            atomic_write_text(Path(args.save_routes), "".join(json.dumps(d) + "\n" for d in dump))
        figures["sets"][name] = score(rows, raw)
        print_set(f"{name} (router)", figures["sets"][name])
        if read:
            figures["sets"][f"{name}+reading"] = score(rows, read)
            print_set(f"{name} (agent's reading)", figures["sets"][f"{name}+reading"])
    figures["p50_s"] = round(float(np.percentile(seconds, 50)), 3)
    figures["p95_s"] = round(float(np.percentile(seconds, 95)), 3)
    print(f"\nbackend {figures['backend']}, {router.mode} router: p50 {figures['p50_s']} s, p95 {figures['p95_s']} s")
    emit(figures)


if __name__ == "__main__":
    main()
