"""The board's offers as of a time read the posting history, as the prediction's line does (issues 20, 21).

Before: ``date_offers`` (the board, picks, the offers graded) read ``prop_lines`` alone, which keeps each key's
latest posting only, so in a replay after a later ingest a key posted again since was missing from the offers
as of 16:00 while ``select_lines`` had it from the history.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.ingest.csvfiles import write_csv
from tests.ingest.test_lines_history import DAY, FIELDS, T1, T2, _at, _row

from nbaprops.ingest.lines import date_offers, ingest_lines
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

OFFER = tuple[str, str, float, float, float]


def _offers(storage: DuckDBStorage, as_of: Any, **kwargs: Any) -> list[OFFER]:
    table = date_offers(storage, DAY, as_of=as_of, **kwargs)
    return [(r["player_lookup"], r["bookmaker"], r["line"], r["over_price"], r["under_price"])
            for r in table.to_pylist()]  # fmt: skip


def test_a_replay_prices_the_offers_on_the_board_at_its_time(storage: DuckDBStorage, tmp_path: Path) -> None:
    ingest_lines(storage, [write_csv(tmp_path / "t1.csv", T1, FIELDS)])
    night = {t: date_offers(storage, DAY, as_of=t) for t in (_at(16), _at(17, 59))}
    assert ("zionwilliamson", "DraftKings", 34.5, -110.0, -110.0) in _offers(storage, _at(16))
    ingest_lines(storage, [write_csv(tmp_path / "t2.csv", T2, FIELDS)])
    # Between T1 and T2: the T1 postings, every value and the order as the night read them.
    for t, table in night.items():
        assert date_offers(storage, DAY, as_of=t).equals(table)
    between = _offers(storage, _at(16))
    assert ("zionwilliamson", "DraftKings", 34.5, -110.0, -110.0) in between
    assert ("lukadoncic", "DraftKings", 50.5, -110.0, -110.0) in between
    assert not any(o[2] == 36.5 for o in between)  # first posted at 18:00
    # After T2: the T2 postings.
    after = _offers(storage, _at(19))
    assert ("zionwilliamson", "DraftKings", 34.5, -150.0, 120.0) in after
    assert ("zionwilliamson", "FanDuel", 35.5, -120.0, 100.0) in after
    assert ("zionwilliamson", "DraftKings", 36.5, -110.0, -110.0) in after
    assert _offers(storage, None) == after


def test_each_player_market_reads_the_board_at_its_own_prediction_time(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    ingest_lines(storage, [write_csv(tmp_path / "t1.csv", T1, FIELDS)])
    ingest_lines(storage, [write_csv(tmp_path / "t2.csv", T2, FIELDS)])
    cut = {("zionwilliamson", "pra"): _at(16), ("lukadoncic", "pra"): _at(19)}
    offers = _offers(storage, cut)
    assert ("zionwilliamson", "DraftKings", 34.5, -110.0, -110.0) in offers
    assert ("lukadoncic", "DraftKings", 50.5, -125.0, 105.0) in offers
    # An unlisted player-market keeps every row (its latest posting); a listed one with None as well.
    assert _offers(storage, {("zionwilliamson", "pra"): _at(16)}, players=["lukadoncic"]) == [
        ("lukadoncic", "DraftKings", 50.5, -125.0, 105.0)
    ]
    assert _offers(storage, {("zionwilliamson", "pra"): None}) == _offers(storage, None)
    # The main line is chosen among the postings kept: at 16:00 DraftKings' 34.5 (balanced then), not its 36.5.
    table = date_offers(storage, DAY, as_of=cut, players=["zionwilliamson"]).to_pylist()
    assert [(r["bookmaker"], r["line"]) for r in table if r["is_main"]] == [
        ("BetMGM", 34.5), ("DraftKings", 34.5), ("FanDuel", 35.5)
    ]  # fmt: skip
    # At 19:00 DraftKings' balanced 36.5 is its main line, not its lower 34.5 re-priced to -150/+120.
    table = date_offers(storage, DAY, as_of=_at(19), players=["zionwilliamson"]).to_pylist()
    assert [(r["bookmaker"], r["line"]) for r in table if r["is_main"]] == [
        ("BetMGM", 34.5), ("DraftKings", 36.5), ("FanDuel", 35.5)
    ]  # fmt: skip


def test_a_key_with_no_posting_by_the_time_is_off_the_board(storage: DuckDBStorage, tmp_path: Path) -> None:
    # A key re-posted later reads its earlier posting; with no posting by the time it is not on the board.
    late = [_row(34.5, "DraftKings", _at(15)), _row(34.5, "DraftKings", _at(23), over=-200, under=150)]
    ingest_lines(storage, [write_csv(tmp_path / "a.csv", late[:1], FIELDS)])
    ingest_lines(storage, [write_csv(tmp_path / "b.csv", late[1:], FIELDS)])
    assert _offers(storage, _at(16)) == [("zionwilliamson", "DraftKings", 34.5, -110.0, -110.0)]
    assert _offers(storage, _at(14)) == []


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _moved(price: str) -> str:
    if not price:
        return price
    value = float(price)
    return str(value + 5 if value > 0 else value - 5)


def test_a_replay_of_real_lines_reposted_later_reads_the_first_postings(
    storage: DuckDBStorage, loaded_db_file: Path, tmp_path: Path, pra_lines: dict[str, Path]
) -> None:
    # Three dates of the real 2024-25 PRA lines (up to 10 books, alternate lines), in one store as posted and in
    # another posted again 2 h later at a moved over price: as of before any re-posting, the second store's
    # offers are the first's, every value and the order.
    with pra_lines["2024-25"].open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if r["event_date"] in ("2024-11-24", "2025-01-15", "2025-04-06")]
    (tmp_path / "first").mkdir()
    (tmp_path / "again").mkdir()
    first = write_csv(tmp_path / "first" / "pra_odds.csv", rows, fields)
    again = [
        {**r, "timestamp": (_instant(r["timestamp"]) + timedelta(hours=2)).isoformat(),
         "over_price": _moved(r["over_price"])}
        for r in rows
    ]  # fmt: skip
    ingest_lines(storage, [first])
    later = open_storage(shutil.copyfile(loaded_db_file, tmp_path / "later.duckdb"))
    try:
        ingest_lines(later, [first])
        ingest_lines(later, [write_csv(tmp_path / "again" / "pra_odds.csv", again, fields)])
        for day in sorted({date.fromisoformat(r["event_date"]) for r in rows}):
            start = min(_instant(r["timestamp"]) for r in rows if r["event_date"] == day.isoformat())
            cut = start + timedelta(hours=2, seconds=-1)
            players = sorted(set(date_offers(storage, day).column("player_lookup").to_pylist()))
            per = {(p, "pra"): cut - timedelta(minutes=30 * (i % 2)) for i, p in enumerate(players)}
            for as_of in (cut, per):
                night = date_offers(storage, day, as_of=as_of)
                assert night.num_rows > 20
                assert date_offers(later, day, as_of=as_of).equals(night)
            assert date_offers(later, day).num_rows == date_offers(storage, day).num_rows
            assert date_offers(later, day).column("posted_at") != date_offers(storage, day).column(
                "posted_at"
            )
    finally:
        later.close()
