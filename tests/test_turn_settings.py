"""The numbers of a turn, named (agent.config.TurnSettings): today's values are the defaults, a
user can set them by file or environment, the per-turn code reads them, and saved runs record them."""

from __future__ import annotations

from types import SimpleNamespace

from agent.config import Settings, TurnSettings
from agent.reading import asked_count, sanitize_slots
from agent.router import Router, empty_slots

TODAY = {"max_message_chars": 2000, "default_count": 5, "max_count": 10, "candidates": 20, "context_turns": 4,
         "mention_match": 85, "title_share": 0.6, "earliest_year": 1870, "this_year": None, "profile_titles": 10,
         "dialogue_turns": 2, "dialogue_chars": 160, "router_max_tokens": 160, "chitchat_sentences": 2,
         "chitchat_max_tokens": 60, "fold_in": "auto", "transcript_router": False}


def test_the_defaults_are_todays_numbers_and_each_is_described() -> None:
    assert TurnSettings().model_dump() == TODAY
    assert all(f.description for f in TurnSettings.model_fields.values())


def test_the_evaluations_and_instruction_data_use_the_agents_numbers() -> None:
    from agent.evals import rerank
    from agent.tuning import instruct

    assert rerank.CANDIDATES == instruct.CANDIDATES == TurnSettings().candidates == 20
    assert rerank.PROFILE_TITLES == instruct.PROFILE_TITLES == TurnSettings().profile_titles
    assert instruct.COUNT == TurnSettings().default_count


def test_settings_hold_them_from_the_environment_or_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CHATREC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./chatrec.toml
    assert Settings().turn == TurnSettings()
    monkeypatch.setenv("CHATREC_TURN__MAX_COUNT", "8")
    assert Settings().turn.max_count == 8 and Settings().turn.candidates == 20
    monkeypatch.delenv("CHATREC_TURN__MAX_COUNT")
    config = tmp_path / "chatrec.toml"
    config.write_text("[turn]\ncandidates = 30\nmention_match = 90\n", encoding="utf-8")
    monkeypatch.setenv("CHATREC_CONFIG", str(config))
    assert (Settings().turn.candidates, Settings().turn.mention_match, Settings().turn.max_count) == (30, 90, 10)


def test_slot_checks_read_the_settings() -> None:
    assert asked_count("12 westerns") is None and asked_count("12 westerns", max_count=12) == 12
    slots = {**empty_slots(), "count": 8, "year_from": 1900, "titles": ["Toy Story"]}
    assert sanitize_slots(slots, "8 films like toy story", [])["count"] == 8
    strict = TurnSettings(max_count=5, earliest_year=1920, mention_match=100)
    out = sanitize_slots(slots, "8 films like toy storey", [], strict)
    assert out["count"] is None and out["year_from"] is None and out["titles"] == []


def test_relative_years_count_back_from_the_year_the_words_are_read_as_of() -> None:
    """A 2018 conversation's "anything more recent?" meant the ten years before 2018."""
    import time

    today = time.gmtime().tm_year
    assert sanitize_slots(empty_slots(), "anything more recent?", [])["year_from"] == today - 10
    as_of = TurnSettings(this_year=2018)
    assert sanitize_slots(empty_slots(), "anything more recent?", [], as_of)["year_from"] == 2008
    assert sanitize_slots(empty_slots(), "comedies from the 80s", [], as_of)["year_from"] == 1980  # not relative
    assert sanitize_slots({**empty_slots(), "year_from": 2021}, "any good ones?", [], as_of)["year_from"] is None  # to come


class _Answer:
    def __init__(self) -> None:
        self.calls = []

    def invoke(self, messages, json_schema=None, max_tokens=None, stop=None):
        self.calls.append((messages, max_tokens))
        content = '{"intent": "chitchat", "slots": {}}'
        for word in stop or ():  # as backends do: the answer ends before the stop word
            content = content.split(word)[0]
        return SimpleNamespace(content=content)


def test_the_router_reads_the_message_cut_and_answer_length() -> None:
    llm = _Answer()
    Router(llm, mode="tuned").route("x" * 2500)
    Router(llm, mode="tuned", turn=TurnSettings(max_message_chars=50, router_max_tokens=99)).route("x" * 2500)
    (default, default_tokens), (short, short_tokens) = llm.calls
    assert default[-1].content.endswith("Message: " + "x" * 2000) and default_tokens == 160
    assert short[-1].content.endswith("Message: " + "x" * 50) and short_tokens == 99


def test_a_saved_run_records_the_turn_settings(tmp_path) -> None:
    from agent.evals.runs import latest_run, run_meta, save_run

    settings = Settings(home=tmp_path, llm_backend="openai", llm_model="some-model",
                        turn=TurnSettings(candidates=30))
    meta = run_meta(settings, dataset="ml-100k", seed=0, command="chatrec test", users=3)
    assert list(meta)[:7] == ["command", "model", "backend", "dataset", "seed", "date", "machine"]  # as before
    assert meta["turn"] == {**TODAY, "candidates": 30} and meta["users"] == 3
    save_run("test", {"x": 1}, meta, tmp_path)
    assert latest_run("test", tmp_path)["meta"]["turn"]["candidates"] == 30
