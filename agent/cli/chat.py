"""``chatrec route``, ``chat``, ``slack``, ``serve``, ``sessions``: the agent's router and its front doors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli.common import BackendOption, JsonFlag, echo_json, fail, load_settings, one_or_file


def route(
    text: Annotated[Optional[str], typer.Argument(help="one utterance")] = None,
    file: Annotated[Optional[Path], typer.Option(help="one utterance per line; prints a JSON list in order")] = None,
    backend: BackendOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The router's decision for an utterance (no dialogue context):
    {"intent": recommend|explain|chitchat, "slots": {...}}. Accuracy: bench/RESULTS.md."""
    from agent.router import make_router  # not agent.agent: that imports the recommender and torch
    from agent.llm import LLMUnavailable, make_chat_model

    settings = load_settings(backend)
    lines = one_or_file(text, file, "utterance")
    try:
        router = make_router(settings, make_chat_model(settings))
        routes = [router.route(line).to_dict() for line in lines]
    except LLMUnavailable as exc:
        fail(str(exc))
    if as_json:
        echo_json(routes if file else routes[0])
        return
    for line, r in zip(lines, routes):
        filled = {k: v for k, v in r["slots"].items() if v not in (None, [], "")}
        typer.echo(f"{line!r}: {r['intent']}  {json.dumps(filled, ensure_ascii=False) if filled else ''}")


def chat(
    user: Annotated[Optional[str], typer.Option(help="talk as this dataset user (ml-100k id, e.g. 196)")] = None,
    session: Annotated[Optional[str], typer.Option(help="resume this session id (see `chatrec sessions`)")] = None,
    backend: BackendOption = None,
    show_timings: Annotated[bool, typer.Option("--timings", help="print each step's seconds after a reply")] = False,
) -> None:
    """Chat in the terminal. Ctrl-D or /quit ends; /like N and /dislike N mark an item of the last list;
    the session is saved after every turn (resume it with --session)."""
    import uuid

    from agent.state import SessionError

    settings = load_settings(backend)
    agent = agent_for(settings)
    if user is not None and not agent.tool.recommender.has_user(user):
        fail(f"no user {user!r} in the {agent.tool.recommender.dataset} data")
    session_id = session or f"cli-{uuid.uuid4().hex[:8]}"
    typer.echo(f"session {session_id} — say what you like to watch or read (/quit to leave)")
    last: list = []
    while True:
        try:
            text = input("you> ")
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            break
        if text.strip() in ("/quit", "/exit"):
            break
        command, _, arg = text.strip().partition(" ")
        if command in ("/like", "/dislike") and arg.isdigit() and 1 <= int(arg) <= len(last):
            agent.feedback(session_id, last[int(arg) - 1].item_id, liked=command == "/like")
            typer.echo(f"noted: {'liked' if command == '/like' else 'disliked'} {last[int(arg) - 1].title}")
            continue
        typer.echo("bot> ", nl=False)
        reply = None
        try:
            for part in agent.stream(session_id, text, user_id=user):
                if isinstance(part, str):
                    typer.echo(part, nl=False)
                else:
                    reply = part
        except (SessionError, ValueError) as exc:  # the chat goes on; the session file says what is wrong
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        typer.echo()
        if reply and reply.intent == "recommend" and reply.items:
            last = reply.items
        if show_timings and reply:
            typer.echo(f"     [{reply.intent}] " + "  ".join(f"{k} {v:.2f}s" for k, v in reply.timings.items()))


