"""Consolidation: staging → ``player_prop_predictions``, once, in one transaction.

Steps (DESIGN.md, flow step 6), all inside one transaction (DuckDB's DDL is transactional, so the staging
drop commits or rolls back with the merge):

1. **latch check** — a batch already consolidated is left alone: a rerun or a redelivered completion changes
   nothing (I5).
2. **fence + dedupe** — only staging rows of requests that ended ``done`` *at the attempt that staged them*
   are taken (I7); one row per (game_id, player_lookup, market, system_id) survives.
3. **drift** — :func:`nbaprops.schema.plan_drift` compares the staging columns with the main table's; missing
   main columns are added (the main table only gains columns), and rows are inserted **by name** over the
   intersection (I9). The plan is reported.
4. **supersede** — active rows of the same keys from earlier batches get ``is_active = false``,
   ``superseded_by``, ``invalidated_at`` (a separate statement: DuckDB's MERGE cannot deactivate and insert
   for one key at once).
5. **insert** — new rows whose ``prediction_id`` is not stored yet (ids are deterministic, so even without the
   latch a rerun would insert nothing).
6. **verify** — at most one active row per key for the date (I3); otherwise roll everything back.
7. **latch + drop staging** (I8).

Consolidation is serialized per game date by an in-process lock, and a concurrent transaction from another
thread that loses the race gets DuckDB's write conflict (transient), retries, and then finds the latch.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.errors import ContractError
from nbaprops.pipeline import ledger
from nbaprops.storage import retry_transient
from nbaprops.storage.duckdb import DuckDBStorage

log = logging.getLogger(__name__)

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
    storage: DuckDBStorage, batch_id: str, *, clock: Clock, summary: dict[str, Any] | None = None
) -> ConsolidationResult:
    """Merge a batch's staging into the main table exactly once (see the module docstring).

    The batch ends ``partial`` when any request ``failed``, else ``complete``. Requests still open are a
    contract error: call :func:`nbaprops.pipeline.ledger.fail_open_requests` first (the coordinator does).
    """
    info = ledger.get_batch(storage, batch_id)
    with _date_lock(info.game_date):
        return retry_transient(lambda: _consolidate_once(storage, batch_id, clock=clock, summary=summary))


def _consolidate_once(
    storage: DuckDBStorage, batch_id: str, *, clock: Clock, summary: dict[str, Any] | None
) -> ConsolidationResult:
    started = time.perf_counter()
    main = schema.PREDICTIONS.name
    key = ", ".join(schema.PREDICTION_KEY)
    with storage.transaction() as tx:
        row = tx.execute(
            "SELECT consolidated_at, state, staging_table, game_date FROM prediction_batches WHERE batch_id = ?",
            [batch_id],
        ).fetchone()
        if row is None:
            raise ContractError(f"batch {batch_id} vanished during consolidation")
        consolidated_at, state, staging, game_date = row
        if consolidated_at is not None:
            return ConsolidationResult(batch_id, True, state)
        open_requests = tx.execute(
            "SELECT count(*) FROM prediction_requests WHERE batch_id = ? AND state IN ('pending', 'leased')",
            [batch_id],
        ).fetchone()
        if open_requests and open_requests[0]:
            raise ContractError(
                f"batch {batch_id} still has {open_requests[0]} open request(s); finish them first"
            )
        any_failed = tx.execute(
            "SELECT count(*) FROM prediction_requests WHERE batch_id = ? AND state = 'failed'", [batch_id]
        ).fetchone()
        final_state = "partial" if any_failed and any_failed[0] else "complete"
        now = clock.now()

        staging_exists = bool(staging) and bool(
            tx.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
                [staging],
            ).fetchone()[0]  # type: ignore[index]
        )
        result = ConsolidationResult(batch_id, False, final_state)
        if staging_exists:
            staging_cols = tx.columns(staging)
            main_cols = tx.columns(main)
            plan = schema.plan_drift(
                staging_cols, main_cols, required=(*schema.PREDICTION_KEY, "prediction_id")
            )
            for column in plan.add_to_main:
                log.warning("drift: adding column %s %s to %s", column.name, column.type, main)
                tx.execute(f'ALTER TABLE "{main}" ADD COLUMN "{column.name}" {column.type}')
            fence = (
                "s.attempt = r.attempt" if "attempt" in staging_cols else "TRUE"
            )  # an old staging table without attempt can only be fenced by request state
            tx.execute(
                f"""CREATE OR REPLACE TEMP TABLE __consolidate AS
                    SELECT * EXCLUDE (__rank) FROM (
                        SELECT s.*, row_number() OVER (
                            PARTITION BY s.game_id, s.player_lookup, s.market, s.system_id
                            ORDER BY s.created_at DESC, s.prediction_id) AS __rank
                        FROM "{staging}" s JOIN prediction_requests r
                          ON r.batch_id = ? AND r.player_lookup = s.player_lookup
                        WHERE r.state = 'done' AND {fence}
                    ) WHERE __rank = 1""",
                [batch_id],
            )
            counts = tx.execute(
                f"""SELECT (SELECT count(*) FROM "{staging}"),
                           (SELECT count(*) FROM "{staging}" s JOIN prediction_requests r
                              ON r.batch_id = ? AND r.player_lookup = s.player_lookup
                            WHERE r.state = 'done' AND {fence}),
                           (SELECT count(*) FROM __consolidate)""",
                [batch_id],
            ).fetchone()
            n_staged, n_fenced_in, n_unique = (int(c) for c in counts)  # type: ignore[union-attr]
            superseded = tx.execute(
                f"""UPDATE "{main}" m SET is_active = false, superseded_by = n.prediction_id, invalidated_at = ?,
                           invalidation_reason = 'superseded by batch ' || ?, updated_at = ?
                    FROM __consolidate n
                    WHERE m.is_active AND m.game_id = n.game_id AND m.player_lookup = n.player_lookup
                      AND m.market = n.market AND m.system_id = n.system_id AND m.prediction_id <> n.prediction_id""",
                [now, batch_id, now],
            ).fetchone()
            insert_cols = ", ".join(f'"{c}"' for c in plan.insert_columns)
            inserted = tx.execute(
                f"""INSERT INTO "{main}" ({insert_cols})
                    SELECT {insert_cols} FROM __consolidate n
                    WHERE NOT EXISTS (SELECT 1 FROM "{main}" m WHERE m.prediction_id = n.prediction_id)"""
            ).fetchone()
            duplicates = tx.execute(
                f"""SELECT count(*) FROM (SELECT {key} FROM "{main}" WHERE is_active AND game_date = ?
                    GROUP BY {key} HAVING count(*) > 1)""",
                [game_date],
            ).fetchone()
            if duplicates and duplicates[0]:
                raise ContractError(
                    f"consolidation of {batch_id} would leave {duplicates[0]} key(s) with two active rows"
                )
            tx.execute("DROP TABLE __consolidate")
            tx.execute(f'DROP TABLE "{staging}"')
            result = ConsolidationResult(
                batch_id,
                False,
                final_state,
                rows_staged=n_staged,
                rows_fenced_out=n_staged - n_fenced_in,
                rows_deduplicated=n_fenced_in - n_unique,
                rows_inserted=int(inserted[0]) if inserted else 0,
                rows_superseded=int(superseded[0]) if superseded else 0,
                drift=plan.as_dict(),
            )
        result = ConsolidationResult(
            **{**result.as_dict(), "duration_s": round(time.perf_counter() - started, 4)}
        )
        full_summary = {**(summary or {}), "consolidation": result.as_dict()}
        latched = tx.execute(
            """UPDATE prediction_batches SET state = ?, consolidated_at = ?, finished_at = ?, staging_table = NULL,
                      summary = ?
               WHERE batch_id = ? AND consolidated_at IS NULL""",
            [final_state, now, now, json.dumps(full_summary, default=str), batch_id],
        ).fetchone()
        if not latched or latched[0] != 1:
            raise ContractError(f"batch {batch_id} latch was taken concurrently")
    log.info("batch %s consolidated: %s", batch_id, result)
    return result
