"""The sentence-level check of an explanation: every sentence shown must be backed by the evidence.

An explanation is split into sentences; each sentence into *claims*, typed by what they assert,
and each claim is checked against the evidence field that could carry it
(:class:`tools.explain.Evidence` and the item's catalogue facts):

==============  ===================================================  ===========================================
kind            what the sentence asserts                            supported by
==============  ===================================================  ===========================================
``title``       a catalogue title (TitleSpotter), or a broken one   the item, its aliases, the person's nearest
                (a capitalised word of a title outside it: "You      items, each whole
                enjoyed I and Robot" for "I, Robot")
``genre``       a genre word (GENRE_LEXICON)                         the item's genres, the shared genres
``person``      a name ("Steven Spielberg")                          the item's credits (description: "Directed
                                                                     by … Starring …") or its author
``number``      a figure ("25 of the 50", "1996", "the 90s")         the similar-people count, the item's year
``reaction``    what the film does to a viewer (funny, scary,        an item genre that carries that reaction
                moving, thrilling, "makes you laugh and cry")        (Comedy for humour, Horror for fear, …)
``acclaim``     reception and praise (acclaimed, award, classic,     nothing: the evidence holds no reviews
                masterpiece, unique, "complex themes")
``audience``    what others think (audiences, fans, popular)         the similar-people count, when the sentence
                                                                     is about people with a taste like theirs
``content``     any other content word ("alien creature")            the words of the evidence: its facts, the
                                                                     item's description and plot, the person's
                                                                     own words; or a close paraphrase of one of
                                                                     them (MiniLM, when a ``similar`` function
                                                                     is given)
``echo``        the prompt instead of the person ("The answer     never
                is", "The person asked why …", "You asked: …")
``relation``    how titles relate, wrongly: the item among what    never
                the person liked ("You liked Heat and Fargo",
                "Heat and Fargo sit close, which you enjoyed"),
                another title as what the item is or is about
                ("Men in Black is a Batman and Robin")
``fragment``    a sentence that starts mid-phrase (": Heat,       never
                Babe.", "and you liked …") or is a clause
                without its sentence ("If you liked Heat.")
``repeat``      the same sentence again, a phrase right after        never
                itself ("horror and horror"), a phrase a third time
==============  ===================================================  ===========================================

A sentence is supported when all its claims are. :meth:`ClaimChecker.check` returns every
sentence with its claims, so callers can drop the failing ones (``Explainer.explain``) or count
them (``chatrec eval-explain``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from tools.candidates import genre_key
from tools.chat import SENTENCE_BREAK
from tools.resolve import match_key
from tools.vocabulary import GENRE_ADJECTIVE, GENRE_LEXICON, GENRE_PLURAL

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")

# Words that frame a recommendation without saying anything about the item: the person, the
# agent, liking, watching, resembling. They need no evidence.
FRAMING = frozenset("""
a an the and or but nor so yet if then than as of to in on at by for with from into about over after before
since because while though although also too very really just quite rather more most much many some any
all both each every either neither this that these those it its it's itself they them their theirs there
here he him his she her hers we us our you your yours you're you've you'll i me my i'm i'd i've
is are was were be been being am do does did done has have had having will would shall should can could
may might must not no yes one ones what which who whom whose why how when where what's that's
like liked likes liking love loved loves enjoy enjoyed enjoys enjoying enjoyment fan favourite
favourites favorite favorites prefer preferred taste tastes watch watched watching watcher see seen saw
recommend recommended recommends recommending recommendation recommendations suggest suggested suggestion
pick picks picked choice choose option think thought guess sure probably perhaps maybe likely
similar similarly close closer closest near nearer nearest related resemble resembles alike same well
film films movie movies picture pictures book books title titles item items story stories tale one
here list reason reasons why because share shares shared sharing common together kind sort type style
people person someone others other users user viewers-like-you graph score scores placed place
new few ratings rated description meaning asked ask asking want wanted looking look
good fit fits suit suits suited worth try give go get got make makes made put sits sit sitting
something anything way ways lot lots bit little much both either own
genre genres set released release came out year years decade era
lead leads led leading mention mentioned mentions said say says told tell
combines combine combining mix mixes mixture blend blends blending elements element fiction anyone everything
directed direct director directors written wrote writer author star stars starring starred plays played cast
role roles actor actors actress produced producer narrated
""".split())

# A reaction a sentence says the item causes, and the genres that carry it.
REACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "humour": (("funny", "hilarious", "humor", "humour", "humorous", "laugh", "laughs", "laughing", "laughter",
                "witty", "joke", "jokes", "comic", "comical", "lighthearted", "light-hearted", "amusing",
                "goofy", "silly", "charming"), ("Comedy",)),
    "fear": (("scary", "scare", "scares", "terrifying", "frightening", "creepy", "chilling", "spooky", "eerie",
              "haunting", "disturbing"), ("Horror", "Thriller")),
    "suspense": (("suspense", "suspenseful", "thrilling", "gripping", "tense", "nail-biting", "twist", "twists",
                  "twisty", "intrigue", "intriguing", "mysterious"), ("Thriller", "Mystery", "Crime", "Horror",
                                                                        "Film-Noir")),
    "excitement": (("exciting", "action-packed", "adrenaline", "explosive", "epic", "thrills", "adventurous"),
                   ("Action", "Adventure", "War", "Western", "Sci-Fi")),
    "emotion": (("moving", "touching", "heartwarming", "heart-warming", "heartbreaking", "emotional",
                 "tearjerker", "tear-jerker", "tears", "cry", "crying", "cried", "weep", "poignant", "tender",
                 "sad", "uplifting", "inspiring", "inspirational", "feel-good", "dramatic"), ("Drama", "Romance")),
    "wonder": (("magical", "enchanting", "whimsical", "imaginative", "fantastical"),
               ("Fantasy", "Animation", "Children's", "Musical")),
    "darkness": (("dark", "gritty", "grim", "violent", "brutal", "bleak"),
                 ("Crime", "Film-Noir", "Horror", "Thriller", "War")),
}

# Reception, praise and craft: claims about how good or well-known an item is. The evidence holds
# no reviews, ratings text or awards, so none of these is ever supported.
ACCLAIM = frozenset("""
acclaimed acclaim critics critic critical critically award awards award-winning oscar oscars academy nominated
nomination nominations masterpiece masterpieces classic classics cult legendary legend iconic timeless beloved
celebrated renowned famous famed praised hailed blockbuster box-office hit smash success successful
best greatest finest top-rated must-see brilliant brilliantly excellent outstanding superb stunning masterful
masterfully amazing wonderful great fantastic incredible unforgettable remarkable unique perfect perfectly
powerful beautiful beautifully impressive memorable groundbreaking innovative captivating compelling engaging
entertaining enjoyable delightful fun fascinating clever smart witty-dialogue thought-provoking
well-written well-acted well-made performance performances acting acted cinematography soundtrack
visuals visual effects special script screenplay dialogue writing directing direction storytelling
complex themes theme deep depth profound sophisticated mature original originality fresh quality
favourite-of loved-by admired revered underrated overrated must-watch must-see must essential
""".split())

# What others think: supported only by the similar-people count, about people with a taste like theirs.
AUDIENCE = frozenset("audience audiences viewers everyone everybody crowd crowds popular popularity "
                     "generations millions fans".split())
# the prompt talked about instead of the person talked to: "The answer is …", "The person asked why …"
_ECHO = re.compile(r"\b(?:the (?:person|user|question|answer|facts?|prompt)|(?:they|person|user|you) asked|"
                   r"answer is|answer to|their tastes?|they (?:liked?|loved?|enjoyed|asked|want(?:ed)?))\b", re.I)
# with the item written ITEM and any other title TITLE (ClaimChecker._relations):
# the item is new to them, so never among what they liked or saw ...
_LIKED = r"\byou(?:'ve| have)?\s+(?:really\s+|also\s+)?(?:liked?|loved?|enjoyed|watched|saw|seen)\s+(?:the (?:movie|film|book)\s+)?"
_ITEM_AS_LIKED = re.compile(  # right after the verb, last of a list joined by "and", or ending the sentence
    _LIKED + r"(?:ITEM\b|(?:TITLE\s*(?:,\s*|\s+and\s+|,\s*and\s+))*TITLE(?:,\s*and|\s+and)\s+ITEM\b"
    r"(?!\s+(?:is|was|sits|lies|should|could|may|might|will|would|fits|suits|has)\b)"  # not a clause of its own
    r"|(?:TITLE\s*(?:,\s*|\s+and\s+|,\s*and\s+))+ITEM\s*(?:[.!?;]|$))", re.I)
# ... nor one of a list the sentence says they liked ("Heat and ITEM sit close to them, which you enjoyed")
_TITLE_LIST = re.compile(r"\b(?:ITEM|TITLE)(?:\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)(?:ITEM|TITLE)\b)+")
_WHICH_THEY_LIKED = re.compile(r"^[^.;!?]*?,?\s*which you(?:'ve| have)?\s+(?:really\s+)?"
                               r"(?:liked?|loved?|enjoyed|watched|saw|seen)\b", re.I)
# a clause without its sentence: it opens with a conjunction, or is only the "if" / "since" part
_OPENS_MID_SENTENCE = re.compile(r"(?:and|but|or|which|that|so|nor)\b")
_CLAUSE_ONLY = re.compile(r"(?:If|Since|Although|Though|While|Unless)\b[^,;:]*[.!?]?$")
# the item likened to itself anywhere in a sentence: "Fargo sits near Fargo", "Scream is a comedy
# film, like Scream" (the tuned explainer's, read in chat)
_ITEM_NEAR_ITSELF = re.compile(r"\bITEM\b[^.!?]*?\b(?:near|close to|like|similar to|akin to)\s+ITEM\b", re.I)
# ... and another title is not what it is or what it is about
_TITLE_AS_ITEM = re.compile(r"\bITEM\s+(?:is|was)\s+(?:(?:a|an|the)\s+)?(?:(?:film|movie|story|book)\s+(?:about|of)\s+)?TITLE\b",
                            re.I)
_ABOUT_THEIR_TASTE = re.compile(r"\b(similar|taste|tastes|like yours|like you)\b", re.I)

NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
                "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000, "half": -1,
                "dozen": 12}
_DECADE = re.compile(r"^(?:(?:19|20)?(\d)0)['’]?s$")

# a phrase of one to six words said again right after itself, bare or joined by "and", "or", "&" or a
# comma ("a blend of horror and horror") — the rule of tools.chat.drop_repeats
_RUN = re.compile(r"(?<!\w)(\w[\w'’-]*(?:[\s:]+\w[\w'’-]*){0,5})"
                  r"(?:(?:\s*[,:;]\s*|\s+(?:and|or|&)\s+|\s+)\1(?![\w'’-]))+", re.I)
_PHRASE = 4  # a phrase of this many words said a third time is a loop
_SAME = 90  # rapidfuzz ratio at which a sentence repeats an earlier one


def _swap_titles(text: str, tokens: dict[str, str]) -> str:
    """``text`` with each title (a key of ``tokens``) written as its token, whole words, any case,
    the longest title first (so "Alien" inside "Aliens" stays)."""
    for title in sorted(tokens, key=len, reverse=True):
        text = re.sub(r"(?<!\w)" + re.escape(title) + r"(?!\w)", tokens[title], text, flags=re.IGNORECASE)
    return text


def stem(word: str) -> str:
    """A crude, consistent stem: lower case, no possessive, no common suffix (both sides of every
    comparison are stemmed the same way, so consistency matters more than linguistics)."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s") or w.endswith("s'"):
        w = w[:-2] if w.endswith("'s") else w[:-1]
    if w.endswith("ies") and len(w) >= 7:
        return w[:-3] + "y"
    if re.search(r"(?:ss|x|z|ch|sh)es$", w):
        return w[:-2]
    if w.endswith("s") and len(w) >= 4 and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix, minimum in (("ing", 6), ("ed", 5), ("ly", 5)):
        if w.endswith(suffix) and len(w) >= minimum:
            return w[: len(w) - len(suffix)]
    return w


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_BREAK.split(" ".join(text.split())) if s.strip()]


