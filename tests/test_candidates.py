"""Candidates for a turn (tools/candidates.py): the constraints and how they relax, the graph's
fold-in (no model), and films near in meaning fused in for a conversation graph (a real store)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.items import BABE, DUNE, FARGO, GODFATHER, HEAT
from tools.candidates import Constraint, genre_key

MODEL_FIXTURES = {"shark_store"}  # builds a real item store (sentence embeddings)


def test_constraints_admit_and_relax() -> None:
    nineties_crime = Constraint(("crime",), 1990, 1999, "movie")
    assert nineties_crime.admits(FARGO) and nineties_crime.admits(HEAT)
    assert not nineties_crime.admits(GODFATHER)  # 1972
    assert not nineties_crime.admits(BABE)  # no crime
    assert not nineties_crime.admits(DUNE)  # a book
    assert Constraint(("children's",)).admits(BABE) and genre_key("Sci-Fi") == genre_key("sci fi")
    # one kind, two catalogues' names: MovieLens's "Children's" is IMDb's (ReDial's) "Family"
    paddington = replace(BABE, item_id="redial:155955", title="Paddington 2", genres=("Adventure", "Comedy", "Family"))
    assert Constraint(("children's",)).admits(paddington) and not Constraint(("drama",)).admits(paddington)
    assert not Constraint(without=("children's",)).admits(paddington)
    assert genre_key("Music") != genre_key("Musical")  # overlapping kinds are not one
    assert Constraint(("sci-fi",), domain="book").admits(DUNE)  # books carry no genres: the query asks instead
    unknown_kind = replace(FARGO, genres=())  # ReDial lists a few films with no genre ("Insidious (2011)")
    assert not Constraint(("documentary",)).admits(unknown_kind)
    assert Constraint().admits(unknown_kind)
    dropped = [what for what, _ in nineties_crime.relaxations()]
    assert dropped == ["year", "genres", "year and genres"]
    assert all(c.domain == "movie" for _, c in nineties_crime.relaxations())


def test_a_person_asked_for_admits_their_films_and_is_relaxed_last() -> None:
    with_pacino = Constraint(("crime",), 1990, 1999, "movie", people=("Al Pacino",),
                             credited=frozenset({HEAT.item_id, GODFATHER.item_id}))
    assert with_pacino.admits(HEAT) and with_pacino.says_what()
    assert not with_pacino.admits(FARGO)  # a nineties crime film without him
    assert not with_pacino.admits(GODFATHER)  # his, but 1972
    relaxed = dict(with_pacino.relaxations())
    assert list(relaxed) == ["year", "genres", "year and genres", "year and genres and Al Pacino"]
    assert relaxed["year"].admits(GODFATHER) and not relaxed["year"].admits(FARGO)  # the person stays
    assert relaxed["year and genres and Al Pacino"].admits(BABE)
    only_him = Constraint(people=("Al Pacino",), credited=frozenset({HEAT.item_id}))
    assert [what for what, _ in only_him.relaxations()] == ["Al Pacino"]


def test_the_fold_in_setting_decides_between_the_aligned_and_the_popular_item() -> None:
    """A chat user who named A: B points the same way as A, C is long (much rated) and half aligned.
    The cosine answers B first; the dot product (TurnSettings.fold_in = "dot") answers C first."""
    import numpy as np
    import pytest
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog, CatalogItem

    items = [CatalogItem(f"cat:{name}", "movie", f"Film {name}", 2000, ("Drama",), warm=True) for name in "ABC"]
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [3.0, 3.0]])
    train = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32))
    rec = GraphRecommender(np.ones((2, 2)), vectors, train, ["u1", "u2"], [i.item_id for i in items], "toy")
    catalog = Catalog(items)

    def first(fold_in: str) -> str:
        tool = CandidateTool(rec, catalog, store=None, fold_in=fold_in)
        found = tool.candidates(user_id=None, liked=[items[0]], disliked=[], exclude=[], constraint=Constraint(), k=2)
        return found[0].item.title

    assert first("cosine") == "Film B" and first("dot") == "Film C"
    with pytest.raises(ValueError, match="fold_in"):
        CandidateTool(rec, catalog, store=None, fold_in="sum")


def test_films_sharing_a_director_or_a_lead_with_the_liked_ones_move_up() -> None:
    """A chat user who liked A (directed by Ann): the dot product ranks C, D, B; B is Ann's and moves
    up; E shares only a fifth-billed actor, which is no lead; without credits the order stays."""
    import numpy as np
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog, CatalogItem

    def film(name: str, credits: str = "") -> CatalogItem:
        return CatalogItem(f"cat:{name}", "movie", f"Film {name}", 2000, ("Drama",), warm=True, description=credits)

    cast = "Starring Bo, Cy, Di, Ed and Fay."
    items = [film("A", "Directed by Ann. " + cast), film("B", "A plot. Directed by Ann."), film("C"), film("D"),
             film("E", "Starring Gus, Hal, Ike, Jo and Fay.")]
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [3.0, 0.0], [2.0, 0.0], [0.5, 0.0]])
    train = sp.csr_matrix(np.ones((2, 5), dtype=np.float32))
    rec = GraphRecommender(np.ones((2, 2)), vectors, train, ["u1", "u2"], [i.item_id for i in items], "toy")

    def order(catalog_items: list) -> list[str]:
        tool = CandidateTool(rec, Catalog(catalog_items), store=None, fold_in="dot")
        found = tool.candidates(user_id=None, liked=[catalog_items[0]], disliked=[], exclude=[],
                                constraint=Constraint(), k=4)
        return [c.item.title for c in found]

    assert order(items) == ["Film B", "Film C", "Film D", "Film E"]
    assert order([film(i.title[-1]) for i in items]) == ["Film C", "Film D", "Film B", "Film E"]


def test_a_constraint_says_what_only_when_it_narrows_beyond_the_default_domain() -> None:
    assert not Constraint().says_what() and not Constraint(domain="movie").says_what()  # "recommend me a movie"
    assert Constraint(domain="book").says_what() and Constraint(("comedy",)).says_what()
    assert Constraint(year_from=1990).says_what() and Constraint(without=("horror",)).says_what()


def test_auto_matches_a_conversations_graph_by_dot_product_and_a_ratings_graph_by_cosine() -> None:
    from types import SimpleNamespace

    import numpy as np

    from agent.agent import fold_in_for

    conversations = SimpleNamespace(users=np.repeat(np.arange(50), 4))  # 4 films a person
    ratings = SimpleNamespace(users=np.repeat(np.arange(50), 40))
    assert fold_in_for(conversations, "auto") == "dot" and fold_in_for(ratings, "auto") == "cosine"
    assert fold_in_for(conversations, "cosine") == "cosine"  # a set choice stands


def test_asking_only_for_genres_gets_the_graphs_favourites_of_them_not_a_text_search() -> None:
    """Nobody named: "any comedies?" ranks the graph's comedies (the most liked first); the store,
    which would match "comedy" in titles, is not asked (store=None would fail if it were)."""
    import numpy as np
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool, describes_more
    from tools.catalog import Catalog, CatalogItem

    items = [CatalogItem("cat:a", "movie", "The Comedian", 2000, ("Comedy",), warm=True),
             CatalogItem("cat:b", "movie", "Big Laughs", 2000, ("Comedy",), warm=True),
             CatalogItem("cat:c", "movie", "Grim", 2000, ("Drama",), warm=True)]
    vectors = np.array([[0.2, 0.0], [2.0, 0.0], [3.0, 0.0]])  # b and c are the much-liked ones
    train = sp.csr_matrix(np.array([[0, 1, 1], [1, 1, 1]], dtype=np.float32))
    rec = GraphRecommender(np.ones((2, 2)), vectors, train, ["u1", "u2"], [i.item_id for i in items], "toy")
    tool = CandidateTool(rec, Catalog(items), store=None)
    found = tool.candidates(user_id=None, liked=[], disliked=[], exclude=[], constraint=Constraint(("comedy",)),
                            query="hi, any good comedies?", k=2)
    assert [c.item.title for c in found] == ["Big Laughs", "The Comedian"]
    assert not describes_more("hi, any good comedies?") and not describes_more("sci-fi please")
    assert describes_more("a thriller set in space") and describes_more("something with talking animals")
    # when and where they will watch says nothing of what: not a text search for "rainy" and "sunday"
    assert not describes_more("what's a good movie for a rainy sunday?")
    assert not describes_more("any good films for friday night")
    # the years are the year constraint, not words to search for
    assert not describes_more("looking for a good comedy from the 90s") and not describes_more("older westerns")
    assert describes_more("a thriller set in space from the 90s")
    # a mood that stands for a genre is the genre, not a word to find in titles (Cry Freedom, Cry-Baby)
    assert not describes_more("I'm in the mood for a good cry")


def test_genres_asked_as_one_kind_put_the_films_of_all_of_them_first() -> None:
    """"a romantic comedy": the much-liked romance and comedy come after the less liked film that
    is both; the rest still follow (any of the genres). Genres listed ("romance and comedies") and
    one genre keep the graph's order."""
    import numpy as np
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog, CatalogItem

    items = [CatalogItem("cat:r", "movie", "Epic Love", 2000, ("Romance", "War"), warm=True),
             CatalogItem("cat:c", "movie", "Big Laughs", 2000, ("Comedy",), warm=True),
             CatalogItem("cat:rc", "movie", "Meet Cute", 2000, ("Comedy", "Romance"), warm=True),
             CatalogItem("cat:d", "movie", "Grim", 2000, ("Drama",), warm=True)]
    vectors = np.array([[3.0, 0.0], [2.0, 0.0], [0.5, 0.0], [4.0, 0.0]])  # the romcom is the least liked
    train = sp.csr_matrix(np.array([[1, 1, 0, 1], [1, 1, 1, 1]], dtype=np.float32))
    rec = GraphRecommender(np.ones((2, 2)), vectors, train, ["u1", "u2"], [i.item_id for i in items], "toy")
    tool = CandidateTool(rec, Catalog(items), store=None)

    def titles(k: int, genres: tuple[str, ...], together: tuple[str, ...] = ()) -> list[str]:
        found = tool.candidates(user_id=None, liked=[], disliked=[], exclude=[],
                                constraint=Constraint(genres, together=together), query="", k=k)
        return [c.item.title for c in found]

    assert titles(3, ("romance", "comedy"), ("romance", "comedy")) == ["Meet Cute", "Epic Love", "Big Laughs"]
    assert titles(3, ("romance", "comedy")) == ["Epic Love", "Big Laughs", "Meet Cute"]
    assert titles(2, ("comedy",)) == ["Big Laughs", "Meet Cute"]
    # a cold film of the kind (bridged from text, ranked in its own places after the warm ones)
    # comes before the warm films of one genre too
    cold = CatalogItem("cat:new", "movie", "New Rom-Com", 2020, ("Comedy", "Romance"))
    tool = CandidateTool(rec.with_items(["cat:new"], np.array([[0.1, 0.0]])), Catalog([*items, cold]), store=None)
    assert titles(4, ("romance", "comedy"), ("romance", "comedy")) == ["Meet Cute", "New Rom-Com", "Epic Love",
                                                                      "Big Laughs"]


