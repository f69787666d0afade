"""``chatrec serve``: the agent over HTTP (FastAPI on uvicorn), for programs and for many people.

    POST   /sessions                    {"user_id": null | "196"}         → 201 {"session_id": …}
    GET    /sessions/{id}               what the session holds (turns, liked, disliked, constraints)
    DELETE /sessions/{id}                                                  → 204
    POST   /sessions/{id}/turns         {"text": "…"}      → the Reply as JSON
                                        ?stream=true (or Accept: text/event-stream) → server-sent events
    POST   /sessions/{id}/feedback      {"item_id": "…", "liked": true}    → liked / disliked now
    POST   /sessions/{id}/why           {"item_id": "…"}   → the explanation's Reply (or its events)
    GET    /health, /openapi.json

* A session id is a capability: 192 random bits made here (``agent.state.new_session_id``); an id
  of another shape (a web or Slack session's) is not one of this API's sessions: 404. Each answer
  carries the named session's state only.
* Bad requests are 4xx with a reason in ``detail``: 404 no such session or item, 409 another turn
  of the session is still running, 422 a malformed body (FastAPI's validation) or an unknown
  dataset user; 503 when the session database cannot be reached (nothing of the turn is saved).
  A model that stops answering is the agent's usual "model unavailable" reply (200), the session
  left as it was.
* Streamed turns: ``event: text`` (``{"text": piece}``) as the reply is written, then
  ``event: reply`` (the Reply) once the turn is stored — or ``event: error``
  (``{"status": 503, "detail": …}``). A turn runs to its end even when the client goes away, so
  it is stored whole or not at all.
* Turns of one session are serialised by the session store's lock (across processes with
  PostgreSQL); turns of different sessions run side by side up to ``turn_slots`` at once (one with
  the in-process local model, ``turn_concurrency`` with the openai backend); a reply's
  ``timings["queued"]`` is the seconds its turn waited for them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from agent.state import SessionBusy, SessionError, new_session_id

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")  # the shape of agent.state.new_session_id()
MAX_TEXT = 20_000  # characters a turn's body may carry (the agent itself reads the first 2,000)
LOCK_WAIT = 300.0  # seconds a turn waits for the previous turn of its session


class NewSession(BaseModel):
    user_id: str | None = Field(None, description="a dataset user (e.g. ml-100k's '196'): their history is used",
                                max_length=64)


class SessionCreated(BaseModel):
    session_id: str = Field(description="the session's id: keep it secret, it is the key to the session")
    user_id: str | None
    created: float


class TurnIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="what the person says")


class FeedbackIn(BaseModel):
    item_id: str = Field(min_length=1, max_length=200, description="an item of the catalog, e.g. 'ml-100k:50'")
    liked: bool = Field(description="true: 👍 (more like it); false: 👎 (left out of the next lists)")


class WhyIn(BaseModel):
    item_id: str = Field(min_length=1, max_length=200, description="the item to explain")


class TurnOut(BaseModel):
    role: str
    text: str
    intent: str | None = None
    items: list[str] = []
    at: float


class SessionOut(BaseModel):
    session_id: str
    user_id: str | None
    turns: list[TurnOut]
    liked: list[str]
    disliked: list[str]
    constraints: dict[str, Any]
    last_recommendations: list[str]
    created: float
    updated: float


class FeedbackOut(BaseModel):
    session_id: str
    liked: list[str]
    disliked: list[str]


# ReplyItemOut / ReplyOut spell out agent.agent's ReplyItem / Reply for the OpenAPI schema: importing
# agent.agent here would cost 2.8 s of imports (torch, chromadb) before the server can answer /openapi.json.
# A field added to those dataclasses is added here too (tests/test_server.py compares the keys).
class ReplyItemOut(BaseModel):
    item_id: str
    title: str
    year: int | None
    genres: list[str]
    domain: str
    score: float
    source: str
    author: str | None = None
    cold: bool = False
    why: dict = {}


class ReplyOut(BaseModel):
    session_id: str
    intent: str
    text: str
    items: list[ReplyItemOut] = []
    timings: dict[str, float] = {}
    slots: dict = {}
    notes: list[str] = []


class _NoSession(LookupError):
    pass


def _status(exc: BaseException) -> tuple[int, str]:
    """An exception of a turn as (HTTP status, reason)."""
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, _NoSession):
        return 404, str(exc)
    if isinstance(exc, SessionBusy):
        return 409, str(exc)
    if isinstance(exc, SessionError):
        return 503, str(exc)
    if isinstance(exc, KeyError):  # an item not in the catalog
        return 404, str(exc.args[0]) if exc.args else "not found"
    if isinstance(exc, ValueError):
        return 422, str(exc)
    return 500, f"the turn failed ({type(exc).__name__}); the session is unchanged — please try again"


class TurnRunner:
    """Runs turns against an agent: the session's lock for the whole turn (reads, answer, save in
    one transaction), then a slot among ``slots`` concurrent turns."""

    def __init__(self, agent, slots: int = 1, lock_wait: float = LOCK_WAIT) -> None:
        self.agent, self.store = agent, agent.sessions
        self.gate = threading.BoundedSemaphore(max(1, slots))
        self.slots, self.lock_wait = max(1, slots), lock_wait

    def check(self, session_id: str):
        """The session's state, or 404 (an id this API did not make is not one of its sessions)."""
        if not SESSION_ID.match(session_id):
            raise _NoSession("no such session: make one with POST /sessions")
        state = self.store.get(session_id)
        if state is None:
            raise _NoSession("no such session (it may have been deleted): make one with POST /sessions")
        return state

    @contextlib.contextmanager
    def holding(self, session_id: str, llm: bool = True) -> Iterator[None]:
        if not SESSION_ID.match(session_id):  # before any lock or query
            raise _NoSession("no such session: make one with POST /sessions")
        with self.store.lock(session_id, timeout=self.lock_wait):
            self.check(session_id)
            if not llm:
                yield
                return
            with self.gate:
                yield

    def turn(self, session_id: str, text: str | None = None, why_item: str | None = None,
             on_text=None):
        """One turn; ``why_item``: the "why?" of that item instead of ``text``. ``on_text`` gets the
        pieces as they are written. Returns (the Reply, what was asked); the turn is stored when
        this returns (the lock's transaction has committed)."""
        reply, route = None, None
        asked = time.perf_counter()
        with self.holding(session_id):
            queued = time.perf_counter() - asked  # waiting for the session's last turn and for a slot
            if why_item is not None:
                text, route = self.agent.why_request(session_id, why_item)
            for part in self.agent.stream(session_id, text, route=route):
                if not isinstance(part, str):  # the Reply comes last
                    reply = part
                elif on_text is not None:
                    on_text(part)
        if reply is not None:
            reply.timings["queued"] = round(queued, 4)
        return reply, text

    def feedback(self, session_id: str, item_id: str, liked: bool):
        with self.holding(session_id, llm=False):
            return self.agent.feedback(session_id, item_id, liked)

    def events(self, session_id: str, text: str | None = None, why_item: str | None = None) -> Iterator[str]:
        """The turn as server-sent events; it runs in a thread of its own, to its end."""
        out: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                reply, asked = self.turn(session_id, text, why_item, on_text=lambda piece: out.put(("text", {"text": piece})))
                out.put(("reply", {**reply.to_dict(), **({"asked": asked} if why_item else {})}))
            except BaseException as exc:  # noqa: BLE001 - every failure becomes an error event
                status, detail = _status(exc)
                if status >= 500 and status != 503:
                    log.exception("turn failed in a session")
                out.put(("error", {"status": status, "detail": detail}))
            finally:
                out.put(None)

        threading.Thread(target=work, name="chatrec-turn", daemon=True).start()
        while (event := out.get()) is not None:
            name, data = event
            yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _wants_stream(request: Request, stream: bool) -> bool:
    return stream or "text/event-stream" in request.headers.get("accept", "")


