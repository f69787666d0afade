"""Dialogue state, one per session, and where it is kept.

A session holds its turns, the items the person liked and disliked, the constraints that
are active (genres, years, domain — they accumulate and can be revised), the last
recommendation list in order (so "the second one" means something), and the dataset
user id when the session belongs to one. ``SessionStore`` keeps every session in SQLite
under the data home: each save is one transaction, so a crash never leaves half a state,
and a restart finds every session where it was. With ``CHATREC_SESSIONS_URL=postgresql://…``
they live in PostgreSQL instead (agent/sessions_pg.py, the same table and JSON); ``open_sessions``
picks the store from the settings.

A turn holds its session's lock (``store.lock(session_id)``) from reading the state to saving it,
so two turns of one session never interleave; turns of different sessions run side by side.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FORMAT = 1
SESSIONS_FILE = "sessions.sqlite3"  # in the data home
MAX_TURNS = 200  # older turns are dropped from the stored state (the router reads the recent ones)
LAST = -1  # a place in the last list: its last ("the last one"), whatever its length


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    text: str
    intent: str | None = None
    items: list[str] = field(default_factory=list)  # item ids shown in this turn, in order
    about: list[str] = field(default_factory=list)  # the item an explanation or an answer spoke of: "it" next
    at: float = field(default_factory=time.time)


@dataclass
class Constraints:
    genres: list[str] = field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    domain: str | None = None
    without: list[str] = field(default_factory=list)  # genres ruled out ("I hate horror")
    people: list[str] = field(default_factory=list)  # credited on what to suggest ("anything with Tom Hanks")
    about: list[str] = field(default_factory=list)  # what to look for, told after a list ("about friendship")
    # genres named as one kind of film by the last request that named genres ("a romantic comedy")
    together: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return (not self.genres and not self.without and self.year_from is None and self.year_to is None
                and self.domain is None and not self.people and not self.about)


@dataclass
class DialogueState:
    session_id: str
    user_id: str | None = None  # a dataset user, when the session belongs to one
    turns: list[Turn] = field(default_factory=list)
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    constraints: Constraints = field(default_factory=Constraints)
    last_recommendations: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    # -- what the person told us -----------------------------------------------------------

    def add_turn(self, role: str, text: str, intent: str | None = None, items: list[str] | None = None,
                 about: list[str] | None = None) -> Turn:
        turn = Turn(role, text, intent, list(items or []), list(about or []))
        self.turns.append(turn)
        del self.turns[:-MAX_TURNS]
        if role == "assistant" and items:
            self.last_recommendations = list(items)
        return turn

    def like(self, item_id: str) -> None:
        """Liking something takes it off the disliked list (people change their minds)."""
        if item_id in self.disliked:
            self.disliked.remove(item_id)
        if item_id not in self.liked:
            self.liked.append(item_id)

    def dislike(self, item_id: str) -> None:
        if item_id in self.liked:
            self.liked.remove(item_id)
        if item_id not in self.disliked:
            self.disliked.append(item_id)

    def update_constraints(self, genres: list[str] | None = None, year_from: int | None = None,
                           year_to: int | None = None, domain: str | None = None,
                           clear: list[str] | None = None, without: list[str] | None = None,
                           people: list[str] | None = None, about: list[str] | None = None,
                           together: list[str] | None = None) -> None:
        """New constraints add to the active ones ("only 90s" after "comedies" keeps both); a
        new year range, domain or people replace the old ones ("and with Meg Ryan?" after Tom
        Hanks asks for her films); ``clear`` names what to drop first ("any decade is fine" →
        ``["year"]``; also "genres", "domain", "people", "all"; the agent clears the genres
        when a request asks for others: ``Agent._apply_route``; "about" drops the description told
        after a list). ``about`` replaces the description ("movies about friendship"). ``together``:
        the genres this request names as one kind of film ("a romantic comedy"), kept until genres
        are named again."""
        for what in clear or ():
            if what in ("year", "all"):
                self.constraints.year_from = self.constraints.year_to = None
            if what in ("genres", "all"):
                self.constraints.genres, self.constraints.together = [], []
            if what == "all":
                self.constraints.without = []
            if what in ("domain", "all"):
                self.constraints.domain = None
            if what in ("people", "all"):
                self.constraints.people = []
            if what in ("about", "all"):
                self.constraints.about = []
        for genre in without or ():  # ruled out now: no longer wanted
            if genre.lower() in self.constraints.genres:
                self.constraints.genres.remove(genre.lower())
            if genre.lower() in self.constraints.together:
                self.constraints.together = []
            if genre.lower() not in self.constraints.without:
                self.constraints.without.append(genre.lower())
        if genres:  # the kind this request asks for, of the genres it asks for
            asked = {g.lower() for g in genres}
            self.constraints.together = [g.lower() for g in together or () if g.lower() in asked]
        for genre in genres or ():
            if genre.lower() in self.constraints.without:  # asked for again: no longer ruled out
                self.constraints.without.remove(genre.lower())
            if genre.lower() not in self.constraints.genres:
                self.constraints.genres.append(genre.lower())
        if year_from is not None or year_to is not None:
            self.constraints.year_from, self.constraints.year_to = year_from, year_to
        if domain is not None:
            self.constraints.domain = domain
        if people:
            self.constraints.people = list(people)
        if about:
            self.constraints.about = list(about)

    def named_so_far(self) -> set[str]:
        """The items this conversation has named: shown, spoken of, liked or disliked (a title
        that several items share is, said again, the one of them already named)."""
        return {*self.liked, *self.disliked, *(i for t in self.turns for i in (*t.items, *t.about))}

    def reference(self, position: int) -> str | None:
        """The item at 1-based ``position`` of the last recommendation list (-1: its last), if there is one."""
        if position == LAST and self.last_recommendations:
            return self.last_recommendations[-1]
        if 1 <= position <= len(self.last_recommendations):
            return self.last_recommendations[position - 1]
        return None

    # -- storage form ----------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({"format": STATE_FORMAT, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> DialogueState:
        row = json.loads(text)
        if row.pop("format", None) != STATE_FORMAT:
            raise ValueError("session saved by another version")
        row["turns"] = [Turn(**t) for t in row.get("turns", [])]
        row["constraints"] = Constraints(**row.get("constraints", {}))
        return cls(**row)


class SessionError(RuntimeError):
    """The session store cannot be used (unreadable file, damaged row, database down)."""


class SessionBusy(SessionError):
    """Another turn of the same session held its lock for longer than the caller would wait."""


class SessionLocks:
    """One lock per session id, in this process: a turn of session A waits for A's previous turn,
    never for B's. Locks exist only while someone holds or waits for them (no growth with the
    number of sessions ever seen). A lock may be released by another thread than the one that
    took it (a streamed turn is a generator that a web server steps from its worker threads)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # id -> [lock, users]

    @contextlib.contextmanager
    def hold(self, session_id: str, timeout: float | None = None) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(session_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            if not entry[0].acquire(timeout=-1 if timeout is None else timeout):
                raise SessionBusy(f"another turn of session {session_id!r} is still running; try again shortly")
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[session_id]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


def new_session_id() -> str:
    """A session id that is a capability: 192 random bits, URL-safe (nobody guesses another's)."""
    import secrets

    return secrets.token_urlsafe(24)


def open_sessions(settings) -> "SessionStore":
    """The session store the settings name: PostgreSQL when ``sessions_url`` is a postgresql://
    URL, else the SQLite file in the data home (the default)."""
    url = getattr(settings, "sessions_url", None)
    if not url:
        return SessionStore(settings.home / SESSIONS_FILE)
    if url.startswith(("postgresql://", "postgres://")):
        from agent.sessions_pg import PgSessionStore

        return PgSessionStore(url)
    if url.startswith("sqlite:///"):
        return SessionStore(url.removeprefix("sqlite:///"))
    raise SessionError("CHATREC_SESSIONS_URL must be a postgresql://user@host:port/database URL or "
                       f"sqlite:///path/to/sessions.sqlite3, not {url.split(':', 1)[0]}:…")


def turn_slots(settings) -> int:
    """How many turns of different sessions one process runs at once: 1 with the in-process local
    model (one llama.cpp context), ``turn_concurrency`` with the openai backend (the endpoint
    batches or queues them)."""
    if getattr(settings, "llm_backend", "local") != "openai":
        return 1
    return max(1, int(getattr(settings, "turn_concurrency", 1)))


def stored_state(session_id: str, text: str) -> DialogueState:
    """A session's stored JSON as its state; one that cannot be read says how to remove it."""
    try:
        return DialogueState.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise SessionError(f"session {session_id!r} cannot be read ({exc}); delete it with "
                           f"`chatrec sessions --delete {session_id}`") from exc


class SessionStore:
    """Every session, persisted in SQLite (``<data home>/sessions.sqlite3``). One process (one
    machine) at a time: several processes sharing sessions use PostgreSQL (agent/sessions_pg.py)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.locks = SessionLocks()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                db.execute("CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, user_id TEXT, "
                           "created REAL, updated REAL, state TEXT NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise SessionError(f"the session store {self.path} is not a usable SQLite file ({exc}); "
                               f"move it away to start with no sessions") from exc

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one transaction: committed on success, rolled back on error, closed."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers are not blocked while a turn is saved
            with db:
                yield db
        finally:
            db.close()

    def lock(self, session_id: str, timeout: float | None = None) -> contextlib.AbstractContextManager:
        """Hold this session for one turn (read, answer, save): another turn of it waits, up to
        ``timeout`` seconds (then :class:`SessionBusy`). In this process only: SQLite serves one."""
        return self.locks.hold(session_id, timeout)

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    def new(self, user_id: str | None = None, session_id: str | None = None) -> DialogueState:
        state = DialogueState(session_id or uuid.uuid4().hex[:12], user_id=user_id)
        self.save(state)
        return state

    def get(self, session_id: str) -> DialogueState | None:
        with self._connect() as db:
            row = db.execute("SELECT state FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return None if row is None else stored_state(session_id, row[0])

    def get_or_new(self, session_id: str, user_id: str | None = None) -> DialogueState:
        return self.get(session_id) or self.new(user_id, session_id)

    def save(self, state: DialogueState) -> None:
        """One transaction: the whole state or none of it."""
        state.updated = time.time()
        with self._connect() as db:
            db.execute("INSERT INTO sessions (id, user_id, created, updated, state) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, updated = excluded.updated, "
                       "state = excluded.state",
                       (state.session_id, state.user_id, state.created, state.updated, state.to_json()))

    def list(self) -> list[dict]:
        """Sessions, most recently used first: id, user, created, updated, turns."""
        with self._connect() as db:
            rows = db.execute("SELECT id, user_id, created, updated, json_array_length(state, '$.turns') "
                              "FROM sessions ORDER BY updated DESC").fetchall()
        return [{"session_id": r[0], "user_id": r[1], "created": r[2], "updated": r[3], "turns": r[4]} for r in rows]

    def delete(self, session_id: str) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0
