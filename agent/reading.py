"""What a message's own words say, where the small router misses (scripted dialogues, RESULTS §8):
genres asked for or ruled out ("animated films", "I hate horror"), open year ranges ("from 2000
onwards"), "why would I like X?", and questions about what the agent can do. The agent uses
these next to the router's slots, never instead of a slot the router filled plausibly."""

from __future__ import annotations

import re

# router genre name → the words people use for it ("war" only as "war movies": not "Star Wars")
GENRE_WORDS = {
    "action": r"action",
    "adventure": r"adventures?",
    "animation": r"animated|animation|cartoons?|anime",
    "children's": r"kids|children'?s?",
    "comedy": r"comed(?:y|ies)|comedic|funny|rom-?coms?",
    "crime": r"crime",
    "documentary": r"documentar(?:y|ies)",
    "drama": r"dramas?",
    "fantasy": r"fantasy",
    "film-noir": r"film[- ]noirs?|noirs?",
    "horror": r"horror|scary",
    "musical": r"musicals?",
    "mystery": r"myster(?:y|ies)",
    "romance": r"romance|romantic|rom-?coms?",
    "sci-fi": r"sci-?fi|science[- ]fiction",
    "thriller": r"thrillers?",
    "war": r"war (?:movies?|films?|stories)",
    "western": r"westerns?",
}
_GENRE = {genre: re.compile(rf"\b(?:{words})\b", re.I) for genre, words in GENRE_WORDS.items()}
# "I hate horror", "no horror", "not a fan of scary movies", "nothing too scary", "anything but westerns"
# (the words between may not cross punctuation: "no, I want comedies" wants comedies)
_NEGATION = re.compile(r"\b(?:hate|hates|dislike|can't stand|cannot stand|don'?t like|do not like|not a fan of|"
                       r"no|not|nothing too|without|avoid|except|never|none of)\b(?:\s+[\w'-]+){0,3}?\s*$",
                       re.I)

_CLAUSE = re.compile(r"[,.;:!?]|\b(?:but|and|or|though|however|yet|while)\b", re.I)


def genres_in(text: str) -> tuple[list[str], list[str]]:
    """(genres asked for, genres ruled out), in router genre names."""
    wanted, ruled_out = [], []
    for genre, pattern in _GENRE.items():
        for match in pattern.finditer(text):
            before = text[max(0, match.start() - 40):match.start()]
            clause = _CLAUSE.split(before)[-1]  # "I don't like horror but love comedies": comedies are wanted
            negated = _NEGATION.search(clause) or re.search(r"anything but\s*$", before, re.I)
            (ruled_out if negated else wanted).append(genre)
    ruled_out = list(dict.fromkeys(ruled_out))
    return [g for g in dict.fromkeys(wanted) if g not in ruled_out], ruled_out


_FROM_ON = re.compile(r"\bfrom\s+(?:the\s+)?(?P<from>\d{4})s?\s*(?:on(?:wards?)?|and (?:later|after|newer|up)|"
                      r"or (?:later|newer)|\+|forward)|\bsince\s+(?P<since>\d{4})\b|\bafter\s+(?P<after>\d{4})\b|"
                      r"\b(?P<later>\d{4})\s+(?:or|and)\s+(?:later|newer|after)\b", re.I)
_UNTIL = re.compile(r"\b(before|until|up to|prior to|older than)\s+(\d{4})\b", re.I)


def open_years(text: str) -> tuple[int | None, int | None] | None:
    """An open-ended range the words state ("from 2000 onwards" → (2000, None), "before 1970" →
    (None, 1969)), or None when they state none."""
    start = end = None
    if match := _FROM_ON.search(text):
        found = match.groupdict()
        start = int(found["after"]) + 1 if found["after"] else int(found["from"] or found["since"] or found["later"])
    if match := _UNTIL.search(text):
        word, year = match.group(1).lower(), int(match.group(2))
        end = year if word in ("until", "up to") else year - 1
    return None if start is None and end is None else (start, end)


WHY_TITLE = re.compile(r"^\s*why\s+(?:would|should|do|did|will|might)\s+(?:i|you)\s+"
                       r"(?:like|love|enjoy|recommend|suggest|pick)\s+(.+?)\s*[?.!]*\s*$", re.I)
ASKS_WHY = re.compile(r"^\s*(?:why|how come)\b", re.I)
CAPABILITIES = re.compile(r"\b(?:what (?:can|do) you do|who are you|what are you|how do(?:es)? (?:this|you|it) work|"
                          r"what can i (?:ask|say)|help me use)\b", re.I)


__all__ = ["ASKS_WHY", "CAPABILITIES", "GENRE_WORDS", "WHY_TITLE", "genres_in", "open_years"]
