"""Books for movie lovers: where the source book of a held-out adapted film lands.

The film ↔ source-book table (tools/adaptations.py) gives the ground truth. For every ml-100k
user (the default graph dataset) who rated at least ``--min-adapted`` adapted films 4 or 5, one
of those films that the graph model never saw for them (it is in their validation or test part
of the model's split) is held out; its source book is the target. The candidate tool is then
asked for books, as the agent asks it (``CandidateTool.candidates`` with the book domain and the
request's text), twice:

- ``chat``: a new person who names ``--named`` of their other liked films (their best first) and
  asks with one of the issue's requests ("any books for someone who likes these?", "any
  books?", "something to read");
- ``dataset``: the same person as a dataset user (their trained vector, their rated films);
- ``chat_words`` (``--words``): the chat user's message in words ("I loved Heat, Fargo and
  Babe. Any books?", five of their films by title) read by the agent itself — the router, the
  title resolver, the dialogue state (``Agent.read_turn``) — and its candidates for that state
  (``Agent.candidates``), what a live turn hands the re-rank.

Baselines on the same users and requests: ``popular`` (the most-rated books), ``request_text``
(text similarity of the request alone: what the agent's answer came down to before issue 27)
and ``liked_text`` (text similarity of the named films' documents: their mean embedding).
Figures: Hit@10 and MRR@10 of the target with percentile-bootstrap intervals over users
(agent/evals/stats.py), the share of the top-10 books with known genres (those with a film in
the table) that share one of the person's three main genres, and the candidate tool's seconds
per ask. ``pair_precision`` is the share of hand-checked pairs (bench/cross_domain_check.tsv,
a random 50 of the table, read one by one) that are right. The run is saved for
``chatrec report``; the last line is one JSON object.

    python -m bench.cross_domain --seed 0
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import emit

REQUESTS = ("any books for someone who likes these?", "any books?", "something to read")  # the words
CHECK_FILE = Path(__file__).with_name("cross_domain_check.tsv")
K = 10


def pair_precision(table, path: Path = CHECK_FILE) -> tuple[float | None, int]:
    """Share of the hand-checked pairs still in the table that were judged right, and how many."""
    if not path.exists():
        return None, 0
    current = {(p.film_id, p.book_id) for p in table}
    verdicts = []
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"):
            if (row["film_id"], row["book_id"]) in current:
                verdicts.append(row["verdict"].strip() == "1")
    return (sum(verdicts) / len(verdicts) if verdicts else None), len(verdicts)


REDIAL_ITEMS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "redial" / "id2info.json"


def redial_precision(table, path: Path = REDIAL_ITEMS) -> tuple[float | None, int]:
    """A second, automatic check (measurement only): for the pairs whose film ReDial's movie list
    holds (same title key and year) with its writers, the share whose book's author is among them."""
    import json
    import re

    from tools.catalog import split_title, title_key

    if not path.exists():
        return None, 0
    writers = {}
    for entry in json.loads(path.read_text(encoding="utf-8")).values():
        m = re.match(r"^(.*\S)\s*\((\d{4})\)\s*$", entry.get("name") or "")
        if m and entry.get("writer"):
            writers[(title_key(split_title(m[1])[0]), int(m[2]))] = entry["writer"]

    def surname(name: str) -> str:
        import unicodedata

        folded = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
        words = re.sub(r"[^a-z ]+", " ", folded.lower()).split()
        return words[-1] if words else ""

    verdicts = []
    for p in table:
        got = writers.get((title_key(split_title(p.film_title)[0]), p.film_year))
        if got and p.book_author:
            verdicts.append(surname(p.book_author) in {surname(w) for w in got})
    return (sum(verdicts) / len(verdicts) if verdicts else None), len(verdicts)


def rank_of(target: str, ids: list[str]) -> int | None:
    return ids.index(target) + 1 if target in ids else None


