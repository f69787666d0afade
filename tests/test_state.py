"""Dialogue state and its SQLite store: constraints accumulate and are revised, likes and
dislikes move, references resolve, and every session survives a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.state import MAX_TURNS, DialogueState, SessionError, SessionStore


def test_constraints_accumulate_and_can_be_revised() -> None:
    state = DialogueState("s1")
    state.update_constraints(genres=["Comedy"])
    state.update_constraints(year_from=1990, year_to=1999)  # "only 90s": comedy stays
    assert state.constraints.genres == ["comedy"] and (state.constraints.year_from, state.constraints.year_to) == (1990, 1999)
    state.update_constraints(genres=["romance", "comedy"], domain="movie")
    assert state.constraints.genres == ["comedy", "romance"] and state.constraints.domain == "movie"
    state.update_constraints(clear=["year"])  # "any decade is fine"
    assert state.constraints.year_from is None and state.constraints.year_to is None
    assert state.constraints.genres == ["comedy", "romance"]
    state.update_constraints(year_from=2001)
    assert (state.constraints.year_from, state.constraints.year_to) == (2001, None)
    state.update_constraints(people=["Tom Hanks"])
    state.update_constraints(genres=["drama"])  # a person stays like a genre ...
    assert state.constraints.people == ["Tom Hanks"]
    state.update_constraints(people=["Meg Ryan"])  # ... and another person asked for replaces them
    assert state.constraints.people == ["Meg Ryan"]
    state.update_constraints(about=["movies about friendship"])  # a kind of film told after a list
    state.update_constraints(about=["sad movies"])  # a new one replaces it
    assert state.constraints.about == ["sad movies"] and state.constraints.genres == ["comedy", "romance", "drama"]
    state.update_constraints(clear=["about"])
    assert state.constraints.about == []
    state.update_constraints(about=["sad movies"])
    state.update_constraints(clear=["all"])
    assert state.constraints.is_empty()


def test_genres_asked_as_one_kind_last_until_genres_are_named_again() -> None:
    state = DialogueState("kind")
    state.update_constraints(genres=["romance", "comedy"], together=["romance", "comedy"])  # "a romantic comedy"
    state.update_constraints(year_from=1990, year_to=1999)  # "from the 90s": still romantic comedies
    assert state.constraints.together == ["romance", "comedy"]
    state.update_constraints(genres=["drama"])  # "and some dramas": a genre named on its own
    assert state.constraints.together == [] and state.constraints.genres == ["romance", "comedy", "drama"]
    state.update_constraints(genres=["horror", "comedy"], together=["horror", "comedy"], clear=["genres"])
    state.update_constraints(without=["horror"])  # "no horror after all": the kind is gone
    assert state.constraints.together == [] and state.constraints.genres == ["comedy"]
    state.update_constraints(genres=["sci-fi", "horror"], together=["sci-fi", "horror"])
    state.update_constraints(clear=["genres"])
    assert state.constraints.together == [] and DialogueState.from_json(state.to_json()).constraints.together == []


def test_a_state_saved_before_people_were_kept_still_loads() -> None:
    import json

    row = json.loads(DialogueState("old").to_json())
    del row["constraints"]["people"], row["constraints"]["about"]
    loaded = DialogueState.from_json(json.dumps(row)).constraints
    assert loaded.people == [] and loaded.about == []


def test_likes_and_dislikes_move_and_references_point_into_the_last_list() -> None:
    state = DialogueState("s1")
    state.add_turn("user", "something like Heat")
    state.add_turn("assistant", "try these", intent="recommend", items=["127", "12", "187"])
    assert state.last_recommendations == ["127", "12", "187"]
    assert state.reference(2) == "12" and state.reference(4) is None and state.reference(0) is None
    state.like("12")
    state.dislike("12")  # changed their mind
    assert state.liked == [] and state.disliked == ["12"]
    state.like("12")
    assert state.liked == ["12"] and state.disliked == []
    state.add_turn("assistant", "happy to help")  # a turn without items keeps the last list
    assert state.last_recommendations == ["127", "12", "187"]


def test_sessions_survive_a_restart_and_can_be_listed_and_deleted(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SessionStore(path)
    state = store.new(user_id="196")
    state.add_turn("user", "sci-fi please")
    state.add_turn("assistant", "here", intent="recommend", items=["50", "172"])
    state.update_constraints(genres=["sci-fi"], year_to=1985)
    state.dislike("172")
    store.save(state)
    other = store.new()

    again = SessionStore(path)  # a new process would do the same
    loaded = again.get(state.session_id)
    assert loaded == DialogueState(**{**state.__dict__, "updated": loaded.updated})
    assert loaded.turns[1].items == ["50", "172"] and loaded.constraints.year_to == 1985
    listed = again.list()
    assert [row["session_id"] for row in listed] == [other.session_id, state.session_id]
    assert listed[1]["turns"] == 2 and listed[1]["user_id"] == "196"
    assert again.delete(other.session_id) and not again.delete(other.session_id)
    assert again.get(other.session_id) is None
    assert again.get_or_new("fresh").turns == [] and again.get("fresh") is not None


def test_turns_are_capped(tmp_path: Path) -> None:
    state = DialogueState("s")
    for n in range(MAX_TURNS + 5):
        state.add_turn("user", f"message {n}")
    assert len(state.turns) == MAX_TURNS and state.turns[0].text == "message 5"


def test_a_damaged_store_or_row_is_reported_not_half_used(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SessionError, match="not a usable SQLite file"):
        SessionStore(garbage)
    store = SessionStore(tmp_path / "sessions.sqlite3")
    store.new(session_id="broken")
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE sessions SET state = '{\"format\": 1, \"turns\": 3}' WHERE id = 'broken'")
    with pytest.raises(SessionError, match="broken"):
        store.get("broken")


def test_a_failed_save_leaves_the_previous_state(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions.sqlite3")
    state = store.new(session_id="s")
    state.add_turn("user", "hello")
    store.save(state)
    state.add_turn("user", object())  # not JSON-serialisable: the save must fail whole
    with pytest.raises(TypeError):
        store.save(state)
    assert [t.text for t in store.get("s").turns] == ["hello"]


def test_a_turn_holds_its_session_while_other_sessions_go_on(tmp_path: Path) -> None:
    import threading
    import time

    from agent.state import SessionBusy

    store = SessionStore(tmp_path / "sessions.sqlite3")
    order: list[str] = []

    def turn(session_id: str, text: str, pause: float) -> None:
        with store.lock(session_id):
            state = store.get_or_new(session_id)
            order.append(f"{text} start")
            time.sleep(pause)
            state.add_turn("user", text)
            store.save(state)
            order.append(f"{text} end")

    threads = [threading.Thread(target=turn, args=("a", f"a{k}", 0.05)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(t.text for t in store.get("a").turns) == ["a0", "a1", "a2", "a3"]  # no update lost
    assert all(order[i].split()[0] == order[i + 1].split()[0] for i in range(0, len(order), 2))  # never interleaved
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock("slow"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    turn("other", "hi", 0)  # another session is not kept waiting
    assert time.monotonic() - started < 2
    with pytest.raises(SessionBusy, match="still running"):
        with store.lock("slow", timeout=0.2):
            pass
    release.set()
    holder.join()
    assert len(store.locks) == 0


def test_the_sessions_setting_picks_the_store(tmp_path: Path) -> None:
    from agent.config import Settings
    from agent.state import new_session_id, open_sessions, turn_slots

    assert open_sessions(Settings(home=tmp_path)).path == tmp_path / "sessions.sqlite3"
    other = tmp_path / "elsewhere" / "s.sqlite3"
    assert open_sessions(Settings(home=tmp_path, sessions_url=f"sqlite:///{other}")).path == other
    with pytest.raises(SessionError, match="postgresql://"):
        open_sessions(Settings(home=tmp_path, sessions_url="redis://localhost"))
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and i.replace("-", "").replace("_", "").isalnum() for i in ids)
    assert turn_slots(Settings(llm_backend="local", turn_concurrency=8)) == 1  # one llama.cpp context
    assert turn_slots(Settings(llm_backend="openai", turn_concurrency=8)) == 8
