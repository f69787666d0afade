"""Explanations (tools/explain.py) without a model: the guard on what an explanation may name,
and the plain explanation it falls back to (the sentence check itself: tests/test_explain_check.py)."""

from __future__ import annotations

import pytest

from tests.items import BABE, DUNE, FARGO, GODFATHER, HEAT
from tools.explain import Evidence, Explainer
from tools.resolve import TitleSpotter


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    class _Tool:  # the guard needs only the catalog's titles
        recommender = None

    return Explainer(llm=None, tool=_Tool(), spotter=TitleSpotter([FARGO, HEAT, BABE, GODFATHER, DUNE]), similar=None)


def test_the_guard_wants_the_item_named_and_no_stranger_titles(explainer: Explainer) -> None:
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"])
    assert explainer.guard("Fargo is a dark crime story, close to Heat, which you liked.", ev) == ""
    assert "does not name" in explainer.guard("A dark crime story, close to Heat.", ev)
    assert "godfather" in explainer.guard("Fargo is like The Godfather and Heat.", ev)
    assert explainer.guard("", ev) == "empty"
    plain = explainer.plain(ev)
    assert plain.startswith("Fargo") and "Heat" in plain and explainer.guard(plain, ev) == ""


def test_the_guard_rejects_genres_the_evidence_does_not_hold(explainer: Explainer) -> None:
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"])
    assert explainer.guard("Fargo is a crime thriller, like Heat.", ev) == ""  # the item's own genres
    assert explainer.guard("Fargo is a horror film.", ev) == "unsupported: genre: Horror"
    assert explainer.guard("Fargo is a romantic comedy.", ev) == "unsupported: genre: Comedy"
    # both wrong: the title is reported (the first claim of the sentence)
    assert explainer.guard("Fargo is a horror film like Heat.", Evidence(FARGO)) == "unsupported: title: heat"


def test_the_plain_explanation_says_here_only_for_an_item_on_a_shown_list(explainer: Explainer) -> None:
    ev = Evidence(FARGO, shared_genres=["Crime"])
    assert " is here because " in explainer.plain(ev)  # on the list just shown
    ev.listed = False  # asked about before (or without) any list
    unlisted = explainer.plain(ev)
    assert unlisted.startswith("Fargo") and " here " not in unlisted and explainer.guard(unlisted, ev) == ""


class _Says:
    """A model double that streams the text it is given."""

    def __init__(self, text: str) -> None:
        self.text = text

    def stream(self, messages, **kwargs):
        from langchain_core.messages import AIMessageChunk

        return (AIMessageChunk(content=w + " ") for w in self.text.split(" "))


def test_an_explanation_that_repeats_itself_is_shown_once_or_falls_back(explainer: Explainer) -> None:
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"])
    looping = Explainer(llm=_Says("Fargo is a story of crime and crime, like Heat. "
                                  "Fargo is a story of crime and crime, like Heat. "
                                  "Fargo is a story of crime and crime, like Heat."),
                        tool=explainer.tool, spotter=explainer.spotter, similar=None)
    text, by_llm, problem = looping.explain(ev)
    assert text == "Fargo is a story of crime, like Heat." and by_llm and not problem
    echo = Explainer(llm=_Says("and and and and"), tool=explainer.tool, spotter=explainer.spotter, similar=None)
    text, by_llm, problem = echo.explain(ev)
    assert not by_llm and text == echo.plain(ev)  # nothing but a repeat: the evidence's own sentence


def test_a_graph_writer_writes_when_it_can_and_its_text_is_checked_like_any_llms(explainer: Explainer) -> None:
    """CHATREC_XREC_ADAPTER's writer (agent/tuning/xrec_agent.py) takes the LLM's place where the graph
    holds the person and the item; its sentences pass the same check, and None hands back to the LLM."""

    class _Writer:
        def __init__(self, text: str | None) -> None:
            self.text, self.asked = text, []

        def write(self, messages, ev):
            self.asked.append(messages)
            return self.text

    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"],
                  person=["1", "2"], graph_item="3")
    written = Explainer(llm=_Says("Fargo is a crime story."), tool=explainer.tool, spotter=explainer.spotter,
                        similar=None)
    written.writer = _Writer("Fargo is close to Heat, which you liked. Fargo won five Oscars.")
    made = written.explanation(ev, "why Fargo?")
    assert made.text == "Fargo is close to Heat, which you liked." and made.by_llm  # the unsupported claim dropped
    assert written.writer.asked == [written.prompt(ev, "why Fargo?")]
    written.writer = _Writer(None)  # the graph lacks them: the LLM writes
    assert written.explanation(ev).raw == "Fargo is a crime story."


def test_the_graph_tokens_go_on_one_line_after_the_facts() -> None:
    from agent.tuning.xrec import ITEM_TOKEN, USER_TOKEN
    from agent.tuning.xrec_agent import with_graph_tokens

    messages = [{"role": "system", "content": "Explain."}, {"role": "user", "content": "Recommended: Fargo\nFacts:"}]
    out = with_graph_tokens(messages, "Fargo")
    assert out[0] == messages[0] and messages[1]["content"] == "Recommended: Fargo\nFacts:"  # a copy
    last = out[1]["content"].splitlines()[-1]
    assert last.count(USER_TOKEN) == 1 and last.count(ITEM_TOKEN) == 1 and "Fargo" in last
