"""The NBA's official injury report: snapshots kept point in time, and the snapshot a batch may read.

Input files (CSV, or JSON: an array of objects or one object a line) use the official report's own column
names, as ``nbainjuries`` returns them, plus the snapshot time:

``Report Time``
    when the report was published: ISO 8601 with a zone (``2025-02-12T17:00:00-05:00``) or without one,
    which is read as US Eastern (the report's own clock).
``Game Date``
    ``MM/DD/YYYY`` (ISO ``YYYY-MM-DD`` is accepted too).
``Game Time``, ``Matchup``
    as printed (``07:30 (ET)``, ``PHX@MIA``); optional.
``Team``
    the full team name (any spelling :mod:`~nbaprops.ingest.teams` knows).
``Player Name``
    ``Last, First`` as the report prints it (``Antetokounmpo, Giannis``); stored as ``First Last``.
``Current Status``
    Out, Doubtful, Questionable, Probable or Available.
``Reason``
    optional. A team row whose reason is ``NOT YET SUBMITTED`` (no player) is counted and left out.

Like every ingest, all files are validated first and stored in one transaction; the same file twice adds
nothing; a stored snapshot row (report time, game date, team, player) given again with another status or
reason is refused — a published report does not change, a later one supersedes it.

:func:`injury_snapshot` answers "who is listed for this date" for a batch: the rows of the **latest report
published at or before the batch's as_of** that lists that date. A report published later never reaches an
earlier prediction (the leakage tests check it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from nbaprops.errors import InputError
from nbaprops.ingest._loader import IngestSpec, Merged, SourceFile, load
from nbaprops.ingest._report import IngestReport
from nbaprops.ingest._validate import (
    Column,
    Field,
    check_values,
    column_label,
    column_sql,
    shown,
)
from nbaprops.ingest.names import lookup_sql
from nbaprops.ingest.teams import check_teams, resolve_team_sql
from nbaprops.schema import INJURY_STATUSES
from nbaprops.storage.inputs import Inputs, InputSession

log = logging.getLogger(__name__)

EASTERN = "America/New_York"

FIELDS: tuple[Field, ...] = (
    Field("Report Time", aliases=("report_time", "report_at")),
    Field("Game Date", aliases=("game_date",)),
    Field("Game Time", required=False, aliases=("game_time",)),
    Field("Matchup", required=False, aliases=("matchup",)),
    Field("Team", aliases=("team",)),
    Field("Player Name", aliases=("player_name",)),
    Field(
        "Current Status",
        aliases=("current_status", "status"),
        choices=tuple(s.lower() for s in INJURY_STATUSES),
    ),
    Field("Reason", required=False, aliases=("reason",)),
)
_KEY = ("report_at", "game_date", "team", "player_lookup")
_KEY_SQL = ", ".join(_KEY)
_ON = " AND ".join(f"s.{k} = n.{k}" for k in _KEY)
_STORED = (
    "report_at",
    "game_date",
    "game_time",
    "matchup",
    "team",
    "player_name",
    "player_lookup",
    "status",
    "reason",
    "source",
)


def report_time_sql(expr: str) -> str:
    """SQL: a report time as TIMESTAMPTZ — with its zone when written, else read as US Eastern (NULL if bad)."""
    v = f"nullif(trim({expr}), '')"
    return (
        f"(CASE WHEN regexp_matches({v}, '(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') THEN TRY_CAST({v} AS TIMESTAMPTZ) "
        f"ELSE timezone('{EASTERN}', TRY_CAST({v} AS TIMESTAMP)) END)"
    )


def game_date_sql(expr: str) -> str:
    """SQL: ``MM/DD/YYYY`` (or ISO) as DATE, NULL when neither."""
    v = f"nullif(trim({expr}), '')"
    return f"coalesce(CAST(try_strptime({v}, '%m/%d/%Y') AS DATE), TRY_CAST({v} AS DATE))"


def first_last_sql(expr: str) -> str:
    """SQL: ``Last, First`` → ``First Last`` (a name without a comma is kept as it is)."""
    v = f"trim({expr})"
    return (
        f"(CASE WHEN contains({v}, ',') THEN trim(split_part({v}, ',', 2)) || ' ' || trim(split_part({v}, ',', 1)) "
        f"ELSE {v} END)"
    )


def _check_parsed(
    cur: InputSession, view: str, col: Column | None, parse: Callable[[str], str], path: Path, expected: str
) -> None:
    raw = column_sql(col)
    bad = cur.execute(
        f"SELECT __line, {raw} FROM {view} WHERE {parse(raw)} IS NULL ORDER BY __line LIMIT 1"
    ).fetchone()
    if bad:
        raise InputError(
            f"value {shown(bad[1])} is not {expected}",
            path=str(path),
            row=int(bad[0]),
            column=column_label(col),
        )


def _typed_sql(view: str, cols: dict[str, Column | None], index: int) -> str:
    """The typed rows of a checked file; binds ``$source`` (the file's path)."""

    def raw(name: str) -> str:
        # Qualified, so that no column inside resolve_team_sql's subquery can capture it.
        return column_sql(cols.get(name), "v")

    name = first_last_sql(raw("Player Name"))
    return f"""
        SELECT {report_time_sql(raw("Report Time"))} AS report_at,
               {game_date_sql(raw("Game Date"))} AS game_date,
               nullif(trim({raw("Game Time")}), '') AS game_time,
               nullif(trim({raw("Matchup")}), '') AS matchup,
               {resolve_team_sql(raw("Team"), stored=True)} AS team,
               {name} AS player_name,
               coalesce(a.player_lookup, {lookup_sql(name)}) AS player_lookup,
               upper(left(trim({raw("Current Status")}), 1)) || lower(substr(trim({raw("Current Status")}), 2)) AS status,
               nullif(trim({raw("Reason")}), '') AS reason,
               CAST($source AS VARCHAR) AS source, {int(index)} AS __file, __line
        FROM {view} v
        LEFT JOIN player_aliases a ON a.alias_lookup = {lookup_sql(name)}
    """


def _check(cur: InputSession, file: SourceFile) -> None:
    """Leave out the teams that have not submitted yet, then check every value of the rows kept."""
    cols, path = file.columns, file.path
    reason = column_sql(cols["Reason"])
    player = column_sql(cols["Player Name"])
    kept = cur.temp_name(f"inj_kept_{file.index}")
    # A team that has not submitted yet is a row without a player: nothing to store for it.
    skip = f"nullif(trim({player}), '') IS NULL AND lower(trim(coalesce({reason}, ''))) = 'not yet submitted'"
    file.facts["not_yet_submitted"] = int(cur.scalar(f"SELECT count(*) FROM {file.view} WHERE {skip}"))
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {kept} AS SELECT * FROM {file.view} WHERE NOT ({skip})")
    file.view = kept
    check_values(cur, kept, FIELDS, cols, path=path)
    _check_parsed(
        cur,
        kept,
        cols["Report Time"],
        report_time_sql,
        path,
        "a report time (ISO 8601, e.g. 2025-02-12T17:00:00-05:00; no zone means US Eastern)",
    )
    _check_parsed(cur, kept, cols["Game Date"], game_date_sql, path, "a game date (MM/DD/YYYY)")
    check_teams(cur, kept, {"Team": cols["Team"]}, path=path, stored=True)
    bad = cur.execute(
        f"SELECT __line, {player} FROM {kept} WHERE {lookup_sql(first_last_sql(player))} = '' ORDER BY __line LIMIT 1"
    ).fetchone()
    if bad:
        raise InputError(
            f"value {shown(bad[1])} is not a player name",
            path=str(path),
            row=int(bad[0]),
            column=column_label(cols["Player Name"]),
        )


def _stage(file: SourceFile) -> tuple[str, dict[str, Any]]:
    return _typed_sql(file.view, file.columns, file.index), {"source": str(file.path)}


def _combine(cur: InputSession, files: Sequence[SourceFile]) -> dict[str, Any]:
    """The call's rows in one table; a row given twice agrees, and agrees with the stored one (a published
    report does not change)."""
    new = cur.temp_name("inj_all")
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {new} AS "
        + " UNION ALL ".join(f"SELECT * FROM {f.typed}" for f in files)
    )
    clash = cur.execute(
        f"""SELECT any_value(source ORDER BY __file DESC, __line DESC), max(__line ORDER BY __file)
            FROM {new} GROUP BY {_KEY_SQL} HAVING count(DISTINCT (status, reason)) > 1 ORDER BY 2 LIMIT 1"""
    ).fetchone()
    if clash:
        raise InputError(
            "the same report time, game date, team and player appear with different statuses",
            path=clash[0],
            row=int(clash[1]),
            column="Current Status",
        )
    clash = cur.execute(
        f"""SELECT n.source, n.__line FROM {new} n JOIN injury_reports s ON {_ON}
            WHERE (n.status, n.reason) IS DISTINCT FROM (s.status, s.reason) ORDER BY n.__file, n.__line LIMIT 1"""
    ).fetchone()
    if clash:
        raise InputError(
            "this report row is already stored with another status or reason (a published report "
            "does not change; a later report time supersedes it)",
            path=clash[0],
            row=int(clash[1]),
            column="Current Status",
        )
    return {"new": new}


