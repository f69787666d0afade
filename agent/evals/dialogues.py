"""Scripted dialogue evaluation: YAML dialogues run against the agent, each turn checked.

A file holds one dialogue, or several under ``dialogues:``::

    name: animation-fan
    user: null            # or a dataset user id as a string, e.g. "196"
    turns:
      - say: "I loved Toy Story and Aladdin. What should I watch next?"
        expect:                       # every key optional
          intent: recommend           # recommend | explain | chitchat
          count: 5                    # exact number of items in the reply
          min_count: 3
          exclude_titles: ["Toy Story", "Aladdin"]
          include_any_titles: ["Lion King, The"]
          genres_any: ["Animation", "Comedy"]
          genres_min_share: 0.6       # share of items having one of genres_any (default 0.6)
          year_range: [1990, 1999]    # every item's year, inclusive
          domain: movie               # every item's domain: movie | book
          mentions_item: 2            # reply text names item 2 (1-based) of the previous turn's list
          mentions_any: ["Fargo"]     # reply text contains one of these, case-insensitive
          not_empty: true             # reply text is not empty

Optional keys beyond that contract: ``description`` (a dialogue's purpose, in words),
``genres_none`` (no item has any of these genres: "I hate horror"), ``genres_all`` (the share
``genres_min_share`` of the items has every one of these: "a romantic comedy"), ``no_repeats: true``
(no item of any earlier turn's list comes back: "something else") and ``mentions_none`` (the
reply text contains none of these: "couldn't find" where every title named is in the catalogue).

Titles compare after :func:`normalize_title`, genres after :func:`normalize_genre`. A check on
the items themselves (``include_any_titles``, ``genres_any``, ``year_range``, ``domain``)
fails on a reply without items: the expectation says items were wanted. "The previous turn's
list" (``mentions_item``) is the items of the most recent earlier turn of the same dialogue
that had items (an explanation's one item counts).

Every file is read and validated before any dialogue runs; a problem is a
:class:`DialogueFileError` that names the file and line (``chatrec eval-dialogues`` exits 2).
Each dialogue runs in a fresh session; the report (:func:`run_dialogues`) is what
``--json`` writes, and :func:`format_table` is what the console shows.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tools.vocabulary import INTENTS, genre_key

if TYPE_CHECKING:  # the agent is heavy to import; checks and validation do not need it
    from agent.agent import Agent, Reply

DOMAINS = ("movie", "book")
DEFAULT_GENRES_MIN_SHARE = 0.6
DIALOGUE_KEYS = ("name", "description", "user", "turns")
TURN_KEYS = ("say", "expect")
# the order checks are run and reported in
EXPECT_KEYS = ("intent", "count", "min_count", "exclude_titles", "include_any_titles", "genres_any",
               "genres_min_share", "genres_none", "genres_all", "year_range", "domain", "no_repeats",
               "mentions_item", "mentions_any", "mentions_none", "not_empty")


# ------------------------------------------------------------------------------- normalisers

_TRAILING_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.*?),\s*(?P<article>the|a|an)$")


def normalize_title(title: str) -> str:
    """Lower-case, drop a trailing "(YYYY)", move a trailing ", The" / ", A" / ", An" to the
    front, drop everything that is not a letter or digit: "Fish Called Wanda, A (1988)" and
    "a fish called wanda" are both "afishcalledwanda"."""
    text = _TRAILING_YEAR.sub("", str(title).lower().strip()).strip()
    match = _TRAILING_ARTICLE.match(text)
    if match:
        text = f"{match['article']} {match['rest']}"
    return "".join(ch for ch in text if ch.isalnum())


def normalize_genre(genre: str) -> str:
    """Case-insensitive, "'s" and punctuation ignored: "Children's" = "childrens" = "children",
    "Sci-Fi" = "sci fi" = "scifi"."""
    return genre_key(str(genre))


def _without_article(key_title: str) -> str:
    """A title with a leading article dropped ("The Lion King" → "lionking"): a reply that says
    "Lion King" names the film."""
    text = _TRAILING_YEAR.sub("", str(key_title).lower().strip()).strip()
    match = _TRAILING_ARTICLE.match(text)
    text = match["rest"] if match else re.sub(r"^(the|a|an)\s+", "", text)
    return "".join(ch for ch in text if ch.isalnum())


# ------------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def _titles(items: Sequence[dict]) -> str:
    return "; ".join(f"{i.get('title')} ({i.get('year')})" for i in items) or "no items"


def check_intent(expected: str, intent: str) -> Check:
    return Check("intent", intent == expected, f"{intent}" if intent == expected else f"expected {expected}, got {intent}")


def check_count(expected: int, items: Sequence[dict]) -> Check:
    n = len(items)
    return Check("count", n == expected, f"{n} items" + ("" if n == expected else f", expected exactly {expected}"))


def check_min_count(expected: int, items: Sequence[dict]) -> Check:
    n = len(items)
    return Check("min_count", n >= expected, f"{n} items" + ("" if n >= expected else f", expected at least {expected}"))


def check_exclude_titles(titles: Sequence[str], items: Sequence[dict]) -> Check:
    banned = {normalize_title(t): t for t in titles}
    found = [i["title"] for i in items if normalize_title(i.get("title") or "") in banned]
    return Check("exclude_titles", not found, f"the reply has {', '.join(found)}" if found else "none of them")


def check_include_any_titles(titles: Sequence[str], items: Sequence[dict]) -> Check:
    wanted = {normalize_title(t) for t in titles}
    found = [i["title"] for i in items if normalize_title(i.get("title") or "") in wanted]
    if found:
        return Check("include_any_titles", True, f"has {', '.join(found)}")
    return Check("include_any_titles", False, f"none of {', '.join(titles)} in: {_titles(items)}")


def _genre_keys(item: dict) -> set[str]:
    return {normalize_genre(g) for g in item.get("genres") or []}


def _genre_share(name: str, genres: Sequence[str], items: Sequence[dict], min_share: float, every: bool) -> Check:
    """The share of ``items`` of any (``every``: all) of ``genres``, against ``min_share``."""
    if not items:
        return Check(name, False, "no items to check")
    wanted = {normalize_genre(g) for g in genres}
    misses = [i for i in items if not (wanted <= _genre_keys(i) if every else _genre_keys(i) & wanted)]
    hits = len(items) - len(misses)
    share = hits / len(items)
    passed = share >= min_share - 1e-9
    joined = (" and " if every else " or ").join(genres)
    detail = f"{hits}/{len(items)} items have {joined} ({share:.2f}, need {min_share:.2f})"
    if not passed:
        detail += "; without: " + "; ".join(f"{i.get('title')} [{', '.join(i.get('genres') or []) or 'no genres'}]"
                                           for i in misses)
    return Check(name, passed, detail)


def check_genres_any(genres: Sequence[str], items: Sequence[dict],
                     min_share: float = DEFAULT_GENRES_MIN_SHARE) -> Check:
    return _genre_share("genres_any", genres, items, min_share, every=False)


def check_genres_all(genres: Sequence[str], items: Sequence[dict],
                     min_share: float = DEFAULT_GENRES_MIN_SHARE) -> Check:
    return _genre_share("genres_all", genres, items, min_share, every=True)


def check_genres_none(genres: Sequence[str], items: Sequence[dict]) -> Check:
    banned = {normalize_genre(g) for g in genres}
    found = [f"{i.get('title')} [{', '.join(i.get('genres') or [])}]" for i in items if _genre_keys(i) & banned]
    return Check("genres_none", not found, "; ".join(found) if found else f"no item is {' or '.join(genres)}")


def check_year_range(year_range: Sequence[int], items: Sequence[dict]) -> Check:
    low, high = year_range
    if not items:
        return Check("year_range", False, "no items to check")
    outside = [i for i in items if not (isinstance(i.get("year"), int) and low <= i["year"] <= high)]
    if outside:
        return Check("year_range", False, f"outside {low}–{high}: {_titles(outside)}")
    return Check("year_range", True, f"all {len(items)} in {low}–{high}")


def check_domain(domain: str, items: Sequence[dict]) -> Check:
    if not items:
        return Check("domain", False, "no items to check")
    other = [f"{i.get('title')} ({i.get('domain')})" for i in items if i.get("domain") != domain]
    return Check("domain", not other, f"not {domain}s: {'; '.join(other)}" if other else f"all {len(items)} {domain}s")


def check_no_repeats(items: Sequence[dict], earlier: Iterable[Sequence[dict]]) -> Check:
    seen = {i["item_id"] for turn in earlier for i in turn}
    again = [i["title"] for i in items if i["item_id"] in seen]
    return Check("no_repeats", not again, f"shown before: {', '.join(again)}" if again else "all new")


def check_mentions_item(position: int, text: str, previous: Sequence[dict] | None) -> Check:
    if not previous:
        return Check("mentions_item", False, "no earlier turn had items to point into")
    if not 1 <= position <= len(previous):
        return Check("mentions_item", False, f"the previous list has {len(previous)} items, not {position}")
    title = previous[position - 1].get("title") or ""
    said = normalize_title(text)
    keys = {k for k in (normalize_title(title), _without_article(title)) if k}
    if any(k in said for k in keys):
        return Check("mentions_item", True, f"names item {position}, {title!r}")
    return Check("mentions_item", False, f"does not name item {position}, {title!r}")


def _said(phrases: Sequence[str], text: str) -> list[str]:
    lower = text.lower()
    return [p for p in phrases if p.lower() in lower]


def check_mentions_any(phrases: Sequence[str], text: str) -> Check:
    found = _said(phrases, text)
    return Check("mentions_any", bool(found), f"says {found[0]!r}" if found
                 else f"says none of {', '.join(repr(p) for p in phrases)}")


def check_mentions_none(phrases: Sequence[str], text: str) -> Check:
    found = _said(phrases, text)
    return Check("mentions_none", not found, f"says {found[0]!r}" if found
                 else f"says none of {', '.join(repr(p) for p in phrases)}")


def check_not_empty(text: str) -> Check:
    return Check("not_empty", bool(text.strip()), f"{len(text.strip())} characters" if text.strip() else "empty reply")


def run_checks(expect: dict, outcome: dict, earlier: Sequence[Sequence[dict]]) -> list[Check]:
    """All the checks ``expect`` asks for on one turn's outcome (``{"intent", "reply", "items"}``);
    ``earlier`` are the item lists of the dialogue's earlier turns, in order."""
    items, text = outcome["items"], outcome["reply"]
    previous = next((turn for turn in reversed(earlier) if turn), None)
    share = expect.get("genres_min_share", DEFAULT_GENRES_MIN_SHARE)
    checks: dict[str, Callable[[Any], Check]] = {  # in EXPECT_KEYS order, each given the expected value
        "intent": lambda v: check_intent(v, outcome["intent"]),
        "count": lambda v: check_count(v, items),
        "min_count": lambda v: check_min_count(v, items),
        "exclude_titles": lambda v: check_exclude_titles(v, items),
        "include_any_titles": lambda v: check_include_any_titles(v, items),
        "genres_any": lambda v: check_genres_any(v, items, share),
        "genres_none": lambda v: check_genres_none(v, items),
        "genres_all": lambda v: check_genres_all(v, items, share),
        "year_range": lambda v: check_year_range(v, items),
        "domain": lambda v: check_domain(v, items),
        "no_repeats": lambda v: check_no_repeats(items, earlier),
        "mentions_item": lambda v: check_mentions_item(v, text, previous),
        "mentions_any": lambda v: check_mentions_any(v, text),
        "mentions_none": lambda v: check_mentions_none(v, text),
        "not_empty": lambda v: check_not_empty(text),
    }
    switches = ("no_repeats", "not_empty")  # `false` asks for nothing
    return [checks[key](expect[key]) for key in EXPECT_KEYS
            if key in expect and key in checks and (key not in switches or expect[key])]


