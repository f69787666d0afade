"""chatrec tune data: instructions from the real ml-100k split and a LightGCN trained here.
No test-split interaction appears in any instruction; every facet and task form is there; the
answers are what the served prompts expect (yes/no, A/B, a valid re-rank order, a faithful
explanation); the same seed gives the same data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.tuning import instruct
from agent.cli import app
from agent.evals.rerank import load_eval_data
from tools.explain import Evidence, unfaithful
from tools.rerank import validate_order
from tools.resolve import TitleSpotter


@pytest.fixture(scope="module")
def ev(trained, chatrec_home: Path):
    return load_eval_data(trained, chatrec_home)


@pytest.fixture(scope="module")
def made(ev) -> list[instruct.Instruction]:
    return instruct.make_instructions(ev, users=60, seed=3, progress=False)


def _pairs(m) -> set[tuple[str, str]]:
    m = m.tocoo()
    return set(zip(m.row.tolist(), m.col.tolist()))


def test_no_test_interaction_leaks_into_the_instructions(ev, made) -> None:
    rec = ev.recommender
    test = {(str(rec.user_ids[u]), str(rec.item_ids[i])) for u, i in _pairs(ev.test)}
    train = {(str(rec.user_ids[u]), str(rec.item_ids[i])) for u, i in _pairs(ev.train)}
    valid = {(str(rec.user_ids[u]), str(rec.item_ids[i])) for u, i in _pairs(ev.valid)}
    checked = 0
    for ins in made:
        if ins.user is None:
            continue
        for role, items in ins.items.items():
            for item in items:
                pair = (ins.user, item)
                assert pair not in test, (ins.task, role, pair)
                if role == "history":
                    assert pair in train, (ins.task, pair)
                if role == "positive":
                    assert pair in valid, (ins.task, pair)
                checked += 1
    assert checked > 1000
    # and no test item of the person is named in an ask: items are shown as "Title (year)"
    named_in_test = {}
    for u, i in _pairs(ev.test):
        item = ev.items[i]
        named_in_test.setdefault(str(rec.user_ids[u]), set()).add(f"{item.title} ({item.year})")
    for ins in made:
        if ins.user and ins.task in ("pointwise", "pairwise", "rerank"):
            text = ins.messages[-1]["content"]
            assert not {t for t in named_in_test.get(ins.user, ()) if t in text}, (ins.task, text)


def test_every_task_and_facet_is_there_with_enough_templates(made) -> None:
    assert instruct.count_templates() >= 30
    summary = instruct.summarize(made)
    assert set(summary["by_task"]) == set(instruct.TASKS)
    assert {"implicit", "explicit"} <= set(summary["by_facet"]["preference"])
    assert {"none", "vague", "specific"} <= set(summary["by_facet"]["intention"])
    # phrasing varies: many templates used, not one
    used = Counter(i.template for i in made if i.task in ("pointwise", "pairwise"))
    assert len(used) >= 8


def test_answers_are_what_the_served_prompts_expect(made) -> None:
    pointwise = [i for i in made if i.task == "pointwise"]
    assert Counter(i.answer for i in pointwise) == {"yes": len(pointwise) // 2, "no": len(pointwise) // 2}
    assert {i.answer for i in made if i.task == "pairwise"} <= {"A", "B"}
    for ins in (i for i in made if i.task == "rerank"):
        n = len(ins.items["candidates"])
        order, problem = validate_order(ins.answer, n, 5)
        assert order is not None and len(order) == 5, problem
        # the person's validation items lead, in graph order
        leading = [ins.items["candidates"][k] for k in order[:len(ins.items["positive"])]]
        assert sorted(leading) == sorted(ins.items["positive"][:5])
        assert "Candidates:" in ins.messages[-1]["content"]
    for ins in (i for i in made if i.task == "router"):
        assert json.loads(ins.answer)["intent"] in ("recommend", "explain", "chitchat")


def test_explanation_targets_name_only_the_evidence(ev, made) -> None:
    spotter = TitleSpotter(ev.items)
    explains = [i for i in made if i.task == "explain"]
    assert len(explains) >= 30
    rec = ev.recommender
    for ins in explains:
        item = ev.items[rec.item_index(ins.items["positive"][0])]
        nearest = [{"title": ev.items[rec.item_index(g)].title, "item_id": g} for g in ins.items["history"]]
        facts = ins.messages[-1]["content"]
        shared = facts.split("It shares genres with what they like: ")[1].split(".")[0].split(", ") \
            if "It shares genres" in facts else []
        ev_ = Evidence(item, nearest=nearest, shared_genres=shared)
        assert item.title in ins.answer
        assert unfaithful(ins.answer, ev_, spotter) == [], ins.answer


def test_the_same_seed_gives_the_same_data(ev, made) -> None:
    again = instruct.make_instructions(ev, users=60, seed=3, progress=False)
    assert [i.to_dict() for i in again] == [i.to_dict() for i in made]
    other = instruct.make_instructions(ev, users=60, seed=4, progress=False, tasks=("pointwise",))
    assert [i.to_dict() for i in other] != [i.to_dict() for i in made if i.task == "pointwise"]


def test_the_command_writes_json_lines_and_rejects_unknown_tasks(trained, chatrec_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.jsonl"
    result = CliRunner().invoke(app, ["tune", "data", "--users", "20", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = instruct.read_instructions(out)
    assert rows and {r.task for r in rows} == set(instruct.TASKS)
    assert f"{len(rows)} instructions" in result.output
    bad = CliRunner().invoke(app, ["tune", "data", "--task", "poetry", "--out", str(out)])
    assert bad.exit_code != 0 and "poetry" in bad.output
    assert instruct.read_instructions(out) == rows  # the earlier file is untouched
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task": "rerank"}\n{not json\n')
    with pytest.raises(ValueError, match="line 1"):
        instruct.read_instructions(broken)


def test_tune_train_exports_an_adapter_the_local_backend_then_uses(trained, chatrec_home: Path, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """The whole path on the shipped model: data → two LoRA steps → llama.cpp adapter in the data
    home → the local backend loads base + adapter and answers."""
    from agent.config import Settings
    from agent.llm import LocalChatModel, default_model_path, make_chat_model
    from agent.llm import adapter_path

    home = tmp_path / "home"
    monkeypatch.setenv("CHATREC_HOME", str(home))
    data = tmp_path / "few.jsonl"
    instruct.write_instructions(data, [i for i in instruct.make_instructions(
        load_eval_data(trained, chatrec_home), users=4, seed=0, tasks=("pointwise",), progress=False)])
    result = CliRunner().invoke(app, ["tune", "train", "--data", str(data), "--max-steps", "2", "--batch-size", "2",
                                      "--rank", "4"])
    assert result.exit_code == 0, result.output
    adapter = adapter_path(home, default_model_path())
    assert adapter.is_file() and str(adapter) in result.output
    assert (home / "tune" / "checkpoints").is_dir()
    llm = make_chat_model(Settings())
    assert isinstance(llm, LocalChatModel) and llm.lora_path == str(adapter)
    from agent.evals.runs import model_name

    assert model_name(Settings()).endswith(f"+ LoRA {adapter.name}")  # saved runs say the model was tuned
    answer = llm.invoke([("system", "Answer yes or no."), ("human", "Is Fargo a film?")], max_tokens=4).content
    assert answer.strip()
    monkeypatch.setenv("CHATREC_LLM_ADAPTER", "none")  # back to the base model without deleting anything
    assert make_chat_model(Settings()).lora_path is None and adapter.is_file()
    missing = CliRunner().invoke(app, ["tune", "train", "--data", str(tmp_path / "none.jsonl")])
    assert missing.exit_code != 0 and "chatrec tune data" in missing.output


def test_excluded_users_are_never_sampled(ev, made) -> None:
    """For held-out measurements: people a model was tuned on can be left out of the sample."""
    tuned_on = {i.user for i in made if i.user}
    held_out = instruct.make_instructions(ev, users=60, seed=3, progress=False, tasks=("pointwise",),
                                          exclude_users=tuned_on)
    assert held_out and not {i.user for i in held_out} & tuned_on


def test_half_the_pointwise_nos_are_the_graphs_own_picks(ev, made) -> None:
    """Ranking the graph's top-20 by "yes" is what the pointwise asks train for, so half their
    negatives come from that list; the others are random films. Neither was rated by the person."""
    from recsys.users import graph_candidates

    rec = ev.recommender
    maker = instruct.InstructionMaker(ev)
    rated = (ev.train + ev.valid + ev.test).tocsr()
    nos = [i for i in made if i.task == "pointwise" and i.answer == "no"]
    kinds = Counter(i.facets["negative"] for i in nos)
    assert set(kinds) == {"graph", "random"} and min(kinds.values()) >= len(nos) // 4
    for ins in nos:
        u, [item] = rec.user_index(ins.user), ins.items["negative"]
        assert rated[u, rec.item_index(item)] == 0
        if ins.facets["negative"] == "graph":
            in_test = np.array(sorted(maker._with_twins(ev.test[u].indices)), dtype=np.int64)
            top, _ = graph_candidates(rec, u, also_exclude=in_test)
            assert rec.item_index(item) in top


def test_graph_list_pointwise_asks_are_the_rerankers_own_situation(ev) -> None:
    """--pointwise graph-list: the "yes" is a validation film the graph ranked in its top-20 and the
    "no" another of its picks the person never rated; titles they rated, no request, as the
    pointwise re-ranker asks at serving time. No test interaction appears (same check as above)."""
    from recsys.users import graph_candidates

    rec = ev.recommender
    maker = instruct.InstructionMaker(ev)
    made = instruct.make_instructions(ev, users=60, seed=3, progress=False, tasks=("pointwise",),
                                      pointwise="graph-list")
    rated = (ev.train + ev.valid + ev.test).tocsr()
    assert len(made) > 40 and Counter(i.answer for i in made) == {"yes": len(made) // 2, "no": len(made) // 2}
    for ins in made:
        assert ins.facets["preference"] == "implicit" and ins.facets["intention"] == "none"
        assert "asked for" not in ins.messages[-1]["content"]
        u = rec.user_index(ins.user)
        [item] = ins.items["positive" if ins.answer == "yes" else "negative"]
        i = rec.item_index(item)
        in_test = np.array(sorted(maker._with_twins(ev.test[u].indices)), dtype=np.int64)
        top, _ = graph_candidates(rec, u, also_exclude=in_test)
        assert i in top and ev.test[u, i] == 0
        assert (ev.valid[u, i] != 0) if ins.answer == "yes" else (rated[u, i] == 0)
    with pytest.raises(ValueError, match="pointwise mode"):
        instruct.make_instructions(ev, users=5, tasks=("pointwise",), pointwise="hard")
