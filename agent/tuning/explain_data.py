"""Tuning data for the explanation skill: evidence -> a short explanation that uses only it.

Each pair is the agent's own explanation prompt (``Explainer.prompt``, so what is tuned is what is
served) over the evidence the agent gathers for a training user's graph candidate, answered with
one or two sentences composed from clauses of many shapes (:data:`SHAPES`), each clause filled
from one evidence field — the person's nearest items, the shared genres, the similar-people count,
the reasons they gave — and its wording drawn from paraphrases (:data:`WORDS`). Every answer is run
through the product's own sentence check (tools/explain_check.py) and kept only when every
sentence is supported, it names the item and one of the person's items: an answer never claims
more than the evidence. The users are training users of the graph split; ``exclude`` leaves out
the people an evaluation uses (``chatrec eval-explain`` samples test users with seed 0).

    python -m agent.tuning.explain_data --users 300 --out explain_pairs.jsonl

writes rows in the format of ``chatrec tune data`` (agent/tuning/instruct.py, task ``explain``),
so ``chatrec tune train --data explain_pairs.jsonl --task explain`` can tune on them.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from recsys.io import atomic_open
from tools.vocabulary import GENRE_ADJECTIVE

log = logging.getLogger(__name__)

# paraphrases of the words a clause needs
WORDS: dict[str, tuple[str, ...]] = {
    "close": ("sits close to", "is close to", "is near", "sits near"),
    "liked": ("liked", "enjoyed", "loved"),
    "suits": ("should suit you", "could suit you", "is worth a try", "may be a good pick", "is a good fit"),
    "watched": ("watched it", "have seen it", "watched {title}"),
    "similar": ("with the most similar taste", "whose taste is closest to yours", "with a taste like yours"),
}
# clause shapes by the evidence field they use; {fields} are filled from the evidence
SHAPES: dict[str, tuple[str, ...]] = {
    "near": (
        "{title} {close} {near}, which you {liked}.",
        "You {liked} {near}, and {title} {close} {them}.",
        "Since you {liked} {near}, {title} {suits}.",
        "If you {liked} {near}, {title} {suits}.",
        "{title} is here because it {close} {near}, which you {liked}.",
        "People who {liked} {near} also {liked} {title}.",
        "{near} {led} to {title}: it {close} {them}.",
    ),
    "genres": (
        "{title} is {a_genre} film, like {near_one}.",
        "Like {near_one}, {title} is {a_genre} film.",
        "It shares {genres} with your favourites.",
        "{title} has the {genres} you like.",
    ),
    "similar": (
        "{have} of the {n} people {similar} {watched}.",
        "Of the {n} people {similar}, {have} {watched}.",
    ),
    "said": (
        "You said you liked {said}, and {title} is {a_said_genre} film too.",
        "You mentioned {said}; {title} is {a_said_genre} film as well.",
    ),
}


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def compose(ev, rng: random.Random) -> tuple[str, str]:
    """(answer, shape name): a first sentence about the person's nearest items, and maybe one more
    from another evidence field; paraphrases picked by ``rng``."""
    near = [e["title"] for e in ev.nearest[:2]]
    fields = {"title": ev.item.title, "near": _and(near), "near_one": near[0],
              "them": "them" if len(near) > 1 else "it", "led": "lead" if len(near) > 1 else "leads"}
    fields |= {k: rng.choice(v) for k, v in WORDS.items()}
    fields["watched"] = fields["watched"].format(title=ev.item.title)
    if ev.shared_genres:
        genre = rng.choice(ev.shared_genres)
        fields |= {"a_genre": _a(GENRE_ADJECTIVE.get(genre, genre.lower())),
                   "genres": _and([GENRE_ADJECTIVE.get(g, g.lower()) for g in ev.shared_genres[:2]])}
    if ev.similar_users and ev.similar_users[0]:
        fields |= {"have": ev.similar_users[0], "n": ev.similar_users[1]}
    said = [w for w in ev.their_words if w.get("how") == "genre"]
    if said:
        fields |= {"said": said[0]["said"], "a_said_genre": _a(GENRE_ADJECTIVE.get(said[0]["fact"],
                                                                                   said[0]["fact"].lower()))}
    first_n = rng.randrange(len(SHAPES["near"]))
    parts, name = [SHAPES["near"][first_n].format(**fields)], [f"near[{first_n}]"]
    seconds = [k for k, ok in (("genres", ev.shared_genres), ("similar", "have" in fields), ("said", said)) if ok]
    if seconds and rng.random() < 0.75:
        kind = rng.choice(seconds)
        n = rng.randrange(len(SHAPES[kind]))
        parts.append(SHAPES[kind][n].format(**fields))
        name.append(f"{kind}[{n}]")
    text = " ".join(p[0].upper() + p[1:] for p in parts)
    return text, "+".join(name)


def explanation_pairs(explainer, evidences: Iterable, seed: int = 0, tries: int = 3) -> tuple[list[dict], Counter]:
    """One tuning row per evidence with nearest items, its answer checked by the product's own
    sentence check; (rows, counts of what was kept and skipped)."""
    from tools.explain_check import names_any

    rng = random.Random(seed)
    rows, counts = [], Counter()
    for ev in evidences:
        if not ev.nearest:
            counts["skipped: no nearest items"] += 1
            continue
        for _ in range(tries):
            text, shape = compose(ev, rng)
            check = explainer.check(text, ev)
            if check.supported and names_any(text, [ev.item.title]) and names_any(text, [e["title"] for e in
                                                                                          ev.nearest]):
                rows.append({"task": "explain", "messages": explainer.prompt(ev, f"Why {ev.item.title}?"),
                             "answer": text, "facets": {"preference": "implicit", "intention": "none"},
                             "template": shape, "user": getattr(ev, "user", None),
                             "items": {"positive": [ev.item.item_id],
                                       "history": [e["item_id"] for e in ev.nearest]}, "coded": None})
                counts["kept"] += 1
                break
            counts["rejected by the check: " + (check.problems[0] if check.problems else "names")] += 1
        else:
            counts["skipped: no supported answer"] += 1
    return rows, counts


def write_rows(path: Path, rows: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m agent.tuning.explain_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300, help="training users (a fixed-seed sample)")
    parser.add_argument("--per-user", type=int, default=3, help="graph candidates explained per user")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude-eval-users", type=int, default=50,
                        help="leave out the users `chatrec eval-explain --users N --seed 0` measures on")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines file (written whole, then renamed)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.per_user < 1:
        parser.error("--users and --per-user must be at least 1")

    from agent.agent import Agent
    from agent.config import Settings
    from agent.evals.explain import sample_test_users
    from tools.candidates import Constraint

    settings = Settings()
    agent = Agent.from_settings(settings, progress=True)
    rec = agent.tool.recommender
    held = set(sample_test_users(rec, args.exclude_eval_users, 0, settings.home)) if args.exclude_eval_users else set()
    pool = [u for u in map(str, rec.user_ids) if rec.has_user(u) and u not in held]
    users = random.Random(args.seed).sample(pool, min(args.users, len(pool)))

    def evidences():
        for user in users:
            cands = agent.tool.candidates(user_id=user, liked=[], disliked=[], exclude=set(),
                                          constraint=Constraint(), k=args.per_user)
            for cand in cands:
                ev = agent.explainer.evidence(cand.item, user_id=user, liked=[], source=cand.source)
                ev.user = user
                yield ev

    rows, counts = explanation_pairs(agent.explainer, evidences(), seed=args.seed)
    write_rows(args.out, rows)
    summary = {"rows": len(rows), "users": len(users), "held_out_users": len(held),
               "shapes": len({r["template"] for r in rows}), "distinct_answers": len({r["answer"] for r in rows}),
               "counts": dict(counts), "out": str(args.out)}
    for row in rows[:5]:
        print(row["answer"])
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
