"""The store's memory bound on a real DuckDB file (``Database.within_memory_bound``, what every ingest runs in).

When the work does not fit under the bound, it runs again under the bound on one thread before it runs without
the bound: in one of two 10M-row uploads through the API the two-thread run did not fit and the unbounded one
took the server to 14 GB. The out-of-memory errors here are DuckDB's own: a list aggregate larger than the bound
(not spillable) is asked for only while DuckDB runs on more threads than one, or always.

What each test would catch: the one-thread step skipped (straight to unbounded); the thread count or the bound
left changed after the work; an error other than out of memory retried.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nbaprops.errors import NbapropsError
from nbaprops.storage.duckdb.connection import Database

TOO_BIG = "SELECT length(list(i)) FROM range(40000000) t(i)"  # ~320 MB of list: not under a 200 MB bound


def _settings(db: Database) -> tuple[str, str]:
    row = db.fetchall("SELECT current_setting('threads'), current_setting('memory_limit')")[0]
    return str(row[0]), str(row[1])


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "bound.duckdb")
    database.execute("SET threads = 2")  # the machine's default may be 1: the first run must be on more
    return database


def test_work_that_fits_only_on_one_thread_runs_bounded_on_one_thread(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, str]] = []

    def work() -> int:
        calls.append(_settings(db))
        if calls[-1][0] != "1":
            db.fetchall(TOO_BIG)
        return 7

    with caplog.at_level(logging.WARNING):
        assert db.within_memory_bound(work) == 7
    assert [threads for threads, _ in calls] == ["2", "1"]
    assert calls[0][1] == calls[1][1]  # both under the same bound
    assert "one thread" in caplog.text and "without the bound" not in caplog.text
    assert _settings(db)[0] != "1"  # DuckDB's default thread count is back


def test_work_that_fits_nowhere_bounded_runs_without_the_bound_last(db: Database) -> None:
    calls: list[tuple[str, str]] = []

    def work() -> int:
        calls.append(_settings(db))
        if len(calls) < 3:
            db.fetchall(TOO_BIG)
        return len(calls)

    assert db.within_memory_bound(work) == 3
    assert [threads for threads, _ in calls][:2] == ["2", "1"]
    assert calls[2][1] != calls[0][1]  # the last run is not under the bound


def test_an_error_other_than_memory_is_not_retried(db: Database) -> None:
    calls = 0

    def work() -> None:
        nonlocal calls
        calls += 1
        db.fetchall("SELECT * FROM no_such_table")

    with pytest.raises(NbapropsError):
        db.within_memory_bound(work)
    assert calls == 1
