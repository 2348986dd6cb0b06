"""The Odds API (v4) through ``httpx``: the player-prop lines of every book, now or at a past moment.

Two calls per game date: ``GET /v4/sports/basketball_nba/events`` (the date's events, between midnight and
midnight US Eastern; this listing does not count against the quota) and, per event,
``GET /v4/sports/basketball_nba/events/{id}/odds`` with the prop markets asked (``player_points``,
``player_rebounds``, ``player_assists``, ``player_threes``, ``player_points_rebounds_assists``) and, with
``odds_alternates`` on (the default), their alternate ladders (``player_points_alternate`` …
``player_points_rebounds_assists_alternate``: the same outcomes at more lines, stored as the same market; the
main-line rule picks each book's main line among them), American odds, for the bookmaker regions of the
``odds_regions`` setting (comma separated: ``us``, ``us2``, ``uk``, ``eu``, ``au``; the quota cost is markets ×
regions per event). Each answer nests ``bookmakers[].markets[].outcomes[]``; an outcome is one side (``name``
Over/Under) of one player (``description``) at one line (``point``). Every book returned is kept with its line
and both prices (a side the book does not offer stays empty), with the market's ``last_update`` as the
snapshot time (``posted_at``), so a batch sees only the lines posted by its as-of time and each posting joins the
snapshot history (:mod:`nbaprops.ingest.snapshots`).

**A past moment** (``at``): the historical endpoints of paid plans, ``GET /v4/historical/sports/basketball_nba/
events`` and ``.../events/{id}/odds`` with ``date=at``, answer the closest snapshot at or before ``at`` (5-minute
snapshots of player props since 2023-05-03; 10 quota units per market and region), wrapped as
``{"timestamp", "previous_timestamp", "next_timestamp", "data": ...}`` around the live shape. Fetching the same
date at several moments builds its line history.

All events are fetched before anything is stored: a failure on the seventh event stores nothing. The API key
(``NBAPROPS_ODDS_API_KEY``) goes in the query string, so it never appears in a message or a landed file name.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx

from nbaprops.clock import EASTERN, Clock
from nbaprops.config import Settings
from nbaprops.errors import ConfigError, SourceError
from nbaprops.ingest.lines import ingest_lines
from nbaprops.sources._common import FetchReport, csv_text, land, stamp, utc
from nbaprops.sources._http import Reply, RetryPolicy, call
from nbaprops.sources.nba_stats import policy_from
from nbaprops.storage.inputs import Inputs

log = logging.getLogger(__name__)

SOURCE = "odds_api"
SPORT = "basketball_nba"
MARKET_KEYS: dict[str, str] = {
    "points": "player_points",
    "rebounds": "player_rebounds",
    "assists": "player_assists",
    "threes": "player_threes",
    "pra": "player_points_rebounds_assists",
}
ALTERNATE = "_alternate"
"""Suffix of a market's alternate-lines key (``player_points`` → ``player_points_alternate``)."""
LINE_HEADER = (
    "game_date",
    "player_name",
    "market",
    "bookmaker",
    "line",
    "over_price",
    "under_price",
    "home_team",
    "away_team",
    "commence_time",
    "event_id",
    "posted_at",
)


