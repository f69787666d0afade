"""The words of the product, each defined once: the router's intents and the genres with all
their word forms.

In tools/ because both sides read it: agent/ (the router's schema, the words people use in
agent/reading.py, the instruction templates of agent/tuning/instruct.py) and tools/ (the genre
words an explanation may use, tools/explain.py), and tools may not import agent.

One row per genre (:class:`Genre`); the structures the rest of the code reads are derived from
the rows, in the rows' order (the router's genre enum is part of its JSON schema, which the tuned
router adapter was trained on):

- :data:`ROUTER_GENRES`: the router's genre names, its schema's enum;
- :data:`GENRE_WORDS`: router name → a regex of the words people use for it (agent/reading.py);
- :data:`GENRE_LEXICON`: catalogue name → the words that name it in a text (tools/explain.py);
- :data:`GENRE_ADJECTIVE`, :data:`GENRE_PLURAL`: catalogue name → how a person says it in a
  sentence, as a kind of film and in the plural (agent/tuning/instruct.py);
- :data:`GENRE_ALSO`: another catalogue's name for a genre → ours ("Family" → "Children's"):
  they compare as one (:func:`genre_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# what a turn is for: the router's labels, in its JSON schema's order
INTENTS = ("recommend", "explain", "chitchat")


@dataclass(frozen=True)
class Genre:
    """One genre and its word forms.

    ``asked``: a regex (matched case-insensitively as whole words) of the words people use when
    they ask for it or rule it out; "war" only as "war movies", not "Star Wars". Moods people ask
    for count, comparatives too ("anything lighter?", "something scarier", "a feel-good film", "a
    tearjerker"; a mood read as a search word found films with "Light" in their titles), not the
    words of a reaction to a film seen ("it was hilarious", "creepy", "it made me laugh").

    ``named``: the words that name it in an explanation (tools/explain.py's guard). Nouns and
    their plurals, the standard compound spellings, and adjectives that only ever name the genre
    ("animated", "romantic", "comedic"). Adjectives that are ordinary praise of any film are *not*
    genre claims here: thrilling, dramatic, mysterious, funny, scary, fantastic, adventurous; nor
    "family" (fun for the whole family). "musical" and "war" count in any use (rare outside their
    genre in these texts). Matched case-insensitively as whole words, also inside hyphenated
    compounds ("action-adventure" names both, "post-war" names War; "live-action" is a format, not
    Action); "rom-com" names two genres.
    """

    router: str  # the router's name for it, a value of the genres slot: "sci-fi"
    catalogue: str  # the catalogue's (ml-100k's) name: "Sci-Fi"
    asked: str  # regex: the words people use for it
    named: tuple[str, ...]  # the words that name it in an explanation
    adjective: str  # as a kind of film: "sci-fi", "noir"
    plural: str  # in the plural: "sci-fi films", "comedies"
    # the same kind under another catalogue's name: IMDb's (which ReDial's movies carry) calls
    # MovieLens's "Children's" "Family"; a kind that only overlaps ("Music" for "Musical") is not one
    also: tuple[str, ...] = ()


GENRES: tuple[Genre, ...] = (
    Genre("action", "Action", r"action", ("action",), "action", "action films"),
    Genre("adventure", "Adventure", r"adventures?", ("adventure", "adventures"), "adventure", "adventure films"),
    Genre("animation", "Animation", r"animated|animation|cartoons?|anime",
          ("animation", "animated", "cartoon", "cartoons", "anime"), "animation", "animated films"),
    Genre("children's", "Children's", r"kids|children'?s?",
          ("children's", "childrens", "children", "kids", "kid's", "kids'"), "children's", "children's films",
          also=("Family",)),
    Genre("comedy", "Comedy", r"comed(?:y|ies)|comedic|funn(?:y|ier|iest)|light[- ]?hearted|lighter|feel[- ]?good|"
          r"rom-?coms?|date[- ]nights?|date movies?|on a date",
          ("comedy", "comedies", "comedic", "rom-com", "romcom", "rom-coms"), "comedy", "comedies"),
    Genre("crime", "Crime", r"crime", ("crime", "crimes"), "crime", "crime films"),
    Genre("documentary", "Documentary", r"documentar(?:y|ies)", ("documentary", "documentaries"), "documentary",
          "documentaries"),
    Genre("drama", "Drama", r"dramas?|tear[- ]?jerkers?|(?:a )?good cry|make (?:me|us) cry|cry (?:my|our) eyes out",
          ("drama", "dramas"), "drama", "dramas"),
    Genre("fantasy", "Fantasy", r"fantasy", ("fantasy", "fantasies"), "fantasy", "fantasy films"),
    Genre("film-noir", "Film-Noir", r"film[- ]noirs?|noirs?", ("film noir", "film-noir", "noir"), "noir",
          "film noirs"),
    Genre("horror", "Horror", r"horror|scar(?:y|ier|iest)|creepier", ("horror", "horrors"), "horror",
          "horror films"),
    Genre("musical", "Musical", r"musicals?", ("musical", "musicals"), "musical", "musicals"),
    Genre("mystery", "Mystery", r"myster(?:y|ies)", ("mystery", "mysteries", "whodunit", "whodunnit"), "mystery",
          "mysteries"),
    Genre("romance", "Romance", r"romance|romantic|love stor(?:y|ies)|rom-?coms?|date[- ]nights?|date movies?|on a date",
          ("romance", "romances", "romantic", "rom-com", "romcom", "rom-coms", "love story"), "romance", "romances"),
    Genre("sci-fi", "Sci-Fi", r"sci[- ]?fi|science[- ]fiction",
          ("sci-fi", "scifi", "sci fi", "science fiction", "science-fiction"), "sci-fi", "sci-fi films"),
    Genre("thriller", "Thriller", r"thrillers?|suspense(?:ful)?", ("thriller", "thrillers"), "thriller", "thrillers"),
    Genre("war", "War", r"war (?:movies?|films?|stories)", ("war", "wars"), "war", "war films"),
    Genre("western", "Western", r"westerns?", ("western", "westerns"), "western", "westerns"),
)

ROUTER_GENRES: tuple[str, ...] = tuple(g.router for g in GENRES)
GENRE_WORDS: dict[str, str] = {g.router: g.asked for g in GENRES}
GENRE_LEXICON: dict[str, tuple[str, ...]] = {g.catalogue: g.named for g in GENRES}
GENRE_ADJECTIVE: dict[str, str] = {g.catalogue: g.adjective for g in GENRES}
GENRE_PLURAL: dict[str, str] = {g.catalogue: g.plural for g in GENRES}
ROUTER_GENRE_PLURAL: dict[str, str] = {g.router: g.plural for g in GENRES}  # "sci-fi" → "sci-fi films"
GENRE_ALSO: dict[str, str] = {other: g.catalogue for g in GENRES for other in g.also}  # "Family" → "Children's"


def _plain_genre(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", re.sub(r"['’]s", "", text.lower()))


_SAME_KIND = {_plain_genre(other): _plain_genre(ours) for other, ours in GENRE_ALSO.items()}


def genre_key(text: str) -> str:
    """"Children's" → "children", "Sci-Fi" → "scifi", IMDb's "Family" → "children" (one kind, two
    catalogues' names: tools.vocabulary.GENRE_ALSO): how genres compare everywhere."""
    key = _plain_genre(text)
    return _SAME_KIND.get(key, key)


__all__ = ["GENRES", "GENRE_ADJECTIVE", "GENRE_ALSO", "GENRE_LEXICON", "GENRE_PLURAL", "GENRE_WORDS", "ROUTER_GENRE_PLURAL", "INTENTS",
           "ROUTER_GENRES", "Genre", "genre_key"]