def words_of(text: str) -> list[str]:
    return [w.strip("'’-") for w in _WORD.findall(text) if w.strip("'’-")]


@dataclass(frozen=True)
class Claim:
    kind: str  # title | genre | person | number | reaction | acclaim | audience | echo | relation | fragment |
    #            content | repeat
    text: str  # the words that assert it
    supported: bool
    by: str = ""  # the evidence field that carries it ("" when none does)

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass
class SentenceCheck:
    sentence: str
    claims: list[Claim] = field(default_factory=list)

    @property
    def supported(self) -> bool:
        return all(c.supported for c in self.claims)

    @property
    def problems(self) -> list[str]:
        return [str(c) for c in self.claims if not c.supported]

    @property
    def repeated(self) -> bool:
        return any(c.kind == "repeat" for c in self.claims)

    def to_dict(self) -> dict:
        return {"sentence": self.sentence, "supported": self.supported, "problems": self.problems}


@dataclass
class TextCheck:
    sentences: list[SentenceCheck]

    @property
    def kept(self) -> list[SentenceCheck]:
        return [s for s in self.sentences if s.supported]

    @property
    def kept_text(self) -> str:
        return " ".join(s.sentence for s in self.kept)

    @property
    def supported(self) -> bool:
        return bool(self.sentences) and all(s.supported for s in self.sentences)

    @property
    def problems(self) -> list[str]:
        return [p for s in self.sentences for p in s.problems]

    def to_dict(self) -> dict:
        return {"sentences": [s.to_dict() for s in self.sentences]}


