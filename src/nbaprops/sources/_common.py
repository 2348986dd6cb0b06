"""What every source shares: its fetch report, the landing of fetched records, and its incremental cursor.

dlt's model, kept small: a source **extracts** records from an API, **lands** them as a file under
``<db dir>/landing/<source>/`` (what was fetched, when — kept for audit and replays), and **loads** that file
through the same validated, atomic, idempotent ingest every user file takes (:mod:`nbaprops.ingest`). Only
after the load succeeded does the source move its cursor (table ``source_state``), so a failed load is simply
asked again next time; nothing is ever half-stored.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from nbaprops.clock import Clock
from nbaprops.config import Settings
from nbaprops.errors import ConfigError
from nbaprops.storage.inputs import Inputs


@dataclass(frozen=True)
class FetchReport:
    """What one fetch asked, received and stored.

    Attributes:
        source: ``nba_stats``, ``injury_report`` or ``odds_api``.
        kind: ``boxscores``, ``schedule``, ``injuries`` or ``lines``.
        asked: what was requested (dates, season, report time…); ``None`` when nothing was new to ask for.
        records: records received.
        rows_added: rows new to the database (0 on a rerun).
        landed: the landing file loaded, when records came.
        message: one line for a person.
        details: source-specific figures (quota left, ingest details…).
    """

    source: str
    kind: str
    asked: dict[str, Any] | None
    records: int
    rows_added: int
    landed: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "asked": self.asked,
            "records": self.records,
            "rows_added": self.rows_added,
            "landed": self.landed,
            "message": self.message,
            **self.details,
        }


def season_of(day: date) -> str:
    """The NBA season label of a date (``2024-25``); seasons start in August."""
    start = day.year if day.month >= 8 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def check_season(season: str) -> str:
    """Refuse a season label not of the form ``2025-26``."""
    parts = season.split("-")
    if len(parts) != 2 or not (
        parts[0].isdigit()
        and len(parts[0]) == 4
        and parts[1].isdigit()
        and len(parts[1]) == 2
        and (int(parts[0]) + 1) % 100 == int(parts[1])
    ):
        raise ConfigError(f"season {season!r} is not a season label like 2025-26")
    return season


def land(settings: Settings, source: str, name: str, content: str) -> Path:
    """Write fetched records to ``<landing>/<source>/<name>`` atomically (temp file renamed into place)."""
    folder = settings.landing_dir / source
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)
    return path


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def json_text(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, indent=1, ensure_ascii=False, default=str)


def stamp(clock: Clock) -> str:
    """A file-name-safe UTC time stamp."""
    return clock.now().astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")


# -- cursors ---------------------------------------------------------------------------------------------
def get_cursor(storage: Inputs, source: str, resource: str) -> str | None:
    value = storage.scalar(
        "SELECT cursor FROM source_state WHERE source = ? AND resource = ?", [source, resource]
    )
    return None if value is None else str(value)


def set_cursor(storage: Inputs, source: str, resource: str, cursor: str, *, clock: Clock) -> None:
    storage.execute(
        "INSERT OR REPLACE INTO source_state (source, resource, cursor, updated_at) VALUES (?, ?, ?, ?)",
        [source, resource, cursor, clock.now()],
    )


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=k) for k in range((end - start).days + 1)]


def utc(value: datetime) -> datetime:
    return value.astimezone(ZoneInfo("UTC"))
