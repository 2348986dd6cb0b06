"""NBA.com's stats API through ``nba_api``: box scores (LeagueGameLog, player mode) and the league schedule.

``nba_api`` (optional extra ``live``) builds each endpoint's parameters and parses its answers — the legacy
``resultSets`` (``headers`` + ``rowSet``) of ``leaguegamelog``, the nested ``leagueSchedule.gameDates[].games[]``
of ``scheduleleaguev2`` — and sends the request with its own ``requests`` session and the browser-like headers
NBA.com insists on (without them stats.nba.com hangs until the timeout). This module adds what it lacks:
a configurable base URL (``nba_stats_url``; tests serve recorded answers on loopback), timeouts, retries with
backoff (:mod:`nbaprops.sources._http`), errors naming the source and status, and the landing + ingest path.

Box scores are incremental: the cursor (``source_state``, resource ``boxscores:<season>``) is the last game
date received; a fetch asks only for the days after it — or, the first time, after the last stored game of that
season — through yesterday (US Eastern), so a daily run asks for one day.
"""

from __future__ import annotations

import importlib
import logging
from datetime import date, timedelta
from typing import Any

from nbaprops.clock import Clock, eastern_date
from nbaprops.config import Settings
from nbaprops.errors import ConfigError, SourceError
from nbaprops.ingest.boxscores import ingest_boxscores
from nbaprops.ingest.schedule import ingest_schedule
from nbaprops.ingest.teams import team_abbr
from nbaprops.sources._common import (
    FetchReport,
    check_season,
    csv_text,
    get_cursor,
    land,
    set_cursor,
    stamp,
)
from nbaprops.sources._http import Reply, RetryPolicy, call
from nbaprops.storage.inputs import Inputs

log = logging.getLogger(__name__)

SOURCE = "nba_stats"
BOX_COLUMNS = (
    "PLAYER_ID",
    "PLAYER_NAME",
    "TEAM_ABBREVIATION",
    "GAME_ID",
    "GAME_DATE",
    "MATCHUP",
    "MIN",
    "PTS",
)
# Regular season, playoffs, play-in: the games box scores and props exist for (not preseason or All-Star).
GAME_ID_PREFIXES = ("002", "004", "005")


def policy_from(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        timeout=settings.http_timeout_seconds,
        retries=settings.http_retries,
        base_delay=settings.http_backoff_seconds,
    )


_MISSING = "fetching from NBA.com needs nba_api: pip install 'nbaprops[live]'"


def _endpoint(name: str) -> Any:
    """An ``nba_api`` endpoint class (the optional extra's absence is a clear error, not a traceback)."""
    try:
        module = importlib.import_module("nba_api.stats.endpoints")
    except ImportError as exc:
        raise ConfigError(_MISSING) from exc
    return getattr(module, name)


def _request(settings: Settings, endpoint: Any, policy: RetryPolicy) -> Any:
    """Send an ``nba_api`` endpoint (built with ``get_request=False``) through its own HTTP layer."""
    try:
        import requests  # the live extra
        from nba_api.stats.library.http import NBAStatsHTTP  # the live extra
    except ImportError as exc:
        raise ConfigError(_MISSING) from exc

    class _Http(NBAStatsHTTP):  # type: ignore[misc]
        base_url = settings.nba_stats_url.rstrip("/") + "/{endpoint}"

    http = _Http()
    name = endpoint.endpoint

    def send() -> Any:
        return http.send_api_request(endpoint=name, parameters=endpoint.parameters, timeout=policy.timeout)

    def reply(response: Any) -> Reply:
        return Reply(int(response._status_code or 0))  # nba_api keeps the status only on this attribute

    try:
        response = call(
            SOURCE, name, send, reply, policy=policy, transient=(requests.Timeout, requests.ConnectionError)
        )
    except requests.RequestException as exc:
        raise SourceError(SOURCE, f"{name}: {type(exc).__name__}") from exc
    if not response.valid_json():
        raise SourceError(SOURCE, f"{name} answered something that is not JSON", status=200)
    return response


def _date_param(day: date | None) -> str:
    return "" if day is None else day.strftime("%m/%d/%Y")


