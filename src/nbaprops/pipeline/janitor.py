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

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.pipeline import ledger
from nbaprops.pipeline.consolidate import consolidate
from nbaprops.storage.duckdb import DuckDBStorage

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


def staging_tables(storage: DuckDBStorage) -> list[str]:
    return storage.tables_with_prefix(schema.STAGING_PREFIX)


def cleanup_staging(
    storage: DuckDBStorage, *, older_than_hours: float, clock: Clock, dry_run: bool = False
) -> CleanupResult:
    """Drop staging that no batch will consolidate; finish batches older than the TTL first.

    Args:
        dry_run: change nothing; report what would be dropped and which batches would be finished.
    """
    now = clock.now()
    owners = {
        row["staging_table"]: row
        for row in storage.fetch_dicts(
            "SELECT batch_id, state, created_at, staging_table FROM prediction_batches WHERE staging_table IS NOT NULL"
        )
    }
    dropped: list[str] = []
    finished: list[str] = []
    kept: list[str] = []
    for table in staging_tables(storage):
        owner = owners.get(table)
        if owner is None:
            if not dry_run:
                storage.execute(f'DROP TABLE IF EXISTS "{table}"')
            dropped.append(table)
            continue
        if owner["created_at"] < now - timedelta(hours=older_than_hours):
            if not dry_run:
                ledger.fail_open_requests(
                    storage, owner["batch_id"], error_code="staging_ttl_expired", clock=clock
                )
                consolidate(storage, owner["batch_id"], clock=clock, summary={"finished_by": "janitor"})
            finished.append(owner["batch_id"])
            dropped.append(table)
        else:
            kept.append(table)
    if dry_run:
        return CleanupResult(tuple(dropped), tuple(finished), tuple(kept), dry_run=True)
    # Final batches whose staging somehow survived (their staging_table is NULL once latched).
    for table in staging_tables(storage):
        if table not in kept:
            storage.execute(f'DROP TABLE IF EXISTS "{table}"')
            if table not in dropped:
                dropped.append(table)
    if dropped:
        log.info("janitor dropped %d staging table(s)", len(dropped))
    return CleanupResult(tuple(dropped), tuple(finished), tuple(kept))
