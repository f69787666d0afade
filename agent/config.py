"""One settings object for the whole product.

Read from ``CHATREC_*`` environment variables, then an optional TOML file
(``CHATREC_CONFIG``, else ``./chatrec.toml`` if present); every default works offline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from recsys.io import data_home  # not recsys.data: that imports pandas


def _config_file() -> Path | None:
    explicit = os.environ.get("CHATREC_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("chatrec.toml")
    return local if local.exists() else None


CONVERSATION_SIZE = 10  # items per person (median) under which a graph was learned from conversations, not ratings


class TurnSettings(BaseModel):
    """The numbers of one agent turn (agent/agent.py, agent/router.py, agent/reading.py), named and
    typed. The defaults are the product's; set them in the TOML file's ``[turn]`` table or as
    ``CHATREC_TURN__<NAME>`` (e.g. ``CHATREC_TURN__MAX_COUNT=8``). Saved runs record them
    (agent/evals/runs.py)."""

    max_message_chars: int = Field(2000, ge=1, description="a longer message is cut to this many characters "
                                                           "(with a notice); the router reads no more")
    default_count: int = Field(5, ge=1, description="items in a recommendation when the message asks for no number")
    max_count: int = Field(10, ge=1, description="the most items a message may ask for (a larger count is not "
                                                 "believed); the web page has this many card places")
    candidates: int = Field(20, ge=1, description="candidates the recommender hands the re-ranker (eval-rerank and "
                                                  "the instruction data use the same number)")
    context_turns: int = Field(4, ge=1, description="earlier turns of the dialogue the router is given")
    transcript_router: bool = Field(
        False, description="read a transcript's turns (Agent.read_turn: a dialogue held elsewhere, ReDial) through "
                           "the router; off (the default), from the words alone: titles and how they are spoken "
                           "of, genres, years, domain, without an LLM call (ReDial valid, first 300 lines: R@10 "
                           "0.110 words vs 0.095 router, 0.18 vs 1.04 s a line; bench/RESULTS.md)")
    mention_match: int = Field(85, ge=0, le=100, description="rapidfuzz score (0-100) at which a title the router "
                                                             "reports counts as written in the message or as one of "
                                                             "the list just shown ('that Fargo one')")
    title_share: float = Field(0.6, ge=0, le=1, description="share of a joined mention ('Toy Story and Aladdin') "
                                                            "the catalog titles spotted in it must cover to be "
                                                            "taken as those titles")
    earliest_year: int = Field(1870, description="a year the router reports before this (or after next year) is "
                                                 "dropped as impossible")
    this_year: int | None = Field(None, description="the year the words are read as of: 'recent', 'newer', 'latest' "
                                                    "count back from it; unset, today's. Dialogues written earlier "
                                                    "are read as of their own time (chatrec eval-crs sets it from "
                                                    "the catalogue file: its newest film's year)")
    profile_titles: int = Field(10, ge=0, description="titles of a dataset user's history shown to the re-ranker "
                                                      "when the dialogue names no liked item")
    dialogue_turns: int = Field(2, ge=1, description="last turns of the dialogue shown to the re-ranker")
    dialogue_chars: int = Field(160, ge=0, description="characters of each of those turns shown to the re-ranker")
    router_max_tokens: int = Field(160, ge=1, description="tokens the router's JSON answer may take")
    chitchat_sentences: int = Field(2, ge=1, description="sentences of a chit-chat reply kept")
    chitchat_max_tokens: int = Field(60, ge=1, description="tokens a chit-chat reply may take")
    fold_in: Literal["auto", "cosine", "dot"] = Field(
        "auto", description="how a person known by the titles they named is matched in the graph: 'cosine' "
                            "to the named items' direction (better for MovieLens chat users, hit rate 0.44 vs "
                            "0.33), 'dot', the fold-in's dot product, which favours popular items (better on "
                            "ReDial's conversations graph; bench/RESULTS.md, 'Real dialogues'), or 'auto': dot "
                            "for a graph learned from conversations (its people named few items each, median "
                            f"under {CONVERSATION_SIZE}), cosine for one learned from ratings")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATREC_", extra="ignore", env_nested_delimiter="__")

    home: Path = Field(default_factory=data_home, description="data home: datasets, models, indexes")
    dataset: str = Field("ml-100k", description="default dataset")
    graph_dataset: str = Field("ml-100k", description="the ratings the agent's graph recommender is trained on: "
                                                      "ml-100k (films to 1998), ml-latest-small (to 2016) or a "
                                                      "dataset from `chatrec data movie-graph` (catalogue films, "
                                                      "with conversations); trained on first use")
    device: str = Field("cpu", description="torch device for training: cpu or cuda")
    threads: int | None = Field(None, description="torch CPU threads (default: torch's choice)")
    log_level: str = "INFO"
    llm_backend: Literal["local", "openai"] = Field("local", description="local (llama.cpp, offline) or openai "
                                                                        "(any OpenAI-compatible endpoint)")
    llm_model: str | None = Field(None, description="local: a GGUF path (default: the shipped SmolLM2-135M) or a "
                                                    "transformers model folder (T5 / Flan-T5 or causal); openai: the "
                                                    "model name")
    llm_adapter: Path | None = Field(None, description="local: a LoRA adapter on the model (a llama.cpp adapter GGUF "
                                                       "for a GGUF model, a peft folder for a transformers one); "
                                                       "default: the one `chatrec tune train` saved in the data home, "
                                                       "if any; 'none': the base model alone")
    explain_adapter: str | None = Field(None, description="explanations: the llama.cpp LoRA adapter put on the "
                                                          "local model to write them (default: the shipped "
                                                          "agent/data/explain_lora.gguf with the default local "
                                                          "model; `chatrec tune explain` makes one); 'off': the "
                                                          "configured model as it is")
    xrec_adapter: Path | None = Field(None, description="explanations written by the local model with XRec's "
                                                        "graph adapter (a folder `chatrec xrec train --pairs` "
                                                        "saved); default: off (the configured LLM, prompt only)")
    conversation_ranker: str | None = Field(None, description="the learned order of a conversation graph's candidates "
                                                              "(a JSON file `python -m bench.crs_folds --save-ranker` "
                                                              "writes; default: the shipped tools/data/conversation_ranker"
                                                              ".json); 'off': the sources' own order. MovieLens graphs "
                                                              "never use it")
    stance_reader: str | None = Field(None, description="how a title is spoken of, learned: the file `python -m "
                                                        "agent.tuning.stance_data` writes (default: the shipped "
                                                        "agent/data/stance_reader.safetensors); 'off': the word rules "
                                                        "alone")
    intent_reader: str = Field("shipped", description="what a turn asks for, learned from real seekers: 'shipped', "
                                                      "the default (agent/data/intent_reader.safetensors), or a file "
                                                      "`python -m agent.tuning.intent_data` writes; 'off': the router "
                                                      "and the reading's rules alone")
    llm_base_url: str | None = Field(None, description="openai backend: the endpoint, e.g. http://127.0.0.1:8000/v1")
    llm_api_key: str | None = Field(None, description="openai backend: the key (never logged)", repr=False)
    llm_timeout: float = Field(30.0, gt=0, description="seconds per LLM request")
    llm_retries: int = Field(2, ge=0, description="retries with backoff before giving up")
    llm_extra_body: dict | None = Field(None, description="openai backend: extra request fields (JSON), e.g. "
                                                          '{"repeat_penalty": 1.0} for llama_cpp.server')
    router_mode: Literal["auto", "tuned", "few-shot"] = Field(
        "auto", description="tuned: the default local model with the shipped router adapter; few-shot: prompting "
                            "with similar labelled examples (any model); auto: tuned when the default local model is used")
    router_adapter: Path | None = Field(None, description="the tuned router's llama.cpp LoRA adapter (default: the "
                                                          "shipped agent/data/router_lora.gguf; `chatrec tune-router` makes one)")
    router_head: Literal["off", "explain", "all"] = Field(
        "explain", description="check the router's intent with the intent head (a logistic regression on the "
                               "shipped MiniLM embedding of the message, agent/data/router_intent_head.jsonl). "
                               "explain: it may only turn the router's chit-chat into an explanation request "
                               "(\"why the third?\" with no list shown): held-out families 0.871 -> 0.935, ReDial "
                               "seekers unchanged; all: any intent (held-out 0.957, but ReDial's real seekers and a "
                               "French request read as chit-chat lose); off: the LLM alone. true / false mean all / off")

    @field_validator("router_head", mode="before")
    @classmethod
    def _head_from_switch(cls, value):  # CHATREC_ROUTER_HEAD=true predates the explain setting
        if isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0", "yes", "no", "on"):
            return "all" if str(value).lower() in ("true", "1", "yes", "on") else "off"
        return value
    rerank: Literal["graph", "llm", "pointwise", "fused"] = Field(
        "graph", description="how the agent orders the top candidates: graph (the recommender's scored order; "
                             "the default: no LLM re-ranker beat it with SmolLM2-135M, bench/RESULTS.md), llm "
                             "(Chat-Rec: the LLM writes the order, for stronger models), pointwise (InstructRec: "
                             "sorted by the LLM's P(yes) to 'would they enjoy it?', one ask per candidate) or fused "
                             "(the mean of that rank and the scored rank)")
    chroma_url: str | None = Field(None, description="a shared Chroma server (http://host:port) instead of the "
                                                     "on-disk item store")
    sessions_url: str | None = Field(None, description="where sessions are kept: unset, the SQLite file in the data "
                                                       "home (one process); postgresql://user@host:port/db, a "
                                                       "PostgreSQL database that several agent processes share "
                                                       "(CHATREC_SESSIONS_URL)", repr=False)
    turn_concurrency: int = Field(4, ge=1, description="openai backend: turns of different sessions one process "
                                                       "(web page, Slack bot, chatrec serve) runs at once; the local "
                                                       "in-process model always runs one at a time")
    serve_host: str = Field("127.0.0.1", description="chatrec serve: the address to listen on")
    serve_port: int = Field(8080, ge=0, le=65535, description="chatrec serve: the port to listen on")
    turn: TurnSettings = Field(default_factory=TurnSettings, description="the numbers of one agent turn "
                                                                        "(message length, counts, thresholds)")
    # the Slack bot (`chatrec slack`); tokens and the signing secret are never logged or shown
    slack_mode: Literal["socket", "http"] = Field(
        "socket", description="socket: Socket Mode (app-level token, no public URL); http: Events API requests "
                              "to /slack/events (signing secret)")
    slack_bot_token: str | None = Field(None, description="the bot token, xoxb-… (else SLACK_BOT_TOKEN)", repr=False)
    slack_app_token: str | None = Field(None, description="socket mode: the app-level token, xapp-… "
                                                          "(else SLACK_APP_TOKEN)", repr=False)
    slack_signing_secret: str | None = Field(None, description="http mode: the app's signing secret "
                                                               "(else SLACK_SIGNING_SECRET)", repr=False)
    slack_host: str = Field("127.0.0.1", description="http mode: the address to listen on")
    slack_port: int = Field(3000, ge=1, le=65535, description="http mode: the port to listen on")
    slack_api_url: str | None = Field(None, description="Slack Web API base URL (default https://slack.com/api/)")

    @model_validator(mode="after")
    def _slack_conventional_env(self) -> "Settings":
        """Slack's usual variable names count when the CHATREC_ ones (and the file) leave a value unset."""
        for name in ("slack_bot_token", "slack_app_token", "slack_signing_secret"):
            if getattr(self, name) is None and os.environ.get(name.upper()):
                setattr(self, name, os.environ[name.upper()])
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        path = _config_file()
        if path is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources
