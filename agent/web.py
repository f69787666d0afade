"""The web page (``python app.py``): a chat beside the current recommendations as cards.

Presentation only: every turn goes through :meth:`Agent.stream`, every button through
:meth:`Agent.why_request` / :meth:`Agent.feedback`. The page makes no outside requests (system
fonts instead of the theme's web fonts; analytics off) and binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import html
import logging
import os
import uuid
from collections.abc import Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402

from agent.agent import Agent, Reply, ReplyItem  # noqa: E402
from agent.config import Settings  # noqa: E402
from agent.llm import LLMUnavailable  # noqa: E402
from agent.state import SessionError, turn_slots  # noqa: E402

log = logging.getLogger(__name__)

ANONYMOUS = "new anonymous session"
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]
CSS = """
.rec-card { padding: 8px 10px 2px 10px; }
.rec-card .title { font-weight: 600; font-size: 1.05em; }
.rec-card .meta { opacity: 0.8; font-size: 0.9em; margin: 2px 0 4px 0; }
.rec-card .badge { display: inline-block; border-radius: 8px; padding: 0 7px; margin-right: 4px;
                   font-size: 0.78em; background: #e8eefc; color: #1d3f91; }
.rec-card .badge.cold { background: #fff1d6; color: #8a5300; }
.rec-card .badge.book { background: #e5f6ea; color: #1c6b35; }
.rec-card .badge.fb { background: #f3e8ff; color: #5b2a86; }
.rec-card .bar { height: 6px; border-radius: 3px; background: #eee; margin: 4px 0; }
.rec-card .bar > div { height: 6px; border-radius: 3px; background: #4f7cff; }
"""


def card_html(item: dict, position: int, top_score: float) -> str:
    """One recommendation as a card: title, year, genres or author, badges, a score bar scaled
    to the best score in the list (graph and store scores are on different scales)."""
    esc = html.escape
    year = f" ({item['year']})" if item.get("year") else ""
    facts = esc(f"by {item['author']}" if item.get("author") else ", ".join(item.get("genres") or [])) or "&nbsp;"
    badges = [f'<span class="badge {"book" if item["domain"] == "book" else ""}">{esc(item["domain"])}</span>']
    if item.get("cold"):
        badges.append('<span class="badge cold" title="newer than the graph model: found by meaning">cold start</span>')
    if item.get("feedback"):
        badges.append(f'<span class="badge fb">{"👍 liked" if item["feedback"] == "liked" else "👎 not for me"}</span>')
    share = max(0.05, min(1.0, item["score"] / top_score)) if top_score > 0 else 0.05
    return (f'<div class="rec-card" data-item-id="{esc(item["item_id"])}">'
            f'<div class="title">{position}. {esc(item["title"])}{esc(year)}</div>'
            f'<div class="meta">{facts}</div>'
            f'<div>{"".join(badges)}</div>'
            f'<div class="bar" title="score {item["score"]:.3f}"><div style="width:{share * 100:.0f}%"></div></div>'
            f"</div>")


def chat_text(text: str) -> str:
    """Text for the chat (Markdown): what a person typed or a reply quotes is shown as text, never
    run as markup ("<script>…" appears as typed)."""
    return html.escape(text, quote=False)


def state_markdown(agent: Agent, session: dict | None, reply: Reply | None = None) -> str:
    """What the agent understood so far: who, liked, disliked, constraints (and the last turn's timings)."""
    who = f"dataset user {session['user']}" if session and session.get("user") else "anonymous"
    try:
        state = agent.sessions.get(session["id"]) if session else None
    except SessionError as exc:  # the session database is down: say so, the page goes on
        return f"**Who:** {who}  \n*The session cannot be read now: {html.escape(str(exc), quote=False)}*"
    if state is None:
        return f"**Who:** {who}  \n*Nothing said yet.*"
    titles = lambda ids: ", ".join(html.escape(agent.catalog.get(i).title, quote=False)  # noqa: E731
                                   for i in ids if agent.catalog.get(i)) or "—"
    c = state.constraints
    years = (f"{c.year_from or '…'}–{c.year_to or '…'}" if c.year_from or c.year_to else "any")
    lines = [f"**Who:** {who}", f"**Liked:** {titles(state.liked)}", f"**Disliked:** {titles(state.disliked)}",
             f"**Genres:** {', '.join(c.genres) or 'any'}" + (f" (not {', '.join(c.without)})" if c.without else "")
             + f" · **Years:** {years} · **Domain:** {c.domain or 'any'}"]
    if reply is not None and reply.timings:
        steps = " · ".join(f"{k} {v:.2f} s" for k, v in reply.timings.items())
        lines.append(f"<small>last turn: {reply.intent} — {steps}</small>")
    return "  \n".join(lines)


def _item_dict(item: ReplyItem) -> dict:
    return {"item_id": item.item_id, "title": item.title, "year": item.year, "genres": item.genres,
            "domain": item.domain, "author": item.author, "cold": item.cold, "score": item.score, "feedback": None}


def build_page(agent: Agent, users: list[str] | None = None) -> gr.Blocks:
    users = users if users is not None else [str(u) for u in agent.tool.recommender.user_ids]

    def new_session(user: str | None) -> dict:
        return {"id": f"web-{uuid.uuid4().hex[:12]}", "user": user if user and user != ANONYMOUS else None}

    def run_turn(history: list, session: dict, text: str, route=None) -> Iterator[tuple[list, Reply | None]]:
        """Streams one turn into the chat; the last yield carries the Reply (None on failure)."""
        history = history + [{"role": "user", "content": chat_text(text)}, {"role": "assistant", "content": ""}]
        words, reply = "", None
        try:
            # the session's lock for the whole turn: its read, answer and save are one transaction
            with agent.sessions.lock(session["id"]):
                for part in agent.stream(session["id"], text, session["user"], route=route):
                    if isinstance(part, Reply):
                        reply = part
                        words = part.text  # the whole reply, with any notice the pieces did not carry
                    else:
                        words += part
                        history[-1] = {"role": "assistant", "content": chat_text(words)}
                        yield history, None
            history[-1] = {"role": "assistant", "content": chat_text(words)}  # stored: the whole reply
        except (LLMUnavailable, SessionError, ValueError, KeyError) as exc:
            log.warning("turn failed: %s", exc)
            history[-1] = {"role": "assistant", "content": chat_text(f"⚠️ {exc}")}
        except Exception as exc:  # the page must survive anything one turn does
            log.exception("turn failed")
            history[-1] = {"role": "assistant", "content": chat_text(f"⚠️ Something went wrong on this turn ({exc}). "
                                                                   "Your session is unchanged; please try again.")}
        if reply is not None and reply.notes:
            log.info("turn notes: %s", "; ".join(reply.notes))
        yield history, reply

    def on_send(text: str, history: list, session: dict | None, shown: list):
        session = session or new_session(None)
        for history, reply in run_turn(history or [], session, text):
            if reply is not None and reply.intent == "recommend" and reply.items:
                shown = [_item_dict(i) for i in reply.items]
            yield history, "", session, shown, state_markdown(agent, session, reply)

    def on_why(k: int):
        def handler(history: list, session: dict | None, shown: list):
            if not session or k >= len(shown):
                yield history, state_markdown(agent, session)
                return
            text, route = agent.why_request(session["id"], shown[k]["item_id"])
            for history, reply in run_turn(history or [], session, text, route):
                yield history, state_markdown(agent, session, reply)
        return handler

    def on_feedback(k: int, liked: bool):
        def handler(session: dict | None, shown: list):
            if session and k < len(shown):
                try:
                    with agent.sessions.lock(session["id"]):
                        agent.feedback(session["id"], shown[k]["item_id"], liked)
                except (SessionError, KeyError) as exc:
                    log.warning("feedback not saved: %s", exc)
                    gr.Warning(f"Not saved: {exc}")
                    return shown, state_markdown(agent, session)
                shown = [dict(item) for item in shown]
                shown[k]["feedback"] = "liked" if liked else "disliked"
            return shown, state_markdown(agent, session)
        return handler

    def on_user(user: str):
        session = new_session(user)
        return [], session, [], state_markdown(agent, session)

    def render_cards(shown: list):
        top = max((i["score"] for i in shown), default=0.0)
        updates = []
        for k in range(agent.turn.max_count):
            visible = k < len(shown)
            updates += [gr.update(visible=visible), card_html(shown[k], k + 1, top) if visible else ""]
        return updates

    with gr.Blocks(title="chatrec — conversational recommender") as page:
        session = gr.State(None)
        shown = gr.State([])
        gr.Markdown("## chatrec\nTell me what you liked (movies or books) and what you are in the mood for.")
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    user = gr.Dropdown([ANONYMOUS, *users], value=ANONYMOUS, label="Who is chatting",
                                       info="a dataset user (their history is used) or a new anonymous session",
                                       filterable=True, scale=3, elem_id="user-picker")
                    reset = gr.Button("Reset", scale=1, elem_id="reset")
                chat = gr.Chatbot(height=480, label="Chat", elem_id="chat", buttons=["copy", "copy_all"])
                with gr.Row():
                    box = gr.Textbox(placeholder="e.g. I loved Toy Story and Aladdin. What should I watch next?",
                                     show_label=False, scale=5, elem_id="message", autofocus=True)
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                understood = gr.Markdown(state_markdown(agent, None), elem_id="dialogue-state",
                                         label="What the agent understood")
            with gr.Column(scale=2):
                gr.Markdown("### Recommendations")
                slots, cards = [], []
                for k in range(agent.turn.max_count):
                    with gr.Group(visible=False, elem_classes=["rec-slot"]) as slot:
                        card = gr.HTML(elem_classes=["rec-html"])
                        with gr.Row(equal_height=True):
                            why = gr.Button("why?", size="sm", min_width=40, elem_classes=["why"])
                            up = gr.Button("👍 like", size="sm", min_width=40, elem_classes=["like"])
                            down = gr.Button("👎 not for me", size="sm", min_width=40, elem_classes=["dislike"])
                    slots.append(slot)
                    cards.append(card)
                    # one queue for every agent call: one at a time with the local model (one
                    # context), turn_concurrency of them with an OpenAI-compatible endpoint
                    why.click(on_why(k), [chat, session, shown], [chat, understood], concurrency_id="agent")
                    up.click(on_feedback(k, True), [session, shown], [shown, understood], concurrency_id="agent")
                    down.click(on_feedback(k, False), [session, shown], [shown, understood], concurrency_id="agent")
        card_outputs = [c for pair in zip(slots, cards) for c in pair]
        shown.change(render_cards, [shown], card_outputs)
        for trigger in (box.submit, send.click):
            trigger(on_send, [box, chat, session, shown], [chat, box, session, shown, understood],
                    concurrency_id="agent")
        user.change(on_user, [user], [chat, session, shown, understood])
        reset.click(on_user, [user], [chat, session, shown, understood])
    return page


def concurrency_for(agent: Agent, settings: Settings | None = None) -> int:
    """Turns of different sessions the page runs at once: 1 with an in-process model (one
    context), ``turn_concurrency`` when the agent's LLM is an OpenAI-compatible endpoint."""
    from agent.llm import OpenAIChatModel

    if not isinstance(agent.llm, OpenAIChatModel):
        return 1
    return turn_slots((settings or Settings()).model_copy(update={"llm_backend": "openai"}))


def serve(agent: Agent, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
          concurrency: int | None = None):
    """Start the page; ``block=False`` returns at once (tests: ``page.close()`` stops it).
    ``concurrency``: turns at once (default :func:`concurrency_for`); turns of one session never
    overlap (the session store's lock)."""
    page = build_page(agent)
    page.queue(default_concurrency_limit=concurrency or concurrency_for(agent))
    theme = gr.themes.Soft(font=SYSTEM_FONTS, font_mono=MONO_FONTS)  # no web fonts: nothing fetched from outside
    page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, theme=theme, css=CSS,
                footer_links=[], quiet=not block, ssr_mode=False, mcp_server=False)
    return page
