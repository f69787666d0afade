"""The sentence-level check of explanations (tools/explain_check.py) without a model: each kind
of claim supported or not by the evidence, repetition, the person's words, and the explainer
dropping what fails (the texts of issue 29 among the cases)."""

from __future__ import annotations

import pytest

from tests.items import BABE, FARGO, GODFATHER, HEAT
from tools.catalog import CatalogItem
from tools.explain import Evidence, Explainer, their_reasons
from tools.explain_check import ClaimChecker, credits, sentences, stem
from tools.resolve import TitleSpotter

SHINING = CatalogItem("ml-100k:200", "movie", "The Shining", 1980, ("Horror",), warm=True)
ALIENS = CatalogItem("ml-100k:176", "movie", "Aliens", 1986, ("Action", "Sci-Fi", "Thriller", "War"), warm=True)
TERMINATOR = CatalogItem("ml-100k:195", "movie", "The Terminator", 1984, ("Action", "Sci-Fi", "Thriller"), warm=True)
BIG_NIGHT = CatalogItem("ml-latest-small:1", "movie", "Big Night", 1996, ("Comedy", "Drama"),
                        description="Two Italian brothers run a restaurant on the Jersey shore. "
                                    "Directed by Stanley Tucci and Campbell Scott. Starring Stanley Tucci and Tony Shalhoub.")
CATALOG = [FARGO, HEAT, BABE, GODFATHER, SHINING, ALIENS, TERMINATOR, BIG_NIGHT]


@pytest.fixture(scope="module")
def checker() -> ClaimChecker:
    return ClaimChecker(TitleSpotter(CATALOG), similar=None)


def fargo_evidence() -> Evidence:
    return Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.6}],
                    shared_genres=["Crime"], similar_users=(25, 50))


def kinds(check) -> list[str]:
    return [p.split(":")[0] for p in check.problems]


def test_sentences_built_from_the_evidence_are_supported(checker: ClaimChecker) -> None:
    ev = fargo_evidence()
    for text in ("Fargo is a crime thriller, close to Heat, which you liked.",
                 "If you liked Heat, you might enjoy Fargo.",
                 "25 of the 50 people with the most similar taste watched Fargo.",
                 "Fargo (1996) is a drama set in the 90s."):
        check = checker.check(text, ev)
        assert check.supported, (text, check.problems)


def test_the_issue_texts_are_unsupported(checker: ClaimChecker) -> None:
    godfather = Evidence(GODFATHER, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 1.0}])
    check = checker.check("The Godfather tackles complex themes in a lighthearted and entertaining way. "
                          "It makes people laugh.", godfather)
    assert not check.sentences[0].supported and not check.sentences[1].supported
    assert {"acclaim", "reaction"} <= set(kinds(check))
    shining = Evidence(SHINING)
    check = checker.check("The Shining is a unique blend of horror and horror.", shining)
    assert set(kinds(check)) >= {"repeat", "acclaim"}
    terminator = Evidence(TERMINATOR)
    check = checker.check("The Terminator is a movie based on the alien creature.", terminator)
    assert not check.supported and "content: creature" in check.problems


def test_reactions_need_a_genre_that_carries_them(checker: ClaimChecker) -> None:
    assert checker.check("Babe is funny and will make you laugh.", Evidence(BABE)).supported  # a comedy
    check = checker.check("Fargo will make you laugh and cry.", Evidence(FARGO))  # Drama carries "cry", not "laugh"
    assert check.problems == ["reaction: laugh"]
    assert checker.check("The Shining is scary.", Evidence(SHINING)).supported
    assert not checker.check("Babe is scary.", Evidence(BABE)).supported


def test_acclaim_is_never_supported_and_audiences_only_as_people_like_them(checker: ClaimChecker) -> None:
    ev = fargo_evidence()
    assert kinds(checker.check("Fargo is a critically acclaimed classic.", ev)) == ["acclaim"] * 3
    assert not checker.check("Fargo is popular with audiences.", ev).supported
    assert checker.check("Fargo is popular with people whose taste is similar to yours.", ev).supported
    assert not checker.check("Fargo is popular with people whose taste is similar to yours.",
                             Evidence(FARGO)).supported  # no similar-people count in the evidence


def test_names_figures_and_titles_must_be_in_the_evidence(checker: ClaimChecker) -> None:
    ev = fargo_evidence()
    assert checker.check("Fargo was directed by Steven Spielberg.", ev).problems == ["person: Steven Spielberg"]
    big = Evidence(BIG_NIGHT)
    assert credits(BIG_NIGHT.description) == ["Stanley Tucci", "Campbell Scott", "Stanley Tucci", "Tony Shalhoub"]
    assert checker.check("Big Night stars Stanley Tucci and Tony Shalhoub as two brothers.", big).supported
    assert sorted(checker.check("The answer is: 32.", ev).problems) == ["content: answer", "echo: The answer", "number: 32"]
    assert checker.check("Fargo is like The Godfather.", ev).problems == ["title: godfather"]
    assert checker.check("Fargo is like Heat.", ev).supported


