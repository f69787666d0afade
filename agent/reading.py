"""What a message's own words say, where the small router misses (scripted dialogues, RESULTS §8):
genres asked for or ruled out ("animated films", "I hate horror"), open year ranges ("from 2000
onwards"), counts ("three space movies"), "why would I like X?", and questions about what the
agent can do. The agent uses these next to the router's slots, never instead of a slot the
router filled plausibly: :func:`sanitize_slots` checks the router's slots against the message
(titles it does not contain are dropped, impossible years and counts too) and adds what the
words say."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence

from rapidfuzz import fuzz

from agent.config import TurnSettings
from tools.resolve import match_key
from tools.vocabulary import GENRE_WORDS  # router genre name → a regex of the words people use for it

_TURN = TurnSettings()  # the defaults, when no settings are passed
_GENRE = {genre: re.compile(rf"\b(?:{words})\b", re.I) for genre, words in GENRE_WORDS.items()}
# "I hate horror", "no horror", "not a fan of scary movies", "nothing (too) scary", "anything but westerns"
# (the words between may not cross punctuation: "no, I want comedies" wants comedies; "nothing but
# comedies" and "nothing beats a good western" ask for them)
_NEGATION = re.compile(r"\b(?:hate|hates|dislike|can't stand|cannot stand|don'?t like|do not like|not a fan of|"
                       r"no|not|nothing(?!\s+(?:but|beats?|better|compares?)\b)|without|avoid|except|never|none of)"
                       r"\b(?:\s+[\w'-]+){0,3}?\s*$", re.I)

_CLAUSE = re.compile(r"[,.;:!?]|\b(?:but|and|or|though|however|yet|while)\b", re.I)


def genres_in(text: str) -> tuple[list[str], list[str]]:
    """(genres asked for, genres ruled out), in router genre names."""
    wanted, ruled_out = _genre_mentions(text)
    return [g for g in wanted if g not in ruled_out], ruled_out


def genre_conflicts(text: str) -> list[str]:
    """Genres the words both ask for and rule out ("a horror movie but nothing scary")."""
    wanted, ruled_out = _genre_mentions(text)
    return [g for g in wanted if g in ruled_out]


def _genre_mentions(text: str) -> tuple[list[str], list[str]]:
    """(genres named without a negation, genres named with one), each once, in router genre names."""
    wanted, ruled_out = [], []
    for genre, pattern in _GENRE.items():
        for match in pattern.finditer(text):
            before = text[max(0, match.start() - 40):match.start()]
            clause = _CLAUSE.split(before)[-1]  # "I don't like horror but love comedies": comedies are wanted
            negated = _NEGATION.search(clause) or re.search(r"anything but\s*$", before, re.I)
            (ruled_out if negated else wanted).append(genre)
    return list(dict.fromkeys(wanted)), list(dict.fromkeys(ruled_out))


_FROM_ON = re.compile(r"\bfrom\s+(?:the\s+)?(?P<from>\d{4})s?\s*(?:on(?:wards?)?|and (?:later|after|newer|up)|"
                      r"or (?:later|newer)|\+|forward)|\bsince\s+(?P<since>\d{4})\b|\bafter\s+(?P<after>\d{4})\b|"
                      r"\b(?P<later>\d{4})\s+(?:or|and)\s+(?:later|newer|after)\b(?!\s*\d)",  # not "and after 2010"
                      re.I)
_UNTIL = re.compile(r"\b(before|until|up to|prior to|older than)\s+(\d{4})\b", re.I)


def open_years(text: str) -> tuple[int | None, int | None] | None:
    """An open-ended range the words state ("from 2000 onwards" → (2000, None), "before 1970" →
    (None, 1969)), or None when they state none. Bounds that cannot both hold ("before 1950 and
    after 2010" → (2011, 1949)) are returned as they are: :func:`sanitize_slots` reports them."""
    start = end = None
    if match := _FROM_ON.search(text):
        found = match.groupdict()
        start = int(found["after"]) + 1 if found["after"] else int(found["from"] or found["since"] or found["later"])
    if match := _UNTIL.search(text):
        word, year = match.group(1).lower(), int(match.group(2))
        end = year if word in ("until", "up to") else year - 1
        if re.search(r"\b(?:nothing|not|no)\s*$", text[:match.start()], re.I):  # "nothing older than 1970"
            start, end = (end + 1 if start is None else start), None
    return None if start is None and end is None else (start, end)


WHY_TITLE = re.compile(r"^\s*why\s+(?:would|should|do|did|will|might)\s+(?:i|you)\s+"
                       r"(?:like|love|enjoy|recommend|suggest|pick)\s+(.+?)\s*[?.!]*\s*$", re.I)
ASKS_WHY = re.compile(r"^\s*(?:why|how come)\b", re.I)
CAPABILITIES = re.compile(r"\b(?:what (?:can|do) you do|who are you|what are you|how do(?:es)? (?:this|you|it) work|"
                          r"what can i (?:ask|say)|help me use)\b", re.I)


# -- what the agent can read at all ------------------------------------------------------------

# markup is text, never part of a request: a tag, and what a script or style element holds
_MARKUP = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)|</?[a-z][\w:-]*(?:\s[^<>]*)?/?>|<!--.*?(?:-->|$)",
                     re.I | re.S)