@dataclass
class Support:
    """What the evidence can back, gathered once per explanation."""

    titles: dict[str, str]  # match key -> field ("item", "nearest")
    genres: dict[str, str]  # genre key -> field ("item genres", "shared genres")
    people: set[str]  # lower-case name words from the credits / author
    numbers: dict[int, str]  # value -> field
    vocabulary: dict[str, str]  # stem -> field
    about_their_taste: bool  # the similar-people count is there and non-zero
    theirs: list[str] = field(default_factory=list)  # the person's items (titles) in the evidence
    surface: set[str] = field(default_factory=set)  # the evidence's words as written (lower case)


def credits(description: str | None) -> list[str]:
    """The names in a description's credits ("Directed by A. Starring B, C and D.")."""
    from tools.item_facts import credits_by_role

    return [name for names in credits_by_role(description).values() for name in names]


def _genre_words(genre: str) -> list[str]:
    return [*GENRE_LEXICON.get(genre, ()), genre, GENRE_ADJECTIVE.get(genre, ""), GENRE_PLURAL.get(genre, "")]


def support_of(ev, statements: Sequence[str] = ()) -> Support:
    """Everything the evidence ``ev`` (tools.explain.Evidence) can back; ``statements``: sentences
    built from the same evidence (its facts, the plain explanation) whose words are evidence too."""
    item = ev.item
    titles = {match_key(t): "item" for t in (item.title, *item.aliases) if t}
    titles |= {match_key(e["title"]): "nearest" for e in ev.nearest}
    bridge = getattr(ev, "bridge", None)  # a cross-domain pick's bridge: its title and author are evidence
    if bridge is not None:
        titles[match_key(bridge.through)] = "bridge"
    genres = {genre_key(g): "item genres" for g in item.genres}
    genres |= {genre_key(g): "shared genres" for g in ev.shared_genres}
    names = credits(item.description) + ([item.author] if item.author else []) + (
        [bridge.detail] if bridge is not None and bridge.detail else [])
    people = {w.lower() for n in names for w in words_of(n)}
    numbers: dict[int, str] = {}
    if ev.similar_users and ev.similar_users[0]:
        numbers[ev.similar_users[0]] = numbers[ev.similar_users[1]] = "similar people"
        numbers[-1] = "similar people"  # "half": only as a rough count of them
    if item.year:
        numbers[item.year] = numbers[item.year % 100 // 10 * 10] = numbers[item.year // 10 * 10] = "year"
    if ev.nearest:
        numbers.setdefault(len(ev.nearest), "nearest")
    for w in words_of(item.description or ""):
        value = _number(w.lower())
        if value is not None:
            numbers.setdefault(value, "description")
    vocab: dict[str, str] = {}

    surface: set[str] = set()

    def add(text: str, by: str) -> None:
        for w in words_of(text):
            vocab.setdefault(stem(w), by)
            if w.lower() not in FRAMING and by not in ("item", "nearest"):  # a title is named, not paraphrased
                surface.add(w.lower())

    for t in (item.title, *item.aliases):
        add(t, "item")
    for e in ev.nearest:
        add(e["title"], "nearest")
    for g in (*item.genres, *ev.shared_genres):
        for w in _genre_words(g):
            add(w, "genres")
    add(item.description or "", "description")
    add(item.author or "", "author")
    add(item.publisher or "", "publisher")
    add(item.domain or "", "item")
    for said in getattr(ev, "their_words", []) or []:
        add(said.get("said", ""), "their words")
        add(said.get("fact", ""), "their words")
    for s in (*ev.facts(), *statements):
        add(s, "facts")
    return Support(titles, genres, people, numbers, vocab,
                   bool(ev.similar_users and ev.similar_users[0]), [e["title"] for e in ev.nearest], surface)


Similar = Callable[[Sequence[str], Sequence[str]], dict[str, str]]


class ClaimChecker:
    """Checks explanations sentence by sentence against their evidence.

    ``spotter``: the catalogue's titles (tools.resolve.TitleSpotter), to find titles named.
    ``similar``: optional paraphrase support, ``(words, vocabulary) -> {word: the vocabulary word it
    paraphrases}`` (:func:`minilm_similar` uses the shipped MiniLM); without it a content word must
    be in the evidence (up to its stem)."""

    def __init__(self, spotter, similar: Similar | None = None) -> None:
        self.spotter, self.similar = spotter, similar

    def check(self, text: str, ev, statements: Sequence[str] = ()) -> TextCheck:
        support = support_of(ev, statements)
        out: list[SentenceCheck] = []
        said: dict[str, int] = {}
        earlier: list[str] = []
        for sentence in self._sentences(text, ev):
            masked = self._mask_titles(sentence, ev)  # a title's own words are no repeat ("Liar Liar")
            check = SentenceCheck(sentence, self._repeats(masked, earlier, said))
            check.claims += self._claims(sentence, ev, support)
            out.append(check)
            earlier.append(masked)
        return TextCheck(out)

    @staticmethod
    def _sentences(text: str, ev) -> list[str]:
        """:func:`sentences`, but a title's own "!", "?" or "." ("Airplane!", "Who Framed Roger
        Rabbit?") ends no sentence: the allowed titles are held out of the split."""
        from tools.explain import allowed_titles

        held = {t: f"\x00{n}\x00" for n, t in enumerate(t for t in allowed_titles(ev) if t and re.search(r"[.!?]", t))}
        out = sentences(_swap_titles(text, held))
        for title, token in held.items():
            out = [s.replace(token, title) for s in out]
        return out

    def _mask_titles(self, sentence: str, ev) -> str:
        """``sentence`` with each title it names (allowed or not) as one word of its own (``Title0``), so
        a title said over and over still repeats ("Title0: Title0: Title0") but its own words do not."""
        from tools.explain import allowed_titles

        spotted = [item.title for _, item in (self.spotter.spot(sentence) if self.spotter is not None else [])]
        parts = {p.strip() for t in [*allowed_titles(ev), *spotted] if t for p in [t, *re.split(r":\s|\s-\s", t)]}
        return _swap_titles(sentence, {title: f"Title{n}" for n, title in enumerate(p for p in parts if len(p) >= 3)})

    @staticmethod
    def _relations(sentence: str, ev, spotted: Sequence[str]) -> list[Claim]:
        """Claims on how the item relates to other titles that no evidence field can carry."""
        from tools.explain import allowed_titles

        own = {t for t in (ev.item.title, *ev.item.aliases) if t}
        others = {t for t in (*allowed_titles(ev), *spotted) if t and t not in own}
        masked = _swap_titles(sentence, {t: "TITLE" for t in others} | {t: "ITEM" for t in own})
        claims = []
        grouped = any("ITEM" in m.group(0) and _WHICH_THEY_LIKED.match(masked[m.end():])
                      for m in _TITLE_LIST.finditer(masked))
        if _ITEM_AS_LIKED.search(masked) or grouped:
            claims.append(Claim("relation", f"{ev.item.title} among what they liked", False))
        if _TITLE_AS_ITEM.search(masked):
            claims.append(Claim("relation", f"{ev.item.title} as another title", False))
        if _ITEM_NEAR_ITSELF.search(masked):
            claims.append(Claim("relation", f"{ev.item.title} near itself", False))
        return claims

    @staticmethod
    def _broken_titles(sentence: str, rest: str, support: Support, named: set[str]) -> list[Claim]:
        """A lone capitalised word of an allowed title left in ``rest`` (the sentence with whole
        titles blanked) is a title broken apart ("You enjoyed I and Robot"): unsupported, unless it
        is the sentence's first word or in a name (``named``: runs of capitalised words, checked as
        a person or as the title's own name, "an adventure with Indiana Jones")."""
        first = next(iter(words_of(sentence)), "")
        claims = []
        for n, word in enumerate(words_of(rest)):
            low = word.lower()
            if (not word[0].isupper() or low in _NOT_NAMES or low in _GENRE_WORD_KEYS or low in support.people
                    or low in named or match_key(word) in support.titles or (n == 0 and word == first)):
                continue
            if support.vocabulary.get(stem(word)) in ("item", "nearest"):
                claims.append(Claim("title", f"part of a title: {word}", False))
        return claims

    # -- repetition ---------------------------------------------------------------------------

    @staticmethod
    def _repeats(sentence: str, earlier: list[str], said: dict[str, int]) -> list[Claim]:
        claims = []
        key = " ".join(w.lower() for w in words_of(sentence))
        if any(fuzz.ratio(key, " ".join(w.lower() for w in words_of(e))) >= _SAME for e in earlier):
            claims.append(Claim("repeat", "the same sentence again", False))
        m = _RUN.search(sentence)
        if m and not m.group(1).isdigit():
            claims.append(Claim("repeat", m.group(0), False))
        words = key.split()
        phrases = [" ".join(words[i:i + _PHRASE]) for i in range(len(words) - _PHRASE + 1)]
        for p in phrases:
            said[p] = said.get(p, 0) + 1
        looping = sorted({p for p in phrases if said[p] >= 3})  # a phrase a third time, here or before
        if looping:
            claims.append(Claim("repeat", looping[0], False))
        return claims

    # -- claims -------------------------------------------------------------------------------

    def _claims(self, sentence: str, ev, support: Support) -> list[Claim]:
        from tools.explain import _GENRE_PATTERNS, allowed_titles, blank_titles, genres_named

        claims: list[Claim] = []
        # titles
        allowed = [k for k in support.titles if k]
        spotted = self.spotter.spot(sentence) if self.spotter is not None else []
        for key, _ in spotted:
            if key in support.titles:
                claims.append(Claim("title", key, True, support.titles[key]))
            elif any(key in a for a in allowed):  # "Alien" inside "Aliens": the guard's rule
                claims.append(Claim("title", key, True, "item"))
            elif key not in _GENRE_WORD_KEYS:
                claims.append(Claim("title", key, False))
        rest = blank_titles(sentence, [*allowed_titles(ev),
                                       *(item.title for key, item in spotted if key not in _GENRE_WORD_KEYS)])
        # genres
        for genre in sorted(genres_named(rest)):
            by = support.genres.get(genre_key(genre), "")
            claims.append(Claim("genre", genre, bool(by), by))
        for genre, pattern in _GENRE_PATTERNS.items():  # the same genre twice in a sentence ("horror … horror")
            if len(pattern.findall(rest.replace("’", "'"))) >= 2:
                claims.append(Claim("repeat", f"{genre} named twice", False))
        words = words_of(rest)
        lower = [w.lower().replace("’", "'") for w in words]
        # names: two or more capitalised words in a row that are no title left after blanking
        named = set()
        for name in capitalised_names(rest):
            parts = [w.lower() for w in words_of(name)]
            ok = all(w in support.people for w in parts)
            in_title = not ok and all(support.vocabulary.get(stem(w)) in ("item", "nearest") for w in parts)
            claims.append(Claim("person", name, ok or in_title, "credits" if ok else "title" if in_title else ""))
            named |= {w.lower() for w in words_of(name)}
        # numbers
        for w in lower:
            value = _number(w)
            if value is not None:
                by = support.numbers.get(value, "")
                claims.append(Claim("number", w, bool(by), by))
        # reactions, acclaim, audience
        genres = {genre_key(g) for g in (*ev.item.genres, *ev.shared_genres)}
        phrase = " ".join(lower)
        for kind, (cues, carriers) in REACTIONS.items():
            for cue in cues:
                if re.search(r"(?<![\w-])" + re.escape(cue) + r"(?![\w-])", phrase):
                    by = next((g for g in carriers if genre_key(g) in genres), "")
                    if not by and stem(cue) in support.vocabulary and support.vocabulary[stem(cue)] in (
                            "their words", "description"):
                        by = support.vocabulary[stem(cue)]
                    claims.append(Claim("reaction", cue, bool(by), f"genre {by}" if by in GENRE_LEXICON else by))
        reaction_words = {c for cues, _ in REACTIONS.values() for c in cues}
        for w in lower:
            if w in ACCLAIM and w not in reaction_words:
                claims.append(Claim("acclaim", w, False))
            elif w in AUDIENCE:
                ok = support.about_their_taste and _ABOUT_THEIR_TASTE.search(sentence) is not None
                claims.append(Claim("audience", w, ok, "similar people" if ok else ""))
        echo = _ECHO.search(sentence)
        if echo:
            claims.append(Claim("echo", echo.group(0), False))
        claims += self._relations(sentence, ev, [item.title for key, item in spotted if key not in _GENRE_WORD_KEYS])
        opening = sentence.strip()
        by_title = any(opening.lower().startswith(t.lower()) for t in allowed_titles(ev) if t)  # "*batteries not included"
        if not by_title and (re.match(r"[^\w\"'“‘(]", opening) or _OPENS_MID_SENTENCE.match(opening)
                             or _CLAUSE_ONLY.match(opening)):
            claims.append(Claim("fragment", opening[:20], False))
        claims += self._broken_titles(sentence, rest, support, named)
        # everything else: content words the evidence must hold
        typed = ACCLAIM | AUDIENCE | reaction_words
        content = []
        for w, low in zip(words, lower):
            if (low in FRAMING or low in typed or _number(low) is not None or low in support.people or low in named
                    or stem(low) in FRAMING or len(low) < 3):
                continue
            if stem(low) in support.vocabulary or low in _GENRE_WORD_KEYS:
                continue
            content.append(low)
        content = list(dict.fromkeys(content))
        paraphrased = self.similar(content, sorted(support.surface)) if (content and self.similar) else {}
        for w in content:
            if w in paraphrased:
                claims.append(Claim("content", w, True, f"close to '{paraphrased[w]}'"))
            else:
                claims.append(Claim("content", w, False))
        return claims


_GENRE_WORD_KEYS = {match_key(w) for words in GENRE_LEXICON.values() for w in words}
_UPPER, _LOWER = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"  # Latin letters, accented too ("García")
# "Spielberg", "O'Brien", "Jean-Luc", "McAdams"
_CAPITALISED = rf"[{_UPPER}][{_LOWER}]+(?:[{_UPPER}][{_LOWER}]+)?(?:[-'’][{_UPPER}]?[{_LOWER}]+)?"
_NAME = re.compile(r"(?<![\w'’])(" + _CAPITALISED + r"(?:\s+(?:[A-Z]\.\s+)?" + _CAPITALISED + r")+)")
_NOT_NAMES = {w.lower() for w in ("The", "A", "An", "If", "It", "Its", "This", "That", "You", "Your", "I", "We",
                                  "They", "He", "She", "And", "But", "So", "Since", "As", "Both", "Like", "With",
                                  "Try", "People", "Fans", "Because", "Here", "There", "What", "When", "While",
                                  # a question's first word ("Is Samuel L. Jackson in it?")
                                  "Who", "Is", "Was", "Are", "Were", "Does", "Did", "Do", "Has", "Have", "Can",
                                  "Could", "Tell", "Any", "Hey", "Hi")}


def capitalised_names(text: str) -> list[str]:
    """Runs of two or more capitalised words ("Steven Spielberg"), leading function words dropped."""
    out = []
    for m in _NAME.finditer(text):
        parts = m.group(1).split()
        while parts and parts[0].lower() in _NOT_NAMES:
            parts = parts[1:]
        if len(parts) >= 2 and not any(p.lower() in _GENRE_WORD_KEYS for p in parts):
            out.append(" ".join(parts))
    return out


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    if word in NUMBER_WORDS and word not in ("one",):  # "one" is mostly a pronoun ("one of")
        return NUMBER_WORDS[word]
    m = _DECADE.match(word)
    if m:
        return int(m.group(1)) * 10
    return None


# ------------------------------------------------------------------------ paraphrase support

PARAPHRASE_COSINE = 0.75  # MiniLM cosine of two words at which one stands for the other


_CACHED: dict[str, object] = {}  # word -> its MiniLM vector (words repeat across explanations)
_CACHE_LIMIT = 50_000


def minilm_similar(words: Sequence[str], vocabulary: Sequence[str], threshold: float = PARAPHRASE_COSINE,
                   ) -> dict[str, str]:
    """``{word: vocabulary word}`` for each word whose all-MiniLM-L6-v2 embedding is within
    ``threshold`` cosine of one of the vocabulary's (the shipped model; vectors cached per word)."""
    import numpy as np

    from tools.embeddings import embed

    words, vocabulary = list(words), [v for v in vocabulary if len(v) >= 3]
    if not words or not vocabulary:
        return {}
    missing = [w for w in dict.fromkeys([*words, *vocabulary]) if w not in _CACHED]
    if missing:
        if len(_CACHED) + len(missing) > _CACHE_LIMIT:
            _CACHED.clear()
            missing = list(dict.fromkeys([*words, *vocabulary]))
        for w, v in zip(missing, embed(missing)):
            _CACHED[w] = v
    a = np.stack([_CACHED[w] for w in words])
    b = np.stack([_CACHED[v] for v in vocabulary])
    sims = a @ b.T
    out = {}
    for n, w in enumerate(words):
        j = int(sims[n].argmax())
        if sims[n, j] >= threshold:
            out[w] = vocabulary[j]
    return out


def names_any(text: str, titles: Iterable[str]) -> bool:
    """Whether ``text`` names one of ``titles`` (by match key)."""
    key = f" {match_key(text)} "
    return any(k and f" {k} " in key for k in (match_key(t) for t in titles))


__all__ = ["ACCLAIM", "AUDIENCE", "Claim", "ClaimChecker", "FRAMING", "REACTIONS", "SentenceCheck", "Support",
           "TextCheck", "capitalised_names", "credits", "minilm_similar", "names_any", "sentences", "stem", "support_of"]
