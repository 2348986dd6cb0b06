"""``--as-of`` (and ``NBAPROPS_AS_OF``) replays a past game day through the CLI as it would have run.

Before: no such option; on any past date ``refresh`` said ``game_started`` for every mover and ``invalidate``
judged injury reports as of now, so a day could be replayed only through the library with its clock.
One real slate (2024-03-12, the real PRA lines of that day, all posted at 19:35 EDT) plus one line posted later,
at 19:45, for a player who had none: predicted as of 19:40 that line is invisible; a refresh as of 19:50 sees it
as a first line and re-predicts that player only.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from tests.conftest import PRA_LINES
from tests.replay import lines_of_day
from typer.testing import CliRunner, Result

from nbaprops.cli import app
from nbaprops.storage import open_storage

DAY = date(2024, 3, 12)
BEFORE_LATE_LINE = "2024-03-12T19:40:00-04:00"  # US Eastern (EDT since March 10th)
LATE_POSTED = "2024-03-12T23:45:00Z"  # 19:45 EDT
AFTER_LATE_LINE = "2024-03-12T23:50:00Z"
CHEAP = ["--markets", "pra", "--systems", "moving_average,matchup", "--train-days", "90"]


@dataclass
class Day:
    db: Path
    late_player: str
    late_lookup: str
    predicted: Result


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _active_lines(db: Path, lookup: str) -> set[float | None]:
    with open_storage(db, read_only=True) as storage:
        rows = storage.fetchall(
            "SELECT DISTINCT line_value FROM player_prop_predictions "
            "WHERE game_date = ? AND player_lookup = ? AND is_active",
            [DAY, lookup],
        )
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def day(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Day:
    source = PRA_LINES["2023-24"]
    if not source.exists():
        pytest.skip(f"shared data not found: {source}; set NBAPROPS_SHARED_DATA")
    work = tmp_path_factory.mktemp("as_of")
    db = work / "replay.duckdb"
    shutil.copyfile(loaded_db_file, db)
    assert (
        cli(
            "ingest", "lines", str(lines_of_day(source, DAY, work / "pra_odds.csv")), "--db", str(db)
        ).exit_code
        == 0
    )
    with open_storage(db, read_only=True) as storage:
        name, lookup = storage.fetchall(
            """SELECT player_name, player_lookup FROM box_scores
               WHERE game_date = ? AND player_lookup NOT IN (SELECT player_lookup FROM prop_lines WHERE game_date = ?)
               ORDER BY minutes DESC, player_lookup LIMIT 1""",
            [DAY, DAY],
        )[0]
    late = work / "late.csv"
    with late.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "game_date",
                "player_name",
                "market",
                "line",
                "bookmaker",
                "over_price",
                "under_price",
                "posted_at",
            ]
        )
        writer.writerow([DAY.isoformat(), name, "pra", "21.5", "LateBook", "-110", "-110", LATE_POSTED])
    assert cli("ingest", "lines", str(late), "--db", str(db)).exit_code == 0
    predicted = cli(
        "--as-of", BEFORE_LATE_LINE, "predict", "--date", DAY.isoformat(), *CHEAP, "--db", str(db), "--json"
    )
    return Day(db, name, lookup, predicted)


def test_predict_as_of_does_not_see_a_line_posted_later(day: Day) -> None:
    assert day.predicted.exit_code == 0, day.predicted.output
    payload = json.loads(day.predicted.stdout)
    assert payload["state"] == "complete"
    assert _active_lines(day.db, day.late_lookup) == {None}  # posted at 19:45, after the replayed 19:40
    with open_storage(day.db, read_only=True) as storage:
        lined = storage.scalar(
            "SELECT count(DISTINCT player_lookup) FROM player_prop_predictions "
            "WHERE game_date = ? AND is_active AND line_value IS NOT NULL",
            [DAY],
        )
    assert lined > 10  # the day's own lines, posted at 19:35, were used


def test_refresh_as_of_later_repredicts_the_first_line_only(day: Day) -> None:
    refreshed = cli(
        "--as-of", AFTER_LATE_LINE, "refresh", "--date", DAY.isoformat(), "--db", str(day.db), "--json"
    )
    assert refreshed.exit_code == 0, refreshed.output
    result = json.loads(refreshed.stdout)
    assert [(m["player_lookup"], m["first_line"]) for m in result["moves"]] == [(day.late_lookup, True)]
    assert result["not_repredicted"] == []  # before: game_started, on any past date
    assert result["batch"]["state"] == "complete" and result["batch"]["requests"]["done"] == 1
    assert _active_lines(day.db, day.late_lookup) == {21.5}


def test_environment_replays_invalidate_and_grade_waits_for_the_morning(day: Day) -> None:
    evening = {"NBAPROPS_AS_OF": AFTER_LATE_LINE}
    invalidated = cli("invalidate", "--date", DAY.isoformat(), "--db", str(day.db), "--json", env=evening)
    assert invalidated.exit_code == 0, invalidated.output
    early = cli("grade", "--date", DAY.isoformat(), "--db", str(day.db), env=evening)
    assert early.exit_code == 1 and "is not over yet (today is 2024-03-12)" in early.output
    morning = cli(
        "--as-of",
        "2024-03-13T09:00:00-05:00",
        "grade",
        "--date",
        DAY.isoformat(),
        "--db",
        str(day.db),
        "--json",
    )
    assert morning.exit_code == 0, morning.output
    assert json.loads(morning.stdout)["added"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2024-03-12T17:00:00", "picks", "--date", "2024-03-12"], "has no UTC offset"),
        (["--as-of", "yesterday", "picks", "--date", "2024-03-12"], "setting 'as_of'"),
        (["--as-of", BEFORE_LATE_LINE, "daily", "--date", "2024-03-12"], "add --no-fetch"),
        (["--as-of", BEFORE_LATE_LINE, "fetch", "schedule"], "drop --as-of"),
    ],
)
def test_as_of_refuses_what_it_cannot_replay(args: list[str], message: str, tmp_path: Path) -> None:
    result = cli(*args, "--db", str(tmp_path / "nb.duckdb"))
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1
