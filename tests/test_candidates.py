"""Candidates for a turn (tools/candidates.py) without a model: the constraints and how they relax."""

from __future__ import annotations

from tests.items import BABE, DUNE, FARGO, GODFATHER, HEAT
from tools.candidates import Constraint, genre_key


def test_constraints_admit_and_relax() -> None:
    nineties_crime = Constraint(("crime",), 1990, 1999, "movie")
    assert nineties_crime.admits(FARGO) and nineties_crime.admits(HEAT)
    assert not nineties_crime.admits(GODFATHER)  # 1972
    assert not nineties_crime.admits(BABE)  # no crime
    assert not nineties_crime.admits(DUNE)  # a book
    assert Constraint(("children's",)).admits(BABE) and genre_key("Sci-Fi") == genre_key("sci fi")
    assert Constraint(("sci-fi",), domain="book").admits(DUNE)  # books carry no genres: the query asks instead
    dropped = [what for what, _ in nineties_crime.relaxations()]
    assert dropped == ["year", "genres", "year and genres"]
    assert all(c.domain == "movie" for _, c in nineties_crime.relaxations())
