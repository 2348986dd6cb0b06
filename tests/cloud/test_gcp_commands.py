"""The day's commands on the GCP backend, through the CLI as a user types them: `daily` (twice), `status`,
`grade`, `accuracy`, `picks`, `invalidate` read and write the cloud's batches and predictions, and a line that
appears after the predictions is re-predicted by `refresh` in a `line_update` batch on the cloud.

The coordinator runs one in-process queue worker (it pulls from Pub/Sub like `nbaprops worker`), so no worker
process is needed. A one-game date keeps it short.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.cloud.conftest import SMALL_SLATE, Deployment, assert_cloud_invariants
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.clock import ManualClock
from nbaprops.pipeline.refresh import refresh
from nbaprops.storage import open_gcp, open_storage

pytestmark = [pytest.mark.cloud]
ONE_GAME = SMALL_SLATE  # one game: 31 requests


def run(deployment: Deployment, *args: str) -> tuple[int, Any, str]:
    env = {**deployment.env, "NBAPROPS_WORKERS": "1", "NBAPROPS_DB_PATH": str(deployment.db)}
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    try:
        payload = json.loads(result.stdout)
    except json.JSONDecodeError:
        payload = result.stdout
    return result.exit_code, payload, result.stderr


def test_the_days_commands_read_and_write_the_cloud(deployment: Deployment, tmp_path: Path) -> None:
    """Before these commands took the backend, `grade` and `picks` read the file's empty predictions table
    ("no prediction for …"), and `daily` ran its batch on the file: the checks on Firestore and BigQuery below
    fail then."""
    code, day, err = run(deployment, "daily", "--date", ONE_GAME, "--no-fetch")
    assert code == 0, err
    assert day["outcome"] == "predicted", day
    batch_id = day["batch"]["batch_id"]
    backend = open_gcp(deployment.settings)
    try:
        assert [b.batch_id for b in backend.ledger.list_batches()] == [batch_id]
        assert_cloud_invariants(backend, batch_id)
        active = backend.warehouse.active_predictions(date.fromisoformat(ONE_GAME)).num_rows
        assert active == day["batch"]["requests"]["done"] > 10

        code, again, err = run(deployment, "daily", "--date", ONE_GAME, "--no-fetch")
        assert code == 0, err
        assert again["outcome"] == "unchanged", again  # the same inputs: the cloud's batch stands
        assert len(backend.ledger.list_batches()) == 1

        code, status, err = run(deployment, "status")
        assert code == 0 and status["batch_id"] == batch_id and status["state"] == "complete", err

        code, graded, err = run(deployment, "grade", "--date", ONE_GAME)
        assert code == 0, err
        assert graded["rows"] == active and graded["added"] == active, graded
        code, regraded, err = run(deployment, "grade", "--date", ONE_GAME)
        assert code == 0 and regraded["added"] == 0 and regraded["unchanged"] == active, regraded

        code, acc, err = run(deployment, "accuracy", "--since", ONE_GAME, "--until", ONE_GAME)
        assert code == 0, err
        assert [(m["system_id"], m["market"]) for m in acc["metrics"]] == [("moving_average", "points")]
        assert 0 < acc["metrics"][0]["n"] <= active  # players who did not play are void, not graded

        code, night, err = run(deployment, "picks", "--date", ONE_GAME, "--system", "moving_average")
        assert code == 0, err  # no lines on the date: no bet, but the cloud's predictions were found
        assert night["picks"] == []

        code, invalidated, err = run(deployment, "invalidate", "--date", ONE_GAME)
        # Nothing postponed and no report: nothing changes (the warehouse battery tests the changes).
        assert code == 0, err
        assert invalidated["rows_invalidated"] == {"game_postponed": 0, "player_ruled_out": 0}

    finally:
        backend.close()
    # The inputs file got the grades and the record of the day's runs, and no batch or prediction.
    local = open_storage(deployment.db, read_only=True)
    try:
        assert local.scalar("SELECT count(*) FROM prediction_grades") == active
        assert local.scalar("SELECT count(*) FROM daily_runs") == 2
        for table in ("prediction_batches", "prediction_requests", "player_prop_predictions"):
            assert local.scalar(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        local.close()

    # A first line for one player after the predictions: `refresh` re-predicts him alone, on the cloud. (In
    # process, on a clock before tip-off: the CLI's own clock says the 2025 game has long started.)
    lines = tmp_path / "late_line.csv"
    lines.write_text(
        "game_date,player_name,market,line,bookmaker,over_price,under_price,posted_at\n"
        f"{ONE_GAME},Shai Gilgeous-Alexander,points,31.5,FanDuel,-110,-110,{ONE_GAME}T15:00:00Z\n"
    )
    code, ingested, err = run(deployment, "ingest", "lines", str(lines))
    assert code == 0, err
    settings = deployment.settings.replace(workers=1)
    storage = open_storage(deployment.db)
    backend = open_gcp(settings, features=storage)
    try:
        tip_off_ahead = ManualClock(datetime(2025, 1, 26, 18, tzinfo=UTC))
        result = refresh(backend, settings, date.fromisoformat(ONE_GAME), clock=tip_off_ahead).as_dict()
        assert [m["player_lookup"] for m in result["moves"]] == ["shaigilgeousalexander"], result
        assert result["batch"]["kind"] == "line_update" and result["batch"]["state"] == "complete", result
        kinds = {b.batch_id: b.kind for b in backend.ledger.list_batches()}
        assert sorted(kinds.values()) == ["daily", "line_update"]
        assert_cloud_invariants(backend, result["batch"]["batch_id"])
        rows = backend.warehouse.active_predictions(date.fromisoformat(ONE_GAME)).to_pylist()
        assert len(rows) == active  # one row replaced, none added
        sga = [r for r in rows if r["player_lookup"] == "shaigilgeousalexander"]
        assert [(r["line_value"], r["batch_id"]) for r in sga] == [(31.5, result["batch"]["batch_id"])]
    finally:
        backend.close()
        storage.close()
