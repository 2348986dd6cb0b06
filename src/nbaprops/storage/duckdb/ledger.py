"""The embedded ledger: the :class:`~nbaprops.storage.seams.Ledger` seam on the DuckDB file's ledger tables.

One row per batch in ``prediction_batches`` and one per requested player in ``prediction_requests``
(``schema.py``). Every method is one short transaction; progress is a ``GROUP BY`` over the request rows (I4),
and every state change of a leased request is fenced by ``attempt`` and ``lease_owner`` (I7). The staging table
is the warehouse's business: :meth:`DuckDBLedger.create_batch` only records its name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.errors import UnknownBatchError
from nbaprops.storage._base import Capabilities
from nbaprops.storage.duckdb.connection import CAPABILITIES, Database
from nbaprops.storage.seams import (
    REQUEST_FIELDS,
    BatchInfo,
    Lease,
    PlayerRequest,
    RequestOutcome,
    SweepResult,
)

log = logging.getLogger(__name__)


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
        kind=row.get("kind") or "daily",
    )


def _count(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row else 0


class DuckDBLedger:
    """Batches and requests in the DuckDB file (threads with their own cursors; one writing process).

    Args:
        storage: the open file.
    """

    def __init__(self, storage: Database) -> None:
        self.storage = storage
        self.capabilities: Capabilities = CAPABILITIES

    # -- batches -------------------------------------------------------------------------------
    def create_batch(
        self,
        *,
        batch_id: str,
        game_date: date,
        requests: Sequence[PlayerRequest],
        markets: Sequence[str],
        systems: Sequence[str],
        as_of: datetime,
        deadline_at: datetime,
        staging_table: str,
        clock: Clock,
        kind: str = "daily",
    ) -> None:
        """Record the batch (``running``) and one ``pending`` request per player in one transaction."""
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
        with self.storage.transaction() as tx:
            tx.execute(
                "INSERT INTO prediction_batches (batch_id, game_date, state, markets, systems, as_of, created_at, "
                "deadline_at, staging_table, kind) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                [
                    batch_id,
                    game_date,
                    list(markets),
                    list(systems),
                    as_of,
                    now,
                    deadline_at,
                    staging_table,
                    kind,
                ],
            )
            name = tx.temp_name("new_requests")
            tx.register(name, rows)
            tx.execute(
                f"""INSERT INTO prediction_requests (batch_id, player_lookup, player_id, player_name, team,
                       opponent, game_id, is_home, state, attempt, created_at, updated_at)
                   SELECT ?, player_lookup, player_id, player_name, team, opponent, game_id, is_home,
                          'pending', 0, ?, ?
                   FROM {name}""",
                [batch_id, now, now],
            )
        log.info("batch %s created for %s with %d requests", batch_id, game_date, len(requests))

    def get_batch(self, batch_id: str) -> BatchInfo:
        rows = self.storage.fetch_dicts("SELECT * FROM prediction_batches WHERE batch_id = ?", [batch_id])
        if not rows:
            raise UnknownBatchError(batch_id)
        return _batch_from_row(rows[0])

    def list_batches(
        self, *, game_date: date | None = None, state: str | None = None, limit: int | None = None
    ) -> list[BatchInfo]:
        rows = self.storage.fetch_dicts(
            "SELECT * FROM prediction_batches WHERE (? IS NULL OR game_date = ?) AND (? IS NULL OR state = ?) "
            "ORDER BY created_at DESC, batch_id DESC LIMIT ?",
            [game_date, game_date, state, state, 2**62 if limit is None else limit],
        )
        return [_batch_from_row(r) for r in rows]

    def running_batch(self, game_date: date) -> str | None:
        value = self.storage.scalar(
            "SELECT batch_id FROM prediction_batches WHERE game_date = ? AND state = 'running' "
            "ORDER BY created_at DESC, batch_id DESC LIMIT 1",
            [game_date],
        )
        return None if value is None else str(value)

    def latch(self, batch_id: str, *, state: str, summary: dict[str, Any], clock: Clock) -> bool:
        now = clock.now()
        row = self.storage.fetchone(
            """UPDATE prediction_batches SET state = ?, consolidated_at = ?, finished_at = ?,
                      staging_table = NULL, summary = ?
               WHERE batch_id = ? AND consolidated_at IS NULL""",
            [state, now, now, json.dumps(summary, default=str), batch_id],
        )
        if _count(row) == 0:
            self.get_batch(batch_id)  # an unknown batch is an error, not "already latched"
            return False
        return True

    # -- requests ------------------------------------------------------------------------------
    def progress(self, batch_id: str) -> dict[str, int]:
        counts = dict.fromkeys(schema.REQUEST_STATES, 0)
        for state, n in self.storage.fetchall(
            "SELECT state, count(DISTINCT player_lookup) FROM prediction_requests WHERE batch_id = ? "
            "GROUP BY state",
            [batch_id],
        ):
            counts[state] = int(n)
        return counts

    def requests(self, batch_id: str, *, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self.storage.fetch_dicts(
            f"SELECT {', '.join(REQUEST_FIELDS)} FROM prediction_requests "
            "WHERE batch_id = ? AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], state)) "
            "ORDER BY player_lookup",
            [batch_id, _list_or_none(states), _list_or_none(states)],
        )

    def claim(
        self,
        batch_id: str,
        *,
        owner: str,
        limit: int,
        lease_seconds: float,
        clock: Clock,
        players: Sequence[str] | None = None,
    ) -> list[Lease]:
        now = clock.now()
        wanted = _list_or_none(players)
        with self.storage.transaction() as tx:
            rows = tx.execute(
                """UPDATE prediction_requests SET state = 'leased', attempt = attempt + 1, lease_owner = ?,
                          lease_expires_at = ?, updated_at = ?
                   WHERE batch_id = ? AND player_lookup IN (
                       SELECT player_lookup FROM prediction_requests
                       WHERE batch_id = ? AND state = 'pending'
                         AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], player_lookup))
                       ORDER BY player_lookup LIMIT ?)
                     AND state = 'pending'
                   RETURNING player_lookup, attempt, player_name, player_id, team, opponent, game_id, is_home""",
                [
                    owner,
                    now + timedelta(seconds=lease_seconds),
                    now,
                    batch_id,
                    batch_id,
                    wanted,
                    wanted,
                    limit,
                ],
            ).fetchall()
        leases = [Lease(batch_id, r[0], int(r[1]), owner, r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]
        leases.sort(key=lambda lease: lease.player_lookup)
        return leases

    def complete(
        self,
        batch_id: str,
        *,
        owner: str,
        outcomes: Sequence[RequestOutcome],
        rows_staged: Mapping[str, int],
        clock: Clock,
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if not outcomes:
            return (), ()
        table = pa.table(
            {
                "player_lookup": pa.array([o.player_lookup for o in outcomes], pa.string()),
                "attempt": pa.array([o.attempt for o in outcomes], pa.int32()),
                "new_state": pa.array([o.state for o in outcomes], pa.string()),
                "error_code": pa.array([o.error_code for o in outcomes], pa.string()),
                "error_message": pa.array([o.error_message for o in outcomes], pa.string()),
                "rows_staged": pa.array(
                    [rows_staged.get(o.player_lookup) if o.state == "done" else None for o in outcomes],
                    pa.int32(),
                ),
            }
        )
        with self.storage.transaction() as tx:
            name = tx.temp_name("outcomes")
            tx.register(name, table)
            committed = {
                (r[0], int(r[1]))
                for r in tx.execute(
                    f"""UPDATE prediction_requests r SET state = o.new_state, error_code = o.error_code,
                              error_message = o.error_message, rows_staged = o.rows_staged,
                              lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                       FROM {name} o
                       WHERE r.batch_id = ? AND r.player_lookup = o.player_lookup AND r.attempt = o.attempt
                         AND r.state = 'leased' AND r.lease_owner = ?
                       RETURNING r.player_lookup, r.attempt""",
                    [clock.now(), batch_id, owner],
                ).fetchall()
            }
        lost = tuple(
            sorted(o.player_lookup for o in outcomes if (o.player_lookup, o.attempt) not in committed)
        )
        return tuple(sorted({p for p, _ in committed})), lost

    def release(self, batch_id: str, leases: Sequence[Lease], *, clock: Clock) -> int:
        if not leases:
            return 0
        table = pa.table(
            {
                "player_lookup": pa.array([lease.player_lookup for lease in leases], pa.string()),
                "attempt": pa.array([lease.attempt for lease in leases], pa.int32()),
                "owner": pa.array([lease.owner for lease in leases], pa.string()),
            }
        )
        with self.storage.transaction() as tx:
            name = tx.temp_name("release")
            tx.register(name, table)
            return _count(
                tx.execute(
                    f"""UPDATE prediction_requests r SET state = 'pending', lease_owner = NULL,
                              lease_expires_at = NULL, updated_at = ?
                       FROM {name} x WHERE r.batch_id = ? AND r.player_lookup = x.player_lookup
                         AND r.attempt = x.attempt AND r.state = 'leased' AND r.lease_owner = x.owner""",
                    [clock.now(), batch_id],
                ).fetchone()
            )

    def release_owned(self, *, owner_prefix: str, clock: Clock) -> int:
        return _count(
            self.storage.fetchone(
                """UPDATE prediction_requests SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                          updated_at = ?
                   WHERE state = 'leased' AND starts_with(lease_owner, ?)""",
                [clock.now(), owner_prefix],
            )
        )

    def sweep(
        self,
        *,
        clock: Clock,
        max_attempts: int,
        grace_seconds: float = 0.0,
        batch_id: str | None = None,
        foreign_owner_prefix_not: str | None = None,
    ) -> SweepResult:
        now = clock.now()
        cutoff = now - timedelta(seconds=grace_seconds)
        with self.storage.transaction() as tx:
            released = 0
            if foreign_owner_prefix_not is not None:
                # Only one process may write this file: a lease held under another prefix has no live owner.
                released = _count(
                    tx.execute(
                        """UPDATE prediction_requests SET state = 'pending', lease_owner = NULL,
                                  lease_expires_at = NULL, updated_at = ?
                           WHERE state = 'leased' AND NOT starts_with(lease_owner, ?) AND attempt < ?
                             AND (? IS NULL OR batch_id = ?)""",
                        [now, foreign_owner_prefix_not, max_attempts, batch_id, batch_id],
                    ).fetchone()
                )
                expired = "(lease_expires_at < ? OR NOT starts_with(lease_owner, ?))"
                expired_params: list[Any] = [cutoff, foreign_owner_prefix_not]
            else:
                expired = "lease_expires_at < ?"
                expired_params = [cutoff]
            failed = _count(
                tx.execute(
                    f"""UPDATE prediction_requests SET state = 'failed', error_code = 'max_attempts_exceeded',
                               error_message = 'lease expired after ' || attempt || ' attempt(s)',
                               lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                        WHERE state = 'leased' AND {expired} AND attempt >= ? AND (? IS NULL OR batch_id = ?)""",
                    [now, *expired_params, max_attempts, batch_id, batch_id],
                ).fetchone()
            )
            reclaimed = _count(
                tx.execute(
                    """UPDATE prediction_requests SET state = 'pending', lease_owner = NULL,
                              lease_expires_at = NULL, updated_at = ?
                       WHERE state = 'leased' AND lease_expires_at < ? AND (? IS NULL OR batch_id = ?)""",
                    [now, cutoff, batch_id, batch_id],
                ).fetchone()
            )
        result = SweepResult(reclaimed=reclaimed, failed=failed, released_foreign=released)
        if reclaimed or failed or released:
            log.info("sweep: %s", result)
        return result

    def fail_requests(
        self,
        batch_id: str,
        *,
        error_code: str,
        clock: Clock,
        players: Sequence[str] | None = None,
        error_message: str | None = None,
    ) -> int:
        wanted = _list_or_none(players)
        return _count(
            self.storage.fetchone(
                """UPDATE prediction_requests SET state = 'failed', error_code = ?, error_message = ?,
                          lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                   WHERE batch_id = ? AND state IN ('pending', 'leased')
                     AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], player_lookup))""",
                [error_code, error_message, clock.now(), batch_id, wanted, wanted],
            )
        )


def _list_or_none(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(values)
