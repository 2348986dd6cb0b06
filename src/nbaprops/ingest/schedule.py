"""Schedules: which games are played on a date.

``ingest_schedule`` stores schedule CSV files (``game_date``, ``home_team``, ``away_team``, optional
``game_id``, ``commence_time`` and ``status``: scheduled, final, postponed or cancelled). Teams may be spelled as abbreviations, full names or nicknames; they are
stored as box-score abbreviations. Like box scores, every file is validated first and all are stored in one
transaction; the same file twice adds nothing. A stored game whose ``commence_time`` or ``status`` changed is updated; a
stored game given another ``game_id`` is refused. A game id given at another date than the one stored moves the
game: the stored row at the old date is marked ``postponed``.

``games_for_date`` answers "which games are on this date" from every source at once: the union of

1. ``schedule`` — ingested schedule rows for the date (a postponed or cancelled game is no game: it still
   places its teams, so no line or box score brings it back);
2. ``boxscores`` — the games played that date (home = the team whose rows have ``is_home``);
3. ``lines`` — the distinct (home, away) pairs named by that date's prop lines.

A team plays at most one game a date: a pair from a later source that names a team already placed by an
earlier one is left out (sportsbook files sometimes date a game by UTC, a day late). A line whose game is
left out is not lost: its player is requested and ends ``skipped`` (``no_game``) with the reason.

The ``game_id`` is the NBA.com id whenever a box-score game of the same date and teams exists, else the
schedule file's id, else a stable synthetic id ``YYYYMMDD`` + away + home (``20251021GSWLAL``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
    parse_sql,
)
from nbaprops.ingest.teams import check_teams, resolve_team_sql
from nbaprops.storage.inputs import Inputs, InputSession

log = logging.getLogger(__name__)

FIELDS: tuple[Field, ...] = (
    Field("game_date", "date", aliases=("date", "event_date")),
    Field("home_team", aliases=("home",)),
    Field("away_team", aliases=("away",)),
    Field("game_id", required=False),
    Field("commence_time", "timestamp", required=False, aliases=("start_time", "tipoff")),
    Field("status", required=False, choices=("scheduled", "final", "postponed", "cancelled")),
)
_KEY = ("game_date", "home_team", "away_team")
_KEY_SQL = ", ".join(_KEY)
GONE = ("postponed", "cancelled")
"""Schedule statuses of a game that is not played on its date."""

BOX_GAMES_SQL = """
    SELECT game_id, any_value(game_date ORDER BY team = opponent, team, player_id) AS game_date,
           any_value(CASE WHEN is_home THEN team ELSE opponent END ORDER BY team = opponent, team, player_id)
               AS home_team,
           any_value(CASE WHEN is_home THEN opponent ELSE team END ORDER BY team = opponent, team, player_id)
               AS away_team
    FROM box_scores {where} GROUP BY game_id
"""
"""Box-score games, one row each (``{where}`` filters box_scores rows).

