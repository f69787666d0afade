"""Conversational recommendation on ReDial (agent/evals/crs.py, `chatrec eval-crs`).

The reader against malformed files it is given (file, line and reason); iEvaLM's RecMetric on a
hand-computed case; the evaluation on tiny files with scripted systems (figures, intervals,
pairs, examples); the system factory; the report
section; and, where the benchmark is present (``../shared/benchmarks/redial`` next to the repo,
or ``$CHATREC_BENCHMARKS/redial``), the command on 20 real lines and popularity on the whole
valid file against the README's figures.
"""

from __future__ import annotations

import json
import math
import os
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.evals import crs
from agent.evals.report import build_report
from agent.evals.runs import save_run
from recsys.data import DataError

runner = CliRunner()

BENCHMARKS = Path(os.environ.get("CHATREC_BENCHMARKS") or Path(__file__).resolve().parents[2] / "shared" / "benchmarks")
REDIAL = BENCHMARKS / "redial"
VALID, ID2INFO = REDIAL / "valid_data_processed.jsonl", REDIAL / "id2info.json"
needs_redial = pytest.mark.skipif(not (VALID.is_file() and ID2INFO.is_file()),
                                  reason=f"the ReDial benchmark is not at {REDIAL} (set CHATREC_BENCHMARKS to the "
                                         "folder holding redial/; see ../shared/benchmarks/README.md)")

CATALOGUE = {"1": {"name": "Alien (1979)"}, "2": {"name": "Heat (1995)"}, "3": {"name": "Up (2009)"},
             "4": {"name": "Fargo (1996)"}, "5": {"name": "Jaws (1975)"}}


def _line(dialog: str, turn: int, context: list[str], rec: list[str], **extra) -> dict:
    return {"dialog_id": dialog, "turn_id": turn, "context": context, "entity": [], "rec": rec,
            "resp": "how about " + " and ".join(map(str, rec)), "template": [], **extra}


def _write(path: Path, objs: list) -> Path:
    path.write_text("\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n", encoding="utf-8")
    return path


def _tiny(tmp_path: Path) -> tuple[Path, Path]:
    """Two dialogues, four lines, five labels (one not in the catalogue)."""
    lines = [_line("d1", 2, ["", "hi", "I like Alien (1979)"], ["Heat (1995)"]),
             _line("d1", 4, ["", "hi", "I like Alien (1979)", "how about Heat (1995)", "seen it"],
                   ["Up (2009)", "Nowhere (2020)"]),
             _line("d2", 2, ["", "hello", "something funny"], ["Fargo (1996)"]),
             _line("d2", 4, ["", "hello", "something funny", "how about Fargo (1996)", "more"], ["Jaws (1975)"])]
    items = tmp_path / "id2info.json"
    items.write_text(json.dumps(CATALOGUE), encoding="utf-8")
    return _write(tmp_path / "tiny.jsonl", lines), items


# ------------------------------------------------------------------------------------ reading

GOOD = _line("d1", 2, ["", "hi"], ["Heat (1995)"])
BAD_LINES = {
    "not JSON": ("{not json", "not JSON"),
    "not an object": ("[1, 2]", "a JSON object expected, not list"),
    "missing rec": ({k: v for k, v in _line("d2", 2, ["x"], ["Up (2009)"]).items() if k != "rec"}, "missing field 'rec'"),
    "missing context": ({k: v for k, v in _line("d2", 2, ["x"], ["Up (2009)"]).items() if k != "context"},
                        "missing field 'context'"),
    "turn_id a string": (_line("d2", "2", ["x"], ["Up (2009)"]), "turn_id must be an integer"),
    "turn_id a bool": (_line("d2", True, ["x"], ["Up (2009)"]), "turn_id must be an integer"),
    "dialog_id a number": (_line(7, 2, ["x"], ["Up (2009)"]), "dialog_id must be a non-empty string"),
    "context a string": (_line("d2", 2, "x", ["Up (2009)"]), "context must be a list of strings"),
    "rec with a number": (_line("d2", 2, ["x"], ["Up (2009)", 3]), "rec must be a list of strings"),
    "empty rec": (_line("d2", 2, ["x"], []), "rec is empty"),
    "empty label": (_line("d2", 2, ["x"], ["  "]), "rec holds an empty label"),
    "resp missing type": (_line("d2", 2, ["x"], ["Up (2009)"], resp=None), "resp must be a string"),
    "context not extended": (_line("d1", 4, ["", "hello"], ["Up (2009)"]), "does not extend its previous line's (line 1)"),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_the_reader_names_file_line_and_reason(tmp_path: Path, kind: str) -> None:
    bad, reason = BAD_LINES[kind]
    path = _write(tmp_path / "f.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as caught:
        crs.read_crs_file(path)
    assert str(caught.value).startswith(f"{path}:2: ") and reason in str(caught.value)


def test_the_reader_rejects_a_dialogue_that_comes_back_and_an_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.jsonl", [GOOD, _line("d2", 2, ["x"], ["Up (2009)"]), "",
                                         _line("d1", 4, ["", "hi", "a", "b"], ["Up (2009)"])])
    with pytest.raises(DataError, match=r"f.jsonl:4: dialogue d1 comes back"):
        crs.read_crs_file(path)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="no lines"):
        crs.read_crs_file(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="cannot read"):
        crs.read_crs_file(tmp_path / "absent.jsonl")


