"""Title resolution: what a person types ("godfather part 2", "forest gump", "ET",
"the firm by grisham") → catalog items, with a confidence and the runners-up.

Lexical first — every catalog title is indexed under normalised keys (articles dropped,
punctuation and accents gone, number words and roman numerals as digits, "part 2" as
"2", the main title before a subtitle, alternate titles, and for books the title with
its author) and a mention is matched exactly, by prefix, or fuzzily (rapidfuzz). The
item store's embedding search adds candidates by meaning and breaks near-ties. Cues in
the mention count: a year ("fargo 1996"), a domain ("... the book", "... movie"), an
author ("... by John Grisham"). Sequels are guarded: a mention whose numbers differ from a
title's never matches it ("toy story 4" is not "Toy Story 3"). When nothing fits well
enough, the answer is no item — never a random one.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from tools.catalog import Catalog, CatalogItem, title_forms, title_key

ACCEPT = 0.85  # a best candidate under this is "not in the catalog"
AMBIGUOUS_MARGIN = 0.04  # a runner-up (another item) this close makes the answer unsure
FUZZY_CUTOFF = 86  # rapidfuzz ratio (0-100) for typo matches
AUTHOR_MATCH = 85  # rapidfuzz ratio (0-100) at which the author a mention names ("... by King") is the item's
SEMANTIC_WEIGHT = 0.03  # how much the store's cosine adds to a candidate's score: a tie-breaker
DOMAIN_BONUS, YEAR_BONUS, AUTHOR_BONUS = 0.05, 0.03, 0.05  # a cue the item agrees with

_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_ORDINALS = {w: f"{n}th" for n, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth".split())}
_ORDINALS.update(first="1st", second="2nd", third="3rd")
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "x": "10"}
_ABBREVIATIONS = {"dr": "doctor", "mr": "mister", "st": "saint", "vs": "versus"}
_SEQUEL_WORDS = {"part", "vol", "volume", "episode", "chapter", "pt", "no"}
_ACRONYM_DOTS = re.compile(r"\b([A-Za-z])\.(?=[A-Za-z]\b\.?)")
_DOMAIN_CUES = {"movie": "movie", "film": "movie", "book": "book", "novel": "book"}
_LEADING_CUE = re.compile(r"^(?:the\s+)?(movie|film|book|novel)\s+", re.IGNORECASE)
_TRAILING_CUE = re.compile(r"\s+(?:the\s+)?(movie|film|book|novel)$", re.IGNORECASE)
_YEAR = re.compile(r"\s*[\(\[]?((?:19|20)\d\d)[\)\]]?$")
_BY_AUTHOR = re.compile(r"^(?P<title>.+?)\s+by\s+(?P<author>[^,]+)$", re.IGNORECASE)


def match_key(text: str) -> str:
    """The key both titles and mentions are compared by: ``title_key`` plus acronyms
    joined ("E.T." → "et"), numbers as digits ("twelve", "II" → "12", "2"), the word
    before a sequel number dropped ("part 2" → "2"), and common abbreviations spelled out."""
    key = title_key(_ACRONYM_DOTS.sub(r"\1", text))
    tokens = []
    for tok in key.split():
        tok = _NUMBER_WORDS.get(tok) or _ORDINALS.get(tok) or _ROMAN.get(tok) or _ABBREVIATIONS.get(tok) or tok
        tokens.append(tok)
    out = [t for n, t in enumerate(tokens)
           if not (t in _SEQUEL_WORDS and n + 1 < len(tokens) and tokens[n + 1].isdigit())]
    return " ".join(out)


def _names(item: CatalogItem) -> list[str]:
    """Every way of writing the item's title a spotted span may match: its title and aliases as
    written and their :func:`title_forms`."""
    return list(dict.fromkeys(form for written in (item.title, *item.aliases)
                              for form in (written, *title_forms(written, item.domain))))


def _numbers(key: str) -> frozenset[str]:
    return frozenset(t for t in key.split() if t.isdigit())


def _author_keys(author: str) -> list[str]:
    key = match_key(author)
    parts = key.split()
    return [k for k in dict.fromkeys([key, parts[-1] if parts else ""]) if k]


def _in_order(needles: list[str], haystack: list[str]) -> bool:
    """Every needle appears in the haystack, in order (gaps allowed)."""
    it = iter(haystack)
    return all(any(tok == h for h in it) for tok in needles)


@dataclass
class Candidate:
    item: CatalogItem
    score: float
    how: str

    def to_dict(self) -> dict:
        return {**item_summary(self.item), "score": round(self.score, 4), "how": self.how}


@dataclass
class Resolution:
    mention: str
    item: CatalogItem | None
    confidence: float
    candidates: list[Candidate] = field(default_factory=list)  # runners-up, best first
    ambiguous: bool = False

    def to_dict(self) -> dict:
        """The ``chatrec resolve --json`` contract."""
        return {"mention": self.mention, "item": item_summary(self.item) if self.item else None,
                "confidence": round(self.confidence, 4), "candidates": [c.to_dict() for c in self.candidates]}


def item_summary(item: CatalogItem) -> dict:
    summary = {"item_id": item.item_id, "title": item.title, "year": item.year, "domain": item.domain,
               "genres": list(item.genres)}
    if item.author:
        summary["author"] = item.author
    return summary


@dataclass
class _Cues:
    text: str  # the mention with cues removed
    domain: str | None = None
    year: int | None = None
    author: str | None = None
    # a trailing "... novel" / "... movie" also weighs on the whole-text reading, except where
    # that reading matches a title exactly ("Scary Movie", "The Jungle Book")
    soft_domain: str | None = None


def _cues(mention: str) -> list[_Cues]:
    """Readings of a mention: always the whole text, plus one with year / domain / author
    cues taken off (a title may itself contain "by" or a year, so both are scored)."""
    text = " ".join(mention.strip().strip("\"'“”").split())
    readings = [_Cues(text)]
    cue = _Cues(text)
    for pattern in (_LEADING_CUE, _TRAILING_CUE):
        m = pattern.search(cue.text)
        if m and len(cue.text) > len(m.group(0)):
            cue.domain = _DOMAIN_CUES[m.group(1).lower()]
            cue.text = (cue.text[: m.start()] + cue.text[m.end():]).strip()
    trailing = _TRAILING_CUE.search(text)
    if trailing and len(text) > len(trailing.group(0)):
        readings[0].soft_domain = _DOMAIN_CUES[trailing.group(1).lower()]
    m = _YEAR.search(cue.text)
    if m and cue.text[: m.start()].strip():
        cue.year, cue.text = int(m.group(1)), cue.text[: m.start()].strip()
    m = _BY_AUTHOR.match(cue.text)
    if m:
        with_author = _Cues(m["title"].strip(), cue.domain or "book", cue.year, m["author"].strip())
        readings.append(with_author)
    if (cue.domain, cue.year) != (None, None):
        readings.append(cue)
    return readings


_WORD = re.compile(r"[\w'’]+")
# what ends a sentence before a word: a stop (perhaps inside a closing quote or bracket: 'said." They'),
# or a line break (a list item, a new paragraph)
_SENTENCE_END = re.compile(r"(?:[.!?:][\"'”’)\]]*|\n)\s*$")
# people who leave out the full stop: a year written after a title, or a word that ends a clause,
# then the next sentence ("Scrooged (1988) Loved both of those", "Never seen it Always heard good things")
_UNMARKED_SENTENCE_END = re.compile(r"(?:\(\s*(?:18|19|20)\d\d\s*\)|\b(?:it|them|those|these|one|ones|too|though|"
                                    r"lol|haha|yet|already|please|thanks))\s+$", re.I)
_BEFORE_A_DATE = {"in", "since", "from", "until", "till", "before", "after", "around", "circa", "of", "by", "to"}


MAX_TITLE_WORDS = 14  # "The Chronicles of Narnia: The Lion, the Witch and the Wardrobe" has 11
_YEAR_AFTER = re.compile(r"\s*[(\[]?\s*((?:18|19|20)\d\d)\b")  # "Jumanji (2017)", "It 2017"


EVERYDAY_ZIPF = 4.0  # wordfreq's Zipf scale: 4 is ten times in a million words ("alien" 4.3, "psycho" 3.7)


@lru_cache(maxsize=1 << 16)
def everyday_word(word: str) -> bool:
    """A common English word (wordfreq's frequency, shipped in its wheel): one that opens a
    sentence says nothing of a title ("Thanks", "Maybe", "Heat"), where a rare one does
    ("Spaceballs", "Bridesmaids", "Jumanji")."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en") >= EVERYDAY_ZIPF


