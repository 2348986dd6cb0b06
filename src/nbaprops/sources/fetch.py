"""One fetch by kind (``nbaprops fetch KIND``): the source that serves it, and its alert when it fails."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from nbaprops.alerts import failure_alert
from nbaprops.clock import Clock, eastern_date
from nbaprops.config import Settings
from nbaprops.ingest import ensure_boxscores
from nbaprops.markets import MARKETS
from nbaprops.sources import injury_report, nba_stats, odds_api
from nbaprops.sources._common import FetchReport, season_of
from nbaprops.storage.inputs import Inputs

FetchKind = Literal["boxscores", "schedule", "injuries", "lines"]


def fetch(
    kind: FetchKind,
    storage: Inputs,
    settings: Settings,
    *,
    clock: Clock,
    season: str | None = None,
    since: date | None = None,
    until: date | None = None,
    game_date: date | None = None,
    at: datetime | None = None,
    markets: tuple[str, ...] | None = None,
) -> FetchReport:
    """Fetch one kind from its live source into ``storage`` (each source's own arguments; a season defaults to
    the current one); a failure alerts ``fetch_failed`` (:mod:`nbaprops.alerts`) and propagates."""
    season = season or season_of(eastern_date(clock))
    ensure_boxscores(storage)
    try:
        if kind == "boxscores":
            return nba_stats.fetch_boxscores(
                storage, settings, season=season, clock=clock, since=since, until=until
            )
        if kind == "schedule":
            return nba_stats.fetch_schedule(storage, settings, season=season, clock=clock)
        if kind == "injuries":
            return injury_report.fetch_injuries(storage, settings, clock=clock, at=at, game_date=game_date)
        assert game_date is not None, "fetch lines needs its game date"
        return odds_api.fetch_lines(
            storage, settings, game_date=game_date, clock=clock, markets=markets or tuple(MARKETS), at=at
        )
    except Exception as exc:
        failure_alert(settings, f"fetch {kind}", exc)
        raise


__all__ = ["FetchKind", "fetch"]