def test_the_graph_mask_leaves_out_what_was_shown_and_keeps_the_rest_whatever_else_was_shown() -> None:
    """Shown items the graph does not hold (a book, a film outside it) leave out nothing else;
    the constraint's mask, kept between turns, is not changed by one turn's exclusions."""
    import numpy as np
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog, CatalogItem

    items = [CatalogItem(f"cat:{name}", "movie", f"Film {name}", 2000, (genre,), warm=True)
             for name, genre in zip("ABCD", ("Drama", "Drama", "Comedy", "Drama"))]
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 1]], dtype=np.float32))
    rec = GraphRecommender(np.ones((2, 2)), np.eye(4, 2) + 0.5, train, ["u1", "u2"], [i.item_id for i in items], "toy")
    tool = CandidateTool(rec, Catalog([*items, DUNE]), store=None, fold_in="dot")
    drama = Constraint(("drama",))
    assert tool._allowed_mask({DUNE.item_id, "cat:B"}, drama).tolist() == [True, False, False, True]
    assert tool._allowed_mask({DUNE.item_id}, drama).tolist() == [True, True, False, True]
    found = tool.candidates(user_id=None, liked=[items[0]], disliked=[], exclude=[DUNE.item_id, "cat:D"],
                            constraint=drama, k=1)
    assert [c.item.title for c in found] == ["Film B"]


