"""XRec's adapter on XRec's Yelp data, next to our prompt-only explainer and XRec's own output.

    python -m bench.xrec_yelp [--limit N] [--epochs 1] [--device cpu|cuda]

Trains what is missing (the LightGCN on total_trn.csv, then the adapters on train.jsonl; both
cached in the data home and resumed after an interruption), generates an explanation for every
eval.jsonl line (or a fixed-seed sample of ``--limit``) with three systems on the same base model
and decoding (see agent/tuning/xrec_yelp.py: ``adapter``, ``prompt``, ``random``; each resumable
line by line), scores them and XRec's ``xrec_prediction`` against ``reference`` with
``chatrec eval-explain``'s metrics, measures the adapter's latency for 40 new tokens, prints ten
side-by-side examples and ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from bench.common import emit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="the xrec-yelp folder (default ../shared/benchmarks/xrec-yelp)")
    parser.add_argument("--limit", type=int, help="score a fixed-seed sample of this many eval lines (default all)")
    parser.add_argument("--seed", type=int, default=0, help="picks the sample and the random ablation's vectors")
    parser.add_argument("--epochs", type=int, default=2, help="adapter training epochs over train.jsonl")
    parser.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate (warm-up, then cosine)")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch")
    parser.add_argument("--gen-batch", type=int, default=8, help="lines generated together")
    parser.add_argument("--max-steps", type=int, help="cap adapter training at this many steps")
    parser.add_argument("--gated", action="store_true",
                        help="zero-init tanh gates on the injection (agent/tuning/xrec.py; XRec has none)")
    parser.add_argument("--contrast", type=float, default=0.0,
                        help="weight of the margin against another line's vectors (agent/tuning/xrec.py; 0: off)")
    parser.add_argument("--margin", type=float, default=0.1, help="that margin, in nats a target token")
    parser.add_argument("--centered", action="store_true",
                        help="a learned vector per reserved token + each line's own part (agent/tuning/xrec.py)")
    parser.add_argument("--latency-lines", type=int, default=20, help="lines timed one at a time for 40 new tokens")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda when a GPU is there")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--fresh", action="store_true", help="train the adapters again and generate again")
    parser.add_argument("--examples", type=int, default=10, help="side-by-side examples printed")
    args = parser.parse_args(argv)

    import torch

    from agent.config import Settings
    from agent.evals.explain import (
        minilm_cosines,
        read_jsonl,
        rouge_l,
        sample_lines,
        score_texts,
        xrec_dir,
    )
    from agent.evals.stats import paired_diff_ci
    from agent.tuning.xrec import XRecConfig
    from agent.llm import local_model_source
    from agent.tuning.xrec_yelp import SYSTEMS, XREC_HOME, generate, train_adapters

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings()
    home = Path(settings.home)
    directory = xrec_dir(args.data_dir)
    base = local_model_source(settings)
    config = XRecConfig(base=str(base), epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                        max_steps=args.max_steps, device=args.device, threads=args.threads, seed=0, gated=args.gated,
                        contrast=args.contrast, margin=args.margin, centered=args.centered)
    started = time.perf_counter()
    explainer, graph = train_adapters(home, directory, config, resume=not args.fresh)
    train_seconds = time.perf_counter() - started
    rows = sample_lines(read_jsonl(directory / "eval.jsonl"), args.limit, args.seed)
    # generations are kept per adapter (and per seed: the random ablation's draws depend on it)
    recipe = [config.base, config.epochs, config.lr, config.batch_size, config.max_steps,
              explainer.config.steps_done, args.seed] + (["gated"] if config.gated else []) + (
                 [f"contrast{config.contrast}/{config.margin}"] if config.contrast else []) + (
                 ["centered"] if config.centered else [])
    key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
    out_dir = home / XREC_HOME / "generations" / key
    texts, seconds = {}, {}
    for system in SYSTEMS:
        cache = out_dir / f"{system}.jsonl"
        if args.fresh and cache.exists():
            cache.unlink()
        t = time.perf_counter()
        texts[system] = generate(explainer, rows, graph, system, cache=cache, batch_size=args.gen_batch, seed=args.seed)
        seconds[system] = time.perf_counter() - t
    texts["xrec"] = [r["xrec_prediction"] for r in rows]
    references = [r["reference"] for r in rows]

    scores = {name: score_texts(t, references) for name, t in texts.items()}
    per_line = {name: {"minilm": minilm_cosines(t, references), "rougeL": np.array([rouge_l(h, r) for h, r in
                                                                                   zip(t, references)])}
                for name, t in texts.items()}

    def diff(a: str, b: str, metric: str) -> list[float]:
        return [round(x, 4) for x in paired_diff_ci(per_line[a][metric], per_line[b][metric])]

    latency = _latency(explainer, rows[:args.latency_lines], graph)

    print(f"\nXRec-yelp: {len(rows)} eval lines; adapters trained {explainer.config.steps_done} steps "
          f"(losses per checkpoint: {explainer.config.losses})")
    print(f"{'metric':<14}" + "".join(f"{n:>11}" for n in texts))
    for metric in ("minilm_cosine", "rouge_l", "bleu4", "unique_ratio", "mean_words"):
        print(f"{metric:<14}" + "".join(f"{scores[n][metric]:>11}" for n in texts))
    print(f"adapter − prompt  MiniLM {diff('adapter', 'prompt', 'minilm')}  ROUGE-L {diff('adapter', 'prompt', 'rougeL')}")
    print(f"adapter − random  MiniLM {diff('adapter', 'random', 'minilm')}  ROUGE-L {diff('adapter', 'random', 'rougeL')}")
    print(f"latency, 40 new tokens, one line at a time: p50 {latency['p50']:.2f} s, p95 {latency['p95']:.2f} s")
    for n in np.random.default_rng(args.seed).choice(len(rows), min(args.examples, len(rows)), replace=False):
        row = rows[int(n)]
        print(f"\n[{row['title']}] reference: {row['reference']}")
        for name in ("adapter", "prompt", "random", "xrec"):
            print(f"  {name:>7}: {texts[name][int(n)]}")
    emit({"bench": "xrec_yelp", "lines": len(rows), "adapter_steps": explainer.config.steps_done,
          "adapter_minilm": scores["adapter"]["minilm_cosine"], "prompt_minilm": scores["prompt"]["minilm_cosine"],
          "random_minilm": scores["random"]["minilm_cosine"], "xrec_minilm": scores["xrec"]["minilm_cosine"],
          "adapter_rougeL": scores["adapter"]["rouge_l"], "prompt_rougeL": scores["prompt"]["rouge_l"],
          "random_rougeL": scores["random"]["rouge_l"], "xrec_rougeL": scores["xrec"]["rouge_l"],
          "adapter_bleu4": scores["adapter"]["bleu4"], "prompt_bleu4": scores["prompt"]["bleu4"],
          "xrec_bleu4": scores["xrec"]["bleu4"],
          "adapter_minus_prompt_minilm_ci95": diff("adapter", "prompt", "minilm"),
          "adapter_minus_prompt_rougeL_ci95": diff("adapter", "prompt", "rougeL"),
          "adapter_minus_random_minilm_ci95": diff("adapter", "random", "minilm"),
          "adapter_minus_random_rougeL_ci95": diff("adapter", "random", "rougeL"),
          "latency_p50_s": round(latency["p50"], 3), "latency_p95_s": round(latency["p95"], 3),
          "train_or_load_s": round(train_seconds, 1),
          "generate_s": {k: round(v, 1) for k, v in seconds.items()}})


def _latency(explainer, rows, graph) -> dict:
    """Seconds for one line's prompt pass plus exactly 40 new tokens, with the adapter, batch of one."""
    from agent.tuning.xrec_yelp import YelpPrompts, graph_vectors

    prompts = YelpPrompts(explainer)
    users, items = graph_vectors(rows, graph)
    times = []
    for n, row in enumerate(rows):
        t = time.perf_counter()
        explainer.generate([prompts(row, True)], users[n:n + 1], items[n:n + 1], max_new_tokens=40, until_eos=False)
        times.append(time.perf_counter() - t)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95))}


if __name__ == "__main__":
    main()
