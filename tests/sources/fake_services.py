"""A stand-in for the live services on loopback, serving the recorded answers of tests/sources/recorded/.

One threaded HTTP server plays all three services under path prefixes — ``/stats`` (NBA.com's stats API as
``nba_api`` calls it), ``/injury`` (the folder of injury-report PDFs) and ``/odds`` (The Odds API v4) — so
the real clients run their real HTTP code (``requests`` inside ``nba_api``, ``httpx``) against it. It behaves
like the services where the clients depend on it: ``leaguegamelog`` honours ``DateFrom``/``DateTo``, a missing
report PDF is a 403 (S3), a wrong API key a 401 and quota headers come with every odds answer. ``fail`` queues
error statuses for a path prefix; ``requests`` records what was asked (API keys removed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

RECORDED = Path(__file__).resolve().parent / "recorded"
API_KEY = "test-odds-key"
SEASON = "2024-25"


class FakeServices:
    def __init__(self, recorded: Path = RECORDED) -> None:
        self.recorded = recorded
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failures: dict[str, list[int]] = {}
        self.quota = 500
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self) -> dict[str, str]:
        """Environment pointing nbaprops at this server (no backoff waits)."""
        return {
            "NBAPROPS_NBA_STATS_URL": f"{self.url}/stats",
            "NBAPROPS_INJURY_REPORT_URL": f"{self.url}/injury",
            "NBAPROPS_ODDS_API_URL": f"{self.url}/odds",
            "NBAPROPS_ODDS_API_KEY": API_KEY,
            "NBAPROPS_HTTP_BACKOFF_SECONDS": "0",
            "NBAPROPS_HTTP_TIMEOUT_SECONDS": "5",
        }

    def settings_values(self) -> dict[str, Any]:
        return {
            "nba_stats_url": f"{self.url}/stats",
            "injury_report_url": f"{self.url}/injury",
            "odds_api_url": f"{self.url}/odds",
            "odds_api_key": API_KEY,
            "http_backoff_seconds": 0.0,
            "http_timeout_seconds": 5.0,
        }

    def fail(self, prefix: str, *statuses: int) -> None:
        """Answer the next requests under ``prefix`` with these statuses, in order."""
        with self._lock:
            self.failures.setdefault(prefix, []).extend(statuses)

    def asked(self, prefix: str) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return [r for r in self.requests if r[0].startswith(prefix)]

    def start(self) -> FakeServices:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answers -----------------------------------------------------------------------------------------
    def _json(self, name: str) -> Any:
        return json.loads((self.recorded / name).read_text())

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append((path, {k: v for k, v in query.items() if k != "apiKey"}))
            for prefix, statuses in self.failures.items():
                if path.startswith(prefix) and statuses:
                    status = statuses.pop(0)
                    return status, {"Content-Type": "text/plain"}, f"scripted {status}".encode()
        if path == "/stats/leaguegamelog":
            return self._gamelog(query)
        if path == "/stats/scheduleleaguev2":
            body = (
                self._json("scheduleleaguev2_2024-25.json")
                if query.get("Season") == SEASON
                else {
                    "meta": {},
                    "leagueSchedule": {
                        "seasonYear": query.get("Season"),
                        "leagueId": "00",
                        "gameDates": [],
                        "weeks": [],
                    },
                }
            )
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if path.startswith("/injury/"):
            pdf = self.recorded / path.removeprefix("/injury/")
            if pdf.suffix == ".pdf" and pdf.is_file():
                return 200, {"Content-Type": "application/pdf"}, pdf.read_bytes()
            return 403, {"Content-Type": "application/xml"}, b"<Error><Code>AccessDenied</Code></Error>"
        if path.startswith("/odds/"):
            return self._odds(path.removeprefix("/odds"), query)
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def _gamelog(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        body = self._json("leaguegamelog_2024-25.json")
        result = body["resultSets"][0]
        at = result["headers"].index("GAME_DATE")

        def day(text: str) -> str | None:
            return datetime.strptime(text, "%m/%d/%Y").date().isoformat() if text else None

        lo, hi = day(query.get("DateFrom", "")), day(query.get("DateTo", ""))
        result["rowSet"] = [
            r
            for r in result["rowSet"]
            if query.get("Season") == SEASON and (lo is None or r[at] >= lo) and (hi is None or r[at] <= hi)
        ]
        body["parameters"].update(
            Season=query.get("Season"),
            DateFrom=query.get("DateFrom") or None,
            DateTo=query.get("DateTo") or None,
        )
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _odds(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if query.get("apiKey") != API_KEY:
            body = {"message": "API key is not valid", "error_code": "INVALID_KEY"}
            return 401, {"Content-Type": "application/json"}, json.dumps(body).encode()
        cost = 0
        if path == "/v4/sports/basketball_nba/events":
            events = self._json("odds_events_2025-02-12.json")
            lo, hi = query.get("commenceTimeFrom", ""), query.get("commenceTimeTo", "")
            body: Any = [e for e in events if lo <= e["commence_time"] <= hi]
        elif path.startswith("/v4/sports/basketball_nba/events/") and path.endswith("/odds"):
            event_id = path.split("/")[5]
            file = self.recorded / f"odds_event_{event_id}.json"
            if not file.is_file():
                return 404, {"Content-Type": "application/json"}, b'{"message": "Event not found"}'
            body = json.loads(file.read_text())
            cost = len(query.get("markets", "").split(",")) * len(query.get("regions", "us").split(","))
        else:
            return 404, {"Content-Type": "application/json"}, b'{"message": "Unknown endpoint"}'
        with self._lock:
            self.quota -= cost
            headers = {
                "Content-Type": "application/json",
                "x-requests-remaining": str(self.quota),
                "x-requests-used": str(500 - self.quota),
                "x-requests-last": str(cost),
            }
        return 200, headers, json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        services = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                status, headers, body = services.answer(parts.path, query)
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def running_services() -> Iterator[FakeServices]:
    services = FakeServices().start()
    try:
        yield services
    finally:
        services.stop()
