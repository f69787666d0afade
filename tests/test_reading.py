"""Reading the person's words (agent/reading.py), the backstops behind the router: slot
sanitising, the genres they ask for or rule out, open year ranges, a count the router missed."""

from __future__ import annotations

import pytest

from agent.reading import adds_to_what_was_asked, asked_count, sanitize_slots
from agent.router import empty_slots


@pytest.mark.parametrize("text, wanted, ruled_out", [
    ("I loved Shrek and Finding Nemo. Recommend more animated films.", ["animation"], []),
    ("I hate horror movies. Recommend me some 90s movies.", [], ["horror"]),
    ("I don't like horror but love comedies", ["comedy"], ["horror"]),
    ("no, I want comedies", ["comedy"], []),
    ("anything but westerns", [], ["western"]),
    ("nothing too scary please", [], ["horror"]),
    ("more like Star Wars", [], []),  # "war" only as "war movies"
    ("I loved Toy Story and Aladdin", [], []),
    # moods and their comparatives ask for the genre that carries them
    ("seen the first one. anything lighter?", ["comedy"], []),
    ("something a bit scarier please", ["horror"], []),
    ("a feel-good film for tonight", ["comedy"], []),
    ("I need a good tearjerker", ["drama"], []),
    ("I'm in the mood for a good cry", ["drama"], []), ("something that will make me cry", ["drama"], []),
    ("I cried at the end of it", [], []),  # a reaction
    ("can you help me find a movie for date night?", ["comedy", "romance"], []),  # a rom-com
    ("something less scary this time", [], ["horror"]),
    ("it was hilarious, and a bit creepy", [], []),  # a reaction to a film seen asks for nothing
    ("does it have a happy ending? I don't care for tear jerkers", [], ["drama"]),
])
def test_genres_the_words_ask_for_or_rule_out(text, wanted, ruled_out) -> None:
    from agent.reading import genres_in

    assert genres_in(text) == (wanted, ruled_out)


@pytest.mark.parametrize("text, kind", [
    ("can you recommend a romantic comedy?", ["romance", "comedy"]),
    ("a funny romantic movie", ["comedy", "romance"]),
    ("any good horror/comedy films?", ["horror", "comedy"]),
    ("I like action-comedies", ["action", "comedy"]),
    ("a rom-com please", ["comedy", "romance"]),
    ("I really like horror and comedy films", []),  # listed: either will do
    ("action and adventure like Logan", []),
    ("a thriller, nothing romantic", []),  # ruled out is no kind asked for
    ("a comedy please", []),
])
def test_genres_named_side_by_side_are_one_kind_of_film(text, kind) -> None:
    from agent.reading import genres_as_one_kind

    assert genres_as_one_kind(text) == kind


@pytest.mark.parametrize("text, years", [
    ("Recommend some good movies from 2000 onwards", (2000, None)),
    ("comedies since 1995", (1995, None)),
    ("anything after 1995", (1996, None)),
    ("2005 or later", (2005, None)),
    ("before 1970 please", (None, 1969)),
    ("up to 1980", (None, 1980)),
    ("a war movie, but nothing older than 1970", (1970, None)),  # "nothing before X" starts at X
    ("not before 1980, please", (1980, None)),
    ("something from the 90s", None),  # a decade is the router's
])
def test_open_year_ranges_in_the_words(text, years) -> None:
    from agent.reading import open_years

    assert open_years(text) == years


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


@pytest.mark.parametrize(("text", "kept"), [
    ("ha I've watched the first two of those already, the rest look fun", []),  # no word against it
    ("the 2nd was boring", ["#2"]), ("loved the first, hated the second", ["#2"]),
    ("nah not #2", ["#2"]), ("seen the second one, not a fan", ["#2"]),
])
def test_a_place_is_disliked_only_where_the_words_turn_against_something(text: str, kept: list) -> None:
    out = sanitize_slots({**empty_slots(), "disliked": ["#2"]}, text, shown=["Heat", "Fargo", "Alien"])
    assert out["disliked"] == kept


@pytest.mark.parametrize(("text", "count"), [
    ("could you find me three space movies from the 70s", 3), ("3 westerns made after 1990", 3),
    ("two books like Dune?", 2), ("something from the 80s", None), ("movies from 1994", None),
    ("one more please", None), ("twenty comedies", None), ("ok give me 3 more, but not too gory", 3),
])
def test_a_count_the_router_missed_is_read_from_the_words(text: str, count: int | None) -> None:
    assert asked_count(text) == count
    assert sanitize_slots(empty_slots(), text, [])["count"] == count


