"""``chatrec serve``: the agent's HTTP API, served by uvicorn on 127.0.0.1 and called over real
HTTP. The requests that are refused, or that need no turn, run against an app whose agent only
records that it was reached (its session store is real: SQLite, or PostgreSQL from
tests/servers.py); the turns run on the real agent (tests/agents.py, ``model``)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.state import SESSIONS_FILE, SessionStore
from tests.servers import PostgresServer, free_port

MODEL_FIXTURES = {"real_api"}


class Unreached:
    """An agent for requests that must never reach it: any turn or feedback fails the test."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        def reached(*args, **kwargs):
            self.calls.append(name)
            raise AssertionError(f"the agent was reached: {name}{args}")
        return reached


@dataclass
class Api:
    url: str
    agent: object

    def call(self, method: str, path: str, body=None, raw: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict | str, dict]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                status, text, head = response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            status, text, head = exc.code, exc.read().decode(), dict(exc.headers)
        try:
            return status, json.loads(text) if text else {}, head
        except json.JSONDecodeError:
            return status, text, head


def start(app) -> tuple[str, callable]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(30)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def api(tmp_path: Path):
    from agent.server import create_app

    agent = Unreached(SessionStore(tmp_path / SESSIONS_FILE))
    url, stop = start(create_app(agent))
    yield Api(url, agent)
    stop()
    assert agent.calls == []


def test_the_schema_is_published_with_every_route(api: Api) -> None:
    status, schema, _ = api.call("GET", "/openapi.json")
    assert status == 200 and schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) >= {"/sessions", "/sessions/{session_id}", "/sessions/{session_id}/turns",
                          "/sessions/{session_id}/feedback", "/sessions/{session_id}/why", "/health"}
    assert "text/event-stream" in paths["/sessions/{session_id}/turns"]["post"]["responses"]["200"]["content"]
    turn_in = schema["components"]["schemas"]["TurnIn"]
    assert turn_in["required"] == ["text"]
    reply = schema["components"]["schemas"]["ReplyOut"]["properties"]
    assert {"session_id", "intent", "text", "items", "timings"} <= set(reply)


def test_the_schema_models_spell_out_the_agents_reply_field_for_field() -> None:
    """agent/server.py keeps its own copy of Reply / ReplyItem (so it starts without the agent's
    imports): a field added to one and not the other fails here."""
    from dataclasses import fields

    from agent.agent import Reply, ReplyItem
    from agent.server import ReplyItemOut, ReplyOut

    assert list(ReplyOut.model_fields) == [f.name for f in fields(Reply)]
    assert list(ReplyItemOut.model_fields) == [f.name for f in fields(ReplyItem)]


def test_session_ids_are_random_capabilities(api: Api) -> None:
    made = [api.call("POST", "/sessions", {}) for _ in range(20)]
    assert all(status == 201 for status, _, _ in made)
    ids = [body["session_id"] for _, body, _ in made]
    assert len(set(ids)) == 20 and all(len(i) == 32 for i in ids)
    assert len({i[:6] for i in ids}) > 15  # no shared prefix or counter
    status, state, _ = api.call("GET", f"/sessions/{ids[0]}")
    assert status == 200 and state["session_id"] == ids[0] and state["turns"] == [] and state["user_id"] is None
    status, body, _ = api.call("POST", "/sessions")  # no body at all is an anonymous session too
    assert status == 201 and len(body["session_id"]) == 32


def test_unknown_sessions_are_404_with_a_reason_and_other_doors_sessions_are_not_reachable(api: Api) -> None:
    store = api.agent.sessions
    for other in ("slack:T0:C1:1700000000.000100", "web-0123456789ab", "a" * 31):
        store.new(session_id=other)  # a web or Slack session in the same store
    unknown = uuid.uuid4().hex  # 32 characters, the right shape, never made
    for sid in ("slack:T0:C1:1700000000.000100", "web-0123456789ab", "a" * 31, unknown):
        quoted = urllib.request.quote(sid, safe="")
        for method, path, body in (("GET", "", None), ("DELETE", "", None), ("POST", "/turns", {"text": "hi"}),
                                   ("POST", "/feedback", {"item_id": "ml100k:1", "liked": True}),
                                   ("POST", "/why", {"item_id": "ml100k:1"})):
            status, answer, _ = api.call(method, f"/sessions/{quoted}{path}", body)
            assert status == 404, (sid, method, path, answer)
            assert "POST /sessions" in answer["detail"]
    assert store.get("web-0123456789ab") is not None  # untouched


