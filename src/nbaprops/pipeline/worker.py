"""Workers: claim a chunk, predict it in one vectorised pass, stage + complete atomically.

What a worker does with a claimed chunk (:func:`process_leases`; the queue workers of :mod:`.queue_worker` claim
it). A worker never holds state the ledger does not: if it dies anywhere, its leases expire (or, on a
single-writer backend, are released when the file is reopened) and another worker redoes the chunk. A
terminal error on a chunk ends its requests ``failed`` with the error's class as code; a transient one gives
the leases back for another attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import pyarrow as pa

from nbaprops.clock import Clock
from nbaprops.errors import StorageFullError, TerminalError, TransientError
from nbaprops.pipeline import ledger
from nbaprops.pipeline.ledger import Lease, RequestOutcome
from nbaprops.storage import retry_transient
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import Backend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkPrediction:
    """A predicted chunk: the staging rows (staging contract columns) and how each request ends."""

    rows: pa.Table | None
    outcomes: tuple[RequestOutcome, ...]


class ChunkPredictor(Protocol):
    """Turns leased requests into staged prediction rows (see :mod:`nbaprops.pipeline.slate`)."""

    def predict_chunk(self, storage: Inputs, leases: Sequence[Lease]) -> ChunkPrediction: ...


@dataclass
class WorkerStats:
    owner: str
    chunks: int = 0
    committed: int = 0
    lost: int = 0
    rows_staged: int = 0
    transient_errors: int = 0
    last: ledger.CommitResult | None = field(default=None, repr=False)


def process_leases(
    backend: Backend,
    batch_id: str,
    leases: Sequence[Lease],
    *,
    owner: str,
    predictor: ChunkPredictor,
    clock: Clock,
    stats: WorkerStats,
    features: Inputs | None = None,
) -> bool:
    """Predict one claimed chunk, stage its rows and end its requests; False when it was given back.

    A transient error gives the leases back (``pending``, attempt kept) for another try; a terminal one ends
    the chunk's requests ``failed`` with the error's class as code.
    """
    stats.chunks += 1
    stats.last = None
    try:
        chunk = predictor.predict_chunk(features if features is not None else backend.features, leases)
    except TransientError as exc:
        stats.transient_errors += 1
        log.warning(
            "batch %s worker %s: transient error on a chunk of %d, releasing: %s",
            batch_id,
            owner,
            len(leases),
            exc,
        )
        retry_transient(partial(ledger.release, backend, batch_id, leases, clock=clock))
        return False
    except StorageFullError:
        # Not the chunk's fault: its requests stay leased (a rerun takes them back) instead of ending failed.
        raise
    except TerminalError as exc:
        log.error("batch %s worker %s: chunk failed: %s", batch_id, owner, exc)
        chunk = ChunkPrediction(
            None,
            tuple(
                RequestOutcome(
                    lease.player_lookup, lease.attempt, "failed", type(exc).__name__, str(exc)[:500]
                )
                for lease in leases
            ),
        )
    result = retry_transient(
        partial(
            ledger.commit,
            backend,
            batch_id,
            owner=owner,
            outcomes=chunk.outcomes,
            staged_rows=chunk.rows,
            clock=clock,
        )
    )
    stats.committed += len(result.committed)
    stats.lost += len(result.lost)
    stats.rows_staged += result.rows_staged
    stats.last = result
    return True
