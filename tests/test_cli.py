"""The command line on real database files: happy paths with --json, and bad arguments."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nbaprops.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_predict_then_operate_the_batch(db_path: Path) -> None:
    db = str(db_path)
    code, stdout, stderr = run("predict", "--date", "2025-02-12", "--systems", "moving_average", "--db", db, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["state"] == "complete" and summary["staging_tables_left"] == 0
    assert set(summary["requests"]) == {"pending", "leased", "done", "skipped", "failed"}
    assert summary["active_predictions"] == summary["requests"]["done"] > 400
    assert {"predictions_staged", "drift", "duration_s", "batch_id", "game_date"} <= set(summary)
    assert "training" in stderr or "model" in stderr.lower()  # first run trains, and says so

    code, stdout, _ = run("status", summary["batch_id"], "--db", db, "--json")
    assert code == 0 and json.loads(stdout)["state"] == "complete"
    code, stdout, _ = run("batches", "--date", "2025-02-12", "--db", db, "--json")
    assert code == 0 and [b["batch_id"] for b in json.loads(stdout)["batches"]] == [summary["batch_id"]]
    code, stdout, _ = run("predictions", "--date", "2025-02-12", "--system", "moving_average", "--db", db, "--csv")
    table = list(csv.DictReader(io.StringIO(stdout)))
    assert code == 0 and len(table) == summary["active_predictions"]
    assert {"prediction_id", "recommendation", "model_version", "feature_version", "is_active"} <= set(table[0])
    # Rerunning the date resumes nothing (the batch is finished) and --force supersedes it.
    code, stdout, _ = run("predict", "--date", "2025-02-12", "--systems", "moving_average", "--db", db, "--json",
                          "--force")
    again = json.loads(stdout)
    assert code == 0 and again["batch_id"] != summary["batch_id"]
    assert again["active_predictions"] == summary["active_predictions"]
    code, stdout, _ = run("consolidate", summary["batch_id"], "--db", db, "--json")
    assert code == 0 and json.loads(stdout)["active_predictions"] == 0  # superseded by the forced batch
    for cmd in (["check-stalled"], ["cleanup-staging", "--older-than-hours", "0"]):
        code, stdout, _ = run(*cmd, "--db", db, "--json")
        assert code == 0 and isinstance(json.loads(stdout), dict)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--date", "2025-02-30"], "is not a date"),
        (["predict", "--date", "2025-02-12", "--markets", "steals"], "unknown market"),
        (["predict", "--date", "2025-02-12", "--systems", "oracle"], "unknown system"),
        (["batches", "--date", "yesterday"], "is not a date"),
        (["ingest", "lines", "/no/such/file.csv"], "no such file"),
        (["backtest", "--market", "pra"], "--season or --from"),
        (["backtest", "--season", "1999-00"], "no box scores for season"),
        (["backtest", "--from", "2025-01-10", "--to", "2025-01-01"], "before --from"),
        (["status", "nope"], "nope"),
    ],
)
def test_bad_arguments_fail_with_a_clear_error(args: list[str], message: str, db_path: Path) -> None:
    code, stdout, stderr = run(*args, "--db", str(db_path))
    assert code == 1, stdout + stderr
    assert stderr.startswith("Error:") and message in stderr


def test_bad_lines_file_changes_nothing(db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "lines.csv"
    bad.write_text("game_date,player_name,market,line,bookmaker,over_price,under_price\n"
                   "2025-02-12,LeBron James,points,25.5,FanDuel,-110,-110\n"
                   "2025-02-12,Anthony Davis,points,abc,FanDuel,-110,-110\n")
    code, _, stderr = run("ingest", "lines", str(bad), "--db", str(db_path))
    assert code == 1 and "lines.csv" in stderr and "line" in stderr
    code, stdout, _ = run("predictions", "--date", "2025-02-12", "--db", str(db_path), "--json")
    assert json.loads(stdout)["count"] == 0
