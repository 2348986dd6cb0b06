"""The batch pipeline: coordinator (start, sweep, finish), workers (claim, predict, stage), the request
ledger, consolidation and the janitor."""

from nbaprops.pipeline.consolidate import ConsolidationResult, consolidate
from nbaprops.pipeline.coordinator import BatchSummary, Coordinator, StartResult, expected_players
from nbaprops.pipeline.janitor import CleanupResult, cleanup_staging, staging_tables
from nbaprops.pipeline.ledger import Lease, PlayerRequest, RequestOutcome
from nbaprops.pipeline.worker import ChunkPrediction, ChunkPredictor

__all__ = [
    "BatchSummary",
    "ChunkPrediction",
    "ChunkPredictor",
    "CleanupResult",
    "ConsolidationResult",
    "Coordinator",
    "Lease",
    "PlayerRequest",
    "RequestOutcome",
    "StartResult",
    "cleanup_staging",
    "consolidate",
    "expected_players",
    "staging_tables",
]
