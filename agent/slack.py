"""The Slack front door (``chatrec slack``): a slack_bolt app that talks to the agent.

* Socket Mode (an app-level token; no public URL) or HTTP Events API requests to
  ``/slack/events`` (signed with the app's signing secret), chosen by ``slack_mode``.
* One agent session per Slack thread: a direct message or an @mention starts one, replies go
  into its thread, and what is said in the thread continues it
  (``slack:{team}:{channel}:{thread root ts}``).
* Replies are Block Kit: the reply's words, then each item with its reasons and three buttons —
  "Why?" (an explanation, posted in the thread), 👍 and 👎 (feedback into the session; the
  message is updated to show it).
* Every request is acknowledged at once; the agent's work happens afterwards in Bolt's worker
  threads (``process_before_response=False``): one turn at a time with the in-process local model
  (one llama.cpp context), up to ``turn_concurrency`` turns of different threads at once with the
  openai backend; two turns of one thread never overlap (the session store's lock, across
  processes with PostgreSQL sessions — several bots in HTTP mode can share them). A retried
  event (``X-Slack-Retry-Num``) whose message was already taken is not answered again.
* Tokens and the signing secret are never logged.

Only presentation lives here; every decision is the agent's.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient

from agent.config import Settings
from agent.state import turn_slots

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
ACTION_WHY, ACTION_LIKE, ACTION_DISLIKE = "chatrec_why", "chatrec_like", "chatrec_dislike"
SECTION_LIMIT = 3000  # Block Kit: characters in a section's text
MAX_BODY = 1 << 20  # bytes an HTTP request to /slack/events may carry
SORRY = "Sorry — something went wrong on my side. Please try again."


class SlackConfigError(ValueError):
    """A Slack setting is missing or wrong; the message names the variable (never its value)."""


def check_settings(settings: Settings) -> None:
    """What the chosen mode needs, present and of the right kind, or an error naming the variable."""
    if not settings.slack_bot_token:
        raise SlackConfigError("no Slack bot token: set CHATREC_SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN) to the app's "
                               "Bot User OAuth Token (xoxb-…)")
    if not settings.slack_bot_token.startswith("xoxb-"):
        raise SlackConfigError("CHATREC_SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN) is not a bot token: it starts with xoxb-")
    if settings.slack_mode == "socket":
        if not settings.slack_app_token:
            raise SlackConfigError("socket mode needs an app-level token: set CHATREC_SLACK_APP_TOKEN (or "
                                   "SLACK_APP_TOKEN; Basic Information → App-Level Tokens, scope "
                                   "connections:write), or use CHATREC_SLACK_MODE=http")
        if not settings.slack_app_token.startswith("xapp-"):
            raise SlackConfigError("CHATREC_SLACK_APP_TOKEN (or SLACK_APP_TOKEN) is not an app-level token: "
                                   "it starts with xapp-")
    elif not settings.slack_signing_secret:
        raise SlackConfigError("http mode needs the signing secret: set CHATREC_SLACK_SIGNING_SECRET (or "
                               "SLACK_SIGNING_SECRET; Basic Information → App Credentials)")


def session_id_for(team: str | None, channel: str, thread_ts: str) -> str:
    return f"slack:{team or '-'}:{channel}:{thread_ts}"


# -- Block Kit ------------------------------------------------------------------------------


def _esc(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback_text(text: str) -> str:
    """A message's top-level ``text`` (notifications, clients without blocks): mrkdwn too, so escaped."""
    return _esc(text)[:SECTION_LIMIT]


def _section(text: str, block_id: str | None = None) -> dict:
    if len(text) > SECTION_LIMIT:
        text = text[:SECTION_LIMIT - 1] + "…"
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def _context(text: str, block_id: str | None = None) -> dict:
    block = {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}
    if block_id:
        block["block_id"] = block_id
    return block


def _button(action_id: str, label: str, value: str) -> dict:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label, "emoji": True},
            "value": value}


