"""The NBA's official injury report: the published PDF, parsed by ``nbainjuries`` (tabula-java).

The league publishes the report as a PDF snapshot — hourly (``Injury-Report_2025-02-12_05PM.pdf``) and, since
2025-12-22, every 15 minutes (``..._05_15PM.pdf``), named in US Eastern time. A fetch asks for the newest
snapshot at or before ``at`` (default: now, or 7 pm ET of a past ``--date``) and walks back one slot at a time
past the ones not published (403/404) — at most ``tries`` of them. The PDF is downloaded here with ``httpx``
(browser-like headers, timeouts, retries; the base URL is ``injury_report_url``, so tests serve a recorded PDF
on loopback), kept under ``landing/injury_report/``, and parsed by ``nbainjuries`` in its local-file mode,
which runs tabula-java (Java 17) with the column bounds of the season's report layout. The rows, with the
snapshot's ``Report Time``, land as JSON and go through :func:`~nbaprops.ingest.injuries.ingest_injuries`.

A snapshot already stored is not downloaded again: a rerun asks nothing.
"""

from __future__ import annotations

import importlib
import logging
import math
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

import httpx

from nbaprops.clock import EASTERN, Clock
from nbaprops.config import Settings
from nbaprops.errors import ConfigError, SourceError
from nbaprops.ingest.injuries import ingest_injuries
from nbaprops.sources._common import FetchReport, json_text, land
from nbaprops.sources._http import Reply, RetryPolicy, call
from nbaprops.sources.nba_stats import policy_from
from nbaprops.storage.inputs import Inputs

log = logging.getLogger(__name__)

SOURCE = "injury_report"
COLUMNS = ("Game Date", "Game Time", "Matchup", "Team", "Player Name", "Current Status", "Reason")
# From this report on the league publishes every 15 minutes (nbainjuries names the files the same way).
QUARTER_HOURLY_FROM = datetime(2025, 12, 22, 9, 0)
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/144.0.0.0 Safari/537.36",
    "Accept": "application/pdf,*/*;q=0.8",
    "Referer": "https://official.nba.com/",
}


def _injury_module() -> Any:
    try:
        return importlib.import_module("nbainjuries.injury")
    except ImportError as exc:
        raise ConfigError(
            "fetching the injury report needs nbainjuries: pip install 'nbaprops[live]'"
        ) from exc


def report_slots(at: datetime, count: int) -> list[datetime]:
    """The ``count`` newest report times at or before ``at`` (naive US Eastern), newest first."""
    slots: list[datetime] = []
    now = at.replace(second=0, microsecond=0)
    while len(slots) < count:
        step = 15 if now >= QUARTER_HOURLY_FROM else 60
        slot = now.replace(minute=(now.minute // 15) * 15) if step == 15 else now.replace(minute=0)
        slots.append(slot)
        now = slot - timedelta(minutes=1)
    return slots


def default_at(clock: Clock, game_date: date | None) -> datetime:
    """When to look from (naive US Eastern): now, or 7 pm ET of a game date already past."""
    now = clock.now().astimezone(EASTERN).replace(tzinfo=None)
    if game_date is not None:
        return min(now, datetime.combine(game_date, time(19, 0)))
    return now


def _records(frame: Any, report_time: datetime) -> list[dict[str, Any]]:
    stamp = report_time.replace(tzinfo=EASTERN).isoformat()
    out = []
    for row in frame.to_dict(orient="records"):
        record: dict[str, Any] = {"Report Time": stamp}
        for column in COLUMNS:
            value = row.get(column)
            record[column] = (
                None if value is None or (isinstance(value, float) and math.isnan(value)) else value
            )
        out.append(record)
    return out


def fetch_injuries(
    storage: Inputs,
    settings: Settings,
    *,
    clock: Clock,
    game_date: date | None = None,
    at: datetime | None = None,
    tries: int = 8,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> FetchReport:
    """Fetch the newest published injury report at or before ``at`` and ingest it (see the module docstring).

    Args:
        game_date: the date the report is wanted for (sets the default ``at`` of a past date).
        at: look from this time (a naive time is US Eastern).
        tries: report slots to try, newest first, before giving up.
    """
    injury = _injury_module()
    start = (
        default_at(clock, game_date)
        if at is None
        else (at.astimezone(EASTERN).replace(tzinfo=None) if at.tzinfo else at)
    )
    policy = policy or policy_from(settings)
    base = settings.injury_report_url.rstrip("/")
    tried: list[str] = []
    with httpx.Client(
        timeout=policy.timeout, headers=BROWSER_HEADERS, transport=transport, follow_redirects=True
    ) as client:
        for slot in report_slots(start, tries):
            name = injury.gen_url(slot).rsplit("/", 1)[1]
            if storage.scalar(
                "SELECT count(*) FROM injury_reports WHERE report_at = ?", [slot.replace(tzinfo=EASTERN)]
            ):
                return FetchReport(
                    SOURCE,
                    "injuries",
                    {"report": name},
                    0,
                    0,
                    None,
                    f"report {name} is already stored; nothing asked",
                )
            url = f"{base}/{name}"
            response = call(
                SOURCE,
                f"injury report {name}",
                partial(client.get, url),
                lambda r: Reply(r.status_code, r.headers.get("retry-after")),
                policy=policy,
                transient=(httpx.TimeoutException, httpx.TransportError),
                ok_statuses=frozenset({403, 404}),
            )
            if response.status_code in (403, 404):
                tried.append(name)
                continue
            folder = settings.landing_dir / SOURCE
            folder.mkdir(parents=True, exist_ok=True)
            pdf = folder / name
            pdf.with_name(name + ".tmp").write_bytes(response.content)
            pdf.with_name(name + ".tmp").replace(pdf)
            try:
                frame = injury.get_reportdata(slot, local=True, localdir=str(folder), return_df=True)
            except Exception as exc:  # tabula/Java/pandas failures all mean "this PDF could not be read"
                raise SourceError(
                    SOURCE,
                    f"could not parse {name} ({type(exc).__name__}: {str(exc)[:200]}); "
                    "the parser needs Java 17 on PATH",
                ) from exc
            records = _records(frame, slot)
            asked = {"report": name, "tried_before": tried}
            if not records:
                return FetchReport(
                    SOURCE, "injuries", asked, 0, 0, str(pdf), f"report {name} lists no player"
                )
            path = land(settings, SOURCE, name.removesuffix(".pdf") + ".json", json_text(records))
            report = ingest_injuries(storage, [path])
            return FetchReport(
                SOURCE,
                "injuries",
                asked,
                len(records),
                report.rows_added,
                str(path),
                f"report {name}: {len(records)} row(s), {report.rows_added} new",
                {
                    "statuses": report.details.get("statuses", {}),
                    "unmatched": report.details.get("unmatched", []),
                },
            )
    raise SourceError(
        SOURCE,
        f"no injury report published at or before {start:%Y-%m-%d %H:%M} ET (tried {', '.join(tried)})",
        status=404,
    )