def test_plot_words_of_the_description_support_a_sentence(checker: ClaimChecker) -> None:
    big = Evidence(BIG_NIGHT)
    assert checker.check("In Big Night two brothers run a restaurant.", big).supported
    assert "content: spaceship" in checker.check("In Big Night two brothers run a spaceship.", big).problems


def test_repeats_fail_whoever_writes_them(checker: ClaimChecker) -> None:
    ev = fargo_evidence()
    text = "Fargo is close to Heat. Fargo is close to Heat. Fargo is a crime film."
    check = checker.check(text, ev)
    assert [s.supported for s in check.sentences] == [True, False, True]
    assert check.sentences[1].repeated


def test_paraphrase_support_is_pluggable() -> None:
    ev = Evidence(TERMINATOR)
    strict = ClaimChecker(TitleSpotter(CATALOG), similar=None)
    assert strict.check("The Terminator is a robot story.", ev).problems == ["content: robot"]
    lenient = ClaimChecker(TitleSpotter(CATALOG), similar=lambda words, vocab: {w: "sci-fi" for w in words})
    check = lenient.check("The Terminator is a robot story.", ev)
    assert check.supported and check.sentences[0].claims[-1].by == "close to 'sci-fi'"


def test_stem_and_sentences() -> None:
    assert stem("movies") == stem("movie") and stem("brothers") == "brother" and stem("watched") == "watch"
    assert sentences("One. Two!  Three?") == ["One.", "Two!", "Three?"]


def test_their_words_tie_to_catalogue_facts() -> None:
    said = ["I loved Heat for the twist.", "Also liked the music in Grease, and the way the brothers argue."]
    assert their_reasons(said, FARGO) == [{"said": "the twist", "fact": "Thriller", "how": "genre"}]
    assert their_reasons(said, BIG_NIGHT) == [{"said": "the brothers argue", "fact": "brothers",
                                               "how": "description"}]
    assert their_reasons(["I liked the music."], FARGO) == []  # nothing in Fargo's facts carries music


# ------------------------------------------------------------------------------- the explainer

class _Says:
    """A model double that streams the text it is given."""

    def __init__(self, text: str) -> None:
        self.text = text

    def stream(self, messages, **kwargs):
        from langchain_core.messages import AIMessageChunk

        return (AIMessageChunk(content=w + " ") for w in self.text.split(" "))


def explainer(says: str) -> Explainer:
    return Explainer(llm=_Says(says), tool=None, spotter=TitleSpotter(CATALOG), similar=None)


def test_failing_sentences_are_dropped_and_the_rest_shown() -> None:
    ev = fargo_evidence()
    e = explainer("Fargo is a crime thriller close to Heat. It is a critically acclaimed masterpiece.").explanation(ev)
    assert e.text == "Fargo is a crime thriller close to Heat." and e.how == "llm"
    assert e.problem.startswith("dropped unsupported: acclaim") and len(e.dropped) == 1


def test_nothing_supported_falls_back_to_the_evidence_sentence() -> None:
    ev = fargo_evidence()
    x = explainer("Fargo makes audiences laugh and cry. Fargo makes audiences laugh and cry.")
    e = x.explanation(ev)
    assert e.how == "fallback" and e.text == x.plain(ev) and e.problem.startswith("no sentence")
    assert x.check(e.text, ev).supported  # the fallback passes the product's own check


def test_an_evidence_sentence_is_added_when_none_of_their_items_is_named() -> None:
    ev = fargo_evidence()
    e = explainer("Fargo is a crime drama.").explanation(ev)
    assert e.how == "llm+evidence" and e.text == "Fargo is a crime drama. It sits close to Heat, which you liked."
    assert explainer("").check(e.text, ev).supported


def test_the_plain_sentence_uses_their_words() -> None:
    ev = fargo_evidence()
    ev.their_words = their_reasons(["I loved Heat for the twist."], FARGO)
    x = explainer("")
    plain = x.plain(ev)
    assert "you said you liked the twist, and it is a thriller film too" in plain
    assert x.check(plain, ev).supported
    ev.shared_genres = ["Crime", "Thriller"]  # the tied genre is not named a second time
    plain = x.plain(ev)
    assert "it shares Crime with" in plain and x.check(plain, ev).supported, x.check(plain, ev).problems
    assert any("the twist" in f for f in ev.facts())


# ------------------------------------------------------------------------ tuning data (agent/tuning)