def _item_heading(item, n: int | None = None) -> str:
    year = f" ({item.year})" if item.year else ""
    number = f"{n}. " if n is not None else ""
    return f"*{number}{_esc(item.title)}*{year}"


def _item_facts(item) -> str:
    facts = [f"by {_esc(item.author)}"] if item.author else []
    if item.genres:
        facts.append(_esc(", ".join(item.genres[:3])))
    if item.domain == "book":
        facts.append("book")
    elif item.cold:
        facts.append("new: few ratings yet")
    return " · ".join(facts)


def _reasons(why: dict) -> str:
    """The per-item evidence of a recommendation, in a line (empty when there is none)."""
    parts = [_esc(why["bridge"]["sentence"])] if why.get("bridge") else []  # a cross-domain pick's bridge
    if why.get("nearest"):
        parts.append("close to " + ", ".join(_esc(t) for t in why["nearest"]))
    if why.get("shared_genres"):
        parts.append("shares " + ", ".join(_esc(g) for g in why["shared_genres"]))
    return "; ".join(parts)


def _buttons(block_id: str, session_id: str, item_id: str, why: bool = True) -> dict:
    value = json.dumps({"session": session_id, "item": item_id}, separators=(",", ":"))
    elements = ([_button(ACTION_WHY, "Why?", value)] if why else []) + [
        _button(ACTION_LIKE, "👍", value), _button(ACTION_DISLIKE, "👎", value)]
    return {"type": "actions", "block_id": block_id, "elements": elements}


def render_reply(reply, session_id: str, asked: str | None = None) -> list[dict]:
    """A :class:`agent.agent.Reply` as Block Kit blocks. ``asked``: a line saying what was asked
    (a "Why?" button's question), shown first."""
    blocks: list[dict] = [_context(asked)] if asked else []
    if reply.intent == "recommend" and reply.items:
        lines = reply.text.split("\n")
        head = "\n".join(lines[:max(1, len(lines) - len(reply.items))]).strip()
        blocks.append(_section(_esc(head)))
        for n, item in enumerate(reply.items, 1):
            facts = _item_facts(item)
            blocks.append(_section(_item_heading(item, n) + (f"\n{facts}" if facts else ""), f"item:{n}"))
            if reasons := _reasons(item.why):
                blocks.append(_context(reasons))
            blocks.append(_buttons(f"chatrec:{n}", session_id, item.item_id))
    elif reply.intent == "explain" and reply.items:
        item = reply.items[0]
        blocks.append(_section(_esc(reply.text)))
        blocks.append(_context("about " + _item_heading(item)))
        blocks.append(_buttons("chatrec:explained", session_id, item.item_id, why=False))
    else:
        blocks.append(_section(_esc(reply.text or "…")))
    return blocks


def mark_feedback(blocks: list[dict], block_id: str, liked: bool, user: str | None) -> list[dict]:
    """The message's blocks with a line under the clicked item's buttons saying what was noted
    (replacing an earlier one for that item)."""
    by = f" by <@{user}>" if user else ""
    line = (f"👍 liked{by}: more like this next time" if liked
            else f"👎 disliked{by}: left out of the next lists")
    note_id = f"{block_id}:feedback"
    out = [b for b in blocks if b.get("block_id") != note_id]
    for i, block in enumerate(out):
        if block.get("block_id") == block_id:
            out.insert(i + 1, _context(line, note_id))
            break
    else:
        out.append(_context(line, note_id))
    return out


# -- the app --------------------------------------------------------------------------------


_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")


def plain_text(text: str) -> str:
    """What a person typed, from Slack's message format: mentions dropped, links as their labels,
    entities decoded."""
    text = _MENTION.sub("", text or "")
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return html.unescape(text).strip()


class _Seen:
    """Messages already taken (team, channel, ts): a retried event, or a message that arrives as
    two events, is answered once."""

    def __init__(self, size: int = 5000) -> None:
        self._keys: OrderedDict[tuple, float] = OrderedDict()
        self._size, self._lock = size, threading.Lock()

    def first(self, key: tuple) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = time.time()
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


