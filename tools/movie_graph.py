"""A graph dataset over the catalogue's movies: MovieLens ratings, plus the films people named
together in conversations.

ml-100k ends in 1998 and ml-latest-small in 2016; people ask about newer films. A conversation
in which someone names films they like and is answered with others is a small user of its
own: its films belong together. This module writes such a dataset as a bring-your-own one
(``recsys.datasets.add_custom``: interactions.csv + items.csv under the data home), with the
catalogue's item ids ("ml-100k:50", "ml-latest-small:2571", "redial:83552"), so a graph trained
on it (`chatrec train --dataset NAME`) ranks the catalogue directly and the agent can use it
(``CHATREC_GRAPH_DATASET`` / ``Agent.from_settings(graph_dataset=...)``).

Conversations are read in ReDial's format (one JSON object a line: ``conversationId``,
``movieMentions`` {film id: name}, ``initiatorQuestions`` {film id: {"liked": 0/1/2}}); their
film ids are the ids a `chatrec items add … --source NAME` import gave the catalogue.
"""

from __future__ import annotations

import csv
import json
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

from recsys.data import DataError
from tools.catalog import Catalog, source_index

log = logging.getLogger(__name__)

DISLIKED = 0  # ReDial's questionnaire: liked 0 no, 1 yes, 2 did not say


def conversation_users(path: Path | str, catalog: Catalog, source: str = "redial") -> dict[str, list[str]]:
    """``{"<source>-dialogue:<id>": [catalogue item ids]}``: each conversation's films, except those
    the person asking said they did not like; films the catalogue does not hold are left out."""
    path = Path(path)
    to_catalogue = source_index(catalog, source)
    if not to_catalogue:
        raise DataError(f"the catalogue holds no {source} films: add them first with "
                        f"`chatrec items add FILE --source {source}`")
    users: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                films = row.get("movieMentions") or {}
                answers = row.get("initiatorQuestions") or {}
                key = f"{source}-dialogue:{row['conversationId']}"
                if not isinstance(films, dict) or not isinstance(answers, dict):
                    raise TypeError("movieMentions and initiatorQuestions must be objects")
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{n}: not a conversation in ReDial's format ({exc})") from None
            kept = []
            for film in films:
                item_id = to_catalogue.get(str(film))
                answer = answers.get(film) or {}
                if item_id and answer.get("liked") != DISLIKED and item_id not in kept:
                    kept.append(item_id)
            if len(kept) >= 2:  # one film alone says nothing about what goes together
                users[key] = kept
    log.info("%s: %d conversations with two or more catalogue films", path.name, len(users))
    return users


def rating_users(ratings, catalog: Catalog) -> tuple[list[tuple[str, str, float]], int]:
    """A MovieLens dataset's ratings with the catalogue's item ids; and how many ratings name
    a film the catalogue does not hold (left out)."""
    to_catalogue = source_index(catalog, ratings.name)
    rows, missing = [], 0
    values = ratings.ratings if ratings.ratings is not None else [None] * ratings.n_interactions
    for u, i, r in zip(ratings.users, ratings.items, values):
        item_id = to_catalogue.get(str(ratings.item_ids[i]))
        if item_id is None:
            missing += 1
            continue
        rows.append((f"{ratings.name}:{ratings.user_ids[u]}", item_id, 5.0 if r is None else float(r)))
    return rows, missing


def build_movie_graph(name: str, catalog: Catalog, ratings=None, conversations: Iterable[Path | str] = (),
                      source: str = "redial", home: Path | None = None) -> dict:
    """Write the dataset ``name`` (ratings of ``ratings``, an InteractionData, plus a user per
    conversation) under the data home; returns its counts."""
    from recsys.datasets import add_custom

    rows: list[tuple[str, str, float]] = []
    report: dict = {"dataset": name}
    if ratings is not None:
        rated, missing = rating_users(ratings, catalog)
        rows += rated
        report.update(ratings=ratings.name, rating_rows=len(rated), ratings_not_in_catalogue=missing)
    talked = 0
    for path in conversations:
        users = conversation_users(path, catalog, source)
        rows += [(user, item_id, 5.0) for user, films in users.items() for item_id in films]
        talked += len(users)
    if not rows:
        raise DataError("nothing to build from: give MovieLens ratings, conversations or both")
    items = sorted({item_id for _, item_id, _ in rows})
    with tempfile.TemporaryDirectory() as tmp:
        inter_path, items_path = Path(tmp) / "interactions.csv", Path(tmp) / "items.csv"
        with inter_path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["user_id", "item_id", "rating"])
            out.writerows(rows)
        with items_path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["item_id", "title", "year", "genres", "domain"])
            for item_id in items:
                item = catalog.get(item_id)
                out.writerow([item_id, item.title, item.year or "", "|".join(item.genres), item.domain])
        data = add_custom(name, inter_path, items_path, home)
    report.update(conversations=talked, users=data.n_users, items=data.n_items, interactions=data.n_interactions)
    log.info("movie graph dataset %s: %s", name, report)
    return report