def test_the_reader_keeps_the_fields_and_skips_blank_lines(tmp_path: Path) -> None:
    path, _ = _tiny(tmp_path)
    lines = crs.read_crs_file(path)
    assert [(x.dialog_id, x.turn_id, x.line_no) for x in lines] == [("d1", 2, 1), ("d1", 4, 2), ("d2", 2, 3), ("d2", 4, 4)]
    assert lines[1].rec == ["Up (2009)", "Nowhere (2020)"] and lines[1].context[-1] == "seen it"


def test_id2info_is_checked(tmp_path: Path) -> None:
    cases = {"absent.json": (None, "cannot read"), "broken.json": ("{", "not JSON"),
             "list.json": ("[]", "non-empty JSON object"), "noname.json": ('{"1": {"genre": []}}', "item '1' has no string 'name'"),
             "notobj.json": ('{"1": "Heat (1995)"}', "item '1' is not an object")}
    for name, (text, reason) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=reason):
            crs.read_id2info(tmp_path / name)
    (tmp_path / "ok.json").write_text(json.dumps(CATALOGUE))
    assert crs.read_id2info(tmp_path / "ok.json")["2"]["name"] == "Heat (1995)"


def test_the_command_stops_on_a_bad_line_before_anything_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CHATREC_HOME", str(tmp_path / "home"))
    _, items = _tiny(tmp_path)
    bad = _write(tmp_path / "bad.jsonl", [GOOD, _line("d2", 2, ["x"], [])])
    result = runner.invoke(app, ["eval-crs", str(bad), "--items", str(items), "--system", "popularity"])
    assert result.exit_code == 2 and f"{bad}:2: rec is empty" in result.output
    assert not (tmp_path / "home" / "runs").exists()
    result = runner.invoke(app, ["eval-crs", str(tmp_path / "tiny.jsonl"), "--items", str(tmp_path / "none.json"),
                                 "--system", "popularity"])
    assert result.exit_code == 2 and "none.json: cannot read" in result.output
    result = runner.invoke(app, ["eval-crs", str(tmp_path / "tiny.jsonl"), "--items", str(items), "--system", "oracle"])
    assert result.exit_code == 2 and "unknown --system oracle" in result.output
    result = runner.invoke(app, ["eval-crs", str(tmp_path / "tiny.jsonl"), "--items", str(items), "--mentioned", "keep"])
    assert result.exit_code == 2 and "unknown --mentioned 'keep'" in result.output


# ------------------------------------------------------------------------------------ metric

