"""One vocabulary (tools/vocabulary.py) and the router's typed slots (agent/router.py): every
structure derived from them holds exactly the values it held when each was written out by hand
(literal copies below), in the same order — the router's schema and prompt are what the tuned
adapter was trained on."""

from __future__ import annotations

import json

from agent.router import SCHEMA, SLOT_KEYS, Slots, empty_slots
from tools.vocabulary import (GENRE_ADJECTIVE, GENRE_LEXICON, GENRE_PLURAL, GENRE_WORDS, GENRES, INTENTS,
                              ROUTER_GENRES)

OLD_INTENTS = ("recommend", "explain", "chitchat")
OLD_ROUTER_GENRES = ("action", "adventure", "animation", "children's", "comedy", "crime", "documentary", "drama",
                     "fantasy", "film-noir", "horror", "musical", "mystery", "romance", "sci-fi", "thriller", "war",
                     "western")
OLD_SLOT_KEYS = ("titles", "liked", "disliked", "genres", "year_from", "year_to", "domain", "count", "reference",
                 "clear")
_INT_OR_NULL = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
OLD_SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(OLD_INTENTS)},
        "slots": {
            "type": "object",
            "properties": {
                "titles": {"type": "array", "items": {"type": "string"}},
                "liked": {"type": "array", "items": {"type": "string"}},
                "disliked": {"type": "array", "items": {"type": "string"}},
                "genres": {"type": "array", "items": {"type": "string", "enum": list(OLD_ROUTER_GENRES)}},
                "year_from": _INT_OR_NULL, "year_to": _INT_OR_NULL,
                "domain": {"anyOf": [{"type": "string", "enum": ["movie", "book"]}, {"type": "null"}]},
                "count": _INT_OR_NULL,
                "reference": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
                "clear": {"type": "array", "items": {"type": "string", "enum": ["year", "genres", "domain", "all"]}},
            },
        },
    },
    "required": ["intent", "slots"],
}
OLD_EMPTY_SLOTS = {"titles": [], "liked": [], "disliked": [], "genres": [], "year_from": None, "year_to": None,
                   "domain": None, "count": None, "reference": None, "clear": []}
OLD_GENRE_WORDS = {
    "action": r"action",
    "adventure": r"adventures?",
    "animation": r"animated|animation|cartoons?|anime",
    "children's": r"kids|children'?s?",
    # moods asked for, comparatives too (2026-12-06: "anything lighter?" searched the word "lighter")
    # a date night, as a rom-com: a romantic comedy (2026-12-08)
    "comedy": r"comed(?:y|ies)|comedic|funn(?:y|ier|iest)|light[- ]?hearted|lighter|feel[- ]?good|rom-?coms?|"
              r"date[- ]nights?|date movies?|on a date",
    "crime": r"crime",
    "documentary": r"documentar(?:y|ies)",
    # 2026-12-08: "in the mood for a good cry" searched the word "cry" (Cry Freedom, Cry-Baby)
    "drama": r"dramas?|tear[- ]?jerkers?|(?:a )?good cry|make (?:me|us) cry|cry (?:my|our) eyes out",
    "fantasy": r"fantasy",
    "film-noir": r"film[- ]noirs?|noirs?",
    "horror": r"horror|scar(?:y|ier|iest)|creepier",
    "musical": r"musicals?",
    "mystery": r"myster(?:y|ies)",
    # 2026-12-08: "a movie for date night?" searched the words (Date Night, Date Movie, The Night Before)
    "romance": r"romance|romantic|love stor(?:y|ies)|rom-?coms?|date[- ]nights?|date movies?|on a date",
    "sci-fi": r"sci[- ]?fi|science[- ]fiction",
    "thriller": r"thrillers?|suspense(?:ful)?",
    "war": r"war (?:movies?|films?|stories)",
    "western": r"westerns?",
}
OLD_GENRE_LEXICON = {
    "Action": ("action",),
    "Adventure": ("adventure", "adventures"),
    "Animation": ("animation", "animated", "cartoon", "cartoons", "anime"),
    "Children's": ("children's", "childrens", "children", "kids", "kid's", "kids'"),
    "Comedy": ("comedy", "comedies", "comedic", "rom-com", "romcom", "rom-coms"),
    "Crime": ("crime", "crimes"),
    "Documentary": ("documentary", "documentaries"),
    "Drama": ("drama", "dramas"),
    "Fantasy": ("fantasy", "fantasies"),
    "Film-Noir": ("film noir", "film-noir", "noir"),
    "Horror": ("horror", "horrors"),
    "Musical": ("musical", "musicals"),
    "Mystery": ("mystery", "mysteries", "whodunit", "whodunnit"),
    "Romance": ("romance", "romances", "romantic", "rom-com", "romcom", "rom-coms", "love story"),
    "Sci-Fi": ("sci-fi", "scifi", "sci fi", "science fiction", "science-fiction"),
    "Thriller": ("thriller", "thrillers"),
    "War": ("war", "wars"),
    "Western": ("western", "westerns"),
}
OLD_GENRE_PLURAL = {"Action": "action films", "Adventure": "adventure films", "Animation": "animated films",
                    "Children's": "children's films", "Comedy": "comedies", "Crime": "crime films",
                    "Documentary": "documentaries", "Drama": "dramas", "Fantasy": "fantasy films",
                    "Film-Noir": "film noirs", "Horror": "horror films", "Musical": "musicals",
                    "Mystery": "mysteries", "Romance": "romances", "Sci-Fi": "sci-fi films", "Thriller": "thrillers",
                    "War": "war films", "Western": "westerns"}