_FILM_GOES_HERE = re.compile(r"\b(?:seen|saw|watch(?:ed)?|lik(?:e|ed)|lov(?:e|ed)|enjoy(?:ed)?|favou?rite is|"
                             r"about|similar to|movies? like|films? like|the (?:original|new))\s+$", re.I)
# which film of a shared title, said in words: "the original Jumanji", "the new It", "the It remake"
_OLDEST_BEFORE = re.compile(r"\b(?:original|first|old|older|oldest)\s+$", re.I)
_NEWEST_BEFORE = re.compile(r"\b(?:new|newer|newest|latest|recent)\s+$", re.I)
_NEWEST_AFTER = re.compile(r"\s+(?:remake|reboot)\b", re.I)
_LIST_GAP = re.compile(r"\s*(?:,|and|or|&)\s*(?:and\s+|or\s+)?", re.I)
# a number where a film goes names it when nothing it counts follows: "I also liked 300", not "I've seen 300 movies"
_NOTHING_COUNTED = re.compile(r"\s*(?:$|[.,!?;:)]|(?:and|or|but|too|was|is|were|though|also|as well|i|it)\b)", re.I)


def _article(title: str) -> str:
    """The article a title opens with ("the", "a", "an"), or "" (match keys leave it out)."""
    first = _WORD.match(title.strip())
    return first.group().lower() if first and first.group().lower() in ("the", "a", "an") else ""


