"""The market on the board: every offer of a date priced, the best over and under per player-market, the
list of offers with their EV, and the ladder of one player-market (issue 20, part 1).

One function per view, shared by the CLI and the API. Each reads the date's offers from ``prop_lines``
(:func:`nbaprops.ingest.lines.date_offers`: quarantined lines and lines posted after tip-off left out; for a
player-market the board holds a prediction of, only the lines posted by that prediction's time) and prices
them all in one vectorized :func:`nbaprops.pricing.price_slate` call.

The spread and the book weights are pricing's defaults (:data:`~nbaprops.pricing.DEFAULT_DISPERSION`, every
book weighted alike): learning them (:func:`~nbaprops.pricing.learn_market`) takes about half a minute over
two seasons of offers, which belongs to a nightly step, not to a read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.errors import InputError, UnknownBatchError
from nbaprops.ingest.lines import date_offers, normalise_market
from nbaprops.ingest.names import player_lookup
from nbaprops.markets import BOOK_GAP, LINE_RANGE, validate_market
from nbaprops.pipeline.reads import active_table
from nbaprops.pricing import SlatePricing, american_odds, ladder, price_slate
from nbaprops.schema import BOARD_MARKET_COLUMNS
from nbaprops.storage.seams import Backend

MARKET_NAMES: tuple[str, ...] = tuple(c.name for c in BOARD_MARKET_COLUMNS)
_FROM_PRICING = {"fair_p_over": "p_over", "book_spread": "spread"}  # board name -> price_slate's
OFFER_COLUMNS: tuple[str, ...] = (
    "player_name",
    "player_lookup",
    "market",
    "bookmaker",
    "line",
    "is_main",
    "over_price",
    "under_price",
    "book_p_over",
    "fair_p_over",
    "fair_p_push",
    "ev_over",
    "ev_under",
    "overround",
    "outlier",
    "eligible",
)
"""``predictions --offers``: each offer, the book's own de-vigged P(over | settled) (``book_p_over``), the fair
distribution's P(over) and P(push) at its line, the EV of each side, and whether it may be bet."""
PRICE_GUARD = 0.1
"""An offer whose own fair P(over) is this far from the consensus at its line is not bet (docs/market.md's
price guard: with every book weighted alike, the stale or mispaired prices of two books looked like gifts)."""
LADDER_SPAN = 5.0
_MAX_RUNGS = 401


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def excluded_books(present: Iterable[str], allowed: Sequence[str]) -> list[str]:
    """The books of ``present`` the user cannot bet at: every one not in ``allowed`` (case-insensitive);
    nothing when ``allowed`` is empty (every book allowed)."""
    wanted = {b.strip().lower() for b in allowed if b.strip()}
    return [b for b in present if wanted and b.lower() not in wanted]


def price_offers_of(
    backend: Backend,
    game_date: date,
    *,
    as_of: dict[tuple[str, str], datetime | None] | None = None,
    players: Sequence[str] | None = None,
    markets: Sequence[str] | None = None,
    books: Sequence[str] = (),
    listed_only: bool = False,
) -> SlatePricing | None:
    """Every offer of ``game_date`` (of ``players`` / ``markets`` when given) priced; None without an offer.

    Args:
        as_of: prediction time per (player_lookup, market): only lines posted by then count.
        books: the books the user can bet at (empty: all); the others still inform the fair price.
        listed_only: only the player-markets ``as_of`` lists are priced (``players`` × ``markets`` holds
            more when a filter or a limit left some out): each player-market is priced on its own offers, so
            the others' prices do not change.
    """
    # One prediction time for every listed player-market (one batch: the usual board) is one comparison, not a
    # join on a list of them: a third of the read's time on a 15-game date.
    times = set((as_of or {}).values())
    single = next(iter(times)) if len(times) == 1 and players is not None else None
    cut: datetime | dict[tuple[str, str], datetime | None] | None = single if single is not None else as_of
    table = date_offers(backend.features, game_date, as_of=cut, players=players, markets=markets)
    if listed_only and as_of is not None and table.num_rows:
        listed = pa.array([f"{p}\x1f{m}" for p, m in as_of], type=pa.string())
        table = table.filter(pc.is_in(_row_keys(table["player_lookup"], table["market"]), value_set=listed))
    if table.num_rows == 0:
        return None
    present = pc.unique(table["bookmaker"]).to_pylist()
    return price_slate(
        table,
        max_gap=dict(BOOK_GAP),
        excluded_books=excluded_books([str(b) for b in present], books),
        max_price_gap=PRICE_GUARD,
    )


