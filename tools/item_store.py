"""The item store: every catalog item's text, embedded with all-MiniLM-L6-v2, in chromadb.

On disk under ``<data home>/items/chroma`` (a ``PersistentClient``), or a shared Chroma
server when ``CHATREC_CHROMA_URL`` is set (``HttpClient``), so several app replicas can
read one store. Telemetry is off and the embedding function is always ours (chroma's
default would download an ONNX model).

Writes are upserts by item id, each item carrying a hash of its document, so a rebuild
re-embeds only new or changed items and an interrupted build resumes where it stopped.
The collection's metadata records the store format, the embedding model and whether the
last build finished; a store that was built by another format or model, or whose files
are damaged, is rebuilt with a message saying why, and an unfinished one is refused for
search until ``chatrec items build`` finishes it — never silently half-used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from tqdm.auto import tqdm

from recsys.io import atomic_write_text
from tools.catalog import CatalogItem, item_document
from tools.embeddings import DIMENSION, MODEL_NAME, ChromaEmbeddingFunction, embed
from tools.vocabulary import GENRE_ALSO, genre_key

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

log = logging.getLogger(__name__)

STORE_FORMAT = 1
COLLECTION = "chatrec_items"
URL_ENV = "CHATREC_CHROMA_URL"
BATCH = 256
GENERATION_FILE = "chatrec.generation"  # replaced on every write; readers in other processes watch it
# beside the chroma folder: {item_id: text} added to those items' embedded documents (what the
# catalogue knows beyond an item's own fields: a book's film, its author's adapted works), written by
# `chatrec items adaptations` (tools/cross_domain.py, document_extras)
EXTRAS_FILE = "document_extras.json"

# chroma System (one per store directory and process) -> the state of that store's
# chroma.sqlite3 the System has seen; see ItemStore._sync
_SEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class StoreError(RuntimeError):
    """The item store cannot answer (unreachable server, unfinished build, ...)."""


@dataclass(frozen=True)
class SearchHit:
    item_id: str
    title: str
    domain: str
    year: int | None
    genres: tuple[str, ...]
    author: str | None
    warm: bool
    score: float  # cosine similarity, higher is closer

    def to_dict(self) -> dict:
        return {"item_id": self.item_id, "title": self.title, "year": self.year, "domain": self.domain,
                "genres": list(self.genres), "author": self.author, "warm": self.warm,
                "score": round(self.score, 4)}


def store_path(home: Path | None = None) -> Path:
    from recsys.io import data_home

    return (Path(home) if home else data_home()) / "items" / "chroma"


def extras_path(home: Path | None = None) -> Path:
    from recsys.io import data_home

    return (Path(home) if home else data_home()) / "items" / EXTRAS_FILE


def read_extras(path: Path) -> dict[str, str]:
    """The extra document text by item id; {} when there is none (or, with a warning, when the
    file cannot be used: the store then embeds the catalogue's own documents)."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s (%s): items are embedded without their extra text", path, exc)
        return {}
    extras = data.get("extras") if isinstance(data, dict) else None
    if not isinstance(extras, dict):
        log.warning("ignoring %s: no 'extras' object", path)
        return {}
    return {str(k): v for k, v in extras.items() if isinstance(v, str) and v.strip()}


def store_document(item: CatalogItem, extras: dict[str, str] | None = None) -> str:
    """What the store embeds for ``item``: the catalogue's document plus its extra text, if any."""
    document = item_document(item)
    extra = (extras or {}).get(item.item_id)
    return f"{document} {extra.strip()}" if extra else document


def _document_hash(document: str) -> str:
    return hashlib.sha1(document.encode("utf-8")).hexdigest()[:16]


def _metadata(item: CatalogItem, document: str) -> dict:
    """Chroma metadata: scalars or non-empty lists only (it rejects None and [])."""
    meta: dict = {"title": item.title, "domain": item.domain, "warm": item.warm, "doc_hash": _document_hash(document)}
    if item.year is not None:
        meta["year"] = int(item.year)
    if item.genres:
        meta["genres"] = list(item.genres)
        meta["genre_keys"] = [g.lower() for g in item.genres]  # filters ignore case
    if item.author:
        meta["author"] = item.author
    if item.graph_item_id is not None:
        meta["graph_item_id"] = item.graph_item_id
    return meta


def where_clause(domain: str | None = None, year_from: int | None = None, year_to: int | None = None,
                 genres: Iterable[str] = (), warm: bool | None = None) -> dict | None:
    """Chroma ``where`` for the metadata filters (all must hold; genres: every one listed)."""
    conditions: list[dict] = []
    if domain:
        conditions.append({"domain": domain})
    if year_from is not None:
        conditions.append({"year": {"$gte": int(year_from)}})
    if year_to is not None:
        conditions.append({"year": {"$lte": int(year_to)}})
    for genre in genres:  # one kind under two catalogues' names ("Children's", IMDb's "Family") matches either
        names = [genre.lower(), *(other.lower() for other, ours in GENRE_ALSO.items() if genre_key(ours) == genre_key(genre))]
        either = [{"genre_keys": {"$contains": name}} for name in names]
        conditions.append(either[0] if len(either) == 1 else {"$or": either})
    if warm is not None:
        conditions.append({"warm": warm})
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


class ItemStore:
    """Search by meaning over the catalog, with metadata filters and "more like these"."""

    def __init__(self, path: Path | str | None = None, url: str | None = None) -> None:
        import chromadb
        from chromadb.config import Settings

        self.url = url if url is not None else os.environ.get(URL_ENV) or None
        self.path = None if self.url else Path(path) if path else store_path()
        self.extras = read_extras(self.path.parent / EXTRAS_FILE if self.path else extras_path())
        settings = Settings(anonymized_telemetry=False)
        try:
            if self.url:
                parsed = urlparse(self.url if "://" in self.url else f"http://{self.url}")
                self.client = chromadb.HttpClient(host=parsed.hostname or "localhost",
                                                  port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                                                  ssl=parsed.scheme == "https", settings=settings)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._open_local()
            self._collection = self._open_collection()
        except StoreError:
            raise
        except Exception as exc:  # chroma raises many kinds for damaged files / dead servers
            if self.url:
                raise StoreError(f"cannot reach the Chroma server at {self.url} ({type(exc).__name__}: {exc}); "
                                 f"is it running? Unset {URL_ENV} to use the local store") from exc
            self._collection = self._rebuild_damaged(exc)

    # -- opening, checking, repairing ------------------------------------------------------

    def _file_state(self) -> str | None:
        """The store's write generation: a token every ItemStore write replaces. (chroma.sqlite3's
        own mtime will not do: chroma touches it on reads too, which would reopen every call.)"""
        try:
            return (self.path / GENERATION_FILE).read_text()
        except OSError:
            return None

    def _open_local(self) -> None:
        import chromadb
        from chromadb.config import Settings

        state = self._file_state()  # before opening: a write in between only costs one extra reopen
        self.client = chromadb.PersistentClient(path=str(self.path), settings=Settings(anonymized_telemetry=False))
        self._system = self.client._system
        _SEEN.setdefault(self._system, state)  # a System this process already had keeps what it has seen

    def _sync(self) -> None:
        """See what other processes wrote to a local store. chroma keeps one System per directory
        and process, with the vector index in memory, and never re-reads what another process
        added: a long-running reader would not find items ``chatrec items add`` put in (and
        fetching them by id fails). When the write generation changed since this process's System read
        it, open a new System (instances still holding the old one keep it)."""
        if self.path is None:
            return
        state = self._file_state()
        if state is None or _SEEN.get(self._system) == state:
            return
        from chromadb.api.shared_system_client import SharedSystemClient

        key = str(self.path)
        cached = SharedSystemClient._identifier_to_system.get(key)
        if cached is not None and _SEEN.get(cached) != state:  # stale too: the next client starts a new one
            SharedSystemClient._identifier_to_system.pop(key, None)
            SharedSystemClient._identifier_to_refcount.pop(key, None)
        log.debug("item store at %s changed in another process: reopening it", self.path)
        self._open_local()
        self._collection = self.client.get_collection(COLLECTION, embedding_function=ChromaEmbeddingFunction())

    def _wrote(self) -> None:
        """Mark a write for other processes; this process's System holds what it just wrote."""
        if self.path is not None:
            token = f"{os.getpid()}-{time.time_ns()}"
            atomic_write_text(self.path / GENERATION_FILE, token)
            _SEEN[self._system] = token

    def _expected_metadata(self) -> dict:
        return {"chatrec_format": STORE_FORMAT, "embedding_model": MODEL_NAME, "dimension": DIMENSION}

    def _create(self):
        collection = self.client.create_collection(
            COLLECTION, embedding_function=ChromaEmbeddingFunction(),
            configuration={"hnsw": {"space": "cosine"}},
            metadata={**self._expected_metadata(), "complete": False})
        self._wrote()
        return collection

    def _open_collection(self):
        names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        if COLLECTION not in names:
            return self._create()
        collection = self.client.get_collection(COLLECTION, embedding_function=ChromaEmbeddingFunction())
        meta = collection.metadata or {}
        expected = self._expected_metadata()
        wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
        if wrong:
            log.warning("item store was built with %s, this version needs %s: rebuilding it from scratch",
                        wrong, {k: expected[k] for k in wrong})
            self.client.delete_collection(COLLECTION)
            return self._create()
        collection.count()  # touches the segment files: damage shows up here, not mid-search
        return collection

    def _forget_chroma_system(self) -> None:
        """Drop chroma's per-process System for this path. chroma caches one System per
        directory (even one whose start failed on damaged files) and hands it to every later
        ``PersistentClient`` of that path, so a new client would still see the damaged files."""
        from chromadb.api.shared_system_client import SharedSystemClient

        client = getattr(self, "client", None)
        if client is not None:
            try:
                client.close()
            except Exception:  # a half-opened client: nothing more to release
                pass
        key = str(self.path)
        system = SharedSystemClient._identifier_to_system.pop(key, None)
        SharedSystemClient._identifier_to_refcount.pop(key, None)
        if system is not None:
            try:
                system.stop()
            except Exception:  # it may never have started
                pass

    def _rebuild_damaged(self, exc: Exception):
        """A local store chroma cannot open: keep the damaged files aside, start empty."""
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        log.warning("item store at %s is damaged (%s: %s); moved it to %s and starting a new one — "
                    "run `chatrec items build` to fill it", self.path, type(exc).__name__, exc, aside)
        self._forget_chroma_system()
        shutil.move(str(self.path), str(aside))
        self.path.mkdir(parents=True)
        self._open_local()
        self.repaired_from = aside
        return self._create()

    @property
    def complete(self) -> bool:
        self._sync()
        if not (self._collection.metadata or {}).get("complete"):
            # the metadata is a snapshot from when this instance opened the collection: another
            # process (``chatrec items build``) may have finished the build since then
            self._collection = self.client.get_collection(COLLECTION, embedding_function=ChromaEmbeddingFunction())
        return bool((self._collection.metadata or {}).get("complete"))

    def _set_complete(self, value: bool) -> None:
        meta = {**self._expected_metadata(), "complete": value}
        self._collection.modify(metadata=meta)
        self._wrote()

    def _require_complete(self) -> None:
        if not self.complete:
            raise StoreError(f"the item store has an unfinished build ({self.count()} items so far); "
                             f"run `chatrec items build` to finish it")

    def count(self) -> int:
        self._sync()
        return self._collection.count()

    # -- writing --------------------------------------------------------------------------

    def upsert(self, items: Sequence[CatalogItem], progress: bool = True, desc: str = "embed items") -> int:
        """Embed and write the items that are new or changed; returns how many were written."""
        self._sync()
        documents = [store_document(item, self.extras) for item in items]
        stale: list[int] = []
        for start in range(0, len(items), 2048):  # which ids are missing or have another text
            chunk = items[start:start + 2048]
            got = self._collection.get(ids=[i.item_id for i in chunk], include=["metadatas"])
            known = {i: (m or {}).get("doc_hash") for i, m in zip(got["ids"], got["metadatas"])}
            stale += [start + n for n, item in enumerate(chunk)
                      if known.get(item.item_id) != _document_hash(documents[start + n])]
        bar = tqdm(total=len(stale), desc=desc, unit="item", disable=None if progress else True)
        for start in range(0, len(stale), BATCH):
            batch = stale[start:start + BATCH]
            docs = [documents[n] for n in batch]
            self._collection.upsert(ids=[items[n].item_id for n in batch], documents=docs,
                                    embeddings=embed(docs), metadatas=[_metadata(items[n], documents[n]) for n in batch])
            self._wrote()
            bar.update(len(batch))
        bar.close()
        return len(stale)

    def build(self, items: Sequence[CatalogItem], progress: bool = True) -> dict:
        """Make the store hold exactly ``items``: embed what is new or changed, drop what is gone."""
        started = time.perf_counter()
        self._set_complete(False)
        written = self.upsert(items, progress=progress)
        wanted = {item.item_id for item in items}
        existing = self._collection.get(include=[])["ids"]
        gone = [i for i in existing if i not in wanted]
        for start in range(0, len(gone), 5000):
            self._collection.delete(ids=gone[start:start + 5000])
            self._wrote()
        self._set_complete(True)
        report = {"items": self.count(), "embedded": written, "removed": len(gone),
                  "seconds": round(time.perf_counter() - started, 2)}
        log.info("item store build: %s", report)
        return report

    def add(self, items: Sequence[CatalogItem], progress: bool = False) -> int:
        """Run-time items: searchable as soon as this returns, no rebuild, no retraining."""
        self._require_complete()
        return self.upsert(items, progress=progress, desc="add items")

    # -- reading --------------------------------------------------------------------------

    def _hits(self, result: dict, exclude: set[str] = frozenset(), k: int | None = None) -> list[SearchHit]:
        hits = []
        for item_id, meta, distance in zip(result["ids"][0], result["metadatas"][0], result["distances"][0]):
            if item_id in exclude:
                continue
            hits.append(SearchHit(item_id=item_id, title=meta["title"], domain=meta["domain"], year=meta.get("year"),
                                  genres=tuple(meta.get("genres", ())), author=meta.get("author"),
                                  warm=bool(meta.get("warm")), score=1.0 - float(distance)))
        return hits[:k] if k is not None else hits

    def search_vector(self, vector: np.ndarray, k: int = 10, where: dict | None = None,
                      exclude: Iterable[str] = ()) -> list[SearchHit]:
        self._require_complete()  # also sees what other processes wrote (_sync)
        exclude = set(exclude)
        n = min(k + len(exclude), max(1, self.count()))
        result = self._collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=n,
                                        where=where, include=["metadatas", "distances"])
        return self._hits(result, exclude, k)

    def search(self, text: str, k: int = 10, domain: str | None = None, year_from: int | None = None,
               year_to: int | None = None, genres: Iterable[str] = (), warm: bool | None = None) -> list[SearchHit]:
        """Items whose text is nearest in meaning to ``text``, within the filters."""
        if not text or not text.strip():
            raise ValueError("search text is empty")
        return self.search_vector(embed([text])[0], k, where_clause(domain, year_from, year_to, genres, warm))

    def vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """Stored text embeddings, in the order asked; unknown ids raise ``KeyError``."""
        self._sync()
        got = self._collection.get(ids=list(item_ids), include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        missing = [i for i in item_ids if i not in by_id]
        if missing:
            raise KeyError(f"not in the item store: {', '.join(missing[:5])}"
                           + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        return np.asarray([by_id[i] for i in item_ids], dtype=np.float32).reshape(len(item_ids), DIMENSION)

    def more_like(self, item_ids: Sequence[str], k: int = 10, domain: str | None = None,
                  year_from: int | None = None, year_to: int | None = None, genres: Iterable[str] = (),
                  warm: bool | None = None) -> list[SearchHit]:
        """Items like these: the mean of their text embeddings as the query, themselves left out."""
        if not item_ids:
            raise ValueError("more_like needs at least one item")
        profile = self.vectors(item_ids).mean(axis=0)
        profile /= max(float(np.linalg.norm(profile)), 1e-12)
        return self.search_vector(profile, k, where_clause(domain, year_from, year_to, genres, warm), exclude=item_ids)
