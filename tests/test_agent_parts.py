"""The agent's parts that need no model: order validation, slot sanitising, constraints, the
explanation guard, the prompt-leak check."""

from __future__ import annotations

import json

import pytest

from agent.agent import _leaks, asked_count, sanitize_slots
from agent.router import empty_slots
from tools.candidates import Constraint, genre_key
from tools.catalog import CatalogItem
from tools.chat import first_sentences
from tools.explain import Evidence, Explainer
from tools.rerank import order_schema, validate_order
from tools.resolve import TitleSpotter

FARGO = CatalogItem("ml-100k:100", "movie", "Fargo", 1996, ("Crime", "Drama", "Thriller"), warm=True, graph_item_id="100")
HEAT = CatalogItem("ml-100k:X", "movie", "Heat", 1995, ("Action", "Crime", "Thriller"), warm=True)
BABE = CatalogItem("ml-100k:8", "movie", "Babe", 1995, ("Children's", "Comedy", "Drama"), warm=True)
GODFATHER = CatalogItem("ml-100k:127", "movie", "The Godfather", 1972, ("Action", "Crime", "Drama"), warm=True)
DUNE = CatalogItem("book-crossing:1", "book", "Dune", 1965, author="Frank Herbert")


@pytest.mark.parametrize(("answer", "expected"), [
    ('{"order": [3, 1, 2]}', [2, 0, 1]),
    ('{"order": [2, 4, 1, 3, 5, 6]}', [1, 3, 0]),  # longer than asked: the first `count`
])
def test_a_usable_order_is_taken(answer: str, expected: list[int]) -> None:
    order, problem = validate_order(answer, n_candidates=6, count=3)
    assert order == expected and problem == ""


@pytest.mark.parametrize(("answer", "reason"), [
    ('{"order": [1, 1, 2]}', "repeated"),
    ('{"order": [0, 2]}', "not a candidate"),
    ('{"order": [7]}', "not a candidate"),
    ('{"order": [true]}', "not a candidate"),
    ('{"order": []}', "empty"),
    ('{"ranking": [1]}', "JSON"),
    ('[1, 2', "JSON"),
])
def test_an_unusable_order_is_refused_with_the_reason(answer: str, reason: str) -> None:
    order, problem = validate_order(answer, n_candidates=6, count=3)
    assert order is None and reason in problem


def test_the_order_schema_names_only_candidates() -> None:
    schema = order_schema(4, 2)["properties"]["order"]
    assert schema["items"]["enum"] == [1, 2, 3, 4] and schema["maxItems"] == 2
    json.dumps(schema)


def test_constraints_admit_and_relax() -> None:
    nineties_crime = Constraint(("crime",), 1990, 1999, "movie")
    assert nineties_crime.admits(FARGO) and nineties_crime.admits(HEAT)
    assert not nineties_crime.admits(GODFATHER)  # 1972
    assert not nineties_crime.admits(BABE)  # no crime
    assert not nineties_crime.admits(DUNE)  # a book
    assert Constraint(("children's",)).admits(BABE) and genre_key("Sci-Fi") == genre_key("sci fi")
    assert Constraint(("sci-fi",), domain="book").admits(DUNE)  # books carry no genres: the query asks instead
    dropped = [what for what, _ in nineties_crime.relaxations()]
    assert dropped == ["year", "genres", "year and genres"]
    assert all(c.domain == "movie" for _, c in nineties_crime.relaxations())


def test_sanitize_drops_invented_titles_and_impossible_values() -> None:
    slots = {**empty_slots(), "titles": ["Toy Story", "The Princess Bride"], "liked": ["#2", "Aladdin"],
             "disliked": ["Fargo"], "year_from": 1999, "year_to": 1990, "count": 3000, "reference": "Casablanca"}
    out = sanitize_slots(slots, "I loved toy story. Not that one", shown=["Heat", "Fargo"])
    assert out["titles"] == ["Toy Story"]  # the model's invention is gone
    assert out["liked"] == ["#2"]  # a position is fine; "Aladdin" was never said
    assert out["disliked"] == ["Fargo"]  # it is in the list the message points at
    assert (out["year_from"], out["year_to"]) == (1990, 1999)
    assert out["count"] is None and out["reference"] is None
    assert sanitize_slots({**empty_slots(), "year_from": 3000}, "x", [])["year_from"] is None


