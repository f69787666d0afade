"""What the ``chatrec`` commands share: settings, errors, JSON output, one input or a file of them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.config import Settings

# Options several commands take, declared once.
BackendOption = Annotated[Optional[str], typer.Option(help="local (default) or openai")]
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]


def load_settings(backend: str | None = None) -> Settings:
    """The settings, with ``--backend`` (when a command takes it) over env and file."""
    settings = Settings(**({"llm_backend": backend} if backend else {}))
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    return settings


def fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def echo_json(value) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


def one_or_file(text: str | None, file: Path | None, what: str) -> list[str]:
    """The inputs of a command that takes one ``text`` or a ``--file`` with one per line."""
    if bool(text and text.strip()) == bool(file):
        fail(f"give one non-empty {what}, or --file with one {what} per line (not both)")
    if text:
        return [text]
    try:
        return [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")
