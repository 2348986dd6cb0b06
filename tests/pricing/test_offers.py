"""Offers: EV at each offer's own line, the best over and under, exclusions, and a real slate."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nbaprops.ingest import ensure_aliases, ingest_lines, select_lines
from nbaprops.markets import BOOK_GAP
from nbaprops.pricing import expected_value, price_slate
from nbaprops.storage.duckdb import DuckDBStorage


def test_expected_value_per_unit_staked() -> None:
    assert float(expected_value(np.array(0.5), np.array(0.5), np.array(100.0))) == pytest.approx(0.0)
    assert float(expected_value(np.array(0.5), np.array(0.5), np.array(-110.0))) == pytest.approx(
        0.5 * 100 / 110 - 0.5
    )
    # A push (the 0.1 left over) refunds the stake: only wins and losses count.
    assert float(expected_value(np.array(0.5), np.array(0.4), np.array(100.0))) == pytest.approx(0.1)


def slate(rows: list[tuple[str, str, float, float, float]]) -> pa.Table:
    player, book, line, over, under = zip(*rows, strict=True)
    return pa.table(
        {
            "game_date": ["2025-01-10"] * len(rows),
            "player_lookup": list(player),
            "market": ["pra"] * len(rows),
            "bookmaker": list(book),
            "line": list(line),
            "over_price": list(over),
            "under_price": list(under),
        }
    )


ROWS = [
    ("jokic", "a", 50.5, -110.0, -110.0),
    ("jokic", "b", 50.5, -110.0, -110.0),
    ("jokic", "c", 50.5, 120.0, -150.0),  # a generous over
    ("jokic", "d", 49.5, -160.0, 125.0),  # a generous under one point lower
    ("jokic", "typo", 70.5, 400.0, -600.0),  # far from every other book
    ("murray", "a", 32.5, -110.0, -110.0),
    ("murray", "b", 33.5, 105.0, -125.0),
]


def test_best_offers_take_the_best_price_at_any_line_and_never_an_outlier() -> None:
    priced = price_slate(slate(ROWS), max_gap=BOOK_GAP)
    board = {row["player_lookup"]: row for row in priced.board.to_pylist()}
    jokic = board["jokic"]
    assert jokic["consensus_line"] == 50.5
    assert jokic["n_books"] == 4
    assert (
        jokic["best_over_book"] == "c"
        and jokic["best_over_line"] == 50.5
        and jokic["best_over_price"] == 120.0
    )
    assert jokic["best_over_ev"] > 0.0
    assert jokic["best_over_saving"] == pytest.approx(
        jokic["best_over_ev"]
        - float(expected_value(np.array(jokic["p_over"]), np.array(jokic["p_under"]), np.array(-110.0)))
    )
    assert jokic["best_under_book"] == "d"
    offers = priced.offers.to_pylist()
    assert [o["outlier"] for o in offers if o["player_lookup"] == "jokic"] == [
        False,
        False,
        False,
        False,
        True,
    ]
    for row in priced.board.to_pylist():
        assert 0 <= row["p_over"] <= 1 and row["p_over"] + row["p_under"] + row["p_push"] == pytest.approx(
            1.0
        )


def test_an_excluded_book_is_priced_but_never_the_best() -> None:
    priced = price_slate(slate(ROWS), max_gap=BOOK_GAP, excluded_books=["c"])
    jokic = next(r for r in priced.board.to_pylist() if r["player_lookup"] == "jokic")
    assert jokic["best_over_book"] != "c"
    assert jokic["n_books"] == 4  # still part of the consensus


def test_a_real_slate_is_priced_consistently_with_select_lines(
    storage: DuckDBStorage, pra_lines: dict[str, Path], tmp_path: Path
) -> None:
    dates = {"2024-12-15", "2024-12-22"}
    subset = tmp_path / "pra_subset.csv"
    with pra_lines["2024-25"].open() as source, subset.open("w", newline="") as target:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(target, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        writer.writerows(r for r in reader if r["event_date"] in dates)
    ensure_aliases(storage)
    ingest_lines(storage, [subset], market="pra")
    offers = storage.arrow(
        """SELECT game_date, player_lookup, market, bookmaker, line, over_price, under_price, is_main
           FROM prop_lines WHERE quarantine_reason IS NULL ORDER BY ALL"""
    )
    assert offers.num_rows > 100
    priced = price_slate(offers, max_gap=BOOK_GAP)
    board = priced.board.to_pylist()
    consensus = {
        (str(r["game_date"]), r["player_lookup"]): r["line"]
        for r in select_lines(storage, sorted(dates), "pra").to_pylist()
    }
    for row in board:
        assert row["consensus_line"] == consensus[(str(row["game_date"]), row["player_lookup"])]
        assert 0.0 <= row["p_over"] <= 1.0
        assert row["p_over"] + row["p_under"] + row["p_push"] == pytest.approx(1.0)
        assert row["n_books"] >= 1
        assert row["best_over_ev"] is None or np.isfinite(row["best_over_ev"])
    fair = np.array(priced.offers["fair"].to_pylist(), dtype=float)
    assert np.all((fair[np.isfinite(fair)] > 0) & (fair[np.isfinite(fair)] < 1))
    # Where every book posts one line, the fair P(over) there sits within the books' own fair probabilities.
    offer_rows = priced.offers.to_pylist()
    for row in board:
        if row["spread"] == 0.0 and row["n_books"] >= 3:
            own = [
                o["fair"]
                for o in offer_rows
                if o["player_lookup"] == row["player_lookup"]
                and o["line"] == row["consensus_line"]
                and o["fair"] == o["fair"]
            ]
            settled = row["p_over"] / (row["p_over"] + row["p_under"])
            assert min(own) - 1e-9 <= settled <= max(own) + 1e-9


def test_the_price_guard_leaves_out_a_price_far_from_the_consensus_at_its_line() -> None:
    rows = [*ROWS, ("jokic", "stale", 50.5, 250.0, -400.0)]  # fair P(over) 0.27 where the others say ~0.5
    assert price_slate(slate(rows), max_gap=BOOK_GAP).board.to_pylist()[0]["best_over_book"] == "stale"
    guarded = price_slate(slate(rows), max_gap=BOOK_GAP, max_price_gap=0.1)
    eligible = {
        o["bookmaker"]: o["eligible"] for o in guarded.offers.to_pylist() if o["player_lookup"] == "jokic"
    }
    assert eligible["a"] and eligible["b"] and eligible["c"]
    assert not eligible["stale"] and not eligible["typo"]
    assert guarded.board.to_pylist()[0]["best_over_book"] == "c"
