"""Flan-T5 support: a tiny T5 made here from a config (no weights can be installed), saved and
loaded for real, LoRA-tuned by the same loop as the shipped model, served by the local backend
with its adapter; and the checkpoint / resume contract of the tuning loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.tuning.lora import (
    SftExample,
    TuneConfig,
    adapter_path,
    flatten,
    is_seq2seq,
    load_base,
    save_peft_adapter,
    train_lora,
)

MODEL_FIXTURES = {"tiny_t5"}  # tests using it are marked model (conftest): a T5 LLM, tuned and served

# short asks: a randomly initialised 2-layer T5 learns title -> answer from a handful of
# examples only when the title is most of the input
TITLES = ["Fargo", "Heat", "Babe", "Dune", "Alien", "Casablanca"]
EXAMPLES = [SftExample([{"role": "system", "content": "yes or no ?"}, {"role": "user", "content": f"{title} ?"}],
                       "yes" if n % 2 == 0 else "no") for n, title in enumerate(TITLES)]


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory) -> Path:
    """A 2-layer T5 with a word-level tokenizer over the examples' words, saved like any model folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    words = sorted({w for e in EXAMPLES for m in e.messages for w in m["content"].split()} | {"yes", "no"})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: n + 3 for n, w in enumerate(words)}}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=len(vocab), d_model=32, d_ff=64, d_kv=16, num_layers=2,
                                                num_heads=2, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
    folder = tmp_path_factory.mktemp("tiny-t5")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_t5_folder_loads_as_seq2seq_and_lora_learns_the_answers(tiny_t5: Path, tmp_path: Path, monkeypatch) -> None:
    from agent.config import Settings
    from agent.llm import TransformersChatModel, make_chat_model

    tokenizer, model = load_base(tiny_t5)
    assert is_seq2seq(model)
    config = TuneConfig(rank=8, alpha=16, epochs=60, lr=1e-2, batch_size=6, seed=0)
    _, tuned = train_lora(EXAMPLES, tiny_t5, config, checkpoint_dir=tmp_path / "ckpt", progress=False)
    home = tmp_path / "home"
    saved = save_peft_adapter(tuned, adapter_path(home, tiny_t5))
    assert (saved / "adapter_config.json").is_file() and saved.parent == home / "tune"

    # the local backend serves the folder with the adapter it finds in the data home
    monkeypatch.setenv("CHATREC_HOME", str(home))
    monkeypatch.setenv("CHATREC_LLM_MODEL", str(tiny_t5))
    monkeypatch.delenv("CHATREC_LLM_ADAPTER", raising=False)
    llm = make_chat_model(Settings())
    assert isinstance(llm, TransformersChatModel) and llm.adapter_dir == str(saved)
    answers = [llm.invoke([("system", e.messages[0]["content"]), ("human", e.messages[1]["content"])],
                          max_tokens=3).content for e in EXAMPLES]
    assert answers == [e.answer for e in EXAMPLES]
    # pointwise ranking reads the same answers as probabilities (the decoder's first step)
    for e in EXAMPLES:
        p = llm.answer_probabilities([("system", e.messages[0]["content"]), ("human", e.messages[1]["content"])],
                                     ("yes", "no"))
        assert p["yes"] + p["no"] == pytest.approx(1.0) and (p["yes"] > 0.5) == (e.answer == "yes")
    # the untuned model does not know them: the answers come from the adapter
    base = TransformersChatModel(model_dir=str(tiny_t5))
    untuned = [base.invoke([("system", e.messages[0]["content"]), ("human", e.messages[1]["content"])],
                           max_tokens=3).content for e in EXAMPLES]
    assert untuned != answers


def test_an_interrupted_run_resumes_to_the_same_adapter(tiny_t5: Path, tmp_path: Path) -> None:
    import torch
    from peft import get_peft_model_state_dict

    config = TuneConfig(rank=4, alpha=8, epochs=4, lr=1e-3, batch_size=2, seed=1, save_every=3)  # 12 batches
    _, straight = train_lora(EXAMPLES, tiny_t5, config, progress=False)
    _, _ = train_lora(EXAMPLES, tiny_t5, config, checkpoint_dir=tmp_path, stop_at=5, progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["done"] == 5
    _, resumed = train_lora(EXAMPLES, tiny_t5, config, checkpoint_dir=tmp_path, resume=True, progress=False)
    a, b = get_peft_model_state_dict(straight), get_peft_model_state_dict(resumed)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # a checkpoint from other data is refused, not silently mixed in
    with pytest.raises(ValueError, match="another run"):
        train_lora(EXAMPLES[:4], tiny_t5, config, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_a_missing_adapter_is_a_clear_error(tiny_t5: Path, tmp_path: Path, monkeypatch) -> None:
    from agent.config import Settings
    from agent.llm import LLMUnavailable, make_chat_model

    monkeypatch.setenv("CHATREC_HOME", str(tmp_path))
    monkeypatch.setenv("CHATREC_LLM_ADAPTER", str(tmp_path / "nowhere"))
    with pytest.raises(LLMUnavailable, match="no LoRA adapter at"):
        make_chat_model(Settings())
    with pytest.raises(FileNotFoundError, match="neither a GGUF file nor a transformers model"):
        load_base(tmp_path)


def test_two_step_tuning_goes_on_from_the_first_stage(tiny_t5: Path, tmp_path: Path) -> None:
    """BinLLM's two-step tuning: the plan is the first stage's batches, then the second's, on one
    adapter; ``after_first`` sees the model between them (the CLI saves it there)."""
    import torch

    flipped = [SftExample(e.messages, "no" if e.answer == "yes" else "yes") for e in EXAMPLES]
    config = TuneConfig(rank=8, alpha=16, epochs=60, lr=1e-2, batch_size=6, seed=0)
    seen = []

    def answers(tokenizer, model) -> list[str]:
        out = []
        for e in EXAMPLES:
            ids = tokenizer(flatten(e.messages), return_tensors="pt")  # the served prompt (TransformersChatModel)
            with torch.no_grad():
                out.append(tokenizer.decode(model.generate(**ids, max_new_tokens=3)[0], skip_special_tokens=True).strip())
        return out

    tokenizer, _ = load_base(tiny_t5)
    _, tuned = train_lora(EXAMPLES, tiny_t5, config, checkpoint_dir=tmp_path, progress=False, then=flipped,
                          after_first=lambda m: seen.append(answers(tokenizer, m)))
    assert seen == [[e.answer for e in EXAMPLES]]  # called once, after the first stage had learned it
    assert answers(tokenizer, tuned) == [e.answer for e in flipped]  # the second stage went on from there
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["steps"] == 2 * 60


def test_slices_of_a_t5_batch_have_the_gradient_of_the_whole_batch(tiny_t5: Path) -> None:
    from agent.tuning.lora import encode_seq2seq
    from tests.test_tuning import same_gradient_in_slices

    tokenizer, model = load_base(tiny_t5)
    encoded = [encode_seq2seq(tokenizer, e) for e in EXAMPLES]
    whole, sliced = same_gradient_in_slices(tokenizer, model, encoded, TuneConfig(), seq2seq=True)
    assert abs(whole - sliced) < 1e-5
