"""How to find candidates for a person known only by the titles they name (a chat user).

Simulated users (agent/evals/simulate.py, template simulator, ml-100k test users, fixed seed) talk to
the graph recommender alone, in four variants: the LightGCN fold-in (dot product with one
propagation step), cosine to the liked items' mean direction, and each re-scored with the
liked items' genres (tools/candidates.py). Prints a table and ends with one JSON line.

    CHATREC_HOME=... python -m bench.chat_user_retrieval --users 200 --seed 0
"""

from __future__ import annotations

import argparse

from bench.common import emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from agent.config import Settings
    from agent.evals.simulate import LIST_SIZE, Simulation, TemplateSimulator, sample_users
    from recsys.workflow import load_recommender
    from tools.candidates import RESCORE_POOL, CandidateTool
    from tools.items import open_items
    from tools.resolve import TitleResolver

    home = Settings().home
    catalog, store = open_items(home, None, progress=False)
    rec = load_recommender("ml-100k", None, home)
    tool = CandidateTool(rec, catalog, store)
    spotter = TitleResolver(catalog, store).spotter
    users = sample_users(tool, home, args.users, args.seed)

    def variant(nearest, genres: bool):
        named: dict[str, list[str]] = {}
        shown: dict[str, set[str]] = {}

        def respond(dialogue_id: str, text: str):
            liked, seen = named.setdefault(dialogue_id, []), shown.setdefault(dialogue_id, set())
            for _, item in spotter.spot(text):
                if (gid := tool.graph_id(item)) and gid not in liked:
                    liked.append(gid)
            if not liked:
                return "", []
            pool = nearest(liked, (), RESCORE_POOL)
            if genres:
                pool = tool._with_shared_genres(pool, tool._genre_profile(liked))
            items = [i for i in (tool.catalog_item(g) for g, _ in pool) if i and i.item_id not in seen][:LIST_SIZE]
            seen.update(i.item_id for i in items)
            return "", [{"item_id": i.item_id, "title": i.title} for i in items]
        return respond

    systems = {"fold_in": variant(rec.recommend_from_items, False),
               "fold_in+genres": variant(rec.recommend_from_items, True),
               "cosine": variant(rec.recommend_similar, False),
               "cosine+genres (the agent's)": variant(rec.recommend_similar, True)}
    summary = Simulation(users, TemplateSimulator(args.seed), systems).run()["summary"]
    print(f"{len(users)} simulated users, seed {args.seed}, graph only (no router, no re-rank)")
    print(f"{'retrieval':<28} {'hit rate':>8} {'95% CI':>16} {'avg turns':>9}  Hit@1..5 turns")
    for name in systems:
        s = summary[name]
        print(f"{name:<28} {s['hit_rate']:>8.3f} {str(s['hit_rate_ci95']):>16} {s['avg_turns']:>9.2f}  "
              + " ".join(f"{h:.3f}" for h in s["hit_at"]))
    emit({"users": len(users), "seed": args.seed, **{n: {k: summary[n][k] for k in ("hit_rate", "hit_rate_ci95",
                                                                              "avg_turns", "hit_at")}
                                                     for n in systems}})


if __name__ == "__main__":
    main()