def _prediction_times(
    backend: Backend, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> dict[tuple[str, str], datetime | None]:
    """(player_lookup, market) -> the prediction time of its newest batch among ``rows``."""
    column = {n: i for i, n in enumerate(names)}
    batch_times: dict[str, datetime | None] = {}
    times: dict[tuple[str, str], datetime | None] = {}
    for row in rows:
        batch = str(row[column["batch_id"]])
        if batch not in batch_times:
            try:
                batch_times[batch] = backend.ledger.get_batch(batch).as_of
            except UnknownBatchError:  # a row whose batch was cleaned up: every line posted before tip-off
                batch_times[batch] = None
        key = (str(row[column["player_lookup"]]), str(row[column["market"]]))
        when, seen = batch_times[batch], times.get(key)
        times[key] = when if key not in times else (None if when is None or seen is None else max(when, seen))
    return times


def _times_of(backend: Backend, table: pa.Table) -> dict[tuple[str, str], datetime | None]:
    """:func:`_prediction_times` of an Arrow table of the main table's rows: one look-up per batch and one step
    per distinct (player_lookup, market, batch_id), not per row (a board's seven systems share their batch)."""
    distinct = table.select(["player_lookup", "market", "batch_id"]).group_by(
        ["player_lookup", "market", "batch_id"], use_threads=False
    )
    keys = distinct.aggregate([])
    batch_times: dict[str, datetime | None] = {}
    for batch in pc.unique(keys["batch_id"]).to_pylist():
        try:
            batch_times[batch] = backend.ledger.get_batch(batch).as_of
        except UnknownBatchError:  # a row whose batch was cleaned up: every line posted before tip-off
            batch_times[batch] = None
    times: dict[tuple[str, str], datetime | None] = {}
    for player, market, batch in zip(
        keys["player_lookup"].to_pylist(),
        keys["market"].to_pylist(),
        keys["batch_id"].to_pylist(),
        strict=True,
    ):
        key, when = (player, market), batch_times[batch]
        seen = times.get(key)
        times[key] = when if key not in times else (None if when is None or seen is None else max(when, seen))
    return times


def _row_keys(player_lookup: Any, market: Any) -> Any:
    return pc.binary_join_element_wise(player_lookup, market, "\x1f")


def market_columns(
    backend: Backend, game_date: date, table: pa.Table, *, books: Sequence[str] = ()
) -> pa.Table:
    """:data:`MARKET_NAMES` of each row of ``table`` (rows of the main table, as Arrow): its player-market's
    consensus, fair P(over), books and spread, and best over and under offers (null where the player-market has
    no offer). Only the offers of the table's player-markets are read and priced, each as of its newest batch's
    prediction time."""
    n = table.num_rows
    times = _times_of(backend, table) if n else {}
    pricing = (
        price_offers_of(
            backend,
            game_date,
            as_of=times,
            players=sorted({p for p, _ in times}),
            markets=sorted({m for _, m in times}),
            books=books,
            listed_only=True,
        )
        if times
        else None
    )
    if pricing is None:
        return pa.table({name: pa.nulls(n) for name in MARKET_NAMES})
    board = pricing.board
    at = pc.index_in(
        _row_keys(table["player_lookup"], table["market"]),
        value_set=_row_keys(board["player_lookup"], board["market"]),
    )
    columns = {}
    for name in MARKET_NAMES:
        column = board[_FROM_PRICING.get(name, name)].take(at)
        if pa.types.is_floating(column.type):  # JSON has no NaN or infinity: a missing number is null
            column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, column.type))
        columns[name] = column
    return pa.table(columns)


def board_table(
    backend: Backend,
    game_date: date,
    *,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
    limit: int | None = None,
    books: Sequence[str] = (),
) -> tuple[pa.Table, int]:
    """The board of ``game_date`` as one Arrow table, and how many rows it has without ``limit``: the active
    rows best expected value first (:func:`~nbaprops.pipeline.reads.active_table`), each with its
    player-market's market columns (:func:`market_columns`; the service adds the line moves). Only the rows
    shown are priced.

    Raises:
        InputError: an unknown market or system, or a ``limit`` below 1.
    """
    if limit is not None and limit < 1:
        raise InputError("--limit must be at least 1")
    table = active_table(backend, game_date, market=market, system=system, bets_only=bets_only)
    total = table.num_rows
    if limit is not None:
        table = table.slice(0, limit)
    added = market_columns(backend, game_date, table, books=books)
    for name, column in zip(added.column_names, added.columns, strict=True):
        table = table.append_column(name, column)
    return table, total


