"""The line history (prop_line_snapshots): every posting kept once, the close read from it, old files upgraded."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from tests.ingest.csvfiles import write_csv

from nbaprops.ingest.lines import ingest_lines
from nbaprops.ingest.snapshots import closing_offers
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

DAY = date(2024, 1, 15)
FIELDS = ["game_date", "player_name", "market", "line", "bookmaker", "over_price", "under_price", "posted_at",
          "commence_time", "home_team", "away_team"]  # fmt: skip


def _row(
    line: str, book: str, posted: str, over: str = "-110", under: str = "-110", tip: str = ""
) -> dict[str, str]:
    values = ["2024-01-15", "Zion Williamson", "pra", line, book, over, under, posted, tip, "DAL", "NOP"]
    return dict(zip(FIELDS, values, strict=True))


def _close(storage: DuckDBStorage, **kw: datetime | None) -> list[tuple[str, float, datetime]]:
    offers, _ = closing_offers(storage, [DAY], ["zionwilliamson"], ["pra"], ["NOP"], ["DAL"], **kw)
    return sorted(zip(offers["bookmaker"].to_pylist(), offers["line"].to_pylist(), offers["posted_at"].to_pylist(),
                      strict=True))  # fmt: skip


def test_every_posting_is_kept_once_and_prop_lines_keeps_the_latest(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    tip = "2024-01-16T01:00:00Z"
    rows = [
        _row("34.5", "DraftKings", "2024-01-15T15:00:00Z", tip=tip),
        _row("34.5", "DraftKings", "2024-01-15T18:00:00Z", over="-120", under="100", tip=tip),
        _row("35.5", "DraftKings", "2024-01-15T23:00:00Z", tip=tip),
        _row("36.5", "DraftKings", "2024-01-16T01:30:00Z", tip=tip),  # in play
        _row("33.5", "FanDuel", "", tip=tip),  # no time: not a snapshot
    ]
    path = write_csv(tmp_path / "z.csv", rows, FIELDS)
    report = ingest_lines(storage, [path])
    assert report.details["snapshots_added"] == 4
    assert storage.scalar("SELECT count(*) FROM prop_line_snapshots") == 4
    assert storage.fetchall(
        "SELECT over_price FROM prop_lines WHERE line = 34.5 AND bookmaker = 'DraftKings'"
    ) == [(-120.0,)]
    again = ingest_lines(storage, [path])
    assert (
        again.details["snapshots_added"] == 0
        and storage.scalar("SELECT count(*) FROM prop_line_snapshots") == 4
    )
    # the close: DraftKings' last posting before tip-off (23:00, 35.5), not the in-play one; FanDuel has no time
    assert _close(storage) == [("DraftKings", 35.5, datetime(2024, 1, 15, 23, 0, tzinfo=UTC))]
    assert _close(storage, cutoff=datetime(2024, 1, 15, 20, tzinfo=UTC)) == [
        ("DraftKings", 34.5, datetime(2024, 1, 15, 18, 0, tzinfo=UTC))
    ]


def test_tipoff_comes_from_the_schedule_when_no_snapshot_gives_it(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "z.csv", [_row("34.5", "DraftKings", "2024-01-15T15:00:00Z")], FIELDS)
    ingest_lines(storage, [path])
    offers, tips = closing_offers(storage, [DAY], ["zionwilliamson"], ["pra"], ["NOP"], ["DAL"])
    assert tips["tipoff"].to_pylist() == [None] and offers.num_rows == 0  # unknown: no close
    storage.execute(
        "INSERT INTO schedule (game_id, game_date, home_team, away_team, commence_time) "
        "VALUES ('0022300569', DATE '2024-01-15', 'DAL', 'NOP', TIMESTAMPTZ '2024-01-15 20:30:00+00')"
    )
    offers, tips = closing_offers(storage, [DAY], ["zionwilliamson"], ["pra"], ["NOP"], ["DAL"])
    assert tips["tipoff"].to_pylist() == [datetime(2024, 1, 15, 20, 30, tzinfo=UTC)] and offers.num_rows == 1


def test_a_file_from_before_the_history_is_upgraded_in_place(db_path: Path, tmp_path: Path) -> None:
    storage = open_storage(db_path)
    path = write_csv(
        tmp_path / "z.csv",
        [_row("34.5", "DraftKings", "2024-01-15T15:00:00Z", tip="2024-01-16T01:00:00Z")],
        FIELDS,
    )
    ingest_lines(storage, [path])
    storage.execute("DROP TABLE prop_line_snapshots")  # as a file written before the table existed
    storage.close()
    reader = open_storage(db_path, read_only=True)  # `accuracy` reads it so: nothing creates the table
    try:
        assert reader.table_columns("prop_line_snapshots") == {}
        assert _close(reader) == [("DraftKings", 34.5, datetime(2024, 1, 15, 15, 0, tzinfo=UTC))]
    finally:
        reader.close()
    storage = open_storage(db_path)
    try:
        assert storage.scalar("SELECT count(*) FROM prop_line_snapshots") == 0
        # the stored prop_lines rows count as snapshots of their posted_at
        assert _close(storage) == [("DraftKings", 34.5, datetime(2024, 1, 15, 15, 0, tzinfo=UTC))]
        later = write_csv(
            tmp_path / "y.csv", [_row("35.5", "DraftKings", "2024-01-15T20:00:00Z", tip="2024-01-16T01:00:00Z")],
            FIELDS,
        )  # fmt: skip
        ingest_lines(storage, [later])
        assert _close(storage) == [("DraftKings", 35.5, datetime(2024, 1, 15, 20, 0, tzinfo=UTC))]
    finally:
        storage.close()