def web_client(settings: Settings) -> WebClient:
    kwargs: dict[str, Any] = {"token": settings.slack_bot_token}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url.rstrip("/") + "/"
    return WebClient(**kwargs)


def build_slack_app(agent, settings: Settings, client: WebClient | None = None) -> App:
    """The Bolt app: events ``app_mention`` and ``message`` (direct messages), the three buttons.
    Building it calls ``auth.test`` once (an invalid token fails here)."""
    client = client or web_client(settings)
    from concurrent.futures import ThreadPoolExecutor

    # Bolt's workers: enough for the turns that may run at once, plus acks and clicks waiting
    app = App(client=client, signing_secret=settings.slack_signing_secret or "", process_before_response=False,
              logger=logging.getLogger("agent.slack.bolt"),
              listener_executor=ThreadPoolExecutor(max_workers=max(10, 2 * turn_slots(settings))))
    slots = turn_slots(settings)
    gate = threading.BoundedSemaphore(slots)  # 1 with the local model (one llama.cpp context)
    seen = _Seen()

    @contextlib.contextmanager
    def turn_lock(session_id: str):
        """The session's lock for the whole turn (read, answer, save), then one of the slots."""
        with agent.sessions.lock(session_id), gate:
            yield

    def post(client: WebClient, channel: str, thread_ts: str, text: str, blocks: list[dict] | None = None) -> None:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=fallback_text(text), blocks=blocks,
                                unfurl_links=False, unfurl_media=False)

    def converse(event: dict, body: dict, client: WebClient) -> None:
        team = body.get("team_id") or event.get("team")
        channel, ts = event["channel"], event["ts"]
        if not seen.first((team, channel, ts)):
            log.info("message %s in %s already taken (a retry or a second event): not answered again", ts, channel)
            return
        thread_ts = event.get("thread_ts") or ts
        session_id = session_id_for(team, channel, thread_ts)
        text = plain_text(event.get("text", ""))
        try:
            with turn_lock(session_id):
                reply = agent.respond(session_id, text)
        except Exception:
            log.exception("turn failed in session %s", session_id)
            post(client, channel, thread_ts, SORRY)
            return
        post(client, channel, thread_ts, reply.text, render_reply(reply, session_id))

    @app.event("app_mention")
    def on_mention(event: dict, body: dict, client: WebClient) -> None:
        if event.get("channel_type") == "im":
            return  # direct messages are taken by the message listener
        converse(event, body, client)

    @app.event("message")
    def on_message(event: dict, body: dict, client: WebClient) -> None:
        # direct messages only (message.im); edits, joins and bots' messages carry a subtype or bot_id
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        converse(event, body, client)

    def button(body: dict) -> tuple[str, str, str, str, dict] | None:
        """(session, item, channel, thread_ts, action) of a click; None when it is not ours to take."""
        action = body["actions"][0]
        try:
            value = json.loads(action.get("value") or "")
            session_id, item_id = value["session"], value["item"]
        except (ValueError, KeyError, TypeError):
            log.warning("a button without a session and item: ignored")
            return None
        team = (body.get("team") or {}).get("id")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        if not channel or not session_id.startswith(session_id_for(team, channel, "")):
            log.warning("a button for another team or channel: ignored")
            return None
        thread_ts = message.get("thread_ts") or message.get("ts") or session_id.rsplit(":", 1)[-1]
        return session_id, item_id, channel, thread_ts, action

    def feedback(body: dict, client: WebClient, liked: bool) -> None:
        click = button(body)
        if click is None:
            return
        session_id, item_id, channel, thread_ts, action = click
        try:
            with turn_lock(session_id):
                agent.feedback(session_id, item_id, liked=liked)
        except KeyError:
            post(client, channel, thread_ts, "I can't find that item any more.")
            return
        except Exception:
            log.exception("feedback failed in session %s", session_id)
            post(client, channel, thread_ts, SORRY)
            return
        message = body.get("message") or {}
        if message.get("ts") and message.get("blocks"):
            user = (body.get("user") or {}).get("id")
            blocks = mark_feedback(message["blocks"], action.get("block_id", ""), liked, user)
            client.chat_update(channel=channel, ts=message["ts"], text=message.get("text") or "", blocks=blocks)

    @app.action(ACTION_LIKE)
    def on_like(ack, body: dict, client: WebClient) -> None:
        ack()
        feedback(body, client, liked=True)

    @app.action(ACTION_DISLIKE)
    def on_dislike(ack, body: dict, client: WebClient) -> None:
        ack()
        feedback(body, client, liked=False)

    @app.action(ACTION_WHY)
    def on_why(ack, body: dict, client: WebClient) -> None:
        ack()
        click = button(body)
        if click is None:
            return
        session_id, item_id, channel, thread_ts, _ = click
        try:
            with turn_lock(session_id):
                question, route = agent.why_request(session_id, item_id)
                reply = agent.respond(session_id, question, route=route)
        except KeyError:
            post(client, channel, thread_ts, "I can't find that item any more.")
            return
        except Exception:
            log.exception("explanation failed in session %s", session_id)
            post(client, channel, thread_ts, SORRY)
            return
        user = (body.get("user") or {}).get("id")
        asked = f"<@{user}> asked: {_esc(question)}" if user else _esc(question)
        post(client, channel, thread_ts, reply.text, render_reply(reply, session_id, asked=asked))

    @app.error
    def on_error(error: Exception, body: dict) -> None:
        log.error("slack listener failed: %s: %s", type(error).__name__, error)

    return app


