"""XRec's adapter on XRec's Yelp data, next to our prompt-only explainer and XRec's own output.

    python -m bench.xrec_yelp [--limit N] [--epochs 1] [--device cpu|cuda]

Trains what is missing (the LightGCN on total_trn.csv, then the adapters on train.jsonl; both
cached in the data home and resumed after an interruption), generates an explanation for every
eval.jsonl line (or a fixed-seed sample of ``--limit``) with three systems on the same base model
and decoding (see agent/tuning/xrec_yelp.py: ``adapter``, ``prompt``, ``random``; each resumable
line by line), scores them and XRec's ``xrec_prediction`` against ``reference`` with
``chatrec eval-explain``'s metrics, measures the adapter's latency for 40 new tokens, prints ten
side-by-side examples and ends with one JSON line of figures.

``--guide 0.5,1,2`` adds guided decoding (the plain prompt steered by what the line's own graph
vectors change in the adapted model against the graph's mean user and business) and its random
ablation; with several weights, the one with the best MiniLM cosine on ``--tune-lines`` eval lines
*outside* the scored sample is used.
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
    parser.add_argument("--no-summaries", dest="summaries", action="store_false",
                        help="XRec's ablation: every system's prompt without the user's and business's summaries "
                             "(the graph the only source of who they are)")
    parser.add_argument("--lora", type=int, default=0,
                        help="rank of low-rank adapters on the model, trained with the MoE adapters and on only "
                             "with the graph's vectors (agent/tuning/xrec.py; 0: off)")
    parser.add_argument("--lora-lr", type=float, default=2e-4, help="their learning rate")
    parser.add_argument("--latency-lines", type=int, default=20, help="lines timed one at a time for 40 new tokens")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda when a GPU is there")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--fresh", action="store_true", help="train the adapters again and generate again")
    parser.add_argument("--examples", type=int, default=10, help="side-by-side examples printed")
    parser.add_argument("--guide", help="guided decoding's weight, or a comma list to choose from on --tune-lines")
    parser.add_argument("--tune-lines", type=int, default=60,
                        help="eval lines outside the sample that choose the guided weight (default 60)")
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
    from agent.tuning.xrec_yelp import GUIDED, SYSTEMS, XREC_HOME, generate, train_adapters

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings()
    home = Path(settings.home)
    directory = xrec_dir(args.data_dir)
    base = local_model_source(settings)
    config = XRecConfig(base=str(base), epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                        max_steps=args.max_steps, device=args.device, threads=args.threads, seed=0, gated=args.gated,
                        contrast=args.contrast, margin=args.margin, centered=args.centered,
                        summaries=args.summaries, lora=args.lora, lora_lr=args.lora_lr)
    started = time.perf_counter()
    explainer, graph = train_adapters(home, directory, config, resume=not args.fresh)
    train_seconds = time.perf_counter() - started
    every_line = read_jsonl(directory / "eval.jsonl")
    rows = sample_lines(every_line, args.limit, args.seed)
    # generations are kept per adapter (and per seed: the random ablation's draws depend on it)
    recipe = [config.base, config.epochs, config.lr, config.batch_size, config.max_steps,
              explainer.config.steps_done, args.seed, graph.key] + (["gated"] if config.gated else []) + (
                 [f"contrast{config.contrast}/{config.margin}"] if config.contrast else []) + (
                 ["centered"] if config.centered else []) + ([] if config.summaries else ["nosummaries"]) + (
                 [f"lora{config.lora}/{config.lora_lr}"] if config.lora else [])
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
    references = [r["reference"] for r in rows]
    weight = None
    if args.guide:
        weight = _guide_weight(args, explainer, graph, every_line, rows, out_dir)
        for system in GUIDED:
            t = time.perf_counter()
            texts[system] = generate(explainer, rows, graph, system, cache=out_dir / f"{system}-w{weight}.jsonl",
                                     batch_size=args.gen_batch, seed=args.seed, weight=weight)
            seconds[system] = time.perf_counter() - t
    texts["xrec"] = [r["xrec_prediction"] for r in rows]

    scores = {name: score_texts(t, references) for name, t in texts.items()}
    per_line = {name: {"minilm": minilm_cosines(t, references), "rougeL": np.array([rouge_l(h, r) for h, r in
                                                                                   zip(t, references)])}
                for name, t in texts.items()}

    def diff(a: str, b: str, metric: str) -> list[float]:
        return [round(x, 4) for x in paired_diff_ci(per_line[a][metric], per_line[b][metric])]

    latency = _latency(explainer, rows[:args.latency_lines], graph)
    guided = {}
    if weight is not None:
        timed = _latency(explainer, rows[:args.latency_lines], graph, weight)
        guided = {"guide_weight": weight, "guided_minilm": scores["guided"]["minilm_cosine"],
                  "guided_rougeL": scores["guided"]["rouge_l"], "guided_bleu4": scores["guided"]["bleu4"],
                  "guided_random_minilm": scores["guided-random"]["minilm_cosine"],
                  "guided_random_rougeL": scores["guided-random"]["rouge_l"],
                  "guided_minus_prompt_minilm_ci95": diff("guided", "prompt", "minilm"),
                  "guided_minus_prompt_rougeL_ci95": diff("guided", "prompt", "rougeL"),
                  "guided_minus_random_minilm_ci95": diff("guided", "guided-random", "minilm"),
                  "guided_minus_random_rougeL_ci95": diff("guided", "guided-random", "rougeL"),
                  "guided_latency_p50_s": round(timed["p50"], 3), "guided_latency_p95_s": round(timed["p95"], 3)}

    print(f"\nXRec-yelp: {len(rows)} eval lines; adapters trained {explainer.config.steps_done} steps "
          f"(losses per checkpoint: {explainer.config.losses})")
    print(f"{'metric':<14}" + "".join(f"{n:>14}" for n in texts))
    for metric in ("minilm_cosine", "rouge_l", "bleu4", "unique_ratio", "mean_words"):
        print(f"{metric:<14}" + "".join(f"{scores[n][metric]:>14}" for n in texts))
    print(f"adapter − prompt  MiniLM {diff('adapter', 'prompt', 'minilm')}  ROUGE-L {diff('adapter', 'prompt', 'rougeL')}")
    print(f"adapter − random  MiniLM {diff('adapter', 'random', 'minilm')}  ROUGE-L {diff('adapter', 'random', 'rougeL')}")
    print(f"latency, 40 new tokens, one line at a time: p50 {latency['p50']:.2f} s, p95 {latency['p95']:.2f} s")
    if guided:
        print(f"guided (weight {weight}) − prompt  MiniLM {guided['guided_minus_prompt_minilm_ci95']}  "
              f"ROUGE-L {guided['guided_minus_prompt_rougeL_ci95']}")
        print(f"guided − guided-random  MiniLM {guided['guided_minus_random_minilm_ci95']}  "
              f"ROUGE-L {guided['guided_minus_random_rougeL_ci95']}")
        print(f"guided latency, 40 new tokens: p50 {guided['guided_latency_p50_s']:.2f} s, "
              f"p95 {guided['guided_latency_p95_s']:.2f} s")
    for n in np.random.default_rng(args.seed).choice(len(rows), min(args.examples, len(rows)), replace=False):
        row = rows[int(n)]
        print(f"\n[{row['title']}] reference: {row['reference']}")
        for name in ("adapter", "prompt", "random") + (("guided",) if guided else ()) + ("xrec",):
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
          "generate_s": {k: round(v, 1) for k, v in seconds.items()}} | guided)


def _guide_weight(args, explainer, graph, every_line, rows, out_dir) -> float:
    """The guided weight: the one given, or of several the best MiniLM cosine on eval lines outside
    the scored sample (never on the lines it is then scored on)."""
    from agent.evals.explain import score_texts
    from agent.tuning.xrec_yelp import generate

    weights = [float(w) for w in args.guide.split(",")]
    if len(weights) == 1:
        return weights[0]
    scored = {(r["uid"], r["iid"]) for r in rows}
    outside = [r for r in every_line if (r["uid"], r["iid"]) not in scored]
    if not outside:
        raise SystemExit("--guide with several weights needs eval lines outside the sample: use --limit, or one weight")
    tune = [outside[i] for i in np.sort(np.random.default_rng(args.seed + 1).choice(
        len(outside), min(args.tune_lines, len(outside)), replace=False))]
    references = [r["reference"] for r in tune]
    found = {}
    for w in weights:
        texts = generate(explainer, tune, graph, "guided", cache=out_dir / f"tune-guided-w{w}.jsonl",
                         batch_size=args.gen_batch, seed=args.seed, weight=w)
        found[w] = score_texts(texts, references)
    plain = score_texts(generate(explainer, tune, graph, "prompt", cache=out_dir / "tune-prompt.jsonl",
                                 batch_size=args.gen_batch, seed=args.seed), references)
    print(f"\nguided weight on {len(tune)} eval lines outside the sample (prompt only: MiniLM "
          f"{plain['minilm_cosine']}, ROUGE-L {plain['rouge_l']})")
    for w, score in found.items():
        print(f"  weight {w}: MiniLM {score['minilm_cosine']}, ROUGE-L {score['rouge_l']}")
    return max(weights, key=lambda w: found[w]["minilm_cosine"])


def _latency(explainer, rows, graph, weight: float | None = None) -> dict:
    """Seconds for one line's prompt pass plus exactly 40 new tokens, with the adapter (or guided
    by it, with ``weight``), batch of one."""
    from agent.tuning.xrec_yelp import YelpPrompts, graph_vectors, neutral_vectors

    prompts = YelpPrompts(explainer)
    users, items = graph_vectors(rows, graph)
    neutral = neutral_vectors(graph)
    times = []
    for n, row in enumerate(rows):
        t = time.perf_counter()
        if weight is None:
            explainer.generate([prompts(row, True)], users[n:n + 1], items[n:n + 1], max_new_tokens=40,
                               until_eos=False)
        else:
            explainer.generate_guided([prompts(row, False)], [prompts(row, True)], users[n:n + 1], items[n:n + 1],
                                      *neutral, weight=weight, max_new_tokens=40, until_eos=False)
        times.append(time.perf_counter() - t)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95))}


if __name__ == "__main__":
    main()
