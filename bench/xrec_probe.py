"""How much of a Yelp reference the graph's vectors can tell at all: a linear probe (issue 25).

    python -m bench.xrec_probe [--threads 2]

Seven ways of putting XRec's 64-dimensional LightGCN vectors into the local LLM read them weakly
or not at all (bench/RESULTS.md). Before a bigger model, the question under them: is there
anything in the vectors about what a line's reference says? A ridge regression from the user's and
business's vectors (concatenated, 128 numbers) to the reference's MiniLM embedding is fitted on
``train.jsonl`` and scored on every ``eval.jsonl`` line by the cosine of its prediction with the
reference's embedding, next to: the mean training reference (no information), the same probe on a
random other user's and business's vectors (the ablation the explainer uses), and the same probe on
the MiniLM embedding of the user's and business's summaries (what the prompt gives the LLM). The
ridge strength is chosen on a tenth of the training lines. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import emit

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights for standardised x (mean, scale, W with a bias row)."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = alpha * np.eye(z.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    return mean, scale, np.linalg.solve(z.T @ z + penalty, z.T @ y)


def _predict(model, x: np.ndarray) -> np.ndarray:
    mean, scale, w = model
    return np.hstack([(x - mean) / scale, np.ones((len(x), 1))]) @ w


def _cosines(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    predicted = predicted / (np.linalg.norm(predicted, axis=1, keepdims=True) + 1e-9)
    return np.einsum("ij,ij->i", predicted, target)


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """The ridge with the strength that scores best on a held tenth of the training lines, refitted on all."""
    order = np.random.default_rng(seed).permutation(len(x))
    held, rest = order[:len(x) // 10], order[len(x) // 10:]
    best = max(ALPHAS, key=lambda a: _cosines(_predict(_ridge(x[rest], y[rest], a), x[held]), y[held]).mean())
    return _ridge(x, y, best), best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="the xrec-yelp folder (default ../shared/benchmarks/xrec-yelp)")
    parser.add_argument("--threads", type=int, help="torch threads for the graph (its cache key, as bench.xrec_yelp)")
    parser.add_argument("--seed", type=int, default=0, help="the random ablation's draws and the ridge's held tenth")
    args = parser.parse_args(argv)

    from agent.config import Settings
    from agent.evals.explain import read_jsonl, xrec_dir
    from agent.evals.stats import paired_diff_ci
    from agent.tuning.xrec_yelp import graph_vectors, yelp_graph
    from tools.embeddings import embed

    directory = xrec_dir(args.data_dir)
    graph = yelp_graph(Path(Settings().home), directory, threads=args.threads)
    train, evaluation = read_jsonl(directory / "train.jsonl"), read_jsonl(directory / "eval.jsonl")

    def features(rows, system="adapter"):
        users, items = graph_vectors(rows, graph, system, args.seed)
        return np.hstack([users, items])

    def summaries(rows):
        return np.hstack([embed([r["user_summary"] for r in rows]), embed([r["item_summary"] for r in rows])])

    y_train, y_eval = embed([r["reference"] for r in train]), embed([r["reference"] for r in evaluation])
    graph_probe, graph_alpha = fit_probe(features(train), y_train, args.seed)
    text_probe, text_alpha = fit_probe(summaries(train), y_train, args.seed)
    mean = np.repeat(y_train.mean(0, keepdims=True), len(evaluation), axis=0)
    per_line = {"mean": _cosines(mean, y_eval),
                "graph": _cosines(_predict(graph_probe, features(evaluation)), y_eval),
                "random": _cosines(_predict(graph_probe, features(evaluation, "random")), y_eval),
                "summaries": _cosines(_predict(text_probe, summaries(evaluation)), y_eval)}
    figures = {name: round(float(c.mean()), 4) for name, c in per_line.items()}

    def diff(a: str, b: str) -> list[float]:
        return [round(x, 4) for x in paired_diff_ci(per_line[a], per_line[b])]

    print(f"XRec-yelp linear probe: {len(train)} train lines, {len(evaluation)} eval lines "
          f"(ridge strength: graph {graph_alpha}, summaries {text_alpha})")
    for name, value in figures.items():
        print(f"  predicted vs reference MiniLM cosine, {name:<10} {value:.4f}")
    print(f"  graph − mean {diff('graph', 'mean')}  graph − random {diff('graph', 'random')}  "
          f"summaries − mean {diff('summaries', 'mean')}")
    emit({"bench": "xrec_probe", "train_lines": len(train), "eval_lines": len(evaluation),
          **{f"{name}_cosine": value for name, value in figures.items()},
          "graph_minus_mean_ci95": diff("graph", "mean"), "graph_minus_random_ci95": diff("graph", "random"),
          "summaries_minus_mean_ci95": diff("summaries", "mean"), "graph_alpha": graph_alpha,
          "summaries_alpha": text_alpha})


if __name__ == "__main__":
    main()