OLD_GENRE_ADJECTIVE = {"Children's": "children's", "Film-Noir": "noir", "Sci-Fi": "sci-fi"}  # else lower case


def _same(got: dict, want: dict) -> bool:
    return list(got.items()) == list(want.items())  # the same pairs in the same order


def test_the_router_schema_is_the_one_the_adapter_was_trained_on() -> None:
    assert SCHEMA == OLD_SCHEMA
    for dump in ({}, {"ensure_ascii": False, "separators": (",", ":")}):  # byte for byte, key order included
        assert json.dumps(SCHEMA, **dump) == json.dumps(OLD_SCHEMA, **dump)
    assert SLOT_KEYS == OLD_SLOT_KEYS and isinstance(SLOT_KEYS, tuple)
    assert _same(empty_slots(), OLD_EMPTY_SLOTS)
    first = empty_slots()
    first["titles"].append("Heat")
    assert empty_slots()["titles"] == []  # fresh lists every time
    assert tuple(empty_slots()) == tuple(Slots().__dataclass_fields__) == SLOT_KEYS


def test_the_genre_structures_are_derived_from_one_table_with_todays_values() -> None:
    assert ROUTER_GENRES == OLD_ROUTER_GENRES and isinstance(ROUTER_GENRES, tuple)
    assert _same(GENRE_WORDS, OLD_GENRE_WORDS)
    assert _same(GENRE_LEXICON, OLD_GENRE_LEXICON)
    assert _same(GENRE_PLURAL, OLD_GENRE_PLURAL)
    assert {g: GENRE_ADJECTIVE[g] for g in GENRE_ADJECTIVE if GENRE_ADJECTIVE[g] != g.lower()} == {"Film-Noir": "noir"}
    assert all(GENRE_ADJECTIVE[g] == OLD_GENRE_ADJECTIVE.get(g, g.lower()) for g in GENRE_ADJECTIVE)
    assert len({g.router for g in GENRES}) == len({g.catalogue for g in GENRES}) == len(GENRES) == 18


def test_the_consumers_read_the_one_vocabulary() -> None:
    from agent import reading, router
    from agent.evals import dialogues, report
    from agent.tuning.instruct import genre_words
    from tools import explain

    assert router.INTENTS is report.INTENTS is dialogues.INTENTS is INTENTS == OLD_INTENTS
    assert reading.GENRE_WORDS is GENRE_WORDS and explain.GENRE_LEXICON is GENRE_LEXICON
    assert SCHEMA["properties"]["slots"]["properties"]["genres"]["items"]["enum"] == list(ROUTER_GENRES)
    for genre in [*OLD_GENRE_LEXICON, "Unknown"]:  # the instruction templates' words, as before
        assert genre_words(genre, plural=True) == OLD_GENRE_PLURAL.get(genre, genre.lower() + " films")
        assert genre_words(genre) == OLD_GENRE_ADJECTIVE.get(genre, genre.lower())


def test_every_genre_word_people_use_finds_its_genre() -> None:
    from agent.reading import genres_in

    for genre in GENRES:
        word = {"war": "war movies", "children's": "kids"}.get(genre.router, genre.adjective)
        assert genre.router in genres_in(f"I want {word}")[0], genre.router