LATIN_SHARE = 0.5  # the least share of a message's letters in the Latin script for the agent to read it


def without_markup(text: str) -> str:
    """The words of a message with HTML-like markup taken out ("<script>alert(1)</script> give me
    comedies" → "give me comedies"): the router, the title spotter and the counts read these."""
    return " ".join(_MARKUP.sub(" ", text).split())


def readable(text: str) -> bool:
    """Whether the agent can read the message: most of its letters are in the Latin script (English,
    and the French or Spanish the router copes with). "أريد فيلم رعب" is not; a message without
    letters ("10/10", "👍") is left to the router."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return True
    latin = sum(1 for ch in letters if unicodedata.name(ch, "").startswith("LATIN"))
    return latin >= LATIN_SHARE * len(letters)


# -- the router's slots, checked against the message -----------------------------------------

_GENERIC = set("""a an the me us i my some something anything any good great nice new more recommend recommendation
recommendations suggest suggestion suggestions please pls what should could would can you give show find get watch
read next to for movie movies film films book books tonight today now"""
               .split())


def has_content(text: str, slots: dict) -> bool:
    """Whether the message says what the person wants (words beyond "recommend me a movie")."""
    if any(slots.get(k) for k in ("genres", "year_from", "year_to", "titles")):
        return True
    words = [w for w in match_key(text).split() if w not in _GENERIC]
    return len(words) >= 2


def _mentioned(mention, text: str, shown: Sequence[str], threshold: int) -> bool:
    if isinstance(mention, int) or str(mention).lstrip("#").isdigit():
        return True  # a position in the last list
    key = match_key(str(mention))
    if not key:
        return False
    return (fuzz.partial_ratio(key, match_key(text)) >= threshold
            or any(fuzz.ratio(key, match_key(title)) >= threshold for title in shown))


def sanitize_slots(slots: dict, text: str, shown: Sequence[str], turn: TurnSettings | None = None) -> dict:
    """The router's slots with what cannot be right removed: titles neither in the message nor
    in the list it points to, impossible years (a reversed range is put in order), silly counts.
    ``turn``: the thresholds (:class:`agent.config.TurnSettings`; the defaults when None)."""
    turn = turn or _TURN
    out = dict(slots)
    for key in ("titles", "liked", "disliked"):
        out[key] = [m for m in slots.get(key) or [] if _mentioned(m, text, shown, turn.mention_match)]
    ref = slots.get("reference")
    if isinstance(ref, str) and ref and not _mentioned(ref, text, shown, turn.mention_match):
        out["reference"] = None
    this_year = time.gmtime().tm_year
    years = [slots.get("year_from"), slots.get("year_to")]
    years = [y if isinstance(y, int) and turn.earliest_year <= y <= this_year + 1 else None for y in years]
    if None not in years and years[0] > years[1]:
        years.reverse()
    out["year_from"], out["year_to"] = years
    count = slots.get("count")
    out["count"] = (count if isinstance(count, int) and 1 <= count <= turn.max_count
                    else asked_count(text, turn.max_count))
    # the words themselves: genres asked for or ruled out, open year ranges
    wanted, ruled_out = genres_in(text)
    out["genres"] = [g for g in slots.get("genres") or [] if g not in ruled_out] or wanted
    out["without"] = ruled_out
    # what the words contradict themselves on is said back as a question (the agent asks), never
    # turned into an empty range or a silent choice: "conflicts" holds {"years": [from, to]} for
    # bounds that cannot both hold, {"genres": [...]} for genres asked for and ruled out at once
    out["conflicts"] = {}
    if years := open_years(text):
        out["year_from"], out["year_to"] = years
        if None not in years and years[0] > years[1]:
            out["year_from"] = out["year_to"] = None  # no range from them: the years stay as they were
            out["conflicts"]["years"] = list(years)
    # "a horror movie but nothing scary": horror asked for and ruled out in one message. Ruling it
    # out alone would drop what they named; keeping it would ignore "nothing scary" ("Scary Movie"
    # was offered). Neither reading is safe, so the agent asks; until the answer the genre is
    # neither asked for nor ruled out by this message.
    if both := genre_conflicts(text):
        out["conflicts"]["genres"] = both
        out["without"] = [g for g in out["without"] if g not in both]
        out["genres"] = [g for g in out["genres"] if g not in both]
    return out


_COUNT = re.compile(r"\b(\d{1,2})\s+(?:[\w-]+\s+){0,3}?[\w-]*[a-z]s\b")


def asked_count(text: str, max_count: int = _TURN.max_count) -> int | None:
    """"three space movies", "2 westerns": the router misses counts often (RESULTS §8), the
    words do not (``match_key`` has turned number words into digits). None when the words ask
    for none, or for more than ``max_count``."""
    match = _COUNT.search(match_key(text))
    n = int(match.group(1)) if match else 0
    return n if 1 <= n <= max_count else None


__all__ = ["ASKS_WHY", "CAPABILITIES", "GENRE_WORDS", "WHY_TITLE", "asked_count", "genre_conflicts", "genres_in",
           "has_content", "open_years", "readable", "sanitize_slots", "without_markup"]
