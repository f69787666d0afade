"""The learned stance reader's window, training file, shipped file and training (agent/stance.py,
agent/tuning/stance_data.py)."""

import json

import pytest

from agent.stance import (READER_FILE, STANCES, StanceReader, load_stance_reader, save_reader, stance_model,
                          stance_window)
from agent.tuning.stance_data import TRAIN_FILE, train, windows, with_typos


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


@pytest.mark.model
def test_shipped_reader_reads_dislikes_the_rules_do_not_know():
    reader = StanceReader(READER_FILE)
    assert 0.5 <= reader.sure < 1 and reader.facts["rows"] > 500
    p = reader.probabilities(["I really enjoyed it, what a ride", "it was such a let down, I fell asleep halfway",
                              "I really enoyed it, what else?"])  # a slip in the praise is still praise
    assert p.shape == (3, len(STANCES))
    assert list(p.argmax(axis=1)) == [STANCES.index(s) for s in ("liked", "disliked", "liked")]


@pytest.mark.model
def test_reader_only_turns_a_like_into_a_dislike():
    reader = StanceReader(READER_FILE)
    reader.sure = 0.5
    text = "I loved Up so much but honestly Cars was a total snooze, I fell asleep halfway"
    spans = spans_of(text, "Up", "Cars")
    assert reader.revise(text, spans, ["liked", "liked"]) == ["liked", "disliked"]
    assert reader.revise(text, spans, [None, "disliked"]) == [None, "disliked"]  # never the other way


def test_a_cut_or_foreign_file_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    cut = tmp_path / "stance_reader.safetensors"
    cut.write_bytes(READER_FILE.read_bytes()[:1000])
    with pytest.raises(ValueError, match="agent.tuning.stance_data"):
        StanceReader(cut)
    with pytest.raises(ValueError, match="no such stance reader"):  # a named file, missing: no silent fallback
        load_stance_reader(tmp_path / "nowhere.safetensors")


@pytest.mark.model
def test_training_learns_a_tiny_real_set_and_round_trips(tmp_path):
    texts = ["I loved it", "it was amazing", "it was boring", "I hated it", "have you seen it?", "is it on netflix?"] * 4
    labels = [0, 0, 1, 1, 2, 2] * 4
    model = train(texts, labels, epochs=8, progress=False)
    path = tmp_path / "reader.safetensors"
    save_reader(model, {"sure": 0.7, "rows": len(texts)}, path)
    reader = StanceReader(path)
    assert reader.sure == 0.7
    assert list(reader.probabilities(texts[:6]).argmax(axis=1)) == labels[:6]
    untrained = stance_model().trained_state()
    assert set(untrained) == set(model.trained_state())  # what is saved is exactly what training changes


def test_typed_again_copies_keep_their_words_apart_from_slips():
    texts = ["honestly it was a chore to sit through", "I loved it"] * 20
    again = with_typos(texts)
    assert len(again) == len(texts) and again != texts  # some slips
    assert all(a.split()[-1] == t.split()[-1] or len(t.split()[-1]) >= 4 for a, t in zip(again, texts))
    assert all("it" in a.split() for a in again)  # the title's stand-in is never typed again
    assert with_typos(texts) == again  # seeded: the shipped reader rebuilds the same


@pytest.mark.model
def test_what_is_asked_of_the_next_films_is_no_verdict_on_the_title():
    """Read in chat: "something like Heat or The Departed, nothing too old" noted The Departed as
    disliked (the reader, 0.997); a verdict after a comma still counts."""
    reader = StanceReader(READER_FILE)
    reader.sure = 0.5
    for text in ("Looking for something like Heat or The Departed, nothing too old",
                 "I loved Heat and The Departed, nothing from before 1990 please"):
        assert reader.revise(text, spans_of(text, "Heat", "The Departed"), ["liked", "liked"]) == ["liked", "liked"]
    verdict = "I watched The Departed, nothing special honestly, it dragged"
    assert reader.revise(verdict, spans_of(verdict, "The Departed"), ["liked"]) == ["disliked"]