def test_a_genre_the_router_gave_that_no_film_named_has_is_its_guess() -> None:
    from tools.catalog import CatalogItem

    titanic = CatalogItem("m:1", "movie", "Titanic", 1997, ("Drama", "Romance"))
    heat = CatalogItem("m:2", "movie", "Heat", 1995, ("Action", "Crime", "Thriller"))
    lion = CatalogItem("m:3", "movie", "The Lion King", 1994, ("Animation", "Children's", "Musical"))
    text = "I didn't like Titanic, but loved Heat. something from the eighties?"
    spans = [(text.index("Titanic"), text.index("Titanic") + 7), (text.index("Heat"), text.index("Heat") + 4)]
    guessed = {**empty_slots(), "genres": ["comedy", "crime"]}
    assert sanitize_slots(guessed, text, [], title_spans=spans, title_items=[titanic, heat])["genres"] == ["crime"]
    disney = "i love Disney movies like The Lion King"
    assert sanitize_slots({**empty_slots(), "genres": ["animation"]}, disney, [],
                          title_spans=[(26, 39)], title_items=[lion])["genres"] == ["animation"]
    # no film named: the router's reading of words the lexicon lacks stays ("spooky", "cowboys")
    assert sanitize_slots({**empty_slots(), "genres": ["western"]}, "anything with cowboys?", [])["genres"] == ["western"]


def test_sanitize_takes_genres_and_years_from_the_words_over_the_router() -> None:
    slots = {**empty_slots(), "genres": ["horror"], "year_from": 1999, "year_to": 2000}
    out = sanitize_slots(slots, "I hate horror movies, show me comedies from 2000 onwards", [])
    assert out["genres"] == ["comedy"] and out["without"] == ["horror"]
    assert (out["year_from"], out["year_to"]) == (2000, None)
    # "more" keeps what was asked unless the words let some of it go
    assert sanitize_slots({**empty_slots(), "clear": ["all"]}, "ok give me 3 more, but not too gory", [])["clear"] == []
    assert sanitize_slots({**empty_slots(), "clear": ["year"]}, "more please, any decade", [])["clear"] == ["year"]
    assert sanitize_slots({**empty_slots(), "clear": ["all"]}, "I've seen all of these", [])["clear"] == []  # others of them
    # a change asked of the suggestions keeps them too: "something shorter" after fantasy books (the
    # router cleared it all, and five films came back)
    assert sanitize_slots({**empty_slots(), "clear": ["all"]}, "something shorter maybe", [])["clear"] == []
    assert sanitize_slots({**empty_slots(), "clear": ["all"]}, "something funnier instead", [])["clear"] == ["all"]
    # a title of the last list stays only when the words point into the list
    shown = ["Family Band", "Toy Story"]
    assert sanitize_slots({**empty_slots(), "liked": ["Family Band"]}, "they loved Coco and Moana", shown)["liked"] == []
    assert sanitize_slots({**empty_slots(), "liked": ["Family Band"]}, "they loved the first one", shown)["liked"] == \
        ["Family Band"]
    # the router kept one genre of two the words name, or read a mood as another genre: the words' genres
    assert sanitize_slots({**empty_slots(), "genres": ["romance"]}, "can you recommend a romantic comedy?",
                          [])["genres"] == ["comedy", "romance"]
    assert sanitize_slots({**empty_slots(), "genres": ["romance"]}, "hi! any feel-good movies for tonight?",
                          [])["genres"] == ["comedy"]
    kept = sanitize_slots({**empty_slots(), "genres": ["drama"]}, "something moving", [])
    assert kept["genres"] == ["drama"] and kept["without"] == []  # the router's plausible slot stays
    # the router read "not into comedies" as comedies asked anew: its clearing of the genres before goes too
    misread = sanitize_slots({**empty_slots(), "genres": ["comedy"], "clear": ["genres"]},
                             "not into comedies though", [])
    assert misread["genres"] == [] and misread["without"] == ["comedy"] and misread["clear"] == []
    anew = sanitize_slots({**empty_slots(), "genres": ["horror"], "clear": ["genres"]}, "what about horror instead?", [])
    assert anew["genres"] == ["horror"] and anew["clear"] == ["genres"]


@pytest.mark.parametrize("text, wanted, ruled_out", [
    ("a comedy, but nothing scary", ["comedy"], ["horror"]),  # "nothing" rules out, like "nothing too"
    ("nothing but comedies", ["comedy"], []),  # "nothing but" asks for them
    ("nothing beats a good western", ["western"], []),
])
def test_nothing_rules_a_genre_out_but_nothing_but_asks_for_it(text, wanted, ruled_out) -> None:
    from agent.reading import genres_in

    assert genres_in(text) == (wanted, ruled_out)


def test_bounds_that_cannot_both_hold_are_a_contradiction_not_an_empty_range() -> None:
    from agent.reading import open_years

    text = "a horror movie but nothing scary, from before 1950 and after 2010"
    assert open_years(text) == (2011, 1949)  # "1950 and after 2010" is not "1950 and after"
    out = sanitize_slots({**empty_slots(), "genres": ["horror"], "year_from": 1950, "year_to": 2010}, text, [])
    assert (out["year_from"], out["year_to"]) == (None, None)
    assert out["conflicts"] == {"years": [2011, 1949], "genres": ["horror"]}
    assert sanitize_slots(empty_slots(), "comedies after 1990 and before 2000", [])["conflicts"] == {}


def test_markup_is_not_read_as_part_of_the_request() -> None:
    from agent.reading import without_markup

    assert without_markup("<script>alert(1)</script> give me comedies") == "give me comedies"
    assert without_markup("<b>Heat</b> and <img src=x onerror=alert(1)>Fargo") == "Heat and Fargo"
    assert without_markup("I <3 comedies, 2 < 3 > 1 & more") == "I <3 comedies, 2 < 3 > 1 & more"  # not markup
    # "(1)" inside the script was read as "1 … comedies": a count of one
    assert asked_count(without_markup("<script>alert(1)</script> give me comedies")) is None


