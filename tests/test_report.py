"""chatrec report: the latest run of each kind, read from the data home, becomes report.md /
report.html with PNG figures; every section names its run's provenance; a kind with no run says
which command makes one. The runs are small but in the shapes the commands save (the simulate
summary comes from the simulator's own scoring code)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app
from agent.evals.report import build_report
from agent.evals.runs import latest_run, save_run
from agent.evals.simulate import score
from bench.cross_domain import summarise

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _meta(command: str, seed: int | None = 0) -> dict:
    return {"command": command, "model": "SmolLM2-135M-Instruct", "backend": "local", "dataset": "ml-100k",
            "seed": seed, "date": "2026-11-23 12:00 UTC", "machine": "2 cores, test box"}


def _turn(expected: str | None, said: str, total: float) -> dict:
    turn = {"say": "hi", "intent": said, "reply": "…", "items": [], "checks": [], "latency_s": total + 0.01,
            "timings": {"router": 0.1, "reply": total - 0.1, "total": total}}
    return turn | ({"expected_intent": expected} if expected else {})


def _save_all(home: Path) -> None:
    sim = {"users": 4, "simulator": "template", "agent": score([1, 2, None, 1]),
           "graph_only": score([3, None, None, 1])}
    save_run("simulate", {"summary": sim, "dialogues": []}, _meta("chatrec simulate --users 4 --seed 7", 7), home)
    metrics = {"precision@5": 0.2, "recall@5": 0.1, "ndcg@5": 0.3, "ndcg@5_ci95": [0.25, 0.35]}
    save_run("rerank", {"graph": metrics, "llm": metrics | {"ndcg@5": 0.28, "ndcg@5_diff_ci95": [-0.04, 0.0]},
                        "verdict": {"llm": "The LLM re-rank does not beat the graph order."}},
             _meta("chatrec eval-rerank --users 9"), home)
    turns = [_turn("recommend", "recommend", 1.0), _turn("recommend", "recommend", 2.0),
             _turn("explain", "chitchat", 0.5), _turn(None, "chitchat", 0.3)]
    save_run("dialogues", {"summary": {"dialogues": 2, "dialogues_passed": 1, "checks": 5, "checks_passed": 4},
                           "dialogues": [{"name": "a", "turns": turns[:2]}, {"name": "b", "turns": turns[2:]}]},
             _meta("chatrec eval-dialogues d.yaml", None), home)
    faith = {"explanations": 10, "before_guard": {"count": 8, "share": 0.8, "unfaithful_by_kind": {"genre": 2}},
             "after_guard": {"count": 10, "share": 1.0}, "replaced": {"count": 3, "reasons": {"empty": 3}}}
    xrec = {"lines": 5, "model": "SmolLM2", "ours": {"minilm_cosine": 0.5, "rouge_l": 0.2, "bleu4": 0.05,
                                                      "unique_ratio": 1.0},
            "xrec": {"minilm_cosine": 0.55, "rouge_l": 0.25, "bleu4": 0.1, "unique_ratio": 1.0}}
    save_run("explain", {"xrec_yelp": xrec}, _meta("chatrec eval-explain --part xrec"), home)
    save_run("explain", {"faithfulness": faith}, _meta("chatrec eval-explain --part faithfulness"), home)
    pop = {"recall@1": 0.011, "recall@10": 0.064, "recall@50": 0.181, "ndcg@10": 0.034, "mrr@10": 0.025,
           "recall@10_ci95": [0.055, 0.073], "seconds_per_line": 0.0}
    save_run("crs", {"summary": {"lines": 2716, "labels": 3595, "coverage": 1.0, "seconds_per_line": 0.0,
                                 "systems": {"popularity": pop}, "paired": {}}, "lines": []},
             _meta("chatrec eval-crs valid_data_processed.jsonl --items id2info.json"), home)
    books = summarise([1, None, 4], [0.5, None, 1.0], [1.0, 0.0, 1.0], [0.2, 0.3, 0.4], 0)
    save_run("cross_domain", {"pairs": 402, "pair_precision": 0.96, "pairs_checked": 50, "pairs_ml100k": 108,
                              "users": 4, "min_adapted": 3, "systems": {"chat": books, "request_text": books}},
             _meta("python -m bench.cross_domain --seed 0"), home)


def test_a_report_of_every_kind_with_its_provenance(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "report"
    _save_all(home)
    made = build_report(home, out)
    assert all(made["runs"].values())
    # the explain part is found in the older run even though a newer explain run lacks it
    assert "xrec" in json.loads(Path(made["runs"]["xrec"]).read_text())["meta"]["command"]
    assert set(made["figures"]) == {"simulate_hits.png", "rerank_ndcg.png", "router_confusion.png",
                                    "latency_steps.png", "xrec_metrics.png", "crs_recall10.png",
                                    "cross_domain_hit10.png"}
    for name in made["figures"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    md = (out / "report.md").read_text(encoding="utf-8")
    for command in ("chatrec simulate --users 4 --seed 7", "chatrec eval-rerank --users 9",
                    "chatrec eval-dialogues d.yaml", "chatrec eval-explain --part faithfulness",
                    "chatrec eval-explain --part xrec"):
        assert f"`{command}`" in md
    assert md.count("2 cores, test box") == 8 and "seed 7" in md and "seed —" in md  # seedless run
    # simulate: the scores as the simulator computed them (agent hits at turns 1, 2, 1 of 4 users)
    assert "| agent | 0.750 |" in md and "0.500 0.750 0.750 0.750 0.750" in md
    assert "| graph_only | 0.500 |" in md
    # router confusion matrix by hand: recommend→recommend 2, explain→chitchat 1; the turn with
    # no expected intent is left out
    assert "| recommend | 2 | 0 | 0 |" in md and "| explain | 0 | 0 | 1 |" in md
    assert "Intent accuracy on the 3 turns that expect one: 66.7%." in md
    # latency: 4 turns have router and total timings; the median of 0.3, 0.5, 1 and 2 s is 0.75 s
    assert "| total | 4 | 0.750 |" in md and "| router | 4 |" in md
    assert "| before the guard (the LLM's text) | 8/10 | 80.0% |" in md
    assert "| BLEU-4 | 0.0500 | 0.1000 |" in md
    assert "| popularity | 0.011 | 0.064 | [0.055, 0.073] | 0.181 | 0.034 | 0.025 | 0.000 |" in md
    assert "The LLM re-rank does not beat the graph order." in md
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.count("<img ") == 7 and "<code>chatrec simulate" in page


def test_missing_runs_say_which_command_makes_them(tmp_path: Path) -> None:
    made = build_report(tmp_path / "empty-home", tmp_path / "out")
    assert made["figures"] == [] and not any(made["runs"].values())
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "No run yet: `chatrec simulate --users 200 --seed 0` makes one." in md
    assert "No run yet: `chatrec eval-rerank" in md and "No run yet: `chatrec eval-dialogues" in md


def test_latest_run_skips_unreadable_files_and_can_ask_for_a_part(tmp_path: Path) -> None:
    save_run("explain", {"faithfulness": {}}, _meta("first"), tmp_path)
    folder = tmp_path / "runs" / "explain"
    (folder / "99999999T999999.000000-1.json").write_text("{ half written")  # sorts newest
    assert latest_run("explain", tmp_path)["meta"]["command"] == "first"
    assert latest_run("explain", tmp_path, having="xrec_yelp") is None
    assert latest_run("simulate", tmp_path) is None


def test_the_command_writes_into_the_folder_it_is_given(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    _save_all(home)
    monkeypatch.setenv("CHATREC_HOME", str(home))
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file() and "7 figures" in result.output
