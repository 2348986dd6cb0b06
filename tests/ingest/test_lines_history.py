"""Lines as of a time read the posting history: a replay run after later ingests reads what the night read.

Before (issue 20): ``select_lines`` and ``line_players`` read ``prop_lines`` alone, which keeps each key's latest
posting only, so a key posted again after the replayed instant was off the board: as of 16:00 with DraftKings'
34.5 re-priced at 18:00, DraftKings had no line (and a player all of whose keys were re-posted had none).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.ingest.csvfiles import write_csv

from nbaprops.ingest.lines import ingest_lines, line_players, select_lines, select_lines_by_date
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

DAY = date(2024, 1, 15)
FIELDS = ["game_date", "player_name", "market", "line", "bookmaker", "over_price", "under_price", "posted_at",
          "commence_time", "home_team", "away_team"]  # fmt: skip
TIP = "2024-01-16T01:00:00Z"


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, 15, hour, minute, tzinfo=UTC)


def _row(
    line: float,
    book: str,
    posted: datetime,
    over: int = -110,
    under: int = -110,
    player: str = "Zion Williamson",
) -> dict[str, str]:
    values = [DAY.isoformat(), player, "pra", str(line), book, str(over), str(under), posted.isoformat(), TIP,
              "DAL", "NOP"]  # fmt: skip
    return dict(zip(FIELDS, values, strict=True))


# 15:00: three books; 18:00: DraftKings re-prices its 34.5 and adds a balanced 36.5, FanDuel re-prices its 35.5,
# and Luka Doncic's only line is re-priced.
T1 = [
    _row(34.5, "DraftKings", _at(15)),
    _row(35.5, "FanDuel", _at(15)),
    _row(34.5, "BetMGM", _at(15), over=-115, under=-105),
    _row(50.5, "DraftKings", _at(15), player="Luka Doncic"),
]
T2 = [
    _row(34.5, "DraftKings", _at(18), over=-150, under=120),
    _row(36.5, "DraftKings", _at(18)),
    _row(35.5, "FanDuel", _at(18), over=-120, under=100),
    _row(50.5, "DraftKings", _at(18), over=-125, under=105, player="Luka Doncic"),
]


def _lines(storage: DuckDBStorage, as_of: datetime | None) -> Any:
    return select_lines(storage, DAY, "pra", as_of=as_of)


def _zion(storage: DuckDBStorage, as_of: datetime | None) -> tuple[float, int, str, float, float]:
    rows = [r for r in _lines(storage, as_of).to_pylist() if r["player_lookup"] == "zionwilliamson"]
    assert len(rows) == 1
    r = rows[0]
    return r["line"], r["n_books"], r["bookmaker"], r["over_price"], r["under_price"]


def _players(storage: DuckDBStorage, as_of: datetime) -> list[str]:
    return sorted(line_players(storage, DAY, ["pra"], as_of).column("player_lookup").to_pylist())


def test_a_replay_reads_the_posting_on_the_board_at_its_time(storage: DuckDBStorage, tmp_path: Path) -> None:
    ingest_lines(storage, [write_csv(tmp_path / "t1.csv", T1, FIELDS)])
    night = {t: _lines(storage, t) for t in (_at(15), _at(16), _at(17, 59))}
    night_players = _players(storage, _at(16))
    assert night_players == ["lukadoncic", "zionwilliamson"]
    ingest_lines(storage, [write_csv(tmp_path / "t2.csv", T2, FIELDS)])

    assert _lines(storage, _at(14, 59)).num_rows == 0
    for t, table in night.items():  # between the postings (and exactly at the first): the night's lines
        assert _lines(storage, t).equals(table), t
    assert _zion(storage, _at(16)) == (
        34.5,
        3,
        "BetMGM",
        -115.0,
        -105.0,
    )  # before: (34.5, 1, ...) BetMGM alone
    assert _players(storage, _at(16)) == night_players  # before: Luka had no line
    # exactly at the second posting, and after it: DraftKings' main line is its balanced 36.5 now
    assert _zion(storage, _at(18)) == (35.5, 3, "FanDuel", -120.0, 100.0)
    assert _lines(storage, _at(18)).equals(_lines(storage, None))
    # the backtest's several-date read gives each date the same
    by_date = select_lines_by_date(storage, {DAY: _at(16), DAY + timedelta(days=1): None}, ["pra"])
    assert by_date.equals(night[_at(16)])


def test_a_posting_after_tip_off_takes_the_key_off_the_board(storage: DuckDBStorage, tmp_path: Path) -> None:
    """The latest posting by the time counts as it is: an in-play one (posted at or after tip-off) is not used,
    and the key does not fall back to its pre-game posting (which was no longer on the board)."""
    ingest_lines(storage, [write_csv(tmp_path / "t1.csv", T1, FIELDS)])
    late = [_row(34.5, "DraftKings", datetime(2024, 1, 16, 1, 0, tzinfo=UTC), over=-200, under=150)]
    ingest_lines(storage, [write_csv(tmp_path / "live.csv", late, FIELDS)])
    assert _zion(storage, _at(16)) == (34.5, 3, "BetMGM", -115.0, -105.0)
    assert _zion(storage, datetime(2024, 1, 16, 2, tzinfo=UTC))[1] == 2


def test_quarantined_keys_stay_off_the_board_of_every_time(storage: DuckDBStorage, tmp_path: Path) -> None:
    """A quarantined key (its stored quarantine_reason) counts at no time, from the history either; a player
    whose only line is quarantined has no line at any time."""
    lookup, name = storage.fetchall(
        """SELECT player_lookup, any_value(player_name) FROM box_scores
           WHERE game_date < ? AND minutes > 0 GROUP BY player_lookup
           HAVING count(*) >= 10 AND max(pts + reb + ast) < 25 ORDER BY player_lookup LIMIT 1""",
        [DAY],
    )[0]
    wild = [
        *T1,
        _row(60.5, "Caesars", _at(15)),  # 25 from the other books' median
        _row(95.5, "DraftKings", _at(15), player=name),  # far above his form
    ]
    ingest_lines(storage, [write_csv(tmp_path / "t1.csv", wild, FIELDS)])
    again = [
        _row(60.5, "Caesars", _at(18), over=-130, under=110),
        _row(95.5, "DraftKings", _at(18), over=-130, under=110, player=name),
    ]
    ingest_lines(storage, [write_csv(tmp_path / "t2.csv", again, FIELDS)])
    assert storage.scalar("SELECT count(*) FROM prop_lines WHERE quarantine_reason IS NOT NULL") == 2
    assert storage.scalar("SELECT count(*) FROM prop_line_snapshots WHERE line IN (60.5, 95.5)") == 4
    for t in (_at(16), _at(18)):
        assert _zion(storage, t)[1] == 3
        assert lookup not in _lines(storage, t).column("player_lookup").to_pylist()
        assert lookup not in _players(storage, t)


def test_a_file_from_before_the_history_keeps_the_posting_a_newer_one_replaces(
    db_path: Path, tmp_path: Path
) -> None:
    storage = open_storage(db_path)
    ingest_lines(storage, [write_csv(tmp_path / "t1.csv", T1, FIELDS)])
    night = _lines(storage, _at(16))
    storage.execute("DROP TABLE prop_line_snapshots")  # as a file written before the table existed
    storage.close()
    reader = open_storage(db_path, read_only=True)  # nothing creates the table: prop_lines alone
    try:
        assert reader.table_columns("prop_line_snapshots") == {}
        assert _lines(reader, _at(16)).equals(night)
        assert _players(reader, _at(16)) == ["lukadoncic", "zionwilliamson"]
    finally:
        reader.close()
    storage = open_storage(db_path)  # upgraded: the table is created empty
    try:
        assert _lines(storage, _at(16)).equals(night)  # the stored rows are the latest postings
        report = ingest_lines(storage, [write_csv(tmp_path / "t2.csv", T2, FIELDS)])
        # the four 18:00 postings, and the three stored 15:00 postings they replace
        assert report.details["snapshots_added"] == 7
        assert _lines(storage, _at(16)).equals(night)
        assert _players(storage, _at(16)) == ["lukadoncic", "zionwilliamson"]
    finally:
        storage.close()


# -- any order of ingesting the postings: the replay equals the night ------------------------------------------

_TIMES = [_at(15), _at(17), _at(19), datetime(2024, 1, 16, 1, 30, tzinfo=UTC)]  # the last one in play
_PRICES = [(-110, -110), (-125, 105), (100, -120), (-140, 120)]
_posting = st.tuples(
    st.sampled_from(["DraftKings", "FanDuel", "BetMGM"]),
    st.sampled_from([32.5, 33.5, 34.5]),
    st.sampled_from(range(len(_TIMES))),
    st.sampled_from(range(len(_PRICES))),
    st.sampled_from(["Zion Williamson", "Luka Doncic"]),
)


def _file(folder: Path, name: str, postings: list[tuple[str, float, int, int, str]]) -> Path:
    rows = [_row(line, book, _TIMES[t], *_PRICES[p], player=who) for book, line, t, p, who in postings]
    return write_csv(folder / name, rows, FIELDS)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    postings=st.lists(_posting, min_size=1, max_size=12, unique_by=lambda p: (p[0], p[1], p[2], p[4])),
    order=st.randoms(use_true_random=False),
    files=st.integers(min_value=1, max_value=3),
)
def test_any_ingest_order_replays_the_night(postings: list[Any], order: Any, files: int) -> None:
    """The night: each posting time's rows ingested at that time, the lines read then and just before the next.
    The replay: every posting ingested in a random order over ``files`` files (an older posting after a newer
    one), read as of the same times. Both give the same tables (no box scores: nothing is quarantined)."""
    cuts = sorted({t + timedelta(minutes=m) for t in _TIMES for m in (-1, 0, 90)})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        night_db = open_storage(folder / "night.duckdb")
        night: dict[datetime, tuple[Any, Any]] = {}
        try:
            for i, posted in enumerate(_TIMES):
                now = [p for p in postings if p[2] == i]
                if now:
                    ingest_lines(night_db, [_file(folder, f"night{i}.csv", now)])
                for cut in cuts:
                    if posted <= cut and (i + 1 == len(_TIMES) or cut < _TIMES[i + 1]):
                        night[cut] = (
                            _lines(night_db, cut),
                            line_players(night_db, DAY, ["pra"], cut),
                        )
        finally:
            night_db.close()
        shuffled = list(postings)
        order.shuffle(shuffled)
        replay_db = open_storage(folder / "replay.duckdb")
        try:
            for k in range(files):
                part = shuffled[k::files]
                if part:
                    ingest_lines(replay_db, [_file(folder, f"replay{k}.csv", part)])
            for cut, (lines, players) in night.items():
                assert _lines(replay_db, cut).equals(lines), cut
                assert line_players(replay_db, DAY, ["pra"], cut).equals(players), cut
            assert _lines(replay_db, None).equals(_lines(replay_db, datetime(2030, 1, 1, tzinfo=UTC)))
        finally:
            replay_db.close()