def _loud(word: str) -> bool:
    """An everyday word in capitals ("I LOVED Rudy"): said loudly, not a name."""
    return len(word) > 1 and word.isupper() and everyday_word(word)


class TitleSpotter:
    """Catalog titles written in running text ("I loved Toy Story and Aladdin"): spans as long as
    the longest title (up to :data:`MAX_TITLE_WORDS`) that start with a capital and whose key is an
    item's whole title, or a film's title without the other titles it writes in brackets
    ("Seven (Se7en)" is "Seven" and "Se7en"). A span capitalised only where grammar puts a capital (opening a sentence,
    "I do") counts only with a word that is not everyday English ("Spaceballs is great", not
    "Anything else?"); an everyday word in capitals is emphasis ("I LOVED Rudy"). A lone word must
    have four letters or more and not sit in another name (after a capitalised word that is not a
    title, or before a rare one: "Flibbertigibbet Moon", "Adam Sandler"), so ordinary words that
    happen to be titles ("heat", "What") do not count; a sentence also opens after a closing quote
    or a line break, and a lone number after "in" / "since" / … or in brackets is a date ("in 2012",
    "Home Again (2012)"), not the film; a lone number where a film goes, with nothing it counts
    after it, is one ("I also liked 300", not "I've seen 300 movies"). A shared title goes to the item of the year written right
    after it ("Jumanji (2017)", "It 2017"), else to one of the domain asked for (a movie chat's
    "The Shape of Water" is the film, not the novel), else to the oldest or the newest when the
    words say which ("the original Jumanji", "the new It", "the It remake"); among those whose title
    opens with the article written, if any ("The Heat" is the 2013 comedy, "Heat" the 1995 film), to
    the one the conversation has already named (when the caller says which), else to the most rated (the newest of
    equally rated: ReDial's imported films carry no ratings), unless one came out after the newest
    rated film: its ratings could not exist, and the newest such one is taken."""

    def __init__(self, items: Iterable[CatalogItem], max_words: int | None = None) -> None:
        self.by_key: dict[str, list[CatalogItem]] = {}  # every item of a title: most rated first, then the newest
        longest = 1
        for item in items:
            for title in _names(item):
                key = match_key(title)
                same = self.by_key.setdefault(key, []) if key else None
                if same is not None and all(i is not item for i in same):  # a title and alias alike: once
                    same.append(item)
                    longest = max(longest, len(_WORD.findall(title)))
        # "How to Lose a Guy in 10 Days", "Star Wars: Episode VIII – The Last Jedi": the longest
        # title, up to a limit (each capitalised word tries every length down from it)
        self.max_words = max_words or min(longest, MAX_TITLE_WORDS)
        self.rated_until = max((i.year for same in self.by_key.values() for i in same if i.n_ratings and i.year),
                               default=None)  # the newest film the catalogue's ratings could count
        for same in self.by_key.values():
            same.sort(key=lambda i: (-i.n_ratings, -(i.year or 0)))

    def _pick(self, key: str, year_after: int | None, domain: str | None, edition: str | None = None,
              known: Collection[str] = (), written: str = "") -> CatalogItem:
        """The item a title means here (the class docstring says how a shared one is chosen);
        ``edition``: "oldest" or "newest", as the words around the title said; ``known``: item
        ids the conversation has already named; ``written``: the title as the words have it."""
        shared = self.by_key[key]
        if len(shared) == 1:
            return shared[0]
        if year_after is not None and (dated := [i for i in shared if i.year == year_after]):
            return dated[0]
        if domain and (same := [i for i in shared if i.domain == domain]):
            shared = same
        if edition and (dated := [i for i in shared if i.year]):
            return (min if edition == "oldest" else max)(dated, key=lambda i: i.year)
        # the article as written: "The Heat" is the 2013 comedy, "Heat" the 1995 crime film
        if written and (as_written := [i for i in shared if any(
                _article(t) == _article(written) for t in _names(i) if match_key(t) == key)]):
            shared = as_written
        if known and (talked_of := [i for i in shared if i.item_id in known]):
            return talked_of[0]
        # ratings that could not exist say nothing: a film out after the newest rated one ("Jumanji"
        # 2017, the ratings ending in 2016) is not less known than the rated film of its title
        if self.rated_until is not None and (
                after := [i for i in shared if not i.n_ratings and (i.year or 0) > self.rated_until]):
            return max(after, key=lambda i: i.year)
        return shared[0]

    def item_of(self, title: str, domain: str | None = None, known: Collection[str] = ()) -> CatalogItem | None:
        """The item ``title`` names as a whole (no fuzzy match), chosen as a spotted title is; None if none."""
        key = match_key(title)
        return self._pick(key, None, domain, known=known, written=title) if key in self.by_key else None

    def spot(self, text: str, domain: str | None = None) -> list[tuple[str, CatalogItem]]:
        """(key, item) for each title found, in text order, longest span first at each word;
        ``domain``: the one a shared title is taken in when it has an item there."""
        return [(key, item) for _, _, key, item in self.spans(text, domain)]

    def _before_a_name(self, text: str, words: list[re.Match], i: int) -> bool:
        """Whether the lone word ``words[i]`` is the first of a name: a capitalised word that is no
        everyday one follows it after a space and starts no title ("Adam Sandler", "Jack Nicholson";
        not "Titanic Jumanji", nor "Braveheart And also ...")."""
        if i + 1 >= len(words) or not re.fullmatch(r" +", text[words[i].end():words[i + 1].start()]):
            return False
        after = words[i + 1].group()
        if not after[0].isupper() or everyday_word(after):  # a new sentence with no stop: "Braveheart And"
            return False
        return not any(match_key(text[words[i + 1].start():words[i + n].end()]) in self.by_key
                       for n in range(1, min(self.max_words, len(words) - i - 1) + 1))

    def spans(self, text: str, domain: str | None = None, openers: bool = False,
              short: bool = False, known: Collection[str] = ()) -> list[tuple[int, int, str, CatalogItem]]:
        """(start, end, key, item) for each title found: :meth:`spot` with where it is written.
        ``openers``: a lone word that opens a sentence counts too ("Fargo is a crime film", in
        text that talks about films: a model's reply); ``short``: so does a lone word of two or
        three letters ("what's Up about?", in a question about one film); their other rules hold.
        ``known``: item ids the conversation has named already; a shared title the words do not
        date is the film of it among them ("Jumanji" after "have you seen Jumanji (2017)?")."""
        words = list(_WORD.finditer(text))
        found: list[tuple[int, int, str, CatalogItem]] = []
        i = 0
        while i < len(words):
            first = words[i].group()
            if not (first[0].isupper() or first[0].isdigit()):
                i += 1
                continue
            opens_sentence = (i == 0 or _SENTENCE_END.search(text[: words[i].start()]) is not None
                              or _UNMARKED_SENTENCE_END.search(text, 0, words[i].start()) is not None)
            # a lone word right after a capitalised one belongs to another name ("Flibbertigibbet Moon")
            before = words[i - 1].group() if i else ""
            inside_name = (i > 0 and before[0].isupper() and before != "I" and not _loud(before)
                           and not (found and found[-1][1] == words[i - 1].end())  # "Titanic Jumanji": a list
                           and re.fullmatch(r"\s+", text[words[i - 1].end():words[i].start()]) is not None
                           and not (i == 1 or _SENTENCE_END.search(text[: words[i - 1].start()])))
            # "in 2012", "since 1999", "Home Again (2012)": a date, not the film
            a_date = first.isdigit() and i > 0 and (words[i - 1].group().lower() in _BEFORE_A_DATE
                                                    or text[:words[i].start()].rstrip().endswith("("))
            # capitalised by grammar, not as a name: "Good morning", "I do", "Thanks" open a sentence
            by_grammar = (opens_sentence or first == "I") and not openers
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                span = words[i:i + n]
                key = match_key(text[span[0].start():span[-1].end()])
                if key not in self.by_key:
                    continue
                # a span with no capital but the grammar's is a title only if a word of it is
                # not everyday English ("Spaceballs is one of my favorites", not "Anything else?");
                # an everyday word in capitals is said loudly ("I LOVED Rudy"), not named
                plain = by_grammar and not any(w.group()[0].isupper() or w.group()[0].isdigit() for w in span[1:])
                if (plain and all(map(everyday_word, (w.group() for w in span)))) or (n == 1 and _loud(first)):
                    continue
                if n == 1 and self._before_a_name(text, words, i):
                    continue
                # a short title ("It", "Up", "Spy", "RV") in capitals mid-sentence, where a film goes:
                # after a word of watching or liking, or listed after another title (an everyday
                # word in capitals, "I loved IT", was left out above as said loudly)
                short_here = short or (not by_grammar and (first[0].isupper() or (
                                           first.isdigit() and _NOTHING_COUNTED.match(text, words[i].end())))
                                       and (_FILM_GOES_HERE.search(text, 0, words[i].start())
                                            or (found and _LIST_GAP.fullmatch(text, found[-1][1], words[i].start()))))
                # the word as written: "Seven" is a lone word of five letters, though its key is "7"
                if n > 1 or (not (inside_name or a_date) and len(first) >= (2 if short_here else 4) and key != "i"):
                    end = words[i + n - 1].end()
                    year = _YEAR_AFTER.match(text, end)
                    before = text[:words[i].start()]
                    edition = ("oldest" if _OLDEST_BEFORE.search(before) else "newest"
                               if _NEWEST_BEFORE.search(before) or _NEWEST_AFTER.match(text, end) else None)
                    item = self._pick(key, int(year.group(1)) if year else None, domain, edition, known,
                                      text[words[i].start():end])
                    found.append((words[i].start(), end, key, item))
                    i += n - 1
                    break
            i += 1
        return found


