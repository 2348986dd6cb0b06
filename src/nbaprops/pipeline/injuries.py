"""Who is out tonight: the injury report a batch reads, and what the batch does with it.

A batch reads one snapshot — the latest report published at or before its ``as_of``
(:func:`~nbaprops.ingest.injuries.injury_snapshot`) — and uses it three ways:

- **Out** players get no prediction: their request ends ``skipped`` with reason ``injured_out`` (they are
  counted and listed in the summary like every other skip, with the report's reason).
- **Doubtful / Questionable / Probable / Available** players are predicted and their rows carry the status,
  reason and report time (``injury_status``, ``injury_reason``, ``injury_report_at``), so a reader can see a
  pick on a Questionable player for what it is. A listed player who is not recently active (back from a long
  absence) is requested too.
- The Out players feed the feature ``regulars_out_tonight_min`` (minutes to redistribute).

Players are matched by ``player_lookup`` (the same normalisation and aliases as box scores and lines).
Without any report before ``as_of`` nothing is skipped, nothing is flagged and the feature is NULL; the
summary says that no report was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from nbaprops.ingest.injuries import injury_snapshot
from nbaprops.storage.inputs import Inputs

OUT = "Out"
SKIP_CODE = "injured_out"
LINE_PLAYER_COLUMNS = ("player_lookup", "player_name", "team", "opponent", "home_team", "away_team")


@dataclass(frozen=True)
class TonightInjuries:
    """The injury-report snapshot of one batch.

    Attributes:
        game_date: the batch's date.
        report_at: publication time of the snapshot; ``None`` when no report was published before ``as_of``.
        rows: ``report_at, team, player_lookup, player_name, status, reason`` of the date.
    """

    game_date: date
    report_at: datetime | None
    rows: pa.Table

    @property
    def statuses(self) -> dict[str, tuple[str, str | None]]:
        """``player_lookup -> (status, reason)``."""
        return {
            lookup: (status, reason)
            for lookup, status, reason in zip(
                self.rows.column("player_lookup").to_pylist(),
                self.rows.column("status").to_pylist(),
                self.rows.column("reason").to_pylist(),
                strict=True,
            )
        }

    def out_players(self) -> pa.Table | None:
        """``game_date, team, player_lookup`` of the Out players; ``None`` without a report."""
        if self.report_at is None:
            return None
        status = self.rows.column("status").to_pylist()
        keep = pa.array([s == OUT for s in status], pa.bool_())
        out = self.rows.filter(keep)
        return pa.table(
            {
                "game_date": pa.array([self.game_date] * out.num_rows, pa.date32()),
                "team": out.column("team").cast(pa.string()),
                "player_lookup": out.column("player_lookup").cast(pa.string()),
            }
        )

    def listed_players(self, games: pa.Table) -> pa.Table:
        """Players listed (not Out) for teams playing tonight, in the shape of lines' players for requests."""
        sides: dict[str, tuple[str, str, str]] = {}
        for home, away in zip(
            games.column("home_team").to_pylist(), games.column("away_team").to_pylist(), strict=True
        ):
            sides[home] = (away, home, away)
            sides[away] = (home, home, away)
        records: dict[str, list[Any]] = {c: [] for c in LINE_PLAYER_COLUMNS}
        for lookup, name, team, status in zip(
            self.rows.column("player_lookup").to_pylist(),
            self.rows.column("player_name").to_pylist(),
            self.rows.column("team").to_pylist(),
            self.rows.column("status").to_pylist(),
            strict=True,
        ):
            if status == OUT or team not in sides:
                continue
            opponent, home, away = sides[team]
            for column, value in zip(
                LINE_PLAYER_COLUMNS, (lookup, name, team, opponent, home, away), strict=True
            ):
                records[column].append(value)
        return pa.table({c: pa.array(v, pa.string()) for c, v in records.items()})

    def summary(self, skipped_out: int) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for status in self.rows.column("status").to_pylist():
            counts[status] = counts.get(status, 0) + 1
        return {
            "report_at": self.report_at.isoformat() if self.report_at else None,
            "listed": counts,
            "skipped_out": skipped_out,
        }


def tonight_injuries(storage: Inputs, game_date: date, as_of: datetime) -> TonightInjuries:
    """The snapshot a batch of ``game_date`` predicted at ``as_of`` reads."""

    rows = injury_snapshot(storage, game_date, as_of)
    report_at = rows.column("report_at")[0].as_py() if rows.num_rows else None
    return TonightInjuries(game_date, report_at, rows)


def with_line_players(line_players: pa.Table, listed: pa.Table) -> pa.Table:
    """Lines' players plus injury-listed players (one table for the request query)."""
    lines = pa.table({c: line_players.column(c).cast(pa.string()) for c in LINE_PLAYER_COLUMNS})
    return pa.concat_tables([lines, listed]) if listed.num_rows else lines


def injury_columns(rows: pa.Table, injuries: TonightInjuries | None) -> pa.Table:
    """``rows`` (staging rows) with ``injury_status``, ``injury_reason`` and ``injury_report_at`` set."""
    n = rows.num_rows
    statuses = injuries.statuses if injuries is not None else {}
    found = [statuses.get(lookup) for lookup in rows.column("player_lookup").to_pylist()]
    report_at = injuries.report_at if injuries is not None else None
    return (
        rows.append_column("injury_status", pa.array([f[0] if f else None for f in found], pa.string()))
        .append_column("injury_reason", pa.array([f[1] if f else None for f in found], pa.string()))
        .append_column("injury_report_at", pa.array([report_at] * n, pa.timestamp("us", tz="UTC")))
    )


__all__ = ["OUT", "SKIP_CODE", "TonightInjuries", "injury_columns", "tonight_injuries", "with_line_players"]
