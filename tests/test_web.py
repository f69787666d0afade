"""The web page driven as a person would: Playwright in Debian's Chromium (/usr/bin/chromium,
installed by .ci/run; never `playwright install`) against the real page on 127.0.0.1, over the
real agent (tests/agents.py)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.web import card_html
from tests.agents import SideBySide, build_agent, endpoint_agent
from tests.servers import free_port, llama_server
from tools.resolve import match_key

# CHATREC_TEST_CHROMIUM: another Chromium binary (or a missing path, to check the skip)
CHROMIUM = os.environ.get("CHATREC_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# as root, headless, and without Chromium's own calls home (the closed network refuses them)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TURN_SECONDS = 90_000  # ms; a turn is 1-3 s here, but the first one loads models and CI cores are busy


@pytest.fixture(scope="session")
def chromium() -> str:
    # session scope, asked for first: the skip comes before the agent's models load
    if not Path(CHROMIUM).exists():  # .ci/run installs it, so CI always runs these
        pytest.skip(f"the browser test drives Chromium, not found at {CHROMIUM}: "
                    "install Debian's chromium (apt-get install chromium) to run it")
    return CHROMIUM


@pytest.fixture(scope="module")
def site(chromium, agent_parts, tmp_path_factory: pytest.TempPathFactory):
    from agent.web import serve

    agent = build_agent(agent_parts, tmp_path_factory.mktemp("web"))
    port = free_port()
    page = serve(agent, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}", agent
    page.close()


@pytest.fixture()
def browser_page(site):
    from playwright.sync_api import sync_playwright

    base, _ = site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        seen = {"errors": [], "outside": []}
        page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:")) else seen["outside"].append(r.url))
        page.goto(base + "/")
        yield page, seen
        browser.close()


def _card_titles(page) -> list[str]:
    # "2. Fargo (1996)" → "Fargo"
    return [re.sub(r"^\d+\.\s*|\s*\(\d{4}\)$", "", t) for t in page.locator(".rec-card .title").all_inner_texts()]


def _slot(page, title: str):
    """The card holding this title, with its buttons."""
    return page.locator(".rec-slot").filter(has=page.locator(".rec-card .title", has_text=title))


def _settled(locator, pause: float = 0.7) -> str:
    """The element's text once it stops changing (a streamed reply has finished)."""
    before = locator.inner_text()
    while True:
        time.sleep(pause)
        now = locator.inner_text()
        if now == before:
            return now
        before = now


def _wait_for(condition, what: str, page, seconds: float = TURN_SECONDS / 1000):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}; the chat shows:\n" + \
            page.locator("#chat").inner_text()
        time.sleep(0.25)


def test_ask_see_five_cards_ask_why_dislike_and_ask_again(browser_page, site, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page, seen = browser_page
    box = page.locator("#message textarea")
    box.fill("I loved Toy Story and Aladdin. What should I watch next?")
    box.press("Enter")
    expect(page.locator(".rec-card")).to_have_count(5, timeout=TURN_SECONDS)
    first_titles = _card_titles(page)
    assert len(set(first_titles)) == 5 and not {match_key(t) for t in first_titles} & {"toy story", "aladdin"}
    expect(page.locator("#dialogue-state")).to_contain_text("Aladdin")  # what the agent understood is shown

    # "why?" on the second card: the chat gets the question and an explanation naming that title
    second = first_titles[1]
    _slot(page, second).get_by_role("button", name="why?").click()
    chat = page.locator("#chat")
    question = f"Why {second}?"
    _wait_for(lambda: question in chat.inner_text() and _settled(chat).split(question)[-1].strip(), "the explanation",
              page)
    explanation = chat.inner_text().split(question)[-1]
    assert match_key(second) in match_key(explanation), explanation

    # 👎 on the first card: the state panel lists it as disliked, the agent's session has it
    disliked = first_titles[0]
    _slot(page, disliked).get_by_role("button", name="not for me").click()
    expect(page.locator("#dialogue-state")).to_contain_text(f"Disliked: {disliked}", timeout=TURN_SECONDS)
    expect(_slot(page, disliked).locator(".rec-card")).to_contain_text("not for me")

    box.fill("Show me some other movies like those")
    box.press("Enter")
    _wait_for(lambda: _card_titles(page) and _card_titles(page) != first_titles, "a new list", page)
    again = _card_titles(page)
    assert again and match_key(disliked) not in {match_key(t) for t in again}

    page.screenshot(path=str(tmp_path / "web-page.png"), full_page=True)
    assert (tmp_path / "web-page.png").stat().st_size > 10_000
    assert seen["errors"] == [], seen["errors"]
    assert seen["outside"] == [], f"the page asked for outside addresses: {seen['outside']}"


def test_a_new_session_per_user_pick_and_reset_clears_the_cards(browser_page, site) -> None:
    from playwright.sync_api import expect

    page, seen = browser_page
    _, agent = site
    picker = page.locator("#user-picker input")
    picker.click()
    picker.fill("")  # the box holds the current choice; typing filters the list
    picker.press_sequentially("196")
    page.get_by_role("option", name="196", exact=True).click()
    expect(page.locator("#dialogue-state")).to_contain_text("dataset user 196", timeout=TURN_SECONDS)
    box = page.locator("#message textarea")
    box.fill("recommend me something")
    box.press("Enter")
    expect(page.locator(".rec-card")).to_have_count(5, timeout=TURN_SECONDS)
    rated = {item.item_id for item in agent.tool.history("196")}
    ids = page.locator(".rec-card").evaluate_all("cards => cards.map(c => c.dataset.itemId)")
    assert len(set(ids)) == 5 and not set(ids) & rated  # their history is used: nothing they rated
    page.get_by_role("button", name="Reset").click()
    expect(page.locator(".rec-card")).to_have_count(0, timeout=TURN_SECONDS)
    expect(page.locator("#dialogue-state")).to_contain_text("Nothing said yet")
    assert seen["errors"] == [], seen["errors"]


def test_a_card_escapes_titles_and_scales_its_bar() -> None:
    item = {"item_id": "x", "title": "<b>Bold</b> & Co", "year": 1999, "genres": ["Drama"], "domain": "book",
            "author": "A <i>Writer</i>", "cold": True, "score": 0.5, "feedback": "disliked"}
    html = card_html(item, 3, top_score=2.0)
    assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in html
    assert "by A &lt;i&gt;Writer&lt;/i&gt;" in html and "cold start" in html and "not for me" in html
    assert "width:25%" in html and html.count('class="badge') == 3


def test_app_py_explains_itself() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "app.py"), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--host" in out.stdout and "127.0.0.1" in out.stdout and "--port" in out.stdout


