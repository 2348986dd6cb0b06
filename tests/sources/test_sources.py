"""The live-source clients against the loopback stand-in: real HTTP code paths, real ingest, real DuckDB files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from tests.sources.fake_services import FakeServices
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.errors import SourceError, SourceUnavailableError
from nbaprops.ingest.schedule import games_for_date
from nbaprops.sources.injury_report import fetch_injuries, report_slots
from nbaprops.sources.nba_stats import fetch_boxscores, fetch_schedule
from nbaprops.sources.odds_api import fetch_lines
from nbaprops.storage.duckdb import DuckDBStorage

CLOCK = ManualClock(datetime(2025, 2, 12, 16, 0, tzinfo=UTC))  # 11 am ET on the game day


def _settings(services: FakeServices, tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        db_path=tmp_path / "x.duckdb", **{**services.settings_values(), "http_retries": 2, **extra}
    )


def _cut(storage: DuckDBStorage) -> None:
    storage.execute("DELETE FROM box_scores WHERE game_date >= '2025-02-10'")


def test_boxscores_are_incremental_and_retried_on_503(
    storage: DuckDBStorage, live_services: FakeServices, tmp_path: Path
) -> None:
    _cut(storage)
    live_services.fail("/stats/leaguegamelog", 503, 503)
    report = fetch_boxscores(storage, _settings(live_services, tmp_path), season="2024-25", clock=CLOCK)
    assert report.rows_added == 309 and len(live_services.asked("/stats/leaguegamelog")) == 3
    asked = live_services.asked("/stats/leaguegamelog")[-1][1]
    assert (asked["PlayerOrTeam"], asked["DateFrom"], asked["DateTo"]) == ("P", "02/10/2025", "02/11/2025")
    assert (
        storage.scalar("SELECT cursor FROM source_state WHERE resource = 'boxscores:2024-25'") == "2025-02-11"
    )
    again = fetch_boxscores(storage, _settings(live_services, tmp_path), season="2024-25", clock=CLOCK)
    assert again.asked is None and len(live_services.asked("/stats/leaguegamelog")) == 3


def test_a_source_still_failing_stores_nothing_and_names_source_and_status(
    storage: DuckDBStorage, live_services: FakeServices, tmp_path: Path
) -> None:
    _cut(storage)
    before = storage.scalar("SELECT count(*) FROM box_scores")
    live_services.fail("/stats/leaguegamelog", 503, 502, 503)
    with pytest.raises(
        SourceUnavailableError, match=r"^nba_stats: HTTP 503: leaguegamelog still failing after 3"
    ):
        fetch_boxscores(storage, _settings(live_services, tmp_path), season="2024-25", clock=CLOCK)
    assert storage.scalar("SELECT count(*) FROM box_scores") == before
    assert storage.scalar("SELECT count(*) FROM source_state") == 0


def test_lines_keep_every_book_and_a_failure_midway_stores_nothing(
    storage: DuckDBStorage, live_services: FakeServices, tmp_path: Path
) -> None:
    settings = _settings(live_services, tmp_path)
    live_services.fail("/odds/v4/sports/basketball_nba/events/f", 500, 500, 500)  # the second event, always
    with pytest.raises(SourceUnavailableError, match="odds_api: HTTP 500"):
        fetch_lines(storage, settings, game_date=date(2025, 2, 12), clock=CLOCK)
    assert storage.scalar("SELECT count(*) FROM prop_lines") == 0
    live_services.failures.clear()
    report = fetch_lines(storage, settings, game_date=date(2025, 2, 12), clock=CLOCK)
    # 2 events x 10 markets (five and their alternates) x 1 region
    assert report.details["quota_remaining"] == 500 - 2 * 10 and report.rows_added == report.records
    books = storage.fetchall("SELECT DISTINCT bookmaker, posted_at FROM prop_lines ORDER BY 1")
    assert [b for b, _ in books] == ["DraftKings", "FanDuel"] and all(p is not None for _, p in books)
    assert storage.scalar("SELECT count(DISTINCT market) FROM prop_lines") == 2
    assert fetch_lines(storage, settings, game_date=date(2025, 2, 12), clock=CLOCK).rows_added == 0


def test_a_bad_odds_key_is_an_error_naming_the_source_and_status(
    db_path: Path, live_services: FakeServices
) -> None:
    env = {**live_services.env(), "NBAPROPS_ODDS_API_KEY": "wrong"}
    result = CliRunner().invoke(
        app, ["fetch", "lines", "--date", "2025-02-12", "--db", str(db_path)], env=env
    )
    assert result.exit_code == 1
    assert "Error: odds_api: HTTP 401: events of 2025-02-12 was refused (check the API key)" in result.stderr
    assert "wrong" not in result.stderr


def test_schedule_keeps_tipoffs_and_postponements(
    storage: DuckDBStorage, live_services: FakeServices, tmp_path: Path
) -> None:
    report = fetch_schedule(storage, _settings(live_services, tmp_path), season="2024-25", clock=CLOCK)
    assert report.records == 30 and report.details["left_out"] == 1
    assert storage.scalar("SELECT status FROM schedule WHERE game_id = '0022400799'") == "postponed"
    assert "0022400799" not in games_for_date(storage, date(2025, 2, 13)).column("game_id").to_pylist()
    tonight = games_for_date(storage, date(2025, 2, 12))
    assert tonight.num_rows == 15 and set(tonight.column("source").to_pylist()) == {"schedule"}
    assert (
        fetch_schedule(storage, _settings(live_services, tmp_path), season="2024-25", clock=CLOCK).rows_added
        == 0
    )


def test_injury_report_walks_back_to_the_newest_published_pdf(
    storage: DuckDBStorage, live_services: FakeServices, tmp_path: Path
) -> None:
    settings = _settings(live_services, tmp_path)
    report = fetch_injuries(storage, settings, clock=CLOCK, at=datetime(2025, 2, 12, 18, 40))
    assert report.asked == {
        "report": "Injury-Report_2025-02-12_05PM.pdf",
        "tried_before": ["Injury-Report_2025-02-12_06PM.pdf"],
    }
    rows = storage.fetchall(
        "SELECT player_name, team, status FROM injury_reports WHERE player_lookup = 'giannisantetokounmpo'"
    )
    assert rows == [("Giannis Antetokounmpo", "MIL", "Out")]
    assert storage.scalar("SELECT DISTINCT report_at FROM injury_reports") == datetime(
        2025, 2, 12, 22, 0, tzinfo=UTC
    )
    asked = len(live_services.asked("/injury/"))
    again = fetch_injuries(storage, settings, clock=CLOCK, at=datetime(2025, 2, 12, 17, 5))
    assert (
        again.rows_added == 0
        and "already stored" in again.message
        and len(live_services.asked("/injury/")) == asked
    )
    with pytest.raises(SourceError, match="injury_report: HTTP 404: no injury report published"):
        fetch_injuries(storage, settings, clock=CLOCK, at=datetime(2025, 2, 12, 16, 59), tries=2)


def test_report_slots_are_hourly_then_quarter_hourly() -> None:
    assert report_slots(datetime(2025, 2, 12, 17, 40), 2) == [
        datetime(2025, 2, 12, 17),
        datetime(2025, 2, 12, 16),
    ]
    assert report_slots(datetime(2026, 1, 5, 17, 40), 2) == [
        datetime(2026, 1, 5, 17, 30),
        datetime(2026, 1, 5, 17, 15),
    ]


def test_fetch_commands_print_one_json_object(db_path: Path, live_services: FakeServices) -> None:
    result = CliRunner().invoke(
        app,
        ["fetch", "schedule", "--season", "2024-25", "--db", str(db_path), "--json"],
        env=live_services.env(),
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["source"] == "nba_stats"
