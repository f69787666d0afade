"""What a command loads before it answers: each check runs in a fresh interpreter, so a module
that another test already imported cannot hide an eager import (bench/RESULTS.md, "CLI start-up")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.items import GODFATHER

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "chromadb", "sentence_transformers", "tools.item_store", "recsys.recommender")


def _loaded_after(code: str) -> dict:
    """Run ``code`` in a new interpreter; it leaves a dict in ``result``, printed as JSON."""
    script = f"import json, sys\n{code}\nprint(json.dumps(result))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_command_line_and_the_router_start_without_torch_or_the_store() -> None:
    # `chatrec route` needs the settings and the router (then the LLM): never torch, chromadb or embeddings
    result = _loaded_after(
        "import agent.cli\n"
        "from agent.config import Settings\n"
        "from agent.router import make_router\n"
        "Settings()\n"
        f"result = {{'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}")
    assert result["heavy"] == []


def test_a_resolver_without_a_store_loads_no_embedding_model_or_torch() -> None:
    # guards tools.resolve against an eager import (with a store, resolve embeds only the mentions
    # its lexical pass leaves open: test_resolve.py)
    result = _loaded_after(
        "from tests.items import DUNE, FARGO, GODFATHER\n"
        "from tools.catalog import Catalog\n"
        "from tools.resolve import TitleResolver\n"
        "import tools.embeddings as emb\n"
        "found = TitleResolver(Catalog([FARGO, GODFATHER, DUNE])).resolve('the godfather')\n"
        "result = {'item': found.item.item_id, 'model_loaded': emb._model.cache_info().currsize,\n"
        "          'heavy': [m for m in ('sentence_transformers', 'chromadb', 'torch') if m in sys.modules]}")
    assert result == {"item": GODFATHER.item_id, "model_loaded": 0, "heavy": []}