class _QuotingAgent:
    """An agent double for the page alone: its reply quotes the message (the page's handling of
    text, without a model)."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        import tempfile

        from agent.state import SessionStore

        self.sessions = SessionStore(Path(tempfile.mkdtemp()) / "sessions.sqlite3")  # the page locks each turn's session
        self.turn = SimpleNamespace(max_count=5)

    def stream(self, session_id, text, user_id=None, route=None):
        from agent.agent import Reply

        yield f"You said: {text}"
        yield Reply(session_id, "chitchat", f"You said: {text}")


def test_the_chat_shows_markup_as_text_not_as_html() -> None:
    from agent.web import build_page

    page = build_page(_QuotingAgent(), users=[])
    on_send = next(f.fn for f in page.fns.values() if getattr(f.fn, "__name__", "") == "on_send")
    *_, (history, *_rest) = on_send("<script>alert(1)</script> give me <b>comedies</b> & more", [], None, [])
    said, answer = history[-2]["content"], history[-1]["content"]
    assert said == "&lt;script&gt;alert(1)&lt;/script&gt; give me &lt;b&gt;comedies&lt;/b&gt; &amp; more"
    assert "<script>" not in answer and "<b>" not in answer and "You said: &lt;script&gt;" in answer


def test_turns_run_side_by_side_only_with_an_llm_endpoint() -> None:
    from types import SimpleNamespace

    from agent.config import Settings
    from agent.llm import LocalChatModel, OpenAIChatModel
    from agent.web import concurrency_for

    endpoint = SimpleNamespace(llm=OpenAIChatModel(base_url="http://127.0.0.1:9/v1"))
    in_process = SimpleNamespace(llm=LocalChatModel())  # not loaded: the model loads on its first call
    assert concurrency_for(endpoint, Settings(turn_concurrency=6)) == 6
    assert concurrency_for(in_process, Settings(turn_concurrency=6)) == 1  # one llama.cpp context


# ----------------------------------------------------------------- two visitors at once


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    with llama_server("--n_ctx", "4096") as url:
        yield url


def _two_visitors(agent, texts: list[str]) -> list[str]:
    """Serve the page over ``agent`` and send one message from each of two browser sessions at
    the same moment (Gradio's own client, one per visitor: each has its own session state);
    the replies, in the order of ``texts``."""
    import threading

    from gradio_client import Client

    from agent.web import serve

    port = free_port()
    page = serve(agent, "127.0.0.1", port, block=False)
    try:
        visitors = [Client(f"http://127.0.0.1:{port}/", verbose=False) for _ in texts]
        replies: list[str] = [""] * len(texts)

        def send(k: int) -> None:
            history, *_ = visitors[k].predict(texts[k], [], api_name="/on_send")
            content = history[-1]["content"]  # Gradio 6: a list of parts, {"type": "text", "text": …}
            replies[k] = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)

        threads = [threading.Thread(target=send, args=(k,)) for k in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TURN_SECONDS / 1000 * 2)
        return replies
    finally:
        page.close()


def _each_session_holds_its_own_turn(probe: SideBySide, texts: list[str]) -> None:
    assert sorted(text for _, text in probe.turns) == sorted(texts)
    assert len({sid for sid, _ in probe.turns}) == len(texts)  # a session per visitor
    for sid, text in probe.turns:
        state = probe.sessions.get(sid)
        assert [t.text for t in state.turns if t.role == "user"] == [text]


TWO_ASKS = ["hello! what can you do?", "I loved Toy Story. Recommend 3 movies"]


def test_two_visitors_turns_run_side_by_side_with_an_llm_endpoint(agent_parts, endpoint_url, tmp_path) -> None:
    probe = SideBySide(endpoint_agent(agent_parts, tmp_path, endpoint_url), partner_wait=60)
    replies = _two_visitors(probe, TWO_ASKS)
    assert probe.most == 2, "the page ran the two visitors' turns one after the other"
    assert all(r and not r.startswith("⚠️") for r in replies), replies
    _each_session_holds_its_own_turn(probe, TWO_ASKS)


def test_two_visitors_take_turns_with_the_in_process_model(agent_parts, tmp_path) -> None:
    probe = SideBySide(build_agent(agent_parts, tmp_path), partner_wait=3)
    replies = _two_visitors(probe, TWO_ASKS)
    assert probe.most == 1, "two turns ran at once on the one llama.cpp context"
    assert all(r and not r.startswith("⚠️") for r in replies), replies
    _each_session_holds_its_own_turn(probe, TWO_ASKS)
