"""Read-only views over the ledger and the main table, shared by the CLI and the service.

Each returns plain records (dicts of JSON-friendly values), so every adapter renders the same data.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.markets import validate_market
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import Coordinator
from nbaprops.storage import query_rows
from nbaprops.storage.seams import Backend
from nbaprops.systems import validate_systems

BET_RECOMMENDATIONS = ("OVER", "UNDER")


def active_predictions(
    storage: Backend,
    game_date: date,
    *,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
    limit: int | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Active rows of ``game_date`` (every column of the main table), best expected value first.

    Args:
        bets_only: only rows recommending OVER or UNDER.
        limit: at most this many rows.

    Returns:
        The column names and the rows.

    Raises:
        InputError: an unknown market or system (the message lists the valid ones).
    """
    if market is not None:
        validate_market(market)
    if system is not None:
        validate_systems([system])
    if limit is not None and limit < 1:
        raise InputError("--limit must be at least 1")
    rows = storage.warehouse.active_predictions(game_date)  # one date's active rows, from either backend
    return query_rows(
        rows,
        """SELECT * FROM __rows WHERE (? IS NULL OR system_id = ?) AND (? IS NULL OR market = ?)
             AND (NOT ? OR recommendation IN ('OVER', 'UNDER'))
           ORDER BY expected_value DESC NULLS LAST, predicted_value DESC NULLS LAST, market, system_id, player_lookup
           LIMIT ?""",
        [system, system, market, market, bets_only, limit if limit is not None else 2**62],
    )


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


__all__ = ["BET_RECOMMENDATIONS", "active_predictions", "batch_detail", "batch_records", "batch_status"]
