"""Time: the source for leases and deadlines, and the NBA's calendar days.

Tests pass a :class:`ManualClock` instead of sleeping; ``--as-of`` runs on a :class:`ReplayClock`. Days are US
Eastern (the NBA's calendar), whatever the machine's zone: :func:`eastern_date` is "today",
:func:`resolve_day` reads a ``--date`` (``YYYY-MM-DD``, ``TODAY``, ``TOMORROW``).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from nbaprops.errors import InputError

EASTERN = ZoneInfo("America/New_York")
RELATIVE_DAYS = {"today": 0, "tomorrow": 1}


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


class ReplayClock:
    """A past instant that moves with the wall clock: ``--as-of`` replays a day as it would have run.

    Leases, deadlines and durations behave as on the night itself (time passes), while everything the day's
    commands read "as of now" (lines posted, injury reports, whether a game started) is read as of the replayed
    instant, exactly as the walk-forward backtest sees it.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a replay clock needs an aware datetime")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


def eastern_date(clock: Clock) -> date:
    """Today in US Eastern time (the NBA's calendar)."""
    return clock.now().astimezone(EASTERN).date()


def resolve_day(value: str, clock: Clock, option: str = "--date") -> date:
    """``YYYY-MM-DD``, or TODAY / TOMORROW in US Eastern time.

    Raises:
        InputError: naming ``option``, when ``value`` is none of these.
    """
    offset = RELATIVE_DAYS.get(value.strip().lower())
    if offset is not None:
        return eastern_date(clock) + timedelta(days=offset)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date; use YYYY-MM-DD, TODAY or TOMORROW") from None


__all__ = [
    "EASTERN",
    "Clock",
    "ManualClock",
    "ReplayClock",
    "SystemClock",
    "eastern_date",
    "resolve_day",
]
