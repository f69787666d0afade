"""chatrec eval-explain: the metrics against hand-computed cases, the faithfulness checker on
hand-made texts and evidence, and a small real run of the XRec-yelp part (real LocalChatModel,
real LightGCN training) on a few lines copied into a temp directory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agent.evals.explain import (
    BLEU_EPSILON,
    Variant,
    XRecDataError,
    corpus_bleu,
    lcs_length,
    rouge_l,
    tokens,
    unique_ratio,
    xrec_benchmark,
    xrec_dir,
)
from tools.catalog import CatalogItem
from tools.explain import Evidence, genres_named, unfaithful
from tools.resolve import TitleSpotter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "xrec-yelp"


# ---------------------------------------------------------------------------------- metrics

def test_tokens_are_lower_cased_alphanumeric_runs() -> None:
    assert tokens("The user's DELI, 24/7!") == ["the", "user", "s", "deli", "24", "7"]


def test_lcs_and_rouge_l_by_hand() -> None:
    # hyp: the cat is on the mat (6), ref: the cat sat on the mat (6); LCS = the cat on the mat = 5
    assert lcs_length("a b c d".split(), "b d a c".split()) == 2  # "b d" or "a c" or "b c"
    assert rouge_l("the cat is on the mat", "the cat sat on the mat") == pytest.approx(5 / 6)
    # P = 2/2, R = 2/4 -> F = 2 * 1 * 0.5 / 1.5
    assert rouge_l("Great food!", "great and cheap food") == pytest.approx(2 / 3)
    assert rouge_l("nothing here", "all different words") == 0.0
    assert rouge_l("", "a reference") == 0.0


def test_bleu4_by_hand() -> None:
    assert corpus_bleu(["the cat sat on the mat"], ["The cat sat on the mat."]) == pytest.approx(1.0)
    # 1-grams 5/6, 2-grams 3/5, 3-grams 1/4, 4-grams 0/3 -> smoothed 0.1/3; lengths equal, no penalty
    expected = math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(1 / 4) + math.log(BLEU_EPSILON / 3)) / 4)
    assert corpus_bleu(["the cat is on the mat"], ["the cat sat on the mat"]) == pytest.approx(expected)
    # brevity: a 4-token exact prefix of a 6-token reference: precisions 1, BP = exp(1 - 6/4)
    assert corpus_bleu(["the cat sat on"], ["the cat sat on the mat"]) == pytest.approx(math.exp(1 - 6 / 4))
    # corpus level: counts are summed before dividing, so two lines are not the mean of two scores
    hyps, refs = ["the cat sat on the mat", "a dog"], ["the cat sat on the mat", "a dog ran off quickly today"]
    # matches 1: 6+2 / 8, 2: 5+1 / 6, 3: 4/4 (+0 from a 2-token line), 4: 3/3; c = 8 < r = 12
    logs = math.log(8 / 8) + math.log(6 / 6) + math.log(4 / 4) + math.log(3 / 3)
    corpus = math.exp(1 - 12 / 8) * math.exp(logs / 4)
    assert corpus_bleu(hyps, refs) == pytest.approx(corpus)
    assert corpus_bleu([""], ["anything"]) == 0.0
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])


def test_unique_ratio_by_hand() -> None:
    assert unique_ratio(["a b", "a  b", "c", "d"]) == pytest.approx(3 / 4)  # whitespace collapsed
    assert unique_ratio(["same"] * 5) == pytest.approx(1 / 5)
    assert unique_ratio([]) == 0.0


# ------------------------------------------------------------------------------ faithfulness

FARGO = CatalogItem("ml-100k:100", "movie", "Fargo", 1996, ("Crime", "Drama", "Thriller"), warm=True,
                    graph_item_id="100", n_ratings=508)
HEAT = CatalogItem("ml-100k:6", "movie", "Heat", 1995, ("Action", "Crime", "Thriller"), warm=True,
                   graph_item_id="6", n_ratings=300)
BABE = CatalogItem("ml-100k:8", "movie", "Babe", 1995, ("Children's", "Comedy", "Drama"), warm=True,
                   graph_item_id="8", n_ratings=219)
STAR_WARS = CatalogItem("ml-100k:50", "movie", "Star Wars", 1977, ("Action", "Adventure", "Sci-Fi", "War"),
                        warm=True, graph_item_id="50", n_ratings=583)
GODFATHER = CatalogItem("ml-100k:127", "movie", "The Godfather", 1972, ("Action", "Crime", "Drama"), warm=True,
                        graph_item_id="127", n_ratings=413)
SPOTTER = TitleSpotter([FARGO, HEAT, BABE, STAR_WARS, GODFATHER])


def _evidence(item: CatalogItem, nearest=(), shared=()) -> Evidence:
    return Evidence(item, nearest=[{"title": t.title, "item_id": t.item_id, "share": 0.5} for t in nearest],
                    shared_genres=list(shared))


def test_the_item_and_its_nearest_titles_are_faithful() -> None:
    ev = _evidence(FARGO, nearest=[GODFATHER], shared=["Crime"])
    assert unfaithful("Fargo is here because it is close to The Godfather, a crime drama you liked.", ev, SPOTTER) == []
    assert unfaithful("You will like Fargo: a tense thriller.", ev, SPOTTER) == []


def test_a_stranger_title_is_unfaithful() -> None:
    ev = _evidence(FARGO, nearest=[GODFATHER])
    assert unfaithful("Fargo is a lot like Heat, which you loved.", ev, SPOTTER) == ["title: heat"]


def test_a_genre_outside_the_evidence_is_unfaithful() -> None:
    ev = _evidence(FARGO, shared=["Crime"])
    assert unfaithful("Fargo is a wonderful romantic comedy.", ev, SPOTTER) == ["genre: Comedy", "genre: Romance"]
    assert unfaithful("Fargo is a great sci-fi ride.", ev, SPOTTER) == ["genre: Sci-Fi"]
    # a genre the item has is fine even when the person's favourites do not share it
    assert unfaithful("Fargo is a tense thriller.", ev, SPOTTER) == []


def test_genre_words_inside_allowed_titles_do_not_count() -> None:
    ev = _evidence(FARGO, nearest=[STAR_WARS])
    assert unfaithful("Fargo sits close to Star Wars in the graph.", ev, SPOTTER) == []
    assert unfaithful("Fargo is a war film.", ev, SPOTTER) == ["genre: War"]
    clone_wars = CatalogItem("ml-latest-small:1", "movie", "Star Wars: The Clone Wars", 2008,
                             ("Action", "Animation", "Sci-Fi"))
    assert unfaithful("The Clone Wars is a fun ride.", _evidence(clone_wars), SPOTTER) == []


def test_genre_lexicon_spellings_and_praise_words() -> None:
    assert genres_named("a science fiction classic, an animated film for kids") == {"Sci-Fi", "Animation",
                                                                                    "Children's"}
    assert genres_named("a rom-com and a film noir") == {"Comedy", "Romance", "Film-Noir"}
    # ordinary praise is not a genre claim
    assert genres_named("a thrilling, dramatic, funny, fantastic and mysterious ride") == set()
    # hyphenated compounds name their parts
    assert genres_named("an action-adventure ride") == {"Action", "Adventure"}
    assert genres_named("a horror-comedy") == {"Horror", "Comedy"}
    assert genres_named("a live-action remake") == set()


def test_a_genre_word_spotted_as_a_title_is_judged_as_a_genre() -> None:
    fantasy = CatalogItem("ml-latest-small:9", "movie", "Fantasy", 1999, ("Drama",), n_ratings=3)
    spotter = TitleSpotter([FARGO, HEAT, fantasy])
    assert spotter.spot("Fargo shares Crime, Fantasy with them.")  # the spotter does take it for the film
    ev = _evidence(FARGO, shared=["Crime"])
    assert unfaithful("Fargo shares Crime, Fantasy with them.", ev, spotter) == ["genre: Fantasy"]
    et = CatalogItem("ml-100k:82", "movie", "E.T.", 1982, ("Children's", "Fantasy"), n_ratings=300)
    assert unfaithful("E.T. shares Children's, Fantasy with them.", _evidence(et), spotter) == []


def test_sentence_figures_by_hand() -> None:
    """The sentence-level figures of eval-explain on three hand-made explanations, each checked by
    the product's own check (tools/explain_check.py) as ``faithfulness`` does."""
    from agent.evals.explain import format_table, sentence_figures, summarize_faithfulness
    from tools.explain import Explainer
    from tools.explain_check import names_any

    explainer = Explainer(llm=None, tool=None, spotter=SPOTTER, similar=None)
    ev = _evidence(FARGO, nearest=[HEAT], shared=["Crime"])
    cases = [  # (raw LLM text, shown, how)
        ("Fargo is a crime film. Fargo is a crime film. Fargo is acclaimed.",
         "Fargo is a crime film. It sits close to Heat, which you liked.", "llm+evidence"),
        ("The answer is: 32.", explainer.plain(ev), "fallback"),
        ("Fargo is close to Heat, which you liked.", "Fargo is close to Heat, which you liked.", "llm"),
    ]
    records = [{"user": "1", "source": "graph", "raw": raw, "shown": shown, "guard": "x" if how == "fallback" else "",
                "raw_problems": [], "shown_problems": [], "how": how, "seconds": sec,
                "raw_sentences": explainer.check(raw, ev).to_dict()["sentences"],
                "shown_sentences": explainer.check(shown, ev).to_dict()["sentences"],
                "names_theirs": names_any(shown, ["Heat"]), "has_theirs": True}
               for (raw, shown, how), sec in zip(cases, (0.5, 1.0, 2.0))]
    f = sentence_figures(records)
    # raw: 3 + 1 + 1 sentences; supported: "a crime film" (first time) and "close to Heat" -> 2 of 5
    assert f["raw_sentences"] == 5 and f["raw_supported"] == pytest.approx(2 / 5, abs=1e-4)
    assert f["raw_repetition_rate"] == pytest.approx(1 / 5, abs=1e-4)  # the second "Fargo is a crime film."
    assert f["raw_unsupported_by_kind"] == {"repeat": 1, "acclaim": 1, "content": 1, "echo": 1, "number": 1}
    assert f["shown_sentences"] == 4 and f["shown_supported"] == 1.0 and f["shown_repetition_rate"] == 0.0
    assert f["names_their_item"] == 1.0 and f["with_their_items"] == 3
    assert f["written_by"] == {"llm+evidence": 1, "fallback": 1, "llm": 1}
    assert f["llm_written"] == pytest.approx(2 / 3, abs=1e-4) and f["llm_only"] == pytest.approx(1 / 3, abs=1e-4)
    assert f["seconds_p50"] == 1.0 and f["unique_ratio_shown"] == 1.0
    summary = summarize_faithfulness(records, 3.5)
    assert summary["sentences"] == f and summary["replaced"]["count"] == 1  # the old keys stay
    assert "66.7% (LLM-written" not in format_table({"faithfulness": summary})
    assert "LLM-written 66.7%" in format_table({"faithfulness": summary})