@pytest.mark.parametrize(("text", "can"), [
    ("أريد فيلم رعب", False),  # Arabic: "I want a horror film"
    ("أريد فيلم رعب مثل فيلم Fargo", False),  # mostly Arabic, one title
    ("我想看恐怖片", False), ("Хочу комедию", False),
    ("Bonjour ! Je cherche un bon film d'animation pour ce soir.", True),  # French: the router copes
    ("¿Tienes una comedia?", True), ("three 90s comedies", True), ("10/10 👍", True)])
def test_a_message_is_readable_when_most_of_its_letters_are_latin(text: str, can: bool) -> None:
    from agent.reading import readable

    assert readable(text) is can


@pytest.mark.parametrize(("text", "years"), [
    ("animated movies from the 2000s", (2000, 2009)),  # the router read 1994-1999 (issue 24)
    ("comedies from the eighties", (1980, 1989)), ("funny films from the '80s", (1980, 1989)),
    ("80's comedies?", (1980, 1989)), ("the 1970s and 1980s", (1970, 1989)), ("late 90s thrillers", (1996, 1999)),
    ("action movies from 1990 to 1999", (1990, 1999)), ("pre-1970 westerns", (None, 1969)),
    ("horror newer than 2010", (2011, None)), ("movies from 1994", (1994, 1994)),
    ("westerns older than 1970", (None, 1969)), ("from 2000 onwards", (2000, None)),
    ("recent horror movies", (2016, None)), ("older thrillers please", (None, 1989)),
    ("something more recent?", (2016, None)), ("any comedies that came out recently?", (2016, None)),
    ("recently released dramas", (2016, None)), ("do you know of any good comedies recently?", (2016, None)),
    ("what have you seen that came out recently?", (2016, None)),
    # "recently" of a viewing says when they watched, not which films they want
    ("I recently saw Heat and loved it", None), ("I watched that one recently too", None),
    ("seen any good movies recently?", None), ("I just recently saw it and it was great", None),
    ("I recently saw Heat, any good comedies?", None),
    ("I'm in my 30s and like comedies", None), ("a movie my 8 year old would like", None),
    ("how old is that movie?", None), ("something new", None), ("we have 100s of dvds", None),
])
def test_decades_ranges_and_relative_years_in_the_words(text, years) -> None:
    from agent.reading import stated_years

    assert stated_years(text, this_year=2026) == years


def test_a_decade_in_the_words_replaces_the_routers_years() -> None:
    slots = {**empty_slots(), "genres": ["animation"], "year_from": 1994, "year_to": 1999}
    out = sanitize_slots(slots, "animated movies from the 2000s", [])
    assert (out["year_from"], out["year_to"]) == (2000, 2009)


@pytest.mark.parametrize(("text", "domain"), [
    ("I'm a huge fan of Heat and Ronin, can you suggest some books?", "book"),
    ("any movies like the books Rebecca and Jane Eyre", "movie"),  # "the books" says what the titles are
    ("loved reading Dune and Emma, what can I watch?", "movie"),
    ("I loved the film, any books like it?", "book"), ("what should I read next", "book"),
    ("I read Dune last year, loved it", None), ("movies or books, doesn't matter", None),
    ("I watched Titanic yesterday", None), ("what is the book about?", None),
    # a book word that says what a film is, or an idiom (ReDial seekers' words)
    ("Action, scifi, fantasy, horror, comic book", None), ("any comic book movies?", "movie"),
    ("Yes. That was a very good book adaptation.", None), ("Anything with explosions is a win in my book.", None),
    ("any good book series?", "book"), ("any young adult books?", "book"),
    # "of" after a quantity or a kind still asks (read in chat: "a couple of novels" got one film)
    ("can you suggest a couple of novels like that first one?", "book"), ("what kind of books do you have?", "book"),
    ("I am a fan of books", None), ("the film version of the book", None),
])
def test_the_domain_the_words_ask_for(text, domain) -> None:
    from agent.reading import asked_domain

    assert asked_domain(text) == domain


def test_a_domain_word_inside_a_title_asks_for_nothing() -> None:
    from agent.reading import asked_domain

    text = "AND The Jungle Book (2016)"
    start = text.index("The Jungle Book")
    assert asked_domain(text) == "book"  # the word alone
    assert asked_domain(text, [(start, start + len("The Jungle Book"))]) is None
    text = "loved The Book Thief, any films like it?"
    start = text.index("The Book Thief")
    assert asked_domain(text, [(start, start + len("The Book Thief"))]) == "movie"


def test_films_based_on_books_are_not_a_request_for_books() -> None:
    out = sanitize_slots({**empty_slots(), "titles": ["Les Misérables"], "domain": "book"},
                         "I like movies that are based on books, like Les Misérables. Any good suggestions?", [])
    assert out["domain"] is None  # the dialogue's domain stays


def test_the_asked_domain_replaces_the_routers() -> None:
    out = sanitize_slots({**empty_slots(), "titles": ["Heat"], "domain": "movie"},
                         "I'm a huge fan of Heat, can you suggest some books?", [])
    assert out["domain"] == "book"


