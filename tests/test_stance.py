"""The learned stance head's window and training file (agent/stance.py, agent/tuning/stance_data.py)."""

import json

import pytest

from agent.stance import HEAD_FILE, STANCES, StanceHead, stance_window
from agent.tuning.stance_data import TRAIN_FILE, windows


def spans_of(text, *titles):
    return [(text.index(t), text.index(t) + len(t)) for t in titles]


@pytest.mark.parametrize("text, titles, n, window", [
    ("I loved Up but Cars was boring", ["Up", "Cars"], 0, "I loved it but"),  # stops at the next title
    ("I loved Up but Cars was boring", ["Up", "Cars"], 1, "but it was boring"),  # starts after the last
    ("Hi there. I watched Cats. It was awful. Anything else?", ["Cats"], 0, "I watched it. It was awful."),
    ("Heat", ["Heat"], 0, "it"),
])
def test_window_is_the_words_about_one_title(text, titles, n, window):
    assert stance_window(text, spans_of(text, *titles), n) == window


def test_training_rows_are_well_formed():
    rows = [json.loads(line) for line in TRAIN_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) > 500
    assert {r["stance"] for r in rows} == set(STANCES)
    assert all(r["title"] in r["text"] and r["family"] for r in rows)
    # a message naming two titles gives each its own window, the other title left in place
    first = next(r for r in rows if sum(s["text"] == r["text"] for s in rows) > 1)
    pair = [r for r in rows if r["text"] == first["text"]][:2]
    a, b = windows(pair)
    assert a != b and pair[1]["title"] not in b


def test_shipped_head_has_every_stance():
    head = StanceHead(HEAD_FILE)
    assert head.weights.shape == (len(STANCES), 384) and 0.5 <= head.sure < 1
    assert head.facts["rows"] > 500


@pytest.mark.model
def test_head_only_turns_a_like_into_a_dislike():
    head = StanceHead(HEAD_FILE)
    head.sure = 0.5
    text = "I loved Up so much but honestly Cars was a total snooze, I fell asleep halfway"
    spans = spans_of(text, "Up", "Cars")
    assert head.revise(text, spans, ["liked", "liked"]) == ["liked", "disliked"]
    assert head.revise(text, spans, [None, "disliked"]) == [None, "disliked"]  # never the other way
