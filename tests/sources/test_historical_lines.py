"""``fetch lines --at``: The Odds API's historical snapshots, every book and the alternate ladders, into the line
history; the close read back from it. Recorded snapshots on a mock transport (tests/sources/historical.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from tests.sources.historical import API_KEY, CLOCK, EVENT_ID, SNAPSHOTS, TIPOFF, HistoricalOdds, fetch_all

from nbaprops.config import Settings, load_settings
from nbaprops.errors import ConfigError
from nbaprops.ingest.snapshots import closing_offers
from nbaprops.sources.odds_api import fetch_lines
from nbaprops.storage.duckdb import DuckDBStorage

DAY = date(2024, 1, 15)


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        db_path=tmp_path / "x.duckdb", odds_api_key=API_KEY, odds_api_url="http://odds.test", **extra
    )


def test_each_snapshot_is_kept_and_the_same_snapshot_twice_adds_nothing(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    odds = HistoricalOdds()
    settings = _settings(tmp_path, odds_regions="us,us2")
    fetch_all(storage, settings, odds)
    path, query = odds.asked[1]
    assert path == f"/v4/historical/sports/basketball_nba/events/{EVENT_ID}/odds"
    assert query["date"] == "2024-01-15T17:00:00Z" and query["regions"] == "us,us2"
    assert query["markets"] == "player_points_rebounds_assists,player_points_rebounds_assists_alternate"
    # 13 postings at 17:00 (12 main + the alternate ladder's 2), 4 at 18:30 (FanDuel), 12 at 20:15, 12 in play
    assert storage.scalar("SELECT count(*) FROM prop_line_snapshots") == 14 + 4 + 12 + 12
    assert storage.fetchall(
        "SELECT line, posted_at FROM prop_line_snapshots WHERE player_lookup = 'zionwilliamson' "
        "AND bookmaker = 'DraftKings' ORDER BY posted_at, line"
    ) == [
        (29.5, datetime(2024, 1, 15, 16, 55, tzinfo=UTC)),
        (34.5, datetime(2024, 1, 15, 16, 55, tzinfo=UTC)),
        (39.5, datetime(2024, 1, 15, 16, 55, tzinfo=UTC)),
        (36.5, datetime(2024, 1, 15, 20, 10, tzinfo=UTC)),
        (20.5, datetime(2024, 1, 15, 20, 58, tzinfo=UTC)),
    ]
    before = storage.scalar("SELECT count(*) FROM prop_line_snapshots")
    again = fetch_lines(
        storage,
        settings,
        game_date=DAY,
        clock=CLOCK,
        markets=("pra",),
        at=SNAPSHOTS[1],
        transport=odds.transport,
    )
    assert again.rows_added == 0 and storage.scalar("SELECT count(*) FROM prop_line_snapshots") == before


def test_without_alternates_only_the_main_markets_are_asked(storage: DuckDBStorage, tmp_path: Path) -> None:
    odds = HistoricalOdds()
    fetch_lines(
        storage, _settings(tmp_path, odds_alternates=False), game_date=DAY, clock=CLOCK, markets=("pra",),
        at=SNAPSHOTS[0], transport=odds.transport,
    )  # fmt: skip
    assert odds.asked[1][1]["markets"] == "player_points_rebounds_assists"
    assert storage.scalar("SELECT count(*) FROM prop_lines WHERE line IN (29.5, 39.5)") == 0


def test_the_close_is_each_books_last_snapshot_before_tipoff(storage: DuckDBStorage, tmp_path: Path) -> None:
    fetch_all(storage, _settings(tmp_path), HistoricalOdds())
    offers, tips = closing_offers(storage, [DAY], ["zionwilliamson"], ["pra"], ["NOP"], ["DAL"])
    assert tips["tipoff"].to_pylist() == [TIPOFF]
    close = sorted(zip(offers["bookmaker"].to_pylist(), offers["line"].to_pylist(), strict=True))
    # 20:15's lines; not the in-play 20.5 (posted after tip-off), not DraftKings' older alternate ladder
    assert close == [("BetMGM", 36.5), ("DraftKings", 36.5), ("FanDuel", 35.5)]
    early, _ = closing_offers(
        storage,
        [DAY],
        ["zionwilliamson"],
        ["pra"],
        ["NOP"],
        ["DAL"],
        cutoff=datetime(2024, 1, 15, 19, tzinfo=UTC),
    )
    assert sorted(early["line"].to_pylist()) == [29.5, 33.5, 34.5, 34.5, 39.5]
    assert sum(early["is_main"].to_pylist()) == 3


def test_odds_regions_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBAPROPS_ODDS_REGIONS", "us&apiKey=x")
    with pytest.raises(ConfigError, match="odds_regions must be region keys"):
        load_settings()
