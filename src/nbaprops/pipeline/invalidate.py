"""Invalidation: predictions that stopped making sense after they were made.

:func:`invalidate` deactivates the active rows of a date whose game was postponed or cancelled
(``invalidation_reason = 'game_postponed'``) or whose player the newest injury report lists Out, when that
report was published after the row was made (``'player_ruled_out'``). The rows keep everything else, get
``is_active = false`` and ``invalidated_at``, and are graded later as void with that reason
(:func:`nbaprops.grading.grade_date`). A rerun finds no active row left to invalidate, so it changes nothing.

The inputs are what the live sources store: the injury report is the newest snapshot of ``injury_reports`` for
the date published by now (:func:`~nbaprops.ingest.injuries.injury_snapshot`, the rule a batch reads its own
report by: a newer report that no longer lists a player Out clears him), and a game is postponed when its
``schedule.status`` is ``postponed`` or ``cancelled``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from nbaprops.clock import Clock, SystemClock
from nbaprops.ingest.injuries import injury_snapshot
from nbaprops.ingest.schedule import GONE
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import Backend

log = logging.getLogger(__name__)

OUT = "Out"


@dataclass(frozen=True)
class RuledOut:
    """A player the newest injury report of the date (published at ``report_at``) lists Out."""

    player_lookup: str
    team: str | None
    report_at: datetime
    reason: str | None


def ruled_out(storage: Inputs, game_date: date, at: datetime) -> list[RuledOut]:
    """Players the newest injury report for ``game_date`` published by ``at`` lists Out."""

    report = injury_snapshot(storage, game_date, at).to_pylist()
    return [
        RuledOut(r["player_lookup"], r["team"], r["report_at"], r["reason"])
        for r in report
        if r["status"] == OUT
    ]


def postponed_games(storage: Inputs, game_date: date) -> list[dict[str, Any]]:
    """Games of ``game_date`` whose schedule status is postponed or cancelled."""

    return storage.fetch_dicts(
        """SELECT game_id, home_team, away_team, status FROM schedule
           WHERE game_date = ? AND list_contains(?, status) ORDER BY game_id""",
        [game_date, list(GONE)],
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


def invalidate(backend: Backend, game_date: date, *, clock: Clock | None = None) -> InvalidationResult:
    """Deactivate the rows of postponed games and of players ruled out after they were predicted (idempotent).

    The schedule and the injury report are the inputs file's (``backend.features``); the rows are the
    warehouse's (the same file, or BigQuery), changed in one transaction.
    """
    now = (clock or SystemClock()).now()
    games = postponed_games(backend.features, game_date)
    outs = ruled_out(backend.features, game_date, now)
    postponed, affected = backend.warehouse.invalidate(
        game_date,
        games=[(g["game_id"], g["home_team"], g["away_team"]) for g in games],
        players=[(o.player_lookup, o.report_at) for o in outs],
        at=now,
    )
    counts = {"game_postponed": postponed, "player_ruled_out": sum(affected.values())}
    if any(counts.values()):
        log.info("invalidated on %s: %s", game_date, counts)
    return InvalidationResult(
        game_date,
        games,
        [
            {
                "player_lookup": o.player_lookup,
                "team": o.team,
                "report_at": o.report_at.isoformat(),
                "reason": o.reason,
                "rows_invalidated": affected[o.player_lookup],
            }
            for o in outs
        ],
        counts,
    )


__all__ = ["InvalidationResult", "RuledOut", "invalidate", "postponed_games", "ruled_out"]
