"""The operations the CLI and the service share, by name: each calls one library function on an open database.

Alerts (:mod:`nbaprops.alerts`, which holds their policy) go out from here, so an operation alerts the same way
whoever asked for it.
The CLI runs them on its own connection or, when another nbaprops process holds the file, in that process
(:mod:`nbaprops.holder`); the HTTP API runs them for its write routes. One function per operation is
what makes "the same output" and "the same semantics" true by construction. Arguments and results are plain
JSON-friendly values (dates as ISO strings), so they cross a process boundary unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.alerts import batch_alert, consolidation_refused_alert, stalled_alert
from nbaprops.clock import SystemClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.evaluation.clv import MOVE_COLUMNS, MOVE_INPUTS, line_moves
from nbaprops.picks import no_bet_reasons
from nbaprops.pipeline.board import board_table, ladder_of, offer_rows
from nbaprops.pipeline.coordinator import Coordinator
from nbaprops.pipeline.janitor import cleanup_staging
from nbaprops.pipeline.reads import batch_records, batch_status, table_rows
from nbaprops.storage.seams import Backend

Operation = Callable[..., Any]


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _status(storage: Backend, settings: Settings, *, batch_id: str | None = None) -> dict[str, Any]:
    return batch_status(storage, settings, batch_id)


def _batches(
    storage: Backend,
    settings: Settings,
    *,
    game_date: str | None = None,
    state: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    return {"batches": batch_records(storage, game_date=_day(game_date), state=state, limit=limit)}


def _move_columns(
    storage: Backend, table: pa.Table, *, threshold: float, now: datetime | None = None
) -> pa.Table:
    """:data:`~nbaprops.evaluation.clv.MOVE_COLUMNS` of each row of ``table``: how far the consensus has moved
    in its bet's favour (:func:`~nbaprops.evaluation.clv.line_moves`, over the bets only) and whether it moved
    against it by more than ``threshold`` points; null for a row that is not a bet or has no snapshot."""
    bets = np.flatnonzero(
        np.asarray(pc.fill_null(pc.is_in(table["recommendation"], pa.array(["OVER", "UNDER"])), False))
    )
    moves: list[float | None] = [None] * table.num_rows
    if bets.size:
        found = line_moves(storage.features, table.take(bets).select(list(MOVE_INPUTS)).to_pylist(), now=now)
        for i, move in zip(bets.tolist(), found, strict=True):
            moves[i] = move
    move = pa.array(moves, type=pa.float64())
    return pa.table(dict(zip(MOVE_COLUMNS, [move, pc.less(move, -threshold - 1e-9)], strict=True)))


def board_of(
    storage: Backend,
    settings: Settings,
    *,
    game_date: date,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
    limit: int | None = None,
    books: list[str] | None = None,
) -> tuple[pa.Table, int]:
    """The board of ``game_date`` as one Arrow table (the main table's columns, the market's, the line move's)
    and its number of rows without ``limit``: what ``predictions`` lists and the API writes as JSON or CSV.

    Raises:
        InputError: an unknown market or system, or a ``limit`` below 1.
    """
    table, total = board_table(
        storage,
        game_date,
        market=market,
        system=system,
        bets_only=bets_only,
        limit=limit,
        books=_books(settings, books),
    )
    moves = _move_columns(storage, table, threshold=settings.clv_moved_against, now=settings.as_of)
    for name, column in zip(moves.column_names, moves.columns, strict=True):
        table = table.append_column(name, column)
    return table, total


def _predictions(
    storage: Backend,
    settings: Settings,
    *,
    game_date: str,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
    limit: int | None = None,
    books: list[str] | None = None,
) -> dict[str, Any]:
    day = _day(game_date)
    assert day is not None
    table, total = board_of(
        storage,
        settings,
        game_date=day,
        market=market,
        system=system,
        bets_only=bets_only,
        limit=limit,
        books=books,
    )
    no_bets: list[str] = []
    if bets_only and not total:  # say why the board of bets is empty
        no_bets = no_bet_reasons(storage, day, system=system, market=market)
    return {"names": table.column_names, "rows": table_rows(table), "total": total, "no_bets": no_bets}


def _books(settings: Settings, books: list[str] | None) -> tuple[str, ...]:
    """The books the user can bet at: the request's, else the ``books`` setting (empty: every book)."""
    return tuple(books) if books else settings.books


def _offers(
    storage: Backend,
    settings: Settings,
    *,
    game_date: str,
    market: str | None = None,
    books: list[str] | None = None,
) -> dict[str, Any]:

    day = _day(game_date)
    assert day is not None
    names, rows = offer_rows(storage, day, market=market, books=_books(settings, books))
    return {"names": names, "rows": rows}


def _ladder(
    storage: Backend,
    settings: Settings,
    *,
    game_date: str,
    player: str,
    market: str,
    low: float | None = None,
    high: float | None = None,
    books: list[str] | None = None,
) -> dict[str, Any]:

    day = _day(game_date)
    assert day is not None
    return ladder_of(storage, day, player, market, low=low, high=high, books=_books(settings, books))


def _check_stalled(
    storage: Backend, settings: Settings, *, stall_minutes: float | None = None
) -> dict[str, Any]:
    report = Coordinator(storage, settings).check_stalled(stall_minutes=stall_minutes)
    stalled_alert(settings, report)
    return report


def _consolidate(storage: Backend, settings: Settings, *, batch_id: str) -> dict[str, Any]:
    try:
        return Coordinator(storage, settings).consolidate(batch_id).as_dict()
    except InputError as exc:
        consolidation_refused_alert(settings, batch_id, exc)
        raise


def _finish(storage: Backend, settings: Settings, *, batch_id: str) -> dict[str, Any]:
    summary = Coordinator(storage, settings).finish(batch_id, force_partial=True).as_dict()
    batch_alert(settings, summary)
    return summary


def _cleanup_staging(
    storage: Backend,
    settings: Settings,
    *,
    older_than_hours: float | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    hours = settings.staging_ttl_hours if older_than_hours is None else older_than_hours
    return cleanup_staging(storage, older_than_hours=hours, clock=SystemClock(), dry_run=dry_run).as_dict()


OPERATIONS: Mapping[str, Operation] = {
    "status": _status,
    "batches": _batches,
    "predictions": _predictions,
    "offers": _offers,
    "ladder": _ladder,
    "check-stalled": _check_stalled,
    "consolidate": _consolidate,
    "finish": _finish,
    "cleanup-staging": _cleanup_staging,
}
"""Operation name -> ``fn(storage, settings, **args)`` returning plain JSON-friendly data."""

__all__ = ["OPERATIONS", "Operation", "board_of"]
