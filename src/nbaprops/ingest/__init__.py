"""Ingest: box scores, sportsbook lines and schedules; player-name normalisation."""

from nbaprops.ingest._report import IngestReport
from nbaprops.ingest.boxscores import ensure_aliases, ensure_boxscores, ingest_boxscores
from nbaprops.ingest.lines import ingest_lines, select_lines
from nbaprops.ingest.names import lookup_sql, player_lookup
from nbaprops.ingest.schedule import games_for_date, ingest_schedule

__all__ = [
    "IngestReport",
    "ensure_aliases",
    "ensure_boxscores",
    "games_for_date",
    "ingest_boxscores",
    "ingest_lines",
    "ingest_schedule",
    "lookup_sql",
    "player_lookup",
    "select_lines",
]