@pytest.mark.parametrize(("text", "place"), [
    ("why the third?", 3), ("explain pick #2", 2), ("why number three?", 3), ("what makes the top one right for me?", 1),
    ("tell me why you'd suggest the second", 2), ("the first time I saw it", None), ("at first I hated it", None),
    ("the first and the third", None), ("the first movie of the series", None),
])
def test_the_place_in_the_list_the_words_point_to(text, place) -> None:
    from agent.reading import referenced_position

    assert referenced_position(text) == place
    if place is not None:  # the router left it out: the words fill it
        assert sanitize_slots(empty_slots(), text, [])["reference"] == place


@pytest.fixture(scope="module")
def spotter():
    from tools.catalog import CatalogItem
    from tools.resolve import TitleSpotter

    titles = ["The Lion King", "Vertigo", "Casablanca", "Clueless", "Fargo", "The Godfather"]
    return TitleSpotter([CatalogItem(f"ml-100k:{n}", "movie", t, n_ratings=10) for n, t in enumerate(titles)])


@pytest.mark.parametrize(("text", "intent"), [
    ("I loved The Lion King", "recommend"),  # a taste for a title: a request (scripted dialogue lion_king_90s)
    ("OK, then: I loved Casablanca", "recommend"),
    ("who directed Vertigo?", "chitchat"),  # a question about a title: answered, never a list (issue 24)
    ("is Casablanca in black and white", "chitchat"),
    ("Clueless is on tv right now haha", "chitchat"),  # named in passing
    ("why did you pick Fargo?", "explain"), ("Why would I like The Godfather?", "explain"),
    ("Why do people like The Godfather so much?", "chitchat"),  # about the film, not the pick
    ("hello there", "chitchat"),
])
def test_the_second_look_on_chitchat(spotter, text: str, intent: str) -> None:
    from agent.reading import second_look

    assert second_look("chitchat", empty_slots(), text, spotter)[0] == intent
    # a request stays one, but a question about one film is chit-chat whatever the router said
    question = text in ("who directed Vertigo?", "is Casablanca in black and white")
    assert second_look("recommend", empty_slots(), text, spotter)[0] == ("chitchat" if question else "recommend")


@pytest.mark.parametrize(("text", "reaction"), [
    ("I've seen Fargo, loved it", True),  # answers the suggestions and asks for nothing
    ("Thanks! I'll check out Vertigo", True),
    ("I loved The Lion King", True),  # after suggestions: a taste told, not a new request
    ("anything else?", False), ("something funnier", False), ("any comedies instead", False),
    ("only ones from the 90s", False), ("I loved Fargo, got more like it?", False),
    ("I've seen all of these", False), ("already watched them", False),  # the list is spent: others, please
    ("That one's good too. Thanks for the suggestions! Goodbye!", True),  # thanks, not a request for more
    ("of course, i have, those are my kind of movies", True), ("I saw Fargo but haven't heard of Vertigo", True),
    ("that's another one I have yet to see", True), ("give me another one please", False),
    ("can you suggest a few more", False),
    # what the suggestion is like is no request for it: not a comedy asked for, not "something" asked
    ("Oh I missed that one! It looks hilarious, I'll find it tonight", True),
    ("this one sounds like something my wife would watch. thanks", True),
    ("it sounds scary, got any comedies?", False), ("that's a good one but I want something lighter", False),
])
def test_a_turn_that_only_reacts_to_suggestions_is_chitchat(spotter, text: str, reaction: bool) -> None:
    from agent.reading import second_look

    expected = "chitchat" if reaction else "recommend"
    assert second_look("recommend", empty_slots(), text, spotter, after_suggestions=True)[0] == expected
    # with nothing suggested just before, the router's request stands
    assert second_look("recommend", empty_slots(), text, spotter)[0] == "recommend"


@pytest.mark.parametrize(("text", "intent"), [
    ("hello can you recommend any good movies", "recommend"),  # the router said chit-chat (ReDial dev)
    ("Hi I like funny movies. Can you help?", "recommend"), ("Other suggestion?", "recommend"),
    ("do you know Vertigo? im looking for a thriller", "recommend"),  # asks, beside a question about a film
    ("Thanks for the suggestions!", "chitchat"), ("who directed Vertigo?", "chitchat"),
    # more words between "any" and "suggestions", and "you could recommend" said the other way round
    ("got any really good recommendations?", "recommend"), ("have you got some other great ideas for me", "recommend"),
    ("loved it. anything else you could recommend?", "recommend"), ("ok, any you would suggest?", "recommend"),
    # a taste for a kind of film described in words, before anything was suggested
    ("hey! I really like films about time travel", "recommend"), ("i love gloomy movies", "recommend"),
    ("I enjoy movies set in space", "recommend"),
    ("I like movies", "chitchat"), ("I love all kinds of films!", "chitchat"),  # no kind told
    # wanting a kind of film is asking for one (the router answered "I want a star wars movie" with its capabilities)
    ("I want a star wars movie, I loved Fargo", "recommend"), ("i want comedy movies like Clueless", "recommend"),
    ("we'd like something to watch tonight", "recommend"), ("I would like a scary movie", "recommend"),
    ("Not yet! I really need to see the movie", "chitchat"),  # a film already spoken of
])
def test_words_that_ask_for_suggestions_make_a_request(spotter, text: str, intent: str) -> None:
    from agent.reading import second_look

    assert second_look("chitchat", empty_slots(), text, spotter)[0] == intent


