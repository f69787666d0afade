"""The router's data (issue 24): the held-out paraphrase families never share a template with the
training pool, explain rows without a list, the ReDial seekers' labels join their words, the
intent head ships and checks the LLM, and the benchmark's scoring counts what it says."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from agent.router import INTENTS, SLOT_KEYS
from agent.tuning.router_data import FAMILIES_FILE, HEAD_FILE, load_rows, training_pool, without_list
from bench.router_accuracy import HELDOUT, REDIAL_DATA, REDIAL_LABELS, read_jsonl, redial_rows, score, title_hits
from tools.vocabulary import ROUTER_GENRES

MODEL_FIXTURES = {"head"}  # loads the sentence-embedding model


def _key(text: str) -> str:
    return " ".join(text.lower().replace("?", " ").replace("!", " ").split())


def test_held_out_rows_are_complete_and_apart_from_training() -> None:
    heldout = read_jsonl(HELDOUT)
    assert len(heldout) >= 90 and {r["intent"] for r in heldout} == set(INTENTS)
    assert all(set(r["slots"]) <= set(SLOT_KEYS) and r["family"] for r in heldout)
    pool = training_pool()
    assert not {_key(r["utterance"]) for r in heldout} & {_key(r["utterance"]) for r in pool}
    assert not {r["family"] for r in heldout} & {r.get("family") for r in pool}


def test_no_new_training_family_paraphrases_a_held_out_one() -> None:
    """A template and its paraphrases stay on one side: no new training row is a near copy of a
    held-out row (SequenceMatcher ratio, the titles and numbers differing, below 0.8)."""
    heldout = [_key(r["utterance"]) for r in read_jsonl(HELDOUT)]
    for row in load_rows(FAMILIES_FILE):
        closest = max(heldout, key=lambda h: difflib.SequenceMatcher(None, h, _key(row["utterance"])).ratio())
        ratio = difflib.SequenceMatcher(None, closest, _key(row["utterance"])).ratio()
        assert ratio < 0.8, (row["id"], row["utterance"], closest)


def test_families_carry_every_slot_and_a_valid_label() -> None:
    rows = load_rows(FAMILIES_FILE)
    assert len(rows) >= 80
    for row in rows:
        assert row["intent"] in INTENTS and set(SLOT_KEYS) - {"clear"} <= set(row["slots"]) <= set(SLOT_KEYS)
        assert set(row["slots"]["genres"]) <= set(ROUTER_GENRES)
        for title in row["slots"]["titles"]:
            assert title.lower() in row["utterance"].lower(), (row["id"], title)


def test_explanation_requests_are_also_taught_without_a_list() -> None:
    pool = load_rows(FAMILIES_FILE)
    again = without_list(pool, share=1.0)
    assert again and all(r["intent"] == "explain" for r in again)
    assert all(not any(t.get("items") for t in r["context"]) for r in again)
    assert without_list(pool, share=0.5) == without_list(pool, share=0.5)  # seeded
    explain_without = [r for r in training_pool() if r["intent"] == "explain"
                       and not any(t.get("items") for t in r["context"])]
    assert len(explain_without) >= 80


def test_the_intent_head_file_fits_the_embedding_model() -> None:
    lines = [json.loads(line) for line in HEAD_FILE.read_text().splitlines() if line.strip()]
    heads = {r["intent"]: r for r in lines if "intent" in r}
    assert set(heads) == set(INTENTS) and all(len(h["weights"]) == 384 for h in heads.values())
    facts = next(r["facts"] for r in lines if "facts" in r)
    assert 0.5 <= facts["sure"] < 1.0 and facts["rows"] == len(training_pool())


@pytest.fixture(scope="module")
def head():
    from agent.router import load_head

    return load_head()


@pytest.mark.parametrize(("utterance", "intent"), [
    ("why the fifth one?", "explain"), ("who composed the score of Jaws?", "chitchat"),
    ("some space operas please", "recommend")])
def test_the_intent_head_reads_the_message_alone(head, utterance: str, intent: str) -> None:
    p = head.probabilities(utterance)
    assert max(p, key=p.get) == intent and abs(sum(p.values()) - 1.0) < 1e-5


def test_the_head_overrides_the_llm_only_when_sure(head) -> None:
    from agent.router import Route, empty_slots

    llm = Route("chitchat", {**empty_slots(), "reference": 5})
    assert head.combine(llm, {"recommend": 0.02, "explain": 0.97, "chitchat": 0.01}).intent == "explain"
    assert head.combine(llm, {"recommend": 0.02, "explain": 0.97, "chitchat": 0.01}).slots["reference"] == 5
    unsure = {"recommend": 0.3, "explain": head.sure - 0.01, "chitchat": 0.71 - head.sure}
    assert head.combine(llm, unsure) is llm


def test_the_explain_only_head_may_only_turn_chitchat_into_an_explanation() -> None:
    from agent.router import EXPLAIN_ONLY, Route, empty_slots, load_head

    head = load_head(only=EXPLAIN_ONLY)
    sure_explain = {"recommend": 0.02, "explain": 0.97, "chitchat": 0.01}
    sure_chitchat = {"recommend": 0.01, "explain": 0.02, "chitchat": 0.97}
    assert head.combine(Route("chitchat", empty_slots()), sure_explain).intent == "explain"  # "why the third?"
    request = Route("recommend", empty_slots())
    assert head.combine(request, sure_explain) is request and head.combine(request, sure_chitchat) is request
    assert head.combine(Route("explain", empty_slots()), sure_chitchat).intent == "explain"


@pytest.mark.parametrize(("value", "head"), [(None, "explain"), ("true", "all"), ("false", "off"), ("explain", "explain")])
def test_the_head_setting_keeps_its_old_switch(monkeypatch, value, head) -> None:
    from agent.config import Settings

    if value is not None:
        monkeypatch.setenv("CHATREC_ROUTER_HEAD", value)
    assert Settings().router_head == head


# -- ReDial seekers ----------------------------------------------------------------------------------

def test_redial_labels_are_ids_and_labels_only() -> None:
    labels = read_jsonl(REDIAL_LABELS)
    assert len(labels) >= 300 and len({r["dialog"] for r in labels}) == len(labels)
    for label in labels:
        assert set(label) == {"dialog", "turn", "sha1", "intent", "slots", "relative", "ambiguous"}
        assert label["intent"] in INTENTS and set(label["slots"]["genres"]) <= set(ROUTER_GENRES)


@pytest.mark.skipif(not REDIAL_DATA.exists(), reason=f"ReDial valid split not at {REDIAL_DATA}")
def test_redial_labels_join_the_seekers_words() -> None:
    rows = redial_rows()
    assert len(rows) == len(read_jsonl(REDIAL_LABELS))
    for row in rows:
        said = row["utterance"].lower()
        assert all(t.lower() in said for t in row["slots"]["titles"]), row["id"]
        shown = [t for turn in row["context"] if turn["role"] == "assistant" for t in turn["items"]]
        for mention in row["slots"]["liked"] + row["slots"]["disliked"]:
            assert mention.startswith("#") or mention in row["slots"]["titles"]
            assert not mention.startswith("#") or shown


def test_a_changed_benchmark_file_is_an_error(tmp_path: Path) -> None:
    if not REDIAL_DATA.exists():
        pytest.skip(f"ReDial valid split not at {REDIAL_DATA}")
    label = read_jsonl(REDIAL_LABELS)[0]
    dialog = next(json.loads(line) for line in REDIAL_DATA.open() if json.loads(line)["conversationId"] == label["dialog"])
    for message in dialog["messages"]:
        message["text"] += " (edited)"
    (tmp_path / "data.jsonl").write_text(json.dumps(dialog) + "\n")
    (tmp_path / "labels.jsonl").write_text(json.dumps(label) + "\n")
    with pytest.raises(ValueError, match="changed"):
        redial_rows(tmp_path / "labels.jsonl", tmp_path / "data.jsonl")


def test_redial_skips_with_a_message_when_absent(tmp_path: Path) -> None:
    from bench.router_accuracy import BenchmarkMissing

    with pytest.raises(BenchmarkMissing, match="not found"):
        redial_rows(REDIAL_LABELS, tmp_path / "nothing.jsonl")


# -- scoring ---------------------------------------------------------------------------------------

def test_scoring_counts_the_confusion_and_the_titles() -> None:
    ctx = [{"role": "assistant", "text": "Try:", "items": ["Heat", "Ronin"]}]
    rows = [
        {"id": "a", "context": [], "intent": "recommend", "slots": {"titles": ["Toy Story"], "liked": ["Toy Story"]}},
        {"id": "b", "context": ctx, "intent": "explain", "slots": {"reference": 2}},
        {"id": "c", "context": ctx, "intent": "chitchat", "slots": {"liked": ["#1"]}},
    ]
    answers = [("recommend", {"titles": ["toy story"], "liked": []}),
               ("chitchat", {"reference": 2}),
               ("chitchat", {"liked": ["Heat"]})]
    out = score(rows, answers)
    assert out["intent_accuracy"] == round(2 / 3, 4) and out["confusion"]["explain"]["chitchat"] == 1
    assert out["titles_recall"] == 1.0 and out["liked_recall"] == 0.5 and out["liked_precision"] == 1.0
    assert out["slot_reference"] == 1.0
    assert title_hits(["The Shining"], ["shining"], []) == (1, 1, 1)  # the match key leaves "the" out
    assert title_hits(["Heat"], ["Ronin"], []) == (0, 1, 1)
    assert title_hits(["#2"], ["Ronin"], ["Heat", "Ronin"]) == (1, 1, 1)
