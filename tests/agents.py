"""The real agent's parts, built once per test session and shared by the agent's tests and its
front doors (web page, Slack, scripted dialogues): a LightGCN trained here on ml-100k, a chromadb
store of the real catalog's ml-100k movies plus a slice of cold movies and books, the shipped
SmolLM2 with the tuned router adapter. Each test gets its own session file."""

from __future__ import annotations

from pathlib import Path

from agent.agent import Agent
from agent.state import SessionStore


def build_parts(chatrec_home: Path, catalog_slice, work_dir: Path) -> dict:
    from agent.router import make_router
    from agent.config import Settings
    from agent.intent import load_intent_reader
    from agent.llm import LocalChatModel
    from agent.stance import load_stance_reader
    from recsys.datasets import load
    from recsys.train import TrainConfig
    from recsys.workflow import train_dataset
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog, load_catalog
    from tools.cold_start import with_cold_items
    from tools.item_store import ItemStore
    from tools.resolve import TitleResolver

    full = load_catalog(chatrec_home, progress=False)
    items = {i.item_id: i for i in full if i.warm} | {i.item_id: i for i in catalog_slice}
    catalog = Catalog(list(items.values()))
    store = ItemStore(work_dir / "chroma")
    store.build(catalog.items, progress=False)
    recommender, _ = train_dataset("ml-100k", TrainConfig(epochs=25, patience=25), out_dir=work_dir / "model",
                                   home=chatrec_home, progress=False)
    recommender = with_cold_items(recommender, catalog, store)
    llm = LocalChatModel()
    best_first = load("ml-100k", chatrec_home, progress=False).items_best_first()
    return {"tool": CandidateTool(recommender, catalog, store, best_first=best_first),
            "resolver": TitleResolver(catalog, store), "llm": llm, "router": make_router(Settings(), llm),
            "catalog": catalog, "stance_reader": load_stance_reader(),
            "intent_reader": load_intent_reader()}


def build_agent(parts: dict, session_dir: Path, router=None, llm=None, rerank: str = "llm") -> Agent:
    return Agent(router=router or parts["router"], llm=llm or parts["llm"], tool=parts["tool"],
                 resolver=parts["resolver"], sessions=SessionStore(session_dir / "sessions.sqlite3"), rerank=rerank,
                 stance_reader=parts["stance_reader"], intent_reader=parts["intent_reader"])  # as in the product


def endpoint_agent(parts: dict, session_dir: Path, base_url: str) -> Agent:
    """The same agent with its LLM behind an OpenAI-compatible endpoint (a real
    ``agent.llama_server``): the few-shot router and every reply go over HTTP."""
    from agent.llm import OpenAIChatModel
    from agent.router import Router

    llm = OpenAIChatModel(base_url=base_url, model="smollm2", timeout=120, extra_body={"repeat_penalty": 1.0})
    return build_agent(parts, session_dir, router=Router(llm, mode="few-shot"), llm=llm, rerank="graph")


class SideBySide:
    """The real agent, counting the turns in flight at once: each turn (``respond`` or ``stream``)
    first waits up to ``partner_wait`` seconds for another turn to be in flight, then runs. Two
    turns a front door lets run together are both seen in flight (``most == 2``); a door that runs
    one at a time makes the first wait out its time alone (``most == 1``). ``turns`` lists
    (session id, text) in the order turns began."""

    def __init__(self, agent: Agent, partner_wait: float) -> None:
        import threading

        self._agent, self.partner_wait = agent, partner_wait
        self._changed = threading.Condition()
        self.in_flight = self.most = 0
        self.turns: list[tuple[str, str]] = []

    def __getattr__(self, name: str):
        return getattr(self._agent, name)

    def _begin(self, session_id: str, text: str) -> None:
        with self._changed:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.turns.append((session_id, text))
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.in_flight > 1, timeout=self.partner_wait)

    def _end(self) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def respond(self, session_id: str, text: str, *args, **kwargs):
        self._begin(session_id, text)
        try:
            return self._agent.respond(session_id, text, *args, **kwargs)
        finally:
            self._end()

    def stream(self, session_id: str, text: str, *args, **kwargs):
        self._begin(session_id, text)
        try:
            yield from self._agent.stream(session_id, text, *args, **kwargs)
        finally:
            self._end()
