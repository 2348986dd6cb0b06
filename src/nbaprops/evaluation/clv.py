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

:func:`pick_clv` does both for the recorded picks of ``pick_log`` (:func:`read_pick_log`): at the offer each was
taken at (its book, line and price), the consensus close and that book's own close, and, before tip-off, how far
the line has moved; :func:`pick_clv_summary` is ``accuracy``'s ``pick_clv`` section (the same figures as
:func:`clv_summary`, by the book each pick was taken at).
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
from nbaprops.schema import BOARD_MOVE_COLUMNS, PICK_LOG
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
    ``opponent``, ``line_value``, optionally ``bookmaker``): arrays ``close_line``, ``p_over`` / ``p_under``
    (fair, at the row's line, given it settles), ``has_close``, ``tipoff_known`` and ``tipoff`` (objects); with
    ``bookmaker``, that book's own close too: ``book_line`` (its main closing line), ``book_over_price`` /
    ``book_under_price`` there and ``book_fair_over`` (its de-vigged P(over | settles) there; NaN without a
    close at that book). One query and one ``price_slate`` call for every row."""
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
    by_book = "bookmaker" in bets.column_names
    if by_book:
        out |= {name: np.full(n, np.nan) for name in _BOOK_CLOSE}
    if offers.num_rows == 0:
        return out
    priced = price_slate(offers, max_gap=dict(BOOK_GAP), max_price_gap=PRICE_GUARD)
    if by_book:
        out |= _book_close(bets, priced.offers)
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


_BOOK_CLOSE = ("book_line", "book_over_price", "book_under_price", "book_fair_over")


def _book_close(bets: pa.Table, offers: pa.Table) -> dict[str, np.ndarray]:
    """Each row's book's main closing offer among the priced closing ``offers`` (:func:`consensus_at`)."""
    mains = offers.filter(pc.fill_null(offers["is_main"], False))

    def keys(table: pa.Table) -> pa.Array:
        return pc.binary_join_element_wise(_keys(table), pc.fill_null(table["bookmaker"], ""), "\x1f")

    at = pc.index_in(keys(bets), value_set=keys(mains))
    found = np.asarray(pc.is_valid(at), dtype=bool)
    index = pa.array(np.asarray(pc.fill_null(at, 0), dtype=np.int64))
    out = {}
    for name, column in zip(_BOOK_CLOSE, ("line", "over_price", "under_price", "fair"), strict=True):
        values = mains[column].take(index) if mains.num_rows else pa.nulls(bets.num_rows, pa.float64())
        numbers = np.asarray(pc.fill_null(pc.cast(values, pa.float64()), np.nan), dtype=np.float64)
        out[name] = np.where(found, numbers, np.nan)
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


def clv_summary(clv: pa.Table, *, book_column: str = "sportsbook") -> dict[str, Any]:
    """The ``clv`` section of ``accuracy``: counts, and per system, market and book (``bookmaker`` None: every
    book of the system and market) the line and probability CLV figures — and, when ``clv`` has
    ``clv_line_book`` (recorded picks: :func:`pick_clv`), the line CLV against the book's own close
    (``book_line``)."""
    has = np.asarray(clv["has_close"], dtype=bool)
    known = np.asarray(clv["tipoff_known"], dtype=bool)
    system = np.asarray(clv["system_id"].to_pylist(), dtype=object)
    market = np.asarray(clv["market"].to_pylist(), dtype=object)
    book = np.asarray(pc.fill_null(clv[book_column], "").to_pylist(), dtype=object)

    def values(name: str) -> np.ndarray:
        return np.asarray(pc.fill_null(pc.cast(clv[name], pa.float64()), np.nan), dtype=np.float64)

    figures = {"line": values("clv_line"), "prob": values("clv_prob")}
    if "clv_line_book" in clv.column_names:
        figures["book_line"] = values("clv_line_book")
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
                    **{name: _figures(v[rows]) for name, v in figures.items()},
                }
            )
    return {
        "bets": clv.num_rows,
        "with_close": int(has.sum()),
        "tipoff_unknown": int((~known).sum()),
        "no_close": int((known & ~has).sum()),
        "groups": groups,
    }


_LOG_SQL = """
    SELECT {columns} FROM pick_log
    WHERE ($day IS NULL OR game_date = $day)
      AND ($since IS NULL OR game_date >= $since) AND ($until IS NULL OR game_date <= $until)
      AND ($market IS NULL OR market = $market) AND ($system IS NULL OR system_id = $system)
    ORDER BY game_date, system_id, player_lookup, market
"""


def read_pick_log(
    storage: Inputs,
    *,
    game_date: date | None = None,
    since: date | None = None,
    until: date | None = None,
    market: str | None = None,
    system: str | None = None,
) -> pa.Table:
    """The rows of ``pick_log`` asked for, every contract column (:data:`nbaprops.schema.PICK_LOG`): a file from
    before a column was added, opened read-only (not upgraded yet), reads it as NULL, and one without the table
    as no row."""
    present = storage.table_columns(PICK_LOG.name)
    columns = ", ".join(
        f'"{c.name}"' if c.name in present else f'CAST(NULL AS {c.type}) AS "{c.name}"'
        for c in PICK_LOG.columns
    )
    if not present:
        return storage.arrow(f"SELECT {columns} WHERE false")
    params = {"day": game_date, "since": since, "until": until, "market": market, "system": system}
    return storage.arrow(_LOG_SQL.format(columns=columns), params)


PICK_CLV_COLUMNS = (
    "tipoff", "started", "status", "consensus_line", "line_move", "moved_against", "close_line", "p_close",
    "break_even", "clv_line", "clv_prob", "book_close_line", "book_close_price", "book_close_fair",
    "clv_line_book", "has_close", "tipoff_known",
)  # fmt: skip
"""What :func:`pick_clv` adds to each pick_log row."""


def pick_clv(
    storage: Inputs,
    picks: pa.Table,
    *,
    now: datetime,
    threshold: float = 1.0,
) -> pa.Table:
    """Each recorded pick (rows of :func:`read_pick_log`) with its line move, and its close and CLV once its game
    has tipped off (:data:`PICK_CLV_COLUMNS`; docs/market.md, "CLV of each recorded pick").

    * ``consensus_line``: the consensus of each book's latest snapshot before tip-off and before ``now`` — the
      close once ``started`` (tip-off known and at or before ``now``); ``line_move``: how far it has moved in
      the pick's favour from the line the system bet at (``system_line``: the consensus when it predicted);
      ``moved_against``: by more than ``threshold`` points against it.
    * Once started: ``close_line`` (the consensus close), ``p_close`` (the closing fair P(the pick's side |
      settles) at the pick's own line), ``break_even`` (``1 / decimal(price taken)``), ``clv_line`` (``close −
      line`` for an over, ``line − close`` for an under), ``clv_prob`` (``p_close − break_even``), and at the
      pick's own book: ``book_close_line`` (its main closing line), ``book_close_price`` (its closing price of
      the side there), ``book_close_fair`` (its own de-vigged P(side | settles) there) and ``clv_line_book``.
    * ``status``: ``withdrawn``, ``closed`` (started), ``moved_against`` or ``open``.
    """
    n = picks.num_rows
    line = np.asarray(pc.fill_null(pc.cast(picks["line"], pa.float64()), np.nan), dtype=np.float64)
    bets = pa.table(
        {
            "game_date": picks["game_date"],
            "player_lookup": picks["player_lookup"],
            "market": picks["market"],
            "team": picks["team"],
            "opponent": picks["opponent"],
            "line_value": line,
            "bookmaker": picks["bookmaker"],
        }
    )
    if n:
        close = consensus_at(storage, bets, cutoff=now)
    else:  # nothing to price: no query (a night without a pick, a file without lines)
        close = {k: np.empty(0, dtype=object if k == "tipoff" else bool if k.startswith(("has", "tip")) else float)
                 for k in ("close_line", "p_over", "p_under", "has_close", "tipoff_known", "tipoff", *_BOOK_CLOSE)}  # fmt: skip
    over = np.asarray(pc.fill_null(pc.equal(picks["side"], "over"), False), dtype=bool)
    sign = np.where(over, 1.0, -1.0)
    reference = np.asarray(
        pc.fill_null(pc.coalesce(pc.cast(picks["system_line"], pa.float64()), picks["line"]), np.nan),
        dtype=np.float64,
    )
    move = sign * (close["close_line"] - reference)
    started = np.array([t is not None and t <= now for t in close["tipoff"]], dtype=bool)
    withdrawn = np.asarray(pc.is_valid(picks["withdrawn_at"]), dtype=bool)
    price = np.asarray(pc.fill_null(pc.cast(picks["price"], pa.float64()), np.nan), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        break_even = 1.0 / decimal_odds(price)
    closed = started & close["has_close"]

    def at_close(values: np.ndarray) -> np.ndarray:
        return np.where(closed, values, np.nan)

    p_close = np.where(over, close["p_over"], close["p_under"])
    book_fair = np.where(over, close["book_fair_over"], 1.0 - close["book_fair_over"])
    against = move < -threshold - 1e-9
    columns: dict[str, Any] = {
        "tipoff": pa.array(close["tipoff"].tolist(), type=pa.timestamp("us", tz="UTC")),
        "started": started,
        "status": np.where(
            withdrawn, "withdrawn", np.where(started, "closed", np.where(against, "moved_against", "open"))
        ),
        "consensus_line": close["close_line"],
        "line_move": np.round(move, 4),
        "moved_against": pa.array(against, mask=~np.isfinite(move)) if n else pa.array([], pa.bool_()),
        "close_line": at_close(close["close_line"]),
        "p_close": at_close(p_close),
        "break_even": break_even,
        "clv_line": at_close(sign * (close["close_line"] - line)),
        "clv_prob": at_close(p_close - break_even),
        "book_close_line": at_close(close["book_line"]),
        "book_close_price": at_close(np.where(over, close["book_over_price"], close["book_under_price"])),
        "book_close_fair": at_close(book_fair),
        "clv_line_book": at_close(sign * (close["book_line"] - line)),
        "has_close": closed,
        "tipoff_known": close["tipoff_known"],
    }
    for name in PICK_CLV_COLUMNS:
        values = columns[name]
        picks = picks.append_column(
            name, values if isinstance(values, pa.Array) else pa.array(values, from_pandas=True)
        )
    return picks


def pick_clv_summary(clv: pa.Table) -> dict[str, Any]:
    """``accuracy``'s ``pick_clv`` section: :func:`clv_summary` of the recorded picks that stood to tip-off
    (withdrawn ones left out, counted), by the book each was taken at."""
    withdrawn = np.asarray(pc.equal(clv["status"], "withdrawn"), dtype=bool)
    started = np.asarray(clv["started"], dtype=bool)
    stood = clv.filter(pa.array(started & ~withdrawn))
    return {
        "picks": clv.num_rows,
        "withdrawn": int(withdrawn.sum()),
        "not_started": int((~started & ~withdrawn).sum()),
        **clv_summary(stood, book_column="bookmaker"),
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


MOVE_INPUTS: tuple[str, ...] = (
    "game_date",
    "player_lookup",
    "market",
    "team",
    "opponent",
    "line_value",
    "recommendation",
)
"""The columns of a bet :func:`line_moves` reads (a board row holds some forty: pass only these)."""

MOVE_COLUMNS: tuple[str, ...] = tuple(c.name for c in BOARD_MOVE_COLUMNS)
"""What the board adds to each row after its market columns (:data:`nbaprops.schema.BOARD_MOVE_COLUMNS`)."""


__all__ = [
    "MOVE_COLUMNS",
    "MOVE_INPUTS",
    "PICK_CLV_COLUMNS",
    "bet_clv",
    "clv_summary",
    "consensus_at",
    "line_moves",
    "pick_clv",
    "pick_clv_summary",
    "read_pick_log",
]
