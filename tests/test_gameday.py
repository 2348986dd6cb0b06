"""`nbaprops daily` end to end through the CLI, with the recorded services on loopback standing in for the network.

The database holds the shipped seasons with 2024-25 cut after 2025-02-09 (as if shipped that day), so the run
must fetch two days of box scores, the schedule, the 5 pm injury report and two events' lines, then train,
predict 2025-02-12 and skip the players the report lists Out. A second run changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.sources.fake_services import FakeServices
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.storage import open_storage

runner = CliRunner()
TABLES = (
    "box_scores",
    "schedule",
    "prop_lines",
    "injury_reports",
    "prediction_batches",
    "prediction_requests",
    "player_prop_predictions",
)


def _state(db: Path) -> dict[str, object]:
    with open_storage(db) as storage:
        return {t: storage.fetchall(f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


def _daily(db: Path, services: FakeServices, *extra: str) -> dict[str, object]:
    result = runner.invoke(
        app,
        [
            "daily",
            "--date",
            "2025-02-12",
            "--systems",
            "moving_average,gbm",
            "--train-days",
            "60",
            "--db",
            str(db),
            "--json",
            *extra,
        ],
        env=services.env(),
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_daily_fetches_trains_predicts_and_skips_out_players_then_changes_nothing(
    db_path: Path, live_services: FakeServices
) -> None:
    with open_storage(db_path) as storage:
        storage.execute("DELETE FROM box_scores WHERE game_date >= '2025-02-10'")
    run = _daily(db_path, live_services)
    assert run["outcome"] == "predicted"
    assert 50 < run["peak_rss_mb"] < 100_000  # issue 21: the run says its peak memory
    fetched = {f["kind"]: f for f in run["fetches"]}
    assert fetched["boxscores"]["asked"] == {"season": "2024-25", "from": "2025-02-10", "to": "2025-02-11"}
    assert fetched["boxscores"]["rows_added"] == fetched["boxscores"]["records"] == 309
    assert (
        fetched["schedule"]["statuses"] == {"final": 14, "scheduled": 15, "postponed": 1}
        and fetched["schedule"]["left_out"] == 1
    )  # the All-Star game
    assert fetched["injuries"]["records"] == 9 and fetched["injuries"]["asked"]["report"].endswith(
        "_05PM.pdf"
    )
    assert (
        fetched["lines"]["rows_added"] > 20 and fetched["lines"]["quota_remaining"] == 500 - 2 * 2
    )  # 2 events x 2 markets (points and its alternates)
    batch = run["batch"]
    assert batch["state"] == "complete" and batch["games"] == 15
    out = {m["player_lookup"] for m in batch["missing"] if m["error_code"] == "injured_out"}
    assert {"giannisantetokounmpo", "damianlillard", "joelembiid", "tyresemaxey", "devinbooker"} <= out
    assert batch["injuries"]["skipped_out"] == len(out) and batch["injuries"]["listed"]["Out"] == 7
    assert all(
        i["trained_now"] and i["train_start"] == "2024-12-14" and i["trained_through"] == "2025-02-12"
        for i in batch["models"].values()
    )
    with open_storage(db_path) as storage:
        assert (
            storage.scalar(
                "SELECT count(*) FROM player_prop_predictions WHERE is_active AND player_lookup IN "
                "('giannisantetokounmpo', 'damianlillard')"
            )
            == 0
        )
        flags = storage.fetchall(
            "SELECT DISTINCT player_lookup, injury_status FROM player_prop_predictions "
            "WHERE is_active AND injury_status IS NOT NULL ORDER BY 1"
        )
        assert flags == [("kylekuzma", "Probable"), ("rudygobert", "Questionable")]
        assert (
            storage.scalar(
                "SELECT count(*) FROM player_prop_predictions WHERE is_active AND line_value IS NOT NULL "
                "AND player_lookup = 'anthonyedwards'"
            )
            == 2
        )
    # No graded rows with a line before the date to calibrate on: nothing shows the edge is real, so no bets,
    # and the run says why for each system.
    assert run["best_bets"] == []
    assert all(
        set(i["no_bets"]) == {"moving_average", "gbm"}
        and all("fewer than 50" in r for r in i["no_bets"].values())
        for i in batch["models"].values()
    )

    before = _state(db_path)
    artifacts = sorted(p.name for p in (db_path.parent / "artifacts").rglob("*"))
    asked_before = len(live_services.asked("/stats/leaguegamelog"))
    again = _daily(db_path, live_services)
    assert again["outcome"] == "unchanged" and again["batch"]["batch_id"] == batch["batch_id"]
    assert _state(db_path) == before
    assert sorted(p.name for p in (db_path.parent / "artifacts").rglob("*")) == artifacts
    assert len(live_services.asked("/stats/leaguegamelog")) == asked_before  # box scores: nothing new to ask
    assert again["best_bets"] == run["best_bets"]
    with open_storage(db_path) as storage:
        assert storage.fetchall("SELECT outcome FROM daily_runs ORDER BY started_at") == [
            ("predicted",),
            ("unchanged",),
        ]


def test_daily_on_a_date_without_games_says_so_and_exits_0(
    db_path: Path, live_services: FakeServices
) -> None:
    result = runner.invoke(
        app, ["daily", "--date", "2025-02-15", "--no-fetch", "--db", str(db_path)], env=live_services.env()
    )
    assert result.exit_code == 0, result.stderr
    assert "no games on 2025-02-15" in result.stdout
    assert "peak memory: " in result.stdout
    result = runner.invoke(app, ["predict", "--date", "2025-02-15", "--db", str(db_path)])
    assert result.exit_code == 1 and "no games on 2025-02-15" in result.stderr