def test_malformed_requests_are_422_with_the_field_named(api: Api) -> None:
    _, made, _ = api.call("POST", "/sessions", {})
    sid = made["session_id"]
    cases = [("/turns", {}, "text"), ("/turns", {"text": ""}, "text"), ("/turns", {"text": ["a"]}, "text"),
             ("/turns", {"text": "x" * 20_001}, "text"), ("/feedback", {"item_id": "ml100k:1"}, "liked"),
             ("/feedback", {"item_id": "ml100k:1", "liked": "maybe"}, "liked"), ("/why", {}, "item_id")]
    for path, body, field in cases:
        status, answer, _ = api.call("POST", f"/sessions/{sid}{path}", body)
        assert status == 422, (path, body, answer)
        assert any(field in map(str, error["loc"]) for error in answer["detail"]), answer
    status, answer, _ = api.call("POST", f"/sessions/{sid}/turns", raw=b"{not json")
    assert status == 422 and answer["detail"]
    status, answer, _ = api.call("POST", "/sessions", {"user_id": 7})
    assert status == 422
    status, state, _ = api.call("GET", f"/sessions/{sid}")
    assert state["turns"] == []  # nothing of the refused requests was kept


def test_one_sessions_state_is_never_visible_from_another(api: Api) -> None:
    _, a, _ = api.call("POST", "/sessions", {})
    _, b, _ = api.call("POST", "/sessions", {})
    store = api.agent.sessions
    state = store.get(a["session_id"])  # what a turn leaves behind, written by the real store
    state.add_turn("user", "my secret taste: Fargo")
    state.like("ml100k:100")
    store.save(state)
    _, seen_a, _ = api.call("GET", f"/sessions/{a['session_id']}")
    _, seen_b, _ = api.call("GET", f"/sessions/{b['session_id']}")
    assert [t["text"] for t in seen_a["turns"]] == ["my secret taste: Fargo"] and seen_a["liked"] == ["ml100k:100"]
    assert seen_b["turns"] == [] and seen_b["liked"] == [] and "Fargo" not in json.dumps(seen_b)
    status, _, _ = api.call("DELETE", f"/sessions/{a['session_id']}")
    assert status == 204
    assert api.call("GET", f"/sessions/{a['session_id']}")[0] == 404
    assert api.call("GET", f"/sessions/{b['session_id']}")[0] == 200


@pytest.mark.skipif(PostgresServer.missing() is not None, reason=str(PostgresServer.missing()))
def test_a_dead_session_database_is_503_with_a_reason_then_it_recovers() -> None:
    from agent.server import create_app
    from agent.sessions_pg import PgSessionStore

    with PostgresServer() as pg:
        agent = Unreached(PgSessionStore(pg.create_database("api")))
        url, stop = start(create_app(agent))
        api = Api(url, agent)
        try:
            _, made, _ = api.call("POST", "/sessions", {})
            pg.stop()
            for method, path, body in (("POST", "/sessions", {}), ("GET", f"/sessions/{made['session_id']}", None),
                                       ("POST", f"/sessions/{made['session_id']}/turns", {"text": "hello"})):
                status, answer, _ = api.call(method, path, body)
                assert status == 503, (path, answer)
                assert "cannot be reached" in answer["detail"] and str(pg.port) in answer["detail"]
            pg.start()
            status, state, _ = api.call("GET", f"/sessions/{made['session_id']}")
            assert status == 200 and state["turns"] == []
            assert api.call("POST", "/sessions", {})[0] == 201
        finally:
            stop()
    assert agent.calls == []


def test_serve_help_names_the_routes() -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for words in ("/sessions", "openapi.json", "--port", "CHATREC_SESSIONS_URL"):
        assert words in result.output


