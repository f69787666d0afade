"""Questions about one item are answered from the catalogue's facts, and chit-chat states no fact
the catalogue does not hold (issue 24, parts 4 and 5). Pure: a small catalogue made here."""

from __future__ import annotations

import pytest

from agent.reading import facts_asked
from tools.catalog import Catalog, CatalogItem
from tools.fact_guard import FactGuard
from tools.item_facts import ItemFacts, credits_by_role
from tools.resolve import TitleSpotter

FARGO = CatalogItem("m:1", "movie", "Fargo", 1996, ("Crime", "Drama", "Thriller"),
                    description="A car salesman hires two criminals to kidnap his wife. Directed by Joel Coen and "
                                "Ethan Coen. Written by Ethan Coen and Joel Coen. Starring William H. Macy, "
                                "Frances McDormand and Steve Buscemi.")
HEAT = CatalogItem("m:2", "movie", "Heat", 1995, ("Action", "Crime"))  # no description: no credits, no plot
VERTIGO = CatalogItem("m:3", "movie", "Vertigo", 1958, ("Mystery", "Thriller"),
                      description="A retired detective is hired to follow a woman. Directed by Alfred Hitchcock.")


@pytest.fixture(scope="module")
def guard() -> FactGuard:
    catalog = Catalog([FARGO, HEAT, VERTIGO])
    return FactGuard(catalog, TitleSpotter(catalog.items))


def _spans(text: str) -> list[tuple[int, int]]:
    return [(a, b) for a, b, *_ in TitleSpotter([FARGO, HEAT, VERTIGO]).spans(text)]


@pytest.mark.parametrize("text, kinds", [
    ("who directed Fargo?", ["director"]),
    ("Fargo was directed by who?", ["director"]),
    ("who directed and starred in Fargo?", ["director", "cast"]),
    ("is Tom Hanks in Heat?", ["cast"]),
    ("when did Heat come out?", ["year"]),
    ("what kind of movie is Vertigo", ["genre"]),
    ("is Vertigo a thriller?", ["genre"]),
    ("is it animated?", ["genre"]), ("was Heat scary?", ["genre"]),  # a genre's word, no article
    ("is it any good?", ["other"]), ("is Heat ok for kids?", ["other"]),  # how suitable, not which kind
    ("is Vertigo too scary for children", ["other"]),
    ("what is Fargo about?", ["plot"]),
    ("is Vertigo in black and white?", ["other"]),
    ("Was Vertigo filmed in colour?", ["other"]),  # "Was Vertigo filmed in" names no actor
])
def test_a_question_about_a_film_says_which_fact_it_asks_for(text: str, kinds: list[str]) -> None:
    assert facts_asked(text, _spans(text)) == kinds


@pytest.mark.parametrize("text", ["what should I watch after Heat?", "anything like Fargo?", "I loved Fargo",
                                  "could you find me a documentary from 1994?", "Heat was great, any more Mann?",
                                  "what's a good movie from the eighties that isn't a comedy?",
                                  "Why would I like Heat?", "can you recommend films like Vertigo?",
                                  "any good thrillers like Heat?"])
def test_requests_and_statements_are_no_questions_about_a_film(text: str) -> None:
    assert facts_asked(text, _spans(text)) == []


def test_a_titles_own_words_ask_nothing() -> None:
    story = CatalogItem("m:9", "movie", "Toy Story", 1995, ("Animation",))
    text = "is there a sequel to Toy Story?"
    spans = [(a, b) for a, b, *_ in TitleSpotter([story]).spans(text)]
    assert facts_asked(text, spans) == ["other"]  # not "plot" for the word "story"


def test_credits_keep_initials_and_suffixes_inside_a_name() -> None:
    found = credits_by_role("Plot. Directed by Jon Favreau. Written by X. Starring Robert Downey Jr., "
                            "Samuel L. Jackson and T.J. Miller.")
    assert found == {"director": ["Jon Favreau"], "writer": ["X"],
                     "cast": ["Robert Downey Jr.", "Samuel L. Jackson", "T.J. Miller"]}
    assert credits_by_role("No credits here.") == {}


def test_an_answer_gives_the_facts_asked_and_says_what_it_does_not_know() -> None:
    fargo = ItemFacts.of(FARGO)
    assert fargo.plot == "A car salesman hires two criminals to kidnap his wife."
    assert fargo.answer(["director"]) == "Fargo (1996) was directed by Joel Coen and Ethan Coen."
    assert "William H. Macy, Frances McDormand and Steve Buscemi" in fargo.answer(["cast"])
    assert fargo.answer(["year"]) == "Fargo came out in 1996."
    assert "kidnap his wife" in fargo.answer(["plot"])
    yes = fargo.answer(["cast"], "is Steve Buscemi in Fargo?")
    unknown = fargo.answer(["cast"], "is Brad Pitt in Fargo?")
    assert yes.startswith("Yes") and "Brad Pitt" in unknown and not unknown.startswith("Yes")
    heat = ItemFacts.of(HEAT).answer(["director"])  # no credits: no name, and what is known instead
    assert heat.startswith("I don't know who directed it") and "1995" in heat and "action" in heat
    other = fargo.answer(["other"])
    assert other.startswith("I don't know that") and "Joel Coen" in other


