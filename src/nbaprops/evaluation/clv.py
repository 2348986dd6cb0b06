"""Closing-line value (CLV) of every bet, and how far the line has moved against a bet so far.

A **bet** is a prediction row recommending OVER or UNDER at its ``line_value`` and its book's price of that side
(``over_price`` / ``under_price``). Its **close** is the fair consensus of the books' closing offers
(:func:`nbaprops.ingest.snapshots.closing_offers`: each book's last snapshot before tip-off), priced by
:func:`nbaprops.pricing.price_slate` exactly as the board prices a date (outliers beyond ``BOOK_GAP``, the price
guard). Two numbers per bet:

* ``clv_line`` — points of line the consensus moved in the bet's favour: ``close − line`` for an over,
  ``line − close`` for an under (the over at 24.5 when the market closes at 26.5: +2).
* ``clv_prob`` — the closing fair probability that the bet's side wins at the bet's own line, given that it
  settles (a push refunds), minus the break-even probability of the price taken (``1 / decimal odds``, vig
  included): ``P_close(side | settles at line) − 1 / decimal(price)``. Positive means the bet was +EV at the
  closing fair price (its EV there is ``decimal · clv_prob``). Without a price it is not computed.

Only bets with a close count; the others are counted by why (``tipoff_unknown``: no snapshot gave tip-off and
the schedule has no game between the two teams; ``no_close``: no snapshot before tip-off).

Summaries (:func:`clv_summary`) per system, market and book, and per system and market over every book
(``bookmaker`` None): n, mean, a 95% interval of the mean (normal, ``mean ± 1.96 s/√n``; none under 2 bets) and
the share of bets with a positive value (ties at 0 are not positive), with its Wilson interval.

:func:`line_moves` is the same comparison for rows not yet closed: the consensus of each book's latest snapshot
before tip-off and before ``now`` against each row's line, so a board can flag a bet the market has left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.evaluation.metrics import Z, wilson
from nbaprops.ingest.snapshots import closing_offers
from nbaprops.markets import BOOK_GAP, validate_market
from nbaprops.pricing import decimal_odds, price_slate
from nbaprops.schema import BOARD_MOVE_COLUMNS
from nbaprops.storage.inputs import Inputs
from nbaprops.systems import validate_systems

PRICE_GUARD = 0.1
"""The board's price guard (nbaprops.pipeline.board.PRICE_GUARD): the close is priced as the board prices."""

_BETS_SQL = """
    SELECT g.system_id, g.market, g.game_date, g.player_lookup, g.recommendation, g.line_value,
           g.sportsbook, g.over_price, g.under_price, p.team, p.opponent
    FROM prediction_grades g
    JOIN player_prop_predictions p USING (prediction_id)
    WHERE g.run_id = $run AND g.recommendation IN ('OVER', 'UNDER') AND g.void_reason IS NULL
      AND g.line_value IS NOT NULL
      AND ($since IS NULL OR g.game_date >= $since) AND ($until IS NULL OR g.game_date <= $until)
      AND ($market IS NULL OR g.market = $market) AND ($system IS NULL OR g.system_id = $system)
    ORDER BY g.game_date, g.system_id, g.market, g.player_lookup
"""


