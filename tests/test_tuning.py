"""LoRA tuning → llama.cpp adapter: what llama.cpp computes with the exported adapter must be what
the tuned torch model computes (the Q/K row order llama.cpp uses included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.llm import default_model_path, load_base
from agent.tuning.lora import SftExample, encode, export_gguf_adapter, progress_position

MODEL_FIXTURES = {"base"}  # tests using it are marked model (conftest): it loads the LLM in torch


@pytest.fixture(scope="module")
def base():
    return load_base(default_model_path())


def test_only_the_answer_is_learned(base) -> None:
    tokenizer, _ = base
    example = SftExample([{"role": "system", "content": "Route."}, {"role": "user", "content": "hi"}],
                         '{"intent":"chitchat","slots":{}}')
    ids, start = encode(tokenizer, example)
    assert tokenizer.decode(ids[start:]) == '{"intent":"chitchat","slots":{}}<|im_end|>'
    assert tokenizer.decode(ids[:start]).endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("modules", [["q_proj", "k_proj"], ["v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]])
def test_the_exported_adapter_changes_llama_cpp_like_it_changes_torch(base, modules, tmp_path: Path) -> None:
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from agent.llm import open_llama

    tokenizer, model = base
    tuned = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=modules))
    torch.manual_seed(0)
    for name, weight in tuned.named_parameters():
        if "lora_B" in name:  # a large random adapter, so its effect stands far above quantisation noise
            weight.data.normal_(0, 0.5)
    tuned.eval()
    ids = tokenizer("<|im_start|>user\nsome funny movies from the nineties?<|im_end|>\n<|im_start|>assistant\n",
                    add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        torch_tuned = tuned(input_ids=torch.tensor([ids])).logits[0].numpy()
        with tuned.disable_adapter():
            torch_base = tuned(input_ids=torch.tensor([ids])).logits[0].numpy()
    adapter = export_gguf_adapter(tuned, tmp_path / "adapter.gguf", alpha=8)

    def llama_logits(lora: str | None) -> np.ndarray:
        llm = open_llama(model_path=str(default_model_path()), lora_path=lora, logits_all=True, n_ctx=128, verbose=False)
        llm.eval(ids)
        return np.array(llm.scores[:len(ids)])

    llama_delta = llama_logits(str(adapter)) - llama_logits(None)
    torch_delta = torch_tuned - torch_base
    assert np.corrcoef(llama_delta.ravel(), torch_delta.ravel())[0, 1] > 0.95
    assert 0.8 < np.linalg.norm(llama_delta) / np.linalg.norm(torch_delta) < 1.25


def test_a_model_without_adapters_is_not_exported(base, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no LoRA"):
        export_gguf_adapter(base[1], tmp_path / "none.gguf", alpha=1)
    assert not list(tmp_path.iterdir())


def same_gradient_in_slices(tokenizer, model, encoded, config, seq2seq: bool) -> tuple[float, float]:
    """Loss and gradients of one batch taken whole and taken row by row: (loss whole, loss sliced),
    after asserting the gradients agree."""
    import torch
    from peft import LoraConfig, get_peft_model

    from agent.tuning.lora import TuneConfig, backward_batch, target_modules

    torch.manual_seed(0)
    tuned = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=target_modules(model),
                                             task_type="SEQ_2_SEQ_LM" if seq2seq else "CAUSAL_LM"))
    for name, weight in tuned.named_parameters():
        if "lora_B" in name:  # non-zero B, so A gets gradients too
            weight.data.normal_(0, 0.1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = list(range(len(encoded)))
    grads, losses = [], []
    for budget in (None, 1):  # whole, then every row alone
        tuned.zero_grad()
        losses.append(backward_batch(tuned, encoded, batch, pad, TuneConfig(**{**config.__dict__, "max_batch_tokens": budget}),
                                     seq2seq))
        grads.append({n: p.grad.clone() for n, p in tuned.named_parameters() if p.requires_grad})
    whole, sliced = grads
    assert whole.keys() == sliced.keys() and any(g.abs().sum() > 0 for g in whole.values())
    for name in whole:  # equal up to float summation order (seen: 1.3e-5 at most)
        gap = (whole[name] - sliced[name]).norm() / whole[name].norm().clamp(min=1e-12)
        assert gap < 1e-3, (name, float(gap))
    return losses[0], losses[1]


def test_a_batch_in_slices_has_the_gradient_of_the_whole_batch(base) -> None:
    """max_batch_tokens (the memory guard for long re-rank prompts) splits a batch into slices whose
    gradients add up to the whole batch's — with the router's weighted lead tokens too."""
    import copy

    from agent.tuning.lora import TuneConfig

    tokenizer, model = base
    examples = [SftExample([{"role": "user", "content": ask}], answer) for ask, answer in
                [("Is Fargo a comedy?", "no"), ("Pick one: A Heat, B Babe. Answer A or B, please.", "B"),
                 ("Would a fan of westerns like Unforgiven (1992)?", "yes, very likely")]]
    encoded = [encode(tokenizer, e) for e in examples]
    whole, sliced = same_gradient_in_slices(tokenizer, copy.deepcopy(model), encoded,
                                            TuneConfig(lead_tokens=1, lead_weight=3.0), seq2seq=False)
    assert abs(whole - sliced) < 1e-5


def test_the_progress_bar_counts_each_stage_of_a_two_step_run_in_its_own_epochs() -> None:
    # 20 plain asks then 12 coded ones, batches of 8, 2 epochs: 3 + 3 batches, then 2 + 2
    assert progress_position(3, 6, 20, 0, 8) == {"epoch": 1}
    assert progress_position(4, 6, 20, 0, 8) == {"epoch": 2}
    assert progress_position(6, 6, 20, 12, 8) == {"stage": 1, "epoch": 2}
    assert progress_position(7, 6, 20, 12, 8) == {"stage": 2, "epoch": 1}
    assert progress_position(9, 6, 20, 12, 8) == {"stage": 2, "epoch": 2}


@pytest.mark.parametrize("family, architecture, interleaved", [("qwen2", "qwen2", False), ("llama", "llama", True)])
def test_the_adapter_is_written_for_its_models_architecture(family, architecture, interleaved, tmp_path: Path) -> None:
    """llama.cpp refuses an adapter of another architecture, and interleaves the Q / K rows of a
    llama only (convert_hf_to_gguf permutes llama's, not qwen2's): a tiny model of each family,
    made from its config, exported and read back."""
    import gguf
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from agent.tuning.lora import _permute_rows

    config_type, model_type = (Qwen2Config, Qwen2ForCausalLM) if family == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    torch.manual_seed(0)
    model = model_type(config_type(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2))
    tuned = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "k_proj", "down_proj"]))
    for name, weight in tuned.named_parameters():
        if "lora_B" in name:
            weight.data.normal_(0, 0.5)
    reader = gguf.GGUFReader(str(export_gguf_adapter(tuned, tmp_path / "adapter.gguf", alpha=4)))
    assert reader.get_field("general.architecture").contents() == architecture
    written = {t.name: np.array(t.data, dtype=np.float32).reshape(t.data.shape) for t in reader.tensors}
    layer = tuned.base_model.model.model.layers[1]
    for module, name, heads in ((layer.self_attn.q_proj, "attn_q", 4), (layer.self_attn.k_proj, "attn_k", 2),
                                (layer.mlp.down_proj, "ffn_down", None)):
        b = module.lora_B["default"].weight.detach().numpy()
        expected = _permute_rows(b, heads) if interleaved and heads else b
        np.testing.assert_allclose(written[f"blk.1.{name}.weight.lora_b"], expected, atol=2e-3)
        np.testing.assert_allclose(written[f"blk.1.{name}.weight.lora_a"],
                                   module.lora_A["default"].weight.detach().numpy(), atol=2e-3)


def test_a_gguf_of_another_architecture_is_refused_before_tuning(tmp_path: Path) -> None:
    import gguf

    from agent.tuning.lora import check_exportable

    path = tmp_path / "gpt2.gguf"
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(ValueError, match="'gpt2' model"):
        check_exportable(path)
    check_exportable(default_model_path())  # the shipped llama passes


def test_bf16_autocast_keeps_the_loss_and_the_gradients_direction(base) -> None:
    """--precision bf16 (2.4x faster for a 1.5B model on a CPU with AVX-512 BF16) must still learn the same thing."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from agent.tuning.lora import TuneConfig, backward_batch, target_modules

    tokenizer, model = base
    torch.manual_seed(0)
    tuned = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=target_modules(model)))
    for name, weight in tuned.named_parameters():
        if "lora_B" in name:
            weight.data.normal_(0, 0.1)
    examples = [SftExample([{"role": "user", "content": ask}], answer) for ask, answer in
                [("Would a fan of westerns like Unforgiven (1992)?", "yes"), ("Is Babe (1995) a horror film?", "no")]]
    encoded = [encode(tokenizer, e) for e in examples]
    runs = []
    for precision in ("fp32", "bf16"):
        tuned.zero_grad()
        loss = backward_batch(tuned, encoded, [0, 1], 0, TuneConfig(precision=precision), seq2seq=False)
        grad = torch.cat([p.grad.flatten() for p in tuned.parameters() if p.requires_grad])
        assert grad.dtype == torch.float32 and grad.abs().sum() > 0
        runs.append((loss, grad))
    (loss32, grad32), (loss16, grad16) = runs
    assert abs(loss16 - loss32) < 0.05 * loss32
    assert torch.nn.functional.cosine_similarity(grad32, grad16, dim=0) > 0.9