# ------------------------------------------------------------------------------- loading


class DialogueFileError(Exception):
    """One or more problems in dialogue files, each ``file:line: reason``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class TurnSpec:
    say: str
    expect: dict
    line: int


@dataclass
class Dialogue:
    name: str
    user: str | None
    turns: list[TurnSpec]
    file: str
    line: int
    description: str = ""
    user_line: int = 0


class _Map(dict):
    """A mapping that remembers where it and each of its keys and values start (1-based lines)."""

    line = 0
    key_lines: dict
    value_lines: dict


class _Seq(list):
    line = 0
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line, out.key_lines, out.value_lines = node.start_mark.line + 1, {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                    key_node.start_mark) from None
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key], out.value_lines[key] = key_node.start_mark.line + 1, value_node.start_mark.line + 1
    return out


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.item_lines = node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Validator:
    def __init__(self, file: str) -> None:
        self.file, self.problems = file, []

    def error(self, line: int, reason: str) -> None:
        self.problems.append(f"{self.file}:{line}: {reason}")

    def strings(self, key: str, value: Any, line: int, non_empty: bool = True) -> bool:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            bad = next((n for n, v in enumerate(value) if not isinstance(v, str)), None) if isinstance(value, list) else None
            where = value.item_lines[bad] if bad is not None and isinstance(value, _Seq) else line
            what = f"item {bad + 1} is {_type_name(value[bad])}" if bad is not None else f"got {_type_name(value)}"
            self.error(where, f"expect.{key} must be a list of strings ({what})")
            return False
        if non_empty and not value:
            self.error(line, f"expect.{key} must not be an empty list")
            return False
        return True

    def expect(self, expect: Any, line: int, turn_no: int) -> dict:
        if expect is None:
            return {}
        if not isinstance(expect, dict):
            self.error(line, f"expect must be a mapping of checks, not {_type_name(expect)}")
            return {}
        lines = getattr(expect, "value_lines", {})
        key_lines = getattr(expect, "key_lines", {})
        for key, value in expect.items():
            at, key_at = lines.get(key, line), key_lines.get(key, line)
            if key not in EXPECT_KEYS:
                self.error(key_at, f"unknown expect key {key!r} (known: {', '.join(EXPECT_KEYS)})")
            elif key == "intent":
                if not isinstance(value, str):
                    self.error(at, f"expect.intent must be a string, not {_type_name(value)}")
                elif value not in INTENTS:
                    self.error(at, f"unknown intent {value!r} (one of {', '.join(INTENTS)})")
            elif key in ("count", "min_count"):
                if not _is_int(value) or value < 0:
                    self.error(at, f"expect.{key} must be a whole number >= 0, not {value!r}")
            elif key == "mentions_item":
                if not _is_int(value) or value < 1:
                    self.error(at, f"expect.mentions_item must be a position >= 1, not {value!r}")
                elif turn_no == 1:
                    self.error(at, "expect.mentions_item on the first turn: there is no earlier list to point into")
            elif key in ("exclude_titles", "include_any_titles", "genres_any", "genres_none", "genres_all",
                         "mentions_any", "mentions_none"):
                self.strings(key, value, at, non_empty=key != "exclude_titles")
            elif key == "genres_min_share":
                if not _is_number(value) or not 0 <= value <= 1:
                    self.error(at, f"expect.genres_min_share must be a number from 0 to 1, not {value!r}")
                elif "genres_any" not in expect and "genres_all" not in expect:
                    self.error(key_at, "expect.genres_min_share needs genres_any or genres_all")
            elif key == "year_range":
                if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)):
                    self.error(at, f"expect.year_range must be [first year, last year], two whole numbers, not {value!r}")
                elif value[0] > value[1]:
                    self.error(at, f"expect.year_range {value} is reversed: the first year comes first")
            elif key == "domain":
                if value not in DOMAINS:
                    self.error(at, f"expect.domain must be one of {', '.join(DOMAINS)}, not {value!r}")
            elif key in ("not_empty", "no_repeats"):
                if not isinstance(value, bool):
                    self.error(at, f"expect.{key} must be true or false, not {value!r}")
        return dict(expect)

    def turn(self, raw: Any, line: int, turn_no: int) -> TurnSpec | None:
        if not isinstance(raw, dict):
            self.error(line, f"turn {turn_no} must be a mapping with say (and optionally expect), not {_type_name(raw)}")
            return None
        key_lines, lines = getattr(raw, "key_lines", {}), getattr(raw, "value_lines", {})
        for key in raw:
            if key not in TURN_KEYS:
                self.error(key_lines.get(key, line), f"unknown turn key {key!r} (known: {', '.join(TURN_KEYS)})")
        if "say" not in raw:
            self.error(line, f"turn {turn_no} has no say (use say: \"\" for an empty message)")
            say = ""
        elif not isinstance(raw["say"], str):
            self.error(lines.get("say", line), f"say must be a string, not {_type_name(raw['say'])} "
                                               f"(quote it; use \"\" for an empty message)")
            say = ""
        else:
            say = raw["say"]
        expect = self.expect(raw.get("expect"), lines.get("expect", line), turn_no)
        return TurnSpec(say, expect, line)

    def dialogue(self, raw: Any, line: int, default_name: str) -> Dialogue | None:
        if not isinstance(raw, dict):
            self.error(line, f"a dialogue must be a mapping with name, user and turns, not {_type_name(raw)}")
            return None
        key_lines, lines = getattr(raw, "key_lines", {}), getattr(raw, "value_lines", {})
        line = getattr(raw, "line", line)
        for key in raw:
            if key not in DIALOGUE_KEYS:
                self.error(key_lines.get(key, line), f"unknown dialogue key {key!r} (known: {', '.join(DIALOGUE_KEYS)})")
        name = raw.get("name", default_name)
        if not isinstance(name, str) or not name.strip():
            self.error(lines.get("name", line), f"name must be a non-empty string, not {name!r}")
            name = default_name
        for key in ("description",):
            if key in raw and not isinstance(raw[key], str):
                self.error(lines.get(key, line), f"{key} must be a string, not {_type_name(raw[key])}")
        user = raw.get("user")
        if user is not None and not isinstance(user, str):
            self.error(lines.get("user", line), f"user must be a dataset user id as a string (quote it: \"{user}\") "
                                                f"or null, not {_type_name(user)}")
            user = None
        turns_raw = raw.get("turns")
        if "turns" not in raw:
            self.error(line, f"dialogue {name!r} has no turns")
            turns_raw = []
        elif not isinstance(turns_raw, list) or not turns_raw:
            self.error(lines.get("turns", line), f"turns must be a non-empty list of turns, not {turns_raw!r}")
            turns_raw = []
        item_lines = getattr(turns_raw, "item_lines", [line] * len(turns_raw))
        turns = [self.turn(t, getattr(t, "line", item_lines[n]), n + 1) for n, t in enumerate(turns_raw)]
        return Dialogue(name.strip(), user, [t for t in turns if t], self.file, line,
                        raw.get("description") or "", lines.get("user", line))


def _mark_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def load_file(path: str | Path) -> list[Dialogue]:
    """The dialogues in one file; :class:`DialogueFileError` lists every problem with its line."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DialogueFileError([f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise DialogueFileError([f"{file}: cannot read it ({exc.strerror or exc})"]) from None
    try:
        raw = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        line = _mark_line(exc)
        reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context:
            started = f" at line {context_mark.line + 1}" if context_mark is not None and line and \
                context_mark.line + 1 != line else ""
            reason = f"{reason} ({' '.join(context.split())}{started})"
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise DialogueFileError([f"{file}:{line or 1}: {kind}: {reason}"]) from None
    check = _Validator(file)
    stem = Path(path).stem
    if raw is None:
        check.error(1, "the file is empty: expected a dialogue (name, user, turns) or dialogues: [...]")
    elif not isinstance(raw, dict):
        check.error(getattr(raw, "line", 1), f"expected a dialogue mapping or dialogues: [...], not {_type_name(raw)}")
    elif "dialogues" in raw:
        extra = [k for k in raw if k != "dialogues"]
        for key in extra:
            check.error(raw.key_lines.get(key, 1), f"unknown key {key!r} next to dialogues: (put it inside a dialogue)")
        listed = raw["dialogues"]
        if not isinstance(listed, list) or not listed:
            check.error(raw.value_lines["dialogues"], f"dialogues must be a non-empty list of dialogues, not {listed!r}")
            listed = []
        lines = getattr(listed, "item_lines", [1] * len(listed))
        found = [check.dialogue(d, lines[n], f"{stem}#{n + 1}") for n, d in enumerate(listed)]
        dialogues = [d for d in found if d]
    else:
        dialogues = [d for d in [check.dialogue(raw, raw.line, stem)] if d]
    if check.problems:
        raise DialogueFileError(check.problems)
    return dialogues