def _keys(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(
        pc.cast(table["game_date"], pa.string()), table["player_lookup"], table["market"], "\x1f"
    )


def consensus_at(
    storage: Inputs,
    bets: pa.Table,
    *,
    cutoff: datetime | None = None,
) -> dict[str, np.ndarray]:
    """The closing consensus of each row of ``bets`` (``game_date``, ``player_lookup``, ``market``, ``team``,
    ``opponent``, ``line_value``): arrays ``close_line``, ``p_over`` / ``p_under`` (fair, at the row's line,
    given it settles), ``has_close``, ``tipoff_known`` and ``tipoff`` (objects). One query and one
    ``price_slate`` call for every row."""
    n = bets.num_rows
    offers, tips = closing_offers(
        storage,
        bets["game_date"].to_pylist(),
        bets["player_lookup"].to_pylist(),
        bets["market"].to_pylist(),
        bets["team"].to_pylist(),
        bets["opponent"].to_pylist(),
        cutoff=cutoff,
    )
    tip_at = pc.index_in(_keys(bets), value_set=_keys(tips))
    tipoff = np.asarray(tips["tipoff"].take(tip_at).to_pylist(), dtype=object) if n else np.empty(0, object)
    out: dict[str, np.ndarray] = {
        "close_line": np.full(n, np.nan),
        "p_over": np.full(n, np.nan),
        "p_under": np.full(n, np.nan),
        "has_close": np.zeros(n, dtype=bool),
        "tipoff_known": np.array([t is not None for t in tipoff], dtype=bool),
        "tipoff": tipoff,
    }
    if offers.num_rows == 0:
        return out
    priced = price_slate(offers, max_gap=dict(BOOK_GAP), max_price_gap=PRICE_GUARD)
    at = pc.index_in(_keys(bets), value_set=_keys(priced.board))
    found = np.asarray(pc.is_valid(at), dtype=bool)
    group = np.asarray(pc.fill_null(at, 0), dtype=np.int64)
    line = np.asarray(pc.fill_null(pc.cast(bets["line_value"], pa.float64()), np.nan), dtype=np.float64)
    over, under, _ = priced.consensus.distribution.at(group).probabilities(np.nan_to_num(line))
    settled = over + under
    out["has_close"] = found
    out["close_line"] = np.where(found, priced.consensus.line[group], np.nan)
    out["p_over"] = np.where(found, over / settled, np.nan)
    out["p_under"] = np.where(found, under / settled, np.nan)
    return out


def bet_clv(
    storage: Inputs,
    *,
    since: date | None = None,
    until: date | None = None,
    market: str | None = None,
    system: str | None = None,
    run_id: str = "live",
) -> pa.Table:
    """Every graded bet (not void) of the period with its close and CLV (module docstring): the bet's columns
    plus ``tipoff``, ``close_line``, ``p_close`` (fair P(its side | settles) at its line at the close),
    ``break_even``, ``clv_line`` and ``clv_prob``."""
    if market is not None:
        validate_market(market)
    if system is not None:
        validate_systems([system])
    bets: pa.Table = storage.arrow(
        _BETS_SQL,
        {"run": run_id, "since": since, "until": until, "market": market, "system": system},
    )
    close = consensus_at(storage, bets)
    over = np.asarray(pc.equal(bets["recommendation"], "OVER"), dtype=bool)
    line = np.asarray(pc.fill_null(pc.cast(bets["line_value"], pa.float64()), np.nan), dtype=np.float64)

    def prices(name: str) -> np.ndarray:
        return np.asarray(pc.fill_null(pc.cast(bets[name], pa.float64()), np.nan), dtype=np.float64)

    price = np.where(over, prices("over_price"), prices("under_price"))
    with np.errstate(invalid="ignore", divide="ignore"):
        break_even = 1.0 / decimal_odds(price)
    p_close = np.where(over, close["p_over"], close["p_under"])
    clv_line = np.where(over, close["close_line"] - line, line - close["close_line"])
    columns = {
        "tipoff": pa.array(close["tipoff"].tolist(), type=pa.timestamp("us", tz="UTC")),
        "close_line": close["close_line"],
        "p_close": p_close,
        "break_even": break_even,
        "clv_line": clv_line,
        "clv_prob": p_close - break_even,
        "has_close": close["has_close"],
        "tipoff_known": close["tipoff_known"],
    }
    for name, values in columns.items():
        bets = bets.append_column(name, pa.array(values, from_pandas=True) if name != "tipoff" else values)
    return bets


def _figures(values: np.ndarray) -> dict[str, Any]:
    """n, mean, its 95% interval and the share positive (Wilson interval) of the finite ``values``."""
    v = values[np.isfinite(values)]
    n = int(v.size)
    if n == 0:
        return {
            "n": 0,
            "mean": None,
            "mean_ci": [None, None],
            "share_positive": None,
            "share_ci": [None, None],
        }
    mean = float(v.mean())
    half = Z * float(v.std(ddof=1)) / math.sqrt(n) if n > 1 else None
    positive = int((v > 0).sum())
    lo, hi = wilson(positive, n)
    return {
        "n": n,
        "mean": round(mean, 4),
        "mean_ci": [None, None] if half is None else [round(mean - half, 4), round(mean + half, 4)],
        "share_positive": round(positive / n, 4),
        "share_ci": [round(lo, 4) if lo is not None else None, round(hi, 4) if hi is not None else None],
    }


def clv_summary(clv: pa.Table) -> dict[str, Any]:
    """The ``clv`` section of ``accuracy``: counts, and per system, market and book (``bookmaker`` None: every
    book of the system and market) the line and probability CLV figures."""
    has = np.asarray(clv["has_close"], dtype=bool)
    known = np.asarray(clv["tipoff_known"], dtype=bool)
    system = np.asarray(clv["system_id"].to_pylist(), dtype=object)
    market = np.asarray(clv["market"].to_pylist(), dtype=object)
    book = np.asarray(pc.fill_null(clv["sportsbook"], "").to_pylist(), dtype=object)
    line = np.asarray(pc.fill_null(clv["clv_line"], np.nan), dtype=np.float64)
    prob = np.asarray(pc.fill_null(clv["clv_prob"], np.nan), dtype=np.float64)
    groups: list[dict[str, Any]] = []
    keys = sorted({(s, m) for s, m in zip(system[has], market[has], strict=True)})
    for s, m in keys:
        in_group = has & (system == s) & (market == m)
        for b in [None, *sorted(set(book[in_group]))]:
            rows = in_group if b is None else in_group & (book == b)
            groups.append(
                {
                    "system_id": s,
                    "market": m,
                    "bookmaker": b if b != "" else None,
                    "line": _figures(line[rows]),
                    "prob": _figures(prob[rows]),
                }
            )
    return {
        "bets": clv.num_rows,
        "with_close": int(has.sum()),
        "tipoff_unknown": int((~known).sum()),
        "no_close": int((known & ~has).sum()),
        "groups": groups,
    }


def line_moves(
    storage: Inputs,
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime | None = None,
) -> list[float | None]:
    """Points the consensus has moved in each bet's favour since it was made (negative: against it), from each
    book's latest snapshot before tip-off and before ``now`` (None: up to tip-off); None for a row that is not a
    bet or has no such snapshot. ``rows`` need ``game_date``, ``player_lookup``, ``market``, ``team``,
    ``opponent``, ``line_value`` and ``recommendation``."""
    bets = [
        r for r in rows if r.get("recommendation") in ("OVER", "UNDER") and r.get("line_value") is not None
    ]
    if not bets:
        return [None] * len(rows)
    table = pa.table(
        {
            name: pa.array([r.get(name) for r in bets], type=kind)
            for name, kind in (
                ("game_date", pa.date32()),
                ("player_lookup", pa.string()),
                ("market", pa.string()),
                ("team", pa.string()),
                ("opponent", pa.string()),
                ("line_value", pa.float64()),
            )
        }
    )
    close = consensus_at(storage, table, cutoff=now)
    line = np.asarray(table["line_value"], dtype=np.float64)
    over = np.array([r["recommendation"] == "OVER" for r in bets])
    moved = np.where(over, close["close_line"] - line, line - close["close_line"])
    by_id = {id(r): (None if math.isnan(m) else round(float(m), 4)) for r, m in zip(bets, moved, strict=True)}
    return [by_id.get(id(r)) for r in rows]


_MOVE_INPUTS = ("game_date", "player_lookup", "market", "team", "opponent", "line_value", "recommendation")

MOVE_COLUMNS: tuple[str, ...] = tuple(c.name for c in BOARD_MOVE_COLUMNS)
"""What the board adds to each row after its market columns (:data:`nbaprops.schema.BOARD_MOVE_COLUMNS`)."""


def with_line_moves(
    storage: Inputs,
    names: list[str],
    rows: list[list[Any]],
    *,
    threshold: float,
    now: datetime | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """The board's rows with :data:`MOVE_COLUMNS` appended (:func:`line_moves` over every bet at once; only the
    bets' columns it reads are looked at: a board holds thousands of rows of some forty columns)."""
    at = {name: names.index(name) for name in _MOVE_INPUTS if name in names}
    side = at.get("recommendation")
    bets = [i for i, row in enumerate(rows) if side is not None and row[side] in ("OVER", "UNDER")]
    found = (
        line_moves(storage, [{n: rows[i][j] for n, j in at.items()} for i in bets], now=now) if bets else []
    )
    moves: list[float | None] = [None] * len(rows)
    for i, move in zip(bets, found, strict=True):
        moves[i] = move
    out = [
        [*row, move, None if move is None else bool(move < -threshold - 1e-9)]
        for row, move in zip(rows, moves, strict=True)
    ]
    return [*names, *MOVE_COLUMNS], out


__all__ = ["MOVE_COLUMNS", "bet_clv", "clv_summary", "consensus_at", "line_moves", "with_line_moves"]