# -------------------------------------------------------------------------------- XRec-yelp

def test_variants_parse_and_reject_unknown_names() -> None:
    v = Variant.parse("lead_business+shot3+graph")
    assert (v.instruction, v.shot, v.graph, str(v)) == ("lead_business", 3, True, "lead_business+shot3+graph")
    with pytest.raises(ValueError, match="unknown prompt variant"):
        Variant.parse("nonsense")
    with pytest.raises(ValueError, match="variant part"):
        Variant.parse("plain+shots")


def test_a_missing_benchmark_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(XRecDataError, match="no XRec-yelp benchmark directory"):
        xrec_dir(tmp_path / "absent")
    (tmp_path / "eval.jsonl").write_text("{}\n")
    with pytest.raises(XRecDataError, match="total_trn.csv"):
        xrec_dir(tmp_path)


@pytest.fixture(scope="module")
def tiny_xrec(tmp_path_factory) -> Path:
    """Three eval lines and two train lines of the real data, and the interactions of their users
    and businesses (plus a slice of the rest), in a temp directory."""
    if not SHARED.is_dir():
        pytest.skip(f"the XRec-yelp benchmark data is not at {SHARED}")
    out = tmp_path_factory.mktemp("xrec")
    eval_lines = (SHARED / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    train_lines = (SHARED / "train.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    (out / "eval.jsonl").write_text("\n".join(eval_lines) + "\n", encoding="utf-8")
    (out / "train.jsonl").write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    rows = [json.loads(line) for line in eval_lines]
    users, items = {str(r["uid"]) for r in rows}, {str(r["iid"]) for r in rows}
    for name in ("total_trn.csv", "total_val.csv"):
        lines = (SHARED / name).read_text(encoding="utf-8").splitlines()
        keep = [lines[0]] + [ln for n, ln in enumerate(lines[1:]) if ln.split(",")[0] in users
                             or ln.split(",")[1] in items or n < 1500]
        (out / name).write_text("\n".join(keep) + "\n", encoding="utf-8")
    return out


@pytest.mark.model  # the LLM, LightGCN training, MiniLM
def test_a_small_real_xrec_run(tiny_xrec: Path) -> None:
    from agent.config import Settings
    from agent.evals.explain import format_table, run

    home = tiny_xrec / "home"  # the trained graph is kept here, not in the real data home
    result = run(Settings(llm_backend="local", home=home), part="xrec", xrec_path=tiny_xrec, graph_epochs=2,
                 variant="lead_business+graph", progress=False)
    x = result["xrec_yelp"]
    assert x["lines"] == x["of_lines"] == 3
    assert len(x["examples"]) == 3 and all(e["ours"].strip() for e in x["examples"])
    # every line's pair is known to the graph, so each prompt got graph facts
    assert all(e["graph"] and 0 <= e["graph"]["similar_users_visited"] <= 50 for e in x["examples"])
    assert x["graph"]["epochs_run"] == 2 and x["graph"]["train_seconds"] > 0
    trained_on = len((tiny_xrec / "total_trn.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert x["graph"]["train_pairs"] == trained_on
    for side in ("ours", "xrec"):
        scores = x[side]
        assert -1.0 <= scores["minilm_cosine"] <= 1.0 and 0.0 <= scores["rouge_l"] <= 1.0
        assert 0.0 <= scores["bleu4"] <= 1.0
        assert any(scores["unique_ratio"] == pytest.approx(v, abs=1e-4) for v in (1 / 3, 2 / 3, 1.0))
    # XRec's predictions are real sentences on the same topic: clearly related to the references
    assert x["xrec"]["minilm_cosine"] > 0.3 and x["xrec"]["rouge_l"] > 0.1
    table = format_table(result)
    assert "MiniLM cosine" in table and "3 of 3 eval lines" in table
    # a second run loads the graph trained by the first instead of training again
    again = run(Settings(llm_backend="local", home=home), part="xrec", xrec_path=tiny_xrec, graph_epochs=2,
                variant="lead_business", progress=False)["xrec_yelp"]
    assert again["graph"]["cached"] and again["graph"]["train_seconds"] == x["graph"]["train_seconds"]
    assert all(e["graph"] is None for e in again["examples"])  # a variant without +graph is not given the facts


def test_a_sample_of_lines_is_fixed_by_the_seed(tiny_xrec: Path) -> None:
    from agent.evals.explain import read_jsonl, sample_lines

    rows = read_jsonl(tiny_xrec / "eval.jsonl")
    assert sample_lines(rows, 2, 7) == sample_lines(rows, 2, 7)
    assert len(sample_lines(rows, 2, 7)) == 2 and sample_lines(rows, None, 7) == rows


def test_a_shot_variant_without_train_lines_fails(tiny_xrec: Path) -> None:
    with pytest.raises(ValueError, match="no line 99"):
        xrec_benchmark(None, tiny_xrec, variant="plain+shot99", progress=False)
