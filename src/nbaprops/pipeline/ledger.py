"""The request ledger: one durable row per requested player, and every state change of it.

Progress is always a query over these rows (invariant I4): no counter is incremented, so a lost or repeated
event can delay a batch but never lose or double a completion. Each function here is one short transaction.

Request states: ``pending`` → ``leased`` (claim: ``attempt += 1``, owner, expiry) → ``done`` | ``skipped`` |
``failed`` (terminal, I1). An expired lease goes back to ``pending``, or to ``failed`` once ``max_attempts``
claims were spent (I6). A completion is fenced by ``attempt`` and owner: a worker whose lease was taken over
commits nothing (I7), and its staging rows are written in the same transaction as the state change, so a
worker cannot die "after staging but before completing".
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.errors import ContractError, UnknownBatchError
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.seams import (
    BatchInfo,
    CommitResult,
    Lease,
    PlayerRequest,
    RequestOutcome,
    SweepResult,
)

log = logging.getLogger(__name__)

def new_batch_id(game_date: date) -> str:
    return f"{game_date:%Y%m%d}_{uuid.uuid4().hex[:12]}"


def create_batch(
    storage: DuckDBStorage,
    *,
    game_date: date,
    requests: Sequence[PlayerRequest],
    markets: Sequence[str],
    systems: Sequence[str],
    as_of: datetime,
    deadline_minutes: float,
    clock: Clock,
) -> str:
    """Create the batch, its staging table and one ``pending`` request per player in one transaction."""
    batch_id = new_batch_id(game_date)
    staging = schema.staging_table_name(batch_id)
    now = clock.now()
    rows = pa.table(
        {
            "player_lookup": pa.array([r.player_lookup for r in requests], pa.string()),
            "player_name": pa.array([r.player_name for r in requests], pa.string()),
            "player_id": pa.array([r.player_id for r in requests], pa.int64()),
            "team": pa.array([r.team for r in requests], pa.string()),
            "opponent": pa.array([r.opponent for r in requests], pa.string()),
            "game_id": pa.array([r.game_id for r in requests], pa.string()),
            "is_home": pa.array([r.is_home for r in requests], pa.bool_()),
        }
    )
    with storage.transaction() as tx:
        tx.execute(
            "INSERT INTO prediction_batches (batch_id, game_date, state, markets, systems, as_of, created_at, "
            "deadline_at, staging_table) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                game_date,
                list(markets),
                list(systems),
                as_of,
                now,
                now + timedelta(minutes=deadline_minutes),
                staging,
            ],
        )
        tx.execute(schema.PREDICTIONS.create_sql(staging, keys=False))
        tx.register("__new_requests", rows)
        tx.execute(
            """INSERT INTO prediction_requests (batch_id, player_lookup, player_id, player_name, team, opponent,
                   game_id, is_home, state, attempt, created_at, updated_at)
               SELECT ?, player_lookup, player_id, player_name, team, opponent, game_id, is_home, 'pending', 0, ?, ?
               FROM __new_requests""",
            [batch_id, now, now],
        )
        tx.unregister("__new_requests")
    log.info("batch %s created for %s with %d requests", batch_id, game_date, len(requests))
    return batch_id


def _batch_from_row(row: dict[str, Any]) -> BatchInfo:
    summary = row.get("summary")
    return BatchInfo(
        batch_id=row["batch_id"],
        game_date=row["game_date"],
        state=row["state"],
        markets=tuple(row["markets"]),
        systems=tuple(row["systems"]),
        as_of=row["as_of"],
        created_at=row["created_at"],
        deadline_at=row["deadline_at"],
        consolidated_at=row["consolidated_at"],
        finished_at=row["finished_at"],
        staging_table=row["staging_table"],
        summary=json.loads(summary) if isinstance(summary, str) else summary,
    )


def get_batch(storage: DuckDBStorage, batch_id: str) -> BatchInfo:
    rows = storage.fetch_dicts("SELECT * FROM prediction_batches WHERE batch_id = ?", [batch_id])
    if not rows:
        raise UnknownBatchError(batch_id)
    return _batch_from_row(rows[0])


def list_batches(
    storage: DuckDBStorage, *, game_date: date | None = None, state: str | None = None
) -> list[BatchInfo]:
    sql = "SELECT * FROM prediction_batches WHERE (? IS NULL OR game_date = ?) AND (? IS NULL OR state = ?) "
    rows = storage.fetch_dicts(
        sql + "ORDER BY created_at DESC, batch_id DESC", [game_date, game_date, state, state]
    )
    return [_batch_from_row(r) for r in rows]


def running_batch(storage: DuckDBStorage, game_date: date) -> str | None:
    """The running batch of a date, if any."""
    value = storage.scalar(
        "SELECT batch_id FROM prediction_batches WHERE game_date = ? AND state = 'running' "
        "ORDER BY created_at DESC LIMIT 1",
        [game_date],
    )
    return None if value is None else str(value)


def progress(storage: DuckDBStorage, batch_id: str) -> dict[str, int]:
    """Counts of distinct requests by state (I4: a query, never a sum of deltas)."""
    counts = dict.fromkeys(schema.REQUEST_STATES, 0)
    for state, n in storage.fetchall(
        "SELECT state, count(DISTINCT player_lookup) FROM prediction_requests WHERE batch_id = ? GROUP BY state",
        [batch_id],
    ):
        counts[state] = int(n)
    return counts


def claim(
    storage: DuckDBStorage, batch_id: str, *, owner: str, limit: int, lease_seconds: float, clock: Clock
) -> list[Lease]:
    """Lease up to ``limit`` pending requests of the batch to ``owner`` (``attempt += 1``)."""
    now = clock.now()
    with storage.transaction() as tx:
        rows = tx.execute(
            """UPDATE prediction_requests SET state = 'leased', attempt = attempt + 1, lease_owner = ?,
                      lease_expires_at = ?, updated_at = ?
               WHERE batch_id = ? AND player_lookup IN (
                   SELECT player_lookup FROM prediction_requests
                   WHERE batch_id = ? AND state = 'pending' ORDER BY player_lookup LIMIT ?)
                 AND state = 'pending'
               RETURNING player_lookup, attempt, player_name, player_id, team, opponent, game_id, is_home""",
            [owner, now + timedelta(seconds=lease_seconds), now, batch_id, batch_id, limit],
        ).fetchall()
    leases = [Lease(batch_id, r[0], int(r[1]), owner, r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]
    leases.sort(key=lambda lease: lease.player_lookup)
    return leases


def commit(
    storage: DuckDBStorage,
    batch_id: str,
    *,
    owner: str,
    outcomes: Sequence[RequestOutcome],
    staged_rows: pa.Table | None,
    clock: Clock,
) -> CommitResult:
    """Stage rows and end requests in ONE transaction, fenced by attempt and owner.

    Only requests still ``leased`` by ``owner`` at the same ``attempt`` change state; staged rows are kept
    only for those (I7). Requests whose lease was taken over are returned in ``lost``.
    """
    if not outcomes:
        return CommitResult((), (), 0)
    info = get_batch(storage, batch_id)
    if info.staging_table is None or info.consolidated_at is not None:
        # The batch was consolidated (e.g. forced partial) while this worker ran: its rows cannot land.
        return CommitResult((), tuple(o.player_lookup for o in outcomes), 0)
    now = clock.now()
    outcome_table = pa.table(
        {
            "player_lookup": pa.array([o.player_lookup for o in outcomes], pa.string()),
            "attempt": pa.array([o.attempt for o in outcomes], pa.int32()),
            "new_state": pa.array([o.state for o in outcomes], pa.string()),
            "error_code": pa.array([o.error_code for o in outcomes], pa.string()),
            "error_message": pa.array([o.error_message for o in outcomes], pa.string()),
        }
    )
    with storage.transaction() as tx:
        tx.register("__outcomes", outcome_table)
        committed: set[tuple[str, int]] = {
            (r[0], int(r[1]))
            for r in tx.execute(
                """UPDATE prediction_requests r SET state = o.new_state, error_code = o.error_code,
                          error_message = o.error_message, lease_owner = NULL, lease_expires_at = NULL,
                          updated_at = ?
                   FROM __outcomes o
                   WHERE r.batch_id = ? AND r.player_lookup = o.player_lookup AND r.attempt = o.attempt
                     AND r.state = 'leased' AND r.lease_owner = ?
                   RETURNING r.player_lookup, r.attempt""",
                [now, batch_id, owner],
            ).fetchall()
        }
        tx.unregister("__outcomes")
        n_rows = 0
        if staged_rows is not None and staged_rows.num_rows and committed:
            tx.register("__staged", staged_rows)
            pairs = sorted(committed)
            keep = pa.table(
                {
                    "player_lookup": pa.array([p for p, _ in pairs], pa.string()),
                    "attempt": pa.array([a for _, a in pairs], pa.int32()),
                }
            )
            tx.register("__committed", keep)
            # Only the rows of the attempt that committed (a caller may mix a stale and a live attempt).
            n_rows = int(
                tx.execute(
                    f'INSERT INTO "{info.staging_table}" BY NAME SELECT s.* FROM __staged s '
                    "SEMI JOIN __committed c ON s.player_lookup = c.player_lookup AND s.attempt = c.attempt"
                ).fetchone()[0]  # type: ignore[index]
            )
            tx.execute(
                """UPDATE prediction_requests r SET rows_staged = s.n FROM (
                       SELECT s.player_lookup, s.attempt, count(*) AS n FROM __staged s
                       SEMI JOIN __committed c ON s.player_lookup = c.player_lookup AND s.attempt = c.attempt
                       GROUP BY ALL) s
                   WHERE r.batch_id = ? AND r.player_lookup = s.player_lookup AND r.attempt = s.attempt""",
                [batch_id],
            )
            tx.unregister("__staged")
            tx.unregister("__committed")
    lost = tuple(sorted(o.player_lookup for o in outcomes if (o.player_lookup, o.attempt) not in committed))
    if lost:
        log.warning(
            "batch %s: %d request(s) lost their lease before commit: %s", batch_id, len(lost), lost[:5]
        )
    return CommitResult(tuple(sorted({p for p, _ in committed})), lost, n_rows)


def release_owned(storage: DuckDBStorage, *, owner_prefix: str, clock: Clock) -> int:
    """Give back every lease held under ``owner_prefix`` (a process stopping cleanly); attempts are kept."""
    row = storage.fetchone(
        """UPDATE prediction_requests SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                  updated_at = ?
           WHERE state = 'leased' AND starts_with(lease_owner, ?)""",
        [clock.now(), owner_prefix],
    )
    return int(row[0]) if row else 0


def release(storage: DuckDBStorage, batch_id: str, leases: Sequence[Lease], *, clock: Clock) -> int:
    """Give leases back (``pending``) after a transient error; the attempt count is kept."""
    if not leases:
        return 0
    table = pa.table(
        {
            "player_lookup": pa.array([lease.player_lookup for lease in leases], pa.string()),
            "attempt": pa.array([lease.attempt for lease in leases], pa.int32()),
        }
    )
    with storage.transaction() as tx:
        tx.register("__release", table)
        n = tx.execute(
            """UPDATE prediction_requests r SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                      updated_at = ?
               FROM __release x WHERE r.batch_id = ? AND r.player_lookup = x.player_lookup
                 AND r.attempt = x.attempt AND r.state = 'leased' AND r.lease_owner = ?""",
            [clock.now(), batch_id, leases[0].owner],
        ).fetchone()
        tx.unregister("__release")
    return int(n[0]) if n else 0


def sweep(
    storage: DuckDBStorage,
    *,
    clock: Clock,
    max_attempts: int,
    grace_seconds: float = 0.0,
    batch_id: str | None = None,
    foreign_owner_prefix_not: str | None = None,
) -> SweepResult:
    """Reclaim every expired lease, at any completion ratio (I6).

    A lease expired for longer than ``grace_seconds`` goes back to ``pending``, or ends ``failed``
    (``max_attempts_exceeded``) when its attempts are spent. With ``foreign_owner_prefix_not`` set, leases held by
    any other owner prefix are released at once: on a backend where only one process may write
    (``Capabilities.multi_process_writers`` false) such owners are necessarily dead.
    """
    now = clock.now()
    cutoff = now - timedelta(seconds=grace_seconds)
    with storage.transaction() as tx:
        released = 0
        if foreign_owner_prefix_not is not None:
            row = tx.execute(
                """UPDATE prediction_requests SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                          updated_at = ?
                   WHERE state = 'leased' AND NOT starts_with(lease_owner, ?) AND attempt < ?
                     AND (? IS NULL OR batch_id = ?)""",
                [now, foreign_owner_prefix_not, max_attempts, batch_id, batch_id],
            ).fetchone()
            released = int(row[0]) if row else 0
            cutoff_expr = "(lease_expires_at < ? OR NOT starts_with(lease_owner, ?))"
            cutoff_params: list[Any] = [cutoff, foreign_owner_prefix_not]
        else:
            cutoff_expr = "lease_expires_at < ?"
            cutoff_params = [cutoff]
        failed_row = tx.execute(
            f"""UPDATE prediction_requests SET state = 'failed', error_code = 'max_attempts_exceeded',
                       error_message = 'lease expired after ' || attempt || ' attempt(s)',
                       lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                WHERE state = 'leased' AND {cutoff_expr} AND attempt >= ? AND (? IS NULL OR batch_id = ?)""",
            [now, *cutoff_params, max_attempts, batch_id, batch_id],
        ).fetchone()
        reclaimed_row = tx.execute(
            """UPDATE prediction_requests SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                      updated_at = ?
               WHERE state = 'leased' AND lease_expires_at < ? AND (? IS NULL OR batch_id = ?)""",
            [now, cutoff, batch_id, batch_id],
        ).fetchone()
    result = SweepResult(
        reclaimed=int(reclaimed_row[0]) if reclaimed_row else 0,
        failed=int(failed_row[0]) if failed_row else 0,
        released_foreign=released,
    )
    if result.reclaimed or result.failed or result.released_foreign:
        log.info("sweep: %s", result)
    return result


def fail_open_requests(storage: DuckDBStorage, batch_id: str, *, error_code: str, clock: Clock) -> int:
    """End every non-terminal request of a batch ``failed`` (batch deadline, forced finish)."""
    row = storage.fetchone(
        """UPDATE prediction_requests SET state = 'failed', error_code = ?, lease_owner = NULL,
                  lease_expires_at = NULL, updated_at = ?
           WHERE batch_id = ? AND state IN ('pending', 'leased')""",
        [error_code, clock.now(), batch_id],
    )
    return int(row[0]) if row else 0


def missing_players(storage: DuckDBStorage, batch_id: str) -> list[dict[str, Any]]:
    """Requests that did not end ``done``, with why."""
    return storage.fetch_dicts(
        """SELECT player_lookup, player_name, team, state, error_code, error_message, attempt
           FROM prediction_requests WHERE batch_id = ? AND state <> 'done' ORDER BY state, player_lookup""",
        [batch_id],
    )


def check_terminal_states(storage: DuckDBStorage, batch_id: str) -> None:
    """Raise if a request of a finished batch is not terminal (I1)."""
    open_count = storage.scalar(
        "SELECT count(*) FROM prediction_requests WHERE batch_id = ? AND state NOT IN ('done', 'skipped', 'failed')",
        [batch_id],
    )
    if open_count:
        raise ContractError(f"batch {batch_id} has {open_count} non-terminal request(s) after finishing")
