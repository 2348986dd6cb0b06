"""The NBA's calendar: --date values are US Eastern days, whatever the machine's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from nbaprops.clock import ManualClock, eastern_date, resolve_day
from nbaprops.errors import InputError

LATE_EVENING = ManualClock(datetime(2025, 2, 13, 3, 30, tzinfo=UTC))  # 22:30 on the 12th in New York


@pytest.mark.parametrize(
    ("value", "day"),
    [("TODAY", date(2025, 2, 12)), ("tomorrow", date(2025, 2, 13)), ("2024-03-12", date(2024, 3, 12))],
)
def test_a_date_is_an_iso_day_or_today_and_tomorrow_in_eastern_time(value: str, day: date) -> None:
    assert eastern_date(LATE_EVENING) == date(2025, 2, 12)  # UTC is already the 13th
    assert resolve_day(value, LATE_EVENING) == day


def test_a_bad_date_names_the_option_it_came_from() -> None:
    with pytest.raises(
        InputError, match=r"^--since '12/02/2025' is not a date; use YYYY-MM-DD, TODAY or TOMORROW$"
    ):
        resolve_day("12/02/2025", LATE_EVENING, "--since")
