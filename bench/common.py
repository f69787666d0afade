"""Small helpers shared by the bench scripts: machine description and the JSON last line."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def emit(figures: dict) -> None:
    """Print the figures as the last line, one JSON object (other tools parse it)."""
    figures = {"date": dt.date.today().isoformat(), "machine": machine(), **figures}
    print(json.dumps(figures), flush=True)
