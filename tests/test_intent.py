"""The learned intent reader (agent/intent.py, agent/tuning/intent_data.py) and the classifier it
shares with the stance reader (agent/classifier.py)."""

import json

import pytest

from agent.intent import INTENTS, READER_FILE, IntentReader, intent_text, load_intent_reader
from agent.reading import after_suggestions
from agent.tuning.intent_data import LABELS_FILE

SUGGESTED = [{"role": "user", "text": "any good comedies?"},
             {"role": "assistant", "text": "Try Airplane! and Hot Fuzz.", "items": ["Airplane!", "Hot Fuzz"]}]
ASKED_TASTE = [{"role": "assistant", "text": "Hi! What kind of movies do you like?", "items": []}]


def answering(context):
    """What the agent's reading passes: whether the turn answers suggestions."""
    return after_suggestions([(t["role"], t.get("items") or [], t["text"]) for t in context])


def test_the_turn_comes_first_then_what_was_suggested_and_the_last_words_said():
    text = intent_text("  seen it,   loved it ", SUGGESTED)
    assert text == "seen it, loved it [SEP] suggested before: Try Airplane! and Hot Fuzz."
    assert intent_text("hi", ASKED_TASTE).endswith("[SEP] nothing suggested yet: Hi! What kind of movies do you like?")
    long = [{"role": "assistant", "text": " ".join(f"w{i}" for i in range(100))}]
    assert intent_text("ok", long).split()[-1] == "w99" and "w59 " not in intent_text("ok", long)  # the last words


