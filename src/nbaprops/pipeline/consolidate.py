"""Consolidation: staging → ``player_prop_predictions``, once (DESIGN.md, flow step 6).

1. **latch check** (ledger) — a batch already consolidated is left alone: a rerun or a redelivered completion
   changes nothing (I5). Open requests refuse consolidation.
2. **merge** (warehouse, ONE transaction — DuckDB's or BigQuery's multi-statement transaction): only staging
   rows of requests that ended ``done`` *at the attempt that staged them* are taken (I7), newest per
   (game_id, player_lookup, market, system_id); the drift plan (:func:`nbaprops.schema.plan_drift`) adds new
   staging columns to main and inserts **by name** over the intersection (I9); active rows of the same keys
   are superseded; ``prediction_id``s already stored are not inserted again (ids are deterministic); at most
   one active row per key for the date (I3) or everything rolls back; the staging table is dropped (I8).
3. **latch** (ledger) — state, ``consolidated_at``, summary, exactly once.

A crash between 2 and 3 leaves a batch whose staging is gone and whose rows are in main: the rerun finds no
staging, changes nothing in main and sets the latch. Consolidation is serialized per game date by an
in-process lock; a concurrent transaction elsewhere that loses the race conflicts (transient), retries and
then finds the staging gone or the latch set. When it finds the staging gone (or emptied) although its done
requests staged rows, the winner has merged and is about to latch with the report of what it did: on a backend
other processes write to, the loser waits up to ``LATCH_WAIT_S`` for that latch instead of latching first with
an empty report (which used to replace the winner's); after the wait — the winner died between merge and
latch — it latches itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

from nbaprops.clock import Clock
from nbaprops.errors import ContractError
from nbaprops.pipeline import ledger
from nbaprops.storage import retry_transient
from nbaprops.storage.seams import Backend, BatchInfo

log = logging.getLogger(__name__)

LATCH_WAIT_S = 10.0  # how long a consolidation that finds the staging merged waits for the merger's latch

_DATE_LOCKS: defaultdict[date, threading.Lock] = defaultdict(threading.Lock)
_DATE_LOCKS_GUARD = threading.Lock()


def _date_lock(game_date: date) -> threading.Lock:
    with _DATE_LOCKS_GUARD:
        return _DATE_LOCKS[game_date]


@dataclass(frozen=True)
class ConsolidationResult:
    """What one consolidation did.

    Attributes:
        batch_id: the batch.
        already_consolidated: the latch was set before; nothing changed.
        state: the batch's final state (``complete`` or ``partial``).
        rows_staged: staging rows found.
        rows_fenced_out: staging rows dropped because their attempt did not complete the request.
        rows_deduplicated: duplicate keys removed.
        rows_inserted: new active rows.
        rows_superseded: earlier active rows deactivated.
        drift: the drift report (columns added to main, missing in staging, type mismatches).
    """

    batch_id: str
    already_consolidated: bool
    state: str
    rows_staged: int = 0
    rows_fenced_out: int = 0
    rows_deduplicated: int = 0
    rows_inserted: int = 0
    rows_superseded: int = 0
    drift: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def consolidate(
    backend: Backend, batch_id: str, *, clock: Clock, summary: dict[str, Any] | None = None
) -> ConsolidationResult:
    """Merge a batch's staging into the main table exactly once (see the module docstring).

    The batch ends ``partial`` when any request ``failed``, else ``complete``. Requests still open are a
    contract error: call :func:`nbaprops.pipeline.ledger.fail_open_requests` first (the coordinator does).
    """
    info = ledger.get_batch(backend, batch_id)
    with _date_lock(info.game_date):
        # A warehouse that retries its own writes (seconds of backoff, GCP) is tried once more, not 8 times over.
        attempts = 2 if backend.capabilities.retries_writes else 8
        return retry_transient(
            lambda: _consolidate_once(backend, batch_id, clock=clock, summary=summary), attempts=attempts
        )


def _consolidate_once(
    backend: Backend, batch_id: str, *, clock: Clock, summary: dict[str, Any] | None
) -> ConsolidationResult:
    started = time.perf_counter()
    info = backend.ledger.get_batch(batch_id)
    if info.consolidated_at is not None:
        return ConsolidationResult(batch_id, True, info.state)
    counts = backend.ledger.progress(batch_id)
    open_requests = counts.get("pending", 0) + counts.get("leased", 0)
    if open_requests:
        raise ContractError(f"batch {batch_id} still has {open_requests} open request(s); finish them first")
    final_state = "partial" if counts.get("failed", 0) else "complete"
    result = ConsolidationResult(batch_id, False, final_state)
    if info.staging_table:
        done_rows = backend.ledger.requests(batch_id, states=["done"])
        done = pa.table(
            {
                "player_lookup": pa.array([r["player_lookup"] for r in done_rows], pa.string()),
                "attempt": pa.array([int(r["attempt"]) for r in done_rows], pa.int32()),
            }
        )
        merged = backend.warehouse.merge(
            batch_id=batch_id,
            staging_table=info.staging_table,
            game_date=info.game_date,
            done=done,
            clock=clock,
        )
        staged = sum(int(r.get("rows_staged") or 0) for r in done_rows)
        # Another process may be the merger only where other processes write (never with one DuckDB file).
        if staged and merged.rows_staged == 0 and backend.capabilities.multi_process_writers:
            latched = _wait_for_latch(backend, batch_id, seconds=LATCH_WAIT_S)
            if latched is not None:
                return ConsolidationResult(batch_id, True, latched.state)
            log.warning(
                "batch %s: its staged rows were merged by a consolidation that never latched", batch_id
            )
        if merged.staging_found:
            result = ConsolidationResult(
                batch_id,
                False,
                final_state,
                rows_staged=merged.rows_staged,
                rows_fenced_out=merged.rows_fenced_out,
                rows_deduplicated=merged.rows_deduplicated,
                rows_inserted=merged.rows_inserted,
                rows_superseded=merged.rows_superseded,
                drift=merged.drift,
            )
    result = ConsolidationResult(
        **{**result.as_dict(), "duration_s": round(time.perf_counter() - started, 4)}
    )
    full_summary = {**(summary or {}), "consolidation": result.as_dict()}
    if not backend.ledger.latch(batch_id, state=final_state, summary=full_summary, clock=clock):
        latched = backend.ledger.get_batch(batch_id)  # another process latched it first: its result stands
        return ConsolidationResult(batch_id, True, latched.state)
    log.info("batch %s consolidated: %s", batch_id, result)
    return result


def _wait_for_latch(backend: Backend, batch_id: str, *, seconds: float) -> BatchInfo | None:
    """The batch once another process has latched it, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        info = backend.ledger.get_batch(batch_id)
        if info.consolidated_at is not None or time.monotonic() >= deadline:
            return info if info.consolidated_at is not None else None
        time.sleep(0.2)
