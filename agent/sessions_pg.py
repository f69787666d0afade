"""Sessions in PostgreSQL (``CHATREC_SESSIONS_URL=postgresql://user@host:port/database``).

The same table and the same JSON state as the SQLite store (agent/state.py), so several agent
processes — on one machine or many — can serve any session's next turn:

* **Migrations** create the schema: numbered steps in ``MIGRATIONS``, applied in order on
  opening, each recorded in ``chatrec_migrations``; processes starting together take a database
  lock first, so a step runs once.
* **One transaction per completed turn.** ``store.lock(session_id)`` opens a transaction that
  takes a transaction-scoped advisory lock on the session (``pg_advisory_xact_lock``); the turn's
  reads and its save go through that transaction, and its commit stores the turn and releases the
  lock together. A turn that fails, or a process that dies mid-turn, rolls back: the session is
  as it was before the turn, and the lock is free for the next one.
* **Turns of one session never interleave**: an in-process lock per session id (threads of this
  process) and the advisory lock (other processes). Turns of different sessions run side by side.
* **A database that cannot be reached is a clear error** (:class:`agent.state.SessionError`,
  naming the server, never the password); each operation opens its own connection, so a
  restarted database is used again by the next turn without a restart of the agent.

psycopg 3 (its binary wheel) is the driver.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterator

import psycopg
from psycopg import errors as pg_errors

from agent.state import DialogueState, SessionBusy, SessionError, SessionLocks, stored_state

# (version, what, SQL): append only; a step once released is never edited
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "the sessions table (the SQLite store's columns)",
     "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, user_id TEXT, created DOUBLE PRECISION, "
     "updated DOUBLE PRECISION, state TEXT NOT NULL)"),
    (2, "sessions listed newest first",
     "CREATE INDEX IF NOT EXISTS sessions_updated ON sessions (updated DESC)"),
]
_MIGRATION_LOCK = 0x63686174726563  # "chatrec": one process migrates at a time
CONNECT_TIMEOUT = 5  # seconds to reach the server before saying it cannot be reached


def _lock_key(session_id: str) -> int:
    """A session's advisory lock: 64 bits of its id's hash, as PostgreSQL's signed bigint."""
    return int.from_bytes(hashlib.blake2b(session_id.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def describe_url(url: str) -> str:
    """Where the database is, for messages: host, port, database and user — never the password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "PostgreSQL (an unreadable CHATREC_SESSIONS_URL)"
    host = parts.get("host") or "localhost"
    where = f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"
    return f"PostgreSQL at {where}" + (f" (user {parts['user']})" if parts.get("user") else "")


def _reason(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PgSessionStore:
    """Every session in PostgreSQL: the interface of :class:`agent.state.SessionStore`."""

    def __init__(self, url: str, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise SessionError(f"CHATREC_SESSIONS_URL is not a PostgreSQL URL ({_reason(exc)})") from None
        self.url, self.connect_timeout = url, connect_timeout
        self.locks = SessionLocks()
        self._held: dict[str, psycopg.Connection] = {}  # session id -> the transaction of its running turn
        self.migrate()

    def describe(self) -> str:
        return describe_url(self.url)

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, connect_timeout=max(1, round(self.connect_timeout)),
                                   application_name="chatrec")
        except psycopg.Error as exc:
            raise SessionError(f"the session database ({self.describe()}) cannot be reached: {_reason(exc)}. "
                               f"Is PostgreSQL running? (CHATREC_SESSIONS_URL)") from None

    def _failed(self, exc: psycopg.Error, what: str) -> SessionError:
        return SessionError(f"the session database ({self.describe()}) failed while {what}: {_reason(exc)}; "
                            f"nothing of it was saved")

    @contextlib.contextmanager
    def _transaction(self, session_id: str | None = None, what: str = "working") -> Iterator[psycopg.Connection]:
        """The running turn's transaction when ``session_id`` is locked here; otherwise a connection
        of its own for one transaction (committed on success, rolled back on error, closed)."""
        held = self._held.get(session_id) if session_id is not None else None
        if held is not None:
            try:
                yield held
            except psycopg.Error as exc:
                raise self._failed(exc, what) from None
            return
        conn = self._connect()
        try:
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise self._failed(exc, what) from None
        finally:
            conn.close()

    # -- schema --------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied, in order; returns their versions."""
        applied = []
        with self._transaction(what="creating the schema") as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS chatrec_migrations (version INTEGER PRIMARY KEY, "
                       "what TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)")
            done = {row[0] for row in db.execute("SELECT version FROM chatrec_migrations")}
            for version, what, sql in MIGRATIONS:
                if version not in done:
                    db.execute(sql)
                    db.execute("INSERT INTO chatrec_migrations (version, what, applied) VALUES (%s, %s, %s)",
                               (version, what, time.time()))
                    applied.append(version)
        return applied

    def schema_version(self) -> int:
        with self._transaction(what="reading the schema version") as db:
            row = db.execute("SELECT max(version) FROM chatrec_migrations").fetchone()
        return row[0] or 0

    # -- one turn ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, session_id: str, timeout: float | None = None) -> Iterator[None]:
        """Hold this session for one turn, across processes: its reads and save in one transaction
        that commits when the block ends normally (the turn is stored and the lock released at
        once) and rolls back otherwise. Another turn of it waits, up to ``timeout`` seconds (then
        :class:`agent.state.SessionBusy`)."""
        started = time.monotonic()
        with self.locks.hold(session_id, timeout):
            conn = self._connect()
            try:
                try:
                    if timeout is not None:
                        left_ms = max(1, int((timeout - (time.monotonic() - started)) * 1000))
                        conn.execute(f"SET LOCAL lock_timeout = {left_ms}")
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(session_id),))
                except pg_errors.LockNotAvailable:
                    raise SessionBusy(f"another turn of session {session_id!r} is still running (in another "
                                      f"process); try again shortly") from None
                except psycopg.Error as exc:
                    raise self._failed(exc, "locking the session") from None
                self._held[session_id] = conn
                try:
                    yield
                except BaseException:
                    with contextlib.suppress(psycopg.Error):
                        conn.rollback()
                    raise
                finally:
                    self._held.pop(session_id, None)
                try:
                    conn.commit()  # the turn's save and the lock's release, together
                except psycopg.Error as exc:
                    raise self._failed(exc, "saving the turn") from None
            finally:
                conn.close()

    # -- the SessionStore interface --------------------------------------------------------

    def new(self, user_id: str | None = None, session_id: str | None = None) -> DialogueState:
        state = DialogueState(session_id or uuid.uuid4().hex[:12], user_id=user_id)
        self.save(state)
        return state

    def get(self, session_id: str) -> DialogueState | None:
        with self._transaction(session_id, "reading a session") as db:
            row = db.execute("SELECT state FROM sessions WHERE id = %s", (session_id,)).fetchone()
        return None if row is None else stored_state(session_id, row[0])

    def get_or_new(self, session_id: str, user_id: str | None = None) -> DialogueState:
        return self.get(session_id) or self.new(user_id, session_id)

    def save(self, state: DialogueState) -> None:
        """The whole state or none of it: its own transaction, or the running turn's."""
        state.updated = time.time()
        with self._transaction(state.session_id, "saving a session") as db:
            db.execute("INSERT INTO sessions (id, user_id, created, updated, state) VALUES (%s, %s, %s, %s, %s) "
                       "ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, updated = excluded.updated, "
                       "state = excluded.state",
                       (state.session_id, state.user_id, state.created, state.updated, state.to_json()))

    def list(self) -> list[dict]:
        """Sessions, most recently used first: id, user, created, updated, turns."""
        with self._transaction(what="listing sessions") as db:
            rows = db.execute("SELECT id, user_id, created, updated, json_array_length((state::json) -> 'turns') "
                              "FROM sessions ORDER BY updated DESC").fetchall()
        return [{"session_id": r[0], "user_id": r[1], "created": r[2], "updated": r[3], "turns": r[4]} for r in rows]

    def delete(self, session_id: str) -> bool:
        with self._transaction(session_id, "deleting a session") as db:
            return db.execute("DELETE FROM sessions WHERE id = %s", (session_id,)).rowcount > 0


__all__ = ["MIGRATIONS", "PgSessionStore", "describe_url"]
