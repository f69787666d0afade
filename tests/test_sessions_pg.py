"""Sessions in a real PostgreSQL (Debian's packages; .ci/run installs them), started by the
fixture in a temp directory on 127.0.0.1 and stopped after: the schema its migrations create,
the same JSON as the SQLite store, one transaction per turn, a per-session lock that holds across
processes while other sessions go on, and a database that goes away (a clear error, nothing
half-saved, and the next turn works once it is back)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from agent.state import DialogueState, SessionBusy, SessionError, SessionStore, open_sessions
from tests.servers import PostgresServer

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(PostgresServer.missing() is not None, reason=str(PostgresServer.missing()))


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        yield server


@pytest.fixture
def url(pg: PostgresServer) -> str:
    return pg.create_database("t_" + uuid.uuid4().hex[:10])


@pytest.fixture
def store(url: str):
    from agent.sessions_pg import PgSessionStore

    return PgSessionStore(url)


def _columns_sqlite(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return [(r[1], r[2]) for r in db.execute("PRAGMA table_info(sessions)")]


def test_migrations_create_the_sqlite_schema_once(url: str, tmp_path: Path) -> None:
    import psycopg

    from agent.sessions_pg import MIGRATIONS, PgSessionStore

    first = PgSessionStore(url)
    assert first.schema_version() == max(v for v, _, _ in MIGRATIONS)
    assert PgSessionStore(url).migrate() == []  # a second process applies nothing
    with psycopg.connect(url) as conn:
        pg_columns = conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'sessions' ORDER BY ordinal_position").fetchall()
        recorded = conn.execute("SELECT version FROM chatrec_migrations ORDER BY version").fetchall()
    assert [r[0] for r in recorded] == [v for v, _, _ in MIGRATIONS]
    SessionStore(tmp_path / "s.sqlite3")
    sqlite_columns = _columns_sqlite(tmp_path / "s.sqlite3")
    assert [c for c, _ in pg_columns] == [c for c, _ in sqlite_columns] == ["id", "user_id", "created", "updated", "state"]
    kinds = {"TEXT": "text", "REAL": "double precision"}
    assert [t for _, t in pg_columns] == [kinds[t] for _, t in sqlite_columns]


def test_processes_starting_together_migrate_once(url: str) -> None:
    from agent.sessions_pg import PgSessionStore

    results, errors = [], []

    def open_one() -> None:
        try:
            results.append(PgSessionStore(url).migrate())
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [[]] * 4


def test_the_same_state_and_json_as_the_sqlite_store(store, tmp_path: Path) -> None:
    lite = SessionStore(tmp_path / "s.sqlite3")
    state = DialogueState("s1", user_id="196")
    state.add_turn("user", "I loved Fargo — «quiet» films", intent="recommend")
    state.add_turn("assistant", "Here are 2 movies", intent="recommend", items=["ml100k:1", "ml100k:50"])
    state.like("ml100k:50")
    state.update_constraints(genres=["Drama"], year_from=1990, year_to=1999, without=["horror"])
    lite.save(state)
    saved_at = state.updated
    store.save(state)
    assert store.get("s1") == state
    state.updated = saved_at
    assert lite.get("s1") == state  # the same state but for the moment it was saved
    import json

    import psycopg

    with psycopg.connect(store.url) as conn:
        in_pg = json.loads(conn.execute("SELECT state FROM sessions WHERE id = 's1'").fetchone()[0])
    with sqlite3.connect(lite.path) as db:
        in_sqlite = json.loads(db.execute("SELECT state FROM sessions WHERE id = 's1'").fetchone()[0])
    assert in_pg.pop("updated") > in_sqlite.pop("updated")
    assert list(in_pg) == list(in_sqlite) and in_pg == in_sqlite
    store.new(session_id="s2")
    assert [r["session_id"] for r in store.list()] == ["s2", "s1"]
    assert {r["session_id"]: r["turns"] for r in store.list()} == {"s1": 2, "s2": 0}
    assert store.get("nope") is None
    assert store.delete("s2") and not store.delete("s2")
    assert [r["session_id"] for r in store.list()] == ["s1"]


def test_open_sessions_follows_the_setting(url: str, tmp_path: Path) -> None:
    from agent.config import Settings
    from agent.sessions_pg import PgSessionStore

    assert isinstance(open_sessions(Settings(home=tmp_path)), SessionStore)
    assert isinstance(open_sessions(Settings(home=tmp_path, sessions_url=url)), PgSessionStore)
    with pytest.raises(SessionError, match="postgresql://"):
        open_sessions(Settings(home=tmp_path, sessions_url="mysql://x@y/z"))


def _turn(store, session_id: str, text: str, pause: float) -> None:
    """What a turn does with its session: read, think (``pause``), add both sides, save."""
    with store.lock(session_id):
        state = store.get_or_new(session_id)
        time.sleep(pause)
        state.add_turn("user", text)
        state.add_turn("assistant", f"re: {text}")
        store.save(state)


def test_turns_of_one_session_never_interleave_across_processes_and_threads(url: str) -> None:
    from agent.sessions_pg import PgSessionStore

    # two stores = two processes' worth of in-process locks: only the database lock is shared
    stores = [PgSessionStore(url), PgSessionStore(url)]
    threads = [threading.Thread(target=_turn, args=(stores[k % 2], "same", f"turn {k}", 0.05)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    turns = stores[0].get("same").turns
    users = [t.text for t in turns if t.role == "user"]
    assert sorted(users) == sorted(f"turn {k}" for k in range(8))  # none lost
    assert [t.text for t in turns] == [x for u in users for x in (u, f"re: {u}")]  # never interleaved


def test_turns_of_different_sessions_run_side_by_side(store) -> None:
    held = threading.Event()
    release = threading.Event()

    def long_turn() -> None:
        with store.lock("slow"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=long_turn)
    t.start()
    assert held.wait(10)
    started = time.monotonic()
    _turn(store, "other", "hello", 0)
    assert time.monotonic() - started < 2  # not waiting for "slow"
    with pytest.raises(SessionBusy, match="still running"):
        with store.lock("slow", timeout=0.3):
            pass
    release.set()
    t.join()
    with store.lock("slow", timeout=5):
        pass
    assert len(store.locks) == 0  # no lock kept for sessions nobody is using


def test_a_failed_turn_leaves_the_session_as_it_was(store) -> None:
    _turn(store, "s", "first", 0)
    with pytest.raises(RuntimeError, match="model stopped"):
        with store.lock("s"):
            state = store.get("s")
            state.add_turn("user", "second")
            store.save(state)  # inside the turn's transaction: not yet stored
            raise RuntimeError("model stopped")
    assert [t.text for t in store.get("s").turns] == ["first", "re: first"]


HOLDER = """
import sys, time
from agent.sessions_pg import PgSessionStore
store = PgSessionStore(sys.argv[1])
with store.lock("s"):
    state = store.get("s")
    state.add_turn("user", "from the process that dies")
    store.save(state)
    print("saved, not committed", flush=True)
    time.sleep(60)