@pytest.mark.parametrize(("text", "intent"), [
    ("What is that one about?", "chitchat"),  # its plot: a question about the item, not why it was picked
    ("No I have not, what is it about?", "chitchat"),
    ("why the third?", "explain"), ("what makes the top one right for me?", "explain"),
    ("how did you pick these?", "explain"),
])
def test_an_explanation_asks_why_and_a_question_about_the_film_asks_what(spotter, text: str, intent: str) -> None:
    from agent.reading import second_look

    assert second_look("explain", empty_slots(), text, spotter)[0] == intent


def test_a_reaction_can_come_turns_after_the_suggestion_but_not_after_a_question_about_taste() -> None:
    from agent.reading import after_suggestions

    listed = ("assistant", ["ml-100k:1"], "How about Fargo?")
    assert after_suggestions([listed])
    assert after_suggestions([listed, ("user", [], "Is that the one with Frances McDormand?"), ("assistant", [], "It is.")])
    assert not after_suggestions([listed, ("user", [], "seen it"), ("assistant", [], "What kind of movies do you like?")])
    assert not after_suggestions([listed, ("user", [], "meh"), ("assistant", [], "ok, what films do you like then?")])
    assert not after_suggestions([("assistant", [], "Hi! What are you in the mood for?")])
    assert not after_suggestions([listed, ("user", [], "ok")])  # the person's own turn last: nothing to answer
    assert not after_suggestions([])


@pytest.mark.parametrize(("text", "titles", "stances"), [
    ("I loved Toy Story and Aladdin", ["Toy Story", "Aladdin"], ["liked", "liked"]),
    ("Heat is on my list", ["Heat"], ["liked"]),  # named with no word against it: people name what they like
    ("I didn't really care for Titanic", ["Titanic"], ["disliked"]),
    ("not a big fan of Grease", ["Grease"], ["disliked"]),
    ("Titanic was too long for me", ["Titanic"], ["disliked"]),
    ("I watched Cats last week. It was awful.", ["Cats"], ["disliked"]),  # the next sentence, about it
    ("I watched Cats last week. Then I went home.", ["Cats"], ["liked"]),
    ("I loved Heat, not so much Ronin", ["Heat", "Ronin"], ["liked", "disliked"]),
    ("My least favourite films are Grease and Cats", ["Grease", "Cats"], ["disliked", "disliked"]),  # a list
    ("I hated Grease but Cats was great", ["Grease", "Cats"], ["disliked", "liked"]),
    ("I've seen Heat but not Ronin", ["Heat", "Ronin"], ["liked", "liked"]),  # not seen is not disliked
    ("I did see Good Will Hunting but not Dead Poets Society", ["Good Will Hunting", "Dead Poets Society"],
     ["liked", "liked"]),
    ("something like Heat but not Scream", ["Heat", "Scream"], ["liked", "disliked"]),
    ("something like Fargo, but nothing like Saw", ["Fargo", "Saw"], ["liked", "disliked"]),
    ("any western other than Unforgiven?", ["Unforgiven"], ["disliked"]),
    ("I like most of his films besides Hook", ["Hook"], ["disliked"]),
    ("I've watched Cats. I think it was okay, wouldn't watch it again", ["Cats"], ["disliked"]),  # a lead-in
    ("I've watched Mother! . I think it was okay, wouldn't watch it again", ["Mother!"], ["disliked"]),  # a stop twice
    ("I loved Heat even though it was too long", ["Heat"], ["liked"]),  # a reservation, not a verdict
    ("I watched Heat even though it was boring", ["Heat"], ["disliked"]),  # no like said: the verdict stands
    ("something like Ronin with De Niro, not a fan of Tom Cruise", ["Ronin"], ["liked"]),  # a fan of someone else
    ("I saw Ronin, not a fan of it", ["Ronin"], ["disliked"]),
    ("a Nolan film that is NOT Inception", ["Inception"], ["disliked"]),
    ("who directed Vertigo?", ["Vertigo"], [None]),  # a question about the film says nothing of taste
    ("what about Vertigo?", ["Vertigo"], ["liked"]),  # a suggestion is not a question about it
])
def test_how_a_person_feels_about_each_title_they_name(text: str, titles: list[str], stances: list) -> None:
    from agent.reading import title_stances

    spans = [(text.index(t), text.index(t) + len(t)) for t in titles]
    assert title_stances(text, spans) == stances


@pytest.mark.parametrize(("text", "carries"), [
    ("Hi there", False), ("Oh I haven't seen that one!", False), ("I'm good, thanks. What else?", False),
    ("I loved Fargo", True), ("something like dunkirk with Tom Hardy", True),  # a name the spotter may not know
    ("any comedies?", True), ("only 90s please", True), ("any books?", True),
    ("why the second one?", True),
])
def test_a_transcript_turn_is_routed_only_when_it_names_something_the_state_keeps(spotter, text, carries) -> None:
    from agent.reading import carries_taste

    assert carries_taste(text, spotter) is carries


