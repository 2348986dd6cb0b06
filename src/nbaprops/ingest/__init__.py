"""Ingest: box scores, sportsbook lines, schedules and injury reports; teams and player-name normalisation.

Every kind of file goes through one loader (:func:`load`) driven by its :class:`IngestSpec`.
"""

from nbaprops.ingest._loader import IngestSpec, load
from nbaprops.ingest._report import IngestReport
from nbaprops.ingest.boxscores import ensure_aliases, ensure_boxscores, ingest_boxscores
from nbaprops.ingest.injuries import ingest_injuries
from nbaprops.ingest.lines import ingest_lines, select_lines
from nbaprops.ingest.names import lookup_sql, player_lookup
from nbaprops.ingest.schedule import games_for_date, ingest_schedule

__all__ = [
    "IngestReport",
    "IngestSpec",
    "ensure_aliases",
    "ensure_boxscores",
    "games_for_date",
    "ingest_boxscores",
    "ingest_injuries",
    "ingest_lines",
    "ingest_schedule",
    "load",
    "lookup_sql",
    "player_lookup",
    "select_lines",
]