class TitleResolver:
    """Index the catalog's titles once; ``resolve`` a mention in a few milliseconds lexically
    (plus one embedding query, when a store is given and the lexical match is not clear).

    ``store`` is an item store, or a function that opens one: then it is opened only when a
    mention first needs the meaning search, so a command resolving plain titles never loads
    chromadb or the embedding model."""

    def __init__(self, catalog: Catalog, store=None) -> None:
        self.catalog = catalog
        self.store, self._store_opener = (None, store) if callable(store) else (store, None)
        self.items: list[CatalogItem] = list(catalog.items)
        self._index: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._author_of: dict[int, list[str]] = {}
        for n, item in enumerate(self.items):
            self._index_item(n, item)
        self.keys = sorted(self._index)
        self._popularity = self._popularity_by_domain()
        counts = np.log1p(np.array([item.n_ratings for item in self.items], dtype=float))
        self._prior = counts / max(1.0, float(counts.max()))  # across domains: people who rated it
        self._idf = self._token_idf()
        self._keys_with: dict[str, list[str]] = defaultdict(list)  # token → keys holding it
        for key in self.keys:
            for tok in set(key.split()):
                self._keys_with[tok].append(key)
        self._position = {item.item_id: n for n, item in enumerate(self.items)}
        self.spotter = TitleSpotter(self.items)

    # -- index -------------------------------------------------------------------------

    def _add_key(self, key: str, n: int, weight: float) -> None:
        if key:
            entries = self._index[key]
            for i, (m, w) in enumerate(entries):
                if m == n:
                    entries[i] = (n, max(w, weight))
                    return
            entries.append((n, weight))

    def _index_item(self, n: int, item: CatalogItem) -> None:
        for title, weight in [(item.title, 1.0)] + [(a, 0.98) for a in item.aliases]:
            main, *alternates = title_forms(title, item.domain)
            self._add_key(match_key(main), n, weight)
            head = re.split(r":\s|\s-\s|\s:\s*", main, maxsplit=1)
            if len(head) == 2:  # "Terminator 2: Judgment Day" → "terminator 2"; "The Lovely Bones: A Novel"
                # people name books without their subtitles; a film's subtitle usually matters
                self._add_key(match_key(head[0]), n, weight * (1.0 if item.domain == "book" else 0.97))
            for alternate in alternates:
                self._add_key(match_key(alternate), n, weight * 0.97)
        if item.author:
            authors = _author_keys(item.author)
            self._author_of[n] = authors
            base = match_key(re.split(r":\s|\s:\s*|\s\(", item.title, maxsplit=1)[0])
            for author in authors:
                self._add_key(f"{base} {author}", n, 1.0)

    def _popularity_by_domain(self) -> np.ndarray:
        """Rating-count percentile within the item's domain (0..1): short forms like "ET"
        or "shawshank" are how people name popular items, not obscure ones."""
        pop = np.zeros(len(self.items))
        by_domain: dict[str, list[int]] = defaultdict(list)
        for n, item in enumerate(self.items):
            by_domain[item.domain].append(n)
        for members in by_domain.values():
            counts = np.array([self.items[n].n_ratings for n in members], dtype=float)
            ranks = counts.argsort().argsort() / max(1, len(members) - 1)
            pop[members] = ranks
        return pop

    def _token_idf(self) -> dict[str, float]:
        df: dict[str, int] = defaultdict(int)
        for key in self.keys:
            for tok in set(key.split()):
                df[tok] += 1
        total = len(self.keys)
        return {tok: math.log((1 + total) / (1 + d)) + 1 for tok, d in df.items()}

    def _coverage(self, query: str, key: str) -> float:
        """Share of the key's information (IDF mass) the query's words carry."""
        q = sum(self._idf.get(t, 10.0) for t in query.split())
        k = sum(self._idf.get(t, 10.0) for t in key.split())
        return min(1.0, q / k) if k else 0.0

    # -- matching ----------------------------------------------------------------------

    def _lexical(self, query: str) -> dict[int, tuple[float, str]]:
        """item index → (lexical score 0..1, how) for one normalised query."""
        found: dict[int, tuple[float, str]] = {}

        def offer(n: int, score: float, how: str) -> None:
            if score > found.get(n, (0.0, ""))[0]:
                found[n] = (score, how)

        numbers = _numbers(query)
        for n, weight in self._index.get(query, ()):
            offer(n, weight, "exact")
        # prefix: "shawshank" → "shawshank redemption"; only for popular items or a large share of the title
        start = bisect.bisect_left(self.keys, query + " ")
        for key in self.keys[start:start + 200]:
            if not key.startswith(query + " "):
                break
            if _numbers(key) != numbers:
                continue
            coverage = self._coverage(query, key)
            for n, weight in self._index[key]:
                if self._popularity[n] >= 0.9 or coverage >= 0.6:
                    offer(n, weight * (0.80 + 0.15 * coverage), "prefix")
        # ordered subset: "pirates of the caribbean black pearl" → "... the curse of the black pearl"
        tokens = query.split()
        if len(tokens) >= 2:
            rarest = max(tokens, key=lambda t: self._idf.get(t, 0.0))
            for key in self._keys_with.get(rarest, ()):
                if key == query or not numbers <= _numbers(key) or not _in_order(tokens, key.split()):
                    continue
                coverage = self._coverage(query, key)
                if coverage >= 0.7:
                    for n, weight in self._index[key]:
                        offer(n, weight * (0.78 + 0.15 * coverage), "subset")
        if len(query) >= 4:
            for key, ratio, _ in process.extract(query, self.keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF,
                                                 limit=10):
                if key == query or _numbers(key) != numbers:
                    continue
                for n, weight in self._index[key]:
                    offer(n, weight * ratio / 100.0, "fuzzy")
            # typos as edits (a swap of two letters is one edit): "amadues" → "amadeus"
            max_edits = 1 if len(query) < 10 else 2
            if len(query) >= 6 and max((v[0] for v in found.values()), default=0.0) < 0.95:
                for key, edits, _ in process.extract(query, self.keys, scorer=OSA.distance, score_cutoff=max_edits,
                                                     limit=10):
                    if key == query or _numbers(key) != numbers:
                        continue
                    for n, weight in self._index[key]:
                        offer(n, weight * (1.0 - 0.05 * edits), "typo")
        return found

    def _score(self, n: int, lexical: float, how: str, cues: _Cues, semantic: float) -> float:
        item = self.items[n]
        score = lexical + 0.04 * self._prior[n] + (0.01 if item.warm else 0.0) + SEMANTIC_WEIGHT * semantic
        if cues.domain:
            score += DOMAIN_BONUS if item.domain == cues.domain else -0.25
        elif cues.soft_domain and how != "exact" and item.domain != cues.soft_domain:
            score -= 0.25
        if cues.year and item.year:  # a stated year is a fact: "parasite 2019" is not Parasite (1982)
            gap = abs(item.year - cues.year)
            score += YEAR_BONUS if gap == 0 else 0.0 if gap == 1 else -0.5
        if cues.author:
            authors = self._author_of.get(n, [])
            wanted = _author_keys(cues.author)
            hit = max((fuzz.ratio(a, w) for a in authors for w in wanted), default=0.0)
            score += AUTHOR_BONUS if hit >= AUTHOR_MATCH else -0.3
        return score

    def _semantic(self, mention: str, k: int = 5) -> dict[int, float]:
        store = self._open_store()
        if store is None:
            return {}
        try:
            hits = store.search(mention, k=k)
        except Exception:  # the store is an aid here; lexical resolution still answers
            return {}
        return {self._position[h.item_id]: h.score for h in hits if h.item_id in self._position}

    def _open_store(self):
        if callable(self._store_opener):  # opened on the first mention the lexical pass leaves open
            self.store, self._store_opener = self._store_opener(), None
        return self.store

    def _readings(self, mention: str, domain: str | None) -> list[tuple[_Cues, str, dict[int, tuple[float, str]]]]:
        """(cues, normalised query, lexical matches) for each reading of the mention."""
        readings = []
        for cues in _cues(mention):
            if domain and not cues.domain:
                cues.domain = domain
            query = match_key(cues.text)
            if query:
                readings.append((cues, query, self._lexical(query)))
        return readings

    def _rank(self, readings, domain: str | None, semantic: dict[int, float]) -> list[tuple[int, tuple[float, str]]]:
        best: dict[int, tuple[float, str]] = {}
        for cues, query, lexical in readings:
            for n in set(lexical) | set(semantic):
                lex, how = lexical.get(n, (0.0, "meaning"))
                if lex == 0.0:  # found by meaning only: its title must still resemble the query
                    title = match_key(self.items[n].title)
                    if _numbers(title) == _numbers(query):  # the same sequel guard as lexical matches
                        lex = 0.9 * fuzz.ratio(query, title) / 100.0
                score = self._score(n, lex, how, cues, semantic.get(n, 0.0))
                if domain and self.items[n].domain != domain:
                    continue
                if score > best.get(n, (-1.0, ""))[0]:
                    best[n] = (score, how)
        return sorted(best.items(), key=lambda kv: (-kv[1][0], -self.items[kv[0]].n_ratings))

    def _settled(self, readings, ranked) -> bool:
        """Whether the lexical ranking alone gives the answer the meaning search would give: the
        search adds at most SEMANTIC_WEIGHT to any candidate, and an item only it finds scores at
        most 0.9 (its title's resemblance) + the prior and warm terms + the cues it agrees with.
        When the best lexical match clears both by the ambiguity margin plus that weight, the
        answer, its confidence (1.0) and its certainty cannot change, so the embedding model is
        not loaded."""
        if not ranked:
            return False
        cue_bonus = max(DOMAIN_BONUS * bool(cues.domain) + YEAR_BONUS * bool(cues.year)
                        + AUTHOR_BONUS * bool(cues.author) for cues, _, _ in readings)
        found_by_meaning_only = 0.9 + 0.04 + 0.01 + cue_bonus
        runner_up = ranked[1][1][0] if len(ranked) > 1 else 0.0
        top = ranked[0][1][0]
        return top >= 1.0 and top - max(runner_up, found_by_meaning_only) >= AMBIGUOUS_MARGIN + SEMANTIC_WEIGHT

    def resolve(self, mention: str, domain: str | None = None, k: int = 5) -> Resolution:
        """Best catalog item for ``mention`` (or None), a confidence in 0..1, and up to ``k`` runners-up.
        ``domain`` (from the dialogue) restricts the answer to movies or books. The store's
        meaning search is asked only when the lexical ranking does not settle the answer; a
        settled answer's runners-up are then the lexical ones."""
        if not mention or not mention.strip():
            raise ValueError("nothing to resolve: the mention is empty")
        readings = self._readings(mention, domain)
        ranked = self._rank(readings, domain, {})
        if not self._settled(readings, ranked):
            ranked = self._rank(readings, domain, self._semantic(mention))
        candidates = [Candidate(self.items[n], score, how) for n, (score, how) in ranked[: k + 1]]
        if not candidates or candidates[0].score < ACCEPT:
            return Resolution(mention, None, 0.0, candidates[:k])
        top, rest = candidates[0], candidates[1:]
        margin = top.score - rest[0].score if rest else 1.0
        confidence = min(1.0, top.score) - max(0.0, AMBIGUOUS_MARGIN - margin) * 5
        return Resolution(mention, top.item, round(max(0.0, confidence), 4), rest[:k],
                          ambiguous=margin < AMBIGUOUS_MARGIN)

    def resolve_many(self, mentions: Iterable[str]) -> list[Resolution]:
        return [self.resolve(m) for m in mentions]
