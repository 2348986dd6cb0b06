"""Schedule ingest and games_for_date precedence, on real box scores and real PRA lines."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from tests.ingest.csvfiles import write_csv as _write

from nbaprops.errors import InputError
from nbaprops.ingest.lines import ingest_lines
from nbaprops.ingest.schedule import games_for_date, ingest_schedule
from nbaprops.storage.duckdb import DuckDBStorage

DAY = date(2024, 11, 1)  # in the 2024-25 PRA file and in the box scores


def _box_games(storage: DuckDBStorage, day: date) -> dict[tuple[str, str], str]:
    """(home, away) → game_id straight from the box-score rows of the home team."""
    return {
        (home, away): game_id
        for game_id, home, away in storage.fetchall(
            "SELECT DISTINCT game_id, team, opponent FROM box_scores WHERE game_date = ? AND is_home", [day]
        )
    }


def test_games_for_date_is_the_union_of_every_source(
    storage: DuckDBStorage, pra_lines: dict[str, Path], tmp_path: Path
) -> None:
    """Lines that name only some of a date's games never shrink the slate (issue 6, item 3).

    Before the fix the lines' four games replaced the box scores' nine: this test failed on the first
    ``from_lines`` assertion.
    """
    box = _box_games(storage, DAY)
    assert len(box) > 5

    from_box = games_for_date(storage, DAY)
    assert set(from_box.column("source").to_pylist()) == {"boxscores"}
    assert {(r["home_team"], r["away_team"]): r["game_id"] for r in from_box.to_pylist()} == box

    day_rows = [r for r in csv.DictReader(pra_lines["2024-25"].open()) if r["event_date"] == DAY.isoformat()]
    ingest_lines(storage, [_write(tmp_path / "day_pra.csv", day_rows)])
    line_pairs = {
        (r["home_team"], r["away_team"])
        for r in storage.fetch_dicts(
            "SELECT DISTINCT home_team, away_team FROM prop_lines WHERE game_date = ?", [DAY]
        )
    }
    assert line_pairs < set(box)  # the lines name only some of the day's games
    from_lines = games_for_date(storage, DAY.isoformat())
    assert {(r["home_team"], r["away_team"]): r["game_id"] for r in from_lines.to_pylist()} == box

    home, away = sorted(set(box) - line_pairs)[0]
    sched = _write(
        tmp_path / "schedule.csv",
        [
            {
                "game_date": DAY.isoformat(),
                "home_team": home.lower(),
                "away_team": away,
                "commence_time": f"{DAY.isoformat()}T23:30:00Z",
            },
        ],
    )
    report = ingest_schedule(storage, [sched])
    assert (report.rows_read, report.rows_added) == (1, 1)
    from_schedule = games_for_date(storage, DAY).to_pylist()
    assert len(from_schedule) == len(box)
    scheduled = [r for r in from_schedule if r["source"] == "schedule"]
    assert [(r["home_team"], r["away_team"], r["game_id"]) for r in scheduled] == [
        (home, away, box[(home, away)])
    ]
    assert scheduled[0]["commence_time"] is not None
    assert ingest_schedule(storage, [sched]).rows_added == 0
    assert storage.scalar("SELECT count(*) FROM schedule") == 1


def test_a_team_plays_once_a_date_earlier_sources_win(storage: DuckDBStorage, tmp_path: Path) -> None:
    """A future date: the schedule's game and a lines-only game both count; a line naming a team the schedule
    already placed (a sportsbook's UTC date) is left out rather than giving that team two games."""
    day = "2030-11-02"
    ingest_schedule(
        storage, [_write(tmp_path / "s.csv", [{"game_date": day, "home_team": "BOS", "away_team": "NYK"}])]
    )
    rows = [
        {
            "game_date": day,
            "player_name": "Jayson Tatum",
            "market": "points",
            "line": "27.5",
            "bookmaker": "b",
            "over_price": "-110",
            "under_price": "-110",
            "home_team": "MIA",
            "away_team": "BOS",
        },
        {
            "game_date": day,
            "player_name": "Stephen Curry",
            "market": "points",
            "line": "26.5",
            "bookmaker": "b",
            "over_price": "-110",
            "under_price": "-110",
            "home_team": "GSW",
            "away_team": "LAL",
        },
    ]
    ingest_lines(storage, [_write(tmp_path / "l.csv", rows)])
    games = {(g["home_team"], g["away_team"], g["source"]) for g in games_for_date(storage, day).to_pylist()}
    assert games == {("BOS", "NYK", "schedule"), ("GSW", "LAL", "lines")}


def test_future_schedule_gets_synthetic_ids_and_team_spellings(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "opening_night.csv",
        [
            {"date": "2030-10-21", "home": "Los Angeles Lakers", "away": "Warriors", "game_id": ""},
            {"date": "2030-10-21", "home": "NY", "away": "Boston Celtics", "game_id": "X1"},
            {"date": "2030-10-21", "home": "NY", "away": "Boston Celtics", "game_id": "X1"},
        ],
    )
    report = ingest_schedule(storage, [path])
    assert (report.rows_read, report.rows_added) == (3, 2)
    games = games_for_date(storage, "2030-10-21").to_pylist()
    assert {(g["game_id"], g["home_team"], g["away_team"], g["source"]) for g in games} == {
        ("20301021GSWLAL", "LAL", "GSW", "schedule"),
        ("X1", "NYK", "BOS", "schedule"),
    }
    assert all(g["commence_time"] is None for g in games)
    assert games_for_date(storage, "2030-10-22").num_rows == 0


@pytest.mark.parametrize(
    ("row", "line", "column", "message"),
    [
        ({"home_team": "Seattle SuperSonics"}, 3, "home_team", "not a known NBA team"),
        ({"game_date": "2030-02-30"}, 3, "game_date", "is not a date"),
        ({"away_team": "Denver Nuggets"}, 3, "away_team", "same team"),
        ({"commence_time": "2030-10-22T02:00:00Z"}, 4, "commence_time", "different values"),
    ],
)
def test_bad_schedule_is_refused(
    storage: DuckDBStorage, tmp_path: Path, row: dict[str, str], line: int, column: str, message: str
) -> None:
    good = _write(
        tmp_path / "good.csv",
        [
            {"game_date": "2030-10-21", "home_team": "MIA", "away_team": "ORL", "commence_time": ""},
        ],
    )
    base = [
        {"game_date": "2030-10-21", "home_team": "CHI", "away_team": "DET", "commence_time": ""},
        {"game_date": "2030-10-21", "home_team": "DEN", "away_team": "UTA", "commence_time": ""},
        {"game_date": "2030-10-21", "home_team": "DEN", "away_team": "UTA", "commence_time": ""},
    ]
    base[line - 2].update(row)
    bad = _write(tmp_path / "bad.csv", base)
    with pytest.raises(InputError, match=message) as info:
        ingest_schedule(storage, [good, bad])
    assert (info.value.path, info.value.row, info.value.column) == (str(bad), line, column)
    assert "bad.csv" in str(info.value) and f"line {line}" in str(info.value)
    assert storage.scalar("SELECT count(*) FROM schedule") == 0
    assert storage.scalar("SELECT count(*) FROM ingest_log WHERE kind = 'schedule'") == 0
