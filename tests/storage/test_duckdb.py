"""DuckDB's errors become nbaprops errors at one boundary (:func:`nbaprops.storage.duckdb.translate`).

Every case raises a real DuckDB error on a real file: a file locked by another process, a write-write
conflict between two threads, a violated key, a failing statement, a file that cannot be read.

Mutations tried in ``translate``, each failing one of these tests: the lock branch, the conflict branch, the
constraint branch or the ``source`` branch removed (the error falls through to ``TerminalError``); no
statement in the message; the statement's head not cut at 80 characters.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from nbaprops.errors import ContractError, InputError, NbapropsError, StorageBusyError, TerminalError
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

HOLD_THE_FILE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStorage]:
    """A small file of its own (the loaded box scores are not needed here)."""
    storage = open_storage(tmp_path / "small.duckdb")
    storage.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)")
    storage.execute("INSERT INTO counter VALUES (1, 0)")
    yield storage
    storage.close()


def test_a_file_held_by_another_process_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FILE, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(StorageBusyError, match="held by another process") as info:
            open_storage(path)
        assert isinstance(info.value.__cause__, duckdb.IOException)
    finally:
        holder.kill()
        holder.wait()


def test_a_write_write_conflict_is_busy(store: DuckDBStorage) -> None:
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            store.execute("UPDATE counter SET value = 2 WHERE id = 1")
        except BaseException as exc:
            errors.append(exc)

    with store.transaction() as tx:
        tx.execute("UPDATE counter SET value = 1 WHERE id = 1")
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert [type(e) for e in errors] == [StorageBusyError]
    assert isinstance(errors[0].__cause__, duckdb.TransactionException)
    assert store.scalar("SELECT value FROM counter WHERE id = 1") == 1


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        (
            "INSERT INTO counter VALUES (1, 5)",
            ContractError,
            r"constraint violated: .*Duplicate key.* \(in: INSERT INTO counter VALUES \(1, 5\)\)$",
        ),
        (
            "SELECT value FROM no_such_table",
            TerminalError,
            r"database error: .*no_such_table.* \(in: SELECT value FROM no_such_table\)$",
        ),
        (
            "SELECT value\n    FROM   no_such_table   WHERE " + "value > 0 AND " * 10 + "true",
            TerminalError,
            r"\(in: SELECT value FROM no_such_table WHERE value > 0 AND value > 0 AND value > 0 A\.\.\.\)$",
        ),
    ],
    ids=["constraint", "statement", "long statement"],
)
def test_a_failing_statement_is_named_in_the_error(
    store: DuckDBStorage, sql: str, error: type[NbapropsError], message: str
) -> None:
    """The statement's head (80 characters at most, whitespace collapsed) ends the message."""
    with pytest.raises(error, match=f"(?s){message}") as info:
        store.execute(sql)
    assert type(info.value) is error and isinstance(info.value.__cause__, duckdb.Error)


@pytest.mark.parametrize(
    ("name", "content", "reader"),
    [("missing.csv", None, "read_csv"), ("text.parquet", "not a parquet file\n", "read_parquet")],
    ids=["missing file", "not parquet"],
)
def test_a_file_that_cannot_be_read_is_bad_input(
    store: DuckDBStorage, tmp_path: Path, name: str, content: str | None, reader: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with (
        store.session() as session,
        pytest.raises(InputError, match="cannot read as CSV, Parquet or JSON") as info,
    ):
        session.execute(f"SELECT * FROM {reader}('{path}')", source=path)
    assert info.value.path == str(path) and isinstance(info.value.__cause__, duckdb.Error)
