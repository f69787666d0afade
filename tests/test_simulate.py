"""Simulated users on the real ml-100k and a LightGCN trained here (tests/agents.py): sampling,
the template simulator, scoring, and the runner against an oracle, a random and the graph system."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest

from agent.evals.dialogues import normalize_title
from agent.evals.simulate import (MAX_TURNS, LLMSimulator, Simulation, TemplateSimulator, graph_system, sample_users, score,
                            spoken_title)
from agent.evals.stats import wilson_interval


@pytest.fixture(scope="module")
def people(agent_parts, chatrec_home):
    return sample_users(agent_parts["tool"], chatrec_home, 60, seed=3)


def _user_of(dialogue_id: str) -> str:
    return dialogue_id.rsplit("-", 1)[1]  # Simulation names dialogues sim-<system>-<k>-<user id>


def test_sampling_is_fixed_by_the_seed_and_targets_are_unseen_test_items(agent_parts, chatrec_home, people) -> None:
    tool = agent_parts["tool"]
    again = sample_users(tool, chatrec_home, 60, seed=3)
    assert [(p.user_id, p.target.item_id) for p in people] == [(p.user_id, p.target.item_id) for p in again]
    other = sample_users(tool, chatrec_home, 60, seed=4)
    assert [p.user_id for p in other] != [p.user_id for p in people]
    assert len(people) == 60 and len({p.user_id for p in people}) == 60
    for p in people:
        history = {i.item_id for i in tool.history(p.user_id)}
        assert p.target.item_id not in history  # held out: the model never trained on it
        assert p.liked and {i.item_id for i in p.liked} <= history


def test_the_template_simulator_never_says_the_target_and_reveals_more_each_turn(people) -> None:
    sim = TemplateSimulator(seed=0)
    for p in people:
        words = [sim.utterance(p, turn, [{"title": "Something Else"}]) for turn in range(1, MAX_TURNS + 1)]
        assert all(normalize_title(p.target.title) not in normalize_title(w) for w in words), words
        assert spoken_title(p.liked[0].title) in words[0]
        assert len(set(words)) == MAX_TURNS
    assert sim.utterance(people[0], 2, None) != sim.utterance(people[0], 2, [{"title": "x"}])  # answers a question


def test_a_fixed_seed_gives_the_same_transcripts(agent_parts, people) -> None:
    def run() -> list[dict]:
        tool = agent_parts["tool"]
        system = graph_system(tool, agent_parts["resolver"].spotter)
        return Simulation(people[:15], TemplateSimulator(seed=7), {"graph_only": system}).run()["dialogues"]

    first, second = run(), run()
    assert first == second
    assert any(len(d["turns"]) > 1 for d in first)  # misses go on: rejected lists, more facts


def test_an_oracle_scores_every_hit_on_the_first_turn(agent_parts, people) -> None:
    targets = {p.user_id: p.target for p in people}
    filler = [i for i in agent_parts["catalog"].items if i.warm][:4]

    def oracle(dialogue_id: str, text: str):
        target = targets[_user_of(dialogue_id)]
        items = [*filler[:2], target, *filler[2:]]
        return "here", [{"item_id": i.item_id, "title": i.title} for i in items]

    summary = Simulation(people, TemplateSimulator(), {"oracle": oracle}).run()["summary"]["oracle"]
    assert summary["hit_rate"] == 1.0 and summary["avg_turns"] == 1.0 and summary["hit_at"] == [1.0] * MAX_TURNS


def test_a_random_recommender_scores_near_chance(agent_parts, people) -> None:
    warm = [i for i in agent_parts["catalog"].items if i.warm]
    rng = random.Random(0)

    def lucky_dip(dialogue_id: str, text: str):
        return "", [{"item_id": i.item_id, "title": i.title} for i in rng.sample(warm, 5)]

    summary = Simulation(people, TemplateSimulator(), {"random": lucky_dip}).run()["summary"]["random"]
    chance = 1 - (1 - 5 / len(warm)) ** MAX_TURNS  # about 1.5%
    bound = chance + 3 * math.sqrt(chance * (1 - chance) / len(people))
    assert summary["hit_rate"] <= bound
    assert summary["avg_turns"] >= 5.5


def test_the_graph_system_beats_chance_on_the_same_people(agent_parts, people) -> None:
    system = graph_system(agent_parts["tool"], agent_parts["resolver"].spotter)
    summary = Simulation(people, TemplateSimulator(), {"graph_only": system}).run()["summary"]["graph_only"]
    assert summary["hit_rate"] >= 0.15, summary  # fold-in from the titles named finds held-out items


def test_scores_by_hand() -> None:
    s = score([1, None, 3, 2])
    assert s["hit_rate"] == 0.75 and s["hits"] == 3
    assert s["hit_at"] == [0.25, 0.5, 0.75, 0.75, 0.75]
    assert s["avg_turns"] == 3.0  # (1 + 6 + 3 + 2) / 4: a miss counts 6
    assert s["avg_turns_ci95"][0] <= 3.0 <= s["avg_turns_ci95"][1]
    assert wilson_interval(3, 4) == pytest.approx([0.3006, 0.9544], abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_the_llm_simulator_replaces_words_that_name_the_target(people) -> None:
    """An LLM that blurts the title (a scripted double) is overruled by the template's words."""
    person = people[0]

    class Blurting:
        def invoke(self, messages, max_tokens=None):
            return SimpleNamespace(content=f"I want {spoken_title(person.target.title)}, obviously.")

    sim = LLMSimulator(Blurting(), seed=1)
    words = sim.utterance(person, 1, None)
    assert words == TemplateSimulator(seed=1).utterance(person, 1, None) and sim.fallbacks() == 1


def test_the_llm_simulator_speaks_with_the_real_local_model(agent_parts, people) -> None:
    sim = LLMSimulator(agent_parts["llm"], seed=0)
    for person in people[:3]:
        words = sim.utterance(person, 2, [{"title": "Fargo"}])
        assert words.strip() and normalize_title(person.target.title) not in normalize_title(words)


def test_the_agent_systems_keep_their_sessions_out_of_the_persons_store(agent_parts, people, tmp_path) -> None:
    import sqlite3

    from agent.evals.simulate import agent_systems
    from tests.agents import build_agent

    agent = build_agent(agent_parts, tmp_path / "own")
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    systems = agent_systems(agent, sim_dir, ["agent_no_rerank"])
    dialogues = Simulation(people[:2], TemplateSimulator(seed=1), systems).run()["dialogues"]

    def stored(folder):
        with sqlite3.connect(folder / "sessions.sqlite3") as db:
            return db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]

    assert len(dialogues) == 2 and stored(sim_dir) == 2
    assert stored(tmp_path / "own") == 0
    with pytest.raises(ValueError, match="unknown system"):
        agent_systems(agent, sim_dir, ["oracle"])