def test_title_spotting_needs_a_capital_and_skips_sentence_openers() -> None:
    love_story = CatalogItem("ml-100k:L", "movie", "Love Story", 1970)
    spotter = TitleSpotter([FARGO, HEAT, GODFATHER, love_story, BABE])

    def spot(text: str) -> list[str]:
        return [item.title for _, item in spotter.spot(text)]

    assert spot("It has the heat of a summer love story.") == []
    assert spot("Like Fargo and The Godfather, it is tense.") == ["Fargo", "The Godfather"]
    assert spot("Heat is great. You liked Heat.") == ["Heat"]
    assert spot("I loved Godfather and Babe") == ["The Godfather", "Babe"]
    assert spot("Babe, I loved it") == []  # a lone word opening the text
    assert spot("Why would I like Flibbertigibbet Heat?") == []  # a word inside another name
    assert spot("We met Jack Fargo") == []  # after a capitalised word that opens no sentence
    assert spot("Loved it. Then Fargo") == ["Fargo"]  # "Then" is capitalised because it opens one
    assert spot("So I watched Heat") == ["Heat"]  # "I" is not a name
    assert spot('You said "it was great." Heat came next') == []  # a sentence opens after the quote
    assert spot("You liked:\n- Fargo\nHeat is next") == ["Fargo"]  # "Heat" opens a line
    assert spot("A list:\n- The Godfather") == ["The Godfather"]  # longer titles still count there


def test_a_lone_number_after_in_or_since_is_a_date_not_a_title() -> None:
    film = CatalogItem("ml-100k:2012", "movie", "2012", 2009, ("Action",))
    spotter = TitleSpotter([film, HEAT])
    assert [item.title for _, item in spotter.spot("Made in 2012, like Heat")] == ["Heat"]
    assert [item.title for _, item in spotter.spot("Loved it. Since 2012 I watch it yearly")] == []
    assert [item.title for _, item in spotter.spot("We watched 2012 twice")] == ["2012"]


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    class _Tool:  # the guard needs only the catalog's titles
        recommender = None

    return Explainer(llm=None, tool=_Tool(), spotter=TitleSpotter([FARGO, HEAT, BABE, GODFATHER, DUNE]))


def test_the_guard_wants_the_item_named_and_no_stranger_titles(explainer: Explainer) -> None:
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"])
    assert explainer.guard("Fargo is a dark crime story, close to Heat, which you liked.", ev) == ""
    assert "does not name" in explainer.guard("A dark crime story, close to Heat.", ev)
    assert "godfather" in explainer.guard("Fargo is like The Godfather and Heat.", ev)
    assert explainer.guard("", ev) == "empty"
    plain = explainer.plain(ev)
    assert plain.startswith("Fargo") and "Heat" in plain and explainer.guard(plain, ev) == ""


def test_the_guard_rejects_genres_the_evidence_does_not_hold(explainer: Explainer) -> None:
    ev = Evidence(FARGO, nearest=[{"title": "Heat", "item_id": HEAT.item_id, "share": 0.5}], shared_genres=["Crime"])
    assert explainer.guard("Fargo is a crime thriller, like Heat.", ev) == ""  # the item's own genres
    assert explainer.guard("Fargo is a horror classic.", ev) == "names genres not in the evidence: Horror"
    assert explainer.guard("Fargo is a romantic comedy.", ev) == "names genres not in the evidence: Comedy, Romance"
    # both wrong: the title is reported (the first rule broken)
    assert explainer.guard("Fargo is a horror film like Heat.", Evidence(FARGO)) == "names titles not in the evidence: heat"


def test_replies_are_cut_at_whole_sentences() -> None:
    assert first_sentences("One. Two! Three? Four.", 3) == "One. Two! Three?"
    assert first_sentences("One. Two and then it was cut", 3) == "One."
    assert first_sentences("just one unfinished", 3) == "just one unfinished"


def test_a_reply_that_repeats_the_instructions_is_caught() -> None:
    instructions = "You are Chat-Rec, a friendly assistant that recommends movies and books to people."
    assert _leaks("Sure: you are Chat-Rec, a friendly assistant that recommends movies and books!", instructions)
    assert not _leaks("I recommend movies and books. What do you like?", instructions)


@pytest.mark.parametrize(("text", "count"), [
    ("could you find me three space movies from the 70s", 3), ("3 westerns made after 1990", 3),
    ("two books like Dune?", 2), ("something from the 80s", None), ("movies from 1994", None),
    ("one more please", None), ("twenty comedies", None),
])
def test_a_count_the_router_missed_is_read_from_the_words(text: str, count: int | None) -> None:
    assert asked_count(text) == count
    assert sanitize_slots(empty_slots(), text, [])["count"] == count


# ----------------------------------------------------------------- the words' own backstops


@pytest.mark.parametrize("text, wanted, ruled_out", [
    ("I loved Shrek and Finding Nemo. Recommend more animated films.", ["animation"], []),
    ("I hate horror movies. Recommend me some 90s movies.", [], ["horror"]),
    ("I don't like horror but love comedies", ["comedy"], ["horror"]),
    ("no, I want comedies", ["comedy"], []),
    ("anything but westerns", [], ["western"]),
    ("nothing too scary please", [], ["horror"]),
    ("more like Star Wars", [], []),  # "war" only as "war movies"
    ("I loved Toy Story and Aladdin", [], []),
])
def test_genres_the_words_ask_for_or_rule_out(text, wanted, ruled_out) -> None:
    from agent.reading import genres_in

    assert genres_in(text) == (wanted, ruled_out)