def test_the_labels_hold_ids_and_hashes_not_words():
    rows = [json.loads(line) for line in LABELS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) > 1000
    assert all(set(r) == {"dialog", "turn", "sha1", "intent", "ambiguous"} for r in rows)
    assert {r["intent"] for r in rows} <= set(INTENTS)
    # none from a dialogue any evaluation or development sample drew from
    from pathlib import Path
    held = set()
    for name in ("seeker_labels", "dev_labels", "dev2_labels"):
        path = Path(__file__).resolve().parent.parent / "evaluation" / "redial" / f"{name}.jsonl"
        held |= {json.loads(line)["dialog"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert not held & {r["dialog"] for r in rows}


@pytest.mark.model
def test_the_shipped_reader_reads_a_turn_with_its_context():
    reader = IntentReader(READER_FILE)
    assert 0.5 <= reader.sure < 1 and reader.facts["rows"]["redial_seekers"] > 1000
    read = lambda words, context: max((p := reader.probabilities(words, context)), key=p.get)  # noqa: E731
    assert read("hi! could you suggest a good scary movie for tonight?", []) == "recommend"
    assert read("thanks, I'll check those out", SUGGESTED) == "chitchat"
    assert read("I mostly like dark comedies like Fargo", ASKED_TASTE) == "recommend"  # a taste asked for


@pytest.mark.model
def test_the_reader_settles_recommend_against_chitchat_only_when_sure():
    reader = IntentReader(READER_FILE)
    words = "thanks, I'll check those out"
    assert reader.settle("recommend", words, SUGGESTED, answering(SUGGESTED)) == "chitchat"
    assert reader.settle("chitchat", words, SUGGESTED, answering(SUGGESTED)) == "chitchat"
    # explanation requests are not its call
    assert reader.settle("explain", words, SUGGESTED, answering(SUGGESTED)) == "explain"
    reader.sure = 1.01  # never sure: the reading's answer stands
    assert reader.settle("recommend", words, SUGGESTED, answering(SUGGESTED)) == "recommend"


@pytest.mark.model
def test_an_outright_ask_stays_a_request_and_an_answer_to_suggestions_asks_nothing():
    reader = IntentReader(READER_FILE)
    reader.sure = 0.0  # always "sure" of the other intent: only the two limits keep the reading's
    asks = "loved it! any others you could recommend?"
    assert reader.settle("recommend", asks, SUGGESTED, answering(SUGGESTED)) == "recommend"
    assert reader.settle("recommend", "loved it!", SUGGESTED, answering(SUGGESTED)) == "chitchat"
    taste = "I love movies about friendship"
    # said after a list, asking nothing
    assert reader.settle("chitchat", taste, SUGGESTED, answering(SUGGESTED)) == "chitchat"
    assert reader.settle("chitchat", taste, [], answering([])) == "recommend"  # nothing suggested yet
    asked_again = SUGGESTED + [{"role": "user", "text": "seen both"},
                               {"role": "assistant", "text": "What kind of movies do you like then?", "items": []}]
    # the other asked about taste
    assert reader.settle("chitchat", taste, asked_again, answering(asked_again)) == "recommend"


def test_a_cut_or_foreign_file_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    cut = tmp_path / "intent_reader.safetensors"
    cut.write_bytes(READER_FILE.read_bytes()[:1000])
    with pytest.raises(ValueError, match="agent.tuning.intent_data"):
        IntentReader(cut)
    with pytest.raises(ValueError, match="no such intent reader"):
        load_intent_reader(tmp_path / "nowhere.safetensors")


@pytest.mark.model
def test_a_stance_reader_file_is_not_an_intent_reader():
    from agent.stance import READER_FILE as STANCE_FILE

    with pytest.raises(ValueError, match="agent.tuning.intent_data"):
        IntentReader(STANCE_FILE)


@pytest.mark.model
def test_the_agents_own_replies_and_a_spent_list_are_not_the_readers_call():
    """Turns the product answers by its own rule stay where the reading put them: what the
    chit-chat path has fixed words for (its abilities, a greeting, its taste, a goodbye), and a
    list said to be all seen, which asks for others."""
    reader = IntentReader(READER_FILE)
    reader.sure = 0.0  # always "sure" of the other intent
    for words in ("do you like comedies?", "What can you do?", "hello!", "thanks, bye"):
        assert reader.settle("chitchat", words, [], answering([])) == "chitchat", words
    assert reader.settle("recommend", "I've seen all of these", SUGGESTED, answering(SUGGESTED)) == "recommend"
    # not seen is no spent list: the reader reads it
    assert reader.settle("recommend", "I haven't seen either of those", SUGGESTED, answering(SUGGESTED)) == "chitchat"
    assert reader.settle("chitchat", "I love comedies", [], answering([])) == "recommend"


@pytest.mark.model
def test_a_question_about_an_item_or_trivia_asked_for_stays_chitchat():
    """The chit-chat path answers these from the catalogue; the reader read "which genre would you
    put <title> in?" as a request at 0.99 and listed five films."""
    from tools.resolve import TitleSpotter
    from tests.items import FARGO

    reader = IntentReader(READER_FILE)
    reader.sure = 0.0
    spotter = TitleSpotter([FARGO])
    for words in ("Which genre would you put Fargo in?", "who directed Fargo?", "tell me a fun fact about movies"):
        assert reader.settle("chitchat", words, [], answering([]), spotter) == "chitchat", words
    assert reader.settle("chitchat", "I loved Fargo", [], answering([]), spotter) == "recommend"


@pytest.mark.model
def test_a_request_needs_something_to_go_on():
    """After "what do you like?" the reader reads almost any answer as a request (ReDial's answers
    to it mostly are); words with nothing to recommend from stay chit-chat."""
    reader = IntentReader(READER_FILE)
    assert reader.probabilities("hey again", ASKED_TASTE)["recommend"] > 0.9  # what the limit is for
    reader.sure = 0.0
    for words in ("hey again", "good morning", "yo"):
        assert reader.settle("chitchat", words, ASKED_TASTE, answering(ASKED_TASTE)) == "chitchat", words
    for words in ("mostly thrillers", "stuff from the 80s", "I like movies about space"):
        assert reader.settle("chitchat", words, ASKED_TASTE, answering(ASKED_TASTE)) == "recommend", words
