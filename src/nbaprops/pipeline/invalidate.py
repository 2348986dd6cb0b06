"""Invalidation: predictions that stopped making sense after they were made.

:func:`invalidate` deactivates the active rows of a date whose game was postponed or cancelled
(``invalidation_reason = 'game_postponed'``) or whose player was listed Out in an injury report newer than the
row (``'player_ruled_out'``). The rows keep everything else, get ``is_active = false`` and ``invalidated_at``,
and are graded later as void with that reason (:func:`nbaprops.grading.grade_date`). A rerun finds no active
row left to invalidate, so it changes nothing.

The inputs come from the live sources, through a small interface read here and nowhere else:

- ``injury_reports`` (``report_time TIMESTAMPTZ, game_date DATE, player_lookup VARCHAR, team VARCHAR,
  status VARCHAR, reason VARCHAR``): one row per player and report snapshot. A player is ruled out when his
  newest snapshot for the date says ``Out``. Without the table nobody is ruled out.
- ``schedule.status``: ``postponed`` or ``cancelled`` marks a game that will not be played that date. Without
  the column no game is postponed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from nbaprops.clock import Clock, SystemClock
from nbaprops.storage.duckdb import DuckDBStorage

log = logging.getLogger(__name__)

INJURY_TABLE = "injury_reports"
OUT_STATUSES = ("out",)
POSTPONED_STATUSES = ("postponed", "cancelled")


@dataclass(frozen=True)
class RuledOut:
    """A player whose newest injury snapshot for the date says Out."""

    player_lookup: str
    team: str | None
    report_time: datetime
    reason: str | None


def ruled_out(storage: DuckDBStorage, game_date: date) -> list[RuledOut]:
    """Players whose newest injury snapshot for ``game_date`` says Out (none without ``injury_reports``)."""
    if not storage.table_columns(INJURY_TABLE):
        return []
    rows = storage.fetchall(
        f"""SELECT player_lookup, arg_max(team, report_time), max(report_time), arg_max(reason, report_time)
            FROM {INJURY_TABLE} WHERE game_date = ? GROUP BY player_lookup
            HAVING lower(trim(arg_max(status, report_time))) IN ({", ".join(repr(s) for s in OUT_STATUSES)})
            ORDER BY player_lookup""",
        [game_date],
    )
    return [RuledOut(*row) for row in rows]


def postponed_games(storage: DuckDBStorage, game_date: date) -> list[dict[str, Any]]:
    """Games of ``game_date`` whose schedule status is postponed or cancelled (none without ``schedule.status``)."""
    if "status" not in storage.table_columns("schedule"):
        return []
    return storage.fetch_dicts(
        f"""SELECT game_id, home_team, away_team, lower(status) AS status FROM schedule
            WHERE game_date = ? AND lower(trim(status)) IN ({", ".join(repr(s) for s in POSTPONED_STATUSES)})
            ORDER BY game_id""",
        [game_date],
    )


@dataclass(frozen=True)
class InvalidationResult:
    game_date: date
    postponed_games: list[dict[str, Any]]
    ruled_out: list[dict[str, Any]]
    rows_invalidated: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "game_date": self.game_date.isoformat(),
            "postponed_games": self.postponed_games,
            "ruled_out": self.ruled_out,
            "rows_invalidated": self.rows_invalidated,
        }


def invalidate(storage: DuckDBStorage, game_date: date, *, clock: Clock | None = None) -> InvalidationResult:
    """Deactivate the rows of postponed games and of players ruled out after they were predicted (idempotent)."""
    now = (clock or SystemClock()).now()
    games = postponed_games(storage, game_date)
    outs = ruled_out(storage, game_date)
    counts = {"game_postponed": 0, "player_ruled_out": 0}
    affected: dict[str, int] = {}
    with storage.transaction() as tx:
        for game in games:
            changed = tx.execute(
                """UPDATE player_prop_predictions SET is_active = false, invalidated_at = ?,
                          invalidation_reason = 'game_postponed', updated_at = ?
                   WHERE is_active AND game_date = ? AND (game_id = ? OR (team = ? AND opponent = ?)
                                                          OR (team = ? AND opponent = ?))""",
                [
                    now,
                    now,
                    game_date,
                    game["game_id"],
                    game["home_team"],
                    game["away_team"],
                    game["away_team"],
                    game["home_team"],
                ],
            ).fetchone()
            counts["game_postponed"] += int(changed[0]) if changed else 0
        for out in outs:
            changed = tx.execute(
                """UPDATE player_prop_predictions SET is_active = false, invalidated_at = ?,
                          invalidation_reason = 'player_ruled_out', updated_at = ?
                   WHERE is_active AND game_date = ? AND player_lookup = ? AND created_at < ?""",
                [now, now, game_date, out.player_lookup, out.report_time],
            ).fetchone()
            affected[out.player_lookup] = int(changed[0]) if changed else 0
            counts["player_ruled_out"] += affected[out.player_lookup]
    if any(counts.values()):
        log.info("invalidated on %s: %s", game_date, counts)
    return InvalidationResult(
        game_date,
        games,
        [
            {
                "player_lookup": o.player_lookup,
                "team": o.team,
                "report_time": o.report_time.isoformat(),
                "reason": o.reason,
                "rows_invalidated": affected[o.player_lookup],
            }
            for o in outs
        ],
        counts,
    )


__all__ = ["INJURY_TABLE", "InvalidationResult", "RuledOut", "invalidate", "postponed_games", "ruled_out"]