def test_nothing_named_genres_and_more_words_fuse_the_text_search_with_the_graphs_most_liked() -> None:
    """"comedies about a wedding", no film named: the store's text match first, then the graph's
    most liked comedy (the words alone gave ReDial's seekers text matches where people answered
    with popular films); with no words beyond the genre the graph alone answers (test above)."""
    import numpy as np
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog, CatalogItem
    from tools.item_store import SearchHit

    items = [CatalogItem("cat:a", "movie", "Wedding Bells", 2000, ("Comedy",), warm=True),
             CatalogItem("cat:b", "movie", "Big Laughs", 2000, ("Comedy",), warm=True),
             CatalogItem("cat:c", "movie", "Grim", 2000, ("Drama",), warm=True)]
    vectors = np.array([[0.2, 0.0], [2.0, 0.0], [3.0, 0.0]])
    train = sp.csr_matrix(np.array([[0, 1, 1], [1, 1, 1]], dtype=np.float32))
    rec = GraphRecommender(np.ones((2, 2)), vectors, train, ["u1", "u2"], [i.item_id for i in items], "toy")

    class WordsStore:  # the text search's answer for the words: the wedding film, then the drama
        asked: list[str] = []

        def search(self, text, k, domain=None, year_from=None, year_to=None):
            self.asked.append(text)
            return [SearchHit(i.item_id, i.title, i.domain, i.year, i.genres, None, True, 0.9) for i in (items[0], items[2])]

    store = WordsStore()
    tool = CandidateTool(rec, Catalog(items), store=store, fold_in="dot")
    found = tool.candidates(user_id=None, liked=[], disliked=[], exclude=[], constraint=Constraint(("comedy",)),
                            query="any comedies about a wedding?", k=2)
    assert store.asked == ["comedies wedding comedy"]
    assert [c.item.title for c in found] == ["Wedding Bells", "Big Laughs"]  # the drama is not a comedy
    assert {c.item.title: c.source for c in found}["Big Laughs"] == "graph"


