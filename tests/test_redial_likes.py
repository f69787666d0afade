"""bench/redial_likes.py's reading of a ReDial dialogue: turns, bare titles, the seeker's own answers."""

from __future__ import annotations

from bench.redial_likes import labelled_mentions, read_on_spans, seeker_turns

DIALOG = {
    "conversationId": "1", "initiatorWorkerId": 7, "respondentWorkerId": 8,
    "movieMentions": {"11": "Why Him%3F  (2016)", "12": "Alien  (1979)", "13": "Heat (1995)", "14": "Cats (2019)"},
    "messages": [
        {"senderWorkerId": 7, "text": "hi"},
        {"senderWorkerId": 7, "text": "I loved @11 but not @12"},  # two messages of one speaker: one turn
        {"senderWorkerId": 8, "text": "Try @13 or @14"},
        {"senderWorkerId": 7, "text": "@13 sounds good"},
    ],
    "initiatorQuestions": {"11": {"liked": 1}, "12": {"liked": 0}, "13": {"liked": 2}, "14": {"liked": 0}},
}


def test_a_dialogue_is_turns_with_bare_titles_and_the_ids_each_names() -> None:
    turns = seeker_turns(DIALOG)
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0] == {"role": "user", "text": "hi I loved Why Him? but not Alien", "ids": ["11", "12"],
                        "spans": [(11, 19, "11"), (28, 33, "12")]}  # where each title is written
    assert turns[1]["ids"] == ["13", "14"]


def test_only_movies_the_seeker_named_and_answered_yes_or_no_for_are_scored() -> None:
    # 13: "did not say"; 14: disliked, but only the recommender named it
    assert labelled_mentions(DIALOG, seeker_turns(DIALOG)) == {"11": 1, "12": 0}


def test_the_stance_reader_alone_reads_each_labelled_title_on_its_own_span() -> None:
    # "hi I loved Why Him? but not Alien": 11 liked (right), 12 disliked (right)
    assert read_on_spans([DIALOG]) == {"liked": [1, 1], "disliked": [1, 1]}
