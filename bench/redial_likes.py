"""Likes and dislikes read from real seekers' words, against the seekers' own answers (issue 24, part 3).

    python -m bench.redial_likes [--half dev|held|all] [--dialogues N] [--routes FILE] [--show N]

ReDial's seekers said, per movie, whether they liked it (``initiatorQuestions[id].liked``: 1 yes,
0 no, 2 did not say). Each valid dialogue is read by the agent as a transcript
(:meth:`agent.agent.Agent.read_turn`: the seeker's turns through the router and the dialogue
state, the recommender's turns as what was suggested), with every mention written as the bare
title a person types. At the end, each movie the seeker mentioned in their own turns and
answered 0 or 1 for is looked up in the state: liked, disliked, or neither.

- **balanced accuracy**: the mean of the recall on liked movies and on disliked ones (liked
  outnumber disliked 17 to 1); a movie the state has neither liked nor disliked is a miss for
  its class. Target ≥ 0.85.
- **resolved**: the share of those mentions whose turn named the right catalogue movie (the
  catalogue item ReDial's id was imported as: `chatrec items add id2info.json --source redial`).
  Target ≥ 0.95. ``same_title_other_film``: of the rest, those where the turn named a film of the
  same title (a bare "Black Panther" is the 1977 one or the 2018 one; the seeker picked theirs
  from ReDial's autocomplete, which showed the year). ``balanced_accuracy_by_title``: the balanced
  accuracy where such a film stands for the label (what the words alone can tell; the target
  is measured on the exact film).

``--half``: the dialogues are split in two by a hash of their id (the same split as
``bench.crs_folds``' two folds); reading rules are developed on ``dev`` and reported on ``held``.
``--routes FILE`` keeps the router's answers (by words and context) so later runs with the same
router re-read the dialogues without an LLM call. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from urllib.parse import unquote

from agent.agent import Agent
from agent.config import Settings
from agent.router import Route
from agent.state import DialogueState
from bench.common import emit
from bench.crs_folds import fold_of
from bench.router_accuracy import REDIAL_DATA, _bare_title, read_jsonl
from recsys.io import atomic_write_text
from tools.catalog import source_index
from tools.resolve import match_key

_MENTION = re.compile(r"@(\d+)")
HALVES = {"dev": 0, "held": 1}


def seeker_turns(dialog: dict) -> list[dict]:
    """The dialogue as turns ``{"role", "text", "ids"}``: consecutive messages of one speaker
    joined, mentions written as the bare title (URL escapes undone: "Why Him%3F" → "Why Him?"),
    ``ids`` the ReDial ids the turn mentions."""
    names = dialog.get("movieMentions") or {}
    turns: list[dict] = []
    for message in dialog["messages"]:
        role = "user" if message["senderWorkerId"] == dialog["initiatorWorkerId"] else "assistant"
        if turns and turns[-1]["role"] == role:
            turns[-1]["raw"] += " " + message["text"]
        else:
            turns.append({"role": role, "raw": message["text"]})
    for turn in turns:
        raw = turn.pop("raw")
        turn["text"] = " ".join(_MENTION.sub(
            lambda m: unquote(_bare_title(names[m.group(1)])) if names.get(m.group(1)) else m.group(0), raw).split())
        turn["ids"] = [i for i in dict.fromkeys(_MENTION.findall(raw)) if names.get(i)]
        turn["spans"], at = [], 0  # (start, end, id) of each mention as written, in order
        for i in _MENTION.findall(raw):
            if names.get(i) and (start := turn["text"].find(title := unquote(_bare_title(names[i])), at)) >= 0:
                turn["spans"].append((start, start + len(title), i))
                at = start + len(title)
    return turns


def labelled_mentions(dialog: dict, turns: list[dict]) -> dict[str, int]:
    """{ReDial id: 1 liked / 0 disliked} for the movies the seeker mentioned and answered for."""
    answers = dialog.get("initiatorQuestions") or {}
    if not isinstance(answers, dict):
        return {}
    mentioned = {i for t in turns if t["role"] == "user" for i in t["ids"]}
    return {i: a["liked"] for i, a in answers.items()
            if i in mentioned and isinstance(a, dict) and a.get("liked") in (0, 1)}


def balanced_recall(counts: dict[str, list[int]]) -> tuple[dict[str, float], float]:
    """(recall per class, their mean) from [right, all] per class."""
    recall = {k: right / max(n, 1) for k, (right, n) in counts.items()}
    return recall, (recall["liked"] + recall["disliked"]) / 2


def read_on_spans(dialogs: list[dict], reader=None) -> dict[str, list[int]]:
    """The stance reader alone, on the right title's span (no catalogue, no router): each labelled
    movie is disliked if a seeker turn naming it reads so (an earlier dislike stands, as in the
    state), else liked. ``reader``: a :class:`agent.stance.StanceReader` revising the rules' reading.
    [right, all] per class."""
    from agent.reading import title_stances

    counts = {"liked": [0, 0], "disliked": [0, 0]}
    for dialog in dialogs:
        turns = seeker_turns(dialog)
        labels = labelled_mentions(dialog, turns)
        read: dict[str, str] = {}
        for turn in turns:
            if turn["role"] != "user" or not turn["spans"]:
                continue
            spans = [(a, b) for a, b, _ in turn["spans"]]
            stances = title_stances(turn["text"], spans)
            if reader is not None:
                stances = reader.revise(turn["text"], spans, stances)
            for (*_, rid), stance in zip(turn["spans"], stances):
                if stance and read.get(rid) != "disliked":
                    read[rid] = stance
        for rid, label in labels.items():
            kind = "liked" if label == 1 else "disliked"
            counts[kind][1] += 1
            counts[kind][0] += read.get(rid, "liked") == kind
    return counts


class RouteCache:
    """The router's answers by (words, context), kept in a JSON-lines file between runs."""

    def __init__(self, router, path: Path | None) -> None:
        self.router, self.path, self.fresh = router, path, 0
        self.saved: dict[str, dict] = {}
        if path and path.exists():
            self.saved = {r["key"]: r["route"] for r in read_jsonl(path)}

    def route(self, words: str, context=()) -> Route:
        key = hashlib.sha1(json.dumps([words, list(context)], sort_keys=True).encode()).hexdigest()
        if key not in self.saved:
            self.saved[key] = self.router.route(words, context).to_dict()
            self.fresh += 1
            if self.path and self.fresh % 50 == 0:
                self.save()
        answer = json.loads(json.dumps(self.saved[key]))  # the agent edits a route's slots: a copy
        return Route(answer["intent"], answer["slots"])

    def save(self) -> None:
        if self.path:
            atomic_write_text(self.path, "".join(json.dumps({"key": k, "route": r}) + "\n"
                                                 for k, r in self.saved.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHATREC_REDIAL") or REDIAL_DATA))
    parser.add_argument("--half", choices=["dev", "held", "all"], default="all")
    parser.add_argument("--dialogues", type=int, help="the first N dialogues of the half only")
    parser.add_argument("--routes", type=Path, help="keep the router's answers here and reuse them")
    parser.add_argument("--show", type=int, default=0, help="print N missed mentions with their turn")
    parser.add_argument("--spans", action="store_true",
                        help="only the word rules on the right title's span, with and without the learned stance reader "
                             "(no catalogue, no router: seconds)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.data.exists():
        raise SystemExit(f"ReDial valid split not found at {args.data} (set CHATREC_REDIAL to its path)")

    from tqdm import tqdm

    dialogs = [d for d in read_jsonl(args.data)
               if args.half == "all" or fold_of(str(d["conversationId"]), 2) == HALVES[args.half]]
    dialogs = dialogs[:args.dialogues] if args.dialogues else dialogs
    if args.spans:
        return spans_only(dialogs, args.half)
    agent = Agent.from_settings(Settings(), progress=True)
    item_of = source_index(agent.catalog, "redial")
    if len(item_of) < 1000:
        raise SystemExit("ReDial's movies are not in the catalogue: "
                         "`chatrec items add ../shared/benchmarks/redial/id2info.json --source redial` first")
    cache = RouteCache(agent.router, args.routes)
    agent.router = cache
    # which titles each seeker turn resolved to, for the "resolved" figure: the titles the words
    # write out (every one, liked before or not) and, through the router, the ones it named
    named_in_turn: list = []
    apply_route, taste_in_words = agent._apply_route, agent._taste_in_words

    def routed(state, route, text):
        named, unknown = apply_route(state, route, text)
        named_in_turn.extend(item.item_id for item in named)
        return named, unknown

    def written(*args):
        spotted = taste_in_words(*args)
        named_in_turn.extend(item.item_id for item in spotted)
        return spotted

    agent._apply_route, agent._taste_in_words = routed, written
    counts = {"liked": [0, 0], "disliked": [0, 0]}  # [right, all] per class
    by_title = {"liked": [0, 0], "disliked": [0, 0]}  # the same, a film of the label's title counting as it
    resolved = total = other_film = 0
    misses = []
    for dialog in tqdm(dialogs, desc="dialogues", unit="dialogue"):
        turns = seeker_turns(dialog)
        labels = labelled_mentions(dialog, turns)
        if not labels:
            continue
        state = DialogueState(session_id=f"redial-{dialog['conversationId']}")
        named: set[str] = set()
        named_titles: set[str] = set()
        for turn in turns:
            items = [item_of[i] for i in turn["ids"] if i in item_of]
            named_in_turn.clear()
            agent.read_turn(state, turn["text"], role=turn["role"], items=items)
            if turn["role"] == "user":
                named |= set(named_in_turn)
                named_titles |= {match_key(item.title) for item in map(agent.catalog.get, named_in_turn) if item}
        for rid, label in labels.items():
            item_id = item_of.get(rid)
            total += 1
            resolved += item_id in named
            expected = agent.catalog.get(item_id) if item_id else None
            other_film += item_id not in named and expected is not None and match_key(expected.title) in named_titles
            kind = "liked" if label == 1 else "disliked"
            got = "liked" if item_id in state.liked else "disliked" if item_id in state.disliked else "neither"
            counts[kind][1] += 1
            counts[kind][0] += got == kind
            # the same, where the state holds a film of the label's title instead (the words said
            # "Titanic"; the seeker clicked Titanic (2012) in ReDial's autocomplete)
            by_title[kind][1] += 1
            if got == "neither" and expected is not None:
                same = [i for i in (*state.liked, *state.disliked)
                        if (film := agent.catalog.get(i)) and match_key(film.title) == match_key(expected.title)]
                got = ("disliked" if same[-1] in state.disliked else "liked") if same else got
            by_title[kind][0] += got == kind
            if got != kind:
                said = next((t["text"] for t in turns if t["role"] == "user" and rid in t["ids"]), "")
                misses.append((kind, got, item_id in named, expected.title if expected else rid, said))
    cache.save()
    recall = {k: (right / n if n else None) for k, (right, n) in counts.items()}
    title_recall, balanced_by_title = balanced_recall(by_title)
    balanced = (recall["liked"] + recall["disliked"]) / 2 if None not in recall.values() else None
    print(f"{len(dialogs)} dialogues ({args.half}), {total} labelled mentions: "
          f"liked {counts['liked'][0]}/{counts['liked'][1]}, disliked {counts['disliked'][0]}/{counts['disliked'][1]}")
    print(f"balanced accuracy {balanced:.3f} (target >= 0.85); resolved {resolved}/{total} = "
          f"{resolved / max(total, 1):.3f} (target >= 0.95); a film of the same title instead: {other_film}; "
          f"router calls made {cache.fresh}")
    print(f"where a film of the label's title counts as it (what the words can tell): balanced {balanced_by_title:.3f} "
          f"(liked {title_recall['liked']:.3f}, disliked {title_recall['disliked']:.3f}); not the target's measure")
    for kind, got, found, title, said in misses[:args.show]:
        print(f"- {kind} read as {got}{'' if found else ' (not resolved)'}: [{title}] {said[:200]}")
    emit({"bench": "redial_likes", "half": args.half, "dialogues": len(dialogs), "mentions": total,
          "liked_recall": round(recall["liked"], 4), "disliked_recall": round(recall["disliked"], 4),
          "liked_mentions": counts["liked"][1], "disliked_mentions": counts["disliked"][1],
          "balanced_accuracy": round(balanced, 4), "resolved": round(resolved / max(total, 1), 4),
          "same_title_other_film": other_film, "balanced_accuracy_by_title": round(balanced_by_title, 4),
          "router_calls": cache.fresh, "stance_reader": agent.stance_reader is not None})


def spans_only(dialogs: list[dict], half: str) -> None:
    from agent.stance import READER_FILE, load_stance_reader

    reader = load_stance_reader()
    figures = {"bench": "redial_likes_spans", "half": half, "dialogues": len(dialogs)}
    for name, revise in (("rules", None), ("rules_reader", reader)):
        if name == "rules_reader" and reader is None:
            print(f"no stance reader ({READER_FILE}): build it with python -m agent.tuning.stance_data")
            continue
        counts = read_on_spans(dialogs, revise)
        recall, score = balanced_recall(counts)
        print(f"{name:12s} liked {counts['liked'][0]}/{counts['liked'][1]} ({recall['liked']:.3f}), disliked "
              f"{counts['disliked'][0]}/{counts['disliked'][1]} ({recall['disliked']:.3f}), balanced {score:.3f}")
        figures |= {f"{name}_liked_recall": round(recall["liked"], 4),
                    f"{name}_disliked_recall": round(recall["disliked"], 4), f"{name}_balanced": round(score, 4)}
    emit(figures)


if __name__ == "__main__":
    main()