def agent_for(settings):
    """The agent from the settings, its sessions where ``sessions_url`` says (PostgreSQL or the
    SQLite file; a database that is down fails before the models load). Errors a person can act
    on end the command with the reason."""
    from agent.agent import Agent
    from agent.llm import LLMUnavailable
    from agent.state import SessionError

    try:
        return Agent.from_settings(settings)
    except (LLMUnavailable, SessionError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def serve(
    host: Annotated[Optional[str], typer.Option(help="address to listen on (default: CHATREC_SERVE_HOST, "
                                                     "127.0.0.1: this machine only)")] = None,
    port: Annotated[Optional[int], typer.Option(min=0, max=65535, help="port (default: CHATREC_SERVE_PORT, "
                                                                        "8080)")] = None,
    backend: BackendOption = None,
    concurrency: Annotated[Optional[int], typer.Option(min=1, help="openai backend: turns of different sessions "
                                                                   "at once (default: CHATREC_TURN_CONCURRENCY, 4); "
                                                                   "the local model runs one at a time")] = None,
) -> None:
    """Serve the agent over HTTP (JSON, server-sent events; schema at /openapi.json).

    \b
      POST   /sessions                 {"user_id": null}  -> {"session_id": ...}
      GET    /sessions/{id}            the session's turns, likes, constraints
      DELETE /sessions/{id}
      POST   /sessions/{id}/turns      {"text": "..."}  -> the reply as JSON;
                                       ?stream=true: server-sent events
      POST   /sessions/{id}/feedback   {"item_id": "ml-100k:50", "liked": true}
      POST   /sessions/{id}/why        {"item_id": "ml-100k:50"}

    A session id is a random secret: whoever holds it can use the session.
    Sessions live in CHATREC_SESSIONS_URL (postgresql://user@host:port/db: any
    number of `chatrec serve` processes can share it) or else the SQLite file in
    the data home (one process)."""
    from agent.server import serve as run_server
    from agent.state import turn_slots

    settings = load_settings(backend)
    if concurrency is not None:
        settings = settings.model_copy(update={"turn_concurrency": concurrency})
    agent = agent_for(settings)
    host = host or settings.serve_host
    port = settings.serve_port if port is None else port
    slots = turn_slots(settings)
    typer.echo(f"chatrec serve: http://{host}:{port} (sessions: {agent.sessions.describe()}; "
               f"{slots} turn(s) at once; schema /openapi.json; Ctrl-C stops)")
    try:
        run_server(agent, host, port, slots=slots, log_level=settings.log_level)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc}")


def slack(
    mode: Annotated[Optional[str], typer.Option(help="socket or http (default: CHATREC_SLACK_MODE, socket)")] = None,
    port: Annotated[Optional[int], typer.Option(min=1, max=65535,
                                                help="http mode: port (default: CHATREC_SLACK_PORT, 3000)")] = None,
    host: Annotated[Optional[str], typer.Option(help="http mode: address (default: CHATREC_SLACK_HOST, "
                                                     "127.0.0.1)")] = None,
    backend: BackendOption = None,
) -> None:
    """Run the Slack bot: DMs and @mentions, one session per thread, Block Kit
    replies with Why? / 👍 / 👎 buttons.

    \b
    Two ways to reach Slack (README: create the app from slack/manifest.yml):
      socket  Socket Mode (default): the bot opens a websocket to Slack,
              no public URL needed. Needs CHATREC_SLACK_BOT_TOKEN (xoxb-…)
              and CHATREC_SLACK_APP_TOKEN (xapp-…, scope connections:write).
      http    Slack POSTs events and button clicks to
              http://HOST:PORT/slack/events (put a public HTTPS URL in front).
              Needs CHATREC_SLACK_BOT_TOKEN and CHATREC_SLACK_SIGNING_SECRET.

    SLACK_BOT_TOKEN, SLACK_APP_TOKEN and SLACK_SIGNING_SECRET count when the
    CHATREC_ ones are unset. Tokens and the secret are never printed or logged."""
    from agent.slack import SlackConfigError, check_settings, run_slack

    settings = load_settings(backend)
    if mode is not None and mode not in ("socket", "http"):
        fail(f"--mode must be 'socket' or 'http', not {mode!r}")
    overrides = {k: v for k, v in (("slack_mode", mode), ("slack_port", port), ("slack_host", host)) if v is not None}
    settings = settings.model_copy(update=overrides)
    try:
        check_settings(settings)
    except SlackConfigError as exc:
        fail(str(exc))
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    agent = agent_for(settings)
    try:
        run_slack(settings, agent)
    except (BoltError, SlackApiError) as exc:  # e.g. auth.test refused the token
        fail(f"Slack refused to start the bot: {exc}")
    except OSError as exc:  # the port is taken, or Slack cannot be reached
        where = (f"serve http on {settings.slack_host}:{settings.slack_port}" if settings.slack_mode == "http"
                 else "connect to Slack")
        fail(f"cannot {where}: {exc}")


def sessions(
    delete: Annotated[Optional[list[str]], typer.Option(help="delete this session (repeatable)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the saved chat sessions (newest first), or delete some."""
    from agent.state import SessionError, open_sessions

    settings = load_settings()
    try:
        store = open_sessions(settings)  # CHATREC_SESSIONS_URL, else the SQLite file in the data home
    except SessionError as exc:
        fail(str(exc))
    if delete:
        for session_id in delete:
            typer.echo(f"{session_id}: {'deleted' if store.delete(session_id) else 'no such session'}")
        return
    rows = store.list()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))
