"""LoRA tuning → llama.cpp adapter: what llama.cpp computes with the exported adapter must be what
the tuned torch model computes (the Q/K row order llama.cpp uses included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.llm import default_model_path
from agent.tuning import SftExample, encode, export_gguf_adapter, load_base


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
    from llama_cpp import Llama
    from peft import LoraConfig, get_peft_model

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
        llm = Llama(model_path=str(default_model_path()), lora_path=lora, logits_all=True, n_ctx=128, verbose=False)
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
