"""XRec's collaborative adapter (agent/tuning/xrec.py): the MoE adapters, the injection at the
reserved positions, saving and resuming, and that training moves the loss.

A tiny llama (random weights, grouped-query attention like SmolLM2: 4 query heads sharing 2 key /
value heads) with the shipped model's real tokenizer keeps these fast; one test trains on the
shipped SmolLM2-135M itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.tuning.xrec import (
    ITEM_TOKEN,
    USER_TOKEN,
    GraphExplainer,
    MoEAdapter,
    XRecConfig,
)

MODEL_FIXTURES = {"tokenizer"}  # reads the shipped GGUF's vocabulary (about 10 s)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "xrec-yelp"
HIDDEN, HEADS, KV_HEADS = 32, 4, 2


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from agent.llm import default_model_path

    path = default_model_path()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def tiny_explainer(tokenizer, **config) -> GraphExplainer:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                         tie_word_embeddings=True))
    return GraphExplainer(_copy(tokenizer), model, XRecConfig(graph_dim=8, dropout=0.0, **config))


def _copy(tokenizer):
    import copy

    return copy.deepcopy(tokenizer)  # the explainer adds its tokens; each test starts from the shipped vocabulary


def prompt(explainer: GraphExplainer, words: str = "a quiet cafe") -> str:
    return explainer.prompt_text([{"role": "user", "content": f"User {USER_TOKEN} likes {words}. "
                                                              f"Business {ITEM_TOKEN}: coffee. Why?"}])


def vectors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype(np.float32), rng.normal(size=(n, 8)).astype(np.float32)


def test_adapter_shapes_and_gates() -> None:
    torch.manual_seed(0)
    adapter = MoEAdapter(64, 576, experts=8)
    x = torch.randn(5, 64)
    adapter.eval()
    assert adapter(x).shape == (5, 576)
    gates = adapter.gates(x)
    assert gates.shape == (5, 8)
    torch.testing.assert_close(gates.sum(-1), torch.ones(5))
    assert torch.equal(adapter(x), adapter(x))  # no noise, no dropout outside training
    with torch.no_grad():
        adapter.noise.fill_(1.0)
    adapter.train()
    assert not torch.equal(adapter.gates(x), adapter.gates(x))  # gate noise in training only
    torch.testing.assert_close(adapter.gates(x).sum(-1), torch.ones(5))


def test_reserved_tokens_join_the_vocabulary_the_same_way_every_time(tokenizer) -> None:
    a, b = tiny_explainer(tokenizer), tiny_explainer(tokenizer)
    assert len(a.tokenizer) == len(tokenizer) + 3
    assert {a.user_id, a.item_id, a.explain_id} == {len(tokenizer), len(tokenizer) + 1, len(tokenizer) + 2}
    rows = a.model.get_input_embeddings().weight[-3:]
    torch.testing.assert_close(rows, b.model.get_input_embeddings().weight[-3:])
    assert prompt(a).endswith("<|im_start|>assistant\n<EXPLAIN_POS>")


def _layer0_keys(explainer: GraphExplainer, input_ids, users, items, inject: bool):
    """Layer 0's key states for the prompt, with the adapted vectors in the embeddings, and added to
    q / k / v at the reserved positions when ``inject``."""
    seen = {}
    handle = explainer.model.model.layers[0].self_attn.k_proj.register_forward_hook(
        lambda m, i, o: seen.__setitem__("k", o.detach().clone()))
    try:
        with torch.no_grad():
            embeds, where = explainer._embed(input_ids, torch.as_tensor(users), torch.as_tensor(items))
            context = explainer.injection.active(*where) if inject else _nothing()
            with context:
                logits = explainer.model(inputs_embeds=embeds).logits
    finally:
        handle.remove()
    return seen["k"], logits, where


def _nothing():
    from contextlib import nullcontext

    return nullcontext()


def test_injection_adds_at_the_reserved_positions_and_nowhere_else(tokenizer) -> None:
    explainer = tiny_explainer(tokenizer)
    input_ids = torch.tensor([explainer.tokenizer(prompt(explainer), add_special_tokens=False)["input_ids"]])
    users, items = vectors(1)
    k_in, logits_in, (_, positions, added) = _layer0_keys(explainer, input_ids, users, items, inject=True)
    k_out, logits_out, _ = _layer0_keys(explainer, input_ids, users, items, inject=False)
    changed = (k_in - k_out).abs().amax(-1)[0] > 0
    assert sorted(changed.nonzero().flatten().tolist()) == sorted(positions.tolist())  # there, and only there
    # what is added to a key head is the vector's mean over the query heads sharing it
    expected = added.view(-1, KV_HEADS, HEADS // KV_HEADS, HIDDEN // HEADS).mean(2).flatten(1)
    torch.testing.assert_close((k_in - k_out)[0, positions], expected)
    first = int(positions.min())
    torch.testing.assert_close(logits_in[0, :first], logits_out[0, :first])  # causal: nothing before moves
    assert not torch.allclose(logits_in[0, first:], logits_out[0, first:])  # the injection is not a no-op


def test_gated_injection_starts_as_the_plain_model_and_opens_only_at_the_reserved_positions(tokenizer,
                                                                                            tmp_path: Path) -> None:
    explainer = tiny_explainer(tokenizer, gated=True)
    input_ids = torch.tensor([explainer.tokenizer(prompt(explainer), add_special_tokens=False)["input_ids"]])
    users, items = vectors(1)
    with torch.no_grad():
        plain = explainer.model(input_ids=input_ids).logits  # the reserved tokens' own embeddings, nothing added
    _, closed, _ = _layer0_keys(explainer, input_ids, users, items, inject=True)
    torch.testing.assert_close(closed, plain)  # gates at zero: the model as it reads the prompt alone
    with torch.no_grad():
        explainer.gates.fill_(0.5)
    k_open, opened, (_, positions, _, _) = _layer0_keys(explainer, input_ids, users, items, inject=True)
    first = int(positions.min())
    torch.testing.assert_close(opened[0, :first], plain[0, :first])
    assert not torch.allclose(opened[0, first:], plain[0, first:])
    explainer.save(tmp_path / "gated")
    loaded = tiny_explainer(tokenizer, gated=True)
    loaded.load_adapters(tmp_path / "gated")
    torch.testing.assert_close(loaded.gates, explainer.gates)
    with pytest.raises(ValueError, match="trained with gates"):
        tiny_explainer(tokenizer).load_adapters(tmp_path / "gated")


def test_centered_adapters_give_the_mean_line_the_shared_vector_and_each_line_its_own_part(tokenizer,
                                                                                          tmp_path: Path) -> None:
    explainer = tiny_explainer(tokenizer, centered=True)
    users, items = vectors(3)
    with torch.no_grad():
        explainer.styles.normal_()
        explainer.centers = torch.as_tensor(np.stack([users.mean(0), items.mean(0)]), dtype=torch.float32)
        center = explainer._adapt(0, explainer.centers[:1])
        torch.testing.assert_close(center, explainer.styles[:1])  # the mean line gets the shared vector alone
        own = explainer._adapt(0, torch.as_tensor(users, dtype=torch.float32))
        plain = explainer.user_adapter(torch.as_tensor(users, dtype=torch.float32))
        # each line: the shared vector plus what its vectors give beyond the mean line's
        torch.testing.assert_close(own, explainer.styles[0] + plain - explainer.user_adapter(explainer.centers[:1]))
        assert not torch.allclose(own[0], own[1])
    explainer.save(tmp_path / "centered")
    loaded = tiny_explainer(tokenizer, centered=True)
    loaded.load_adapters(tmp_path / "centered")
    torch.testing.assert_close(loaded.styles, explainer.styles)
    torch.testing.assert_close(loaded.centers, explainer.centers)
    with pytest.raises(ValueError, match="trained centered"):
        tiny_explainer(tokenizer).load_adapters(tmp_path / "centered")


def test_a_few_centered_steps_lower_the_loss_and_fix_the_mean_line(tokenizer) -> None:
    explainer = tiny_explainer(tokenizer, centered=True, lr=0.05, batch_size=2, epochs=8)
    users, items = vectors(2)
    examples = [{"prompt": prompt(explainer, w), "target": t, "user": u, "item": i}
                for w, t, u, i in zip(("a quiet cafe", "loud bars"), ("Calm coffee.", "Great beer."), users, items)]
    before = explainer.loss([e["prompt"] for e in examples], [e["target"] for e in examples], users, items).item()
    explainer.train(examples, progress=False)
    after = explainer.loss([e["prompt"] for e in examples], [e["target"] for e in examples], users, items).item()
    assert after < before
    torch.testing.assert_close(explainer.centers, torch.as_tensor(np.stack([users.mean(0), items.mean(0)]),
                                                                  dtype=torch.float32))


def test_plain_prompts_need_no_vectors_and_a_missing_token_is_refused(tokenizer) -> None:
    explainer = tiny_explainer(tokenizer, max_new_tokens=4)
    plain = explainer.prompt_text([{"role": "user", "content": "Why coffee?"}], with_tokens=False)
    assert len(explainer.generate([plain])) == 1
    users, items = vectors(1)
    with pytest.raises(ValueError, match="exactly one <USER_EMBED>"):
        explainer.generate([plain], users, items)


def test_generation_of_a_batch_matches_one_at_a_time(tokenizer) -> None:
    """Left padding with positions from the mask: a short prompt reads the same beside a long one."""
    explainer = tiny_explainer(tokenizer, max_new_tokens=6)
    prompts = [prompt(explainer, "a quiet cafe"), prompt(explainer, "loud bars with live music every single night")]
    users, items = vectors(2)
    together = explainer.generate(prompts, users, items, until_eos=False)
    alone = [explainer.generate([p], users[n:n + 1], items[n:n + 1], until_eos=False)[0] for n, p in enumerate(prompts)]
    assert together == alone


def test_guided_decoding_is_the_plain_prompt_unless_the_lines_vectors_differ_from_the_neutral_line(
        tokenizer) -> None:
    """Guidance adds only what the line's own vectors change against the neutral line's: with the
    neutral line's vectors, or weight 0, it is the plain prompt's greedy text; otherwise it moves.
    A batch reads as each line alone."""
    explainer = tiny_explainer(tokenizer, max_new_tokens=6)
    words = ["a quiet cafe", "loud bars with live music every single night"]
    plain = [explainer.prompt_text([{"role": "user", "content": f"User likes {w}. Business: coffee. Why?"}],
                                   with_tokens=False) for w in words]
    marked = [prompt(explainer, w) for w in words]
    users, items = vectors(2)
    neutral_user, neutral_item = users[0], items[0]
    alone = explainer.generate(plain, until_eos=False)

    def guided(user_vectors, item_vectors, weight, rows=slice(None)):
        return explainer.generate_guided(plain[rows], marked[rows], user_vectors[rows], item_vectors[rows],
                                         neutral_user, neutral_item, weight=weight, until_eos=False)

    same = np.stack([neutral_user] * 2), np.stack([neutral_item] * 2)
    assert guided(*same, weight=5.0) == alone
    assert guided(users, items, weight=0.0) == alone
    steered = guided(users, items, weight=50.0)
    assert steered[1] != alone[1]  # line 1's vectors are not the neutral line's
    assert steered[0] == alone[0]  # line 0's are
    assert [guided(users, items, 50.0, slice(n, n + 1))[0] for n in range(2)] == steered


def test_training_lowers_the_loss_and_a_resumed_run_is_a_straight_run(tokenizer, tmp_path: Path) -> None:
    users, items = vectors(4)
    recipe = dict(lr=0.05, batch_size=2, epochs=3, save_every=1, seed=3)
    straight = tiny_explainer(tokenizer, **recipe)
    examples = [{"prompt": prompt(straight, w), "target": t, "user": users[n], "item": items[n]}
                for n, (w, t) in enumerate([("tea", "It is calm."), ("beer", "Good taps."), ("cake", "Sweet."),
                                            ("jazz", "Live sets.")])]
    with torch.no_grad():
        before = float(straight.loss([e["prompt"] for e in examples], [e["target"] for e in examples], users, items))
    straight.train(examples, progress=False)
    with torch.no_grad():
        after = float(straight.loss([e["prompt"] for e in examples], [e["target"] for e in examples], users, items))
    assert after < before

    stopped = tiny_explainer(tokenizer, **recipe)

    def stop(step: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped.train(examples, checkpoint_dir=tmp_path / "ckpt", progress=False, on_step=stop)
    # the interrupted step was not saved: the run picks up after step 2 and does step 3 again
    assert json.loads((tmp_path / "ckpt" / "xrec.json").read_text())["steps_done"] == 2
    resumed = tiny_explainer(tokenizer, **recipe)
    resumed.train(examples, checkpoint_dir=tmp_path / "ckpt", progress=False)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_the_contrast_term_asks_another_lines_vectors_to_score_worse(tokenizer) -> None:
    users, items = vectors(2)
    lines = [("tea", "It is calm."), ("beer", "Good taps.")]

    def first_step(**contrast) -> tuple[float, float, float]:
        explainer = tiny_explainer(tokenizer, lr=0.0, batch_size=2, epochs=1, **contrast)
        examples = [{"prompt": prompt(explainer, w), "target": t, "user": users[n], "item": items[n]}
                    for n, (w, t) in enumerate(lines)]
        args = [e["prompt"] for e in examples], [e["target"] for e in examples]
        with torch.no_grad():
            right = float(explainer.loss(*args, users, items))
            swapped = float(explainer.loss(*args, np.roll(users, 1, axis=0), np.roll(items, 1, axis=0)))
        return explainer.train(examples, progress=False)[0], right, swapped

    plain, right, swapped = first_step()
    assert plain == pytest.approx(right, abs=0.01)  # (the gates' training noise moves it by ~0.001)
    # a margin far above the gap: the step's loss is the right vectors' plus weight × (margin − gap)
    step, right, swapped = first_step(contrast=0.5, margin=10.0)
    assert step == pytest.approx(right + 0.5 * (10.0 - (swapped - right)), abs=0.01)


def test_saved_adapters_load_and_explain_the_same(tokenizer, tmp_path: Path) -> None:
    explainer = tiny_explainer(tokenizer, max_new_tokens=5)
    with torch.no_grad():
        for p in explainer.parameters():
            p.normal_(0, 0.5)
    explainer.save(tmp_path / "adapter")
    loaded = tiny_explainer(tokenizer, max_new_tokens=5)
    loaded.load_adapters(tmp_path / "adapter")
    users, items = vectors(1)
    p = [prompt(explainer)]
    assert loaded.generate(p, users, items, until_eos=False) == explainer.generate(p, users, items, until_eos=False)
    (tmp_path / "adapter" / "adapters.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable XRec adapter"):
        tiny_explainer(tokenizer).load_adapters(tmp_path / "adapter")
    with pytest.raises(FileNotFoundError, match="chatrec xrec train"):
        tiny_explainer(tokenizer).load_adapters(tmp_path / "absent")


@pytest.mark.model
def test_a_few_steps_on_real_yelp_lines_lower_the_loss_of_the_shipped_model() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"the XRec-yelp benchmark data is not at {SHARED}")
    from agent.evals.explain import read_jsonl
    from agent.llm import default_model_path
    from agent.tuning.xrec import load_explainer
    from agent.tuning.xrec_yelp import YelpPrompts

    rows = read_jsonl(SHARED / "train.jsonl")[:4]
    explainer = load_explainer(default_model_path(), XRecConfig(lr=3e-2, batch_size=4, epochs=10, dropout=0.0))
    prompts = YelpPrompts(explainer)
    users, items = np.random.default_rng(0).normal(size=(2, 4, 64)).astype(np.float32) * 0.1
    examples = [{"prompt": prompts(r, True), "target": r["reference"], "user": users[n], "item": items[n]}
                for n, r in enumerate(rows)]

    def loss() -> float:
        with torch.no_grad():
            return float(explainer.loss([e["prompt"] for e in examples], [r["reference"] for r in rows], users, items))

    before = loss()
    explainer.train(examples, progress=False)
    after = loss()
    assert after < before - 0.05, (before, after)


def small_graph():
    """A real GraphRecommender over 6 users and 5 businesses (vectors drawn, not trained)."""
    import scipy.sparse as sp

    from agent.evals.explain import XRecGraph
    from recsys.recommender import GraphRecommender

    rng = np.random.default_rng(1)
    train = sp.csr_matrix(np.eye(6, 5))
    rec = GraphRecommender(rng.normal(size=(6, 8)), rng.normal(size=(5, 8)), train, [str(u) for u in range(6)],
                           [str(i) for i in range(5)], "xrec-yelp")
    return XRecGraph(rec, {})


def test_the_random_ablation_draws_another_user_and_business_the_same_way_in_a_sample_and_in_the_file() -> None:
    from agent.tuning.xrec_yelp import graph_vectors

    graph = small_graph()
    rows = [{"uid": 0, "iid": 1}, {"uid": 2, "iid": 3}, {"uid": 4, "iid": 4}]
    users, items = graph_vectors(rows, graph)
    np.testing.assert_array_equal(users[1], graph.recommender.user_factors_[2])
    np.testing.assert_array_equal(items[1], graph.recommender.item_factors_[3])
    random_users, random_items = graph_vectors(rows, graph, "random", seed=0)
    for n in range(3):
        assert not np.array_equal(random_users[n], users[n]) and not np.array_equal(random_items[n], items[n])
    alone = graph_vectors(rows[1:2], graph, "random", seed=0)
    np.testing.assert_array_equal(alone[0][0], random_users[1])  # line 1 draws the same, alone or among others
    np.testing.assert_array_equal(alone[1][0], random_items[1])


def test_explain_refuses_adapters_fitted_on_another_graphs_vectors(tmp_path: Path, monkeypatch) -> None:
    """Adapters learn to read one graph's vectors: a retrained graph's (or another recipe's) are not theirs."""
    from typer.testing import CliRunner

    from agent.cli import app
    from agent.evals.explain import XRecGraph
    from agent.tuning import xrec_yelp

    data = tmp_path / "xrec-yelp"
    data.mkdir()
    line = {"uid": 0, "iid": 1, "title": "Cafe One", "user_summary": "Likes coffee.", "item_summary": "A cafe.",
            "reference": "Good coffee."}
    for name in ("train.jsonl", "eval.jsonl"):
        (data / name).write_text(json.dumps(line) + "\n")
    for name in ("total_trn.csv", "total_val.csv"):
        (data / name).write_text("user,item\n0,1\n")
    graph = XRecGraph(small_graph().recommender, {}, key="graph-now")
    monkeypatch.setattr(xrec_yelp, "yelp_graph", lambda *a, **k: graph)
    monkeypatch.setenv("CHATREC_HOME", str(tmp_path / "home"))
    saved = xrec_yelp.adapter_dir(tmp_path / "home")
    saved.mkdir(parents=True)
    stamp = xrec_yelp.adapter_data_stamp(data, graph)
    (saved / "xrec.json").write_text(json.dumps({"data": stamp.replace("graph-now", "graph-before")}))

    result = CliRunner().invoke(app, ["xrec", "explain", "--user", "0", "--item", "1", "--data-dir", str(data)])
    assert result.exit_code != 0 and "another graph" in result.output


def test_the_agents_adapter_is_refused_with_a_graph_trained_again(tmp_path: Path) -> None:
    from agent.tuning.xrec_agent import graph_fingerprint, load_writer

    fitted_on, trained_again = small_graph().recommender, small_graph().recommender
    trained_again.item_factors_ = trained_again.item_factors_ + 0.01
    assert graph_fingerprint(fitted_on) == graph_fingerprint(small_graph().recommender) != graph_fingerprint(trained_again)
    (tmp_path / "xrec.json").write_text(json.dumps({"graph_dim": 8, "data": f"pairs.jsonl:10:1;{graph_fingerprint(fitted_on)}"}))
    with pytest.raises(ValueError, match="another graph"):
        load_writer(tmp_path, trained_again)


def test_generation_is_kept_per_line_and_an_interrupted_run_picks_up(tokenizer, tmp_path: Path, monkeypatch) -> None:
    from agent.tuning import xrec_yelp

    explainer = tiny_explainer(tokenizer, max_new_tokens=3)
    rows = [{"uid": u, "iid": u % 5, "title": f"Place {u}", "user_summary": "Likes coffee.",
             "item_summary": "A cafe.", "reference": "Good coffee."} for u in range(5)]
    graph, cache = small_graph(), tmp_path / "adapter.jsonl"
    first = xrec_yelp.generate(explainer, rows[:2], graph, "adapter", cache=cache, batch_size=1, progress=False)
    calls = []
    real = explainer.generate
    monkeypatch.setattr(explainer, "generate", lambda prompts, *a, **k: calls.append(len(prompts)) or real(prompts, *a, **k))
    everything = xrec_yelp.generate(explainer, rows, graph, "adapter", cache=cache, batch_size=8, progress=False)
    assert everything[:2] == first and calls == [3]  # only the three lines not made before
    assert len(cache.read_text().splitlines()) == 5
    with pytest.raises(ValueError, match="unknown system"):
        xrec_yelp.generate(explainer, rows, graph, "other", progress=False)


def test_without_summaries_every_prompt_keeps_the_name_and_the_reserved_tokens_but_no_summary(tokenizer) -> None:
    from agent.tuning.xrec_yelp import YelpPrompts, adapter_dir

    row = {"uid": 0, "iid": 1, "title": "Place One", "user_summary": "Loves spicy ramen.",
           "item_summary": "A noodle bar.", "reference": "Good noodles."}
    with_them = YelpPrompts(tiny_explainer(tokenizer))
    without = YelpPrompts(tiny_explainer(tokenizer, summaries=False))
    assert "spicy ramen" in with_them(row, True) and "noodle bar" in with_them(row, False)
    for tokens in (True, False):
        text = without(row, tokens)
        assert "Place One" in text and "spicy" not in text and "noodle" not in text
        assert (USER_TOKEN in text and ITEM_TOKEN in text) == tokens
    assert adapter_dir(Path("home"), summaries=False) != adapter_dir(Path("home"))  # never resumed from the other
    assert not XRecConfig(summaries=False).same_recipe(XRecConfig())


def test_low_rank_adapters_start_as_the_base_model_and_never_touch_a_plain_prompt(tokenizer) -> None:
    """``lora``: the update starts at zero (the explainer is XRec's at step 0); once it is not zero it
    changes what the graph's passes write, and a plain prompt (the prompt-only explainer) still reads
    the base model."""
    plain_explainer = tiny_explainer(tokenizer, max_new_tokens=6)
    tuned = tiny_explainer(tokenizer, max_new_tokens=6, lora=2)
    assert len(tuned.low_ranks) == 2 * 4 and not plain_explainer.low_ranks  # q k v o in each layer
    users, items = vectors(2)
    marked = [prompt(tuned, "a quiet cafe"), prompt(tuned, "loud bars with live music every single night")]
    plain = [tuned.prompt_text([{"role": "user", "content": "Why coffee?"}], with_tokens=False)]
    assert tuned.generate(marked, users, items, until_eos=False) == plain_explainer.generate(
        marked, users, items, until_eos=False)
    with torch.no_grad():
        for p in tuned.low_rank_parameters():
            p.normal_(0, 0.5)
    assert tuned.generate(marked, users, items, until_eos=False) != plain_explainer.generate(
        marked, users, items, until_eos=False)
    assert tuned.generate(plain, until_eos=False) == plain_explainer.generate(plain, until_eos=False)
    assert not any(m.on for m in tuned.low_ranks.values())  # switched off again after each pass


def test_low_rank_adapters_train_save_and_load(tokenizer, tmp_path: Path) -> None:
    users, items = vectors(2)
    explainer = tiny_explainer(tokenizer, lora=2, lora_lr=0.05, lr=0.0, batch_size=2, epochs=4, max_new_tokens=5)
    examples = [{"prompt": prompt(explainer, w), "target": t, "user": users[n], "item": items[n]}
                for n, (w, t) in enumerate([("tea", "It is calm."), ("beer", "Good taps.")])]
    args = [e["prompt"] for e in examples], [e["target"] for e in examples], users, items
    with torch.no_grad():
        before = float(explainer.loss(*args))
    explainer.train(examples, progress=False)
    with torch.no_grad():
        after = float(explainer.loss(*args))
    assert after < before  # the MoE adapters' lr is 0 here: the low-rank adapters moved it
    explainer.save(tmp_path / "adapter")
    loaded = tiny_explainer(tokenizer, lora=2, max_new_tokens=5)
    loaded.load_adapters(tmp_path / "adapter")
    # the low-rank weights themselves come back (the same text alone could be the base model's)
    assert any(float(m.up.abs().max()) > 0 for m in loaded.low_ranks.values())
    for a, b in zip(loaded.low_rank_parameters(), explainer.low_rank_parameters()):
        torch.testing.assert_close(a, b)
    p = [examples[0]["prompt"]]
    assert loaded.generate(p, users[:1], items[:1], until_eos=False) == explainer.generate(
        p, users[:1], items[:1], until_eos=False)
    with pytest.raises(ValueError, match="low-rank"):
        tiny_explainer(tokenizer).load_adapters(tmp_path / "adapter")
    from agent.tuning.xrec_yelp import adapter_dir

    assert adapter_dir(Path("home"), lora=8) != adapter_dir(Path("home"))  # never resumed from the other
    assert not XRecConfig(lora=8).same_recipe(XRecConfig())
