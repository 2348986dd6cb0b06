"""The daily job end to end on a real file: tonight's games before any box score of tonight exists."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from tests.pipeline.helpers import assert_invariants

from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.ingest import ingest_schedule
from nbaprops.pipeline.run import run_batch
from nbaprops.storage.duckdb import DuckDBStorage

TONIGHT = date(2025, 4, 15)  # after the last shipped box score (2025-04-13)


def test_tonight_is_predicted_from_the_schedule_alone(storage: DuckDBStorage, tmp_path: Path) -> None:
    assert storage.scalar("SELECT count(*) FROM box_scores WHERE game_date >= ?", [TONIGHT]) == 0
    sched = tmp_path / "tonight.csv"
    sched.write_text(
        "game_date,home_team,away_team,commence_time\n"
        f"{TONIGHT},Boston Celtics,NYK,{TONIGHT}T23:30:00Z\n"
        f"{TONIGHT},LAL,Golden State Warriors,{TONIGHT}T02:00:00Z\n"
    )
    ingest_schedule(storage, [sched])
    clock = ManualClock(datetime(2025, 4, 15, 15, 0, tzinfo=UTC))  # the morning of the games
    settings = Settings(
        db_path=tmp_path / "x.duckdb", data_dir=tmp_path / "artifacts", systems=("moving_average",)
    )
    events: list[str] = []
    run = run_batch(
        storage,
        settings,
        TONIGHT,
        train_days=60,
        clock=clock,
        on_start=lambda batch_id, total: events.append(f"start {total}"),
        on_message=events.append,
        on_progress=lambda counts: events.append("progress"),
    )
    summary = run.summary
    # One order for every batch (pipeline/run.py): the batch exists before its models train, workers after.
    assert events[0] == f"start {sum(summary.requests.values())}"
    assert "training on" in events[1] and set(events[2:]) == {"progress"}
    assert run.games_source == {"schedule": 2} and run.games == 2
    assert summary.state == "complete" and summary.requests["done"] >= 40
    teams = {
        r[0]
        for r in storage.fetchall(
            "SELECT DISTINCT team FROM player_prop_predictions WHERE game_date = ? AND is_active", [TONIGHT]
        )
    }
    assert teams == {"BOS", "NYK", "LAL", "GSW"}
    versions = {
        r[0]
        for r in storage.fetchall(
            "SELECT DISTINCT model_version FROM player_prop_predictions WHERE game_date = ?", [TONIGHT]
        )
    }
    assert len(versions) == 1 and versions.pop().startswith("moving_average@points-20250415-")
    assert_invariants(storage, summary.batch_id, clock=clock)
