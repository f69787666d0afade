"""LLM backends with the real shipped model: llama.cpp in-process, and the OpenAI-compatible
client against a real `python -m agent.llama_server` (llama_cpp.server on llama.cpp's plain CPU
path) on 127.0.0.1 serving the same file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.config import Settings
from agent.llm import LLMUnavailable, LocalChatModel, OpenAIChatModel, default_model_path, make_chat_model
from servers import free_port, wait_for_port

SCHEMA = {"type": "object", "properties": {"intent": {"type": "string", "enum": ["recommend", "explain", "chitchat"]}},
          "required": ["intent"]}
LABEL = [SystemMessage("Label the user's message as recommend, explain or chitchat."),
         HumanMessage("could you suggest a few comedies?")]


@pytest.fixture(scope="module")
def local() -> LocalChatModel:
    return LocalChatModel(max_tokens=48, n_threads=1)


def test_local_model_answers_and_streams(local: LocalChatModel) -> None:
    answer = local.invoke([HumanMessage("Say hello.")])
    assert isinstance(answer.content, str) and answer.content.strip()
    chunks = [c.content for c in local.stream([HumanMessage("Count to three.")])]
    assert len(chunks) > 1 and "".join(chunks).strip()


def test_local_json_schema_output_fits_the_schema(local: LocalChatModel) -> None:
    for _ in range(2):
        value = json.loads(local.invoke(LABEL, json_schema=SCHEMA).content)
        assert value["intent"] in SCHEMA["properties"]["intent"]["enum"]


def test_a_missing_model_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(LLMUnavailable, match="no model file"):
        LocalChatModel(model_path=str(tmp_path / "nope.gguf")).invoke([HumanMessage("hi")])
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    with pytest.raises(LLMUnavailable, match="not a model"):
        LocalChatModel(model_path=str(broken)).invoke([HumanMessage("hi")])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agent.llama_server", "--model", str(default_model_path()),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        wait_for_port(port, proc, "llama_cpp.server")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_openai_backend_against_a_real_llama_cpp_server(server: str) -> None:
    model = OpenAIChatModel(base_url=server, model="smollm2", max_tokens=32, timeout=30)
    assert model.invoke([HumanMessage("Say hello.")]).content.strip()
    assert "".join(c.content for c in model.stream([HumanMessage("Count to three.")])).strip()
    value = json.loads(model.invoke(LABEL, json_schema=SCHEMA).content)
    assert value["intent"] in SCHEMA["properties"]["intent"]["enum"]
    # server-specific fields travel in the request body: the local model's greedy answer, exactly
    plain = OpenAIChatModel(base_url=server, model="smollm2", max_tokens=24, extra_body={"repeat_penalty": 1.0})
    local = LocalChatModel(max_tokens=24)
    question = [HumanMessage("List the numbers 1, 1, 1, 1, 1 again.")]
    assert plain.invoke(question).content == local.invoke(question).content


def test_a_dead_endpoint_is_a_clear_error_quickly() -> None:
    model = OpenAIChatModel(base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=2, max_retries=1)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="cannot reach the LLM endpoint"):
        model.invoke([HumanMessage("hi")])
    assert time.monotonic() - started < 15


def test_settings_choose_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATREC_LLM_BACKEND", raising=False)
    assert isinstance(make_chat_model(Settings()), LocalChatModel)
    monkeypatch.setenv("CHATREC_LLM_BACKEND", "openai")
    with pytest.raises(LLMUnavailable, match="CHATREC_LLM_BASE_URL"):
        make_chat_model(Settings())
    monkeypatch.setenv("CHATREC_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CHATREC_LLM_API_KEY", "sk-secret")
    model = make_chat_model(Settings())
    assert isinstance(model, OpenAIChatModel) and model.base_url == "http://127.0.0.1:9/v1"
    assert "sk-secret" not in repr(model)
    monkeypatch.setenv("CHATREC_LLM_EXTRA_BODY", '{"repeat_penalty": 1.0}')
    assert make_chat_model(Settings()).extra_body == {"repeat_penalty": 1.0}
