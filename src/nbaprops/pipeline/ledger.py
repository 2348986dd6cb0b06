"""The request ledger as the pipeline sees it: one durable record per requested player, and every state change.

Progress is always a count over these records (invariant I4): no counter is incremented, so a lost or repeated
event can delay a batch but never lose or double a completion.

Request states: ``pending`` → ``leased`` (claim: ``attempt += 1``, owner, expiry) → ``done`` | ``skipped`` |
``failed`` (terminal, I1). An expired lease goes back to ``pending``, or to ``failed`` once ``max_attempts``
claims were spent (I6). A completion is fenced by ``attempt`` and owner: a worker whose lease was taken over
completes nothing (I7). A chunk's rows are loaded into staging first and the requests end ``done`` after the
load succeeded, naming the attempt; consolidation takes only staging rows of ``done`` requests at that attempt,
so a worker dying between the two leaves rows nothing will ever consolidate (the janitor drops them with the
staging table) and a completion can never point at rows that were not loaded.

These functions take any backend (:class:`nbaprops.storage.seams.Backend`) and call its ledger and warehouse
seams; the SQL of each backend lives in its own package under :mod:`nbaprops.storage`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.clock import Clock
from nbaprops.errors import ContractError
from nbaprops.storage.seams import (
    Backend,
    BatchInfo,
    CommitResult,
    Lease,
    PlayerRequest,
    RequestOutcome,
    SweepResult,
    TerminalState,
)

log = logging.getLogger(__name__)

__all__ = [
    "BatchInfo",
    "CommitResult",
    "Lease",
    "PlayerRequest",
    "RequestOutcome",
    "SweepResult",
    "TerminalState",
]


def new_batch_id(game_date: date) -> str:
    return f"{game_date:%Y%m%d}_{uuid.uuid4().hex[:12]}"


def create_batch(
    backend: Backend,
    *,
    game_date: date,
    requests: Sequence[PlayerRequest],
    markets: Sequence[str],
    systems: Sequence[str],
    as_of: datetime,
    deadline_minutes: float,
    clock: Clock,
    staging_ttl_hours: float = 24.0,
    kind: str = "daily",
) -> str:
    """Create the batch's staging table, then the batch and one ``pending`` request per player.

    A crash between the two leaves a staging table no batch owns: the janitor drops it.
    """
    batch_id = new_batch_id(game_date)
    staging = backend.warehouse.create_staging(batch_id, expires_hours=staging_ttl_hours)
    now = clock.now()
    backend.ledger.create_batch(
        batch_id=batch_id,
        game_date=game_date,
        requests=requests,
        markets=markets,
        systems=systems,
        as_of=as_of,
        deadline_at=now + timedelta(minutes=deadline_minutes),
        staging_table=staging,
        clock=clock,
        kind=kind,
    )
    log.info("batch %s created for %s with %d requests", batch_id, game_date, len(requests))
    return batch_id


def get_batch(backend: Backend, batch_id: str) -> BatchInfo:
    return backend.ledger.get_batch(batch_id)


def list_batches(
    backend: Backend, *, game_date: date | None = None, state: str | None = None, limit: int | None = None
) -> list[BatchInfo]:
    return backend.ledger.list_batches(game_date=game_date, state=state, limit=limit)


def running_batch(backend: Backend, game_date: date) -> str | None:
    """The running batch of a date, if any."""
    return backend.ledger.running_batch(game_date)


def progress(backend: Backend, batch_id: str) -> dict[str, int]:
    """Counts of requests by state (I4: a count, never a sum of deltas)."""
    return backend.ledger.progress(batch_id)


def claim(
    backend: Backend,
    batch_id: str,
    *,
    owner: str,
    limit: int,
    lease_seconds: float,
    clock: Clock,
    players: Sequence[str] | None = None,
) -> list[Lease]:
    """Lease up to ``limit`` pending requests of the batch to ``owner`` (``attempt += 1``)."""
    return backend.ledger.claim(
        batch_id, owner=owner, limit=limit, lease_seconds=lease_seconds, clock=clock, players=players
    )


def load_id(batch_id: str, owner: str, pairs: Sequence[tuple[str, int]]) -> str:
    """A staging load's identity: the same chunk at the same attempts by the same owner loads once."""
    digest = hashlib.sha256(repr(sorted(pairs)).encode()).hexdigest()[:24]
    return f"{batch_id}-{digest}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"