def create_app(agent, slots: int = 1, lock_wait: float = LOCK_WAIT) -> FastAPI:
    """The HTTP API over ``agent`` (its session store is ``agent.sessions``). ``slots``: turns of
    different sessions run at once (:func:`agent.state.turn_slots`)."""
    runner = TurnRunner(agent, slots, lock_wait)
    app = FastAPI(title="chatrec", version="1",
                  description="A conversational recommender (Chat-Rec style) over HTTP. A session id is a "
                              "capability: whoever holds it can use the session; nobody else can.",
                  docs_url=None, redoc_url=None)  # the schema is /openapi.json; no pages that fetch from CDNs
    app.state.runner = runner

    @app.exception_handler(SessionError)
    async def _session_error(request: Request, exc: SessionError) -> JSONResponse:
        status, detail = _status(exc)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(_NoSession)
    async def _no_session(request: Request, exc: _NoSession) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    def fail(exc: BaseException):
        status, detail = _status(exc)
        if status >= 500 and status != 503:
            log.exception("request failed")
        raise HTTPException(status, detail) from exc

    responses = {404: {"description": "no such session or item"}, 409: {"description": "another turn of this "
                 "session is still running"}, 503: {"description": "the session database cannot be reached"}}
    stream_doc = {200: {"content": {"application/json": {}, "text/event-stream": {
        "example": 'event: text\ndata: {"text": "Here are …"}\n\nevent: reply\ndata: {…the Reply…}\n\n'}},
        "description": "the Reply, or with ?stream=true (Accept: text/event-stream) server-sent events: "
                       "text pieces, then the reply once stored (or an error event)"}}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "sessions": runner.store.describe(), "turn_slots": runner.slots}

    @app.post("/sessions", status_code=201, response_model=SessionCreated)
    def create_session(body: NewSession | None = None) -> SessionCreated:
        user_id = body.user_id if body else None
        if user_id is not None:
            recommender = agent.tool.recommender
            if not recommender.has_user(user_id):
                raise HTTPException(422, f"no user {user_id!r} in the {recommender.dataset} data")
        state = runner.store.new(user_id, new_session_id())
        return SessionCreated(session_id=state.session_id, user_id=state.user_id, created=state.created)

    @app.get("/sessions/{session_id}", response_model=SessionOut, responses=responses)
    def read_session(session_id: str) -> SessionOut:
        from dataclasses import asdict

        state = runner.check(session_id)
        return SessionOut(**asdict(state))

    @app.delete("/sessions/{session_id}", status_code=204, responses=responses)
    def delete_session(session_id: str) -> Response:
        try:
            with runner.holding(session_id, llm=False):
                runner.store.delete(session_id)
        except Exception as exc:  # noqa: BLE001
            fail(exc)
        return Response(status_code=204)

    @app.post("/sessions/{session_id}/turns", response_model=ReplyOut, responses={**responses, **stream_doc})
    def post_turn(session_id: str, body: TurnIn, request: Request,
                  stream: bool = Query(False, description="answer with server-sent events")):
        if _wants_stream(request, stream):
            runner.check(session_id)
            return StreamingResponse(runner.events(session_id, body.text), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-store"})
        try:
            reply, _ = runner.turn(session_id, body.text)
        except Exception as exc:  # noqa: BLE001
            fail(exc)
        return reply.to_dict()

    @app.post("/sessions/{session_id}/feedback", response_model=FeedbackOut, responses=responses)
    def post_feedback(session_id: str, body: FeedbackIn) -> FeedbackOut:
        try:
            state = runner.feedback(session_id, body.item_id, body.liked)
        except Exception as exc:  # noqa: BLE001
            fail(exc)
        return FeedbackOut(session_id=session_id, liked=state.liked, disliked=state.disliked)

    @app.post("/sessions/{session_id}/why", response_model=ReplyOut, responses={**responses, **stream_doc})
    def post_why(session_id: str, body: WhyIn, request: Request,
                 stream: bool = Query(False, description="answer with server-sent events")):
        if _wants_stream(request, stream):
            runner.check(session_id)
            if agent.catalog.get(body.item_id) is None:
                raise HTTPException(404, f"no item {body.item_id!r} in the catalog")
            return StreamingResponse(runner.events(session_id, why_item=body.item_id), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-store"})
        try:
            reply, _ = runner.turn(session_id, why_item=body.item_id)
        except Exception as exc:  # noqa: BLE001
            fail(exc)
        return reply.to_dict()

    return app


def serve(agent, host: str = "127.0.0.1", port: int = 8080, slots: int = 1, log_level: str = "info") -> None:
    """Serve the API until interrupted (uvicorn; Ctrl-C or SIGTERM stops it, finishing running turns)."""
    import uvicorn

    uvicorn.run(create_app(agent, slots), host=host, port=port, log_level=log_level.lower(),
                timeout_graceful_shutdown=30)


__all__ = ["TurnRunner", "create_app", "serve"]