def test_a_shared_title_is_the_one_of_the_year_written_after_it_else_the_domain_asked_else_the_known_one() -> None:
    from tools.catalog import CatalogItem
    from tools.resolve import TitleSpotter

    old = CatalogItem("ml-100k:1", "movie", "Jumanji", year=1995, n_ratings=96)
    new = CatalogItem("redial:2", "movie", "Jumanji", year=2017, n_ratings=0)
    novel = CatalogItem("book-crossing:3", "book", "The Shape of Water", year=2002, n_ratings=6)
    film = CatalogItem("redial:4", "movie", "The Shape of Water", year=2017, n_ratings=0)
    heat = CatalogItem("ml-100k:5", "movie", "Heat", year=1995, n_ratings=50)
    obscure_heat = CatalogItem("redial:6", "movie", "Heat", year=1986, n_ratings=0)
    spotter = TitleSpotter([old, new, novel, film, heat, obscure_heat])
    assert [i for _, i in spotter.spot("I loved Jumanji (1995)")] == [old]
    assert [i for _, i in spotter.spot("I loved Jumanji 2017 and The Shape of Water (2002)")] == [new, novel]
    assert [i for _, i in spotter.spot("I loved The Shape of Water", domain="book")] == [novel]
    assert [i for _, i in spotter.spot("The Shape of Water (1999) was great")] == [film]  # no item of that year
    # the ratings end in 2002 (the novel): a film of 2017 could have none, so it is not the less known
    assert [i for _, i in spotter.spot("I loved Jumanji and The Shape of Water", domain="movie")] == [new, film]
    # a film of 1986 could have been rated and was not: the rated one of the title
    assert [i for _, i in spotter.spot("I loved Heat")] == [heat]
    # the words say which: the oldest or the newest of the title, whatever the ratings
    assert [i for _, i in spotter.spot("I really liked the original Jumanji", domain="movie")] == [old]
    assert [i for _, i in spotter.spot("I saw the first Jumanji, not the new one")] == [old]
    assert [i for _, i in spotter.spot("did not see the new Heat yet")] == [heat]  # 1995 is the newest
    assert [i for _, i in spotter.spot("The old Heat was better")] == [obscure_heat]
    assert [i for _, i in spotter.spot("the Heat remake was fine")] == [heat]


def test_a_shared_title_is_the_one_with_the_article_as_written_else_the_one_the_conversation_named() -> None:
    from tools.catalog import CatalogItem
    from tools.resolve import TitleSpotter

    heat = CatalogItem("ml-100k:1", "movie", "Heat", year=1995, n_ratings=223)
    the_heat = CatalogItem("ml-latest-small:2", "movie", "The Heat", year=2013, n_ratings=3)
    old = CatalogItem("ml-100k:3", "movie", "Jumanji", year=1995, n_ratings=96)
    new = CatalogItem("ml-latest-small:4", "movie", "Jumanji", year=2017, n_ratings=5)
    spotter = TitleSpotter([heat, the_heat, old, new])
    assert [i for _, i in spotter.spot("Something like The Heat or Bad Boys")] == [the_heat]
    assert [i for _, i in spotter.spot("I loved Heat")] == [heat]
    assert [i for _, i in spotter.spot("I loved Jumanji")] == [old]  # the most rated
    named = {new.item_id}  # "have you seen Jumanji (2017)?"
    assert [i for *_, i in spotter.spans("I loved Jumanji", known=named)] == [new]
    assert spotter.item_of("Jumanji", known=named) is new
    # what the words say still comes first: a year, the oldest or newest, the article
    assert [i for *_, i in spotter.spans("I loved Jumanji (1995)", known=named)] == [old]
    assert [i for *_, i in spotter.spans("the original Jumanji was better", known=named)] == [old]
    assert [i for *_, i in spotter.spans("I loved Heat", known={the_heat.item_id})] == [heat]


def test_a_short_shared_title_is_spotted_after_the_words_that_say_which_film() -> None:
    from tools.catalog import CatalogItem
    from tools.resolve import TitleSpotter

    old = CatalogItem("ml-100k:1", "movie", "It", year=1990, n_ratings=2)
    new = CatalogItem("redial:2", "movie", "It", year=2017, n_ratings=0)
    spotter = TitleSpotter([old, new])
    assert [i for _, i in spotter.spot("I love the original It better though")] == [old]
    assert [i for _, i in spotter.spot("The new It and Jigsaw were pretty good")] == [new]


@pytest.mark.parametrize(("text", "stance"), [
    ("I loved that one! It was so much like the comics", "liked"), ("Oh yeah, I watched that, I liked it", "liked"),
    ("that one was great", "liked"), ("I didn't like it", "disliked"), ("that movie was way too boring", "disliked"),
    ("It was boring.", "disliked"), ("did you like it?", None), ("I haven't seen it", None), ("Hi there", None),
    ("I loved the first one", "liked"), ("the second one was too slow", "disliked"),  # a place in the list
])
def test_how_a_message_naming_no_title_speaks_of_the_one_just_suggested(text: str, stance) -> None:
    from agent.reading import stance_on_it

    assert stance_on_it(text) == stance


