"""The 30 NBA teams and every spelling of them that input files use.

Box scores name teams by NBA.com abbreviation (``LAC``) and NBA.com name (``LA Clippers``); odds feeds use
full names (``Los Angeles Clippers``); other sources use nicknames (``Clippers``) or other abbreviations
(``BRK``, ``PHO``, ``GS``, ``NY``, ``UTAH``…). :func:`team_abbr` maps any of them to the box-score
abbreviation in Python; :func:`team_map_sql` and :func:`team_key_sql` do the same inside DuckDB, so ingest
resolves a whole column with one join instead of a per-row Python loop. Matching ignores case, accents, spaces
and punctuation (``"L.A. Clippers"`` = ``"la clippers"``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from nbaprops.errors import InputError
from nbaprops.ingest._validate import Column, shown
from nbaprops.storage.inputs import InputSession

# abbreviation, NBA.com name, other names (full names of odds feeds, nicknames, other abbreviations)
_TEAMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ATL", "Atlanta Hawks", ("Hawks",)),
    ("BKN", "Brooklyn Nets", ("Nets", "BRK", "BKLYN")),
    ("BOS", "Boston Celtics", ("Celtics",)),
    ("CHA", "Charlotte Hornets", ("Hornets", "CHO")),
    ("CHI", "Chicago Bulls", ("Bulls",)),
    ("CLE", "Cleveland Cavaliers", ("Cavaliers", "Cavs")),
    ("DAL", "Dallas Mavericks", ("Mavericks", "Mavs")),
    ("DEN", "Denver Nuggets", ("Nuggets",)),
    ("DET", "Detroit Pistons", ("Pistons",)),
    ("GSW", "Golden State Warriors", ("Warriors", "GS")),
    ("HOU", "Houston Rockets", ("Rockets",)),
    ("IND", "Indiana Pacers", ("Pacers",)),
    ("LAC", "LA Clippers", ("Los Angeles Clippers", "Clippers")),
    ("LAL", "Los Angeles Lakers", ("LA Lakers", "Lakers")),
    ("MEM", "Memphis Grizzlies", ("Grizzlies",)),
    ("MIA", "Miami Heat", ("Heat",)),
    ("MIL", "Milwaukee Bucks", ("Bucks",)),
    ("MIN", "Minnesota Timberwolves", ("Timberwolves", "Wolves")),
    ("NOP", "New Orleans Pelicans", ("Pelicans", "NO", "NOR")),
    ("NYK", "New York Knicks", ("Knicks", "NY")),
    ("OKC", "Oklahoma City Thunder", ("Thunder",)),
    ("ORL", "Orlando Magic", ("Magic",)),
    ("PHI", "Philadelphia 76ers", ("76ers", "Sixers", "Philadelphia Sixers")),
    ("PHX", "Phoenix Suns", ("Suns", "PHO")),
    ("POR", "Portland Trail Blazers", ("Trail Blazers", "Blazers", "Portland Blazers")),
    ("SAC", "Sacramento Kings", ("Kings",)),
    ("SAS", "San Antonio Spurs", ("Spurs", "SA")),
    ("TOR", "Toronto Raptors", ("Raptors",)),
    ("UTA", "Utah Jazz", ("Jazz", "UTAH")),
    ("WAS", "Washington Wizards", ("Wizards", "WSH")),
)

TEAM_NAMES: Mapping[str, str] = MappingProxyType({abbr: name for abbr, name, _ in _TEAMS})
"""Abbreviation → NBA.com team name, for the 30 current teams."""


def _team_key(value: str) -> str:
    text = unicodedata.normalize("NFKD", value.strip().lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", text)


def team_key_sql(expr: str) -> str:
    """SQL computing the matching key of a team spelling (the SQL twin of the Python key)."""
    return f"regexp_replace(strip_accents(lower(trim({expr}))), '[^a-z0-9]', '', 'g')"


_KEYS: Mapping[str, str] = MappingProxyType(
    {_team_key(spelling): abbr for abbr, name, others in _TEAMS for spelling in (abbr, name, *others)}
)


def team_abbr(value: str) -> str | None:
    """The box-score abbreviation of a team spelling, or ``None`` when the spelling is unknown.

    Args:
        value: an abbreviation (``LAC``, ``BRK``), a full name (``Los Angeles Clippers``) or a nickname
            (``Clippers``), in any case and spacing.
    """
    return _KEYS.get(_team_key(value))


def team_map_sql(*, stored: bool = False) -> str:
    """A SQL subquery with columns ``(team_key, team)``: every known spelling's key → abbreviation.

    Join it on ``team_key_sql(column)`` to resolve a whole column at once.

    Args:
        stored: also include the names the ``teams`` table learned from box scores (for a database cursor).
    """
    values = ", ".join(f"('{key}', '{abbr}')" for key, abbr in sorted(_KEYS.items()))
    static = f"SELECT * FROM (VALUES {values}) AS m(team_key, team)"
    if not stored:
        return f"({static})"
    learned = (
        f"SELECT DISTINCT {team_key_sql('team_name')}, team FROM teams "
        f"UNION SELECT DISTINCT {team_key_sql('team')}, team FROM teams"
    )
    # A static spelling wins over a learned one with the same key.
    return (
        f"(SELECT team_key, any_value(team ORDER BY prio) AS team FROM (SELECT *, 0 AS prio FROM ({static}) "
        f"UNION ALL SELECT *, 1 FROM ({learned})) GROUP BY team_key)"
    )


def check_teams(
    con: InputSession, view: str, columns: Mapping[str, Column | None], *, path: Path, stored: bool = False
) -> None:
    """Raise :class:`InputError` at the first non-empty team value in ``columns`` that names no known team.

    Args:
        view: a table read by :func:`~nbaprops.ingest._validate.read_text_table` (with ``__line``).
        columns: header column per team field (``None`` when absent).
    """
    mapping = team_map_sql(stored=stored)
    for column in (c for c in columns.values() if c is not None):
        raw = column.sql
        row = con.execute(
            f"""SELECT __line, {raw} FROM {view}
                WHERE nullif(trim({raw}), '') IS NOT NULL
                  AND {team_key_sql(raw)} NOT IN (SELECT team_key FROM {mapping})
                ORDER BY __line LIMIT 1"""
        ).fetchone()
        if row is not None:
            raise InputError(
                f"value {shown(row[1])} is not a known NBA team; use an abbreviation (LAC) or a full name "
                "(Los Angeles Clippers)",
                path=str(path),
                row=int(row[0]),
                column=column.label,
            )


def resolve_team_sql(expr: str, *, stored: bool = False) -> str:
    """A scalar SQL expression: the abbreviation of the team spelled by ``expr`` (NULL when empty/unknown)."""
    return f"(SELECT m.team FROM {team_map_sql(stored=stored)} m WHERE m.team_key = {team_key_sql(expr)})"