def fetch_boxscores(
    storage: Inputs,
    settings: Settings,
    *,
    season: str,
    clock: Clock,
    since: date | None = None,
    until: date | None = None,
    policy: RetryPolicy | None = None,
) -> FetchReport:
    """Fetch the player game logs of ``season`` not stored yet and ingest them (see the module docstring).

    Args:
        since: ask from this date on, whatever the cursor says (a re-fetch; stored rows are not duplicated).
        until: last date asked (default: yesterday, US Eastern).
    """
    check_season(season)
    resource = f"boxscores:{season}"
    end = until or (eastern_date(clock) - timedelta(days=1))
    start = since
    if start is None:
        cursor = get_cursor(storage, SOURCE, resource)
        last = (
            date.fromisoformat(cursor)
            if cursor
            else storage.scalar("SELECT max(game_date) FROM box_scores WHERE season = ?", [season])
        )
        start = None if last is None else last + timedelta(days=1)
    if start is not None and start > end:
        return FetchReport(
            SOURCE,
            "boxscores",
            None,
            0,
            0,
            None,
            f"nothing new to ask: box scores of {season} are stored through {start - timedelta(days=1)}",
        )
    endpoint = _endpoint("LeagueGameLog")(
        player_or_team_abbreviation="P",
        season=season,
        season_type_all_star="Regular Season",
        date_from_nullable=_date_param(start),
        date_to_nullable=_date_param(end),
        get_request=False,
    )
    asked = {"season": season, "from": None if start is None else start.isoformat(), "to": end.isoformat()}
    response = _request(settings, endpoint, policy or policy_from(settings))
    try:
        data = response.get_data_sets()["LeagueGameLog"]
        headers, rows = list(data["headers"]), list(data["data"])
    except (KeyError, TypeError, IndexError) as exc:
        raise SourceError(
            SOURCE, f"leaguegamelog answered an unexpected shape ({exc!r})", status=200
        ) from exc
    missing = [c for c in BOX_COLUMNS if c not in headers]
    if missing:
        raise SourceError(SOURCE, f"leaguegamelog lacks column(s) {', '.join(missing)}", status=200)
    if not rows:
        return FetchReport(
            SOURCE, "boxscores", asked, 0, 0, None, f"no games played {asked['from']}..{asked['to']}"
        )
    path = land(settings, SOURCE, f"leaguegamelog_{season}_{stamp(clock)}.csv", csv_text(headers, rows))
    report = ingest_boxscores(storage, [path])
    at = headers.index("GAME_DATE")
    last_day = max(str(row[at])[:10] for row in rows)
    set_cursor(storage, SOURCE, resource, last_day, clock=clock)
    return FetchReport(
        SOURCE,
        "boxscores",
        asked,
        len(rows),
        report.rows_added,
        str(path),
        f"{len(rows)} player-games through {last_day}, {report.rows_added} new",
    )


def game_status(game: dict[str, Any]) -> str:
    """``scheduled``, ``final``, ``postponed`` or ``cancelled`` from a schedule game.

    Postponement is read from ``gameStatusText`` ("PPD", "Postponed"): the ``postponedStatus`` flag's letters
    are not documented and have been seen set on ordinary games.
    """
    text = str(game.get("gameStatusText") or "").lower()
    if "ppd" in text or "postpon" in text:
        return "postponed"
    if "cancel" in text:
        return "cancelled"
    return "final" if game.get("gameStatus") == 3 else "scheduled"


def schedule_rows(headers: list[str], data: list[list[Any]]) -> tuple[list[list[Any]], int]:
    """Our schedule CSV rows from nba_api's flattened ``SeasonGames`` (and how many games were left out)."""
    out, skipped = [], 0
    for values in data:
        game = dict(zip(headers, values, strict=False))
        home, away = str(game.get("homeTeam_teamTricode") or ""), str(game.get("awayTeam_teamTricode") or "")
        game_id = str(game.get("gameId") or "")
        if not game_id.startswith(GAME_ID_PREFIXES) or team_abbr(home) is None or team_abbr(away) is None:
            skipped += 1  # preseason, All-Star, or a playoff game whose teams are not known yet
            continue
        tipoff = str(game.get("gameDateTimeUTC") or "")
        timed = "tbd" not in str(game.get("gameStatusText") or "").lower() and tipoff[:4] not in ("", "1900")
        out.append(
            [
                str(game.get("gameDateEst") or "")[:10],
                home,
                away,
                game_id,
                tipoff if timed else "",
                game_status(game),
            ]
        )
    return out, skipped


def fetch_schedule(
    storage: Inputs,
    settings: Settings,
    *,
    season: str,
    clock: Clock,
    policy: RetryPolicy | None = None,
) -> FetchReport:
    """Fetch the league schedule of ``season`` (tip-off times, postponements) and ingest it."""
    check_season(season)
    endpoint = _endpoint("ScheduleLeagueV2")(league_id="00", season=season, get_request=False)
    response = _request(settings, endpoint, policy or policy_from(settings))
    try:
        games = response.get_data_sets(endpoint.endpoint)["SeasonGames"]
        rows, skipped = schedule_rows(list(games["headers"]), list(games["data"]))
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise SourceError(
            SOURCE, f"scheduleleaguev2 answered an unexpected shape ({exc!r})", status=200
        ) from exc
    asked = {"season": season}
    if not rows:
        return FetchReport(
            SOURCE, "schedule", asked, 0, 0, None, f"no NBA games in the {season} schedule yet"
        )
    header = ("game_date", "home_team", "away_team", "game_id", "commence_time", "status")
    path = land(settings, SOURCE, f"schedule_{season}_{stamp(clock)}.csv", csv_text(header, rows))
    report = ingest_schedule(storage, [path])
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row[5]] = statuses.get(row[5], 0) + 1
    return FetchReport(
        SOURCE,
        "schedule",
        asked,
        len(rows),
        report.rows_added,
        str(path),
        f"{len(rows)} games ({report.rows_added} new, {report.details.get('updated', 0)} updated)",
        {
            "statuses": statuses,
            "left_out": skipped,
            "updated": report.details.get("updated", 0),
            "moved": report.details.get("moved", 0),
        },
    )
