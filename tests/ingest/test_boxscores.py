"""Box-score ingest of user files: re-ingesting shipped games adds nothing; bad files are refused atomically."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from tests.ingest.csvfiles import write_csv as _write

from nbaprops.errors import InputError
from nbaprops.ingest.boxscores import ingest_boxscores
from nbaprops.storage.duckdb import DuckDBStorage

SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SEASON_CSV = SHARED / "nba-boxscores" / "player_logs_2024-25.csv"


@pytest.fixture
def season_rows() -> list[dict[str, str]]:
    if not SEASON_CSV.exists():
        pytest.skip(f"shared data not found: {SEASON_CSV}")
    with SEASON_CSV.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return [row for _, row in zip(range(200), reader, strict=False)]


def _state(storage: DuckDBStorage) -> tuple[int, int, int]:
    return (
        storage.scalar("SELECT count(*) FROM box_scores"),
        storage.scalar("SELECT count(*) FROM ingest_log"),
        storage.scalar("SELECT count(*) FROM teams"),
    )


def test_reingesting_shipped_rows_adds_nothing(
    storage: DuckDBStorage, season_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    before = _state(storage)[0]
    report = ingest_boxscores(storage, [_write(tmp_path / "slice.csv", season_rows)])
    assert (report.rows_read, report.rows_added) == (200, 0)
    assert storage.scalar("SELECT count(*) FROM box_scores") == before

    # a genuinely new game is added once
    new = [dict(r, GAME_ID="0099999999") for r in season_rows[:5]]
    path = _write(tmp_path / "new.csv", new)
    assert ingest_boxscores(storage, [path]).rows_added == 5
    assert ingest_boxscores(storage, [path]).rows_added == 0
    assert storage.scalar("SELECT count(*) FROM box_scores") == before + 5


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("MIN", "-3", "must not be negative"),
        ("GAME_DATE", "2024-02-31", "is not a date"),
        ("PTS", None, "missing required column"),
    ],
)
def test_bad_boxscores_are_refused(
    storage: DuckDBStorage,
    season_rows: list[dict[str, str]],
    tmp_path: Path,
    column: str,
    value: str | None,
    message: str,
) -> None:
    good = _write(tmp_path / "good.csv", [dict(r, GAME_ID="0099999998") for r in season_rows[:20]])
    rows = [dict(r) for r in season_rows[:40]]
    if value is None:
        rows = [{k: v for k, v in r.items() if k != column} for r in rows]
    else:
        rows[16][column] = value  # file line 18
    bad = _write(tmp_path / "bad.csv", rows)
    before = _state(storage)
    with pytest.raises(InputError, match=message) as info:
        ingest_boxscores(storage, [good, bad])
    err = info.value
    assert err.path == str(bad) and err.column == column and "bad.csv" in str(err)
    if value is not None:
        assert err.row == 18 and "line 18" in str(err)
    assert _state(storage) == before


def test_a_stored_game_with_other_values_is_refused(
    storage: DuckDBStorage, season_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    rows = [dict(r) for r in season_rows[:10]]
    rows[3]["PTS"] = str(int(rows[3]["PTS"]) + 7)  # same (PLAYER_ID, GAME_ID) as stored, different points
    path = _write(tmp_path / "conflict.csv", rows)
    before = _state(storage)
    with pytest.raises(InputError) as info:
        ingest_boxscores(storage, [path])
    assert "conflict.csv" in str(info.value)
    assert _state(storage) == before
