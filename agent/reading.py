"""What a message's own words say, where the small router misses (scripted dialogues, RESULTS §8):
genres asked for or ruled out ("animated films", "I hate horror"), open year ranges ("from 2000
onwards"), counts ("three space movies"), "why would I like X?", and questions about what the
agent can do. The agent uses these next to the router's slots, never instead of a slot the
router filled plausibly: :func:`sanitize_slots` checks the router's slots against the message
(titles it does not contain are dropped, impossible years and counts too) and adds what the
words say."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from agent.config import TurnSettings
from agent.state import LAST
from tools.explain_check import capitalised_names
from tools.item_facts import person_asked
from tools.resolve import match_key
from tools.vocabulary import GENRE_WORDS, genre_key  # GENRE_WORDS: router genre name → a regex of the words people use for it

log = logging.getLogger(__name__)
_TURN = TurnSettings()  # the defaults, when no settings are passed
_GENRE = {genre: re.compile(rf"\b(?:{words})\b", re.I) for genre, words in GENRE_WORDS.items()}
# "I hate horror", "no horror", "not a fan of scary movies", "nothing (too) scary", "anything but westerns",
# "something less scary", "I don't care for tear jerkers"
# (the words between may not cross punctuation: "no, I want comedies" wants comedies; "nothing but
# comedies" and "nothing beats a good western" ask for them)
_NEGATION = re.compile(r"\b(?:hate|hates|dislike|can't stand|cannot stand|don'?t like|do not like|don'?t care for|"
                       r"do not care for|not a fan of|"
                       r"no|not|less|nothing(?!\s+(?:but|beats?|better|compares?)\b)|without|avoid|except|never|"
                       r"none of)"
                       r"\b(?:\s+[\w'-]+){0,3}?\s*$", re.I)

_CLAUSE = re.compile(r"[,.;:!?]|\b(?:but|and|or|though|however|yet|while)\b", re.I)


def genres_in(text: str) -> tuple[list[str], list[str]]:
    """(genres asked for, genres ruled out), in router genre names."""
    wanted, ruled_out = _genre_mentions(text)
    return [g for g in wanted if g not in ruled_out], ruled_out


# between two genre words of one kind of film: nothing but a space, a hyphen or a slash ("romantic
# comedy", "action-comedy", "horror/comedy"), not "and" / "or" / a comma ("horror and comedies")
_SAME_KIND = re.compile(r"[\s/-]*")


def genres_as_one_kind(text: str) -> list[str]:
    """The genres the words name side by side as one kind of film ("a romantic comedy", "funny
    romantic movies", "sci-fi horror"): a film of every one of them is what is asked. [] when the
    genres are listed ("I like horror and comedies": either will do, as ReDial's recommenders answer)."""
    spans = sorted((m.start(), m.end(), genre) for genre, pattern in _GENRE.items() for m in pattern.finditer(text))
    wanted = set(genres_in(text)[0])
    for n in range(len(spans) - 1):
        run, end = [spans[n][2]], spans[n][1]
        for start, stop, genre in spans[n + 1:]:
            if start < end or _SAME_KIND.fullmatch(text[end:start]):  # "rom-com" names two in one word
                run.append(genre)
                end = max(end, stop)
            else:
                break
        kind = [g for g in dict.fromkeys(run) if g in wanted]
        if len(kind) > 1:
            return kind
    return []


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


# -- decades, explicit ranges and relative years ---------------------------------------------

RECENT_YEARS = 10  # "recent", "newer", "latest": from this many years before the current one
OLDER_UNTIL = 1989  # "older", "old-school", "vintage": up to this year
_DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                 "seventies": 1970, "eighties": 1980, "nineties": 1990, "noughties": 2000, "two thousands": 2000}
# "the 2000s", "1980's", "'80s", "80s", "the eighties"; "early / mid / late" narrow it. Not an age:
# "in my 30s", "she's in her twenties"
_DECADE = re.compile(r"(?<![\w'’‘-])(?P<part>early|mid|late)?[\s-]*(?:(?P<full>1[89]\d0|20[0-2]0)'?[’]?s|"
                     r"['’‘]?(?P<short>\d0)['’]?s|(?P<word>" + "|".join(_DECADE_WORDS) + r"))\b", re.I)
_AGE = re.compile(r"\b(?:my|your|his|her|their|our|in (?:his|her|their|my))\s+(?:early\s+|mid\s+|late\s+)?$", re.I)
_RANGE = re.compile(r"\b(?:(?:from|between)\s+)?(?P<a>1[89]\d\d|20\d\d)\s*(?:-|–|to|and|until|till|through)\s*"
                    r"(?P<b>1[89]\d\d|20\d\d)\b", re.I)
_PRE_POST = re.compile(r"\b(?P<word>pre|post|newer than|later than|more recent than)[\s-]*(?P<year>1[89]\d\d|20\d\d)\b",
                       re.I)
_SINGLE = re.compile(r"\b(?:from|in|of|released in|made in|came out in)\s+(?P<year>1[89]\d\d|20\d\d)\b"
                     r"(?!\s*(?:-|–|to|and|or|on|onwards?|forward|\+|until|till|through))", re.I)
_RECENT = re.compile(r"\b(?:recent(?:ly)?|newer|newest|latest|modern|brand[\s-]new|new releases?|current(?:ly)? in "
                     r"theat(?:er|re)s|in theat(?:er|re)s (?:now|right now)|out now|this year)\b", re.I)
# "recently" in the clause of a viewing says when they watched ("I recently saw Heat", "seen
# anything good recently?"), not which films they want ("any good comedies recently?"), unless
# the clause says when films came out ("what have you seen that came out recently?")
_VIEWING = re.compile(r"\b(?:saw|seen|see|seeing|watch(?:ed|ing)?|got into|gotten into|went to|caught)\b", re.I)
_RELEASE = re.compile(r"\b(?:released?|came out|come out|coming out|out now|in theat(?:er|re)s)\b", re.I)
_CLAUSE_END = re.compile(r"[.!?;,]|\b(?:and|but)\b", re.I)
_OLDER = re.compile(r"\b(?:older|old[\s-]school|vintage|oldies)\b|(?<!year )(?<!years )(?<!year-)(?<!how )"
                    r"\bold\s+(?:[\w-]+\s+)?(?:movies|films|flicks|ones|books|novels|classics|stuff|comedies|dramas|"
                    r"thrillers|westerns|musicals|cartoons|mysteries|romances|horror|sci-fi|noir|war movies)\b", re.I)


def _decade_span(match: re.Match) -> tuple[int, int]:
    found = match.groupdict()
    if found["full"]:
        start = int(found["full"])
    elif found["short"]:
        short = int(found["short"])
        start = 2000 + short if short <= 10 else 1900 + short  # "00s", "10s"; "20s" … "90s": the 1900s
    else:
        start = _DECADE_WORDS[" ".join(found["word"].lower().split())]
    part = (found["part"] or "").lower()
    return {"early": (start, start + 3), "mid": (start + 3, start + 6), "late": (start + 6, start + 9)}.get(
        part, (start, start + 9))


def _of_a_viewing(text: str, match: re.Match) -> bool:
    """Whether a "recently" says when something was watched (see :data:`_VIEWING`)."""
    if match.group().lower() != "recently":
        return False
    start = max((m.end() for m in _CLAUSE_END.finditer(text, 0, match.start())), default=0)
    end = next((m.start() for m in _CLAUSE_END.finditer(text, match.end())), len(text))
    clause = text[start:end]
    return bool(_VIEWING.search(clause)) and not _RELEASE.search(clause)


def stated_years(text: str, this_year: int | None = None) -> tuple[int | None, int | None] | None:
    """The years the words ask for, or None: decades ("the 2000s" → (2000, 2009), "the eighties",
    "late 90s" → (1996, 1999); two decades span both), ranges ("1990 to 1999", "between 1990 and
    1995"), "pre-1970" / "post-2010" / "newer than 2010", one year ("from 1994"), the open ranges of
    :func:`open_years`, and relative years: "recent", "newer", "latest" (the last
    :data:`RECENT_YEARS` years; not the "recently" of a viewing, "I recently saw Heat"), "older",
    "old movies", "vintage" (up to :data:`OLDER_UNTIL`).
    The most explicit wins: a decade or a range, then an open range, then a relative word."""
    this_year = this_year or time.gmtime().tm_year
    spans = [_decade_span(m) for m in _DECADE.finditer(text) if not _AGE.search(text[:m.start()])]
    spans += [tuple(sorted((int(m.group("a")), int(m.group("b"))))) for m in _RANGE.finditer(text)]
    if spans:
        return min(a for a, _ in spans), max(b for _, b in spans)
    if years := open_years(text):
        return years
    if match := _PRE_POST.search(text):
        year = int(match.group("year"))
        return (None, year - 1) if match.group("word").lower() == "pre" else (year + 1, None)
    if match := _SINGLE.search(text):
        year = int(match.group("year"))
        return year, year
    if any(not _of_a_viewing(text, match) for match in _RECENT.finditer(text)):
        return this_year - RECENT_YEARS, None
    if _OLDER.search(text):
        return None, OLDER_UNTIL
    return None


# -- the domain asked for, a place in the last list -------------------------------------------

_MOVIE_WORDS = r"movies?|films?|flicks?|cinema|dvds?|watch(?:ing)?"
_BOOK_WORDS = r"books?|novels?|reads|reading|paperbacks?|audiobooks?"
_DOMAIN_WORD = re.compile(rf"\b(?:(?P<movie>{_MOVIE_WORDS})|(?P<book>{_BOOK_WORDS}))\b", re.I)
# words that tell what a named title *is* or what the person did, not what they ask for:
# "the books Rebecca and Jane Eyre", "loved reading Dune", "I watched Heat", "the film version"
_NOT_ASKED_BEFORE = re.compile(r"\b(?:the|loved|love|liked|like|enjoyed|enjoy|hated|adore|finished|just|been|"
                               r"after|while|from|(?<!couple )(?<!few )(?<!lot )(?<!lots )(?<!bunch )(?<!handful )"
                               r"(?<!list )(?<!pair )(?<!dozen )(?<!kind )(?<!sort )(?<!type )(?<!kinds )(?<!types )of)"
                               r"\s*$", re.I)  # "a couple of novels", "what kind of books" ask
# a book word that says what a film is made from or is like, or an idiom: "comic book movies", "based
# on books", "a good book adaptation", "a win in my book" (ReDial seekers; each turned a film dialogue to books)
_BOOK_AS_KIND_BEFORE = re.compile(r"\b(?:comic|on|my)\s*$", re.I)
_BOOK_AS_KIND_AFTER = re.compile(rf"^\s*(?:-\s*)?(?:adaptations?|versions?|to[- ](?:{_MOVIE_WORDS})|{_MOVIE_WORDS})\b", re.I)
_READ_ASKED = re.compile(r"\b(?:to|should i|can i|could i|would i|shall i|do i)\s+read\b|\bread\s+next\b", re.I)
_ASK = re.compile(r"\?|\b(?:suggest|recommend|any|some|got|give|show|find|looking for|want|need|next|should|"
                  r"could|can|what|which|more|in that vein|like (?:that|those|them|these))\b", re.I)


def _book_as_a_kind(text: str, match: re.Match) -> bool:
    before = text[max(0, match.start() - 20):match.start()]
    return bool(_BOOK_AS_KIND_BEFORE.search(before) or _BOOK_AS_KIND_AFTER.search(text[match.end():]))


def names_books_as_a_kind(text: str) -> bool:
    """Whether a book word in ``text`` says what a film is made from or is like ("comic book",
    "based on books", "a book adaptation") or is an idiom ("a win in my book"): the router read
    such turns as asking for books."""
    return any(m.group("book") and _book_as_a_kind(text, m) for m in _DOMAIN_WORD.finditer(text))


def asked_domain(text: str, titles: Sequence[tuple[int, int]] = ()) -> str | None:
    """The domain the words ask for ("can you suggest some books?" → "book", "what can I watch?" →
    "movie"), or None when they name none or both without telling which is asked. A domain word
    that says what a title is or what the person did ("the books Rebecca and Jane Eyre", "loved
    reading Dune", "after watching Alien") is not an ask, nor one inside a title (``titles``:
    (start, end) of the titles found in ``text``; "AND The Jungle Book" asked for books); when both
    domains are asked, the one in the last clause that asks wins ("I loved the film, any books
    like it?")."""
    asked: list[tuple[int, str]] = []
    for match in _DOMAIN_WORD.finditer(text):
        before = text[max(0, match.start() - 20):match.start()]
        if _NOT_ASKED_BEFORE.search(before) or any(start <= match.start() < end for start, end in titles):
            continue
        if match.group("book") and _book_as_a_kind(text, match):
            continue
        asked.append((match.start(), "movie" if match.group("movie") else "book"))
    asked += [(m.start(), "book") for m in _READ_ASKED.finditer(text)]
    kinds = {k for _, k in asked}
    if len(kinds) <= 1:
        return next(iter(kinds), None)
    clauses = [(m.start(), m.end()) for m in re.finditer(r"[^,.;!?]+[,.;!?]*", text)]
    for start, end in reversed(clauses):
        inside = {k for pos, k in asked if start <= pos < end}
        if len(inside) == 1 and _ASK.search(text[start:end]):
            return inside.pop()
    return None


_ORDINALS = {"first": 1, "1st": 1, "top": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
             "forth": 4, "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8,
             "ninth": 9, "9th": 9, "tenth": 10, "10th": 10}
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_PLACE = re.compile(r"\bthe\s+(?P<last>last)(?=\s+(?:one|pick|title|suggestion|recommendation)\b|\s*[?.!,]|\s*$)|"
                    r"#\s*(?P<hash>\d{1,2})\b|\b(?:number|no\.|pick|item|recommendation|suggestion)\s*"
                    r"(?P<num>\d{1,2}|" + "|".join(_NUMBERS) + r")\b|\bthe\s+(?P<ord>" + "|".join(_ORDINALS) + r")\b"
                    r"(?!\s+(?:time|times|half|place|thing|things|movie of|book of|film of|episode|season|part|"
                    r"installment|sequel|chapter|of))", re.I)


def referenced_position(text: str) -> int | None:
    """The place in the last list the words point to ("the third", "#2", "number 4", "pick two",
    "the top one"; "the last one" is :data:`LAST`), or None. Only one place: "the first and the
    third" points to none."""
    found = set()
    for match in _PLACE.finditer(text):
        if match.group("last"):
            found.add(LAST)
            continue
        value = match.group("hash") or match.group("num") or match.group("ord")
        value = value.lower()
        found.add(int(value) if value.isdigit() else _NUMBERS.get(value) or _ORDINALS[value])
    return found.pop() if len(found) == 1 else None


# a message that names a place in the list and nothing else: "and the last one?", "what about the third?"
_PLACE_FILLER = frozenset("and ok okay so also then what how about the one pick number no item why".split())


def place_only(text: str) -> int | None:
    """The place a message names when it says nothing else ("and the last one?", "what about #2?",
    "the third?"): after an explanation it asks the same of that place. None otherwise."""
    if (place := referenced_position(text)) is None:
        return None
    rest = _PLACE.sub(" ", text.lower())
    return place if all(w in _PLACE_FILLER for w in re.findall(r"[a-z0-9']+", rest)) else None


WHY_TITLE = re.compile(r"^\s*why\s+(?:would|should|do|did|will|might)\s+(?:i|you)\s+"
                       r"(?:like|love|enjoy|recommend|suggest|pick)\s+(.+?)\s*[?.!]*\s*$", re.I)
ASKS_WHY = re.compile(r"^\s*(?:why|how come)\b", re.I)
CAPABILITIES = re.compile(r"\b(?:what (?:can|do) you do|who are you|what are you|how do(?:es)? (?:this|you|it) work|"
                          r"what can i (?:ask|say)|help me use)\b", re.I)


# the words right before a person's name that ask for their films: "what about Meg Ryan", "anything
# starring Zendaya", "more by Nolan", "any movies with Tom Hanks" (not "who is Meg Ryan?", nor
# "Cast Away with Tom Hanks was great")
PERSON_ASKED_FOR = re.compile(r"(?:^\W*(?:and\s+|ok\s+|okay\s+|so\s+)?(?:what|how) about|"
                              r"\b(?:any|anything|something|some|more|other|movies?|films?)\s+(?:\w+\s+)?"
                              r"(?:with|starring|featuring|by|from|directed by))\s*$", re.I)


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


def _is_place(mention) -> bool:
    return isinstance(mention, int) or str(mention).lstrip("#").isdigit()


def _mentioned(mention, text: str, shown: Sequence[str], threshold: int) -> bool:
    if _is_place(mention):
        return True  # a position in the last list
    key = match_key(str(mention))
    if not key:
        return False
    # a title of the last list only when the words point into it ("I loved it", "the second one",
    # "seen those"): "they loved Coco and Moana" came back with the list's first film liked too
    return (fuzz.partial_ratio(key, match_key(text)) >= threshold
            or (_POINTS_INTO_LIST.search(text) is not None
                and any(fuzz.ratio(key, match_key(title)) >= threshold for title in shown)))


_POINTS_INTO_LIST = re.compile(r"\b(?:it|that|this|those|these|them|both|all|ones?|first|second|third|fourth|fifth|"
                               r"last|top|#\s*\d|number|\d(?:st|nd|rd|th))\b", re.I)


# "more", "others", "another": more of what was asked; words that let some of it go ("any decade",
# "instead", "start over", "something different") are what a "clear" slot stands on
_MORE_OF_IT = re.compile(r"\b(?:more|others|another)\b", re.I)
_DROPS_WHAT_WAS_ASKED = re.compile(r"\b(?:any|instead|forget|start over|from scratch|reset|whatever|"
                                   r"(?:does|do)(?:n'?t| not) matter|(?:don'?t|do not) care|no matter|different|"
                                   r"never ?mind|rather|not? (?:just|only)|regardless)\b", re.I)


def sanitize_slots(slots: dict, text: str, shown: Sequence[str], turn: TurnSettings | None = None,
                   title_spans: Sequence[tuple[int, int]] = (), title_items: Sequence = ()) -> dict:
    """The router's slots with what cannot be right removed: titles neither in the message nor
    in the list it points to, impossible years (a reversed range is put in order), silly counts.
    ``turn``: the thresholds (:class:`agent.config.TurnSettings`; the defaults when None);
    ``title_spans``: where the titles the catalogue knows are written (their words ask nothing);
    ``title_items``: the catalogue items those titles are."""
    turn = turn or _TURN
    out = dict(slots)
    for key in ("titles", "liked", "disliked"):
        out[key] = [m for m in slots.get(key) or [] if _mentioned(m, text, shown, turn.mention_match)]
    if any(_is_place(m) for m in out["disliked"]) and not dislikes_a_place(text):
        # "I've watched the first two of those already" came back with "#2" disliked: a place is
        # disliked only where the words turn against something
        out["disliked"] = [m for m in out["disliked"] if not _is_place(m)]
    ref = slots.get("reference")
    if isinstance(ref, str) and ref and not _mentioned(ref, text, shown, turn.mention_match):
        out["reference"] = None
    if out.get("reference") in (None, "") and (place := referenced_position(text)) is not None:
        out["reference"] = place  # "why the third?": the router left the place out
    if domain := asked_domain(text, title_spans):
        out["domain"] = domain  # the words say which domain is asked ("… can you suggest some books?")
    elif slots.get("domain") and title_items and slots["domain"] not in {item.domain for item in title_items}:
        # no domain word, and the titles named are of another domain: the router took the domain
        # from the dialogue ("mostly sci fi, stuff like Alien" after a reply that offered books
        # got five books), so the dialogue's stays
        out["domain"] = None
    elif slots.get("domain") == "book" and names_books_as_a_kind(text):
        out["domain"] = None  # "I like movies that are based on books": the dialogue's domain stays
    elif slots.get("domain") and not out["titles"] and not capitalised_names(text):
        # no domain word, no title, no name: nothing points to a domain, so the dialogue's stays
        # (the router read "any thrillers based on a true story?" as a request for books)
        out["domain"] = None
    this_year = turn.this_year or time.gmtime().tm_year
    years = [slots.get("year_from"), slots.get("year_to")]
    years = [y if isinstance(y, int) and turn.earliest_year <= y <= this_year + 1 else None for y in years]
    if None not in years and years[0] > years[1]:
        years.reverse()
    out["year_from"], out["year_to"] = years
    count = slots.get("count")
    # a count the words write ("3 westerns", "three"): the router read "like after 2010" as two films
    written = isinstance(count, int) and re.search(rf"(?<![\w.]){count}(?![\w.])", match_key(text))
    out["count"] = count if written and 1 <= count <= turn.max_count else asked_count(text, turn.max_count)
    # the words themselves: genres asked for or ruled out, open year ranges
    wanted, ruled_out = genres_in(text)
    # the genres the words name, else the router's: the router kept one of "a romantic comedy" and
    # read "feel-good" as romance (the words first: genre slots as good or better on every labelled
    # set; bench/RESULTS.md "Films named again, moods, and genres")
    out["genres"] = wanted or [g for g in slots.get("genres") or [] if g not in ruled_out]
    if not wanted and title_items:
        # the words name films and no genre: a genre the router gave that none of them has is its
        # guess, not what was asked ("I didn't like Titanic, but loved Heat. something from the
        # eighties?" came back with comedies); one they share is kept ("Disney films like The Lion King")
        filed = {genre_key(g) for item in title_items for g in item.genres}
        out["genres"] = [g for g in out["genres"] if genre_key(g) in filed]
    out["without"] = ruled_out
    if out.get("clear") and (_MORE_OF_IT.search(text) or _MORE_OR_LESS.search(text) or seen_them_all(text)) \
            and not _DROPS_WHAT_WAS_ASKED.search(text):
        # "ok give me 3 more, but not too gory": more of what was asked (the router cleared it all);
        # "something shorter maybe" after fantasy books: a change of those, not films of any kind;
        # "I've seen all of these" after older animated films: others of those, not any film
        out["clear"] = []
    if slots.get("genres") and not out["genres"] and "genres" in (out.get("clear") or []):
        # the router took "not into comedies" for comedies asked anew: its clearing of the genres
        # asked before (westerns) was part of that misreading
        out["clear"] = [c for c in out["clear"] if c != "genres"]
    for key in ("titles", "liked", "disliked"):  # "i like sci fi and fantasy": genres, not the film "Fantasy"
        out[key] = [m for m in out[key] if not any(_GENRE[g].fullmatch(str(m).strip()) for g in (*wanted, *ruled_out))]
    # what the words contradict themselves on is said back as a question (the agent asks), never
    # turned into an empty range or a silent choice: "conflicts" holds {"years": [from, to]} for
    # bounds that cannot both hold, {"genres": [...]} for genres asked for and ruled out at once
    out["conflicts"] = {}
    if years := stated_years(text, this_year):
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


_QUESTION = re.compile(r"\?\s*$|^\s*(?:who|whom|whose|what|when|where|which|how|why|is|are|was|were|does|do|did|"
                       r"has|have|had|can|could|will|would|should)\b", re.I)
_WHY_YOU = re.compile(r"^\s*(?:why|how come)\b.*\byou(?:'d|'ve)?\b", re.I)  # "why did you pick Heat?"
_TASTE = re.compile(r"\b(?:lov(?:e|es|ed|ing)|lik(?:e|es|ed)|enjoy(?:s|ed)?|adored?|fan of|favou?rites?|into|"
                    r"hated?|dislike[sd]?|can'?t stand|not (?:a fan|into)|more like)\b", re.I)


# what asks for more in a reply to suggestions, besides _WANTS_SUGGESTIONS' plain asks ("any
# others?", "something older", "what else"); not the nouns of thanks and talk ("thanks for the
# suggestions", "those are my kind of movies", "the other Spider-Man movies", "another one I have
# yet to see"), which _REQUEST matches: ReDial dev seekers' thanks were read as requests
_ASKS_FOR_MORE = re.compile(
    r"\b(?:recommend(?!ations?\b)\w*|suggest(?!ions?\b)\w*|similar|something|anything|more like|"
    r"(?:any|some|few|more|the) others\b|any other\b|another\b(?!\s+(?:one|movie|film)\s+(?:i|we|that)\b)|"
    r"what (?:should|could|can) (?:i|we)|watch next|next one|after watching|what else|think of|in the mood|"
    r"a few (?:more|other|suggestions|recommendations|ideas|titles|movies|films|books)|"
    r"(?:any|more|some (?:more|other|good|new))\s+(?:\w+\s+){0,2}?\w+(?:ies|s)\b)", re.I)


# a clause that describes the film suggested, not what to look for next: "it sounds funny",
# "that's like something I would see", "this one looks scary" (ReDial dev2 seekers' reactions were
# read as requests for comedies, for "something"); it ends where the clause does
_DESCRIBES_IT = re.compile(r"\b(?:it|that|this|they|those|these|which)(?: one| movie| film)?"
                           r"(?:'s|’s| is| was| are| were| sounds?| looks?| seems?)\b"
                           r".*?(?=[,.;:!?]|\b(?:but|and|or|though|however|yet|while|so|can|could|any)\b|$)", re.I)


def reacts_only(text: str) -> bool:
    """Words that answer a suggestion and ask for nothing: no question, no request ("anything
    else?", "something older"), no genre or years to look for, not "seen them all" (which asks
    for others): "I've seen that one, loved it", "Thanks for the suggestions! I'll check out Heat",
    "It sounds funny, I'll look for it" (what the suggestion is like, not what to look for)."""
    text = _DESCRIBES_IT.sub(" ", text)
    genres, excluded = genres_in(text)
    return not (asks(text) or _WANTS_SUGGESTIONS.search(text) or _ASKS_FOR_MORE.search(text) or genres or excluded
                or stated_years(text) or _MORE_OR_LESS.search(text) or seen_them_all(text))


def genre_tastes(text: str) -> tuple[list[str], list[str]]:
    """(genres liked, genres ruled out) when a message tells a taste for genres and asks nothing
    ("I like sci-fi too", "not into horror though"); router genre names; ([], []) otherwise."""
    wanted, ruled_out = genres_in(text)
    if not (wanted or ruled_out) or not _TASTE.search(text) or asks(text) or _WANTS_SUGGESTIONS.search(text) \
            or _ASKS_FOR_MORE.search(text):
        return [], []
    return wanted, ruled_out


# "I've seen all of these", "watched them both", "already saw those": the list is spent (not "I've
# seen It and Get Out, loved both": the titles they name)
_SEEN_THEM = re.compile(r"\b(?:seen|saw|watched|read)\s+(?:[\w'’]+\s+){0,3}?(?:all|these|those|them|both)\b|"
                        r"\balready (?:seen|saw|watched|read)\b", re.I)
# "I watched one of those X-Men movies", "seen a few of them": some, not all
_SOME_OF = re.compile(r"\b(?:one|some|few|half|none|neither|either|any|couple|first|last|two|most)\b", re.I)
# "I haven't seen either of those", "never watched them": not seen, so the list is not spent
_NOT_BEFORE = re.compile(r"(?:\b(?:have|has|had|did|do|does)\s*n['’]?o?t|\bnever|\bnot)\s+"
                         r"(?:(?:yet|even|ever|really|actually)\s+)?$", re.I)


def seen_them_all(text: str) -> bool:
    """Whether the words say the suggestions were all seen ("I've seen all of these", "already
    watched them"): the list is spent and others are wanted. "I haven't seen either of those" is
    the opposite (ReDial seekers' reactions were read as asking for others)."""
    return any(not _NOT_BEFORE.search(text[:m.start()]) and not _SOME_OF.search(m.group())
               for m in _SEEN_THEM.finditer(text))


# a change asked of the suggestions: "funnier", "less violent", "shorter", "not so long", "instead"
_MORE_OR_LESS = re.compile(r"\b(?:(?:funn|scar|light|dark|happ|sill|short|long|old|new|gentl|calm|sadd|quiet|slow|fast)"
                           r"i?er|more|less|not (?:so|as|too)|instead|rather|only)\b", re.I)


# an explanation asks why an item was chosen or how it fits; "what is it about?" asks for its plot
_ASKS_A_REASON = re.compile(r"\b(?:why|how come|reasons?|what makes|makes? (?:it|them|this|that)|fits?|for me|"
                            r"pick(?:ed|s)?|chose|choose|chosen|explain\w*|recommend\w*|suggest\w*)\b", re.I)


# a message that asks for suggestions in so many words is a request whatever else it says ("hello
# can you recommend any good movies", "do you know Halloween? im looking for a thriller", "Other
# suggestion?"): the router sent such ReDial dev seekers' turns to chit-chat
_WANTS_SUGGESTIONS = re.compile(
    r"\b(?:(?:can|could|would|will) (?:you|u) (?:please |pls )?(?:recommend|suggest|help|give me)|recommend me|suggest me|"
    r"(?:any|other|more|some)\s+(?:[\w'’]+\s+){0,3}?(?:suggestions?|recommendations?|ideas)\b|"
    r"(?:you|u) (?:can|could|would|might) (?:\w+ )?(?:recommend|suggest)|"
    r"looking for (?:a|an|some|something|movies?|films?|good)|help me (?:choose|find|pick|decide)|in the mood for|"
    r"what (?:should|could|can) (?:i|we) (?:watch|see)|what to watch|"
    r"something (?:else|different)|(?:give|show) me (?:another|more|others|something)|"
    # "I want a star wars movie", "i want comedy movies like The Mask", "we'd like something to watch"
    r"\b(?:i|we)(?: really| just)?(?: want| need| would like|'d like|’d like)\s+(?:to (?:watch|see|read)\s+)?"
    r"(?:(?!(?:the|that|this|those|these|its|his|her|their)\b)[\w'’-]+\s+){0,4}?(?:movies?|films?|books?|something)\b)",
    re.I)  # not "I really need to see the movie": a film already spoken of


# the other speaker asking what the person likes: the answer states a taste to start from
_ASKS_TASTE = re.compile(r"\b(?:what (?:kinds?|types?|sorts?|genres?) of|what (?:are you|do you|would you) (?:looking|like|"
                         r"enjoy|want|in the mood|prefer)|what do you like|do you like (?:\w+ ){0,2}(?:movies|films|ones)|"
                         r"are you (?:into|a fan of)|what(?:'s| is) your favou?rite|"
                         r"what (?:[\w'’]+ ){0,2}?(?:movies?|films?|genres?|shows?) (?:do|would|did|are) "
                         r"(?:you|u))\b", re.I)


def after_suggestions(turns: Sequence[tuple[str, Sequence, str]]) -> bool:
    """Whether a turn now answers suggestions: the other speaker suggested items earlier in the
    dialogue (``turns``: (role, items, text), oldest first), and their last turn did not ask what
    the person likes. A reaction comes turns after a suggestion as often as right after it
    ("hahah thats so tragic!" / "we loved The Secret Life of Pets ..."): on ReDial dev seekers
    (evaluation/redial/dev_labels.jsonl, the router's answers, no intent head) intent 0.905 when
    only the last turn counted, 0.930 with this."""
    if not turns or turns[-1][0] != "assistant":
        return False
    return (any(role == "assistant" and items for role, items, _ in turns)
            and not _ASKS_TASTE.search(turns[-1][2] or ""))


def second_look(intent: str, slots: dict, text: str, spotter, after_suggestions: bool = False,
                people=None) -> tuple[str, dict]:
    """Chit-chat that is not: the small router sends some requests there ("I loved The Lion
    King", "Why would I like The Godfather?"). "why would I like X?" asks for an explanation even
    when X is unknown; a statement of taste that names a catalog title ("I loved The Lion King")
    is a request. A question about a title ("who directed Vertigo?", "is Casablanca in black and
    white?") and a title named in passing ("Clueless is on tv") stay chit-chat: they are answered
    from the catalogue's facts, never with a list. ``spotter``: the catalog's
    :class:`tools.resolve.TitleSpotter`. A question about one item (:func:`item_question`) is
    chit-chat whatever the router said (but an explanation request: one that asks why, not what it
    is about), with the item in ``titles``
    and no like read from it. ``after_suggestions`` (:func:`after_suggestions`): the turn
    answers the other speaker's suggestions; a turn that only reacts to them (:func:`reacts_only`: "I've seen Heat, loved it") is
    chit-chat, whatever the router said, and a taste stated there is not a new request (real
    seekers' turns: ReDial's, labelled by evaluation/redial's rules). ``people``: the catalogue's
    credits (:class:`tools.item_facts.People`), for chit-chat that asks for a person's films
    ("what about meg ryan": the small model apologised). Returns the (intent, slots) to act on."""
    if intent == "explain" and _TASTE.search(text) and not _ASKS_A_REASON.search(text) and not _QUESTION.search(text):
        # a statement of taste asks for no reason ("hey i like sci fi and fantasy movies", read as
        # an explanation of "Fantasy" right after an explanation request): the rules for chit-chat
        log.info("router said explain; the words state a taste and ask no reason: read as chit-chat")
        intent = "chitchat"
    wants = _WANTS_SUGGESTIONS.search(text)
    if intent == "explain" and not _ASKS_A_REASON.search(text) and (wants or _ASKS_FOR_MORE.search(text)):
        # "something by agatha christie" right after an explanation: a request, and no reason asked
        log.info("router said explain; the words ask for more and no reason: recommend")
        intent = "recommend"
    if ((intent != "explain" or not _ASKS_A_REASON.search(text)) and not wants
            and (about := item_question(text, slots, spotter)) is not None
            and (intent != "explain" or "other" not in about.asked)):
        if intent != "chitchat":
            log.info("router said %s; a question about one item is chit-chat about it", intent)
        return "chitchat", {**slots, "titles": [about.title] if about.title else [], "liked": [], "disliked": []}
    if intent == "recommend" and after_suggestions and reacts_only(text):
        log.info("router said recommend; the turn reacts to the suggestions and asks for nothing: chit-chat")
        return "chitchat", slots
    if intent != "chitchat":
        return intent, slots
    if wants:
        log.info("router said chitchat; the words ask for suggestions: recommend")
        return "recommend", slots
    if after_suggestions and seen_them_all(text):
        log.info("router said chitchat; the suggestions were all seen: others, please")
        return "recommend", slots
    if people is not None and (named := people.named_in(text)) and PERSON_ASKED_FOR.search(text[:named[0][0]]):
        log.info("router said chitchat; the words ask for a person's films: recommend")
        return "recommend", slots
    if match := WHY_TITLE.match(text):
        log.info("router said chitchat; 'why would I like …' asks for an explanation")
        return "explain", {**slots, "titles": [match.group(1)]}
    if _WHY_YOU.match(text) and spotter.spot(text):
        log.info("router said chitchat; 'why did you … <title>' asks for an explanation")
        return "explain", slots
    if _QUESTION.search(text) or not _TASTE.search(text):
        return intent, slots
    if (spotter.spot(text) or genres_in(text)[0] or described_taste(text)) and not after_suggestions:
        # "I loved The Lion King", "hi there, i like sci fi and fantasy movies", "I love movies
        # based on real life": a taste told before any suggestion is what to recommend from
        # (evaluation/redial's rules say so too)
        log.info("router said chitchat; the message states a taste for a title, a genre or a kind of film: recommend")
        return "recommend", slots
    return intent, slots


def whole_titles(mentions: Sequence, text: str, spans: Sequence[tuple]) -> list:
    """The router cuts titles at their commas: "Crazy", "Stupid", "Love a lot" for "Crazy, Stupid,
    Love", "Monsters" and "Inc." for "Monsters, Inc." (and "Monsters" is a film of its own). A
    mention written inside a longer title the words write out (``spans``: the title spotter's
    (start, end, …)), or running into one, is that title, once; a mention that holds whole titles
    ("Toy Story and Aladdin") and list places (2, "#2") stay as they are."""
    out: list = []
    lowered = text.lower()
    for mention in mentions:
        whole = mention
        needle = mention.strip().lower() if isinstance(mention, str) else ""
        written = (m.start() for m in re.finditer(re.escape(needle), lowered)) if needle else ()
        for start in written:
            end = start + len(needle)
            cut = next((text[a:b] for a, b, *_ in spans if a < end and start < b and not (start <= a and b <= end)),
                       None)
            if cut:
                whole = cut
                break
        if whole not in out:
            out.append(whole)
    return out


def with_whole_titles(slots: dict, text: str, spans: Sequence[tuple]) -> dict:
    """``slots`` with the titles, likes and dislikes the router cut made whole (:func:`whole_titles`)."""
    return {**slots, **{key: whole_titles(slots.get(key) or [], text, spans) for key in ("titles", "liked", "disliked")}}


# a taste for a kind of film said in words of its own: "I love movies based on real life", "I like
# sad movies", "into films with a twist" (not "I love movies", "I like all kinds of films")
_LIKES_FILMS = re.compile(r"\b(?:lov(?:e|ed)|lik(?:e|ed)|enjoy(?:ed)?|prefer|into|fan of)\s+"
                          r"(?P<before>(?:[\w'’-]+\s+){0,3}?)(?P<films>movies|films|flicks)\b"
                          r"(?P<after>\s+(?:that|which|with|about|based|where|set in|from the|starring|"
                          r"featuring)\b)?", re.I)
_SAYS_NO_KIND = {"good", "great", "all", "the", "a", "an", "most", "some", "those", "these", "kind", "kinds", "of",
                 "type", "types", "sort", "sorts", "watching", "to", "watch", "any", "many", "lots", "lot", "different",
                 "other", "really", "just", "your", "my", "seeing", "see", "every", "fun"}


def described_taste(text: str) -> str:
    """The kind of film a taste is told for, as said: "I love movies about friendship" → "movies
    about friendship", "I like sad movies" → "sad movies"; "" when the words describe none."""
    for m in _LIKES_FILMS.finditer(text):
        films = m.group("films").lower()
        if m.group("after"):
            return f"{films} {_CLAUSE.split(text[m.start('after'):])[0].strip()}"
        if kind := [w for w in m.group("before").split() if w.lower() not in _SAYS_NO_KIND]:
            return f"{' '.join(kind)} {films}"
    return ""


# How a person feels about a title they name, from the words around it. People who name a film
# mostly liked it (ReDial's seekers, asked afterwards: 17 liked for each one disliked), so a title
# is liked unless the words turn against it: before it in its clause ("I didn't care for X",
# "not a fan of X", "anything other than X", "NOT X"), after it in its sentence or in the next one
# about it ("X was too corny", "X, but I didn't like it", "X. One of the worst."), or for a title
# listed right after one of those ("least favourites are A and B"); a question about the film's
# facts ("who directed X?") says nothing.
_SOFT = r"(?:really|quite|very|much|even|too|that|all that|so|a|big|huge|great|particular(?:ly)?|at all)\s+"
_BAD = (r"bad|awful|terrible|horrible|horrid|boring|dull|slow|stupid|dumb|silly|ridiculous|weird|corny|cheesy|"
        r"overrated|over-rated|meh|gross|lame|annoying|mediocre|forgettable|predictable|disappointing|"
        r"(?:a |such a )?(?:disappointment|dissapointment|let ?down|waste)|(?:one of )?the worst|"
        r"too\s+\w+|a bit much|so-so|not (?:that |very |all that |so |a )?(?:good|great|funny|scary|interesting)")
_DISLIKE_BEFORE = re.compile(
    r"\b(?:hated?|hates|dislike[sd]?|detest(?:ed)?|can'?t stand|cannot stand|least favou?rites?|"
    rf"(?:didn'?t|don'?t|doesn'?t|did not|do not|does not|never)\s+(?:{_SOFT})*(?:like|love|enjoy|care for|get into)|"
    rf"not\s+(?:{_SOFT})*(?:fan of|fond of|into|interested in|impressed (?:by|with))|"
    rf"(?:wasn'?t|isn'?t|aren'?t|weren'?t)\s+(?:{_SOFT})*(?:fan of|fond of|into|interested in)|"
    r"(?:not sure|(?:don'?t|do not) know) (?:if|that|whether) (?:i'?d|i would|i'?ll|i will) (?:like|enjoy)|"
    r"(?:liked|enjoyed|loved|preferred) (?:it|that|this)(?: one)? (?:more|better) than|"
    r"other than|except(?: for)?|besides?|apart from|aside from|not (?:anything |something )?(?:that'?s |that is )?(?:like|similar to)|"
    rf"nothing (?:\w+ ){{0,2}}like|pass on|bad things about|not so much|(?:{_BAD}) (?:movies?|films?|ones?) (?:like|such as))\b"
    r"(?:\s+[\w'’-]+){0,4}?\s*$", re.I)
_NOT_RIGHT_BEFORE = re.compile(r"\b(?:not|no)\s*$", re.I)  # "a film that is NOT X", "No X", "like A but not X"
_SEEN_BUT_NOT = re.compile(r"\b(?:seen|see|saw|watched|watch|heard of|read)\b[^.!?]*\bbut not\s*$", re.I)  # not seen, not disliked
_DISLIKE_AFTER = re.compile(
    r"^\W*(?:[\w'’-]+[,;]?\s+){0,6}?(?:"
    rf"(?:was|is|were|seemed|seems|felt|looks?|sounds?)\s+(?:just\s+|kind of\s+|kinda\s+|a bit\s+|a little\s+|pretty\s+|"
    rf"so\s+|really\s+|very\s+|such\s+|way\s+)*(?:{_BAD})\b|"
    rf"(?:wasn'?t|isn'?t|weren'?t|was not|is not)\s+(?:{_SOFT})*(?:good|great|funny|scary|interesting|fond|fan|"
    r"my|for me|worth|interested)\b|"
    rf"(?:didn'?t|don'?t|did not|do not)\s+(?:{_SOFT})*(?:like|love|enjoy|care for)\b|sucked|sucks|"
    r"not (?:really |quite )?(?:my|for me)\b|"
    r"not (?:really )?(?:a |much of a |the biggest )?fan\b(?!\s+of\s+(?-i:[A-Z]))|"  # not "... of Tom Cruise"
    r"one time watch|would(?:n'?t| not) (?:watch|see) it again)", re.I)
_VERDICT = re.compile(rf"\W*(?:(?:i think|i thought|i felt|i found|honestly|personally|to be honest|tbh),?\s+)?"
                      rf"(?:(?:it|that|this)(?: one| movie| film)?\b|not\b|(?:{_BAD})\b)", re.I)  # about the title just named
_FACT_QUESTION = re.compile(
    r"^\W*(?:who|what(?! about)|when|where|which|how (?:long|old)|is|was|are|does|did)\b[^.!?]*\b(?:direct\w*|star\w*|"
    r"plays?|played|acts?|acted|cast|about|made|releas\w*|come out|came out|rated|long|black and white|based on|"
    r"written|wrote|score|sequel)\b", re.I)
_SENTENCE = re.compile(r"[.!?]+(?:\s|$)|\n")
# "I loved X even though it wasn't scary": a reservation about a film liked in so many words
_LIKED_BEFORE = re.compile(r"\b(?:lov(?:e|ed)|lik(?:e|ed)|enjoy(?:ed)?|ador(?:e|ed)|favou?rite)\b"
                           r"(?:\s+[\w'’-]+){0,3}?\s*$", re.I)
_CONCEDES = re.compile(r"^\W*(?:even though|although|though|even if)\b", re.I)
_LISTED = re.compile(r"\s*(?:,\s*(?:and|or)?|and|or|&|nor)\s*$", re.I)  # "A and B", "A, B or C"


def title_stance(text: str, start: int, end: int, next_start: int | None = None) -> str | None:
    """"liked", "disliked" or None (a question about the film's facts) for the one title written
    at ``text[start:end]``; ``next_start``: where the next title begins (the words after a title
    stop there: "I loved A, not so much B" says nothing against A). :func:`title_stances` reads
    every title of a message, lists included."""
    sentence_start = max((m.end() for m in _SENTENCE.finditer(text, 0, start)), default=0)
    before = text[sentence_start:start]
    after = text[end:next_start if next_start is not None else len(text)]
    if (m := _SENTENCE.search(after)) is not None:  # "X. It was too corny": the next sentence, if about it
        # (stops written twice, "Mother! . I think it was okay", end no sentence)
        follows = _SENTENCE.split(after[m.end():].lstrip(" .!?\n"), maxsplit=1)[0]
        after = after[:m.start()] + (" " + follows if _VERDICT.match(follows) else "")
    if _FACT_QUESTION.search(before) and not _TASTE.search(before):
        return None
    clause_before = _CLAUSE.split(before[-80:])[-1]
    if (_DISLIKE_BEFORE.search(clause_before)
            or (_NOT_RIGHT_BEFORE.search(before) and not _SEEN_BUT_NOT.search(before))
            or (_DISLIKE_AFTER.search(after) and not (_CONCEDES.match(after) and _LIKED_BEFORE.search(clause_before)))):
        return "disliked"
    return "liked"


def title_stances(text: str, spans: Sequence[tuple[int, int]]) -> list[str | None]:
    """:func:`title_stance` for each (start, end) of ``spans`` (in text order); a title listed
    right after another ("least favourites are A and B", "NOT A or B") shares a dislike read
    before the first one."""
    stances: list[str | None] = []
    for n, (start, end) in enumerate(spans):
        next_start = spans[n + 1][0] if n + 1 < len(spans) else None
        stance = title_stance(text, start, end, next_start)
        if n and stance == "liked" and stances[-1] == "disliked" and _LISTED.fullmatch(text[spans[n - 1][1]:start]):
            # the list's first title, and whether the words against it came before it (they cover the list)
            first = next((m for m in range(n, 0, -1)
                          if not _LISTED.fullmatch(text[spans[m - 1][1]:spans[m][0]])), 0)
            if title_stance(text, spans[first][0], spans[first][1], spans[first][1]) == "disliked":
                stance = "disliked"
        stances.append(stance)
    return stances


# What a question about one film asks, by the fact that answers it. A question names the film and
# asks for something the catalogue may hold (its credits, year, genres, plot) or may not ("is it in
# black and white?", "is it on Netflix?": "other"); "who directed Fargo?" is never a request for a
# list. Each kind is the words people use for it, not a sentence: the question shapes are many.
FACT_WORDS = {
    "director": r"direct\w*|filmmaker|who made|made by",
    "writer": r"wr[io]te|writ\w*|screenplay|script|screenwriter|author|adapted from|based on",
    "cast": r"star(?:s|red|ring)?|actors?|actress\w*|cast|plays?|played|playing|voices?|voiced|lead|"
            r"main character|who(?:'s| is| was| are| were)\s+in\b|"
            r"(?-i:(?:[Ii]s|[Ww]as|[Aa]re|[Ww]ere)\s+[A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+)+\s+in)",  # "is Tom Hanks in it?"
    "year": r"when|what year|which year|how old|released?|come out|came out|recent|newer?|old(?:er)?\s+(?:movie|film|one)|"
            r"decade|made in (?:the )?\d|"
            r"\d0'?s|eighties|nineties|seventies|sixties",
    "genre": r"genre|what kind|what type|what sort|which kind",
    "plot": r"about|plot|story|storyline|summary|summari[sz]e|synopsis|happens|premise|describe",
}
_FACT_KIND = {kind: re.compile(rf"\b(?:{words})\b", re.I) for kind, words in FACT_WORDS.items()}
_ASKS = re.compile(r"\?\s*$|^\W*(?:(?:so|and|but|ok|okay|hey|also)\W+)?(?:who|whom|whose|what|what's|whats|when|where|which|"
                   r"how|is|isn't|was|are|were|does|did|do|has|have|can you (?:tell|describe|summari[sz]e)|"
                   r"(?:please\s+)?(?:tell me|give me (?:a|the) (?:quick |short |brief )?(?:summary|synopsis|plot|rundown)))\b",
                   re.I)
# a request, even when put as a question: asks for titles ("movies for a fan of Rebecca?", "any movie
# for my daughter?", "what else?", "could you find me a documentary from 1994?", "any more Hitchcock?",
# "what's a good movie from the eighties that isn't a comedy?")
# or states a taste ("loved Toy Story, hated Jumanji, ...")
_REQUEST = re.compile(r"\b(?:recommend\w*|suggest\w*|similar|something|anything|more like|others?|another|find me|"
                      r"(?:any|some) more\b|what(?:'s|’s| is) (?:a|an|one|some) (?:[\w-]+ ){0,3}?(?:movie|film|book|novel|show)|"
                      r"what (?:should|could|can) (?:i|we)|what to watch|next|after watching|what else|a few|think of|"
                      r"movies|films|books|novels|shows|(?:any|some)\s+(?:(?:good|great|nice|fun)\s+[a-z]|movie|film|book)|"
                      r"(?:any|some|other|more)\s+(?:\w+\s+){0,2}?(?!sequels|prequels|awards|oscars|nominations)\w+(?:ies|s)\b)",
                      re.I)


def facts_asked(text: str, titles: Sequence[tuple[int, int]] = ()) -> list[str]:
    """The facts a question about a film asks for, in :data:`FACT_WORDS` order ("who directed and
    starred in Fargo?" → director, cast); ``["other"]`` for a question about it no catalogue fact
    answers ("is Casablanca in black and white?"); ``[]`` when the message is no such question: a
    statement, or a request ("what should I watch after Heat?", "anything like Fargo?").
    Whether it names a film is the caller's to check (the catalogue's titles); ``titles``: the
    (start, end) of the titles it names, whose own words ask nothing ("Toy Story", "Up")."""
    for start, end in sorted(titles, reverse=True):
        text = text[:start] + "Title" + text[end:]
    if not _ASKS.search(text) or _REQUEST.search(text) or _TASTE_ASKED.search(text):
        return []
    kinds = [kind for kind, pattern in _FACT_KIND.items() if pattern.search(text)]
    # "is Get Out a horror movie?", "the second one sounds good, is it a comedy?" (its last
    # clause), and a genre's word right after what is asked about: "is it animated?", "was Fargo
    # scary?" (not "is it ok for kids?", "is Alien too scary for children?": how suitable, not which kind)
    clause = _LAST_CLAUSE.search(text).group()
    genre_asked = re.search(r"^\W*(?:is|was|isn't)\b.*?\b(?:a|an)\s+(.+)$", clause, re.I)
    if not genre_asked and (said := _SAID_OF_IT.match(clause)) and _OPENS_WITH_A_GENRE.match(said.group(1)):
        genre_asked = said
    if "genre" not in kinds and genre_asked and any(genres_in(genre_asked.group(1))):
        kinds.append("genre")
    return kinds or ["other"]


_SAID_OF_IT = re.compile(r"^\W*(?:is|was|isn't)\s+(?:it|that|this|Title|the \w+(?: one)?)\s+(?:really\s+|very\s+)?(\S.*)$",
                         re.I)
_OPENS_WITH_A_GENRE = re.compile(rf"(?:{'|'.join(GENRE_WORDS.values())})\b", re.I)
_TASTE_ASKED = re.compile(r"\b(?:lov(?:e|es|ed|ing)|lik(?:e|es|ed)|enjoy(?:s|ed)?|ador\w*|hat(?:e|es|ed)|fan of|"
                          r"favou?rites?)\b|\bwould i\b|\bshould i\b|\bwhy\b", re.I)


@dataclass
class AboutItem:
    """What a question about one item asks (:func:`facts_asked`'s kinds) and how it names the item:
    a catalogue title (``item``), a title the catalogue lacks (``title`` only), a place in the
    last list (``position``), or "it" / "that one" (none of them)."""

    asked: list[str]
    title: str | None = None  # as the message writes it ("Fargo", "Flibbertigibbet Moon")
    item: object | None = None  # the catalogue item of a title spotted in the message
    position: int | None = None


_POINTS_AT = re.compile(r"\b(?:it|that(?: one| movie| film| book)?|this one|the (?:film|movie|book))\b", re.I)
_SMALL_WORDS = {"a", "an", "the", "of", "and", "in", "on", "at", "to", "for", "with", "from", "or", "vs"}


def item_question(text: str, slots: dict, spotter, domain: str | None = None,
                  has_list: bool = True, known: Collection[str] = ()) -> AboutItem | None:
    """A question about one item ("who directed Fargo?", "what is the second one about?", "is
    it in black and white?", "who stars in Flibbertigibbet Moon?"), or None. Only the sentence
    that asks counts ("Good morning! Busy day?" asks nothing about "Good Morning"). The item: a
    title the spotter finds there (in ``domain``, else the one the words ask for, else movies;
    short ones too, "what's Up about?"; not the person asked about, "is Emma Stone in La La
    Land?"), a place in the last list (``has_list``; without one, only a place said as one: "the
    second one", not "the first movie ever made"), a title in the router's ``slots`` written
    like one (each word capitalised: not "the funniest actor"), "it", or capitalised words inside
    the sentence (a title the catalogue lacks: "Where can I stream Get Out?"). ``known``: the items
    the conversation has named (a title several share is the one of them it named)."""
    domain = domain or asked_domain(text) or "movie"
    for sentence in _QUESTION_SENTENCE.findall(text):
        spans = spotter.spans(sentence, domain, short=True, known=known)
        asked = facts_asked(sentence, [(start, end) for start, end, *_ in spans])
        if not asked:
            continue
        person = person_asked(sentence)
        # a question that names no fact asks about what its own clause names: "is Heat good?", not
        # "finished Alien, what now?"
        asking = _LAST_CLAUSE.search(sentence).start() if asked == ["other"] else 0
        clause = sentence[asking:]
        titles = [item for start, end, _, item in spans if start >= asking
                  and sentence[start:end] != person and not sentence[start:end].isdigit()]  # "from 2000-2009"
        if titles:
            return AboutItem(asked, titles[0].title, titles[0])
        if (position := referenced_position(clause)) is not None:  # with no list: only "the second one"
            return AboutItem(asked, position=position) if has_list or _PLACE_IN_A_LIST.search(clause) else None
        for mention in slots.get("titles") or []:
            if written := _written_as_title(str(mention), clause):
                return AboutItem(asked, written)
        if _POINTS_AT.search(clause):
            return (_named_before(text[:text.find(sentence)], asked, spotter, domain, has_list, known)
                    or AboutItem(asked))
        if written := _capitalised_inside(clause):  # "Where can I stream Get Out?" with no such film
            return AboutItem(asked, written)
        return None
    return None


def names_a_place_in_a_list(text: str) -> bool:
    """Whether the words point into a list by a place said as one ("the second one", "#3", "your
    last pick"), not "the first movie ever made"."""
    return referenced_position(text) is not None and bool(_PLACE_IN_A_LIST.search(text))


def _named_before(earlier: str, asked: list[str], spotter, domain: str, has_list: bool,
                  known: Collection[str] = ()) -> AboutItem | None:
    """What "it" in a question points at when the same message named it first: "I liked the
    second one. Who is in it?", "Just saw Heat. Who directed it?" (the last one named)."""
    if not earlier.strip():
        return None
    if spans := spotter.spans(earlier, domain, known=known):
        return AboutItem(asked, spans[-1][3].title, spans[-1][3])
    if (position := referenced_position(earlier)) is not None and (has_list or _PLACE_IN_A_LIST.search(earlier)):
        return AboutItem(asked, position=position)
    return None


_PLACE_IN_A_LIST = re.compile(r"#\s*\d|\bnumber\s+\w+|\b(?:first|second|third|fourth|fifth|last|top|\d(?:st|nd|rd|th))\s+"
                              r"(?:one|pick|title|item|suggestion|recommendation|on (?:the|your) list)\b", re.I)
_LAST_CLAUSE = re.compile(r"[^,;:]*$")
_QUESTION_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_ABOUT_SOMEONE = re.compile(r"\b(?:tell me (?:about|more about)|trivia (?:about|on)|fun facts? (?:about|on)|"
                            r"(?<!n't )(?<!not )(?<!never )(?:know|heard) (?:anything )?(?:about|of))\b", re.I)


_THANKS = re.compile(r"\b(?:thanks|thank (?:you|u)|thx|ty|cheers|appreciate (?:it|that|them|this))\b", re.I)
_PERSON_BEFORE = r"\b(?:with|by|starring|featuring|stars?|actor|actress|director)\s+"  # "movies with Tom Hanks"


_ADDS = re.compile(r"\b(?:also|as well|plus|in addition|additionally|on top of that|mixed with|combined with|"
                   r"and some|with some|with a bit of|both)\b|\btoo\s*[.!?]*\s*$", re.I)


def adds_to_what_was_asked(text: str) -> bool:
    """Whether a request's genres add to the ones asked before ("any with some romance too?",
    "also thrillers") rather than replace them ("what about horror?" after comedies)."""
    return bool(_ADDS.search(text))


# a greeting and nothing else: "hi", "hello there!", "hey, how are you?", "good evening"
_GREETING_ONLY = re.compile(
    r"^\W*(?:(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening|day))(?:\s+there)?\W*)+"
    r"(?:(?:how are you|how's it going|how are things|what's up|sup)(?:\s+(?:doing|today))*\W*)?$", re.I)


def greets_only(text: str) -> bool:
    """Whether the message is a greeting and nothing more (the small model answered "hello" with
    "I'm here to help with any creative writing project")."""
    return bool(_GREETING_ONLY.match(text))


# the agent's own taste asked about: "do you like comedies?", "what's your favorite movie?"
_ASKS_MY_TASTE = re.compile(r"\b(?:do|did|would) (?:you|u) (?:like|love|enjoy|prefer)\b|"
                            r"\bwhat(?:'s| is| are|s) (?:your|ur) (?:fav(?:ou?rite)?s?|top)\b|"
                            r"\b(?:your|ur) (?:fav(?:ou?rite)?s?|top) (?:movies?|films?|books?|genres?)\b", re.I)


def asks_my_taste(text: str) -> bool:
    """Whether the words ask the agent what it likes (the small model answered "do you like
    comedies?" with "I'm so glad you enjoyed my comedy show")."""
    return bool(_ASKS_MY_TASTE.search(text))


def own_reply(text: str) -> str | None:
    """The key of the agent's fixed reply (``prompts/replies.toml``) that answers these chit-chat words,
    or None for the LLM's: the small model invents where these are asked — other skills for "what
    can you do?" ("help"), "any creative writing project" for "hello" ("greeting"), a comedy show
    of its own for "do you like comedies?" ("my_taste"), "I'm sorry for any inconvenience" for
    "bye" ("goodbye")."""
    if CAPABILITIES.search(text):
        return "help"
    if greets_only(text):
        return "greeting"
    if asks_my_taste(text):
        return "my_taste"
    if says_goodbye(text):
        return "goodbye"
    return None


def thanks(text: str) -> bool:
    """Whether the words thank ("thanks for the suggestions!", "thank u", "appreciate it")."""
    return bool(_THANKS.search(text))


# a goodbye: "bye", "good night", "have a great day", "see ya", "take care"
_GOODBYE = re.compile(r"\b(?:(?:good\s*)?bye+|bye-bye|good night|g'?night|see (?:you|ya)(?: later| soon)?|"
                      r"take care|have a (?:good|great|nice|wonderful|lovely) (?:day|night|evening|weekend|one))\b", re.I)


def says_goodbye(text: str) -> bool:
    """Whether the words take leave ("thanks, bye", "have a great day"): the small model answered
    them "I'm sorry for any inconvenience. It's a pleasure to meet you"."""
    return bool(_GOODBYE.search(text))


def written_as_person(mention: str, text: str) -> bool:
    """Whether ``text`` writes ``mention`` (two to four words) where a person goes: "movies with Tom
    Hanks", "directed by Greta Gerwig", "starring Zendaya Coleman"."""
    return (2 <= len(mention.split()) <= 4
            and re.search(_PERSON_BEFORE + re.escape(mention) + r"\b", text, re.I) is not None)


def asks_for_suggestions(text: str) -> bool:
    """Whether the words ask for suggestions outright ("any you can recommend?", "looking for a
    good comedy", "what should I watch"): the second look makes such a turn a request."""
    return bool(_WANTS_SUGGESTIONS.search(text))


def states_taste(text: str) -> bool:
    """Whether the words say what the person loves, likes, hates or is a fan of."""
    return bool(_TASTE.search(text))


def asks_for_facts(text: str, spotter=None) -> bool:
    """Whether the words ask for facts, not for films: a question about one item (:func:`item_question`:
    "which genre would you put Mad Max: Fury Road in?"; ``spotter`` None: titles unseen) or trivia
    ("tell me a fun fact about movies"). The chit-chat path answers these from the catalogue."""
    return bool(_ABOUT_SOMEONE.search(text)) or (spotter is not None and item_question(text, {}, spotter) is not None)


def asks(text: str) -> bool:
    """Whether the words ask something: a question, or "tell me about ...", "any trivia on ...?"."""
    return bool(_ASKS.search(text) or _ABOUT_SOMEONE.search(text))


_INSIDE = re.compile(r"(?<=[\w,;:'’] )(?!I\b)[A-Z0-9][\w'’.+-]*(?:\s+(?:(?:of|the|a|an|and)\s+)*[A-Z0-9][\w'’.+-]*)*")


def _capitalised_inside(sentence: str) -> str | None:
    """The first run of capitalised words inside a sentence (not its first word): what a question
    names as a title the catalogue may not have ("Where can I stream Get Out?")."""
    for m in _INSIDE.finditer(sentence):
        run = m.group(0).rstrip(".?!,'’")
        if len(run) >= 4 or " " in run:
            return run
    return None


def _written_as_title(mention: str, text: str) -> str | None:
    """``mention`` as ``text`` writes it, when each word but the small ones is capitalised."""
    if not mention.strip() or not (m := re.search(rf"(?<!\w){re.escape(mention.strip())}(?!\w)", text, re.I)):
        return None
    words = m.group(0).split()
    capitalised = all(w[0].isupper() or w[0].isdigit() or w.lower() in _SMALL_WORDS for w in words)
    return m.group(0) if capitalised and (words[0][0].isupper() or words[0][0].isdigit()) else None


_IT = (r"(?:it|that(?: one| movie| film)?|this one|"  # or a place in the list: "the first one", "#2"
       r"the (?:first|second|third|fourth|fifth|last|top|1st|2nd|3rd|4th|5th)(?: one| movie| film| book| pick)?|"
       r"#\s*\d|number \d)")
_INTENSE = r"(?:just|really|so|very|pretty|kind of|a bit|way|also|absolutely|totally)\s+"
_TASTE_FOR_IT = re.compile(
    rf"\b(?:i|we)\s+(?:{_INTENSE})*(?P<no>(?:did|do)(?:n'?t| not)\s+(?:{_INTENSE})*)?(?:lov|lik|enjoy|ador)\w*\s+{_IT}\b|"
    rf"\b{_IT}\s+(?:was|is)\s+(?:{_INTENSE})*"
    r"(?:great|good|awesome|amazing|excellent|fantastic|brilliant|hilarious|a (?:great|good|fun))\b|"
    rf"\b{_IT}\s+(?:was|is)\s+(?:{_INTENSE})*(?P<bad>{_BAD})\b", re.I)


def stance_on_it(text: str) -> str | None:
    """How a message that names no title speaks of "it" / "that one" (the one title just
    suggested) or of a place in the list ("the first one", "#2"; :func:`referenced_position` says
    which): "I loved that one!" → "liked", "I didn't like it" or "the second one was boring" →
    "disliked"; a question ("did you like it?") or no taste → None."""
    for sentence in _SENTENCE.split(text):
        if (m := _TASTE_FOR_IT.search(sentence)) and not sentence.rstrip().endswith("?") \
                and not re.match(r"\s*(?:did|do|have|would|will)\s+you\b", sentence, re.I):
            return "disliked" if m.group("no") or m.group("bad") else "liked"
    # the words a title is turned against with, around "the first one" as around a title ("I've
    # seen the first one, not a fan", "not a fan of that one", "the second was too slow")
    if _QUESTION.search(text):
        return None
    return "disliked" if _turned_against_a_place(text) else None


_POINTED_AT = re.compile(rf"(?<!\w){_IT}(?!\w)", re.I)  # "#2" too, which \b would miss


def dislikes_a_place(text: str) -> bool:
    """Whether the words turn against "it" or a place in the list anywhere ("loved the first,
    hated the third", "the 2nd was boring", "not a fan of that one")."""
    if any((m := _TASTE_FOR_IT.search(sentence)) and (m.group("no") or m.group("bad"))
           for sentence in _SENTENCE.split(text)):
        return True
    return _turned_against_a_place(text)


def _turned_against_a_place(text: str) -> bool:
    """Whether the words a title is turned against with stand around "it" or a place in the list."""
    return any(title_stance(text, m.start(), m.end()) == "disliked" for m in _POINTED_AT.finditer(text))


_NAME_INSIDE = re.compile(r"(?<=[\w,;'’] )(?!I\b)[A-Z0-9]")  # a capitalised word inside a sentence


def carries_taste(text: str, spotter=None) -> bool:
    """Whether a person's message names anything the dialogue state keeps: a title (spotted, or
    a capitalised word inside a sentence the router may read as one), a genre, years, a domain,
    a count or a place in a list. Reading a transcript, the others ("Hi there", "I haven't seen
    that one", 39% of ReDial seekers' turns) need no router call: they would change nothing.
    ``spotter`` None: titles are not looked for."""
    return bool((spotter is not None and spotter.spans(text)) or _NAME_INSIDE.search(text) or any(genres_in(text))
                or stated_years(text) or asked_domain(text) or asked_count(text)
                or referenced_position(text) is not None)


def gives_something_to_go_on(text: str, spotter=None) -> bool:
    """Whether the words give a recommender something to go on: what :func:`carries_taste` finds
    (titles only with a ``spotter``), a kind of film described, or a taste told."""
    return carries_taste(text, spotter) or bool(described_taste(text)) or states_taste(text)


_COUNT = re.compile(r"\b(\d{1,2})\s+(?:[\w-]+\s+){0,3}?[\w-]*[a-z]s\b|"  # "2 westerns"
                    r"\b([2-9]|\d\d)\s+(?:more|others)\b")  # "3 more" ("one more please" is another list)


def asked_count(text: str, max_count: int = _TURN.max_count) -> int | None:
    """"three space movies", "2 westerns": the router misses counts often (RESULTS §8), the
    words do not (``match_key`` has turned number words into digits). None when the words ask
    for none, or for more than ``max_count``."""
    match = _COUNT.search(match_key(text))
    n = int(match.group(1) or match.group(2)) if match else 0
    return n if 1 <= n <= max_count else None


__all__ = ["ASKS_WHY", "CAPABILITIES", "FACT_WORDS", "PERSON_ASKED_FOR", "place_only", "GENRE_WORDS", "WHY_TITLE", "asked_count", "asked_domain", "carries_taste", "facts_asked", "item_question", "AboutItem", "asks", "asks_for_facts", "names_a_place_in_a_list", "genre_conflicts", "genres_in",
           "asks_my_taste", "own_reply", "genre_tastes", "genres_as_one_kind", "greets_only", "has_content", "open_years", "title_stance", "title_stances", "stated_years", "readable", "referenced_position", "sanitize_slots", "second_look", "stance_on_it", "without_markup"]
