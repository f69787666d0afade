"""recsys.io: every file is written whole (temp beside it, fsync, rename) or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recsys import io as rio


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_json_content_format_and_mode(tmp_path: Path) -> None:
    path = rio.write_json(tmp_path / "a" / "run.json", {"ü": [1, 2], "b": None})  # the folder is made
    assert path.read_bytes() == b'{\n  "\xc3\xbc": [\n    1,\n    2\n  ],\n  "b": null\n}\n'  # indent 2, UTF-8, final newline
    assert path.stat().st_mode & 0o777 == 0o644
    assert _names(path.parent) == ["run.json"]


def test_text_and_bytes_and_open(tmp_path: Path) -> None:
    rio.atomic_write_text(tmp_path / "t.txt", "één\nline\n")
    assert (tmp_path / "t.txt").read_bytes() == "één\nline\n".encode()
    rio.atomic_write_bytes(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    with rio.atomic_open(tmp_path / "l.jsonl") as f:
        f.write('{"x": 1}\n')
        assert not (tmp_path / "l.jsonl").exists()  # nothing there until the block ends
    assert (tmp_path / "l.jsonl").read_text(encoding="utf-8") == '{"x": 1}\n'
    for name in ("t.txt", "b.bin", "l.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    with pytest.raises(ValueError):
        with rio.atomic_open(tmp_path / "x", "a"):
            pass
    assert _names(tmp_path) == ["b.bin", "l.jsonl", "t.txt"]


def test_two_writes_replace_and_leave_no_stray_files(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    rio.write_json(path, {"n": 1})
    rio.write_json(path, {"n": 2})
    assert json.loads(path.read_text()) == {"n": 2}
    assert _names(tmp_path) == ["metrics.json"]


def test_unserialisable_json_keeps_the_old_file(tmp_path: Path) -> None:
    path = rio.write_json(tmp_path / "run.json", {"old": True})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        rio.write_json(path, {"bad": object()})
    assert path.read_bytes() == before
    assert _names(tmp_path) == ["run.json"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_mid_write_keeps_the_old_file_and_no_temp(tmp_path: Path, error: type[BaseException]) -> None:
    path = rio.atomic_write_bytes(tmp_path / "model.pt", b"old")
    seen = []

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        seen.append(tmp)
        raise error("writer died")

    with pytest.raises(error):
        with rio.atomic_path(path) as tmp:
            assert tmp.parent == tmp_path and tmp.name != path.name  # beside the target, its own name
            half_then_fail(tmp)
    with pytest.raises(error):
        with rio.atomic_open(path, "wb") as f:
            f.write(b"half")
            raise error("writer died")
    assert path.read_bytes() == b"old"
    assert not seen[0].exists()
    assert _names(tmp_path) == ["model.pt"]


def test_failed_rename_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = rio.atomic_write_text(tmp_path / "added.jsonl", "old\n")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        rio.atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert _names(tmp_path) == ["added.jsonl"]


def test_temp_names_are_unique_and_hidden(tmp_path: Path) -> None:
    target = tmp_path / "same.json"
    with rio.atomic_path(target) as one, rio.atomic_path(target) as two:
        assert one != two
        assert one.name.startswith(".same.json.") and one.name.endswith(".part")
        one.write_text("1")
        two.write_text("2")
    assert target.read_text() == "1"  # the outer block ends last: its rename wins
    assert _names(tmp_path) == ["same.json"]


def test_atomic_dir_swaps_a_folder_in_whole(tmp_path: Path) -> None:
    target = tmp_path / "adapter"
    with rio.atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"v1")
    assert (target / "weights.bin").read_bytes() == b"v1"
    assert target.stat().st_mode & 0o777 == 0o755

    with pytest.raises(RuntimeError):
        with rio.atomic_dir(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"half")
            raise RuntimeError("save died")
    assert _names(target) == ["weights.bin"] and (target / "weights.bin").read_bytes() == b"v1"
    assert _names(tmp_path) == ["adapter"]

    with rio.atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert _names(target) == ["config.json"]  # the old folder's files are gone with it
    assert _names(tmp_path) == ["adapter"]


def test_atomic_dir_puts_the_old_folder_back_when_the_swap_fails(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "adapter"
    with rio.atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"v1")
    real_replace = os.replace

    def refuse_the_new_one(src, dst):
        if Path(src).name.endswith(rio.TEMP_SUFFIX):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_the_new_one)
    with pytest.raises(OSError, match="disk full"):
        with rio.atomic_dir(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"v2")
    assert (target / "weights.bin").read_bytes() == b"v1"
    assert _names(tmp_path) == ["adapter"]


def test_io_imports_nothing_above_recsys() -> None:
    source = Path(rio.__file__).read_text(encoding="utf-8")
    assert "import agent" not in source and "from agent" not in source
    assert "import tools" not in source and "from tools" not in source