def _pointwise_row(title: str, answer: str) -> dict:
    ask = f"They rated these highly: Heat (1995); Alien (1979).\nShould we recommend {title} to them? Answer yes or no."
    return {"task": "pointwise", "answer": answer,
            "messages": [{"role": "system", "content": "Answer yes or no."}, {"role": "user", "content": ask}]}


def test_tuning_sanity_relabels_from_the_asked_film_and_balances():
    from agent.evals.stats import pair_auc
    from bench.tuning_sanity import relabel

    rows = [_pointwise_row(t, "no") for t in ("Jaws (1975)", "Psycho (1960)", "Fargo (1996)", "Heat (1995)",
                                              "Scream (1996)", "Untitled")]
    year = relabel(rows, "year")
    # the history's 1979 must not decide: the asked film's year does; the title without a year is dropped
    asked = {r["messages"][-1]["content"].split("recommend ")[1].split(" to them")[0]: r["answer"] for r in year}
    assert {t for t, a in asked.items() if a == "yes"} == {"Jaws (1975)", "Psycho (1960)"}
    no = {t for t, a in asked.items() if a == "no"}
    assert len(no) == 2 and no <= {"Fargo (1996)", "Heat (1995)", "Scream (1996)"}  # balanced: 2 of the 3
    hint = relabel(rows, "hint")
    assert sum(r["answer"] == "yes" for r in hint) == sum(r["answer"] == "no" for r in hint) > 0
    for r in hint:
        assert f"(The right answer is {r['answer']}.)" in r["messages"][-1]["content"]
    assert rows[0]["messages"][-1]["content"].count("right answer") == 0  # the input rows are not edited
    # the held-out AUC is the re-rank evaluation's own pair_auc, over one list
    assert pair_auc([np.array([0.9, 0.8, 0.1])], [np.array([True, False, False])]) == 1.0
    assert pair_auc([np.array([0.5, 0.5])], [np.array([True, False])]) == 0.5