def test_a_domain_nothing_in_the_words_points_to_is_not_taken_from_the_router():
    from agent.reading import sanitize_slots

    def domain(text, routed, titles=()):
        return sanitize_slots({"domain": routed, "titles": list(titles)}, text, [])["domain"]

    assert domain("any thrillers based on a true story?", "book") is None  # the dialogue's domain stays
    assert domain("any thrillers based on a true story? something to read", "movie") == "book"  # the words
    assert domain("more like Dune please", "book", ["Dune"]) == "book"  # a title can say it
    assert domain("anything by Stephen King?", "book") == "book"  # so can a name


def test_thanks_and_a_name_written_where_a_person_goes() -> None:
    from agent.reading import thanks, written_as_person

    assert thanks("Thanks for the suggestions!") and thanks("appreciate it") and not thanks("I loved Heat")
    assert written_as_person("Tom Hanks", "any movies with Tom Hanks?")
    assert written_as_person("greta gerwig", "something directed by Greta Gerwig")
    assert not written_as_person("Tom Hanks", "I loved Tom Hanks")  # could be a title: asked about as one
    assert not written_as_person("Heat", "a film with Heat")  # one word is no name


@pytest.mark.parametrize("text, adds", [
    ("what about horror?", False),
    ("any good comedies", False),
    ("and some comedy too", True),
    ("also thrillers", True),
    ("a horror with a bit of comedy", True),
    ("a comedy that isn't too long please", False),  # "too" inside, not at the end
])
def test_genres_add_to_the_ones_before_only_when_the_words_say_so(text, adds):
    assert adds_to_what_was_asked(text) is adds


@pytest.mark.parametrize("text, router_count, count", [
    ("anything newer? like after 2010", 2, None),  # the router's 2 is no count the words write
    ("give me three westerns", 3, 3),
    ("3 comedies please", 3, 3),
    ("some comedies", 4, None),
    ("five thrillers", None, 5),  # the words fill what the router missed
])
def test_a_count_is_one_the_words_write(text, router_count, count):
    assert sanitize_slots({**empty_slots(), "count": router_count}, text, [])["count"] == count


@pytest.mark.parametrize("text, stance", [
    ("I've seen the first one, not a fan", "disliked"),  # the small model answered "I'm sorry for your loss"
    ("not a fan of that one", "disliked"),
    ("seen the second, not for me", "disliked"),
    ("I loved the first one", "liked"),
    ("what about the second one?", None),
    ("I have not seen it", None),
])
def test_a_reaction_to_a_place_in_the_list_is_read_like_one_to_a_title(text, stance):
    from agent.reading import stance_on_it

    assert stance_on_it(text) == stance


@pytest.mark.parametrize(("text", "liked", "ruled_out"), [
    ("I like sci-fi too", ["sci-fi"], []), ("big fan of westerns", ["western"], []),
    ("not into horror though", [], ["horror"]), ("I hate musicals", [], ["musical"]),
    ("any westerns?", [], []), ("more westerns please", [], []),  # a request, not a taste told
    ("no horror please, something else", [], []), ("I loved Heat", [], []),
])
def test_a_taste_for_genres_told_and_nothing_asked(text: str, liked: list[str], ruled_out: list[str]) -> None:
    from agent.reading import genre_tastes

    assert genre_tastes(text) == (liked, ruled_out)


@pytest.mark.parametrize(("text", "greets"), [
    ("hi", True), ("Hello there!", True), ("Hey! How are you doing today?", True), ("good evening", True),
    ("hi, I loved Heat", False), ("hello can you help me find a movie", False), ("hi, any 90s comedies?", False),
])
def test_a_greeting_and_nothing_more(text: str, greets: bool) -> None:
    from agent.reading import greets_only

    assert greets_only(text) is greets


@pytest.mark.parametrize(("text", "reacts"), [
    ("I've seen It and Get Out, loved both", True),  # "both": the titles they name
    ("I loved the first one", True), ("Thanks for the suggestions! I'll check out Heat", True),
    ("I have seen all of these", False), ("watched them both already", False),  # the list is spent: others
    # not seen is no spent list: a reaction (ReDial seekers' "I havent seen either of those")
    ("I havent seen either of those", True), ("I haven't seen any of those, never watched them", True),
    ("I watched one of those X-Men movies lately", True), ("seen a few of them, loved them", True),  # some, not all
    ("anything else?", False), ("something older", False), ("any westerns?", False),
])
def test_a_reaction_answers_a_suggestion_and_asks_for_nothing(text: str, reacts: bool) -> None:
    from agent.reading import reacts_only

    assert reacts_only(text) is reacts


def test_chitchat_that_asks_for_a_persons_films_is_a_request() -> None:
    from agent.reading import second_look
    from tools.catalog import CatalogItem
    from tools.item_facts import People
    from tools.resolve import TitleSpotter

    film = CatalogItem("redial:1", "movie", "Sleepless in Seattle", year=1993, description="Starring Meg Ryan.")
    people, spotter = People([film]), TitleSpotter([film])
    assert "Meg Ryan" in people
    assert second_look("chitchat", empty_slots(), "what about meg ryan", spotter, True, people)[0] == "recommend"
    assert second_look("chitchat", empty_slots(), "anything starring Meg Ryan?", spotter, True, people)[0] == "recommend"
    assert second_look("chitchat", empty_slots(), "who is Meg Ryan?", spotter, True, people)[0] == "chitchat"
    assert second_look("chitchat", empty_slots(), "what about meg ryan", spotter, True)[0] == "chitchat"  # no credits