def test_a_list_shows_a_title_once_when_one_of_its_films_has_no_year():
    """ReDial's year-less "Ghost" beside "Ghost (1990)" read as the same film listed twice."""
    from tools.candidates import Candidate, _one_per_film
    from tools.catalog import CatalogItem

    def cand(item_id, title, year):
        return Candidate(CatalogItem(item_id, "movie", title, year, ("Drama",), warm=True), 1.0, "graph")

    pool = [cand("a", "Ghost", 1990), cand("b", "Ghost", None), cand("c", "Heat", 1995),
            cand("d", "Ghost", 1998), cand("e", "Heat", None), cand("f", "Up", None), cand("g", "Up", 2009)]
    assert [c.item.item_id for c in _one_per_film(pool)] == ["a", "c", "d", "f"]



TOPICS = ["baking bread", "a chess tournament", "a mountain railway", "a jazz trumpeter", "a small-town election",
          "a vineyard harvest", "a ballet school", "a lighthouse keeper's diary", "a spelling bee", "an auction house",
          "a farm in winter", "a high-school debate team", "a wedding planner", "a retired boxer's diner",
          "a cross-country cycling race", "a violin maker", "a city bus driver", "a museum night guard",
          "a garden show", "a knitting club", "a radio quiz host", "a taxi dispatcher", "a fashion week model",
          "a stamp collector", "a college rowing crew"]


