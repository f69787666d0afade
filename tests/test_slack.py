"""The Slack bot through its real doors: the real Bolt app served by ``agent.slack``'s HTTP
server on 127.0.0.1, signed Events API and interactivity requests posted to /slack/events, and
the real ``slack_sdk`` WebClient talking to a recorder of Slack's Web API on 127.0.0.1
(tests/servers.py). The agent is the real one on the test session's parts (tests/agents.py);
the requests that are refused or need no agent run first, against an app whose agent only
records that it was reached.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app as cli_app
from agent.config import Settings
from agent.slack import ACTION_DISLIKE, ACTION_LIKE, ACTION_WHY, build_slack_app, make_http_server, plain_text
from tests.agents import SideBySide, build_agent, endpoint_agent
from tests.servers import SlackApiRecorder, llama_server
from tools.resolve import match_key

BOT_TOKEN = "xoxb-test-" + secrets.token_hex(12)
SIGNING_SECRET = secrets.token_hex(16)
TEAM, BOT = SlackApiRecorder.TEAM, SlackApiRecorder.BOT_USER
MANIFEST = Path(__file__).parent.parent / "slack" / "manifest.yml"
SLACK_VARS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")


# ----------------------------------------------------------------- plumbing


@dataclass
class Bot:
    url: str
    recorder: SlackApiRecorder
    agent: object


def serve(agent, home: Path, **more_settings) -> tuple[Bot, Callable[[], None]]:
    recorder = SlackApiRecorder()
    settings = Settings(home=home, slack_mode="http", slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=recorder.url, **more_settings)
    server = make_http_server(build_slack_app(agent, settings), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close() -> None:
        server.shutdown()
        server.server_close()
        recorder.close()

    return Bot(f"http://127.0.0.1:{server.server_port}/slack/events", recorder, agent), close


def signature(body: str, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature (computed here, not with the library under test)."""
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()


def post(bot: Bot, body: str, content_type: str, secret: str | None = SIGNING_SECRET, age: float = 0,
         headers: dict | None = None, tamper: bool = False) -> tuple[int, str, float]:
    """POST to the bot's /slack/events as Slack would: (status, body, seconds until the response)."""
    timestamp = str(int(time.time() - age))
    sent = {"Content-Type": content_type, **(headers or {})}
    if secret is not None:
        sent |= {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature(body, timestamp, secret)}
    data = (body + " " if tamper else body).encode()  # tamper: the body changed after signing
    request = urllib.request.Request(bot.url, data=data, headers=sent, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - started


def event_body(event: dict, event_id: str) -> str:
    return json.dumps({"token": "legacy-verification-token", "team_id": TEAM, "api_app_id": "A0TEST",
                       "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
                       "authorizations": [{"team_id": TEAM, "user_id": BOT, "is_bot": True}], "event": event})


def post_event(bot: Bot, event: dict, event_id: str, **kwargs) -> tuple[int, str, float]:
    return post(bot, event_body(event, event_id), "application/json", **kwargs)


def mention_event(text: str, ts: str, channel: str = "C0GENERAL", user: str = "U0ALICE") -> dict:
    return {"type": "app_mention", "user": user, "text": f"<@{BOT}> {text}", "ts": ts, "event_ts": ts,
            "channel": channel, "team": TEAM}


def dm_event(text: str, ts: str, channel: str = "D0ALICE", user: str = "U0ALICE") -> dict:
    return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts, "event_ts": ts,
            "channel": channel, "team": TEAM}