@pytest.mark.parametrize("text, years", [
    ("Recommend some good movies from 2000 onwards", (2000, None)),
    ("comedies since 1995", (1995, None)),
    ("anything after 1995", (1996, None)),
    ("2005 or later", (2005, None)),
    ("before 1970 please", (None, 1969)),
    ("up to 1980", (None, 1980)),
    ("something from the 90s", None),  # a decade is the router's
])
def test_open_year_ranges_in_the_words(text, years) -> None:
    from agent.reading import open_years

    assert open_years(text) == years


def test_sanitize_takes_genres_and_years_from_the_words_over_the_router() -> None:
    slots = {**empty_slots(), "genres": ["horror"], "year_from": 1999, "year_to": 2000}
    out = sanitize_slots(slots, "I hate horror movies, show me comedies from 2000 onwards", [])
    assert out["genres"] == ["comedy"] and out["without"] == ["horror"]
    assert (out["year_from"], out["year_to"]) == (2000, None)
    kept = sanitize_slots({**empty_slots(), "genres": ["drama"]}, "something moving", [])
    assert kept["genres"] == ["drama"] and kept["without"] == []  # the router's plausible slot stays


class _Odds:
    """Says P("yes") from a table by the title in the ask (the pointwise re-ranker's only call)."""

    def __init__(self, odds: dict[str, float], fail: bool = False) -> None:
        self.odds, self.fail, self.asks = odds, fail, []

    def answer_probabilities(self, messages, answers):
        from tools.chat import LLMUnavailable

        if self.fail:
            raise LLMUnavailable("the endpoint is down")
        self.asks.append(messages)
        p = next(v for title, v in self.odds.items() if f"enjoy {title} (" in messages[-1].content)
        return {"yes": p, "no": 1 - p}


def _cands(*items: CatalogItem) -> list:
    from tools.candidates import Candidate

    return [Candidate(item, 1.0 - n / 10, "graph") for n, item in enumerate(items)]


def test_fused_order_averages_the_two_ranks_and_keeps_the_scored_order_on_ties() -> None:
    from tools.rerank import fused_order

    assert fused_order([0.1, 0.2, 0.3]) == [0, 1, 2]  # ranks (0,2) (1,1) (2,0): all tie, scored order kept
    assert fused_order([0.1, 0.9, 0.5, 0.2]) == [1, 0, 2, 3]
    assert fused_order([0.9, 0.8, 0.7, 0.6]) == [0, 1, 2, 3]


def test_the_pointwise_reranker_sorts_by_p_yes_and_falls_back_when_the_llm_is_down() -> None:
    from tools.rerank import PointwiseReranker

    candidates = _cands(FARGO, HEAT, BABE, GODFATHER)
    odds = _Odds({"Fargo": 0.2, "Heat": 0.6, "Babe": 0.1, "The Godfather": 0.9})
    result = PointwiseReranker(odds).rerank(candidates, 3, profile=["Alien", "Heat"], query="a crime film")
    assert result.used_llm and result.order == [3, 1, 0] and result.p_yes == [0.2, 0.6, 0.1, 0.9]
    assert len(odds.asks) == 4
    fused = PointwiseReranker(odds, fuse=True).rerank(candidates, 4)
    # rank sums (scored + yes): Fargo 0+2, Heat 1+1, Babe 2+3, Godfather 3+0; the Fargo-Heat tie keeps the scored order
    assert fused.order == [0, 1, 3, 2]
    down = PointwiseReranker(_Odds({}, fail=True)).rerank(candidates, 3)
    assert not down.used_llm and down.order == [0, 1, 2] and "did not answer" in down.note
    assert PointwiseReranker(odds).rerank(candidates[:1], 3).order == [0]


def test_the_pointwise_ask_is_the_one_tune_data_trains_on() -> None:
    """Same system line and question as `chatrec tune data`'s pointwise rows (its first templates)."""
    from prompts import read_instruct_templates
    from tools.rerank import PointwiseReranker

    t = read_instruct_templates()
    [cand] = _cands(FARGO)
    system, user = PointwiseReranker(llm=None).prompt(cand, profile=["Heat", "Babe"], query="crime")
    assert system["content"] == t["pointwise"]["system"].format(domain="movie")
    assert user["content"] == "\n".join([t["implicit_preference"][0].format(titles="Heat; Babe"),
                                         "They asked for: crime",
                                         t["pointwise"]["questions"][0].format(title="Fargo (1996)")])
    _, coded = PointwiseReranker(llm=None).prompt(cand, profile=["Heat"], codes=("note", "1.2.3.4", "5.6.7.8"))
    assert coded["content"].startswith("Their code: 1.2.3.4\n") and "Fargo (1996) [code 5.6.7.8]?" in coded["content"]
