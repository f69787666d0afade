"""The one way this project writes a file: whole or not at all.

Every writer puts its bytes in a temp file beside the target (a unique ``.<name>.*.part`` name from
:mod:`tempfile`, so two writers never share one and ``*.json``-style globs never see it), flushes
and fsyncs it, makes it ``0644`` (mkstemp's files are private; what we write is for reading) and
renames it over the target with :func:`os.replace`. If anything fails on the way the temp file is
removed, the target keeps its old content, and the exception goes on up.

- :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`write_json`: the whole content at once;
- :func:`atomic_open`: a file object to write into (JSON lines, streamed);
- :func:`atomic_path`: a path to hand a library that writes by name (``torch.save``, ``savefig``, gguf);
  it ends in ``.part``, so name the format where the library guesses it from the suffix;
- :func:`atomic_dir`: a folder filled in full, then swapped in for the old one (a peft adapter).

Standard library only: everything above (recsys, tools, agent, bench) may import it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o644
DIR_MODE = 0o755
TEMP_SUFFIX = ".part"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """``with atomic_path(target) as tmp: write(tmp)``: renamed over ``target`` when the block ends
    normally; removed, with ``target`` untouched, when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: Path | str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """``with atomic_open(target) as f: f.write(...)``; ``mode`` "w" (text, ``encoding``) or "wb"."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole new file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def write_json(path: Path | str, value: Any, *, indent: int | None = 2, ensure_ascii: bool = False) -> Path:
    """``value`` as UTF-8 JSON plus a final newline (indent 2, non-ASCII kept: models, metrics, runs).
    Serialised before anything is opened, so an unserialisable value leaves no trace."""
    text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii) + "\n"
    return atomic_write_text(path, text)


@contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """``with atomic_dir(target) as tmp: fill(tmp)``: a new folder beside ``target``, swapped in
    for it when the block ends normally (the old one is moved aside, then deleted; put back if the
    swap fails); removed, with ``target`` untouched, when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX))
    try:
        yield tmp
        for root, _, files in os.walk(tmp):
            for name in files:
                _fsync(Path(root) / name)
        os.chmod(tmp, DIR_MODE)  # mkdtemp makes it private
        aside = None
        if path.exists():
            aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            try:
                os.replace(path, aside)  # rename(2) may replace an empty folder
            except BaseException:
                aside.rmdir()
                raise
        try:
            os.replace(tmp, path)
        except BaseException:
            if aside is not None:
                os.replace(aside, path)
            raise
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def data_home() -> Path:
    """Where fetched datasets, models and indexes are cached (``CHATREC_HOME`` overrides)."""
    return Path(os.environ.get("CHATREC_HOME") or Path.home() / ".cache" / "chatrec").expanduser()


__all__ = ["atomic_dir", "atomic_open", "atomic_path", "atomic_write_bytes", "atomic_write_text", "data_home", "write_json"]
