"""LLM backends with the real shipped model: llama.cpp in-process, and the OpenAI-compatible
client against a real `python -m agent.llama_server` (llama_cpp.server on llama.cpp's plain CPU
path) on 127.0.0.1 serving the same file."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.config import Settings
from agent.llm import (LLMUnavailable, LocalChatModel, OpenAIChatModel, answer_token_ids, default_model_path,
                       make_chat_model, probabilities_from_logits)
from servers import DroppingEndpoint, free_port, llama_server
from tools.chat import first_sentences, stream_sentences

MODEL_FIXTURES = {"local", "server"}  # tests using them are marked model (conftest): they load the LLM

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


def test_a_reply_cut_to_whole_sentences_stops_generating_once_they_are_whole(local: LocalChatModel) -> None:
    # the real model, greedy: the full reply's first two sentences, from a stream cut short
    ask = [SystemMessage("You are a friendly assistant. Answer at length."),
           HumanMessage("Tell me about your favourite films, in several sentences.")]
    full_chunks = [c.content for c in local.stream(ask, max_tokens=60)]
    full = "".join(full_chunks)
    assert first_sentences(full, 3) != first_sentences(full, 2), full  # it runs on: stopping has something to save

    class Counted:  # the same model; counts the chunks it is asked to produce
        chunks = 0

        def stream(self, messages, **kwargs):
            for chunk in local.stream(messages, **kwargs):
                Counted.chunks += 1
                yield chunk

    assert stream_sentences(Counted(), ask, 2, max_tokens=60) == first_sentences(full, 2)
    assert Counted.chunks < len(full_chunks)
    # the model answers as before afterwards: the cut generation left nothing behind
    assert "".join(c.content for c in local.stream(ask, max_tokens=60)) == full


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
    # --logits_all: token log-probabilities for answer_probabilities
    with llama_server("--n_ctx", "2048", "--n_threads", "1", "--logits_all", "true") as url:
        yield url


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
    # P(yes) from the endpoint's top log-probabilities: what the same model in-process says
    ask = [SystemMessage("You decide whether one movie fits one person. Answer with one word: yes or no."),
           HumanMessage("They watched and liked: Toy Story (1995). Would this person enjoy Babe (1995)? Answer yes or no.")]
    remote = plain.answer_probabilities(ask, ("yes", "no"))
    assert remote["yes"] + remote["no"] == pytest.approx(1.0)
    assert remote["yes"] == pytest.approx(local.answer_probabilities(ask, ("yes", "no"))["yes"], abs=0.02)


def test_a_dead_endpoint_is_a_clear_error_quickly() -> None:
    model = OpenAIChatModel(base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=2, max_retries=1)
    with pytest.raises(LLMUnavailable, match="cannot reach the LLM endpoint"):
        model.invoke([HumanMessage("hi")])
    # quickly: the one try and the one retry asked for, then the error (an endpoint that drops
    # every connection counts the tries)
    with DroppingEndpoint() as dead:
        model = OpenAIChatModel(base_url=f"{dead.url}/v1", timeout=2, max_retries=1)
        with pytest.raises(LLMUnavailable, match="cannot reach the LLM endpoint"):
            model.invoke([HumanMessage("hi")])
    assert len(dead.attempts) == 2


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


POINTWISE = [SystemMessage("You decide whether one movie fits one person. Answer with one word: yes or no."),
             HumanMessage("They watched and liked: Star Wars (1977); Return of the Jedi (1983).\n"
                          "Would this person enjoy {title}? Answer yes or no.")]


def _ask(title: str) -> list:
    return [POINTWISE[0], HumanMessage(POINTWISE[1].content.format(title=title))]


def test_answer_probabilities_need_distinct_first_tokens() -> None:
    ids = answer_token_ids(lambda text: [hash(text.lower()) % 1000], ("yes", "no"))
    assert len(ids) == 2 and ids[0] != ids[1]
    with pytest.raises(ValueError, match="share a first token"):
        answer_token_ids(lambda text: [7], ("yes", "no"))
    # spellings a word-level vocabulary lacks (encoded as its unknown token) do not count
    vocab = {"yes": 3, "no": 4}
    assert answer_token_ids(lambda text: [vocab.get(text, 2)], ("yes", "no"), unknown=2) == [[3], [4]]
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        answer_token_ids(lambda text: [vocab.get(text, 2)], ("yes", "maybe"), unknown=2)
    logits = [0.0] * 4
    logits[0], logits[1], logits[2] = 2.0, 2.0, 1.0  # "yes" spelled two ways, "no" once
    p = probabilities_from_logits(logits, [[0, 1], [2]], ("yes", "no"))
    assert p["yes"] + p["no"] == pytest.approx(1.0)
    assert p["yes"] == pytest.approx(2 * math.exp(2) / (2 * math.exp(2) + math.exp(1)))


def test_local_answer_probabilities_reuse_the_shared_prefix_exactly(local: LocalChatModel) -> None:
    titles = ["The Empire Strikes Back (1980)", "Titanic (1997)", "Scream (1996)"]
    cached = [local.answer_probabilities(_ask(t), ("yes", "no")) for t in titles]
    for p in cached:
        assert set(p) == {"yes", "no"} and 0 < p["yes"] < 1 and p["yes"] + p["no"] == pytest.approx(1.0)
    assert len({round(p["yes"], 6) for p in cached}) == 3  # the title changes the answer's odds
    fresh = LocalChatModel(max_tokens=48, n_threads=1)
    for t, p in zip(titles, cached):  # a fresh context for every ask: the same numbers
        fresh._model().n_tokens = 0
        assert fresh.answer_probabilities(_ask(t), ("yes", "no"))["yes"] == pytest.approx(p["yes"], abs=1e-4)
    # generating afterwards starts from the same context as a model that never scored anything
    assert local.invoke(LABEL, max_tokens=8).content == fresh.invoke(LABEL, max_tokens=8).content
    with pytest.raises(ValueError, match="share a first token"):
        local.answer_probabilities(_ask(titles[0]), ("yes", "yesterday"))


def test_explanations_are_written_with_the_shipped_adapter_on_the_default_local_model_only(tmp_path) -> None:
    from agent.llm import EXPLAIN_ADAPTER, make_explain_model

    chat = LocalChatModel()  # not loaded: models load on their first call
    assert EXPLAIN_ADAPTER.exists(), "the explanation adapter ships in agent/data (`chatrec tune explain`)"
    default = make_explain_model(Settings(), chat)
    assert isinstance(default, LocalChatModel) and default.lora_path == str(EXPLAIN_ADAPTER)
    assert make_explain_model(Settings(explain_adapter="off"), chat) is chat
    endpoint = OpenAIChatModel(base_url="http://127.0.0.1:9/v1")
    assert make_explain_model(Settings(llm_backend="openai", llm_base_url="http://127.0.0.1:9/v1"), endpoint) is endpoint
    assert make_explain_model(Settings(llm_model=str(tmp_path / "theirs.gguf")), chat) is chat  # fits SmolLM2 only
    assert make_explain_model(Settings(llm_adapter=str(tmp_path / "tuned.gguf")), chat) is chat
    other = tmp_path / "other.gguf"
    other.write_bytes(b"")
    assert make_explain_model(Settings(explain_adapter=str(other)), chat).lora_path == str(other)
    with pytest.raises(LLMUnavailable, match="CHATREC_EXPLAIN_ADAPTER"):
        make_explain_model(Settings(explain_adapter=str(tmp_path / "missing.gguf")), chat)