# -- serving ---------------------------------------------------------------------------------


def make_http_server(app: App, host: str = "127.0.0.1", port: int = 3000) -> ThreadingHTTPServer:
    """An HTTP server for the Events API and interactivity: POST /slack/events into the Bolt app
    (signature and timestamp checked by Bolt: 401 otherwise). ``serve_forever()`` it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            path, _, query = self.path.partition("?")
            if path != EVENTS_PATH:
                return self._send(404, {}, "not found")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(413, {}, "too large")
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            headers = {k.lower(): self.headers.get_all(k) or [] for k in set(self.headers.keys())}
            response = app.dispatch(BoltRequest(body=body, query=query, headers=headers))
            self._send(response.status, response.headers, response.body)

        def do_GET(self) -> None:  # noqa: N802
            self._send(200 if self.path == "/health" else 404, {}, "ok" if self.path == "/health" else "not found")

        def _send(self, status: int, headers: dict, body: str | dict) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
            self.send_response(status)
            for key, values in headers.items():
                if key.lower() == "content-length":
                    continue
                for value in values if isinstance(values, list | tuple) else [values]:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
            log.debug("http %s " + format, self.client_address[0], *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def run_slack(settings: Settings, agent=None) -> None:
    """Start the bot in the configured mode and serve until interrupted."""
    check_settings(settings)
    if agent is None:
        from agent.agent import Agent

        agent = Agent.from_settings(settings, progress=True)
    app = build_slack_app(agent, settings)
    if settings.slack_mode == "socket":
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        log.info("Slack bot: socket mode, connecting")
        handler = SocketModeHandler(app, settings.slack_app_token)
        try:
            handler.start()
        except KeyboardInterrupt:
            pass
        finally:
            handler.close()
        return
    server = make_http_server(app, settings.slack_host, settings.slack_port)
    log.info("Slack bot: http mode, listening on http://%s:%d%s", settings.slack_host, server.server_port, EVENTS_PATH)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["SlackConfigError", "build_slack_app", "check_settings", "make_http_server", "mark_feedback",
           "plain_text", "render_reply", "run_slack", "session_id_for", "web_client"]