def test_a_question_that_names_a_genre_is_answered_yes_or_with_how_the_catalogue_files_the_film() -> None:
    fargo = ItemFacts.of(FARGO)
    assert fargo.answer(["genre"], "is Fargo a thriller?") == "Yes: Fargo (1996) is a crime, drama and thriller film."
    assert fargo.answer(["genre"], "is it animated?") == (
        "Not as my catalogue files it: Fargo (1996) is a crime, drama and thriller film.")
    assert fargo.answer(["genre"], "what kind of film is it?") == "Fargo (1996) is a crime, drama and thriller film."
    scary = ItemFacts.of(CatalogItem("m:4", "movie", "Scary Movie", 2000, ("Comedy",)))
    assert scary.answer(["genre"], "is Scary Movie a comedy?").startswith("Yes")  # the title's words name nothing


def test_the_guard_drops_people_years_and_plots_the_catalogue_does_not_hold(guard: FactGuard) -> None:
    message = "tell me about films"
    assert guard.problems("Fargo was written by Steven Spielberg.", message)
    assert guard.problems("Heat came out in 2003.", message)
    assert guard.problems("Vertigo is a 1990s comedy about a young prostitute.", message)
    assert guard.problems("The first film was made in 1888.", message)
    assert not guard.problems("Fargo was directed by Joel Coen in 1996.", message)
    assert not guard.problems("Happy to help, I love a good film too!", message)
    assert not guard.problems("Alfred Hitchcock is great.", message)  # credited in the catalogue
    kept = guard.keep("Vertigo is a 1990s comedy. It was a huge hit. Fargo is a crime film.", message)
    assert kept.text == "Fargo is a crime film."  # "It was a huge hit" went on from the invented one
    assert [problems for _, problems in kept.dropped][1] == ["goes on from a sentence dropped"]


def test_the_guard_takes_what_the_message_says_and_the_film_it_is_about(guard: FactGuard) -> None:
    assert not guard.problems("Yes, Brad Pitt was in it in 1995.", "was Brad Pitt in Heat in 1995?", [HEAT])
    assert guard.problems("It stars Brad Pitt.", "who is in Heat?", [HEAT])


def test_the_second_look_makes_a_question_about_a_film_chitchat_about_it() -> None:
    from agent.reading import item_question, second_look
    from agent.router import empty_slots

    spotter = TitleSpotter([FARGO, HEAT, VERTIGO])
    intent, slots = second_look("recommend", {**empty_slots(), "liked": ["Fargo"]}, "who directed Fargo?", spotter)
    assert intent == "chitchat" and slots["titles"] == ["Fargo"] and slots["liked"] == []
    assert second_look("explain", empty_slots(), "why did you pick Fargo?", spotter)[0] == "explain"
    assert second_look("recommend", empty_slots(), "anything like Fargo?", spotter)[0] == "recommend"
    up = item_question("So what's Up about?", {"titles": ["Up"]}, spotter)  # too short to spot: the router's
    assert up is not None and up.title == "Up" and up.asked == ["plot"] and up.item is None
    assert item_question("who is the funniest actor?", {"titles": ["the funniest actor"]}, spotter) is None
    second = item_question("who directed the second one?", empty_slots(), spotter)
    assert second is not None and second.position == 2 and second.asked == ["director"]
    assert item_question("who is in it?", empty_slots(), spotter).asked == ["cast"]
    # "it" in the question is what the same message named first: a place in the list or a title
    liked_second = item_question("I liked the second one. Who is in it?", empty_slots(), spotter)
    assert liked_second is not None and liked_second.position == 2 and liked_second.asked == ["cast"]
    heat = item_question("Just saw Heat last night! Who directed it?", empty_slots(), spotter)
    assert heat is not None and heat.item == HEAT and heat.asked == ["director"]
    assert item_question("Wow. Who directed it?", empty_slots(), spotter).item is None  # nothing named first
    comedy = item_question("the second one sounds good, is it a comedy?", empty_slots(), spotter)
    assert comedy is not None and comedy.position == 2 and comedy.asked == ["genre"]  # the asking clause's kind


def test_a_question_about_a_title_several_films_share_asks_about_the_one_the_conversation_named() -> None:
    from agent.reading import item_question
    from agent.router import empty_slots

    heat = CatalogItem("m:2", "movie", "Heat", 1995, n_ratings=50)
    remake = CatalogItem("redial:9", "movie", "Heat", 1986, n_ratings=0)
    spotter = TitleSpotter([FARGO, heat, VERTIGO, remake])
    assert item_question("who directed Heat?", empty_slots(), spotter).item == heat  # the most rated
    asked = item_question("who directed Heat?", empty_slots(), spotter, known={remake.item_id})
    assert asked.item == remake  # after a list that showed it
    it = item_question("Just saw Heat last night! Who directed it?", empty_slots(), spotter, known={remake.item_id})
    assert it.item == remake