def load_dialogues(paths: Iterable[str | Path]) -> list[Dialogue]:
    """Every dialogue of every file, in order; all files are validated and every problem is
    reported together (:class:`DialogueFileError`) before anything runs."""
    paths = list(paths)
    if not paths:
        raise DialogueFileError(["no dialogue files given"])
    dialogues, problems = [], []
    for path in paths:
        try:
            dialogues += load_file(path)
        except DialogueFileError as exc:
            problems += exc.problems
    if problems:
        raise DialogueFileError(problems)
    return dialogues


def check_users(dialogues: Sequence[Dialogue], has_user: Callable[[str], bool], dataset: str = "the data") -> None:
    """Every dialogue's user exists (checked once the agent is loaded, before anything runs)."""
    problems = [f"{d.file}:{d.user_line}: no user {d.user!r} in {dataset}" for d in dialogues
                if d.user is not None and not has_user(d.user)]
    if problems:
        raise DialogueFileError(problems)


# ------------------------------------------------------------------------------- running


def reply_items(reply: Reply) -> list[dict]:
    return [{"item_id": i.item_id, "title": i.title, "year": i.year, "genres": list(i.genres), "domain": i.domain}
            for i in reply.items]


def run_dialogue(agent: Agent, dialogue: Dialogue, on_turn: Callable[[int, dict], None] | None = None) -> dict:
    """One dialogue in a fresh session; a turn the agent fails on with an exception is recorded
    as a failed ``error`` check and the dialogue goes on."""
    session_id = f"eval-{uuid.uuid4().hex[:12]}"
    turns, earlier = [], []
    for n, spec in enumerate(dialogue.turns, 1):
        started = time.perf_counter()
        try:
            reply = agent.respond(session_id, spec.say, user_id=dialogue.user)
            outcome = {"say": spec.say, "intent": reply.intent, "reply": reply.text, "items": reply_items(reply)}
            timings = dict(reply.timings)
            error = None
        except Exception as exc:  # noqa: BLE001 - an evaluation reports failures, it does not stop on them
            outcome = {"say": spec.say, "intent": None, "reply": "", "items": []}
            timings = {}
            error = Check("error", False, f"the agent raised {type(exc).__name__}: {exc}")
        latency = time.perf_counter() - started
        checks = ([error] if error else []) + run_checks(spec.expect, outcome, earlier)
        # optional fields beyond the contract, for `chatrec report`: the expected intent (router
        # confusion matrix) and the agent's seconds per step (latency histograms). Rounded like the
        # agent's timings (4 places), so a step never reads longer than the turn that holds it.
        turn = {**outcome, "checks": [c.to_dict() for c in checks], "latency_s": round(latency, 4),
                "timings": timings}
        if "intent" in spec.expect:
            turn["expected_intent"] = spec.expect["intent"]
        turns.append(turn)
        earlier.append(outcome["items"])
        if on_turn:
            on_turn(n, turn)
    passed = all(c["passed"] for t in turns for c in t["checks"])
    return {"name": dialogue.name, "file": dialogue.file, "user": dialogue.user, "passed": passed,
            "session_id": session_id, "turns": turns}


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (pos - low), 3)