def offer_rows(
    backend: Backend, game_date: date, *, market: str | None = None, books: Sequence[str] = ()
) -> tuple[list[str], list[list[Any]]]:
    """Every offer of ``game_date`` (of ``market``) with its fair probability and EV (:data:`OFFER_COLUMNS`),
    by player, market, line and book. Lines posted after the newest prediction time of the date's active
    rows of the player-market do not count (as on the board)."""
    if market is not None:
        market = validate_market(normalise_market(market))
    active = backend.warehouse.active_predictions(game_date)
    names = list(active.column_names)
    rows = [list(r.values()) for r in active.to_pylist()]
    pricing = price_offers_of(
        backend,
        game_date,
        as_of=_prediction_times(backend, names, rows) if rows else None,
        markets=None if market is None else [market],
        books=books,
    )
    if pricing is None:
        return list(OFFER_COLUMNS), []
    table = pricing.offers.rename_columns(
        [{"fair": "book_p_over", "p_over": "fair_p_over", "p_push": "fair_p_push"}.get(n, n)
         for n in pricing.offers.column_names]
    )  # fmt: skip
    records = table.select(list(OFFER_COLUMNS)).to_pylist()
    return list(OFFER_COLUMNS), [[_clean(r[c]) for c in OFFER_COLUMNS] for r in records]


def _resolve(backend: Backend, player: str) -> str:
    lookup = player_lookup(player)
    alias = backend.features.fetchone(
        "SELECT player_lookup FROM player_aliases WHERE alias_lookup = ?", [lookup]
    )
    return str(alias[0]) if alias else lookup


def ladder_of(
    backend: Backend,
    game_date: date,
    player: str,
    market: str,
    *,
    low: float | None = None,
    high: float | None = None,
    books: Sequence[str] = (),
) -> dict[str, Any]:
    """Fair probability and fair American odds at every half point from ``low`` to ``high`` (default: the
    consensus line ± 5) of one player-market, each with the offers posted at that line (book, prices, EV).

    Raises:
        InputError: an unknown market, no line that date, no line for the player, or a bad range.
    """
    market = validate_market(normalise_market(market))
    lookup = _resolve(backend, player)
    if not lookup:
        raise InputError(f"{player!r} is not a player name")
    active = backend.warehouse.active_predictions(game_date)
    mine = [r for r in active.to_pylist() if r["player_lookup"] == lookup and r["market"] == market]
    times = _prediction_times(backend, list(active.column_names), [list(r.values()) for r in mine])
    pricing = price_offers_of(
        backend, game_date, as_of=times, players=[lookup], markets=[market], books=books
    )
    if pricing is None:
        if backend.features.scalar("SELECT count(*) FROM prop_lines WHERE game_date = ?", [game_date]) == 0:
            raise InputError(f"no lines on {game_date}: ingest or fetch lines for that date first")
        raise InputError(
            f"no {market} line for {player!r} on {game_date} (nbaprops predictions --offers lists them)"
        )
    board = pricing.board.to_pylist()[0]
    consensus = _clean(board["consensus_line"])
    if consensus is None or board["mean"] is None or not math.isfinite(board["mean"]):
        raise InputError(f"no {market} line for {player!r} on {game_date} has both prices: nothing to price")
    floor_line = LINE_RANGE[market][0]
    lo = max(floor_line, math.floor((consensus - LADDER_SPAN) * 2) / 2) if low is None else low
    hi = math.ceil((consensus + LADDER_SPAN) * 2) / 2 if high is None else high
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (hi - lo) * 2 + 1 > _MAX_RUNGS:
        raise InputError(
            f"--low {lo:g} and --high {hi:g} are not a range of at most {_MAX_RUNGS} half points"
        )
    rungs = ladder(pricing.consensus.distribution, 0, lo, hi).to_pylist()
    offers = pricing.offers.to_pylist()
    for rung in rungs:
        rung["offers"] = [
            {
                "bookmaker": o["bookmaker"],
                "over_price": _clean(o["over_price"]),
                "under_price": _clean(o["under_price"]),
                "ev_over": _clean(o["ev_over"]),
                "ev_under": _clean(o["ev_under"]),
                "eligible": bool(o["eligible"]),
            }
            for o in offers
            if o["line"] == rung["line"]
        ]
        for key in ("p_over", "p_under", "p_push", "fair_over_odds", "fair_under_odds"):
            rung[key] = _clean(rung[key])
    return {
        "game_date": game_date.isoformat(),
        "player_name": offers[0]["player_name"],
        "player_lookup": lookup,
        "market": market,
        "consensus_line": consensus,
        "fair_p_over": _clean(board["p_over"]),
        "fair_over_odds": _clean(
            float(american_odds(board["p_over"] / (board["p_over"] + board["p_under"])))
        ),
        "n_books": int(board["n_books"]),
        "mean": _clean(board["mean"]),
        "lines": rungs,
    }


__all__ = ["LADDER_SPAN", "MARKET_NAMES", "OFFER_COLUMNS", "board_table", "excluded_books", "ladder_of",
           "market_columns", "offer_rows", "price_offers_of"]  # fmt: skip