@pytest.fixture(scope="module")
def shark_store(tmp_path_factory: pytest.TempPathFactory):
    """Films in a real store: A and F about sharks, 25 others about anything else."""
    from tools.catalog import CatalogItem
    from tools.item_store import ItemStore

    sharks = [CatalogItem("cat:A", "movie", "Fin", 2000, ("Drama",), warm=True,
                          description="A great white shark terrorizes a beach town and the police chief hunts it."),
              CatalogItem("cat:F", "movie", "Deep Water Teeth", 2001, ("Drama",), warm=True,
                          description="A giant shark attacks swimmers off an island resort; a biologist hunts it.")]
    others = [CatalogItem(f"cat:{n}", "movie", f"Film {n}", 2000, ("Drama",), warm=True,
                          description=f"A quiet drama about {topic}.") for n, topic in enumerate(TOPICS)]
    store = ItemStore(tmp_path_factory.mktemp("sharks") / "chroma")
    store.build([*sharks, *others], progress=False)
    return sharks, others, store


def test_a_conversation_graph_moves_up_the_films_near_in_meaning_to_the_liked_ones(shark_store) -> None:
    """A conversation graph has seen few films together: the graph ranks the other shark film last
    of 26; fused by rank with the films nearest in meaning to the liked one, it moves far up. A
    MovieLens-style graph (cosine fold-in) and a tool without a store keep the graph's order."""
    import numpy as np
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog

    (liked, shark), others, store = shark_store
    items = [liked, shark, *others]
    vectors = np.array([[1.0, 0.0], [0.5, 0.3], *([1.0 - 0.01 * n, 0.1] for n in range(len(others)))])
    train = sp.csr_matrix(np.ones((2, len(items)), dtype=np.float32))
    rec = GraphRecommender(np.ones((2, 2)), vectors, train, ["u1", "u2"], [i.item_id for i in items], "toy")

    def place(fold_in: str, with_store: bool = True) -> int:
        tool = CandidateTool(rec, Catalog(items), store if with_store else None, fold_in=fold_in)
        found = tool.candidates(user_id=None, liked=[liked], disliked=[], exclude=[], constraint=Constraint(), k=26)
        assert len(found) == 26
        return [c.item.item_id for c in found].index(shark.item_id)

    assert place("dot", with_store=False) == 25 and place("cosine") == 25
    assert place("dot") < 15


def test_a_conversation_graph_moves_up_the_films_its_people_named_most() -> None:
    """Fold-in of A ranks B, C, D, E by the dot product; E was named in every conversation and
    moves up, fused by rank (ReDial's recommenders suggest the films everyone talks about). Equal
    counts change nothing, and a MovieLens-style graph (cosine fold-in) keeps the graph's order."""
    import numpy as np
    import scipy.sparse as sp

    from recsys.recommender import GraphRecommender
    from tools.candidates import CandidateTool
    from tools.catalog import Catalog, CatalogItem

    items = [CatalogItem(f"cat:{name}", "movie", f"Film {name}", 2000, ("Drama",), warm=True) for name in "ABCDE"]
    vectors = np.array([[1.0, 0.0], [3.0, 0.0], [2.5, 0.0], [2.0, 0.0], [1.5, 0.0]])

    def order(named: list[list[int]], fold_in: str) -> tuple[list[str], list[str]]:
        """(the tool's candidates, the graph's own ranking), by letter."""
        train = sp.csr_matrix(np.array(named, dtype=np.float32))
        rec = GraphRecommender(np.ones((len(named), 2)), vectors, train, [f"u{n}" for n in range(len(named))],
                               [i.item_id for i in items], "toy")
        tool = CandidateTool(rec, Catalog(items), store=None, fold_in=fold_in)
        found = tool.candidates(user_id=None, liked=[items[0]], disliked=[], exclude=[], constraint=Constraint(), k=4)
        nearest = rec.recommend_from_items if fold_in == "dot" else rec.recommend_similar
        return [c.item.title[-1] for c in found], [gid[-1] for gid, _ in nearest(["cat:A"], k=4)]

    e_everywhere = [[1, 1, 0, 0, 1], [1, 0, 1, 0, 1], [0, 0, 0, 1, 1], [1, 0, 0, 0, 1]]
    found, graph = order(e_everywhere, "dot")
    assert graph == ["B", "C", "D", "E"] and found == ["B", "C", "E", "D"]  # E named most: up from last
    found, graph = order([[1, 1, 1, 1, 1]] * 2, "dot")
    assert found == graph == ["B", "C", "D", "E"]
    found, graph = order(e_everywhere, "cosine")
    assert found == graph