def summarize(dialogues: Sequence[dict]) -> dict:
    turns = [t for d in dialogues for t in d["turns"]]
    checks = [c for t in turns for c in t["checks"]]
    intent_checks = [c for c in checks if c["name"] == "intent"]
    latencies = [t["latency_s"] for t in turns]
    return {
        "dialogues": len(dialogues),
        "dialogues_passed": sum(1 for d in dialogues if d["passed"]),
        "checks": len(checks),
        "checks_passed": sum(1 for c in checks if c["passed"]),
        "intent_accuracy": (round(sum(c["passed"] for c in intent_checks) / len(intent_checks), 4)
                            if intent_checks else None),
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p95_s": _percentile(latencies, 95),
    }


def run_dialogues(agent: Agent, dialogues: Sequence[Dialogue],
                  progress: Callable[[str], None] | None = None) -> dict:
    """Run every dialogue; the report ``{"summary": {...}, "dialogues": [...]}``."""
    results = []
    for n, dialogue in enumerate(dialogues, 1):
        def on_turn(k: int, turn: dict, n=n, dialogue=dialogue) -> None:
            if progress:
                ok = sum(c["passed"] for c in turn["checks"])
                progress(f"[{n}/{len(dialogues)}] {dialogue.name}: turn {k}/{len(dialogue.turns)} "
                         f"{turn['intent']}, {ok}/{len(turn['checks'])} checks, {turn['latency_s']:.2f} s")

        results.append(run_dialogue(agent, dialogue, on_turn))
    return {"summary": summarize(results), "dialogues": results}