def test_the_metric_is_iEvaLMs_recmetric_on_a_hand_computed_case() -> None:
    # the ranking holds Alien twice: de-duplicated it is Alien 0, Heat 1, Up 2, Fargo 3, then fillers
    ranked = ["Alien (1979)", "Heat (1995)", "Alien (1979)", "Up (2009)", "Fargo (1996)"]
    ranked += [f"Filler {i} (2000)" for i in range(6)] + ["Jaws (1975)"] + [f"Later {i} (2001)" for i in range(50)]
    # Up twice in rec: two labels; Nowhere is not ranked; Jaws is 11th (rank 10): in the top 50 only;
    # Later 49 is past 50 after the cut
    labels = ["Up (2009)", "Up (2009)", "Alien (1979)", "Nowhere (2020)", "Jaws (1975)", "Later 49 (2001)"]
    got = crs.score_ranking(ranked, labels)
    assert got["labels"] == 6
    assert got["recall@1"] == 1  # Alien
    assert got["recall@10"] == 3  # Up, Up, Alien
    assert got["recall@50"] == 4  # and Jaws
    # NDCG@10 per label 1/log2(rank+2): Up at rank 2 (not 3: the repeated Alien is dropped) twice, Alien at 0
    assert got["ndcg@10"] == pytest.approx(2 * (1 / math.log2(4)) + 1.0) == pytest.approx(2.0)
    # MRR@10 per label 1/(rank+1): 1/3 twice and 1
    assert got["mrr@10"] == pytest.approx(2 / 3 + 1)
    assert crs.dedupe(["a", "b", "a", "c"], k=2) == ["a", "b"]
    assert crs.score_ranking([], ["Up (2009)"]) == {"labels": 1, **{m: 0.0 for m in crs.METRICS}}


class Scripted:
    """Ranks from a table: dialog_id, turn_id -> names."""

    def __init__(self, name: str, table: dict) -> None:
        self.name, self.table, self.seen = name, table, []

    def rank(self, line: crs.CrsLine, k: int = 50) -> list[str]:
        self.seen.append((line.dialog_id, line.turn_id))
        return self.table.get((line.dialog_id, line.turn_id), [])[:k]


def test_evaluate_on_a_tiny_file_with_scripted_systems(tmp_path: Path) -> None:
    path, items = _tiny(tmp_path)
    lines, id2info = crs.read_crs_file(path), crs.read_id2info(items)
    good = Scripted("agent", {("d1", 2): ["Heat (1995)"], ("d1", 4): ["Alien (1979)", "Up (2009)"],
                              ("d2", 2): ["Fargo (1996)"], ("d2", 4): ["Alien (1979)"]})
    none = Scripted("graph", {})
    result = crs.evaluate(lines, {"agent": good, "graph": none}, id2info, progress=False, n_boot=200)
    s = result["summary"]
    assert good.seen == [("d1", 2), ("d1", 4), ("d2", 2), ("d2", 4)]  # file order
    assert (s["lines"], s["labels"], s["dialogues"]) == (4, 5, 2)
    assert s["coverage"] == 0.8  # Nowhere (2020) is not in the catalogue
    a = s["systems"]["agent"]
    # hits: Heat at 0, Up at 1, Fargo at 0; Nowhere and Jaws missed: 3 of 5 labels
    assert (a["recall@1"], a["recall@10"], a["recall@50"]) == (0.4, 0.6, 0.6)
    assert a["ndcg@10"] == round((1 + 1 / math.log2(3) + 1) / 5, 4) and a["mrr@10"] == round((1 + 0.5 + 1) / 5, 4)
    assert s["systems"]["graph"]["recall@10"] == 0.0 and s["systems"]["graph"]["recall@10_ci95"] == [0.0, 0.0]
    low, high = a["recall@10_ci95"]
    # two dialogues, d1 2/3 and d2 1/2: a resample holds d1 twice, d2 twice or both
    assert low >= 0.5 - 1e-9 and high <= 2 / 3 + 1e-4 and low <= 0.6 <= high
    pair = s["paired"]["agent - graph"]
    assert pair["recall@10_diff"] == 0.6 and pair["recall@10_diff_ci95"] == [low, high]
    assert set(s) >= {"lines", "labels", "coverage", "seconds_per_line", "systems"}
    assert all(set(f) >= {"recall@1", "recall@10", "recall@50", "ndcg@10", "mrr@10", "recall@10_ci95"}
               for f in s["systems"].values())
    assert [(x["dialog_id"], x["turn_id"]) for x in result["lines"]] == [("d1", 2), ("d1", 4), ("d2", 2), ("d2", 4)]
    assert result["lines"][1]["ranked"] == {"agent": ["Alien (1979)", "Up (2009)"], "graph": []}
    # examples: agent's, one per dialogue, hits first
    ex = s["examples"]
    assert [(e["dialog_id"], e["hit@10"]) for e in ex] == [("d1", True), ("d2", True)]
    assert ex[0]["context"] == ["", "hi", "I like Alien (1979)"] and ex[0]["top5"] == ["Heat (1995)"]
    # a system that returns something else is an error, not a silent zero
    with pytest.raises(TypeError, match="'bad' must return a list of names"):
        crs.evaluate(lines, {"bad": types.SimpleNamespace(name="bad", rank=lambda line, k=50: "Heat (1995)")},
                     id2info, progress=False)
    assert "R@10 agent - graph: +0.600" in crs.format_table(result)


