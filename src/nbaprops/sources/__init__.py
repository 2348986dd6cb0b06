"""Clients for the live inputs of a game day, each feeding the ordinary ingest path.

- :mod:`~nbaprops.sources.nba_stats` — box scores and the league schedule from NBA.com (``nba_api``).
- :mod:`~nbaprops.sources.injury_report` — the official injury report PDF (``nbainjuries``, tabula-java).
- :mod:`~nbaprops.sources.odds_api` — every book's player-prop lines from The Odds API v4 (``httpx``).

``nba_api`` and ``nbainjuries`` come with the optional extra ``live``; the clients import them only when used.
"""

from nbaprops.clock import eastern_date
from nbaprops.sources._common import FetchReport, season_of
from nbaprops.sources._http import RetryPolicy

__all__ = ["FetchReport", "RetryPolicy", "eastern_date", "season_of"]
