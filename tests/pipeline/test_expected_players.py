"""Who a batch requests, asked for several dates at once: each date's answer is the one it gets alone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tests.ingest.csvfiles import write_csv

from nbaprops.ingest.lines import ingest_lines, line_players, line_players_by_date
from nbaprops.ingest.schedule import games_for_date, games_for_dates, ingest_schedule
from nbaprops.pipeline.coordinator import expected_players, expected_players_by_date
from nbaprops.storage.duckdb import DuckDBStorage

# Real PRA lines on three of these dates; 2024-11-02 has a neutral-site game (a team named as its own
# opponent in the box scores); 2024-11-04 gets an ingested schedule row below.
DAYS = [date(2024, 10, 31) + timedelta(days=i) for i in range(8)]


def _as_of(day: date) -> datetime:
    """The prediction time of a past date (00:00 UTC after it)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def test_several_dates_at_once_give_each_dates_own_requests(
    storage: DuckDBStorage, pra_lines: dict[str, Path], tmp_path: Path
) -> None:
    ingest_lines(storage, [pra_lines["2024-25"]])
    ingest_schedule(
        storage,
        [
            write_csv(
                tmp_path / "s.csv", [{"game_date": "2024-11-04", "home_team": "BOS", "away_team": "NYK"}]
            )
        ],
    )
    games = games_for_dates(storage, DAYS)
    lines = line_players_by_date(storage, {day: _as_of(day) for day in DAYS}, ["pra"])
    requests = expected_players_by_date(storage, DAYS, games, recent_days=21, line_players=lines)

    assert {"schedule", "boxscores"} <= set(games.column("source").to_pylist())
    assert len(set(lines.column("game_date").to_pylist())) > 1
    assert sum(map(bool, requests.values())) > 5
    for day in DAYS:
        alone = games_for_date(storage, day)
        assert games.filter(games.column("game_date").to_numpy() == day).equals(alone)
        day_lines = line_players(storage, day, ["pra"], _as_of(day))
        assert (
            lines.filter(lines.column("game_date").to_numpy() == day)
            .drop_columns(["game_date"])
            .equals(day_lines)
        )
        assert requests[day] == expected_players(storage, day, alone, recent_days=21, line_players=day_lines)