def main_genres(films, n: int = 3) -> set[str]:
    counts = Counter(g for f in films for g in f.genres)
    return {g for g, _ in counts.most_common(n)}


def genre_share(book_ids: list[str], genres: set[str], table, catalog) -> tuple[float | None, float]:
    """(share of the books with known genres that share one of ``genres``, share with known genres)."""
    known = shared = 0
    for bid in book_ids:
        films = [catalog.get(p.film_id) for p in table.films_of(bid)]
        got = {g for f in films if f is not None for g in f.genres}
        if got:
            known += 1
            shared += bool(got & genres)
    return (shared / known if known else None), known / max(1, len(book_ids))


def summarise(ranks: list[int | None], shares: list, coverage: list[float], seconds: list[float], seed: int) -> dict:
    from agent.evals.stats import bootstrap_ci

    hits = [1.0 if r is not None and r <= K else 0.0 for r in ranks]
    rr = [1.0 / r if r is not None and r <= K else 0.0 for r in ranks]
    share = [s for s in shares if s is not None]
    out = {f"hit@{K}": round(float(np.mean(hits)), 4), f"hit@{K}_ci95": [round(x, 4) for x in bootstrap_ci(hits, seed=seed)],
           f"mrr@{K}": round(float(np.mean(rr)), 4), f"mrr@{K}_ci95": [round(x, 4) for x in bootstrap_ci(rr, seed=seed)],
           "genre_share@10": round(float(np.mean(share)), 4) if share else None,
           "genre_known@10": round(float(np.mean(coverage)), 4)}
    if seconds:
        out |= {"seconds_p50": round(float(np.percentile(seconds, 50)), 4),
                "seconds_p95": round(float(np.percentile(seconds, 95)), 4), "seconds_max": round(max(seconds), 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=0, help="at most this many users (0: all that qualify)")
    parser.add_argument("--min-adapted", type=int, default=3, help="adapted films a user rated 4 or 5, at least")
    parser.add_argument("--named", type=int, default=10, help="liked films a chat user names")
    parser.add_argument("--no-save", action="store_true", help="do not save the run for `chatrec report`")
    parser.add_argument("--words", action="store_true",
                        help="also the agent reading the request in words (loads the LLM; about 1-2 s a user)")
    args = parser.parse_args()

    from agent.config import Settings
    from agent.evals.runs import run_meta, save_run
    from recsys.workflow import load_recommender, model_dir, model_split, train_dataset
    from tools.adaptations import load_adaptations
    from tools.candidates import CandidateTool, Constraint
    from tools.cold_start import with_cold_items
    from tools.items import open_items

    started = time.perf_counter()
    settings = Settings()
    home = settings.home
    catalog, store = open_items(home, settings.chroma_url, progress=False)
    table = load_adaptations(catalog, home)
    precision, checked = pair_precision(table)
    redial, redial_n = redial_precision(table)
    dataset = "ml-100k"
    if (model_dir(dataset, home) / "lightgcn.pt").exists():
        rec = load_recommender(dataset, None, home)
    else:
        print("no trained ml-100k model in the data home: training one", file=sys.stderr)
        rec, _ = train_dataset(dataset, home=home, progress=False)
    data, parts = model_split(rec, home, progress=False)
    rec = with_cold_items(rec, catalog, store)
    best_first = data.items_best_first()
    tool = CandidateTool(rec, catalog, store, best_first=best_first)

    # who liked which adapted films, and which of those the model never saw for them
    rating_of: dict[tuple[str, str], float] = {}
    for u, i, r in zip(data.users, data.items, data.ratings):
        rating_of[(str(data.user_ids[u]), str(data.item_ids[i]))] = float(r)
    rng = random.Random(args.seed)
    users = []
    for uid in sorted(best_first, key=lambda s: int(s) if s.isdigit() else s):
        loved = [i for i in best_first[uid] if rating_of.get((uid, i), 0) >= 4]
        adapted = [i for i in loved if table.book_of(f"ml-100k:{i}") is not None]
        if len(adapted) < args.min_adapted or not rec.has_user(uid):
            continue
        trained = set(rec.history(uid))
        unseen = [i for i in adapted if i not in trained]
        if not unseen:
            continue
        held = rng.choice(unseen)
        target = table.book_of(f"ml-100k:{held}").book_id
        others = [i for i in loved if i in trained and i != held
                  and (p := table.book_of(f"ml-100k:{i}")) is not None and p.book_id == target]
        if others:  # a remake of the same story among the films they named: the book is known
            continue
        named = [catalog.get(f"ml-100k:{i}") for i in loved if i in trained][:args.named]
        named = [f for f in named if f is not None]
        if not named:
            continue
        users.append((uid, held, target, named))
    if args.users:
        users = rng.sample(users, min(args.users, len(users)))
    print(f"adaptation table: {len(table)} pairs ({table.stats.get('warm_films')} ml-100k films); "
          f"hand-checked precision {precision if precision is None else round(precision, 3)} on {checked} pairs; "
          f"ReDial writer credits agree on {redial if redial is None else round(redial, 3)} of {redial_n}")
    print(f"{len(users)} ml-100k users with >= {args.min_adapted} liked adapted films and one the model never saw "
          f"for them (held out); chat users name {args.named} liked films")

    popular = [b.item_id for b in sorted((it for it in catalog if it.domain == "book"),
                                         key=lambda b: (-b.n_ratings, b.item_id))]
    systems = ("chat", "dataset", "popular", "request_text", "liked_text") + (("chat_words",) if args.words else ())
    ranks: dict[str, list] = {s: [] for s in systems}
    shares: dict[str, list] = {s: [] for s in systems}
    known: dict[str, list] = {s: [] for s in systems}
    seconds: dict[str, list] = {"chat": [], "dataset": [], "chat_words": []}
    agent = None
    if args.words:
        from agent.agent import Agent

        agent = Agent.from_settings(settings, progress=False)
        agent.tool = tool  # the same graph, store and bridges as the other systems'
    examples = []
    book = Constraint(domain="book")
    for n, (uid, held, target, named) in enumerate(users):
        request = REQUESTS[n % len(REQUESTS)]
        genres = main_genres(named)
        lists = {}
        t = time.perf_counter()
        lists["chat"] = [c.item.item_id for c in tool.candidates(user_id=None, liked=named, disliked=[], exclude=(),
                                                                 constraint=book, query=request, k=K)]
        seconds["chat"].append(time.perf_counter() - t)
        t = time.perf_counter()
        lists["dataset"] = [c.item.item_id for c in tool.candidates(user_id=uid, liked=[], disliked=[], exclude=(),
                                                                    constraint=book, query=request, k=K)]
        seconds["dataset"].append(time.perf_counter() - t)
        if agent is not None:
            from agent.state import DialogueState

            titles = [f.title for f in named[:5]]
            words = f"I loved {', '.join(titles[:-1])} and {titles[-1]}. {request}" if len(titles) > 1 else \
                f"I loved {titles[0]}. {request}"
            t = time.perf_counter()
            state = DialogueState(session_id=f"cross-domain-{uid}")
            agent.read_turn(state, words)
            lists["chat_words"] = [c.item.item_id for c in agent.candidates(state, words, K)[0]]
            seconds["chat_words"].append(time.perf_counter() - t)
        lists["popular"] = popular[:K]
        lists["request_text"] = [h.item_id for h in store.search(request, K, domain="book")]
        lists["liked_text"] = [h.item_id for h in store.more_like([f.item_id for f in named], K, domain="book")]
        for s in systems:
            ranks[s].append(rank_of(target, lists[s]))
            share, cover = genre_share(lists[s], genres, table, catalog)
            shares[s].append(share)
            known[s].append(cover)
        if n < 3:
            examples.append({"user": uid, "held_out": catalog.get(f"ml-100k:{held}").title,
                             "target": catalog.get(target).title, "request": request,
                             "named": [f.title for f in named[:5]],
                             "chat_top5": [catalog.get(i).title for i in lists["chat"][:5]],
                             "request_text_top5": [catalog.get(i).title for i in lists["request_text"][:5]]})
        if (n + 1) % 50 == 0:
            print(f"  {n + 1}/{len(users)} users", file=sys.stderr)

    result = {"pairs": len(table), "pair_precision": None if precision is None else round(precision, 4),
              "pairs_checked": checked, "pairs_ml100k": table.stats.get("warm_films"),
              "pair_precision_redial_credits": None if redial is None else round(redial, 4), "pairs_in_redial": redial_n,
              "users": len(users), "min_adapted": args.min_adapted, "named": args.named, "k": K,
              "systems": {s: summarise(ranks[s], shares[s], known[s], seconds.get(s, []), args.seed) for s in systems},
              "examples": examples, "seconds": round(time.perf_counter() - started, 1)}
    print(f"\n{'system':<14} {'Hit@10':>7} {'95% CI':>18} {'MRR@10':>7} {'genre share':>11} {'known':>6} {'s p50':>7} {'s p95':>7}")
    for s in systems:
        r = result["systems"][s]
        share = "—" if r["genre_share@10"] is None else f"{r['genre_share@10']:.3f}"
        print(f"{s:<14} {r['hit@10']:>7.3f} {str(r['hit@10_ci95']):>18} {r['mrr@10']:>7.3f} {share:>11} "
              f"{r['genre_known@10']:>6.2f} {r.get('seconds_p50', float('nan')):>7.3f} {r.get('seconds_p95', float('nan')):>7.3f}")
    for ex in examples:
        print(f"\nuser {ex['user']} named {ex['named']}... held out {ex['held_out']!r} -> {ex['target']!r}; "
              f"asked {ex['request']!r}\n  agent: {ex['chat_top5']}\n  request text: {ex['request_text_top5']}")
    if not args.no_save:
        command = "python -m bench.cross_domain " + " ".join(sys.argv[1:])
        path = save_run("cross_domain", result, run_meta(settings, dataset=dataset, seed=args.seed,
                                                        command=command.strip()), home)
        print(f"\nsaved {path}", file=sys.stderr)
    chat, base = result["systems"]["chat"], result["systems"]["request_text"]
    emit({"pairs": result["pairs"], "pair_precision": result["pair_precision"], "pairs_checked": checked,
          "pair_precision_redial_credits": result["pair_precision_redial_credits"], "pairs_in_redial": redial_n,
          "users": len(users), "seed": args.seed,
          "hit@10": chat["hit@10"], "hit@10_ci95": chat["hit@10_ci95"], "mrr@10": chat["mrr@10"],
          "dataset_user_hit@10": result["systems"]["dataset"]["hit@10"],
          "dataset_user_hit@10_ci95": result["systems"]["dataset"]["hit@10_ci95"],
          "request_text_hit@10": base["hit@10"], "request_text_hit@10_ci95": base["hit@10_ci95"],
          "popular_hit@10": result["systems"]["popular"]["hit@10"],
          "liked_text_hit@10": result["systems"]["liked_text"]["hit@10"],
          "genre_share@10": chat["genre_share@10"], "request_text_genre_share@10": base["genre_share@10"],
          "candidate_seconds_p95": max(chat.get("seconds_p95", 0), result["systems"]["dataset"].get("seconds_p95", 0)),
          **({"words_hit@10": words["hit@10"], "words_hit@10_ci95": words["hit@10_ci95"],
              "words_seconds_p95": words.get("seconds_p95")} if (words := result["systems"].get("chat_words")) else {})})


if __name__ == "__main__":
    main()
