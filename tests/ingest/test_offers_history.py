"""The board's offers as of a time read the posting history, as the prediction's line does (issues 20, 21).

Before: ``date_offers`` (the board, picks, the offers graded) read ``prop_lines`` alone, which keeps each key's
latest posting only, so in a replay after a later ingest a key posted again since was missing from the offers
as of 16:00 while ``select_lines`` had it from the history.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.ingest.csvfiles import write_csv
from tests.ingest.test_lines_history import _PRICES, _TIMES, DAY, FIELDS, T1, T2, _at, _row

from nbaprops.ingest.lines import (
    _POSTING,
    MAIN_ORDER_SQL,
    SNAPSHOTS,
    _implied,
    _posted_by_sql,
    _Scope,
    date_offers,
    implied_sql,
    ingest_lines,
)
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

OFFER = tuple[str, str, float, float, float]

# The rule as one statement over prop_lines and its history (date_offers' before it applied it in Arrow): the
# reference every offers table is held equal to, value for value and in order.
_BY_PLAYER_MARKET = _Scope(
    cut="""SELECT unnest(CAST($who AS VARCHAR[])) AS player_lookup, unnest(CAST($what AS VARCHAR[])) AS market,
                  unnest(CAST($when AS TIMESTAMPTZ[])) AS as_of""",
    as_of="coalesce(CAST($cutoff AS TIMESTAMPTZ), c.as_of)",
    stored="""prop_lines p LEFT JOIN __cut c USING (player_lookup, market)
              WHERE p.game_date = $day AND p.quarantine_reason IS NULL
                AND ($players IS NULL OR list_contains($players, p.player_lookup))
                AND ($markets IS NULL OR list_contains($markets, p.market))""",
    history=f"""{SNAPSHOTS} s WHERE s.game_date = $day
                AND ($players IS NULL OR list_contains($players, s.player_lookup))
                AND ($markets IS NULL OR list_contains($markets, s.market))""",
)


def _reference(
    storage: DuckDBStorage,
    day: date,
    as_of: Any = None,
    players: list[str] | None = None,
    markets: list[str] | None = None,
) -> Any:
    per = as_of if isinstance(as_of, dict) else {}
    return storage.arrow(
        f"""WITH {_posted_by_sql(storage, ("player_name", *_POSTING), _BY_PLAYER_MARKET)},
            eligible AS (
                SELECT game_date, player_lookup, player_name, market, bookmaker, line, over_price, under_price,
                       posted_at
                FROM __posted
                WHERE posted_at IS NULL OR commence_time IS NULL OR posted_at < commence_time)
            SELECT *, row_number() OVER (PARTITION BY player_lookup, market, bookmaker
                                         ORDER BY {MAIN_ORDER_SQL}) = 1 AS is_main
            FROM eligible
            ORDER BY player_lookup, market, bookmaker, line""",
        {
            "day": day,
            "who": [k[0] for k in per],
            "what": [k[1] for k in per],
            "when": list(per.values()),
            "cutoff": None if isinstance(as_of, dict) else as_of,
            "players": players,
            "markets": markets,
        },
    )


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
                assert night.equals(_reference(storage, day, as_of))
                assert date_offers(later, day, as_of=as_of).equals(night)
                assert _reference(later, day, as_of).equals(night)
            some = players[::3]
            for as_of in (None, cut + timedelta(hours=2), per, {**per, (players[0], "pra"): None}):
                for store in (storage, later):
                    offers = date_offers(store, day, as_of=as_of, players=some, markets=["pra"])
                    assert offers.equals(_reference(store, day, as_of, some, ["pra"]))
            assert date_offers(later, day).num_rows == date_offers(storage, day).num_rows
            assert date_offers(later, day).column("posted_at") != date_offers(storage, day).column(
                "posted_at"
            )
    finally:
        later.close()


# -- any postings, any times: the offers equal the one-statement rule -----------------------------------------

_offer_posting = st.tuples(
    st.sampled_from(["DraftKings", "FanDuel", "BetMGM"]),
    st.sampled_from([32.5, 33.5, 34.5]),
    st.sampled_from(range(len(_TIMES))),
    st.sampled_from(range(len(_PRICES))),
    st.sampled_from(["Zion Williamson", "Luka Doncic"]),
)
_cut = st.sampled_from([None, *(t + timedelta(minutes=m) for t in _TIMES for m in (-1, 0, 90))])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    postings=st.lists(_offer_posting, min_size=1, max_size=14, unique_by=lambda p: (p[0], p[1], p[2], p[4])),
    files=st.integers(min_value=1, max_value=3),
    single=_cut,
    zion=_cut,
    luka=st.one_of(st.just("unlisted"), _cut),
    only_zion=st.booleans(),
)
def test_the_offers_are_the_one_statement_rule_of_any_postings(
    postings: list[Any], files: int, single: datetime | None, zion: Any, luka: Any, only_zion: bool
) -> None:
    """Postings at 15:00, 17:00, 19:00 and after tip-off (01:30) over one to three ingests (so keys posted again
    have a history), a line of unknown posting time, read as of one time, as of a time per player-market (Luka
    Doncic's unlisted or not) and for one player: every table equals :func:`_reference`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        storage = open_storage(folder / "offers.duckdb")
        try:
            for k in range(files):
                part = sorted(postings[k::files], key=lambda p: p[2])
                if part:
                    rows = [
                        _row(line, book, _TIMES[t], *_PRICES[p], player=who) for book, line, t, p, who in part
                    ]
                    ingest_lines(storage, [write_csv(folder / f"part{k}.csv", rows, FIELDS)])
            unknown = {**_row(40.5, "BetMGM", _at(15), over=-120, under=100), "posted_at": ""}
            ingest_lines(storage, [write_csv(folder / "unknown.csv", [unknown], FIELDS)])
            per = {("zionwilliamson", "pra"): zion}
            if luka != "unlisted":
                per[("lukadoncic", "pra")] = luka
            players = ["zionwilliamson"] if only_zion else None
            for as_of in (single, per):
                offers = date_offers(storage, DAY, as_of=as_of, players=players)
                assert offers.equals(_reference(storage, DAY, as_of, players)), as_of
        finally:
            storage.close()


def test_a_tie_in_balance_goes_to_the_latest_posting_then_the_lower_line(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    # Four DraftKings lines at -110/-110: 33.5 at 15:00, 34.5 and 35.5 at 17:00, 36.5 at an unknown time.
    rows = [
        _row(33.5, "DraftKings", _at(15)),
        _row(34.5, "DraftKings", _at(17)),
        _row(35.5, "DraftKings", _at(17)),
    ]
    rows.append({**_row(36.5, "DraftKings", _at(15)), "posted_at": ""})
    ingest_lines(storage, [write_csv(tmp_path / "tie.csv", rows, FIELDS)])
    for as_of, main in ((None, 34.5), (_at(16), 33.5), ({("zionwilliamson", "pra"): _at(16)}, 33.5)):
        offers = date_offers(storage, DAY, as_of=as_of)
        assert [r["line"] for r in offers.to_pylist() if r["is_main"]] == [main]
        assert offers.equals(_reference(storage, DAY, as_of))


def test_the_balance_in_arrow_is_the_sql_one_to_the_bit(storage: DuckDBStorage) -> None:
    # The main-line rule's first key is computed in Arrow: it must order rows as DuckDB's implied_sql would.
    prices = [None, -100.0, 100.0, -110.0, -105.5, 101.0, 99999.0, -99999.0, -112.5, 137.0]
    prices += [float(p) for p in range(-3000, 3001, 7) if abs(p) >= 100]
    table = pa.table({"price": pa.array(prices, pa.float64())})
    with storage.session() as session:
        session.register("__prices", table)
        expected = session.arrow(f"SELECT {implied_sql('price')} AS implied FROM __prices")["implied"]
    assert _implied(table["price"]).equals(expected)
