"""The chatrec command line, used as a person would (through typer's runner, real data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "byo"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _all_commands() -> list[list[str]]:
    """Every command and sub-command the CLI has, so a new one cannot miss its --help test."""
    import typer

    def walk(group, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, command in group.commands.items():  # typer's groups are not click.Group: duck-typed
            found += walk(command, path + [name]) if hasattr(command, "commands") else [path + [name]]
        return found

    return walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: " ".join(c) or "chatrec")
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


@pytest.mark.model  # trains LightGCN
def test_train_evaluate_recommend_on_ml100k(chatrec_home, ml100k):
    trained = run("train", "--epochs", "3", "--patience", "3")
    assert trained.exit_code == 0, trained.output
    model_dir = chatrec_home / "models" / "ml-100k"
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert (model_dir / "lightgcn.pt").is_file() and saved["epochs_run"] == 3

    evaluated = run("evaluate", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.output)
    assert sorted(metrics) == sorted(saved["test"])
    assert len(metrics) == 15 and metrics["ndcg@20"] == pytest.approx(saved["test"]["ndcg@20"])

    rows = json.loads(run("recommend", "--user", "196", "--json", "--k", "10").output)
    history = set(ml100k.item_ids[ml100k.items[ml100k.users == list(ml100k.user_ids).index("196")]])
    assert len(rows) == 10 and all(r["title"] for r in rows) and not history & {r["item_id"] for r in rows}

    folded = json.loads(run("recommend", "--liked", "50", "--liked", "181", "--json").output)
    assert folded and {"50", "181"}.isdisjoint(r["item_id"] for r in folded)

    unknown = run("recommend", "--user", "no-such-user")
    assert unknown.exit_code == 2 and "unknown user id 'no-such-user'" in unknown.output


@pytest.mark.model  # trains LightGCN
def test_bring_your_own_data_by_name(chatrec_home, tmp_path):
    added = run("data", "add", "mine", "--interactions", str(FIXTURES / "interactions.csv"),
                "--items", str(FIXTURES / "items.csv"))
    assert added.exit_code == 0, added.output
    listed = {row["name"] for row in json.loads(run("data", "list", "--json").output)}
    assert {"ml-100k", "ml-1m", "ml-latest-small", "book-crossing", "mine"} <= listed
    trained = run("train", "--dataset", "mine", "--epochs", "2", "--out", str(tmp_path / "m"))
    assert trained.exit_code == 0, trained.output

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id\nu1,m1\nu2,nope\n")
    refused = run("data", "add", "broken", "--interactions", str(bad), "--items", str(FIXTURES / "items.csv"))
    assert refused.exit_code == 2
    assert "bad.csv" in refused.output and "line 3" in refused.output and "nope" in refused.output
    assert not (chatrec_home / "datasets" / "broken").exists()


def test_sessions_are_listed_and_deleted(chatrec_home: Path) -> None:
    from agent.state import SESSIONS_FILE, SessionStore

    store = SessionStore(chatrec_home / SESSIONS_FILE)
    state = store.new(session_id="cli-test")
    state.add_turn("user", "hello")
    store.save(state)
    listed = run("sessions", "--json")
    assert listed.exit_code == 0
    row = next(r for r in json.loads(listed.stdout) if r["session_id"] == "cli-test")
    assert row["turns"] == 1
    deleted = run("sessions", "--delete", "cli-test", "--delete", "nope")
    assert "cli-test: deleted" in deleted.output and "nope: no such session" in deleted.output
    assert store.get("cli-test") is None
