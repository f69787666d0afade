"""Small helpers shared by the bench scripts: machine description and the JSON last line."""

from __future__ import annotations

import datetime as dt
import json
import os

from agent.evals.runs import machine
from recsys.io import atomic_path


def emit(figures: dict) -> None:
    """Print the figures as the last line, one JSON object (other tools parse it)."""
    figures = {"date": dt.date.today().isoformat(), "machine": machine(), **figures}
    print(json.dumps(figures), flush=True)


def line_plot(series: dict[str, tuple[list[float], list[float]]], path, xlabel: str, ylabel: str,
              title: str, colors: list[str] | None = None) -> None:
    """One PNG with a line per labelled (xs, ys) series (matplotlib from the bench extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n, (label, (xs, ys)) in enumerate(series.items()):
        ax.plot(xs, ys, label=label, color=colors[n] if colors else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:  # its name ends in .part: name the format the target's suffix says
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:] or fig.canvas.get_default_filetype(),
                    dpi=110)
    plt.close(fig)