def test_popularity_counts_entity_mentions_and_labels_of_every_line(tmp_path: Path) -> None:
    path, items = _tiny(tmp_path)
    lines = crs.read_crs_file(path)
    lines[0].entity = ["Alien (1979)", "horror", "Alien (1979)"]
    lines[1].entity = ["Alien (1979)", "Heat (1995)"]
    pop = crs.PopularitySystem(lines, crs.catalogue_names(crs.read_id2info(items)))
    # Alien 3 (entities), Heat 1 + 1 (a label, then an entity), Up 1, Fargo 1, Jaws 1; "horror" and
    # "Nowhere (2020)" are not catalogue names; ties keep first-seen order
    assert pop.counts == {"Alien (1979)": 3, "Heat (1995)": 2, "Up (2009)": 1, "Fargo (1996)": 1, "Jaws (1975)": 1}
    assert pop.rank(lines[2]) == ["Alien (1979)", "Heat (1995)", "Up (2009)", "Fargo (1996)", "Jaws (1975)"]
    assert pop.rank(lines[3], k=2) == ["Alien (1979)", "Heat (1995)"] and isinstance(pop, crs.CrsSystem)


def test_the_factory_builds_popularity_and_asks_crs_systems_for_the_rest(tmp_path: Path, monkeypatch) -> None:
    path, items = _tiny(tmp_path)
    lines, id2info = crs.read_crs_file(path), crs.read_id2info(items)
    with pytest.raises(ValueError, match="unknown system oracle"):
        crs.make_systems(["oracle"], lines=lines, id2info=id2info)
    calls = []
    fake = types.ModuleType("agent.evals.crs_systems")  # the real one loads the whole agent
    fake.make_system = lambda name, **kw: calls.append((name, kw)) or Scripted(name, {})
    monkeypatch.setitem(sys.modules, "agent.evals.crs_systems", fake)
    assert list(crs.make_systems(["popularity"], lines=lines, id2info=id2info)) == ["popularity"] and not calls
    built = crs.make_systems(["agent", "graph", "popularity"], lines=lines, id2info=id2info, settings="S",
                             graph_dataset="ml-latest-small", mentioned="leave-out")
    assert list(built) == ["agent", "graph", "popularity"]
    assert [(n, kw["lines"] is lines, kw["id2info"] is id2info, kw["settings"], kw["graph_dataset"], kw["mentioned"])
            for n, kw in calls] == [("agent", True, True, "S", "ml-latest-small", "leave-out"),
                                    ("graph", True, True, "S", "ml-latest-small", "leave-out")]