def exit_code(report: dict) -> int:
    """0 when every check passed, 1 otherwise."""
    s = report["summary"]
    return 0 if s["checks_passed"] == s["checks"] else 1


# ------------------------------------------------------------------------------- report


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_table(report: dict) -> str:
    """The console form: one row per dialogue, the failing checks under it, then the summary."""
    rows = report["dialogues"]
    width = max([len(d["name"]) for d in rows] + [8])
    lines = [f"{'result':<6}  {'dialogue':<{width}}  {'checks':>7}  turns", "-" * (width + 25)]
    for d in rows:
        checks = [c for t in d["turns"] for c in t["checks"]]
        ok = sum(c["passed"] for c in checks)
        lines.append(f"{'PASS' if d['passed'] else 'FAIL':<6}  {d['name']:<{width}}  {f'{ok}/{len(checks)}':>7}  "
                     f"{len(d['turns'])}")
        for n, turn in enumerate(d["turns"], 1):
            failed = [c for c in turn["checks"] if not c["passed"]]
            if not failed:
                continue
            lines.append(f"        turn {n} {_short(repr(turn['say']), 70)} → {turn['intent']}: "
                         f"{_short(turn['reply'], 120)!r}")
            lines += [f"          ✗ {c['name']}: {_short(c['detail'], 200)}" for c in failed]
    s = report["summary"]

    def pct(value):
        return "n/a" if value is None else f"{value:.1%}"

    def sec(value):
        return "n/a" if value is None else f"{value:.2f} s"

    lines += ["-" * (width + 25),
              f"dialogues passed  {s['dialogues_passed']}/{s['dialogues']}",
              f"checks passed     {s['checks_passed']}/{s['checks']}",
              f"intent accuracy   {pct(s['intent_accuracy'])}",
              f"latency per turn  p50 {sec(s['latency_p50_s'])}, p95 {sec(s['latency_p95_s'])}"]
    return "\n".join(lines)


