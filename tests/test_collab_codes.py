"""BinLLM's collaborative field: codes fitted on the graph model's training pairs only, kept in the
data home, put into the instruction data and the re-rank prompt, and tuned in two steps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.tuning import codes as collab_codes, instruct
from agent.cli import app
from agent.evals.rerank import load_eval_data
from tools.candidates import Candidate
from tools.rerank import Reranker

DOTTED = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


@pytest.fixture(scope="module")
def ev(trained, chatrec_home: Path):
    return load_eval_data(trained, chatrec_home)


@pytest.fixture(scope="module")
def codes(trained, tmp_path_factory) -> collab_codes.CollabCodes:
    return collab_codes.load_codes(trained, tmp_path_factory.mktemp("codes-home"))


def test_every_user_and_item_has_a_dotted_code_that_carries_signal(trained, ev, codes) -> None:
    assert len(codes.users) == trained.n_users and len(codes.items) == trained.n_items
    assert all(DOTTED.match(c) and all(int(x) <= 255 for x in c.split(".")) for c in codes.users.values())
    assert all(DOTTED.match(c) for c in codes.items.values())
    valid = ev.valid.tocoo()
    pairs = np.c_[valid.row, valid.col][:1500]
    # not a handful of buckets (the test fixture's briefly trained graph gives 339 distinct item
    # codes of 1,682 — rarely rated items sit close together; the full model gives about 1,540)
    assert len(set(codes.items.values())) >= 100
    # held-out (validation) pairs: the person's code is nearer their item's than a random item's
    assert collab_codes.hamming_auc(codes, trained, pairs) > 0.6


def test_codes_are_fitted_on_training_pairs_only(trained, ev, tmp_path: Path, monkeypatch) -> None:
    seen = {}
    real_fit = collab_codes.BinaryCoder.fit

    def spy(self, user_emb, item_emb, users, items, **kwargs):
        seen["pairs"] = set(zip(np.asarray(users).tolist(), np.asarray(items).tolist()))
        return real_fit(self, user_emb, item_emb, users, items, **kwargs)

    monkeypatch.setattr(collab_codes.BinaryCoder, "fit", spy)
    collab_codes.load_codes(trained, tmp_path)
    train = ev.train.tocoo()
    held_out = set(zip(ev.valid.tocoo().row.tolist(), ev.valid.tocoo().col.tolist())) | set(
        zip(ev.test.tocoo().row.tolist(), ev.test.tocoo().col.tolist()))
    assert seen["pairs"] == set(zip(train.row.tolist(), train.col.tolist()))
    assert not seen["pairs"] & held_out


def test_codes_are_kept_and_a_damaged_or_foreign_file_is_fitted_again(trained, tmp_path: Path, monkeypatch) -> None:
    first = collab_codes.load_codes(trained, tmp_path)
    path = tmp_path / collab_codes.CODES_FILE
    assert path.is_file() and not list(path.parent.glob(".*.part"))

    def refuse(*args, **kwargs):
        raise AssertionError("fitted again although the saved codes fit this model")

    with monkeypatch.context() as m:
        m.setattr(collab_codes, "fit_coder", refuse)
        assert collab_codes.load_codes(trained, tmp_path) == first  # read back, not refitted
    path.write_bytes(b"not a torch file")
    assert collab_codes.load_codes(trained, tmp_path) == first  # refitted, same seed, same codes
    other = trained.with_items(["cold-1"], trained.item_factors_[:1])  # another model: one more item
    again = collab_codes.load_codes(other, tmp_path)
    assert "cold-1" in again.items and len(again.items) == trained.n_items + 1


def test_instruction_data_with_codes_keeps_the_plain_rows_and_adds_the_coded_ask(ev, codes) -> None:
    plain = instruct.make_instructions(ev, users=25, seed=5, progress=False)
    coded = instruct.make_instructions(ev, users=25, seed=5, progress=False, codes=codes)
    assert [r.messages for r in coded] == [r.messages for r in plain]  # same picks, same plain prompts
    assert [r.answer for r in coded] == [r.answer for r in plain]
    assert all(r.coded is None for r in plain)
    for row in coded:
        if row.task in ("router", "explain"):
            assert row.coded is None
            continue
        assert row.coded is not None and row.coded[0]["content"].endswith(codes.note)
        ask = row.coded[-1]["content"]
        assert ask.startswith(f"Their code: {codes.user(row.user)}\n")
        shown = row.items.get("candidates") or row.items.get("positive", []) + row.items.get("negative", [])
        for item_id in shown:
            assert f"[code {codes.item(item_id)}]" in ask, (row.task, item_id)
        # the coded ask is the plain one plus the codes
        stripped = re.sub(r" \[code [\d.]+\]", "", ask.split("\n", 1)[1])
        assert stripped == row.messages[-1]["content"]


def test_the_rerank_prompt_takes_codes_and_refuses_a_short_list(ev) -> None:
    shown = [Candidate(ev.items[i], 0.0, "graph") for i in range(3)]
    rr = Reranker(llm=None)
    messages = rr.prompt(shown, 2, profile=["Fargo"], codes=("NOTE", "1.2.3.4", ["5.6.7.8", "9.9.9.9", "0.0.0.1"]))
    assert messages[0]["content"].endswith("\nNOTE")
    assert messages[1]["content"].startswith("Their code: 1.2.3.4\n") and "[code 9.9.9.9]" in messages[1]["content"]
    assert rr.prompt(shown, 2, profile=["Fargo"])[1]["content"] in messages[1]["content"].replace(" [code 5.6.7.8]", "") \
        .replace(" [code 9.9.9.9]", "").replace(" [code 0.0.0.1]", "")
    with pytest.raises(ValueError, match="2 candidate codes for 3"):
        rr.prompt(shown, 2, codes=("NOTE", "1.2.3.4", ["5.6.7.8", "9.9.9.9"]))


def test_eval_rerank_passes_the_codes_to_the_llm(trained, chatrec_home: Path, codes) -> None:
    from agent.evals.rerank import evaluate_rerank

    class Scripted:
        def __init__(self) -> None:
            self.calls = []

        def invoke(self, messages, **kwargs):
            self.calls.append(messages)
            return type("Answer", (), {"content": json.dumps({"order": [1, 2, 3, 4, 5]})})()

    llm = Scripted()
    evaluate_rerank(trained, home=chatrec_home, llm=llm, users=3, seed=2, n_boot=100, progress=False,
                    methods=("graph", "llm"), codes=codes)
    asks = [m[-1].content for m in llm.calls]
    assert len(asks) == 3 and all(a.startswith("Their code: ") and a.count("[code ") == 20 for a in asks)


def test_the_commands_make_coded_data_and_tune_in_two_steps(trained, chatrec_home: Path, tmp_path: Path,
                                                            monkeypatch) -> None:
    """tune data --codes, then tune train --codes two-step on the shipped model: the first step's
    adapter is the agent's, the second (with codes) is saved apart and not loaded by default."""
    from agent.config import Settings
    from agent.llm import default_model_path, make_chat_model
    from agent.llm import adapter_path

    plain, coded = tmp_path / "plain.jsonl", tmp_path / "coded.jsonl"
    made = CliRunner().invoke(app, ["tune", "data", "--users", "6", "--task", "pointwise", "--out", str(plain)])
    assert made.exit_code == 0, made.output
    made = CliRunner().invoke(app, ["tune", "data", "--users", "6", "--task", "pointwise", "--codes", "--out", str(coded)])
    assert made.exit_code == 0, made.output
    assert "0.5 = no signal" in made.output
    rows = instruct.read_instructions(coded)
    assert rows and all(r.coded for r in rows)

    home = tmp_path / "home"
    monkeypatch.setenv("CHATREC_HOME", str(home))
    refused = CliRunner().invoke(app, ["tune", "train", "--data", str(plain), "--codes", "on"])
    assert refused.exit_code != 0 and "tune data --codes" in refused.output
    wrong = CliRunner().invoke(app, ["tune", "train", "--data", str(coded), "--codes", "sometimes"])
    assert wrong.exit_code != 0 and "off, on or two-step" in wrong.output

    result = CliRunner().invoke(app, ["tune", "train", "--data", str(coded), "--codes", "two-step", "--max-steps", "1",
                                      "--batch-size", "2", "--rank", "4"])
    assert result.exit_code == 0, result.output
    first, second = adapter_path(home, default_model_path()), adapter_path(home, default_model_path(), "codes")
    assert first.is_file() and second.is_file() and first.read_bytes() != second.read_bytes()
    assert "eval-rerank --codes" in result.output
    assert make_chat_model(Settings()).lora_path == str(first)  # the agent's prompts carry no codes