def _merge(tx: InputSession, files: Sequence[SourceFile], combined: dict[str, Any]) -> Merged:
    """Rows not stored yet are added (the first of identical ones); the report's figures."""
    new = combined["new"]
    stored = ", ".join(_STORED)
    tx.execute(
        f"""INSERT INTO injury_reports ({stored})
            SELECT {stored} FROM (SELECT *, row_number() OVER (PARTITION BY {_KEY_SQL} ORDER BY __file, __line) AS __n
                                  FROM {new}) n
            WHERE __n = 1 AND NOT EXISTS (SELECT 1 FROM injury_reports s WHERE {_ON})"""
    )
    reports = [
        r[0].isoformat() for r in tx.execute(f"SELECT DISTINCT report_at FROM {new} ORDER BY 1").fetchall()
    ]
    statuses = dict(tx.execute(f"SELECT status, count(*) FROM {new} GROUP BY 1 ORDER BY 1").fetchall())
    unmatched = [
        r[0]
        for r in tx.execute(
            f"""SELECT DISTINCT player_name FROM {new}
            WHERE player_lookup NOT IN (SELECT DISTINCT player_lookup FROM box_scores) ORDER BY 1"""
        ).fetchall()
    ]
    return Merged(
        {
            "reports": reports,
            "statuses": statuses,
            "not_yet_submitted": sum(f.facts["not_yet_submitted"] for f in files),
            "unmatched": unmatched,
        }
    )


