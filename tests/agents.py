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
    from agent.llm import LocalChatModel
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
            "catalog": catalog}


def build_agent(parts: dict, session_dir: Path, router=None, llm=None, rerank: str = "llm") -> Agent:
    return Agent(router=router or parts["router"], llm=llm or parts["llm"], tool=parts["tool"],
                 resolver=parts["resolver"], sessions=SessionStore(session_dir / "sessions.sqlite3"), rerank=rerank)