def test_tuning_answers_pass_the_check_and_vary() -> None:
    from agent.tuning.explain_data import explanation_pairs

    x = explainer("")
    evidences = []
    for item, near in ((FARGO, [HEAT]), (BABE, [GODFATHER, HEAT]), (SHINING, [ALIENS])):
        ev = Evidence(item, nearest=[{"title": n.title, "item_id": n.item_id, "share": 0.5} for n in near],
                      shared_genres=list(item.genres[:1]), similar_users=(12, 50))
        ev.their_words = their_reasons(["I loved Heat for the twist.", "I like the jokes."], item)
        evidences += [ev] * 20
    evidences.append(Evidence(FARGO))  # nothing of the person's: no pair
    rows, counts = explanation_pairs(x, evidences, seed=1)
    assert counts["kept"] == len(rows) == 60 and counts["skipped: no nearest items"] == 1
    for row in rows:
        assert row["messages"][-1]["role"] == "user" and row["task"] == "explain"
    assert len({r["template"] for r in rows}) >= 15 and len({r["answer"] for r in rows}) >= 40
    assert any("twist" in r["answer"] for r in rows) and any("jokes" in r["answer"] for r in rows)


def test_talk_about_the_prompt_and_praise_by_fans_are_unsupported(checker: ClaimChecker) -> None:
    ev = fargo_evidence()
    assert "echo: The person" in checker.check("The person asked why Fargo.", ev).problems
    assert "audience: fans" in checker.check("Fargo has been a favorite of many fans.", ev).problems
    assert checker.check("If you are a fan of Heat, Fargo is close to it.", ev).supported
    # a name that is part of the item's own title is the title, not a person
    indy = CatalogItem("ml-100k:435", "movie", "Indiana Jones and the Last Crusade", 1989, ("Action", "Adventure"))
    assert checker.check("Indiana Jones and the Last Crusade is an adventure with Indiana Jones.",
                         Evidence(indy)).supported


def test_a_title_of_repeated_words_is_no_repeat_but_a_title_said_over_and_over_is() -> None:
    liar = CatalogItem("ml-100k:283", "movie", "Liar Liar", 1997, ("Comedy",), warm=True)
    triad = CatalogItem("ml-100k:1", "movie", "Shanghai Triad (Yao a yao yao dao waipo qiao)", 1995, ("Drama",))
    checker = ClaimChecker(TitleSpotter([*CATALOG, liar, triad]), similar=None)
    ev = Evidence(liar, nearest=[{"title": triad.title, "item_id": triad.item_id, "share": 1.0}])
    plain = explainer("").plain(ev)
    assert checker.check(plain, ev).supported, checker.check(plain, ev).problems
    godfather = Evidence(GODFATHER)
    looping = checker.check("The Godfather: The Godfather: The Godfather: The Godfather", godfather)
    assert looping.sentences[0].repeated
    assert "echo: their tastes" in checker.check("The Godfather is made to fit their tastes.", godfather).problems


def test_a_cross_domain_pick_is_explained_by_its_bridge(checker: ClaimChecker) -> None:
    """A book for a film lover (issue 27): the bridge is evidence — the film it names may be named,
    the author is a known person — and the evidence sentence leads with it."""
    from tools.cross_domain import Via

    novel = CatalogItem("book-crossing:9", "book", "The Godfather", 1969, author="Mario Puzo")
    sicilian = CatalogItem("book-crossing:10", "book", "The Sicilian", 1984, author="Mario Puzo")
    by_author = Evidence(sicilian, source="store", bridge=Via("author", "The Godfather", novel.item_id, "Mario Puzo"))
    assert checker.check("The Sicilian is by Mario Puzo, who also wrote The Godfather.", by_author).supported
    assert not checker.check("The Sicilian is by Mario Puzo, who also wrote The Godfather.",
                             Evidence(sicilian, source="store")).supported  # without the bridge: an invented title
    assert by_author.to_dict()["bridge"]["sentence"] == "The Sicilian is by Mario Puzo, who also wrote The Godfather."
    plain = explainer("").plain(by_author)
    assert "it is by Mario Puzo, who also wrote The Godfather" in plain and checker.check(plain, by_author).supported


