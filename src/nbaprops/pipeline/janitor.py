"""The janitor: no staging table outlives its batch (I8).

Staging is normally dropped in the same transaction that consolidates it. The janitor catches the rest: a
staging table whose batch is already final, or whose batch row does not exist (an orphan nothing can ever
consolidate), is dropped at once; a batch still running past the TTL is finished as ``partial`` first —
which consolidates what its requests completed — so that no completed work is thrown away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nbaprops.clock import Clock
from nbaprops.pipeline import ledger
from nbaprops.pipeline.consolidate import consolidate
from nbaprops.storage.seams import Backend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanupResult:
    dropped: tuple[str, ...]
    finished_batches: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    details: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dropped": list(self.dropped),
            "dropped_count": len(self.dropped),
            "finished_batches": list(self.finished_batches),
            "kept": list(self.kept),
            **({"dry_run": True} if self.dry_run else {}),  # said only when nothing was changed
        }


def staging_tables(backend: Backend) -> list[str]:
    return backend.warehouse.staging_tables()


def cleanup_staging(
    backend: Backend, *, older_than_hours: float, clock: Clock, dry_run: bool = False
) -> CleanupResult:
    """Drop staging that no batch will consolidate; finish batches older than the TTL first.

    Args:
        dry_run: change nothing; report what would be dropped and which batches would be finished.
    """
    now = clock.now()
    owners = {
        info.staging_table: info for info in backend.ledger.list_batches() if info.staging_table is not None
    }
    dropped: list[str] = []
    finished: list[str] = []
    kept: list[str] = []
    for table in staging_tables(backend):
        owner = owners.get(table)
        if owner is None:
            if not dry_run:
                backend.warehouse.drop_staging(table)
            dropped.append(table)
            continue
        if owner.created_at < now - timedelta(hours=older_than_hours):
            if not dry_run:
                ledger.fail_open_requests(
                    backend, owner.batch_id, error_code="staging_ttl_expired", clock=clock
                )
                consolidate(backend, owner.batch_id, clock=clock, summary={"finished_by": "janitor"})
            finished.append(owner.batch_id)
            dropped.append(table)
        else:
            kept.append(table)
    if dry_run:
        return CleanupResult(tuple(dropped), tuple(finished), tuple(kept), dry_run=True)
    # Final batches whose staging somehow survived (their staging_table is NULL once latched).
    for table in staging_tables(backend):
        if table not in kept:
            backend.warehouse.drop_staging(table)
            if table not in dropped:
                dropped.append(table)
    if dropped:
        log.info("janitor dropped %d staging table(s)", len(dropped))
    return CleanupResult(tuple(dropped), tuple(finished), tuple(kept))