def click(bot: Bot, message: dict, channel: str, block_id: str, action_id: str, user: str = "U0BOB",
          **kwargs) -> tuple[int, str, float]:
    """A button press on a message the bot posted: the block_actions payload Slack sends
    (form-encoded ``payload=`` JSON, with the message and its blocks as the bot posted them)."""
    actions = next(b for b in message["blocks"] if b.get("block_id") == block_id)
    button = next(e for e in actions["elements"] if e["action_id"] == action_id)
    payload = {
        "type": "block_actions", "token": "legacy-verification-token", "api_app_id": "A0TEST",
        "trigger_id": "1.2.3", "user": {"id": user, "username": "bob", "team_id": TEAM},
        "team": {"id": TEAM, "domain": "test"}, "channel": {"id": channel, "name": "general"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False,
                      "thread_ts": message.get("thread_ts")},
        "message": message, "response_url": "https://hooks.slack.invalid/actions/1",
        "actions": [{**button, "block_id": block_id, "action_ts": f"{time.time():.6f}"}],
    }
    return post(bot, urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kwargs)


def block_texts(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out += [e["text"] for e in b.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(out)


def buttons(blocks: list[dict]) -> dict[str, list[str]]:
    """block_id → the action_ids of its buttons."""
    return {b["block_id"]: [e["action_id"] for e in b["elements"]] for b in blocks if b["type"] == "actions"}


class LogTap(logging.Handler):
    """Every log record, formatted with its traceback, from every thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def assert_no_secrets(self) -> None:
        text = "\n".join(self.lines)
        assert self.lines, "nothing was logged: the tap is not attached"
        assert BOT_TOKEN not in text and SIGNING_SECRET not in text


@pytest.fixture(scope="module")
def log_tap():
    root, tap = logging.getLogger(), LogTap()
    level = root.level
    root.addHandler(tap)
    root.setLevel(logging.DEBUG)
    yield tap
    root.removeHandler(tap)
    root.setLevel(level)


class HeldAgent:
    """The real agent behind a gate, to see whether Slack's acknowledgement comes before the
    agent's work: ``held(send)`` closes the gate, sends the request and writes "ack" in ``events``
    when its HTTP answer came, then opens the gate; each agent call waits at the gate, then is
    written in ``events`` and runs. An ack that waited for the agent never comes (the agent waits
    for the gate): the request times out, written as "no ack"."""

    def __init__(self, agent) -> None:
        self._agent, self.events, self._gate = agent, [], threading.Event()
        self._gate.set()

    def __getattr__(self, name: str):
        return getattr(self._agent, name)

    def _call(self, name: str, *args, **kwargs):
        assert self._gate.wait(timeout=120), "the gate was never opened"
        self.events.append(name)
        return getattr(self._agent, name)(*args, **kwargs)

    def respond(self, *args, **kwargs):
        return self._call("respond", *args, **kwargs)

    def feedback(self, *args, **kwargs):
        return self._call("feedback", *args, **kwargs)

    def why_request(self, *args, **kwargs):
        return self._call("why_request", *args, **kwargs)

    def held(self, send: Callable[[], tuple[int, str, float]]) -> tuple[int | None, int]:
        """``send()`` with the agent held: (its HTTP status, where its events start in ``events``)."""
        start = len(self.events)
        self._gate.clear()
        try:
            status = send()[0]
            self.events.append("ack")
        except OSError as error:  # no answer in time (post's timeout)
            status = None
            self.events.append(f"no ack: {error}")
        finally:
            self._gate.set()
        return status, start


class NoAgent:
    """For requests that must never reach the agent: records what was asked and fails it. Its
    session store is real (the bot holds a session's lock for each turn)."""

    def __init__(self, home: Path) -> None:
        from agent.state import SessionStore

        self.asked: list[str] = []
        self.sessions = SessionStore(home / "sessions.sqlite3")

    def __getattr__(self, name: str):
        def refuse(*args, **kwargs):
            self.asked.append(name)
            raise RuntimeError("the agent is not there in this test")
        return refuse


# ----------------------------------------------------------------- settings, CLI, manifest


@pytest.fixture
def no_slack_env(monkeypatch, tmp_path):
    for name in SLACK_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("CHATREC_" + name, raising=False)
    monkeypatch.delenv("CHATREC_SLACK_MODE", raising=False)
    monkeypatch.delenv("CHATREC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./chatrec.toml


def test_settings_take_slacks_usual_variables_and_never_show_secrets(no_slack_env, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("CHATREC_SLACK_APP_TOKEN", "xapp-ours")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-theirs")
    settings = Settings()
    assert settings.slack_bot_token == BOT_TOKEN and settings.slack_signing_secret == SIGNING_SECRET
    assert settings.slack_app_token == "xapp-ours"  # the CHATREC_ variable wins
    assert settings.slack_mode == "socket" and settings.slack_port == 3000 and settings.slack_host == "127.0.0.1"
    shown = repr(settings) + str(settings)
    assert BOT_TOKEN not in shown and SIGNING_SECRET not in shown and "xapp-ours" not in shown


@pytest.mark.parametrize("env, names", [
    ({}, "CHATREC_SLACK_BOT_TOKEN"),
    ({"CHATREC_SLACK_BOT_TOKEN": BOT_TOKEN}, "CHATREC_SLACK_APP_TOKEN"),
    ({"CHATREC_SLACK_BOT_TOKEN": BOT_TOKEN, "CHATREC_SLACK_MODE": "http"}, "CHATREC_SLACK_SIGNING_SECRET"),
    ({"CHATREC_SLACK_BOT_TOKEN": "xapp-wrong-kind", "CHATREC_SLACK_APP_TOKEN": "xapp-1"}, "xoxb-"),
])
def test_a_missing_or_wrong_token_is_a_clear_error_naming_the_variable(no_slack_env, monkeypatch, env, names) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli_app, ["slack"])
    assert result.exit_code == 2, result.output
    assert names in result.output and "Traceback" not in result.output
    assert BOT_TOKEN not in result.output and "xapp-wrong-kind" not in result.output


def test_slack_help_explains_both_modes() -> None:
    result = CliRunner().invoke(cli_app, ["slack", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for words in ("Socket Mode", "CHATREC_SLACK_APP_TOKEN", "/slack/events", "CHATREC_SLACK_SIGNING_SECRET",
                  "slack/manifest.yml"):
        assert words in text


def test_the_manifest_asks_for_what_the_bot_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True and settings["interactivity"]["is_enabled"] is True
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {"app_mentions:read", "chat:write", "im:history",
                                                              "im:read", "im:write"}
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True


def test_slack_text_becomes_what_the_person_typed() -> None:
    assert plain_text(f"<@{BOT}> movies like <https://x.test/heat|Heat> &amp; Fargo &lt;3") == \
        "movies like Heat & Fargo <3"


# ----------------------------------------------------------------- refused requests: no agent needed


@pytest.fixture
def idle_bot(tmp_path, log_tap):
    bot, close = serve(NoAgent(tmp_path), tmp_path)
    yield bot
    close()


def test_url_verification_gets_its_challenge(idle_bot: Bot) -> None:
    body = json.dumps({"token": "legacy-verification-token", "challenge": "c-3po-r2d2", "type": "url_verification"})
    status, answer, _ = post(idle_bot, body, "application/json")
    assert status == 200 and "c-3po-r2d2" in answer
    assert idle_bot.agent.asked == []


def test_bad_or_stale_signatures_are_refused_with_401_and_nothing_is_posted(idle_bot: Bot, log_tap: LogTap) -> None:
    mention = mention_event("recommend me a movie", "1700000001.000100")
    message = {"type": "message", "ts": "1800000000.000009", "thread_ts": "1700000001.000100", "user": BOT,
               "text": "Here are some", "blocks": [{"type": "actions", "block_id": "chatrec:1", "elements": [
                   {"type": "button", "action_id": ACTION_DISLIKE, "text": {"type": "plain_text", "text": "👎"},
                    "value": json.dumps({"session": f"slack:{TEAM}:C0GENERAL:1700000001.000100",
                                         "item": "ml-100k:50"})}]}]}
    refused = {
        "wrong secret": dict(secret="not-the-secret"),
        "stale (10 minutes old, correctly signed)": dict(age=600),
        "unsigned": dict(secret=None),
        "body changed after signing": dict(tamper=True),
    }
    for why, how in refused.items():
        status, _, _ = post_event(idle_bot, mention, f"Ev{why[:4]}", **how)
        assert status == 401, f"event, {why}: {status}"
        status, _, _ = click(idle_bot, message, "C0GENERAL", "chatrec:1", ACTION_DISLIKE, **how)
        assert status == 401, f"button, {why}: {status}"
    # a correctly signed message afterwards reaches the agent (which fails here: the person is told);
    # once its reply is posted, anything the refused requests had started would have shown too
    status, _, _ = post_event(idle_bot, dm_event("hello", "1700000002.000100"), "EvGood")
    assert status == 200
    sorry = idle_bot.recorder.wait_for("chat.postMessage", seconds=30)
    assert len(sorry) == 1 and sorry[0]["channel"] == "D0ALICE" and sorry[0]["thread_ts"] == "1700000002.000100"
    assert "try again" in sorry[0]["text"]
    assert idle_bot.agent.asked == ["respond"]
    assert not idle_bot.recorder.of("chat.update")
    assert any("the agent is not there" in line for line in log_tap.lines)  # the failure is logged
    log_tap.assert_no_secrets()


# ----------------------------------------------------------------- the real agent


@pytest.fixture(scope="module")
def bot(agent_parts, tmp_path_factory, log_tap):
    work = tmp_path_factory.mktemp("slack")
    served, close = serve(HeldAgent(build_agent(agent_parts, work)), work)
    yield served
    close()


MENTION_TS = "1700000100.000100"
MENTION_SESSION = f"slack:{TEAM}:C0GENERAL:{MENTION_TS}"


@pytest.fixture(scope="module")
def mention(bot: Bot) -> dict:
    """An @mention in a channel asking for movies, and the bot's reply as Slack would hold it."""
    event = mention_event("I loved Toy Story and Aladdin. What should I watch next?", MENTION_TS)
    status, start = bot.agent.held(lambda: post_event(bot, event, "Ev0MENTION"))
    posted_at_ack = len(bot.recorder.of("chat.postMessage"))
    posted = bot.recorder.wait_for("chat.postMessage", where=lambda p: p["channel"] == "C0GENERAL")[0]
    answer = next(c["answer"] for c in bot.recorder.calls if c["params"] is posted)
    message = {"type": "message", "user": BOT, "bot_id": SlackApiRecorder.BOT_ID, "text": posted["text"],
               "blocks": posted["blocks"], "thread_ts": posted["thread_ts"], "ts": answer["ts"]}
    return {"event": event, "status": status, "events": bot.agent.events[start:], "posted_at_ack": posted_at_ack,
            "posted": posted, "message": message}


def test_a_mention_is_acked_at_once_and_answered_in_its_thread_with_items_and_buttons(bot: Bot, mention: dict,
                                                                                     log_tap: LogTap) -> None:
    assert mention["status"] == 200 and mention["events"] == ["ack", "respond"]  # acked before the turn ran
    assert mention["posted_at_ack"] == 0  # the reply came after the ack, not before it
    posted = mention["posted"]
    assert posted["channel"] == "C0GENERAL" and posted["thread_ts"] == MENTION_TS
    state = bot.agent.sessions.get(MENTION_SESSION)  # one session per thread
    assert state is not None and state.turns[0].text == "I loved Toy Story and Aladdin. What should I watch next?"
    shown = [bot.agent.catalog.get(i) for i in state.last_recommendations]
    assert len(shown) == 5
    text = block_texts(posted["blocks"])
    for item in shown:
        assert item.title.replace("&", "&amp;") in text
    rows = buttons(posted["blocks"])
    assert list(rows) == [f"chatrec:{n}" for n in range(1, 6)]
    assert all(ids == [ACTION_WHY, ACTION_LIKE, ACTION_DISLIKE] for ids in rows.values())
    values = [json.loads(b["elements"][0]["value"]) for b in posted["blocks"] if b["type"] == "actions"]
    assert [v["item"] for v in values] == state.last_recommendations
    assert {v["session"] for v in values} == {MENTION_SESSION}
    assert all(c["authorization"] == f"Bearer {BOT_TOKEN}" for c in bot.recorder.calls)
    assert bot.recorder.of("auth.test")
    log_tap.assert_no_secrets()


def test_a_retried_event_is_not_answered_twice(bot: Bot, mention: dict, log_tap: LogTap) -> None:
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, start = bot.agent.held(lambda: post_event(bot, mention["event"], "Ev0MENTION", headers=retry))
    assert status == 200
    # a retry of an event that never arrived (the first delivery was lost) is answered, once;
    # when its reply is out, the retry above has long been decided
    dm_ts = "1700000200.000100"
    status, _, _ = post_event(bot, dm_event("hi there!", dm_ts), "Ev0DM", headers=retry)
    assert status == 200
    dm = bot.recorder.wait_for("chat.postMessage", where=lambda p: p["channel"] == "D0ALICE")
    assert dm[0]["thread_ts"] == dm_ts and dm[0]["text"].strip()
    assert bot.agent.events[start:] == ["ack", "respond"]  # the retry acked with no turn; the one turn is the DM's
    assert bot.agent.sessions.get(f"slack:{TEAM}:D0ALICE:{dm_ts}") is not None
    in_thread = [p for p in bot.recorder.of("chat.postMessage")
                 if p.get("thread_ts") == MENTION_TS and "asked:" not in block_texts(p["blocks"])]  # not a Why?
    assert len(in_thread) == 1
    assert [t.role for t in bot.agent.sessions.get(MENTION_SESSION).turns][:2] == ["user", "assistant"]
    assert not any(t.text.startswith("I loved Toy Story") for t in bot.agent.sessions.get(MENTION_SESSION).turns[1:])
    log_tap.assert_no_secrets()


def test_thumbs_down_and_up_go_into_the_session_and_update_the_message(bot: Bot, mention: dict,
                                                                      log_tap: LogTap) -> None:
    message = mention["message"]
    first, second = bot.agent.sessions.get(MENTION_SESSION).last_recommendations[:2]
    status, _, _ = click(bot, message, "C0GENERAL", "chatrec:2", ACTION_DISLIKE, secret="forged")
    assert status == 401
    assert second not in bot.agent.sessions.get(MENTION_SESSION).disliked

    status, start = bot.agent.held(lambda: click(bot, message, "C0GENERAL", "chatrec:2", ACTION_DISLIKE))
    assert status == 200
    update = bot.recorder.wait_for("chat.update", seconds=30)[0]
    assert bot.agent.events[start:] == ["ack", "feedback"]  # acked before the feedback was taken
    assert second in bot.agent.sessions.get(MENTION_SESSION).disliked
    assert update["channel"] == "C0GENERAL" and update["ts"] == message["ts"]
    ids = [b.get("block_id") for b in update["blocks"]]
    assert ids[ids.index("chatrec:2") + 1] == "chatrec:2:feedback"
    assert "👎" in block_texts(update["blocks"]) and "U0BOB" in block_texts(update["blocks"])
    assert buttons(update["blocks"]) == buttons(message["blocks"])  # the buttons stay

    status, _, _ = click(bot, {**message, "blocks": update["blocks"]}, "C0GENERAL", "chatrec:1", ACTION_LIKE)
    assert status == 200
    liked_update = bot.recorder.wait_for("chat.update", count=2, seconds=30)[1]
    state = bot.agent.sessions.get(MENTION_SESSION)
    assert first in state.liked and second in state.disliked
    texts = block_texts(liked_update["blocks"])
    assert "👍" in texts and "👎" in texts  # both marks shown
    log_tap.assert_no_secrets()


def test_why_posts_an_explanation_naming_the_item_in_the_thread(bot: Bot, mention: dict, log_tap: LogTap) -> None:
    message = mention["message"]
    item = bot.agent.catalog.get(bot.agent.sessions.get(MENTION_SESSION).last_recommendations[2])
    before = len(bot.recorder.of("chat.postMessage"))
    status, start = bot.agent.held(lambda: click(bot, message, "C0GENERAL", "chatrec:3", ACTION_WHY))
    posted_at_ack = len(bot.recorder.of("chat.postMessage"))
    assert status == 200 and posted_at_ack == before
    why = bot.recorder.wait_for("chat.postMessage", where=lambda p: "asked: Why" in block_texts(p["blocks"]))[0]
    assert bot.agent.events[start:] == ["ack", "why_request", "respond"]  # acked before the explanation ran
    assert why["channel"] == "C0GENERAL" and why["thread_ts"] == MENTION_TS
    assert match_key(item.title) in match_key(why["text"])  # the explanation names the item
    assert item.title.replace("&", "&amp;") in block_texts(why["blocks"])
    assert list(buttons(why["blocks"]).values()) == [[ACTION_LIKE, ACTION_DISLIKE]]
    turns = bot.agent.sessions.get(MENTION_SESSION).turns
    assert turns[-2].role == "user" and turns[-2].text == f"Why {item.title}?" and turns[-1].intent == "explain"
    log_tap.assert_no_secrets()


def test_markup_in_what_is_said_and_in_titles_reaches_slack_escaped() -> None:
    from agent.agent import Reply, ReplyItem
    from agent.slack import fallback_text, render_reply

    said = "<script>alert(1)</script> & <!channel> give me comedies"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt; give me comedies"
    chat = render_reply(Reply("s", "chitchat", said), "s")
    assert chat[0]["text"]["text"] == escaped
    assert fallback_text(said) == escaped
    item = ReplyItem("x", "<b>Bold</b> & Co", 1999, ["Drama"], "movie", 0.5, "graph", author=None,
                     why={"nearest": ["<i>Heat</i>"]})
    listed = render_reply(Reply("s", "recommend", f"Here is 1 movie you might like: {said}\n1. x", [item]), "s")
    texts = json.dumps(listed)
    assert "<script>" not in texts and "<b>" not in texts and "<i>" not in texts and "<!channel>" not in texts
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in texts and "&lt;i&gt;Heat&lt;/i&gt;" in texts


# ----------------------------------------------------------------- two threads at once


TWO_THREADS = [("C0GENERAL", "1700000300.000100", "hello! what can you do?"),
               ("C0MOVIES", "1700000300.000200", "I loved Toy Story. Recommend 3 movies")]


def _two_threads_at_once(probe: SideBySide, home: Path, **settings) -> None:
    """Two people mention the bot in two channels at the same moment; both are answered in their
    own thread, and each thread's session holds its own turn only."""
    served, close = serve(probe, home, **settings)
    try:
        for n, (channel, ts, text) in enumerate(TWO_THREADS):
            assert post_event(served, mention_event(text, ts, channel=channel), f"Ev0TWO{n}")[0] == 200
        for channel, ts, _ in TWO_THREADS:
            served.recorder.wait_for("chat.postMessage", where=lambda p, c=channel: p["channel"] == c)
    finally:
        close()
    for channel, ts, text in TWO_THREADS:
        posted = next(p for p in served.recorder.of("chat.postMessage") if p["channel"] == channel)
        assert posted["thread_ts"] == ts and "went wrong" not in posted["text"]
        state = probe.sessions.get(f"slack:{TEAM}:{channel}:{ts}")
        assert [t.text for t in state.turns if t.role == "user"] == [text]


def test_two_threads_run_side_by_side_with_an_llm_endpoint(agent_parts, tmp_path) -> None:
    with llama_server("--n_ctx", "4096") as url:
        probe = SideBySide(endpoint_agent(agent_parts, tmp_path, url), partner_wait=60)
        _two_threads_at_once(probe, tmp_path, llm_backend="openai", turn_concurrency=2)
    assert probe.most == 2, "the bot answered the two threads one after the other"


def test_two_threads_take_turns_with_the_in_process_model(agent_parts, tmp_path) -> None:
    probe = SideBySide(build_agent(agent_parts, tmp_path), partner_wait=3)
    _two_threads_at_once(probe, tmp_path)
    assert probe.most == 1, "two turns ran at once on the one llama.cpp context"
