"""The Odds API's historical endpoints on an ``httpx.MockTransport`` (no network), serving the hand-made snapshots
of ``fixtures/`` (one game of 2024-01-15, Dallas against New Orleans; see ``fixtures/README.md``).

Like the real endpoints, a request answers the latest snapshot at or before its ``date`` parameter; every request
is recorded in ``asked`` (path and query)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.sources.odds_api import fetch_lines
from nbaprops.storage.inputs import Inputs

FIXTURES = Path(__file__).parent / "fixtures"
EVENT_ID = "b15ce504a25bc1a46e14d486614bc1df"
DAY = "2024-01-15"
TIPOFF = datetime(2024, 1, 15, 20, 30, tzinfo=UTC)
SNAPSHOTS = (
    datetime(2024, 1, 15, 17, 0, tzinfo=UTC),
    datetime(2024, 1, 15, 18, 30, tzinfo=UTC),
    datetime(2024, 1, 15, 20, 15, tzinfo=UTC),
    datetime(2024, 1, 15, 21, 0, tzinfo=UTC),  # in play: after tip-off
)
API_KEY = "test-odds-key-0123456789"
CLOCK = ManualClock(datetime(2024, 1, 16, 12, 0, tzinfo=UTC))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H%M%SZ")


class HistoricalOdds:
    """The stand-in: ``transport`` for :func:`nbaprops.sources.odds_api.fetch_lines`."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.transport = httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.asked.append((request.url.path, query))
        if query.get("apiKey") != API_KEY:
            return httpx.Response(401, json={"message": "API key is not valid"})
        at = datetime.fromisoformat(query.get("date", "").replace("Z", "+00:00"))
        taken = [s for s in SNAPSHOTS if s <= at]
        if not taken:
            return httpx.Response(404, json={"message": "No data before this date"})
        stamp = _stamp(taken[-1])
        path = request.url.path
        if path == "/v4/historical/sports/basketball_nba/events":
            body: Any = json.loads((FIXTURES / f"historical_events_{stamp}.json").read_text())
            cost = 1
        elif path == f"/v4/historical/sports/basketball_nba/events/{EVENT_ID}/odds":
            body = json.loads((FIXTURES / f"historical_event_odds_{EVENT_ID}_{stamp}.json").read_text())
            asked = set(query["markets"].split(","))
            for book in body["data"]["bookmakers"]:
                book["markets"] = [m for m in book["markets"] if m["key"] in asked]
            cost = 10 * len(query["markets"].split(",")) * len(query["regions"].split(","))
        else:
            return httpx.Response(404, json={"message": "Unknown endpoint"})
        return httpx.Response(
            200, json=body, headers={"x-requests-remaining": "1000", "x-requests-last": str(cost)}
        )


def fetch_all(storage: Inputs, settings: Settings, odds: HistoricalOdds) -> list[int]:
    """``fetch lines --at`` of every snapshot of the fixtures, oldest first; the rows each added."""
    return [
        fetch_lines(
            storage, settings, game_date=TIPOFF.date(), clock=CLOCK, markets=("pra",), at=moment,
            transport=odds.transport,
        ).rows_added
        for moment in SNAPSHOTS
    ]  # fmt: skip