"""


def test_a_process_killed_mid_turn_leaves_no_half_turn_and_frees_the_session(store, url: str) -> None:
    _turn(store, "s", "first", 0)
    child = subprocess.Popen([sys.executable, "-c", HOLDER, url], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "saved, not committed"
        with pytest.raises(SessionBusy):  # the other process holds the session
            with store.lock("s", timeout=0.5):
                pass
        assert [t.text for t in store.get("s").turns] == ["first", "re: first"]  # its save is not visible
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    started = time.monotonic()
    _turn(store, "s", "second", 0)  # the lock went with the dead process's connection
    assert time.monotonic() - started < 5
    assert [t.text for t in store.get("s").turns if t.role == "user"] == ["first", "second"]


def test_a_dead_database_is_a_clear_error_and_the_next_turn_works_when_it_is_back(pg: PostgresServer, url: str) -> None:
    from agent.sessions_pg import PgSessionStore

    store = PgSessionStore(url.replace("chatrec@", "chatrec:s3cret-pw@"))
    _turn(store, "s", "first", 0)
    pg.stop()
    try:
        for call in (lambda: store.get("s"), lambda: _turn(store, "s", "lost", 0), store.list):
            with pytest.raises(SessionError) as caught:
                call()
            message = str(caught.value)
            assert "cannot be reached" in message and f"127.0.0.1:{pg.port}" in message
            assert "s3cret-pw" not in message
        with pytest.raises(SessionError, match="cannot be reached"):
            PgSessionStore(url)
    finally:
        pg.start()
    _turn(store, "s", "second", 0)
    assert [t.text for t in store.get("s").turns if t.role == "user"] == ["first", "second"]


def test_a_database_restarted_mid_turn_saves_nothing_of_it(pg: PostgresServer, url: str) -> None:
    from agent.sessions_pg import PgSessionStore

    store = PgSessionStore(url)
    _turn(store, "s", "first", 0)
    with pytest.raises(SessionError, match="nothing of it was saved"):
        with store.lock("s"):
            state = store.get("s")
            state.add_turn("user", "during the restart")
            pg.stop()  # clients are disconnected: the open transaction is gone
            pg.start()
            store.save(state)
    assert [t.text for t in store.get("s").turns if t.role == "user"] == ["first"]
    _turn(store, "s", "after", 0)
    assert [t.text for t in store.get("s").turns if t.role == "user"] == ["first", "after"]