def test_a_question_about_a_person_is_answered_from_their_credits() -> None:
    from tools.item_facts import People

    people = People([FARGO, HEAT, VERTIGO])
    assert "Joel Coen" in people and "joel coen" in people and "Brad Pitt" not in people
    assert people.answer("joel coen") == "In my catalogue, Joel Coen directed Fargo (1996); wrote Fargo (1996)."
    assert "credits nobody called Brad Pitt" in people.answer("Brad Pitt")


def test_a_place_in_a_list_that_is_not_there_is_asked_about_only_when_said_as_one() -> None:
    from agent.reading import item_question

    spotter = TitleSpotter([FARGO, HEAT, VERTIGO])
    assert item_question("who directed the second one?", {}, spotter, has_list=False).position == 2
    assert item_question("what was the first movie ever made?", {}, spotter, has_list=False) is None
    assert item_question("Good morning! Busy day?", {"titles": ["Good Morning"]}, spotter) is None


def test_a_title_the_catalogue_lacks_is_named_back_not_answered() -> None:
    from agent.reading import item_question

    spotter = TitleSpotter([FARGO, HEAT, VERTIGO])
    assert item_question("Where can I stream Get Out?", {}, spotter).title == "Get Out"
    assert item_question("Is Coco on Disney+?", {}, spotter).title == "Coco"
    assert item_question("is it on Netflix?", {}, spotter).title is None  # "it": the item just shown


def test_an_initials_full_stop_ends_no_sentence() -> None:
    from tools.chat import first_sentences
    from tools.explain_check import sentences

    text = "Spielberg directed E.T. the Extra-Terrestrial and A.I. Artificial Intelligence. It was big."
    assert sentences(text) == ["Spielberg directed E.T. the Extra-Terrestrial and A.I. Artificial Intelligence.",
                               "It was big."]
    assert first_sentences("Fargo stars William H. Macy. It is good. A third.", 2) == \
        "Fargo stars William H. Macy. It is good."


def test_a_question_that_names_no_fact_is_about_what_its_own_clause_names() -> None:
    from agent.reading import item_question

    spotter = TitleSpotter([FARGO, HEAT, VERTIGO])
    assert item_question("saw Vertigo last night, what now?", {}, spotter) is None  # asks for the next one
    assert item_question("Is Heat any good?", {}, spotter).item is HEAT
    assert item_question("I saw Fargo, who directed it?", {}, spotter).item is FARGO  # a fact: the whole sentence


def test_people_are_found_as_people_type_them() -> None:
    from tools.item_facts import People

    hanks = CatalogItem("m:4", "movie", "Big", 1988, ("Comedy",), description="Directed by Penny Marshall. "
                        "Starring Tom Hanks and Robert Loggia.")
    smith = CatalogItem("m:5", "movie", "Hitch", 2005, ("Comedy",), description="Starring Will Smith.")
    people = People([FARGO, VERTIGO, hanks, smith])

    def names(text: str) -> list[str]:
        return [name for *_, name in people.named_in(text)]

    assert names("any movies with Tom Hanks?") == ["Tom Hanks"]
    assert names("anything with tom hanks") == ["Tom Hanks"]  # "hanks" is no everyday word
    assert names("i like will smith and penny marshall") == ["Will Smith", "Penny Marshall"]  # all lower case
    assert names("Will Smith movies please") == ["Will Smith"]
    assert names("That will smith it, I said") == []  # everyday words, not written as a name
    assert names("Loved Fargo, the Coen films, and William H. Macy in it") == ["William H. Macy"]
    assert names("Alfred Hitchcock or Steve Buscemi") == ["Alfred Hitchcock", "Steve Buscemi"]
    start, end, _ = people.named_in("I love Joel Coen!")[0]
    assert "I love Joel Coen!"[start:end] == "Joel Coen"
    assert people.items_of(["tom hanks", "Will Smith"]) == {"m:4", "m:5"}


def test_a_statement_of_taste_is_no_explanation_request() -> None:
    """ "hey i like sci fi and fantasy movies" right after "why the third one?" came back from the
    router as an explanation of a film called "Fantasy"; told before any suggestion, a taste for
    genres is what to recommend from, as a taste for a title is."""
    from agent.reading import second_look
    from agent.router import empty_slots

    spotter = TitleSpotter([FARGO, HEAT, VERTIGO])
    taste = "hey i like sci fi and fantasy movies"
    assert second_look("explain", empty_slots(), taste, spotter)[0] == "recommend"
    assert second_look("chitchat", empty_slots(), taste, spotter)[0] == "recommend"
    assert second_look("chitchat", empty_slots(), taste, spotter, after_suggestions=True)[0] == "chitchat"
    assert second_look("explain", empty_slots(), "hi, I'm not into anything tonight", spotter)[0] == "chitchat"
    assert second_look("explain", empty_slots(), "I loved Heat", spotter)[0] == "recommend"  # a taste for a title
    assert second_look("explain", empty_slots(), "I like Heat, why did you pick Fargo?", spotter)[0] == "explain"
    assert second_look("explain", empty_slots(), "what makes the top one right for me?", spotter)[0] == "explain"