def evaluate(agent: Agent | Callable[[], Agent], paths: Sequence[str | Path], json_out: str | Path | None = None,
             echo: Callable[[str], None] = print, progress: Callable[[str], None] | None = None) -> tuple[int, dict | None]:
    """What ``chatrec eval-dialogues`` does: validate every file, get the agent (``agent`` may be a
    function that builds it, called only once the files are valid), check the users, run, write
    the JSON report, show the table. Returns (exit code, report): 0 when every check passed, 1
    when one failed, 2 on a bad file (the problems are raised as :class:`DialogueFileError`)."""
    dialogues = load_dialogues(paths)
    if callable(agent) and not hasattr(agent, "respond"):
        agent = agent()
    recommender = agent.tool.recommender
    check_users(dialogues, recommender.has_user, f"the {getattr(recommender, 'dataset', 'graph')} data")
    report = run_dialogues(agent, dialogues, progress)
    if json_out is not None:
        from recsys.io import write_json

        write_json(Path(json_out), report)
    echo(format_table(report))
    return exit_code(report), report


__all__ = ["Check", "Dialogue", "DialogueFileError", "TurnSpec", "check_users", "evaluate", "exit_code",
           "format_table", "load_dialogues", "load_file", "normalize_genre", "normalize_title", "run_checks",
           "run_dialogue", "run_dialogues", "summarize"]