def commit(
    backend: Backend,
    batch_id: str,
    *,
    owner: str,
    outcomes: Sequence[RequestOutcome],
    staged_rows: pa.Table | None,
    clock: Clock,
) -> CommitResult:
    """Load a chunk's rows into staging, then end its requests — fenced by attempt and owner (I7).

    Only rows of outcomes ending ``done`` are loaded, each at its own attempt; requests whose lease was taken
    over are returned in ``lost`` (their rows stay in staging, fenced out at consolidation).
    """
    if not outcomes:
        return CommitResult((), (), 0)
    info = backend.ledger.get_batch(batch_id)
    if info.staging_table is None or info.consolidated_at is not None:
        # The batch was consolidated (e.g. forced partial) while this worker ran: its rows cannot land.
        return CommitResult((), tuple(sorted(o.player_lookup for o in outcomes)), 0)
    done = {(o.player_lookup, o.attempt) for o in outcomes if o.state == "done"}
    per_player: dict[str, int] = {}
    if staged_rows is not None and staged_rows.num_rows and done:
        keys = pc.binary_join_element_wise(
            staged_rows["player_lookup"], pc.cast(staged_rows["attempt"], pa.string()), "\x1f"
        )
        wanted = pa.array([f"{p}\x1f{a}" for p, a in sorted(done)], pa.string())
        rows = staged_rows.filter(pc.is_in(keys, value_set=wanted))
        if rows.num_rows:
            try:
                backend.warehouse.stage(
                    info.staging_table, rows, load_id=load_id(batch_id, owner, sorted(done))
                )
            except Exception:
                if backend.ledger.get_batch(batch_id).consolidated_at is not None:
                    # consolidated (and its staging dropped) while this chunk was loading: nothing can land
                    return CommitResult((), tuple(sorted(o.player_lookup for o in outcomes)), 0)
                raise
            # A request's record holds one attempt, its newest: an older attempt of the same player in this
            # chunk can only be lost, so its rows never count as staged.
            newest: dict[str, int] = {}
            for player, attempt in done:
                newest[player] = max(attempt, newest.get(player, attempt))
            pairs = Counter(zip(rows["player_lookup"].to_pylist(), rows["attempt"].to_pylist(), strict=True))
            per_player = {p: n for (p, a), n in pairs.items() if newest.get(p) == a}
    committed, lost = backend.ledger.complete(
        batch_id, owner=owner, outcomes=outcomes, rows_staged=per_player, clock=clock
    )
    if lost:
        log.warning(
            "batch %s: %d request(s) lost their lease before commit: %s", batch_id, len(lost), lost[:5]
        )
    return CommitResult(committed, lost, sum(per_player.get(p, 0) for p in committed))


def release_owned(backend: Backend, *, owner_prefix: str, clock: Clock) -> int:
    """Give back every lease held under ``owner_prefix`` (a process stopping cleanly); attempts are kept."""
    return backend.ledger.release_owned(owner_prefix=owner_prefix, clock=clock)


def release(backend: Backend, batch_id: str, leases: Sequence[Lease], *, clock: Clock) -> int:
    """Give leases back (``pending``) after a transient error; the attempt count is kept."""
    if not leases:
        return 0
    return backend.ledger.release(batch_id, leases, clock=clock)


def sweep(
    backend: Backend,
    *,
    clock: Clock,
    max_attempts: int,
    grace_seconds: float = 0.0,
    batch_id: str | None = None,
    foreign_owner_prefix_not: str | None = None,
) -> SweepResult:
    """Reclaim every expired lease, at any completion ratio (I6); see :meth:`Ledger.sweep`."""
    result = backend.ledger.sweep(
        clock=clock,
        max_attempts=max_attempts,
        grace_seconds=grace_seconds,
        batch_id=batch_id,
        foreign_owner_prefix_not=foreign_owner_prefix_not,
    )
    if result.reclaimed or result.failed or result.released_foreign:
        log.info("sweep: %s", result)
    return result


def fail_open_requests(backend: Backend, batch_id: str, *, error_code: str, clock: Clock) -> int:
    """End every non-terminal request of a batch ``failed`` (batch deadline, forced finish)."""
    return backend.ledger.fail_requests(batch_id, error_code=error_code, clock=clock)


def fail_requests(
    backend: Backend,
    batch_id: str,
    *,
    players: Sequence[str],
    error_code: str,
    error_message: str | None,
    clock: Clock,
) -> int:
    """End the open requests of ``players`` ``failed`` (e.g. their message was dead-lettered)."""
    return backend.ledger.fail_requests(
        batch_id, error_code=error_code, clock=clock, players=players, error_message=error_message
    )


def missing_players(backend: Backend, batch_id: str) -> list[dict[str, Any]]:
    """Requests that did not end ``done``, with why (ordered by state, then player)."""
    rows = [r for r in backend.ledger.requests(batch_id) if r["state"] != "done"]
    keys = ("player_lookup", "player_name", "team", "state", "error_code", "error_message", "attempt")
    return [{k: r.get(k) for k in keys} for r in sorted(rows, key=lambda r: (r["state"], r["player_lookup"]))]


def check_terminal_states(backend: Backend, batch_id: str) -> None:
    """Raise if a request of a finished batch is not terminal (I1)."""
    counts = backend.ledger.progress(batch_id)
    open_count = counts.get("pending", 0) + counts.get("leased", 0)
    if open_count:
        raise ContractError(f"batch {batch_id} has {open_count} non-terminal request(s) after finishing")