def test_serve_refuses_a_session_database_it_cannot_use_before_loading_anything(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    monkeypatch.setenv("CHATREC_HOME", str(tmp_path))
    for url, words in (("mysql://u@h/db", "postgresql://"),
                       (f"postgresql://chatrec@127.0.0.1:{free_port()}/none", "cannot be reached")):
        monkeypatch.setenv("CHATREC_SESSIONS_URL", url)
        result = CliRunner().invoke(app, ["serve", "--port", "0"])
        assert result.exit_code == 2 and words in result.output, result.output
    assert not (tmp_path / "items").exists()  # nothing was built


# ----------------------------------------------------------------- the real agent


def sse(api: Api, path: str, body: dict) -> list[tuple[str, dict]]:
    request = urllib.request.Request(api.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
    events = []
    with urllib.request.urlopen(request, timeout=300) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for block in response.read().decode().split("\n\n"):
            if block.strip():
                lines = dict(line.split(": ", 1) for line in block.splitlines())
                events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture(scope="module")
def real_api(agent_parts, tmp_path_factory: pytest.TempPathFactory):
    """The real agent behind the API, its sessions in PostgreSQL when it is installed."""
    from agent.server import create_app
    from tests.agents import build_agent

    agent = build_agent(agent_parts, tmp_path_factory.mktemp("api-sessions"), rerank="graph")
    pg = None
    if PostgresServer.missing() is None:
        from agent.sessions_pg import PgSessionStore

        pg = PostgresServer()
        agent.sessions = PgSessionStore(pg.create_database("api"))
    url, stop = start(create_app(agent, slots=1))
    yield Api(url, agent)
    stop()
    if pg is not None:
        pg.close()


def test_a_dialogue_over_http_json_and_streamed(real_api: Api) -> None:
    api = real_api
    _, made, _ = api.call("POST", "/sessions", {})
    sid = made["session_id"]
    status, reply, _ = api.call("POST", f"/sessions/{sid}/turns",
                                {"text": "I loved Toy Story and Aladdin. Recommend 3 movies"})
    assert status == 200 and reply["session_id"] == sid and reply["intent"] == "recommend"
    assert len(reply["items"]) == 3 and reply["timings"]["total"] > 0
    first = reply["items"][0]["item_id"]
    status, fb, _ = api.call("POST", f"/sessions/{sid}/feedback", {"item_id": first, "liked": False})
    assert status == 200 and first in fb["disliked"]
    assert api.call("POST", f"/sessions/{sid}/feedback", {"item_id": "ml100k:no-such", "liked": True})[0] == 404
    events = sse(api, f"/sessions/{sid}/turns?stream=true", {"text": "two more please, but comedies"})
    names = [name for name, _ in events]
    assert names[-1] == "reply" and names.count("reply") == 1 and "text" in names
    streamed = "".join(data["text"] for name, data in events if name == "text")
    final = events[-1][1]
    assert final["text"].strip() in streamed.strip() or streamed.strip() in final["text"]
    assert first not in [i["item_id"] for i in final["items"]]  # the 👎 counted
    second = reply["items"][1]
    status, why, _ = api.call("POST", f"/sessions/{sid}/why", {"item_id": second["item_id"]})
    assert status == 200 and why["intent"] == "explain" and why["items"][0]["item_id"] == second["item_id"]
    _, state, _ = api.call("GET", f"/sessions/{sid}")
    users = [t["text"] for t in state["turns"] if t["role"] == "user"]
    assert users == ["I loved Toy Story and Aladdin. Recommend 3 movies", "two more please, but comedies",
                     f"Why {second['title']}?"]
    assert [t["role"] for t in state["turns"]] == ["user", "assistant"] * 3
    _, other, _ = api.call("POST", "/sessions", {})
    _, other_state, _ = api.call("GET", f"/sessions/{other['session_id']}")
    assert other_state["turns"] == [] and other_state["disliked"] == []


def test_two_turns_of_one_session_at_once_are_both_kept_in_order(real_api: Api) -> None:
    api = real_api
    _, made, _ = api.call("POST", "/sessions", {})
    sid = made["session_id"]
    texts = ["hello there", "what can you do?"]
    results = {}

    def send(text: str) -> None:
        results[text] = api.call("POST", f"/sessions/{sid}/turns", {"text": text})[0]

    threads = [threading.Thread(target=send, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {t: 200 for t in texts}
    _, state, _ = api.call("GET", f"/sessions/{sid}")
    turns = state["turns"]
    assert sorted(t["text"] for t in turns if t["role"] == "user") == sorted(texts)
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]  # never interleaved


def test_a_dataset_user_is_checked_when_the_session_is_made(real_api: Api) -> None:
    status, made, _ = real_api.call("POST", "/sessions", {"user_id": "196"})
    assert status == 201 and made["user_id"] == "196"
    status, answer, _ = real_api.call("POST", "/sessions", {"user_id": "no-such-user"})
    assert status == 422 and "no-such-user" in answer["detail"]


def test_the_llm_server_lets_requests_wait_instead_of_cutting_each_other_short() -> None:
    from agent.llama_server import with_defaults

    assert with_defaults(["--model", "m.gguf"]) == ["--model", "m.gguf", "--interrupt_requests", "False"]
    assert with_defaults(["--interrupt_requests", "True"]) == ["--interrupt_requests", "True"]
    assert with_defaults(["--config_file", "c.json"]) == ["--config_file", "c.json"]