INJURIES = IngestSpec(
    kind="injuries",
    table="injury_reports",
    noun="injury-report",
    key=_KEY,
    fields=FIELDS,
    check=_check,
    stage=_stage,
    combine=_combine,
    merge=_merge,
)
"""Injury reports as an ingest kind (:mod:`nbaprops.ingest._loader`)."""


def ingest_injuries(storage: Inputs, paths: Sequence[Path | str]) -> IngestReport:
    """Validate and store injury-report files; atomic across all files (see the module docstring).

    Raises:
        InputError: naming the file, line and column of the first problem.
    """
    return load(storage, INJURIES, paths)


def injury_snapshot(storage: Inputs, game_date: date, as_of: datetime) -> Any:
    """The injury report a batch of ``game_date`` predicted at ``as_of`` reads, as a ``pyarrow.Table``.

    The rows for ``game_date`` of the latest report published at or before ``as_of`` that lists the date;
    empty when there is none. Columns: ``report_at, team, player_lookup, player_name, status, reason``.
    """
    return storage.arrow(
        """WITH latest AS (SELECT max(report_at) AS at FROM injury_reports WHERE game_date = $d AND report_at <= $as_of)
           SELECT r.report_at, r.team, r.player_lookup, r.player_name, r.status, r.reason
           FROM injury_reports r JOIN latest ON r.report_at = latest.at
           WHERE r.game_date = $d ORDER BY r.team, r.player_lookup""",
        {"d": game_date, "as_of": as_of},
    )


__all__ = ["ingest_injuries", "injury_snapshot"]
