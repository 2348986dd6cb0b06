"""Injury-report ingest: official column names, Last-First names, snapshots kept and read point in time."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from nbaprops.errors import InputError
from nbaprops.ingest.injuries import ingest_injuries, injury_snapshot
from nbaprops.storage.duckdb import DuckDBStorage

HEADER = "Report Time,Game Date,Game Time,Matchup,Team,Player Name,Current Status,Reason\n"


def _csv(tmp_path: Path, name: str, *rows: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_reports_are_kept_per_snapshot_and_read_as_of(storage: DuckDBStorage, tmp_path: Path) -> None:
    early = _csv(
        tmp_path,
        "early.csv",
        '2025-02-12T13:00:00,02/12/2025,07:00 (ET),MIL@MIN,Milwaukee Bucks,"Antetokounmpo, Giannis",'
        "Questionable,Injury/Illness - Left Calf; Strain",
        "2025-02-12T13:00:00,02/12/2025,07:00 (ET),MIL@MIN,Minnesota Timberwolves,,,NOT YET SUBMITTED",
    )
    late = tmp_path / "late.json"
    late.write_text(
        json.dumps(
            [
                {
                    "Report Time": "2025-02-12T22:00:00Z",
                    "Game Date": "02/12/2025",
                    "Game Time": "07:00 (ET)",
                    "Matchup": "MIL@MIN",
                    "Team": "Milwaukee Bucks",
                    "Player Name": "Antetokounmpo, Giannis",
                    "Current Status": "Out",
                    "Reason": "Injury/Illness - Left Calf; Strain",
                }
            ]
        )
    )
    report = ingest_injuries(storage, [early, late])
    assert (report.rows_read, report.rows_added, report.details["not_yet_submitted"]) == (2, 2, 1)
    assert ingest_injuries(storage, [early, late]).rows_added == 0
    day = date(2025, 2, 12)
    at_noon = injury_snapshot(storage, day, datetime(2025, 2, 12, 19, 0, tzinfo=UTC))  # 2 pm ET
    assert at_noon.select(["player_name", "status"]).to_pylist() == [
        {"player_name": "Giannis Antetokounmpo", "status": "Questionable"}
    ]
    assert at_noon.column("report_at")[0].as_py() == datetime(2025, 2, 12, 18, 0, tzinfo=UTC)  # 1 pm ET
    evening = injury_snapshot(storage, day, datetime(2025, 2, 13, 0, 0, tzinfo=UTC))
    assert evening.column("status").to_pylist() == ["Out"]
    assert injury_snapshot(storage, day, datetime(2025, 2, 12, 17, 0, tzinfo=UTC)).num_rows == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            '2025-02-12T17:00:00,02/12/2025,,,Milwaukee Bucks,"Antetokounmpo, Giannis",Sidelined,',
            "must be one of",
        ),
        ('2025-02-12T17:00:00,13/45/2025,,,Milwaukee Bucks,"Antetokounmpo, Giannis",Out,', "a game date"),
        ('yesterday,02/12/2025,,,Milwaukee Bucks,"Antetokounmpo, Giannis",Out,', "a report time"),
        ('2025-02-12T17:00:00,02/12/2025,,,Seattle Supersonics,"Kemp, Shawn",Out,', "not a known NBA team"),
    ],
)
def test_bad_rows_are_refused_with_line_and_column(
    storage: DuckDBStorage, tmp_path: Path, row: str, message: str
) -> None:
    path = _csv(
        tmp_path, "bad.csv", '2025-02-12T17:00:00,02/12/2025,,,Boston Celtics,"Brown, Jaylen",Out,', row
    )
    with pytest.raises(InputError, match=message) as caught:
        ingest_injuries(storage, [path])
    assert caught.value.row == 3
    assert storage.scalar("SELECT count(*) FROM injury_reports") == 0


def test_a_published_row_given_again_with_another_status_is_refused(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    first = _csv(
        tmp_path, "a.csv", '2025-02-12T17:00:00,02/12/2025,,,Boston Celtics,"Brown, Jaylen",Out,Knee'
    )
    ingest_injuries(storage, [first])
    changed = _csv(
        tmp_path, "b.csv", '2025-02-12T17:00:00,02/12/2025,,,Boston Celtics,"Brown, Jaylen",Probable,Knee'
    )
    with pytest.raises(InputError, match="already stored with another status"):
        ingest_injuries(storage, [changed])
    assert storage.fetchall("SELECT status FROM injury_reports") == [("Out",)]