def _iso(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_window(game_date: date) -> tuple[str, str]:
    """``commenceTimeFrom``/``commenceTimeTo`` of a US Eastern calendar day, in UTC."""
    start = datetime.combine(game_date, time(0, 0), EASTERN)
    end = datetime.combine(game_date + timedelta(days=1), time(0, 0), EASTERN) - timedelta(seconds=1)
    return _iso(start), _iso(end)


def line_rows(event: dict[str, Any], markets: dict[str, str]) -> list[list[Any]]:
    """Our line rows from one event-odds answer: one per book, market, player and line (over and under paired)."""
    commence = str(event.get("commence_time") or "")
    local_day = datetime.fromisoformat(commence.replace("Z", "+00:00")).astimezone(EASTERN).date().isoformat()
    ours = {key: market for market, key in markets.items()}
    ours.update({key + ALTERNATE: market for market, key in markets.items()})
    rows: list[list[Any]] = []
    for book in event.get("bookmakers") or []:
        for market in book.get("markets") or []:
            name = ours.get(str(market.get("key")))
            if name is None:
                continue
            sides: dict[tuple[str, float], dict[str, Any]] = {}
            for outcome in market.get("outcomes") or []:
                player, point, side = (
                    outcome.get("description"),
                    outcome.get("point"),
                    str(outcome.get("name", "")),
                )
                if not player or point is None or side.lower() not in ("over", "under"):
                    continue
                sides.setdefault((str(player), float(point)), {})[side.lower()] = outcome.get("price")
            posted = market.get("last_update") or book.get("last_update")
            for (player, point), prices in sorted(sides.items()):
                rows.append(
                    [
                        local_day,
                        player,
                        name,
                        book.get("title") or book.get("key"),
                        point,
                        prices.get("over"),
                        prices.get("under"),
                        event.get("home_team"),
                        event.get("away_team"),
                        commence,
                        event.get("id"),
                        posted,
                    ]
                )
    return rows


class OddsApiClient:
    """The two v4 calls, with retries and quota tracking (``quota_remaining`` after each answer)."""

    def __init__(
        self,
        settings: Settings,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not settings.odds_api_key:
            raise ConfigError(
                "fetching lines needs The Odds API key: set NBAPROPS_ODDS_API_KEY (or odds_api_key "
                "in nbaprops.toml)"
            )
        self.policy = policy or policy_from(settings)
        self._key = settings.odds_api_key
        self._regions = settings.odds_regions
        self._client = httpx.Client(
            base_url=settings.odds_api_url.rstrip("/"),
            timeout=self.policy.timeout,
            transport=transport,
            headers={"Accept-Encoding": "gzip"},
        )
        self.quota_remaining: int | None = None
        self.quota_used: int | None = None
        self.requests = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OddsApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, what: str, params: dict[str, str]) -> Any:
        def send() -> httpx.Response:
            return self._client.get(path, params={"apiKey": self._key, **params})

        response = call(
            SOURCE,
            what,
            send,
            lambda r: Reply(r.status_code, r.headers.get("retry-after")),
            policy=self.policy,
            transient=(httpx.TimeoutException, httpx.TransportError),
        )
        self.requests += 1
        for header, attr in (("x-requests-remaining", "quota_remaining"), ("x-requests-used", "quota_used")):
            value = response.headers.get(header)
            if value is not None:
                with contextlib.suppress(ValueError):
                    setattr(self, attr, int(float(value)))
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(
                SOURCE, f"{what} answered something that is not JSON", status=response.status_code
            ) from exc

    def _snapshot(self, path: str, what: str, params: dict[str, str], at: datetime | None) -> Any:
        """The live answer, or (``at`` given) the ``data`` of the historical snapshot at or before ``at``."""
        if at is None:
            return self._get(f"/v4/sports/{SPORT}{path}", what, params)
        answer = self._get(f"/v4/historical/sports/{SPORT}{path}", what, {**params, "date": _iso(at)})
        if not isinstance(answer, dict) or "data" not in answer:
            raise SourceError(SOURCE, f"{what}: expected a historical snapshot (timestamp, data)", status=200)
        return answer["data"]

    def events(self, game_date: date, *, at: datetime | None = None) -> list[dict[str, Any]]:
        start, end = day_window(game_date)
        answer = self._snapshot(
            "/events",
            f"events of {game_date}",
            {"commenceTimeFrom": start, "commenceTimeTo": end, "dateFormat": "iso"},
            at,
        )
        if not isinstance(answer, list):
            raise SourceError(SOURCE, f"events of {game_date}: expected a list of events", status=200)
        return answer

    def event_odds(self, event_id: str, markets: list[str], *, at: datetime | None = None) -> dict[str, Any]:
        answer = self._snapshot(
            f"/events/{event_id}/odds",
            f"odds of event {event_id}",
            {
                "regions": self._regions,
                "markets": ",".join(markets),
                "oddsFormat": "american",
                "dateFormat": "iso",
            },
            at,
        )
        if not isinstance(answer, dict):
            raise SourceError(SOURCE, f"odds of event {event_id}: expected an event object", status=200)
        return answer


def fetch_lines(
    storage: Inputs,
    settings: Settings,
    *,
    game_date: date,
    clock: Clock,
    markets: tuple[str, ...] = tuple(MARKET_KEYS),
    at: datetime | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> FetchReport:
    """Fetch every book's prop lines of ``game_date``'s events and ingest them (see the module docstring);
    ``at``: the historical snapshot at or before that moment instead of the live lines."""
    wanted = {m: MARKET_KEYS[m] for m in markets}
    keys = list(wanted.values())
    if settings.odds_alternates:
        keys += [key + ALTERNATE for key in wanted.values()]
    with OddsApiClient(settings, policy=policy, transport=transport) as client:
        events = [e for e in client.events(game_date, at=at) if str(e.get("commence_time", ""))[:4]]
        rows: list[list[Any]] = []
        for event in events:
            odds = client.event_odds(str(event["id"]), keys, at=at)
            rows.extend(line_rows(odds, wanted))
        quota = {
            "quota_remaining": client.quota_remaining,
            "quota_used": client.quota_used,
            "requests": client.requests,
        }
    asked = {
        "game_date": game_date.isoformat(),
        "events": len(events),
        "markets": keys,
        "regions": settings.odds_regions,
        **({"at": _iso(at)} if at is not None else {}),
    }
    if not rows:
        return FetchReport(
            SOURCE,
            "lines",
            asked,
            0,
            0,
            None,
            f"no prop lines posted for {game_date} ({len(events)} event(s))",
            quota,
        )
    path = land(settings, SOURCE, f"lines_{game_date}_{stamp(clock)}.csv", csv_text(LINE_HEADER, rows))
    report = ingest_lines(storage, [path])
    books = len({row[3] for row in rows})
    return FetchReport(
        SOURCE,
        "lines",
        asked,
        len(rows),
        report.rows_added,
        str(path),
        f"{len(rows)} line(s) from {books} book(s) over {len(events)} event(s), {report.rows_added} new"
        + ("" if client.quota_remaining is None else f"; quota left {client.quota_remaining}"),
        {**quota, "unmatched_rows": report.details.get("unmatched_rows", 0)},
    )
