"""``predict --as-of`` run after a later ingest reads the lines that were on the board at its instant (issue 20).

One real slate (2024-03-12, the real PRA lines of that day, posted at 19:35 EDT), then at 19:45 every book
re-posts one player's main line with other prices and adds a balanced line one point higher. Replayed as of
19:40 through the CLI, the player is priced at the 19:35 consensus (before: his keys' stored postings were the
19:45 ones, so he had no line at all); as of 19:50, at the 19:45 one, a point higher.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import PRA_LINES
from tests.replay import lines_of_day
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.ingest.lines import select_lines
from nbaprops.storage import open_storage

DAY = date(2024, 3, 12)
BETWEEN = "2024-03-12T19:40:00-04:00"  # US Eastern (EDT since March 10th)
REPOSTED = "2024-03-12T23:45:00Z"  # 19:45 EDT
AFTER = "2024-03-12T23:50:00Z"
CHEAP = ["--markets", "pra", "--systems", "moving_average,matchup", "--train-days", "90"]


@dataclass
class Slate:
    db: Path
    lookup: str
    night: dict[str, Any]  # the player's consensus row as of 19:40, read before the 19:45 postings existed


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _predicted(db: Path, lookup: str) -> set[tuple[float | None, float | None, float | None]]:
    with open_storage(db, read_only=True) as storage:
        rows = storage.fetchall(
            "SELECT DISTINCT line_value, over_price, under_price FROM player_prop_predictions "
            "WHERE game_date = ? AND player_lookup = ? AND is_active",
            [DAY, lookup],
        )
    return set(rows)


@pytest.fixture(scope="module")
def slate(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Slate:
    source = PRA_LINES["2023-24"]
    if not source.exists():
        pytest.skip(f"shared data not found: {source}; set NBAPROPS_SHARED_DATA")
    work = tmp_path_factory.mktemp("as_of_history")
    db = work / "replay.duckdb"
    shutil.copyfile(loaded_db_file, db)
    day_file = lines_of_day(source, DAY, work / "pra_odds.csv")
    assert _cli("ingest", "lines", str(day_file), "--db", str(db)).exit_code == 0
    between = datetime.fromisoformat(BETWEEN)
    with open_storage(db) as storage:
        lookup, name = storage.fetchall(
            """SELECT player_lookup, any_value(player_name) FROM prop_lines
               WHERE game_date = ? AND is_main AND quarantine_reason IS NULL
               GROUP BY player_lookup HAVING count(DISTINCT bookmaker) >= 3 AND max(posted_at) <= ?
               ORDER BY count(DISTINCT bookmaker) DESC, player_lookup LIMIT 1""",
            [DAY, between],
        )[0]
        mains = {
            (book, line)
            for book, line in storage.fetchall(
                "SELECT bookmaker, line FROM prop_lines WHERE game_date = ? AND player_lookup = ? AND is_main",
                [DAY, lookup],
            )
        }
        night = next(
            r
            for r in select_lines(storage, DAY, "pra", as_of=between).to_pylist()
            if r["player_lookup"] == lookup
        )
    with day_file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        mine = [r for r in reader if r["player_name"] == name and (r["bookmaker"], float(r["line"])) in mains]
    assert len(mine) == len(mains) >= 3
    reposted = []
    for row in mine:
        reposted.append({**row, "timestamp": REPOSTED, "over_price": "-160", "under_price": "130"})
        reposted.append({**row, "line": str(float(row["line"]) + 1), "timestamp": REPOSTED,
                         "over_price": "-110", "under_price": "-110"})  # fmt: skip
    later = work / "pra_reposted.csv"
    with later.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(reposted)
    done = _cli("ingest", "lines", str(later), "--db", str(db))
    assert done.exit_code == 0, done.output
    with open_storage(db, read_only=True) as storage:  # prop_lines kept only the 19:45 postings of his keys
        assert storage.scalar(
            "SELECT min(posted_at) FROM prop_lines WHERE game_date = ? AND player_lookup = ?", [DAY, lookup]
        ) == datetime(2024, 3, 12, 23, 45, tzinfo=UTC)
    return Slate(db, lookup, night)


def test_predict_as_of_before_a_reposting_uses_the_line_on_the_board_then(slate: Slate) -> None:
    done = _cli(
        "--as-of", BETWEEN, "predict", "--date", DAY.isoformat(), *CHEAP, "--db", str(slate.db), "--json"
    )
    assert done.exit_code == 0, done.output
    night = slate.night
    assert _predicted(slate.db, slate.lookup) == {(night["line"], night["over_price"], night["under_price"])}


def test_predict_as_of_after_the_reposting_uses_the_new_line(slate: Slate) -> None:
    done = _cli(
        "--as-of", AFTER, "predict", "--date", DAY.isoformat(), *CHEAP, "--db", str(slate.db), "--json"
    )
    assert done.exit_code == 0, done.output
    ((line, over, under),) = _predicted(slate.db, slate.lookup)
    assert (line, over, under) == (slate.night["line"] + 1, -110.0, -110.0)