@pytest.mark.parametrize(("text", "place", "only"), [
    ("and the last one?", -1, -1), ("why the last one?", -1, -1), ("what about the third?", 3, 3), ("and #2?", 2, 2),
    ("I loved the last one", -1, None), ("the last movie I saw was Heat", None, None),  # a film, not a place
    ("the last time I saw it", None, None),
])
def test_the_last_place_in_the_list_and_a_message_that_names_only_a_place(text: str, place, only) -> None:
    from agent.reading import place_only, referenced_position

    assert referenced_position(text) == place and place_only(text) == only


@pytest.mark.parametrize(("text", "intent"), [
    ("something by agatha christie", "recommend"), ("anything else like it?", "recommend"),  # more, no reason asked
    ("why the second?", "explain"), ("why would I like something like that?", "explain"),
    ("how did you pick these?", "explain"),
])
def test_an_explanation_the_router_saw_in_a_request_for_more(spotter, text: str, intent: str) -> None:
    from agent.reading import second_look

    assert second_look("explain", empty_slots(), text, spotter)[0] == intent


@pytest.mark.parametrize(("text", "asks"), [
    ("do you like comedies?", True), ("what's your favorite movie?", True), ("whats ur fav film", True),
    ("do you know any good comedies?", False), ("would you recommend Heat?", False), ("I loved Heat", False),
])
def test_a_question_about_the_agents_own_taste(text: str, asks: bool) -> None:
    from agent.reading import asks_my_taste

    assert asks_my_taste(text) is asks


def test_a_title_the_router_cut_at_its_commas_is_the_whole_title() -> None:
    from agent.reading import whole_titles

    text = "loved Crazy, Stupid, Love a lot and Monsters, Inc. too, also Toy Story and Aladdin"
    spans = [(text.index(t), text.index(t) + len(t)) for t in ("Crazy, Stupid, Love", "Monsters, Inc.", "Toy Story",
                                                              "Aladdin")]
    cut = ["Crazy", "Stupid", "Love a lot", "Monsters", "Inc."]
    assert whole_titles(cut, text, spans) == ["Crazy, Stupid, Love", "Monsters, Inc."]
    # whole titles, a mention holding two of them, list places and words not written stay as they are
    kept = ["Toy Story and Aladdin", "Aladdin", 2, "#1", "Heat"]
    assert whole_titles(kept, text, spans) == kept


@pytest.mark.parametrize(("text", "about"), [
    ("I love movies about friendship", "movies about friendship"), ("i like sad movies", "sad movies"),
    ("Hi, I love films based on real life, any ideas?", "films based on real life"),
    ("I like movies", ""), ("I love all kinds of films!", ""), ("loved it, thanks", ""),
])
def test_the_kind_of_film_a_taste_is_told_for(text: str, about: str) -> None:
    from agent.reading import described_taste

    assert described_taste(text) == about


def test_a_goodbye_is_told_from_words_that_only_look_like_one() -> None:
    from agent.reading import says_goodbye

    for text in ("bye", "okay thanks...bye", "Thank you for your help. Goodbye", "take care",
                 "Cool, thank you for those suggestions. Have a great evening.", "good night!", "byee"):
        assert says_goodbye(text), text
    for text in ("I'll watch it by the way", "have a great time with it", "by the way, any comedies?",
                 "a day at the races", "I can see why you picked it"):
        assert not says_goodbye(text), text


@pytest.mark.parametrize(("text", "answering", "intent"), [
    ("I've seen all of these", True, "recommend"),  # the real router said chit-chat: the list is spent
    ("already watched them both", True, "recommend"),
    ("I haven't seen any of those, they look good", True, "chitchat"),  # a reaction
    ("I've seen all of these", False, "chitchat"),  # nothing was suggested: no list to spend
])
def test_a_spent_list_asks_for_others(spotter, text: str, answering: bool, intent: str) -> None:
    from agent.reading import second_look

    assert second_look("chitchat", empty_slots(), text, spotter, answering)[0] == intent


def test_a_domain_the_words_do_not_name_follows_the_titles_they_do() -> None:
    from agent.reading import sanitize_slots
    from tools.catalog import CatalogItem

    film, novel = (CatalogItem(f"{d}:1", d, "Alien", 1979, ("Sci-Fi",)) for d in ("movie", "book"))
    # after a reply that offered books, the router read "book" into a request that names a film
    slots = {**empty_slots(), "genres": ["sci-fi"], "domain": "book", "titles": ["Alien"]}
    text = "mostly sci fi, stuff like Alien"
    span = [(text.index("Alien"), len(text))]
    assert sanitize_slots(slots, text, [], None, span, [film])["domain"] is None
    assert sanitize_slots(slots, text, [], None, span, [novel])["domain"] == "book"
    asked = "any books like Alien?"
    assert sanitize_slots(slots, asked, [], None, [(asked.index("Alien"), 20)], [film])["domain"] == "book"
