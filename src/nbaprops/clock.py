"""Time source for leases and deadlines; tests pass a :class:`ManualClock` instead of sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (thread-safe)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 2, 12, 17, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


def resolve_game_date(value: str, clock: Clock, *, option: str = "game_date") -> date:
    """A game date from ``YYYY-MM-DD``, ``TODAY`` or ``TOMORROW``.

    TODAY and TOMORROW are dates in US Eastern time, the zone the NBA schedules its days in: at 11 pm in
    Los Angeles (2 am in New York) TODAY is already the next day.

    Raises:
        InputError: anything else.
    """
    from zoneinfo import ZoneInfo

    from nbaprops.errors import InputError

    word = value.strip().upper()
    if word in ("TODAY", "TOMORROW"):
        today = clock.now().astimezone(ZoneInfo("America/New_York")).date()
        return today if word == "TODAY" else today + timedelta(days=1)
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date; use YYYY-MM-DD, TODAY or TOMORROW") from None
