"""Ingest: box scores, sportsbook lines and schedules; player-name normalisation."""

from nbaprops.ingest._report import IngestReport
from nbaprops.ingest.boxscores import ensure_boxscores, ingest_boxscores
from nbaprops.ingest.names import lookup_sql, player_lookup

__all__ = ["IngestReport", "ensure_boxscores", "ingest_boxscores", "lookup_sql", "player_lookup"]
