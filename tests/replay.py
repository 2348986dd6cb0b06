"""A replay of real game days through the live day's operations, and the fixtures it injects.

Each day D: the real PRA lines of D are ingested (only that day's), the daily batch predicts D at 23:50 UTC
(after the lines' last snapshot, before the evening cutoff); on the day chosen for it a moved line is ingested
(posted 23:52) and ``refresh`` re-predicts at 23:55; a player is listed Out in an injury
snapshot at 23:56 (and, since he then does not play, his box score of D is removed: :func:`rule_out`) and
``invalidate`` runs at 23:57; the next morning D is graded. Used by the acceptance test
(a few days) and by ``benchmarks/replay_week.py`` (the whole week).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.evaluation.grading import grade_date
from nbaprops.ingest.lines import ingest_lines
from nbaprops.pipeline.invalidate import invalidate
from nbaprops.pipeline.refresh import refresh
from nbaprops.pipeline.run import run_batch
from nbaprops.storage.duckdb import DuckDBStorage


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), UTC)


def lines_of_day(source: Path, day: date, target: Path) -> Path:
    """The rows of ``source`` (odds-feed CSV) whose event_date is ``day``, as their own file."""
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [r for r in reader if r["event_date"] == day.isoformat()]
        fields = reader.fieldnames or []
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return target


def single_book_player(storage: DuckDBStorage, day: date) -> dict[str, Any]:
    """A predicted player of ``day`` whose line comes from one book (so moving it moves the consensus)."""
    rows = storage.fetch_dicts(
        """SELECT l.player_lookup, any_value(l.player_name) AS player_name, any_value(l.bookmaker) AS bookmaker,
                  any_value(l.line) AS line
           FROM prop_lines l JOIN player_prop_predictions p
             ON p.game_date = l.game_date AND p.player_lookup = l.player_lookup AND p.is_active
                AND p.line_value IS NOT NULL
           WHERE l.game_date = ? GROUP BY l.player_lookup HAVING count(DISTINCT l.bookmaker) = 1
           ORDER BY l.player_lookup LIMIT 1""",
        [day],
    )
    assert rows, f"no single-book predicted player on {day}"
    return rows[0]


def rule_out(storage: DuckDBStorage, day: date) -> dict[str, Any]:
    """Pick a predicted player of ``day`` with a line and make him miss the game.

    Players ruled out late rarely keep a line in the shipped data, so one who played is taken and his box
    score of ``day`` removed: he is then what a late scratch is, a predicted player without a box score (the
    backtest run afterwards on the same file sees the same). The first such player by name is taken.
    """
    rows = storage.fetch_dicts(
        """SELECT p.player_lookup, any_value(p.team) AS team, any_value(p.player_id) AS player_id
           FROM player_prop_predictions p
           WHERE p.game_date = ? AND p.is_active AND p.line_value IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1""",
        [day],
    )
    assert rows, f"no predicted player with a line on {day}"
    storage.execute(
        "DELETE FROM box_scores WHERE player_id = ? AND game_date = ?", [rows[0]["player_id"], day]
    )
    return rows[0]


def inject_moved_line(
    source_row: dict[str, Any], day: date, source: Path, target: Path, *, move: float
) -> float:
    """Write the player's book line moved by ``move`` (balanced prices, posted 23:52) as a lines CSV."""
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        row = next(
            r
            for r in reader
            if r["event_date"] == day.isoformat()
            and r["bookmaker"] == source_row["bookmaker"]
            and r["player_name"] == source_row["player_name"]
        )
    new_line = float(row["line"]) + move
    row.update(
        line=str(new_line),
        over_price="-110",
        under_price="-110",
        timestamp=at(day, 23, 52).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerow(row)
    return new_line


@dataclass
class Replay:
    days: list[date]
    batches: dict[date, str] = field(default_factory=dict)
    moved: dict[str, Any] = field(default_factory=dict)
    refresh: dict[str, Any] = field(default_factory=dict)
    ruled_out: dict[str, Any] = field(default_factory=dict)
    invalidation: dict[str, Any] = field(default_factory=dict)
    grades: dict[date, dict[str, Any]] = field(default_factory=dict)
    before_refresh: list[tuple[Any, ...]] = field(default_factory=list)


def replay(
    storage: DuckDBStorage,
    settings: Settings,
    days: list[date],
    lines_csv: Path,
    workdir: Path,
    *,
    move_on: date,
    rule_out_on: date,
    move: float = 2.0,
) -> Replay:
    """Run the live day over ``days`` (see the module docstring)."""
    result = Replay(days)
    for day in days:
        clock = ManualClock(at(day, 23, 50))
        ingest_lines(storage, [lines_of_day(lines_csv, day, workdir / f"lines_{day}.csv")], market="pra")
        result.batches[day] = run_batch(storage, settings, day, clock=clock).summary.batch_id
        if day == move_on:
            player = single_book_player(storage, day)
            result.before_refresh = storage.fetchall(
                "SELECT prediction_id FROM player_prop_predictions WHERE game_date = ? AND is_active ORDER BY 1",
                [day],
            )
            new_line = inject_moved_line(player, day, lines_csv, workdir / f"moved_{day}.csv", move=move)
            ingest_lines(storage, [workdir / f"moved_{day}.csv"], market="pra")
            result.moved = {**player, "new_line": new_line}
            clock.advance(5 * 60)
            result.refresh = refresh(storage, settings, day, clock=clock).as_dict()
        if day == rule_out_on:
            player = rule_out(storage, day)
            storage.execute(
                "INSERT INTO injury_reports (report_at, game_date, team, player_name, player_lookup, status, reason) "
                "VALUES (?, ?, ?, ?, ?, 'Out', 'Rest')",
                [at(day, 23, 56), day, player["team"], player["player_lookup"], player["player_lookup"]],
            )
            result.ruled_out = player
            result.invalidation = invalidate(storage, day, clock=ManualClock(at(day, 23, 57))).as_dict()
        next_morning = ManualClock(at(day + timedelta(days=1), 14, 0))
        result.grades[day] = grade_date(storage, day, clock=next_morning).as_dict()
    return result
