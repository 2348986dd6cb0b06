"""Read-only views over the ledger and the main table, shared by the CLI and the service.

Each returns plain records (dicts of JSON-friendly values), so every adapter renders the same data.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.markets import validate_market
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import Coordinator
from nbaprops.storage.seams import Backend
from nbaprops.systems import validate_systems

BET_RECOMMENDATIONS = ("OVER", "UNDER")


_BOARD_ORDER = (
    ("expected_value", "descending"),
    ("predicted_value", "descending"),
    ("market", "ascending"),
    ("system_id", "ascending"),
    ("player_lookup", "ascending"),
)
"""The board's order: best expected value first, then highest prediction (missing numbers last)."""


def board_order(table: pa.Table) -> pa.Array:
    """The indices that put ``table`` in :data:`_BOARD_ORDER`, as SQL's ``ORDER BY expected_value DESC NULLS
    LAST, predicted_value DESC NULLS LAST, market, system_id, player_lookup`` in DuckDB puts it: a NaN sorts
    above every number (first when descending), NULL last. Arrow alone would put a NaN after the numbers."""
    keys: dict[str, Any] = {}
    sort: list[tuple[str, str, str]] = []
    for i, (name, order) in enumerate(_BOARD_ORDER):
        column = table[name]
        if pa.types.is_floating(column.type):
            keys[f"nan{i}"] = pc.fill_null(pc.is_nan(column), False)
            sort.append((f"nan{i}", "descending", "at_end"))
        keys[f"key{i}"] = column
        sort.append((f"key{i}", order, "at_end"))
    return pc.sort_indices(pa.table(keys), sort_keys=sort)


def _validate(market: str | None, system: str | None) -> None:
    if market is not None:
        validate_market(market)
    if system is not None:
        validate_systems([system])


def active_table(
    storage: Backend,
    game_date: date,
    *,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
) -> pa.Table:
    """Active rows of ``game_date`` (every column of the main table) as Arrow, in the board's order (best
    expected value first: :func:`board_order`).

    Raises:
        InputError: an unknown market or system (the message lists the valid ones).
    """
    _validate(market, system)
    table: pa.Table = storage.warehouse.active_predictions(game_date)  # one date's rows, from either backend
    keep = []
    if system is not None:
        keep.append(pc.equal(table["system_id"], system))
    if market is not None:
        keep.append(pc.equal(table["market"], market))
    if bets_only:
        keep.append(pc.is_in(table["recommendation"], pa.array(BET_RECOMMENDATIONS)))
    if keep:
        mask = keep[0]
        for more in keep[1:]:
            mask = pc.and_(mask, more)
        table = table.filter(pc.fill_null(mask, False))
    return table.take(board_order(table))


def python_columns(table: pa.Table) -> list[tuple[Any, ...]]:
    """Each column of ``table`` as a tuple of Python values (what DuckDB's ``fetchall`` gives: ``date``,
    ``datetime`` with its zone, None for NULL).

    A text, date or time column converts its distinct values once and repeats them: a board's ``created_at``
    holds a handful of values over thousands of rows (converting each one with its time zone cost more than
    every other column together), its texts a few hundred names. A double column without a null converts
    through NumPy, a little faster than Arrow's own. Tuples, not lists: the garbage collector stops tracking a
    tuple of plain values at its first pass, where each column list stayed tracked and was traversed again,
    item by item, by the collector's passes while the rows were built."""
    columns: list[tuple[Any, ...]] = []
    for column in table.columns:
        kind = column.type
        if (pa.types.is_temporal(kind) or pa.types.is_string(kind)) and column.null_count < len(column):
            encoded = pc.dictionary_encode(column).combine_chunks()
            values = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
            at = np.asarray(pc.fill_null(encoded.indices, len(encoded.dictionary)), dtype=np.intp)
            columns.append(tuple(values[at].tolist()))
        elif pa.types.is_float64(kind) and column.null_count == 0:
            columns.append(tuple(column.to_numpy().tolist()))
        else:
            columns.append(tuple(column.to_pylist()))
    return columns


def table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of ``table`` as tuples of Python values (:func:`python_columns`). Tuples, not lists: the garbage
    collector stops tracking a tuple of plain values at its first pass, where thousands of lists stayed in its
    oldest generation and made its full passes (tens of ms each on a board) come sooner and cost more."""
    return list(zip(*python_columns(table), strict=True))


def active_predictions(
    storage: Backend,
    game_date: date,
    *,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
    limit: int | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Active rows of ``game_date`` (every column of the main table), best expected value first
    (:func:`active_table`).

    Args:
        bets_only: only rows recommending OVER or UNDER.
        limit: at most this many rows.

    Returns:
        The column names and the rows.

    Raises:
        InputError: an unknown market or system (the message lists the valid ones).
    """
    _validate(market, system)
    if limit is not None and limit < 1:
        raise InputError("--limit must be at least 1")
    table = active_table(storage, game_date, market=market, system=system, bets_only=bets_only)
    if limit is not None:
        table = table.slice(0, limit)
    return list(table.column_names), list(zip(*python_columns(table), strict=True))


def batch_records(
    storage: Backend,
    *,
    game_date: date | None = None,
    state: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Batches, newest first, with their request counts by state and their kind (daily or line_update)."""
    rows: list[dict[str, Any]] = []
    for info in ledger.list_batches(storage, game_date=game_date, state=state, limit=limit):
        rows.append(
            {
                "batch_id": info.batch_id,
                "game_date": info.game_date.isoformat(),
                "state": info.state,
                "kind": info.kind,
                "requests": ledger.progress(storage, info.batch_id),
                "created_at": info.created_at.isoformat(timespec="seconds"),
                "consolidated_at": info.consolidated_at.isoformat(timespec="seconds")
                if info.consolidated_at
                else None,
            }
        )
    return rows


def batch_status(storage: Backend, settings: Settings, batch_id: str | None = None) -> dict[str, Any]:
    """The summary of a batch (the newest when ``batch_id`` is None): state, counts, missing players, drift.

    Raises:
        InputError: no batch exists yet.
        UnknownBatchError: no batch has this id.
    """

    if batch_id is None:
        newest = ledger.list_batches(storage, limit=1)
        if not newest:
            raise InputError("no batch yet; run `nbaprops predict --date YYYY-MM-DD`")
        batch_id = newest[0].batch_id
    return Coordinator(storage, settings).summary(batch_id).as_dict()


def batch_detail(storage: Backend, settings: Settings, batch_id: str) -> dict[str, Any]:
    """:func:`batch_status` plus what the batch was asked for, its timings and its consolidation report."""
    info = ledger.get_batch(storage, batch_id)
    report = (info.summary or {}).get("consolidation") or None
    return {
        **batch_status(storage, settings, batch_id),
        "markets": list(info.markets),
        "systems": list(info.systems),
        "as_of": info.as_of.isoformat(),
        "created_at": info.created_at.isoformat(),
        "deadline_at": info.deadline_at.isoformat(),
        "consolidated_at": info.consolidated_at.isoformat() if info.consolidated_at else None,
        "finished_at": info.finished_at.isoformat() if info.finished_at else None,
        "consolidation": report,
    }


__all__ = [
    "BET_RECOMMENDATIONS",
    "active_predictions",
    "active_table",
    "batch_detail",
    "batch_records",
    "batch_status",
    "board_order",
    "python_columns",
    "table_rows",
]