def test_the_item_among_their_likes_another_title_as_the_item_and_fragments_are_unsupported(checker) -> None:
    """What the XRec adapter wrote that titles and genres alone let through (issue 29's hand check)."""
    ev = fargo_evidence()
    for text, problem in (("You liked Heat and Fargo.", "relation: Fargo among what they liked"),
                          ("You liked Heat, Babe, and Fargo.", "relation: Fargo among what they liked"),
                          ("Fargo is a Heat.", "relation: Fargo as another title"),
                          ("Fargo is a film about Heat.", "relation: Fargo as another title"),
                          (": Heat, Fargo.", "fragment: : Heat, Fargo."),
                          ("Fargo is close to Heat. You asked: Why Fargo?", "echo: You asked"),
                          ("You liked Fargo, and you loved Heat.", "relation: Fargo among what they liked"),
                          ("You liked Heat and Fargo 25 of the 50 people watched it.",
                           "relation: Fargo among what they liked"),
                          ("Fargo sits near Fargo, which you liked.", "relation: Fargo near itself"),
                          ("Fargo is a crime film, much like Fargo.", "relation: Fargo near itself"),
                          ("Fargo, a thriller similar to Fargo, suits you.", "relation: Fargo near itself")):
        assert problem in checker.check(text, ev).problems, text
    for fine in ("Since you liked Heat, Fargo should suit you.", "If you liked Heat, you might enjoy Fargo.",
                 "Fargo is close to Heat, which you liked.", "\"Fargo\" is close to Heat."):
        assert checker.check(fine, ev).supported, (fine, checker.check(fine, ev).problems)


def test_broken_titles_the_item_in_their_list_and_clauses_alone_are_unsupported(checker) -> None:
    """Families the tuned explainer wrote that passed before (bench/explain_chat.py, read by hand):
    a title broken apart, the item grouped with their films as what they enjoyed, half a sentence."""
    robot = CatalogItem("ml-100k:9001", "movie", "I, Robot", 2004, ("Action", "Sci-Fi"), warm=True)
    near_robot = Evidence(ALIENS, nearest=[{"title": "I, Robot", "item_id": robot.item_id, "share": 0.5}],
                          shared_genres=["Sci-Fi"], similar_users=(20, 50))
    problems = checker.check("You enjoyed I and Robot, and Aliens sits near them.", near_robot).problems
    assert "title: part of a title: Robot" in problems
    assert checker.check("You enjoyed I, Robot, and Aliens sits near it.", near_robot).supported
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.6},
                                  {"title": "Babe", "item_id": BABE.item_id, "share": 0.4}],
                  shared_genres=["Crime"], similar_users=(25, 50))
    for text, problem in (("Heat and Fargo sit close to them, which you enjoyed.", "relation: Fargo among what they liked"),
                          ("Fargo, Heat and Babe, which you loved, are close.", "relation: Fargo among what they liked"),
                          ("If you liked Heat.", "fragment: If you liked Heat."),
                          ("and you liked crime, Fargo should suit you.", "fragment: and you liked crime,")):
        assert problem in checker.check(text, ev).problems, (text, checker.check(text, ev).problems)
    for fine in ("Fargo is here because it sits near Heat and Babe, which you liked.",
                 "Heat and Babe lead to Fargo: it sits near them.", "You liked Heat and Babe, and Fargo sits near them.",
                 "People who enjoyed Heat and Babe also enjoyed Fargo.", "Because it sits near Heat, which you liked.",
                 "If you liked Heat and Babe, Fargo should suit you."):
        assert checker.check(fine, ev).supported, (fine, checker.check(fine, ev).problems)


def test_a_titles_own_punctuation_ends_no_sentence(checker) -> None:
    airplane = CatalogItem("ml-100k:9002", "movie", "Airplane!", 1980, ("Comedy",), warm=True)
    ev = Evidence(FARGO, nearest=[{"title": "Airplane!", "item_id": airplane.item_id, "share": 0.5},
                                  {"title": "Heat", "item_id": HEAT.item_id, "share": 0.4}], similar_users=(25, 50))
    check = checker.check("Fargo sits close to Airplane! and Heat, which you liked. It is here for you.", ev)
    assert [s.sentence for s in check.sentences] == ["Fargo sits close to Airplane! and Heat, which you liked.",
                                                     "It is here for you."]
    assert check.sentences[0].supported
    batteries = CatalogItem("ml-100k:9003", "movie", "*batteries not included", 1987, ("Comedy",), warm=True)
    opening = "*batteries not included is here because it is close to Heat, which you liked."
    assert checker.check(opening, Evidence(batteries, nearest=ev.nearest[1:])).supported  # a title opens it


def test_what_they_said_they_liked_is_taken_up_when_the_writer_leaves_it_out() -> None:
    ev = fargo_evidence()
    ev.their_words = their_reasons(["I loved Heat for the twist."], FARGO)
    e = explainer("Fargo sits near Heat, which you liked.").explanation(ev)
    assert e.how == "llm+evidence"
    assert e.text == "Fargo sits near Heat, which you liked. You said you liked the twist, and it is a thriller film too."
    assert explainer("").check(e.text, ev).supported
    kept = explainer("Fargo has the twist you like, and it sits near Heat, which you liked.").explanation(ev)
    assert kept.how == "llm" and kept.text.count("twist") == 1  # said already: not added again