Home and away come from one row chosen in a fixed order, preferring a row whose team is not its own opponent:
the box scores of five neutral-site games (2024-11-02, 2024-12-14 twice, 2025-01-23, 2025-01-25) give one
team's players that team as opponent, and an unordered pick made that team play itself on some runs and not on
others (who the batch requests, and the backtest's figures on those dates, changed from run to run)."""


def synthetic_game_id_sql(date_expr: str, home: str, away: str) -> str:
    """SQL of the synthetic game id ``YYYYMMDD`` + away + home."""
    return f"(strftime({date_expr}, '%Y%m%d') || {away} || {home})"


def _typed_sql(view: str, cols: dict[str, Column | None]) -> str:
    """The typed rows of a checked file; binds ``$source`` (the file's path)."""

    def raw(name: str) -> str:
        # Qualified, so that no column inside resolve_team_sql's subquery can capture it.
        return column_sql(cols.get(name), "v")

    return f"""
        SELECT {parse_sql("date", raw("game_date"))} AS game_date,
               {resolve_team_sql(raw("home_team"), stored=True)} AS home_team,
               {resolve_team_sql(raw("away_team"), stored=True)} AS away_team,
               nullif(trim({raw("game_id")}), '') AS given_id,
               {parse_sql("timestamp", raw("commence_time"))} AS commence_time,
               lower(nullif(trim({raw("status")}), '')) AS status,
               CAST($source AS VARCHAR) AS source, __line
        FROM {view} v
    """


def _check(cur: InputSession, file: SourceFile) -> None:
    check_values(cur, file.view, FIELDS, file.columns, path=file.path)
    teams = {k: file.columns[k] for k in ("home_team", "away_team")}
    check_teams(cur, file.view, teams, path=file.path, stored=True)


def _stage(file: SourceFile) -> tuple[str, dict[str, Any]]:
    return _typed_sql(file.view, file.columns), {"source": str(file.path)}


def _check_staged(cur: InputSession, file: SourceFile) -> None:
    """A game is between two teams, and given once in a file (or again with the same values)."""
    cols, path = file.columns, file.path
    same = cur.execute(
        f"SELECT __line FROM {file.typed} WHERE home_team = away_team ORDER BY __line LIMIT 1"
    ).fetchone()
    if same:
        raise InputError(
            "home and away team are the same team",
            path=str(path),
            row=same[0],
            column=column_label(cols["away_team"]),
        )
    dup = cur.execute(
        f"""SELECT max(__line) FROM {file.typed} GROUP BY {_KEY_SQL}
            HAVING count(DISTINCT (given_id, commence_time, status)) > 1 ORDER BY 1 LIMIT 1"""
    ).fetchone()
    if dup:
        raise InputError(
            "the same game (date, home, away) appears earlier in the file with different values",
            path=str(path),
            row=dup[0],
            column=column_label(cols["game_id"] or cols["commence_time"] or cols["game_date"]),
        )


def _combine(cur: InputSession, files: Sequence[SourceFile]) -> dict[str, Any]:
    """The call's games with their ids (``__sched_new``); a game given twice agrees, a stored one keeps its id."""
    union = " UNION ALL ".join(f"SELECT *, {i} AS __file FROM {f.typed}" for i, f in enumerate(files))
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE __sched_new AS
            SELECT n.game_date, n.home_team, n.away_team,
                   coalesce(n.given_id, b.game_id,
                            {synthetic_game_id_sql("n.game_date", "n.home_team", "n.away_team")}) AS game_id,
                   n.given_id, n.commence_time, n.status, n.source, n.__line, n.__file
            FROM ({union}) n
            LEFT JOIN ({BOX_GAMES_SQL.format(where="")}) b
              ON b.game_date = n.game_date AND b.home_team = n.home_team AND b.away_team = n.away_team"""
    )
    dup = cur.execute(
        f"""SELECT any_value(source ORDER BY __file DESC), max(__line ORDER BY __file) FROM __sched_new
           GROUP BY {_KEY_SQL} HAVING count(DISTINCT (given_id, commence_time, status)) > 1
           LIMIT 1"""
    ).fetchone()
    if dup:
        raise InputError("a game disagrees with another file of this call", path=dup[0], row=dup[1])
    clash = cur.execute(
        f"""SELECT n.source, n.__line FROM __sched_new n JOIN schedule s USING ({_KEY_SQL})
           WHERE n.given_id IS NOT NULL AND n.given_id <> s.game_id ORDER BY n.__file, n.__line LIMIT 1"""
    ).fetchone()
    if clash:
        raise InputError(
            "this game is already stored with another game_id",
            path=clash[0],
            row=clash[1],
            column="game_id",
        )
    return {}


def _merge(tx: InputSession, files: Sequence[SourceFile], combined: dict[str, Any]) -> Merged:
    """New games are added (the first of a file's identical rows); a stored game takes a new commence_time or
    status; a game id given at another date moves the game (its old date's row is marked postponed)."""
    on = " AND ".join(f"s.{k} = n.{k}" for k in _KEY)
    tx.execute(
        f"""INSERT INTO schedule (game_id, game_date, home_team, away_team, commence_time, source, status)
           SELECT game_id, game_date, home_team, away_team, commence_time, source, status FROM (
               SELECT *, row_number() OVER (PARTITION BY {_KEY_SQL} ORDER BY __file, __line) AS __n
               FROM __sched_new) n
           WHERE __n = 1 AND NOT EXISTS (SELECT 1 FROM schedule s WHERE {on})"""
    )
    updated = int(
        tx.scalar(
            f"""SELECT count(*) FROM schedule s JOIN __sched_new n USING ({_KEY_SQL})
               WHERE n.commence_time IS NOT NULL AND n.commence_time IS DISTINCT FROM s.commence_time"""
        )
        or 0
    )
    if updated:
        tx.execute(
            f"""UPDATE schedule s SET commence_time = n.commence_time, source = n.source
               FROM (SELECT DISTINCT {_KEY_SQL}, commence_time, source FROM __sched_new
                     WHERE commence_time IS NOT NULL) n
               WHERE {on} AND n.commence_time IS DISTINCT FROM s.commence_time"""
        )
    status_changed = int(
        tx.scalar(
            f"""SELECT count(*) FROM schedule s JOIN __sched_new n USING ({_KEY_SQL})
               WHERE n.status IS NOT NULL AND n.status IS DISTINCT FROM s.status"""
        )
        or 0
    )
    if status_changed:
        updated += status_changed
        tx.execute(
            f"""UPDATE schedule s SET status = n.status
               FROM (SELECT DISTINCT {_KEY_SQL}, status FROM __sched_new WHERE status IS NOT NULL) n
               WHERE {on} AND n.status IS DISTINCT FROM s.status"""
        )
    # A game id now given at another date: the game moved, its old date no longer has it.
    moved_row = tx.execute(
        f"""UPDATE schedule s SET status = 'postponed'
           WHERE coalesce(s.status, '') <> 'postponed'
             AND s.game_id IN (SELECT given_id FROM __sched_new WHERE given_id IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM __sched_new n WHERE n.given_id = s.game_id AND {on})"""
    ).fetchone()
    moved = int(moved_row[0]) if moved_row else 0
    return Merged({"updated": updated, "moved": moved})


SCHEDULE = IngestSpec(
    kind="schedule",
    table="schedule",
    noun="schedule",
    key=_KEY,
    fields=FIELDS,
    check=_check,
    stage=_stage,
    check_staged=_check_staged,
    combine=_combine,
    merge=_merge,
    scratch=("__sched_new",),
)
"""Schedules as an ingest kind (:mod:`nbaprops.ingest._loader`)."""


def ingest_schedule(storage: Inputs, paths: Sequence[Path | str]) -> IngestReport:
    """Validate and store schedule CSV files; atomic across all files.

    Raises:
        InputError: naming the file, line and column of the first problem (unknown team, bad date or time,
            home team equal to away team, one game twice with different values, a stored game with another id).
    """
    return load(storage, SCHEDULE, paths)


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise InputError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def games_for_date(storage: Inputs, game_date: date | datetime | str) -> Any:
    """The games of one date as a ``pyarrow.Table`` (see the module docstring for how sources combine).

    Columns: ``game_id`` (string), ``game_date``, ``home_team``, ``away_team``, ``commence_time`` (may be
    null), ``source`` (``schedule``, ``boxscores`` or ``lines``: the first source naming the game).
    """
    return games_for_dates(storage, [game_date])


def games_for_dates(storage: Inputs, game_dates: Sequence[date | datetime | str]) -> Any:
    """The games of several dates in one query (the backtest asks for a season's dates at once): each date's
    games exactly as :func:`games_for_date` gives them, the dates in order."""
    days = sorted({_as_date(d) for d in game_dates})
    box = BOX_GAMES_SQL.format(where="WHERE list_contains(CAST($days AS DATE[]), game_date)")
    gone = ", ".join(f"'{g}'" for g in GONE)
    return storage.arrow(
        f"""WITH named AS (
                SELECT 1 AS prio, 'schedule' AS source, game_date, home_team, away_team, commence_time,
                       game_id AS own_id, coalesce(status, '') IN ({gone}) AS gone
                FROM schedule WHERE list_contains(CAST($days AS DATE[]), game_date)
                UNION ALL
                SELECT 2, 'boxscores', game_date, home_team, away_team, CAST(NULL AS TIMESTAMPTZ), NULL, false
                FROM ({box})
                UNION ALL
                SELECT 3, 'lines', game_date, home_team, away_team, min(commence_time), NULL, false FROM prop_lines
                WHERE list_contains(CAST($days AS DATE[]), game_date) AND home_team IS NOT NULL AND away_team IS NOT NULL
                GROUP BY game_date, home_team, away_team
            ),
            pairs AS (
                SELECT game_date, home_team, away_team, min(prio) AS prio, arg_min(source, prio) AS source,
                       min(commence_time) FILTER (WHERE prio = 1) AS scheduled, min(commence_time) AS any_time,
                       min(own_id) FILTER (WHERE prio = 1) AS own_id, bool_or(gone) AS gone
                FROM named GROUP BY game_date, home_team, away_team
            ),
            placed AS (
                SELECT * FROM pairs p WHERE NOT EXISTS (
                    SELECT 1 FROM pairs o WHERE o.game_date = p.game_date AND o.prio < p.prio
                      AND (o.home_team IN (p.home_team, p.away_team) OR o.away_team IN (p.home_team, p.away_team)))
            )
            SELECT CAST(coalesce(b.game_id, g.own_id,
                                 {synthetic_game_id_sql("g.game_date", "g.home_team", "g.away_team")}) AS VARCHAR)
                       AS game_id,
                   g.game_date, g.home_team, g.away_team,
                   CAST(coalesce(g.scheduled, g.any_time) AS TIMESTAMPTZ) AS commence_time, g.source
            FROM placed g
            LEFT JOIN ({box}) b ON b.game_date = g.game_date AND b.home_team = g.home_team
                               AND b.away_team = g.away_team
            WHERE NOT g.gone
            ORDER BY g.game_date, commence_time NULLS LAST, game_id""",
        {"days": days},
    )