def test_the_report_shows_a_crs_run(tmp_path: Path) -> None:
    path, items = _tiny(tmp_path)
    lines, id2info = crs.read_crs_file(path), crs.read_id2info(items)
    result = crs.evaluate(lines, crs.make_systems(["popularity"], lines=lines, id2info=id2info), id2info,
                          progress=False, n_boot=200)
    result["summary"]["mentioned"] = "first"
    meta = {"command": "chatrec eval-crs tiny.jsonl --items id2info.json", "model": "m", "backend": "local",
            "dataset": "ReDial tiny.jsonl", "seed": 0, "date": "2026-01-01 00:00 UTC", "machine": "test box"}
    save_run("crs", result, meta, tmp_path / "home")
    made = build_report(tmp_path / "home", tmp_path / "out")
    assert made["runs"]["crs"] and "crs_recall10.png" in made["figures"]
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    r10 = result["summary"]["systems"]["popularity"]["recall@10"]
    assert "## Real dialogues (ReDial, iEvaLM protocol)" in md and "| popularity | " in md and f"{r10:.3f}" in md
    assert "`chatrec eval-crs tiny.jsonl --items id2info.json`" in md
    assert "Films the dialogue already named: ranked first" in md
    empty = build_report(tmp_path / "nothing", tmp_path / "out2")
    assert empty["runs"]["crs"] is None
    assert "No run yet: `chatrec eval-crs" in (tmp_path / "out2" / "report.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------ the real valid split

@needs_redial
def test_the_command_on_20_real_lines_keeps_the_json_contract(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CHATREC_HOME", str(tmp_path / "home"))
    out = tmp_path / "crs.json"
    result = runner.invoke(app, ["eval-crs", str(VALID), "--items", str(ID2INFO), "--json", str(out),
                                 "--limit", "20", "--system", "popularity"])
    assert result.exit_code == 0, result.output
    assert "popularity" in result.output and "saved" in result.output
    got = json.loads(out.read_text(encoding="utf-8"))
    s = got["summary"]
    assert set(s) >= {"lines", "labels", "coverage", "seconds_per_line", "systems", "paired", "examples"}
    assert s["mentioned"] == "first"  # the default way with films the dialogue named
    assert s["lines"] == 20 and 20 <= s["labels"] <= 200 and 0 < s["coverage"] <= 1
    assert set(s["systems"]["popularity"]) >= {"recall@1", "recall@10", "recall@50", "ndcg@10", "mrr@10",
                                               "recall@10_ci95", "seconds_per_line"}
    low, high = s["systems"]["popularity"]["recall@10_ci95"]
    assert low <= s["systems"]["popularity"]["recall@10"] <= high
    assert len(got["lines"]) == 20
    for line in got["lines"]:
        assert set(line) >= {"dialog_id", "turn_id", "ranked"}
        ranked = line["ranked"]["popularity"]
        assert 0 < len(ranked) <= 50 and all(isinstance(n, str) for n in ranked) and len(set(ranked)) == len(ranked)
    saved = list((tmp_path / "home" / "runs" / "crs").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["meta"]["limit"] == 20


@needs_redial
def test_popularity_on_the_whole_valid_file_is_near_the_readmes_figures() -> None:
    lines, id2info = crs.read_crs_file(VALID), crs.read_id2info(ID2INFO)
    assert (len(lines), sum(len(x.rec) for x in lines)) == (2716, 3595)
    result = crs.evaluate(lines, crs.make_systems(["popularity"], lines=lines, id2info=id2info), id2info,
                          progress=False)
    f = result["summary"]["systems"]["popularity"]
    assert result["summary"]["coverage"] == 1.0
    # The README's 0.009 / 0.063 / 0.181 counts raw valid_data.jsonl messages (turns after a
    # dialogue's last recommendation included); the processed lines give 0.0108 / 0.0640 / 0.1811.
    # R@1 is one movie's share of the labels: the top movie differs (It (2017) here, Jumanji (2017)
    # there), 6 labels of 3,595 = 0.0017. A list that differs in a few places moves R@10 / R@50 by
    # a few labels of 3,595 (0.001 each); the bootstrap interval of R@10 is about ±0.009 wide.
    for key, readme, tol in (("recall@1", 0.009, 0.003), ("recall@10", 0.063, 0.004), ("recall@50", 0.181, 0.004)):
        assert abs(f[key] - readme) <= tol, (key, f[key], readme)
    low, high = f["recall@10_ci95"]
    assert low < 0.063 < high


def test_relative_years_are_read_as_of_the_setting_else_the_catalogues_newest_film() -> None:
    from agent.evals.crs import read_as_of

    id2info = {"1": {"name": "It (2017)"}, "2": {"name": "Black Panther (2018)"}, "3": {"name": "Alien"}}
    assert read_as_of(None, id2info) == 2018
    assert read_as_of(2020, id2info) == 2020  # CHATREC_TURN__THIS_YEAR says so
    assert read_as_of(None, {"3": {"name": "Alien"}}) is None  # no year anywhere: today's, as live
